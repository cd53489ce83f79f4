// All-or-nothing under faults, safe under concurrent runners: a fault after
// any step of any revision (of 002 on both schema shapes) leaves the
// database exactly as it was, and two or four runners at once apply 002
// exactly once.
#include <gtest/gtest.h>

#include <chrono>
#include <memory>
#include <optional>

#include <pqxx/pqxx>

#include "harness/codesearch/generator.h"
#include "harness/codesearch/quickstart_sample.h"
#include "harness/engine/migrator.h"
#include "harness/inspect/catalog.h"
#include "harness/pg/connection.h"
#include "scenarios/support/test_env.h"

namespace harness::testing {
namespace {

struct FaultPoint {
  Shape shape;
  std::string revision;
  engine::Direction direction;
  int step;  // fault right after this step
};

std::string Name(const FaultPoint& f) {
  return ShapeTestName({f.shape, 0}) +
         (f.direction == engine::Direction::kUpgrade ? "_Up_" : "_Down_") + f.revision +
         "_AfterStep" + std::to_string(f.step);
}

void PrintTo(const FaultPoint& f, std::ostream* os) { *os << Name(f); }

// Every step of every revision of the quickstart's chain; the production
// shape starts at 005, so on it the steps of the revisions after 005 (002).
std::vector<FaultPoint> AllFaultPoints() {
  const engine::Position p005 = *Chain().Find("005");
  std::vector<FaultPoint> out;
  for (Shape shape : {Shape::kQuickstart, Shape::kProduction}) {
    for (const auto& f : Chain().chain()) {
      if (shape == Shape::kProduction && *Chain().Find(f.revision) <= p005) continue;
      for (size_t i = 1; i <= f.UpgradeStepsInOneTransaction(); ++i)
        out.push_back({shape, f.revision, engine::Direction::kUpgrade, static_cast<int>(i)});
      for (size_t i = 1; i <= f.downgrade.size(); ++i)
        out.push_back({shape, f.revision, engine::Direction::kDowngrade, static_cast<int>(i)});
    }
  }
  return out;
}

struct Injected : std::runtime_error {
  using std::runtime_error::runtime_error;
};

class FaultAtEveryStep : public ::testing::TestWithParam<FaultPoint> {};

TEST_P(FaultAtEveryStep, LeavesTheDatabaseExactlyAsItWas) {
  const FaultPoint& f = GetParam();
  engine::Position p = *Chain().Find(f.revision);
  const bool up = f.direction == engine::Direction::kUpgrade;
  const std::string below = p == 1 ? "base" : Chain().at(p - 1).revision;
  const std::string start = up ? below : f.revision;
  const std::string target = up ? f.revision : below;
  // Start one revision below (upgrade) or at the revision (downgrade), with
  // rows: on the quickstart's chain its sample wherever code_chunks exists;
  // on the production shape 10 x 10 generated rows in every table, task
  // links included. For 002's downgrade they are written at 005 and carried
  // to 002, which needs a project_id.
  TestDatabase db(start == "002" ? "005" : start, f.shape);
  if (f.shape == Shape::kProduction) {
    pg::Connection conn(db.url());
    codesearch::GeneratorOptions go;
    go.repositories = 10;
    go.chunks_per_repo = 10;
    codesearch::Generate(conn, go);
  } else if (db.Scalar("SELECT to_regclass('code_chunks') IS NOT NULL") == "t") {
    db.Exec(codesearch::kQuickstartSampleSql);
  }
  if (start == "002") MigrateTo(db.url(), "002");
  const DatabaseState before = CaptureState(db);
  engine::MigratorOptions o;
  o.after_step = [&](const engine::StepTiming& s, pqxx::transaction_base&) {
    if (s.revision == f.revision && s.direction == f.direction && s.index == f.step)
      throw Injected("fault after step " + std::to_string(s.index));
  };
  {
    pg::Connection conn(db.url());
    engine::Migrator m(conn, Chain(), o);
    EXPECT_THROW(up ? m.Upgrade(target) : m.Downgrade(target), Injected);
  }
  ExpectUnchanged(db, before);
  // The same run without the fault then succeeds.
  MigrateTo(db.url(), target);
  EXPECT_EQ(db.Revision(), Chain().Name(Chain().ResolveRevision(target)));
}

// The default run (ctest stays under a minute): every step of 002 on both
// shapes. The steps of the earlier revisions (the same engine, one
// transaction per run) run under the `slow` label (-DHARNESS_SLOW_TESTS=ON).
std::vector<FaultPoint> FaultPoints(bool default_run) {
  std::vector<FaultPoint> out;
  for (const auto& f : AllFaultPoints())
    if ((f.revision == Chain().head().revision) == default_run) out.push_back(f);
  return out;
}

INSTANTIATE_TEST_SUITE_P(Chain, FaultAtEveryStep, ::testing::ValuesIn(FaultPoints(true)),
                         [](const auto& p) { return Name(p.param); });
INSTANTIATE_TEST_SUITE_P(SlowChain, FaultAtEveryStep, ::testing::ValuesIn(FaultPoints(false)),
                         [](const auto& p) { return Name(p.param); });

// Stairway: for every revision, up, down one, up again gives the same catalog.
class Stairway : public ::testing::TestWithParam<std::string> {};

TEST_P(Stairway, UpDownUpIsExact) {
  engine::Position p = *Chain().Find(GetParam());
  TestDatabase db(p == 1 ? "base" : Chain().at(p - 1).revision);
  MigrateTo(db.url(), GetParam());
  auto first = db.Snapshot();
  MigrateTo(db.url(), p == 1 ? "base" : Chain().at(p - 1).revision);
  MigrateTo(db.url(), GetParam());
  auto diff = inspect::Diff(first, db.Snapshot());
  EXPECT_TRUE(diff.empty()) << JoinLines(diff);
}

std::vector<std::string> EveryRevision() {
  std::vector<std::string> out;
  for (engine::Position p = 1; p <= Chain().head_position(); ++p) out.push_back(Chain().at(p).revision);
  return out;
}

INSTANTIATE_TEST_SUITE_P(EveryRevision, Stairway, ::testing::ValuesIn(EveryRevision()),
                         [](const auto& p) { return "Revision" + p.param; });

// Two and four runners of `upgrade head` at once: exactly one applies 002.
// The test holds the migrator's advisory lock while it starts them and lets
// go only once all N are queued on it, so they really compete (started one
// after another, they would each find the lock free). A --no-wait runner
// started meanwhile fails at once instead of queuing.
class ConcurrentRunners : public ::testing::TestWithParam<int> {};

// Sessions of this database waiting (not granted) for the migration lock.
std::string MigrationLockWaiters(const TestDatabase& db) {
  const unsigned long long key = static_cast<unsigned long long>(engine::kMigrationLockKey);
  // A bigint advisory key shows as classid (high 32 bits), objid (low 32
  // bits), objsubid 1.
  return db.Scalar("SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
                   "WHERE l.locktype = 'advisory' AND NOT l.granted "
                   "AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database()) "
                   "AND l.classid = " + std::to_string(key >> 32) + "::oid AND l.objid = " +
                   std::to_string(key & 0xffffffffULL) + "::oid AND l.objsubid = 1 "
                   "AND a.application_name = 'migration-harness'");
}

TEST_P(ConcurrentRunners, ApplyExactlyOnce) {
  const int n = GetParam();
  TestDatabase db("005");
  db.Exec(codesearch::kQuickstartSampleSql);
  ASSERT_EQ(MigrationLockWaiters(db), "0");
  const DatabaseState before = CaptureState(db);

  pg::Connection holder(db.url(), "reliability_test lock holder");
  pqxx::work hold(holder.raw());
  hold.exec("SELECT pg_advisory_xact_lock(" + std::to_string(engine::kMigrationLockKey) + ")");

  std::vector<std::unique_ptr<BackgroundCli>> runners;
  for (int i = 0; i < n; ++i)
    runners.push_back(std::make_unique<BackgroundCli>(
        std::vector<std::string>{"upgrade", "head"}, db.url().text()));
  std::string waiters;
  bool all_queued = WaitUntil(
      [&] { return (waiters = MigrationLockWaiters(db)) == std::to_string(n); },
      std::chrono::seconds(60));

  // While the lock is held and the runners are queued: --no-wait does not
  // queue behind them, it fails fast with exit 3 and changes nothing.
  std::optional<int> no_wait_status;
  std::string no_wait_out, waiters_after_no_wait;
  double no_wait_seconds = 0;
  if (all_queued) {
    auto t0 = std::chrono::steady_clock::now();
    BackgroundCli no_wait({"--no-wait", "upgrade", "head"}, db.url().text());
    no_wait_status = no_wait.Wait(std::chrono::seconds(30));
    no_wait_seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    no_wait_out = no_wait.Output();
    waiters_after_no_wait = MigrationLockWaiters(db);
    ExpectUnchanged(db, before, "--no-wait upgrade head");
  }
  const std::string revision_while_held = db.Revision();
  hold.commit();  // let them go

  ASSERT_TRUE(all_queued) << "expected " << n << " runners queued on the migration lock, saw "
                          << waiters;
  ASSERT_TRUE(no_wait_status) << "--no-wait queued behind the lock instead of failing:\n"
                              << no_wait_out;
  EXPECT_EQ(*no_wait_status, 3) << no_wait_out;
  EXPECT_CONTAINS(no_wait_out, "another migration is running");
  EXPECT_LT(no_wait_seconds, 20.0);
  EXPECT_EQ(waiters_after_no_wait, std::to_string(n));
  EXPECT_EQ(revision_while_held, "005");

  int applied = 0, noop = 0;
  for (auto& r : runners) {
    std::optional<int> status = r->Wait(std::chrono::seconds(120));
    std::string out = r->Output();
    ASSERT_TRUE(status) << "a runner did not finish:\n" << out;
    EXPECT_EQ(*status, 0) << out;
    EXPECT_EQ(out.find("already exists"), std::string::npos) << out;
    EXPECT_EQ(out.find("ERROR"), std::string::npos) << out;
    // Each one found the lock taken and queued for it.
    EXPECT_CONTAINS(out, "Another migration holds the migration lock on this database; waiting for it");
    bool ran = out.find("Upgraded 005 -> 002") != std::string::npos;
    bool nothing = out.find("Already at 002: nothing to do") != std::string::npos;
    EXPECT_NE(ran, nothing) << out;
    if (ran) {
      EXPECT_CONTAINS(out, "Running upgrade 005 -> 002");
    }
    if (nothing) {
      EXPECT_EQ(out.find("Running upgrade"), std::string::npos) << out;
    }
    applied += ran;
    noop += nothing;
  }
  EXPECT_EQ(applied, 1);
  EXPECT_EQ(noop, n - 1);
  EXPECT_EQ(db.Revision(), "002");
  EXPECT_EQ(db.Scalar("SELECT count(*) FROM code_chunks WHERE project_id = 'default'"), "6");
}

INSTANTIATE_TEST_SUITE_P(Runners, ConcurrentRunners, ::testing::Values(2, 4));

// Malformed state: a clear error and nothing changed.
// An empty alembic_version (or none) over a built schema: refused before
// anything runs, never a half-run 001 failing on "already exists".
TEST(MalformedState, EmptyVersionTableOnABuiltSchemaIsRefused) {
  TestDatabase db("005");
  db.Exec("DELETE FROM alembic_version");
  auto r = RunCliUnchanged(db, {"upgrade", "head"}, 2);
  EXPECT_CONTAINS(r.err, "alembic_version is empty, but the database already has 11 table(s)");
  EXPECT_CONTAINS(r.err, "migration-harness stamp REVISION");
  EXPECT_EQ(r.err.find("already exists"), std::string::npos) << r.err;
  // current says the same, not "<base>" with exit 0.
  auto current = RunCliUnchanged(db, {"current"}, 2);
  EXPECT_CONTAINS(current.err, "alembic_version is empty, but the database already has 11 table(s)");
  EXPECT_EQ(current.out.find("<base>"), std::string::npos) << current.out;
  EXPECT_EQ(db.Scalar("SELECT count(*) FROM alembic_version"), "0");
  // stamp, as the hint says, and the upgrade goes through.
  ASSERT_EQ(RunCli({"stamp", "005"}, db.url().text()).exit_code, 0);
  EXPECT_EQ(RunCli({"upgrade", "head"}, db.url().text()).exit_code, 0);
  EXPECT_EQ(db.Revision(), "002");
}

TEST(MalformedState, NoVersionTableOnABuiltSchemaIsRefused) {
  TestDatabase db("005");
  db.Exec("DROP TABLE alembic_version");
  auto r = RunCliUnchanged(db, {"upgrade", "head"}, 2);
  EXPECT_CONTAINS(r.err, "there is no alembic_version table, but the database already has");
  EXPECT_CONTAINS(RunCliUnchanged(db, {"current"}, 2).err,
                  "there is no alembic_version table, but the database already has");
}

// After `downgrade base` alembic_version is empty and so is the schema:
// upgrading from there is the ordinary path.
TEST(MalformedState, EmptyVersionTableOnAnEmptySchemaUpgrades) {
  TestDatabase db("005");
  ASSERT_EQ(RunCli({"downgrade", "base"}, db.url().text()).exit_code, 0);
  EXPECT_EQ(db.Scalar("SELECT count(*) FROM alembic_version"), "0");
  auto r = RunCli({"upgrade", "head"}, db.url().text());
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(db.Revision(), "002");
}

TEST(MalformedState, MissingCoreTableIsAPrerequisiteError) {
  TestDatabase db("005");
  db.Exec("DROP TABLE code_chunks");
  auto r = RunCliUnchanged(db, {"upgrade", "head"}, 2);
  EXPECT_CONTAINS(r.err, "revision 002 refuses to run: Core tables exist: missing {code_chunks} [core_tables]");
  EXPECT_EQ(db.Revision(), "005");
}

TEST(MalformedState, AnIndexBuiltConcurrentlyBeforehandIsKept) {
  TestDatabase db("005");
  db.Exec("ALTER TABLE repositories ADD COLUMN project_id varchar(50) NOT NULL DEFAULT 'default'");
  {
    pg::Connection conn(db.url());
    pqxx::nontransaction tx(conn.raw());
    tx.exec("CREATE INDEX CONCURRENTLY idx_project_repository ON repositories (project_id, id)");
  }
  auto r = RunCli({"upgrade", "head"}, db.url().text());
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_CONTAINS(r.err, "Index idx_project_repository already exists: kept");
  EXPECT_CONTAINS(r.err, "Column repositories.project_id already exists: kept");
  EXPECT_EQ(db.Revision(), "002");
}

}  // namespace
}  // namespace harness::testing
