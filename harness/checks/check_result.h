// The outcome of one check: pass, fail, skipped (it could not run, and says
// why) or info (a figure the operator needs, not a verdict), with the
// one-line detail the quickstart prints after its ✓ or ✗.
#pragma once

#include <string>
#include <vector>

namespace harness::checks {

enum class Status { kPass, kFail, kSkipped, kInfo };

struct CheckResult {
  std::string id;      // stable, for JSON and JUnit: "post.repositories_project_id"
  Status status = Status::kFail;
  std::string detail;  // "project_id column exists in repositories (VARCHAR(50), ...)"
};

struct SuiteResult {
  std::string suite;  // "pre", "post", "rollback"
  std::vector<CheckResult> checks;
  // A gate failed (`--! gate`): the schema is not the one the revisions
  // know, and the suite's other checks did not run.
  bool stopped = false;

  int Count(Status s) const {
    int n = 0;
    for (const auto& c : checks) n += c.status == s;
    return n;
  }
  // Passed, failed and skipped checks; info lines are not checks.
  int Total() const { return Count(Status::kPass) + Count(Status::kFail) + Count(Status::kSkipped); }
  bool ok() const { return Count(Status::kFail) == 0; }
};

}  // namespace harness::checks
