#include "harness/report/rehearsal_report.h"

#include <algorithm>
#include <cctype>

#include <fmt/format.h>

#include "harness/join.h"
#include "harness/sys/untrusted_text.h"

#include "harness/report/suite_report.h"

namespace harness::report {

namespace {

// Text that is not the tool's own, as a terminal shows it.
std::string Shown(const std::string& text) { return sys::Escaped(text); }


// Each step's time on the clock, then how much of it it waited for a lock
// and for whom: a wait is another session's doing, not the step's work.
std::string StepTable(const std::vector<engine::StepTiming>& steps, const std::string& title) {
  if (steps.empty()) return {};
  size_t width = 4;  // the revision column: as wide as the longest id
  for (const auto& s : steps) width = std::max(width, s.revision.size());
  std::string out = fmt::format("{:<{}} {:>10} {:>10}\n", title, width + 57, "time", "lock wait");
  for (const auto& s : steps) {
    std::string wait = s.lock_wait_known ? fmt::format("{:.3f}s", s.lock_wait_seconds)
                                         : std::string("unknown");
    std::string name = sys::ShowUntrusted(s.name, 48);
    std::string line = fmt::format("  {:>{}} {:>2}/{:<2} {:<48} {:>9.3f}s {:>10}", s.revision, width,
                                   s.index, s.count, name, s.seconds, wait);
    if (!s.waited_for.empty()) line += "  held by " + Shown(Join(s.waited_for, "; "));
    out += line + "\n";
  }
  return out;
}

nlohmann::json StepsJson(const std::vector<engine::StepTiming>& steps) {
  nlohmann::json out = nlohmann::json::array();
  for (const auto& s : steps)
    out.push_back({{"revision", s.revision},
                   {"index", s.index},
                   {"count", s.count},
                   {"name", s.name},
                   {"seconds", s.seconds},
                   // null: not watched (the time may include a wait)
                   {"lock_wait_seconds",
                    s.lock_wait_known ? nlohmann::json(s.lock_wait_seconds) : nlohmann::json()},
                   {"work_seconds", s.work_seconds()},
                   {"waited_for", s.waited_for}});
  return out;
}

}  // namespace

LockWaitSummary SummarizeLockWaits(const std::vector<engine::StepTiming>& steps) {
  LockWaitSummary w;
  for (const auto& s : steps) {
    w.seconds += s.lock_wait_seconds;
    w.unknown_steps += !s.lock_wait_known;
    for (const auto& b : s.waited_for)
      if (std::find(w.waited_for.begin(), w.waited_for.end(), b) == w.waited_for.end())
        w.waited_for.push_back(b);
    if (s.lock_wait_seconds > 0)
      w.by_step += fmt::format("{}step {}: {:.3f}s", w.by_step.empty() ? "" : ", ", s.index,
                               s.lock_wait_seconds);
  }
  return w;
}

std::string LockWaitSummary::Text() const {
  std::string out;
  if (seconds > 0)
    out = fmt::format("{:.3f}s ({}){}", seconds, by_step,
                      waited_for.empty() ? std::string()
                                         : ", for locks held by " + Join(waited_for, "; "));
  else
    out = "none";
  if (unknown_steps > 0)
    out += fmt::format("; {} step(s) not watched (their times may include a wait)", unknown_steps);
  return out;
}

std::string RehearsalText(const Rehearsal& r) {
  std::string out;
  out += r.title + "\n";
  out += fmt::format("Target:  {}\n", r.target.empty()
                                          ? "none (verify stopped before it had a database)"
                                          : Shown(r.target));
  if (!r.server_version.empty()) out += fmt::format("Server:  PostgreSQL {}\n", r.server_version);
  if (!r.shape.empty()) out += fmt::format("Schema:  {} shape ({})\n", r.shape, Shown(r.shape_detail));
  out += "Data:    " +
         (r.data_line.empty() ? std::string("not counted (verify stopped before it read the tables)")
                              : Shown(r.data_line)) +
         "\n";
  out += "\n";
  out += "Phases\n";
  for (const auto& p : r.phases)
    out += fmt::format("{} {:<46} {:>9.3f}s  {}\n", p.ok ? "✓" : "✗", Shown(p.name), p.seconds, Shown(p.detail));
  for (const auto& s : r.suites) {
    // The measurements are information, not checks.
    std::string title = s.suite == "step effects"     ? std::string("What each step did (measured on the server)")
                        : s.suite == "discarded rows" ? std::string("What the upgrade discarded")
                        : s.suite == "locks at production size"
                            ? std::string("Locks at production size (what live traffic would wait for)")
                        : s.suite == "traffic" ? std::string("Live traffic during the upgrade (--with-traffic)")
                        : s.suite == "table reads"
                            ? std::string("Table reads (each table once, again only where the server shows a change)")
                            : SuiteTitle(s.suite) + " checks";
    title[0] = static_cast<char>(std::toupper(title[0]));
    out += "\n" + title + "\n" + SuiteText(s);
  }
  out += "\n" + StepTable(r.upgrade_steps, "Upgrade steps");
  out += StepTable(r.downgrade_steps, "Rollback steps");
  if (r.upgrade_seconds > 0)
    out += fmt::format("\nBudget: upgrade {:.3f}s of {:.0f}s (FR-031), margin {:.1f}%\n",
                       r.upgrade_seconds, kBudgetSeconds,
                       100.0 * (kBudgetSeconds - r.upgrade_seconds) / kBudgetSeconds);
  if (!r.upgrade_steps.empty())
    out += fmt::format("Lock waits during the upgrade: {}; the forecast counts work time only\n",
                       SummarizeLockWaits(r.upgrade_steps).Text());
  if (r.forecast.rows > 0)
    out += fmt::format("Forecast: upgrade of {} {} about {:.3f}s ({} the {:.0f}s budget); {}; per step: {}\n",
                       r.forecast.rows, r.forecast.unit, r.forecast.seconds,
                       r.forecast.seconds < kBudgetSeconds ? "within" : "OVER", kBudgetSeconds,
                       Shown(r.forecast.basis), Shown(r.forecast.fit));
  if (r.longest_hold.seconds > 0)
    out += fmt::format("Longest lock hold: {} on {} about {:.3f}s at {} rows ({:.3f}s here; {}), taken by {}; {} "
                       "wait{}\n",
                       r.longest_hold.mode, Shown(r.longest_hold.table), r.longest_hold.seconds, r.longest_hold.rows,
                       r.longest_hold.measured, Shown(r.longest_hold.basis), Shown(r.longest_hold.taken_by),
                       r.longest_hold.blocks_reads ? "reads and writes" : "writes",
                       r.max_lock_hold > 0 ? fmt::format(" (--max-lock-hold {}s)", r.max_lock_hold) : "");
  if (!r.notes.empty()) {
    out += "\nNotes\n";
    for (const auto& n : r.notes) out += "• " + Shown(n) + "\n";
  }
  out += "\n" + Shown(r.verdict) + "\n";
  return out;
}

nlohmann::json RehearsalJson(const Rehearsal& r) {
  nlohmann::json phases = nlohmann::json::array();
  for (const auto& p : r.phases)
    phases.push_back({{"name", p.name}, {"seconds", p.seconds}, {"ok", p.ok}, {"detail", p.detail}});
  nlohmann::json suites = nlohmann::json::array();
  for (const auto& s : r.suites) suites.push_back(SuiteJson(s));
  nlohmann::json counts = nlohmann::json::object();
  for (const auto& [what, n] : r.counts) counts[what] = n;
  return {{"title", r.title},
          {"target", r.target},
          {"server_version", r.server_version},
          {"shape", r.shape.empty() ? nlohmann::json() : nlohmann::json(r.shape)},
          {"counts", counts},
          {"data", r.data_line},
          {"phases", phases},
          {"suites", suites},
          {"upgrade",
           {{"seconds", r.upgrade_seconds},
            {"lock_wait_seconds", SummarizeLockWaits(r.upgrade_steps).seconds},
            {"steps", StepsJson(r.upgrade_steps)}}},
          {"downgrade", {{"seconds", r.downgrade_seconds}, {"steps", StepsJson(r.downgrade_steps)}}},
          {"budget_seconds", kBudgetSeconds},
          {"forecast",
           r.forecast.rows > 0
               ? nlohmann::json{{"rows", r.forecast.rows},
                                {"unit", r.forecast.unit},
                                {"upgrade_seconds", r.forecast.seconds},
                                {"basis", r.forecast.basis},
                                {"fit", r.forecast.fit}}
               : nlohmann::json()},
          {"longest_lock_hold",
           r.longest_hold.seconds > 0
               ? nlohmann::json{{"table", r.longest_hold.table},
                                {"mode", r.longest_hold.mode},
                                {"taken_by", r.longest_hold.taken_by},
                                {"rows", r.longest_hold.rows},
                                {"seconds", r.longest_hold.seconds},
                                {"measured_seconds", r.longest_hold.measured},
                                {"blocks_reads", r.longest_hold.blocks_reads},
                                {"basis", r.longest_hold.basis}}
               : nlohmann::json()},
          {"max_lock_hold_seconds", r.max_lock_hold > 0 ? nlohmann::json(r.max_lock_hold) : nlohmann::json()},
          {"notes", r.notes},
          {"statements",
           [&] {
             nlohmann::json out = nlohmann::json::object();
             for (const auto& [step, list] : r.statements) {
               nlohmann::json one = nlohmann::json::array();
               for (const auto& st : list) one.push_back({{"sql", st.sql}, {"seconds", st.seconds}});
               out[step] = one;
             }
             return out;
           }()},
          {"ready", r.ready},
          {"exit_code", r.exit_code},
          {"verdict", r.verdict}};
}

std::string RehearsalJUnit(const Rehearsal& r) {
  std::vector<JUnitCase> cases;
  for (const auto& p : r.phases) {
    JUnitCase c;
    c.classname = "migration-harness.verify.phase";
    c.name = p.name;
    c.seconds = p.seconds;
    c.outcome = p.ok ? JUnitCase::Outcome::kPass : JUnitCase::Outcome::kFail;
    c.message = p.detail;
    cases.push_back(c);
  }
  for (const auto& s : r.suites)
    for (auto& c : JUnitCases(s)) cases.push_back(c);
  return JUnitXml("migration-harness verify", cases);
}

}  // namespace harness::report
