// Renders check suites: the quickstart's ✓/✗ lines with a summary, JSON,
// and JUnit XML. Rendering only: nothing here queries a database.
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "harness/checks/check_result.h"

namespace harness::report {

// "pre-migration", "post-migration", "post-rollback".
std::string SuiteTitle(const std::string& suite);
// One line per check, then "All post-migration checks passed (8/8)" or the
// failures; skipped checks are never counted as passed.
std::string SuiteText(const checks::SuiteResult& s);
nlohmann::json SuiteJson(const checks::SuiteResult& s);
// A JSON report's text: every string exactly as it was (escapes and line
// breaks as JSON escapes), except bytes that are not UTF-8, which JSON cannot
// carry: each becomes U+FFFD.
std::string JsonText(const nlohmann::json& j, int indent = 2);

// One JUnit <testcase> per entry.
struct JUnitCase {
  std::string classname;
  std::string name;
  double seconds = 0;
  enum class Outcome { kPass, kFail, kSkipped } outcome = Outcome::kPass;
  std::string message;
};
std::string JUnitXml(const std::string& suite_name, const std::vector<JUnitCase>& cases);
std::vector<JUnitCase> JUnitCases(const checks::SuiteResult& s);

}  // namespace harness::report
