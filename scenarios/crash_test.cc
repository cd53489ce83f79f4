// A server crash in the middle of a migration: after PostgreSQL's recovery
// the database must be wholly at the revision it was at before, with every
// row of every table as it was, and a clean run must then succeed; on both
// schema shapes. Each case starts a PostgreSQL of its own (it is crashed on
// purpose), never the shared one.
#include <gtest/gtest.h>

#include <atomic>
#include <stdexcept>
#include <thread>

#include <pqxx/pqxx>
#include <spdlog/spdlog.h>

#include "harness/codesearch/generator.h"
#include "harness/codesearch/shapes.h"
#include "harness/engine/migrator.h"
#include "harness/error.h"
#include "harness/inspect/catalog.h"
#include "harness/pg/cluster.h"
#include "harness/pg/connection.h"
#include "scenarios/support/test_env.h"

namespace harness::testing {
namespace {

// A private cluster with one database of `shape` at `revision` holding
// generated data.
struct CrashTarget {
  std::unique_ptr<pg::EmbeddedCluster> cluster;
  pg::Url url;
};

CrashTarget MakeTarget(Shape shape, const std::string& revision, int repositories,
                       int chunks_per_repo) {
  spdlog::set_level(spdlog::level::warn);
  CrashTarget t{pg::EmbeddedCluster::Start(), pg::Url::Parse("dbname=unused")};
  {
    pg::Connection admin(t.cluster->AdminUrl());
    pqxx::nontransaction tx(admin.raw());
    tx.exec("CREATE DATABASE crash TEMPLATE template0");
  }
  t.url = t.cluster->UrlFor("crash");
  if (shape == Shape::kProduction)
    codesearch::BuildAt005(t.url, shape, Chain());
  else
    MigrateTo(t.url, "005");
  pg::Connection conn(t.url);
  codesearch::GeneratorOptions go;
  go.repositories = repositories;
  go.chunks_per_repo = chunks_per_repo;
  codesearch::Generate(conn, go);
  if (revision != "005") MigrateTo(t.url, revision);
  return t;
}

struct CrashPoint {
  Shape shape;
  engine::Direction direction;
  int step;  // crash right after this step of 002, before the next
};

std::string Name(const CrashPoint& c) {
  return ShapeTestName({c.shape, 0}) +
         (c.direction == engine::Direction::kUpgrade ? "_Upgrade" : "_Downgrade") + "AfterStep" +
         std::to_string(c.step);
}

void PrintTo(const CrashPoint& c, std::ostream* os) { *os << Name(c); }

// The position of the step of 002 called `name` (1-based); the program
// stops at start when 002 has no such step.
int StepOf002(const std::vector<engine::Step>& steps, const std::string& name) {
  for (size_t i = 0; i < steps.size(); ++i)
    if (steps[i].name == name) return static_cast<int>(i) + 1;
  throw std::logic_error("migration 002 has no step '" + name + "'");
}

// Every step of 002 on the quickstart's shape. Each case starts a cluster
// of its own (about a second), so the production shape gets one per
// direction, where the catalog has changed most when the server dies: the
// upgrade after dropping the nine tables and the foreign keys into tasks,
// the downgrade after restoring them (the task links NOT VALID).
std::vector<CrashPoint> AllCrashPoints() {
  std::vector<CrashPoint> out;
  const engine::MigrationFile& m002 = Chain().head();
  for (size_t i = 1; i <= m002.UpgradeStepsInOneTransaction(); ++i)
    out.push_back({Shape::kQuickstart, engine::Direction::kUpgrade, static_cast<int>(i)});
  for (size_t i = 1; i <= m002.downgrade.size(); ++i)
    out.push_back({Shape::kQuickstart, engine::Direction::kDowngrade, static_cast<int>(i)});
  out.push_back({Shape::kProduction, engine::Direction::kUpgrade,
                 StepOf002(m002.upgrade, "Dropping unused tables")});
  out.push_back({Shape::kProduction, engine::Direction::kDowngrade,
                 StepOf002(m002.downgrade, "Restoring dropped tables (schema only)")});
  return out;
}

// The default run (ctest stays under a minute): per direction the step
// that changes the catalog most, the upgrade's last (its commit comes
// next), and both production cases. The other steps run under the `slow`
// label (-DHARNESS_SLOW_TESTS=ON).
bool InDefaultRun(const CrashPoint& c) {
  const engine::MigrationFile& m002 = Chain().head();
  if (c.shape == Shape::kProduction) return true;
  const bool up = c.direction == engine::Direction::kUpgrade;
  const auto& steps = up ? m002.upgrade : m002.downgrade;
  return (up && c.step == static_cast<int>(steps.size())) ||
         c.step == StepOf002(steps, up ? "Dropping unused tables"
                                       : "Restoring dropped tables (schema only)");
}

std::vector<CrashPoint> CrashPoints(bool default_run) {
  std::vector<CrashPoint> out;
  for (const auto& c : AllCrashPoints())
    if (InDefaultRun(c) == default_run) out.push_back(c);
  return out;
}

class CrashAfterStep : public ::testing::TestWithParam<CrashPoint> {};

// Immediate shutdown (SIGQUIT to the postmaster: no checkpoint, as in a
// crash) between two steps of 002, inside its transaction.
TEST_P(CrashAfterStep, RecoveryLeavesTheRevisionWhole) {
  const CrashPoint& c = GetParam();
  const bool up = c.direction == engine::Direction::kUpgrade;
  CrashTarget t = MakeTarget(c.shape, up ? "005" : "002", 20, 50);
  const DatabaseState before = CaptureState(t.url);
  engine::MigratorOptions o;
  o.after_step = [&](const engine::StepTiming& s, pqxx::transaction_base&) {
    if (s.revision == "002" && s.direction == c.direction && s.index == c.step)
      t.cluster->CrashAndRestart();
  };
  try {
    pg::Connection conn(t.url);
    engine::Migrator m(conn, Chain(), o);
    up ? m.Upgrade("head") : m.Downgrade("005");
    ADD_FAILURE() << "the migration went on through a server crash";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ExitCode::kDatabase) << e.what();
  }
  ExpectUnchanged(t.url, before);
  // A clean run then succeeds.
  MigrateTo(t.url, up ? "head" : "005");
  EXPECT_EQ(CaptureState(t.url).revision, up ? "002" : "005");
}

INSTANTIATE_TEST_SUITE_P(Migration002, CrashAfterStep, ::testing::ValuesIn(CrashPoints(true)),
                         [](const auto& p) { return Name(p.param); });
INSTANTIATE_TEST_SUITE_P(SlowMigration002, CrashAfterStep, ::testing::ValuesIn(CrashPoints(false)),
                         [](const auto& p) { return Name(p.param); });

// HARNESS_SLOW_TESTS: the server dies while step 8 scans a million chunks to
// validate the CHECK constraint, under the real CLI.
TEST(SlowCrash, MidValidationScanOfAMillionChunks) {
  CrashTarget t = MakeTarget(Shape::kQuickstart, "005", 1000, 1000);
  const DatabaseState before = CaptureState(t.url);
  // The CLI runs in a thread; this thread watches and crashes the server,
  // since the restarted server dies with the thread that started it.
  std::atomic<bool> finished{false};
  sys::ProcessResult r;
  std::thread cli([&] {
    r = RunCli({"upgrade", "head"}, t.url.text());
    finished = true;
  });
  bool crashed = false;
  {
    pg::Connection side(t.cluster->AdminUrl());
    while (!finished) {
      pqxx::nontransaction tx(side.raw());
      if (tx.exec1("SELECT count(*) FROM pg_stat_activity WHERE datname = 'crash' "
                   "AND pid <> pg_backend_pid() AND state = 'active' "
                   // Step 8's DO block: the ALTER it EXECUTEs never shows here.
                   "AND query LIKE '%ALTER TABLE !%I VALIDATE CONSTRAINT !%I%' ESCAPE '!'")[0]
              .as<int>() > 0)
        break;
    }
    if (!finished) {
      t.cluster->CrashAndRestart();
      crashed = true;
    }
  }
  cli.join();
  ASSERT_TRUE(crashed) << "the upgrade finished before the scan could be caught\n" << r.err;
  EXPECT_EQ(r.exit_code, 3) << r.err;
  EXPECT_CONTAINS(r.err, "Step 8/10: Running validation checks...");
  EXPECT_EQ(r.err.find("Step 8/10: Complete"), std::string::npos) << r.err;
  ExpectUnchanged(t.url, before);
  MigrateTo(t.url, "head");
  EXPECT_EQ(CaptureState(t.url).revision, "002");
}

}  // namespace
}  // namespace harness::testing
