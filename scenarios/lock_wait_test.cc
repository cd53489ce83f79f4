// Step times separate waiting for a lock from work: a session (or an
// autovacuum worker) holding a lock that 002's step 1 needs shows as that
// step's lock wait, with the holder named, and not as work; a run nobody
// holds up reports no wait. Text read from other sessions is made safe to
// show.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <iterator>
#include <fstream>
#include <string>
#include <thread>

#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <pqxx/pqxx>

#include "harness/codesearch/generator.h"
#include "harness/codesearch/shapes.h"
#include "harness/engine/migrator.h"
#include "harness/error.h"
#include "harness/pg/cluster.h"
#include "harness/pg/connection.h"
#include "harness/pg/disposable_database.h"
#include "harness/sys/untrusted_text.h"
#include "scenarios/support/test_env.h"

namespace harness::testing {
namespace {

using namespace std::chrono_literals;

// Waiters for a lock on `table` in the database at `url` (databases cloned
// from one template share table OIDs: only this database's count).
int LockWaiters(const pg::Url& url, const std::string& table) {
  pg::Connection conn(url);
  pqxx::read_transaction tx(conn.raw());
  return tx.exec_params1("SELECT count(*) FROM pg_catalog.pg_locks WHERE relation = "
                         "pg_catalog.to_regclass($1) AND NOT granted AND database = "
                         "(SELECT oid FROM pg_catalog.pg_database WHERE datname = "
                         "pg_catalog.current_database())",
                         table)[0]
      .as<int>();
}

// Another session takes `lock` in a transaction, keeps it until someone has
// waited for it `hold` long (from when the wait was first seen) or until
// Release(), then lets go. Joined at scope end.
class LockHolder {
 public:
  LockHolder(const pg::Url& url, std::string lock, std::chrono::milliseconds hold)
      : thread_([this, url, lock = std::move(lock), hold] { Run(url, lock, hold); }) {
    WaitUntil([&] { return locked_.load(); }, 60s);
  }
  ~LockHolder() {
    Release();
    thread_.join();
  }
  void Release() { released_ = true; }
  LockHolder(const LockHolder&) = delete;
  LockHolder& operator=(const LockHolder&) = delete;
  int pid() const { return pid_; }
  bool saw_waiter() const { return saw_waiter_; }
  const std::string& error() const { return error_; }
  static constexpr const char* kApplicationName = "lock-wait-test holder";

 private:
  void Run(const pg::Url& url, const std::string& lock, std::chrono::milliseconds hold) {
    try {
      pg::Connection conn(url, kApplicationName);
      pid_ = conn.backend_pid();
      pqxx::work tx(conn.raw());
      tx.exec(lock);
      locked_ = true;
      saw_waiter_ = WaitUntil([&] { return LockWaiters(url, "repositories") > 0; }, 60s);
      // The wait being measured: a hold, not a readiness check.
      WaitUntil([&] { return released_.load(); }, hold);
      tx.abort();
    } catch (const std::exception& e) {
      error_ = e.what();
      locked_ = true;
    }
  }

