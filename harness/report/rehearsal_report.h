// What a `verify` rehearsal found, and how it is shown: text for the
// terminal (the quickstart's ✓/✗ lines, step timings, verdict), JSON and
// JUnit XML (one test case per check and phase). Rendering only.
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "harness/checks/check_result.h"
#include "harness/engine/migrator.h"

namespace harness::report {

// FR-031: migration 002 must finish within 5 minutes.
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
  std::string shape;  // "quickstart", "production"; empty until detected
  std::vector<Phase> phases;
  std::vector<checks::SuiteResult> suites;
  std::vector<engine::StepTiming> upgrade_steps;
  std::vector<engine::StepTiming> downgrade_steps;
  double upgrade_seconds = 0;
  double downgrade_seconds = 0;
  long long repositories = 0;
  long long chunks = 0;
  bool counted = false;  // the two counts were read (verify got that far)
  std::string data_line;  // instead of the two counts (a rehearsal of another revision)
  // The upgrade time predicted at `rows` chunks from a linear fit per step
  // (report/forecast.h); rows == 0 when there is no forecast.
  struct Forecast {
    long long rows = 0;
    double seconds = 0;
    std::string basis;  // what the fit stands on
    std::string fit;    // LinearFit::Describe() of the total
    std::string unit = "chunks";  // what `rows` counts: code_chunks, or every table's rows
  } forecast;
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
