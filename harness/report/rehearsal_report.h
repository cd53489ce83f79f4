// What a `verify` rehearsal found, and how it is shown: text for the
// terminal (the quickstart's ✓/✗ lines, step timings, verdict), JSON and
// JUnit XML (one test case per check and phase). Rendering only.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "harness/checks/check_result.h"
#include "harness/engine/migrator.h"

namespace harness::report {

// FR-031: an upgrade must finish within 5 minutes.
inline constexpr double kBudgetSeconds = 300;

struct Phase {
  std::string name;
  double seconds = 0;
  bool ok = true;
  std::string detail;
};

struct Rehearsal {
  std::string title = "Migration rehearsal";
  std::string target;  // where it ran, never with a password
  std::string server_version;
  // The schema shape the data source recognised ("production") and what
  // tells it ("code_chunks -> code_files -> repositories"); empty when none.
  std::string shape, shape_detail;
  std::vector<Phase> phases;
  std::vector<checks::SuiteResult> suites;
  std::vector<engine::StepTiming> upgrade_steps;
  std::vector<engine::StepTiming> downgrade_steps;
  double upgrade_seconds = 0;
  double downgrade_seconds = 0;
  // The data, as the data source counts it ("repositories" 100,
  // "code_chunks" 10000), and in a line ("100 repositories, 10000
  // code_chunks", "10122 rows in 11 tables"); empty until read.
  std::vector<std::pair<std::string, long long>> counts;
  std::string data_line;
  // The upgrade time predicted at `rows` (of `unit`) from a model per step
  // (verify/forecast.h); rows == 0 when there is no forecast.
  struct Forecast {
    long long rows = 0;
    double seconds = 0;
    std::string basis;  // what the fit stands on
    std::string fit;    // each step's forecast and model
    std::string unit = "rows";  // what `rows` counts: chunks, or every table's rows
  } forecast;
  // The longest hold of a lock that blocks reads or writes, at production
  // size (verify/lock_review.h); seconds == 0 when none.
  struct LockHold {
    std::string table, mode, taken_by, basis;
    long long rows = 0;
    double seconds = 0, measured = 0;
    bool blocks_reads = false;
  } longest_hold;
  double max_lock_hold = 0;  // --max-lock-hold; 0: off
  // How the revisions ran, as their source says (an Alembic project's
  // runner, what was measured per statement or per revision).
  std::vector<std::string> notes;
  // Each step's statements and their times, where the server logged them
  // (the step's id in the "step effects" suite -> its statements).
  struct Statement {
    std::string sql;
    double seconds = 0;
  };
  std::vector<std::pair<std::string, std::vector<Statement>>> statements;
  bool ready = false;
  int exit_code = 0;
  std::string verdict;  // one line
};

// The lock waits of a run's steps, summed: how long, in which steps, for
// whom, and how many steps were not watched (engine/lock_wait_monitor.h).
struct LockWaitSummary {
  double seconds = 0;
  std::string by_step;  // "step 1: 1.010s"
  std::vector<std::string> waited_for;
  int unknown_steps = 0;
  // "1.010s (step 1: 1.010s), for locks held by autovacuum worker pid ..."
  // or "none"; then the steps not watched, if any.
  std::string Text() const;
};
LockWaitSummary SummarizeLockWaits(const std::vector<engine::StepTiming>& steps);

std::string RehearsalText(const Rehearsal& r);
nlohmann::json RehearsalJson(const Rehearsal& r);
std::string RehearsalJUnit(const Rehearsal& r);

}  // namespace harness::report