  std::atomic<bool> locked_{false};
  std::atomic<bool> released_{false};
  int pid_ = 0;
  bool saw_waiter_ = false;
  std::string error_;
  std::thread thread_;  // last: started once the members above exist
};

// Conflicts with step 1's LOCK TABLE ... IN ACCESS EXCLUSIVE MODE, and with
// nothing a reader of the tables takes (the check suites, verify's baseline).
constexpr const char* kAccessShare = "LOCK TABLE repositories IN ACCESS SHARE MODE";
constexpr auto kHold = 500ms;

TEST(LockWait, AStepHeldUpByASessionReportsTheWaitApartFromItsWork) {
  TestDatabase db("005");
  engine::RunReport report;
  std::string log, upgrade_error;
  int holder_pid = 0;
  {
    LockHolder holder(db.url(), kAccessShare, kHold);
    holder_pid = holder.pid();
    LogCapture capture;
    try {
      pg::Connection conn(db.url());
      report = engine::Migrator(conn, Chain()).Upgrade("head");
    } catch (const std::exception& e) {
      upgrade_error = e.what();
    }
    log = capture.Text();
    // ~LockHolder joins here
    ASSERT_EQ(holder.error(), "");
    ASSERT_TRUE(holder.saw_waiter()) << "the upgrade never waited for the held lock";
  }
  ASSERT_EQ(upgrade_error, "");
  ASSERT_EQ(report.steps.size(), 10u);
  const engine::StepTiming& step1 = report.steps[0];
  EXPECT_EQ(step1.name, "Checking prerequisites");
  EXPECT_TRUE(step1.lock_wait_known);
  // The holder let go 0.5 s after it first saw the wait; sampled every
  // 10 ms on a busy 2-core machine: at least 0.3 s, and never more than
  // the step took.
  EXPECT_GE(step1.lock_wait_seconds, 0.3);
  EXPECT_LE(step1.lock_wait_seconds, step1.seconds);
  EXPECT_LT(step1.work_seconds(), step1.seconds);
  ASSERT_EQ(step1.waited_for.size(), 1u) << JoinLines(step1.waited_for);
  EXPECT_CONTAINS(step1.waited_for[0], fmt::format("client backend pid {} (", holder_pid));
  EXPECT_CONTAINS(step1.waited_for[0], LockHolder::kApplicationName);
  EXPECT_CONTAINS(step1.waited_for[0], "idle in transaction");
  EXPECT_CONTAINS(step1.waited_for[0], kAccessShare);
  // Once step 1 has both tables, nothing else waits.
  for (size_t i = 1; i < report.steps.size(); ++i) {
    EXPECT_TRUE(report.steps[i].lock_wait_known) << report.steps[i].name;
    EXPECT_EQ(report.steps[i].lock_wait_seconds, 0.0) << report.steps[i].name;
  }
  // The log says it on step 1's line, the rest of the line as before.
  EXPECT_CONTAINS(log, fmt::format("[migration.002] Step 1/10: Complete ({:.3f}s), waited {:.3f}s "
                                   "for a lock held by client backend pid {} (",
                                   step1.seconds, step1.lock_wait_seconds, holder_pid));
  EXPECT_CONTAINS(log, "s of it waiting for locks)");
  EXPECT_EQ(log.find("Lock waits are not measured"), std::string::npos) << log;
}

TEST(LockWait, ARunNobodyHoldsUpReportsNoWait) {
  TestDatabase db("005");
  LogCapture capture;
  pg::Connection conn(db.url());
  engine::Migrator m(conn, Chain());
  for (const auto& report : {m.Upgrade("head"), m.Downgrade("005")}) {
    ASSERT_FALSE(report.steps.empty());
    for (const auto& s : report.steps) {
      EXPECT_TRUE(s.lock_wait_known) << s.name;
      EXPECT_EQ(s.lock_wait_seconds, 0.0) << s.name;
      EXPECT_TRUE(s.waited_for.empty()) << s.name << ": " << JoinLines(s.waited_for);
      EXPECT_EQ(s.work_seconds(), s.seconds) << s.name;
    }
  }
  EXPECT_EQ(capture.Text().find("waited"), std::string::npos) << capture.Text();
  EXPECT_EQ(capture.Text().find("waiting for locks"), std::string::npos) << capture.Text();
}

// Not watched is not 0: without the monitor every step says unknown.
TEST(LockWait, AnUnwatchedRunSaysItsWaitsAreUnknown) {
  TestDatabase db("005");
  pg::Connection conn(db.url());
  engine::MigratorOptions o;
  o.watch_lock_waits = false;
  auto report = engine::Migrator(conn, Chain(), o).Upgrade("head");
  ASSERT_FALSE(report.steps.empty());
  for (const auto& s : report.steps) EXPECT_FALSE(s.lock_wait_known) << s.name;
}

// The monitor cannot connect (here: the database stops accepting new
// connections once the migration's own is made, which binds superusers
// too): the migration goes through, the log says once that waits are not
// measured, and every step's wait is unknown.
TEST(LockWait, AMonitorThatCannotConnectNeverFailsTheRun) {
  TestDatabase db("005");
  auto allow = [&](bool on) {
    pg::Connection admin(TestServer().AdminUrl());
    pqxx::nontransaction tx(admin.raw());
    tx.exec("ALTER DATABASE " + tx.quote_name(db.name()) + " ALLOW_CONNECTIONS " +
            (on ? "true" : "false"));
  };
  LogCapture capture;
  engine::RunReport report;
  {
    pg::Connection conn(db.url());
    allow(false);
    try {
      report = engine::Migrator(conn, Chain()).Upgrade("head");
    } catch (...) {
      allow(true);
      throw;
    }
    allow(true);
  }
  ASSERT_EQ(report.steps.size(), 10u);
  for (const auto& s : report.steps) EXPECT_FALSE(s.lock_wait_known) << s.name;
  EXPECT_EQ(db.Revision(), "002");
  const std::string log = capture.Text();
  const auto first = log.find("Lock waits are not measured (no second connection: ");
  ASSERT_NE(first, std::string::npos) << log;
  EXPECT_EQ(log.find("Lock waits are not measured", first + 1), std::string::npos) << log;
}

int ThreadsOfThisProcess() {
  return static_cast<int>(std::distance(std::filesystem::directory_iterator("/proc/self/task"),
                                        std::filesystem::directory_iterator()));
}

// A step that gives up on its lock (lock_timeout) ends the run with an
// error: the monitor's thread is joined and its session closed with it.
TEST(LockWait, TheMonitorEndsWithARunThatFails) {
  TestDatabase db("005");
  const DatabaseState before = CaptureState(db);
  const int threads = ThreadsOfThisProcess();
  std::string error;
  {
    LockHolder holder(db.url(), kAccessShare, 60s);
    pg::Connection conn(db.url());
    engine::MigratorOptions o;
    o.lock_timeout_seconds = 0.3;
    try {
      engine::Migrator(conn, Chain(), o).Upgrade("head");
    } catch (const Error& e) {
      error = e.what();
    }
    EXPECT_EQ(ThreadsOfThisProcess(), threads + 1) << "the holder's thread, and no monitor";
    holder.Release();
  }
  EXPECT_CONTAINS(error, "a lock was not granted within --lock-timeout 0.3s");
  ExpectUnchanged(db, before);
  EXPECT_EQ(ThreadsOfThisProcess(), threads);
  // Its backend ends a moment after the connection is closed.
  EXPECT_TRUE(WaitUntil(
      [&] {
        return db.Scalar("SELECT count(*) FROM pg_stat_activity WHERE datname = "
                         "current_database() AND application_name = "
                         "'migration-harness lock monitor'") == "0";
      },
      10s));
  EXPECT_EQ(db.Revision(), "005");
}

// verify in place, held up the same way: the step table, the JSON report
// and the summary line say so, and the forecast leaves the wait out.
TEST(LockWait, VerifyReportsTheWaitAndForecastsWorkOnly) {
  TestDatabase db("005");
  const std::string json_path =
      ::testing::TempDir() + pg::UniqueDatabaseName("lockwait") + ".json";
  sys::ProcessResult r;
  int holder_pid = 0;
  {
    LockHolder holder(db.url(), kAccessShare, kHold);
    holder_pid = holder.pid();
    r = RunCli({"verify", "--in-place", "--report-json", json_path}, db.url().text());
    ASSERT_EQ(holder.error(), "");
  }
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  std::ifstream in(json_path);
  nlohmann::json report = nlohmann::json::parse(in);
  std::remove(json_path.c_str());
  const auto& step1 = report["upgrade"]["steps"][0];
  EXPECT_GE(step1["lock_wait_seconds"].get<double>(), 0.3) << step1.dump();
  EXPECT_LT(step1["work_seconds"].get<double>(), step1["seconds"].get<double>());
  ASSERT_EQ(step1["waited_for"].size(), 1u) << step1.dump();
  EXPECT_CONTAINS(step1["waited_for"][0].get<std::string>(),
                  fmt::format("client backend pid {}", holder_pid));
  EXPECT_GE(report["upgrade"]["lock_wait_seconds"].get<double>(), 0.3);
  for (const auto& s : report["upgrade"]["steps"]) {
    ASSERT_TRUE(s.contains("lock_wait_seconds")) << s.dump();
    ASSERT_TRUE(s["waited_for"].is_array()) << s.dump();
  }
  EXPECT_CONTAINS(report["forecast"]["basis"].get<std::string>(),
                  "work time, lock waits excluded");
  EXPECT_CONTAINS(r.out, "Upgrade steps");
  EXPECT_CONTAINS(r.out, "lock wait");
  EXPECT_CONTAINS(r.out, fmt::format("held by client backend pid {}", holder_pid));
  EXPECT_CONTAINS(r.out, "Lock waits during the upgrade: ");
  EXPECT_CONTAINS(r.out, "(step 1: ");
  EXPECT_CONTAINS(r.out, "the forecast counts work time only");
}

// --lock-retries: a lock timeout runs the whole transaction again after a
// pause, each attempt logged; the holder lets go 1 s after the first wait.
TEST(LockRetries, ALockTimeoutIsRetriedFromTheStartUntilTheLockIsFree) {
  TestDatabase db("005");
  sys::ProcessResult r;
  {
    LockHolder holder(db.url(), kAccessShare, 1000ms);
    r = RunCli({"--lock-timeout", "0.3", "upgrade", "head", "--lock-retries", "4"}, db.url().text());
    ASSERT_EQ(holder.error(), "");
  }
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_CONTAINS(r.err, "attempt 1 of 5: ");
  EXPECT_CONTAINS(r.err, "a lock was not granted within --lock-timeout 0.3s");
  EXPECT_CONTAINS(r.err, "; nothing was changed, trying again from the start in 1.0s");
  EXPECT_CONTAINS(r.out, "Upgraded 005 -> 002");
  EXPECT_EQ(db.Revision(), "002");
}

// Retries spent: exit 3 naming the attempts, and nothing changed.
TEST(LockRetries, WhenEveryAttemptTimesOutNothingIsChanged) {
  TestDatabase db("005");
  const DatabaseState before = CaptureState(db);
  sys::ProcessResult r;
  {
    LockHolder holder(db.url(), kAccessShare, 60s);
    r = RunCli({"--lock-timeout", "0.2", "upgrade", "head", "--lock-retries", "1"}, db.url().text());
    holder.Release();
  }
  EXPECT_EQ(r.exit_code, 3) << r.err;
  EXPECT_CONTAINS(r.err, "attempt 1 of 2: ");
  EXPECT_CONTAINS(r.err, "(attempt 2 of 2)");
  EXPECT_CONTAINS(r.err, "hint: nothing was changed; retry when those sessions are done (or stop them), or raise "
                         "--lock-timeout or --lock-retries");
  ExpectUnchanged(db, before);
}

// A real autovacuum, made slow and eager on code_chunks, on a server of the
// test's own (autovacuum_naptime = 1 s there, so nothing else is touched
// and nothing needs restoring): `check pre` names it, step 1 waits for it
// until deadlock_timeout cancels it, and the wait names the worker. The same
// upgrade on a database vacuumed beforehand (the README's step) waits for
// nothing. Both step-1 waits are printed.
TEST(SlowAutovacuum, StepOneWaitsForItAndCheckPreSaysSo) {
  pg::ClusterOptions options;
  options.settings["autovacuum_naptime"] = "1";
  auto cluster = pg::EmbeddedCluster::Start(options);
  auto prepare = [&](pg::DisposableDatabase& db) {
    codesearch::BuildAt005(db.url(), Shape::kQuickstart, Chain());
    pg::Connection conn(db.url());
    codesearch::GeneratorOptions go;
    go.repositories = 20;
    go.chunks_per_repo = 1000;
    codesearch::Generate(conn, go);
  };
  auto step1 = [&](const pg::Url& url, std::string* log) {
    LogCapture capture;
    pg::Connection conn(url);
    auto report = engine::Migrator(conn, Chain()).Upgrade("head");
    if (log) *log = capture.Text();
    return report.steps.at(0);
  };

  // Without: vacuumed before the window, as the README says.
  pg::DisposableDatabase quiet(cluster->AdminUrl(), "template0", "mh_autovacuum_off");
  prepare(quiet);
  {
    pg::Connection conn(quiet.url());
    pqxx::nontransaction tx(conn.raw());
    tx.exec("VACUUM ANALYZE repositories, code_chunks");
  }
  auto pre_quiet = RunCli({"check", "pre"}, quiet.url().text());
  EXPECT_EQ(pre_quiet.exit_code, 0) << pre_quiet.out << pre_quiet.err;
  EXPECT_EQ(pre_quiet.out.find("Autovacuum"), std::string::npos) << pre_quiet.out;
  engine::StepTiming without = step1(quiet.url(), nullptr);

  // With: every chunk updated (no page is all-visible), then a vacuum that
  // wants to start at once and sleeps 100 ms for every page it reads.
  pg::DisposableDatabase busy(cluster->AdminUrl(), "template0", "mh_autovacuum_on");
  prepare(busy);
  {
    pg::Connection conn(busy.url());
    pqxx::nontransaction tx(conn.raw());
    tx.exec("UPDATE code_chunks SET end_line = end_line");
    tx.exec("ALTER TABLE code_chunks SET (autovacuum_vacuum_threshold = 1, "
            "autovacuum_vacuum_scale_factor = 0, autovacuum_vacuum_insert_threshold = 1, "
            "autovacuum_vacuum_insert_scale_factor = 0, autovacuum_vacuum_cost_delay = 100, "
            "autovacuum_vacuum_cost_limit = 1)");
  }
  std::string worker;
  ASSERT_TRUE(WaitUntil(
      [&] {
        pg::Connection conn(busy.url());
        pqxx::read_transaction tx(conn.raw());
        auto r = tx.exec("SELECT p.pid FROM pg_stat_progress_vacuum p JOIN pg_stat_activity a "
                         "USING (pid) WHERE a.backend_type = 'autovacuum worker' AND p.relid = "
                         "'code_chunks'::regclass AND p.datname = current_database()");
        if (r.empty()) return false;
        worker = r[0][0].as<std::string>();
        return true;
      },
      120s))
      << "no autovacuum of code_chunks started";

  auto pre = RunCli({"check", "pre"}, busy.url().text());
  EXPECT_EQ(pre.exit_code, 0) << pre.out << pre.err;
  EXPECT_CONTAINS(pre.out, "Autovacuum is at work on a table 002 locks: vacuuming code_chunks (pid " +
                               worker + ", phase ");
  if (auto at = pre.out.find("Autovacuum is at work"); at != std::string::npos)
    std::printf("check pre: %s\n", pre.out.substr(at, pre.out.find('\n', at) - at).c_str());
  EXPECT_CONTAINS(pre.out, "until deadlock_timeout (1s), after which PostgreSQL cancels it");
  EXPECT_CONTAINS(pre.out, "run `VACUUM ANALYZE repositories, code_chunks;` before the window");
  // An info line, not a check: the same count passes as on the quiet database.
  EXPECT_CONTAINS(pre.out, "All pre-migration checks passed (");
  EXPECT_EQ(pre.out.substr(pre.out.find("All pre-migration checks passed (")),
            pre_quiet.out.substr(pre_quiet.out.find("All pre-migration checks passed (")));

  std::string log;
  engine::StepTiming with = step1(busy.url(), &log);
  std::printf("step 1 of 002: %.3f s with %.3f s of lock wait while autovacuum ran on code_chunks "
              "(work %.3f s); %.3f s with %.3f s of lock wait after VACUUM ANALYZE\n",
              with.seconds, with.lock_wait_seconds, with.work_seconds(), without.seconds,
              without.lock_wait_seconds);
  ::testing::Test::RecordProperty("step1_wait_with_autovacuum", std::to_string(with.lock_wait_seconds));
  ::testing::Test::RecordProperty("step1_wait_without_autovacuum",
                                  std::to_string(without.lock_wait_seconds));

  EXPECT_TRUE(without.lock_wait_known);
  EXPECT_EQ(without.lock_wait_seconds, 0.0);
  EXPECT_TRUE(with.lock_wait_known);
  // Cancelled after deadlock_timeout (1 s); sampled, so a little less is possible.
  EXPECT_GE(with.lock_wait_seconds, 0.8);
  ASSERT_FALSE(with.waited_for.empty());
  EXPECT_CONTAINS(with.waited_for[0], "autovacuum worker pid " + worker);
  EXPECT_CONTAINS(with.waited_for[0], ": autovacuum: VACUUM");  // "VACUUM ANALYZE", maybe
  EXPECT_CONTAINS(with.waited_for[0], "public.code_chunks");
  EXPECT_CONTAINS(log, "Step 1/10: Complete (");
  EXPECT_CONTAINS(log, "for a lock held by autovacuum worker pid " + worker);
  if (auto at = log.find("Step 1/10: Complete ("); at != std::string::npos)
    std::printf("log: %s\n", log.substr(at, log.find('\n', at) - at).c_str());
}

}  // namespace
}  // namespace harness::testing
