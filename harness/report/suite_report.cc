#include "harness/report/suite_report.h"

#include <fmt/format.h>

#include "harness/sys/untrusted_text.h"

namespace harness::report {

namespace {
const char* Mark(checks::Status s) {
  switch (s) {
    case checks::Status::kPass: return "✓";
    case checks::Status::kFail: return "✗";
    case checks::Status::kSkipped: return "-";
    case checks::Status::kInfo: return "•";
  }
  return "?";
}
const char* StatusName(checks::Status s) {
  switch (s) {
    case checks::Status::kPass: return "pass";
    case checks::Status::kFail: return "fail";
    case checks::Status::kSkipped: return "skipped";
    case checks::Status::kInfo: return "info";
  }
  return "?";
}
// The text as a terminal shows it (XML 1.0 cannot carry ESC and its kin,
// not even as character references), then XML's own escapes.
std::string XmlEscape(const std::string& text) {
  std::string out;
  for (char c : sys::Escaped(text)) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      default: out += c;
    }
  }
  return out;
}
}  // namespace

std::string SuiteTitle(const std::string& suite) {
  if (suite == "pre") return "pre-migration";
  if (suite == "post") return "post-migration";
  if (suite == "rollback") return "post-rollback";
  if (suite == "chain") return "chain";
  return suite;
}

std::string SuiteText(const checks::SuiteResult& s) {
  std::string out;
  for (const auto& c : s.checks) out += fmt::format("{} {}\n", Mark(c.status), sys::Escaped(c.detail));
  int pass = s.Count(checks::Status::kPass), fail = s.Count(checks::Status::kFail),
      skipped = s.Count(checks::Status::kSkipped);
  std::string skip_note = skipped ? fmt::format(", {} skipped", skipped) : "";
  if (s.Total() == 0) return out;  // information only: nothing passed or failed
  if (fail == 0 && skipped == 0)
    out += fmt::format("All {} checks passed ({}/{})\n", SuiteTitle(s.suite), pass, s.Total());
  else if (fail == 0)
    out += fmt::format("{} of {} {} checks passed{}: not a full pass\n", pass, s.Total(),
                       SuiteTitle(s.suite), skip_note);
  else
    out += fmt::format("{} of {} {} checks FAILED ({} passed{})\n", fail, s.Total(),
                       SuiteTitle(s.suite), pass, skip_note);
  return out;
}

std::string JsonText(const nlohmann::json& j, int indent) {
  return j.dump(indent, ' ', false, nlohmann::json::error_handler_t::replace);
}

nlohmann::json SuiteJson(const checks::SuiteResult& s) {
  nlohmann::json checks = nlohmann::json::array();
  for (const auto& c : s.checks)
    checks.push_back({{"id", c.id}, {"status", StatusName(c.status)}, {"detail", c.detail}});
  return {{"suite", s.suite},
          {"passed", s.ok() && s.Count(checks::Status::kSkipped) == 0},
          {"counts",
           {{"pass", s.Count(checks::Status::kPass)},
            {"fail", s.Count(checks::Status::kFail)},
            {"skipped", s.Count(checks::Status::kSkipped)}}},
          {"checks", checks}};
}

std::vector<JUnitCase> JUnitCases(const checks::SuiteResult& s) {
  std::vector<JUnitCase> out;
  for (const auto& c : s.checks) {
    if (c.status == checks::Status::kInfo) continue;
    JUnitCase j;
    j.classname = "migration-harness." + s.suite;
    j.name = c.id;
    j.message = c.detail;
    j.outcome = c.status == checks::Status::kPass   ? JUnitCase::Outcome::kPass
                : c.status == checks::Status::kFail ? JUnitCase::Outcome::kFail
                                                    : JUnitCase::Outcome::kSkipped;
    out.push_back(j);
  }
  return out;
}

std::string JUnitXml(const std::string& suite_name, const std::vector<JUnitCase>& cases) {
  int failures = 0, skipped = 0;
  double total = 0;
  for (const auto& c : cases) {
    failures += c.outcome == JUnitCase::Outcome::kFail;
    skipped += c.outcome == JUnitCase::Outcome::kSkipped;
    total += c.seconds;
  }
  std::string out = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n";
  out += fmt::format("<testsuites>\n<testsuite name=\"{}\" tests=\"{}\" failures=\"{}\" "
                     "skipped=\"{}\" time=\"{:.3f}\">\n",
                     XmlEscape(suite_name), cases.size(), failures, skipped, total);
  for (const auto& c : cases) {
    out += fmt::format("  <testcase classname=\"{}\" name=\"{}\" time=\"{:.3f}\"", XmlEscape(c.classname),
                       XmlEscape(c.name), c.seconds);
    if (c.outcome == JUnitCase::Outcome::kPass) {
      out += fmt::format("><system-out>{}</system-out></testcase>\n", XmlEscape(c.message));
    } else if (c.outcome == JUnitCase::Outcome::kFail) {
      out += fmt::format("><failure message=\"{}\"/></testcase>\n", XmlEscape(c.message));
    } else {
      out += fmt::format("><skipped message=\"{}\"/></testcase>\n", XmlEscape(c.message));
    }
  }
  out += "</testsuite>\n</testsuites>\n";
  return out;
}

}  // namespace harness::report
