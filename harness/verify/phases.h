// A rehearsal's timed phases: each one logged as it starts and ends, shown
// on the terminal's status line, recorded in the report with its time and
// detail; the one under way named when something fails. A SIGINT or
// SIGTERM that arrives during a phase ends that phase (and the rehearsal)
// as interrupted, naming it: checked as it starts and again as it ends,
// whatever its own work noticed.
#pragma once

#include <chrono>
#include <functional>
#include <string>

#include <spdlog/spdlog.h>

#include "harness/pg/interrupt.h"
#include "harness/sys/untrusted_text.h"
#include "harness/report/rehearsal_report.h"

namespace harness::verify {

struct VerifyOptions;

class Phases {
 public:
  Phases(report::Rehearsal& r, const std::function<void(const std::string&)>& on_start,
         const std::function<void()>& on_end)
      : r_(r), on_start_(on_start), on_end_(on_end) {}

  // Times `fn`, records the phase; `fn` returns its detail line.
  template <typename Fn>
  void Run(const std::string& name, Fn&& fn, bool status_line = true) {
    sys::ThrowIfInterrupted(name);
    spdlog::info("verify: {}...", name);
    struct StatusGuard {
      const std::function<void()>& end;
      bool on;
      ~StatusGuard() {
        if (on && end) end();
      }
    } guard{on_end_, status_line && on_start_ != nullptr};
    if (guard.on) on_start_(name);
    running_ = name;
    InterruptForTest(name);
    auto t0 = std::chrono::steady_clock::now();
    std::string detail = fn();
    sys::ThrowIfInterrupted(name);
    running_.clear();
    double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    r_.phases.push_back({name, s, true, detail});
    // A detail may name tables and columns: not the tool's own text.
    spdlog::info("verify: {}: {} ({:.3f}s)", name, sys::Escaped(detail), s);
  }
  void Fail(const std::string& name, const std::string& detail) { r_.phases.push_back({name, 0, false, detail}); }
  // The phase under way, for the report of a failure.
  std::string Running() const { return running_.empty() ? "the rehearsal" : running_; }

 private:
  // The tests' way to interrupt a given phase: with
  // HARNESS_TEST_INTERRUPT_PHASE set to a phase's name, the process sends
  // itself SIGINT (SIGTERM when HARNESS_TEST_INTERRUPT_SIGNAL=TERM) as that
  // phase starts, and waits until the handler has taken it: the phase's
  // work then runs interrupted, as it would when the signal comes midway.
  static void InterruptForTest(const std::string& phase);

  report::Rehearsal& r_;
  const std::function<void(const std::string&)>& on_start_;
  const std::function<void()>& on_end_;
  std::string running_;
};

}  // namespace harness::verify
