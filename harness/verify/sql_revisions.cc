#include "harness/verify/sql_revisions.h"

#include <algorithm>
#include <chrono>
#include <cmath>

#include <fmt/format.h>

#include "harness/inspect/step_probe.h"

namespace harness::verify {

namespace {
using Clock = std::chrono::steady_clock;
}  // namespace

SqlRevisions::SqlRevisions(const engine::RevisionGraph& graph, engine::MigratorOptions options,
                           std::string where)
    : graph_(graph), options_(std::move(options)), where_(std::move(where)) {}

std::string SqlRevisions::Describe() const { return "the SQL revision files of " + where_; }

std::optional<engine::Position> SqlRevisions::Current(pg::Connection& conn) {
  return engine::Migrator(conn, graph_, options_).CurrentIfVersioned();
}

void SqlRevisions::Stamp(pg::Connection& conn, engine::Position p) {
  engine::MigratorOptions quiet = options_;
  quiet.log_steps = false;
  engine::Migrator(conn, graph_, quiet).Stamp(p == 0 ? "base" : graph_.Name(p));
}

DeployFacts SqlRevisions::Deploy() const {
  DeployFacts d;
  d.one_transaction = true;
  d.online = options_.online;
  // As the server shows it: "10s", "1500ms", "0".
  const long long ms = std::llround(options_.lock_timeout_seconds * 1000);
  d.lock_timeout = ms <= 0 ? std::string("0") : ms % 1000 == 0 ? fmt::format("{}s", ms / 1000) : fmt::format("{}ms", ms);
  d.lock_timeout_from = "migration-harness upgrade --lock-timeout";
  return d;
}

std::string SqlRevisions::StepSql(const engine::StepTiming& st) const {
  for (engine::Position p = 1; p <= graph_.head_position(); ++p) {
    const engine::MigrationFile& f = graph_.at(p);
    if (f.revision != st.revision) continue;
    const auto& steps = st.direction == engine::Direction::kUpgrade ? f.upgrade : f.downgrade;
    if (st.file_step < steps.size()) return steps[st.file_step].sql;
  }
  return {};
}

RevisionRun SqlRevisions::Run(pg::Connection& conn, engine::Direction direction, engine::Position to,
                              RunMode mode) {
  engine::MigratorOptions mo = options_;
  RevisionRun run;
  const std::string target = to == 0 ? "base" : graph_.Name(to);
  if (mode != RunMode::kMeasured) mo.log_steps = false;
  if (mode == RunMode::kQuiet) {
    engine::Migrator m(conn, graph_, mo);
    run.report = direction == engine::Direction::kUpgrade ? m.Upgrade(target) : m.Downgrade(target);
    return run;
  }
  // Each step between two probes in the migration's own transaction; the
  // probes' time is left out of the run's.
  inspect::ServerProbe before;
  double measuring = 0;
  auto timed = [&](auto&& fn) {
    auto t0 = Clock::now();
    fn();
    measuring += std::chrono::duration<double>(Clock::now() - t0).count();
  };
  const auto user_before = options_.before_step;
  const auto user_after = options_.after_step;
  // The counts hold all of a step's writes only with track_counts on, and
  // with no deferrable constraint trigger, which could write at the commit.
  const std::string countable =
      "SELECT pg_catalog.current_setting('track_counts')::pg_catalog.bool AND NOT EXISTS (SELECT FROM "
      "pg_catalog.pg_trigger g WHERE g.tgdeferrable AND NOT g.tgisinternal)";
  bool counted_before = false;
  mo.before_step = [&](const engine::StepTiming& st, pqxx::transaction_base& tx) {
    if (user_before) user_before(st, tx);
    timed([&] {
      before = inspect::ReadProbe(tx, inspect::ProbeScope::kThisTransaction);
      counted_before = tx.exec1(countable)[0].as<bool>();
    });
  };
  mo.after_step = [&](const engine::StepTiming& st, pqxx::transaction_base& tx) {
    timed([&] {
      StepEffect e;
      e.step = st;
      e.sql = StepSql(st);
      e.activity = inspect::Compare(before, inspect::ReadProbe(tx, inspect::ProbeScope::kThisTransaction));
      // An online step runs outside any transaction: its counters are its
      // statements' own, not all of its writes.
      e.writes_known = !st.online && counted_before && tx.exec1(countable)[0].as<bool>();
      run.effects.push_back(std::move(e));
    });
    if (user_after) user_after(st, tx);
  };
  engine::Migrator m(conn, graph_, mo);
  run.report = direction == engine::Direction::kUpgrade ? m.Upgrade(target) : m.Downgrade(target);
  run.report.seconds = std::max(0.0, run.report.seconds - measuring);
  // A lock is held from the step that took it to the commit of its
  // transaction (online: of its phase); a step's time is the engine's (the
  // commit's included for the one that commits).
  for (size_t i = 0; i < run.effects.size(); ++i) {
    run.effects[i].step.seconds = i < run.report.steps.size() ? run.report.steps[i].seconds : 0;
    // From the grant: the step's own wait for it does not count.
    double held = 0;
    for (size_t j = i; j < run.report.steps.size() && run.report.steps[j].transaction == run.report.steps[i].transaction;
         ++j)
      held += j == i ? run.report.steps[j].work_seconds() : run.report.steps[j].seconds;
    run.effects[i].lock_held = held;
  }
  return run;
}

}  // namespace harness::verify
