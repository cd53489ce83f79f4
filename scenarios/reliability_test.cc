// All-or-nothing under faults, safe under concurrent runners: a fault after
// any step of any revision leaves the database exactly as it was, and two or
// four runners at once apply 002 exactly once.
#include <gtest/gtest.h>

#include <thread>

#include <pqxx/pqxx>

#include "fixtures/quickstart_sample.h"
#include "harness/engine/migrator.h"
#include "harness/inspect/fingerprint.h"
#include "harness/pg/connection.h"
#include "scenarios/support/test_env.h"

namespace harness::testing {
namespace {

#define EXPECT_CONTAINS(haystack, needle) \
  EXPECT_NE(std::string(haystack).find(needle), std::string::npos) << (haystack)

struct FaultPoint {
  std::string revision;
  engine::Direction direction;
  int step;  // fault right after this step
};

std::string Name(const FaultPoint& f) {
  std::string rev = f.revision;
  return (f.direction == engine::Direction::kUpgrade ? "Up_" : "Down_") + rev + "_AfterStep" +
         std::to_string(f.step);
}

void PrintTo(const FaultPoint& f, std::ostream* os) { *os << Name(f); }

std::vector<FaultPoint> AllFaultPoints() {
  std::vector<FaultPoint> out;
  for (const auto& f : Chain().chain()) {
    for (size_t i = 1; i <= f.upgrade.size(); ++i)
      out.push_back({f.revision, engine::Direction::kUpgrade, static_cast<int>(i)});
    for (size_t i = 1; i <= f.downgrade.size(); ++i)
      out.push_back({f.revision, engine::Direction::kDowngrade, static_cast<int>(i)});
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
  bool up = f.direction == engine::Direction::kUpgrade;
  // Start one revision below (upgrade) or at the revision (downgrade), with
  // the quickstart's sample data wherever code_chunks exists (it is written
  // at 005 and carried to 002, which needs a project_id).
  std::string start = up ? (p == 1 ? "base" : Chain().at(p - 1).revision) : f.revision;
  TestDatabase db(start == "002" ? "005" : start);
  if (db.Scalar("SELECT to_regclass('code_chunks') IS NOT NULL") == "t")
    db.Exec(fixtures::kQuickstartSampleSql);
  if (start == "002") MigrateTo(db.url(), "002");
  auto catalog = db.Snapshot();
  std::string revision = db.Revision();
  std::string data;
  if (db.Scalar("SELECT to_regclass('code_chunks') IS NOT NULL") == "t") {
    pg::Connection conn(db.url());
    pqxx::read_transaction tx(conn.raw());
    data = inspect::TakeFingerprint(tx, "repositories").ToString() + " / " +
           inspect::TakeFingerprint(tx, "code_chunks").ToString();
  }
  engine::MigratorOptions o;
  o.after_step = [&](const engine::StepTiming& s, pqxx::transaction_base&) {
    if (s.revision == f.revision && s.direction == f.direction && s.index == f.step)
      throw Injected("fault after step " + std::to_string(s.index));
  };
  {
    pg::Connection conn(db.url());
    engine::Migrator m(conn, Chain(), o);
    std::string target = up ? f.revision : (p == 1 ? "base" : Chain().at(p - 1).revision);
    EXPECT_THROW(up ? m.Upgrade(target) : m.Downgrade(target), Injected);
  }
  EXPECT_EQ(db.Revision(), revision);
  auto diff = inspect::Diff(catalog, db.Snapshot());
  EXPECT_TRUE(diff.empty()) << JoinLines(diff);
  if (!data.empty()) {
    pg::Connection conn(db.url());
    pqxx::read_transaction tx(conn.raw());
    EXPECT_EQ(inspect::TakeFingerprint(tx, "repositories").ToString() + " / " +
                  inspect::TakeFingerprint(tx, "code_chunks").ToString(),
              data);
  }
  // A clean run then succeeds.
  MigrateTo(db.url(), "head");
  EXPECT_EQ(db.Revision(), "002");
}

INSTANTIATE_TEST_SUITE_P(Chain, FaultAtEveryStep, ::testing::ValuesIn(AllFaultPoints()),
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

INSTANTIATE_TEST_SUITE_P(EveryRevision, Stairway,
                         ::testing::Values("001", "003", "003a", "003b", "005", "002"));

// Two and four runners of `upgrade head` at once: exactly one applies 002.
class ConcurrentRunners : public ::testing::TestWithParam<int> {};

TEST_P(ConcurrentRunners, ApplyExactlyOnce) {
  const int n = GetParam();
  TestDatabase db("005");
  db.Exec(fixtures::kQuickstartSampleSql);
  std::vector<pg::ProcessResult> results(static_cast<size_t>(n));
  std::vector<std::thread> threads;
  for (int i = 0; i < n; ++i)
    threads.emplace_back([&, i] { results[static_cast<size_t>(i)] = RunCli({"upgrade", "head"}, db.url().text()); });
  for (auto& t : threads) t.join();
  int applied = 0, noop = 0;
  for (const auto& r : results) {
    EXPECT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(r.err.find("already exists"), std::string::npos) << r.err;
    applied += r.out.find("Upgraded 005 -> 002") != std::string::npos;
    noop += r.out.find("Already at 002") != std::string::npos;
  }
  EXPECT_EQ(applied, 1);
  EXPECT_EQ(noop, n - 1);
  EXPECT_EQ(db.Revision(), "002");
  EXPECT_EQ(db.Scalar("SELECT count(*) FROM code_chunks WHERE project_id = 'default'"), "6");
}

INSTANTIATE_TEST_SUITE_P(Runners, ConcurrentRunners, ::testing::Values(2, 4));

// Malformed state: a clear error and nothing changed.
TEST(MalformedState, EmptyVersionTableOnABuiltSchemaFailsCleanly) {
  TestDatabase db("005");
  db.Exec("DELETE FROM alembic_version");
  auto before = db.Snapshot();
  auto r = RunCli({"upgrade", "head"}, db.url().text());
  EXPECT_EQ(r.exit_code, 3) << r.err;
  EXPECT_CONTAINS(r.err, "revision 001");
  EXPECT_CONTAINS(r.err, "already exists");
  EXPECT_TRUE(inspect::Diff(before, db.Snapshot()).empty());
  EXPECT_EQ(db.Scalar("SELECT count(*) FROM alembic_version"), "0");
}

TEST(MalformedState, MissingCoreTableIsAPrerequisiteError) {
  TestDatabase db("005");
  db.Exec("DROP TABLE code_chunks");
  auto before = db.Snapshot();
  auto r = RunCli({"upgrade", "head"}, db.url().text());
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_CONTAINS(r.err, "core table code_chunks does not exist");
  EXPECT_TRUE(inspect::Diff(before, db.Snapshot()).empty());
  EXPECT_EQ(db.Revision(), "005");
}

TEST(MalformedState, ADependentViewStopsTheDropAndIsNamed) {
  TestDatabase db("005");
  db.Exec("CREATE VIEW open_tasks AS SELECT id, title FROM tasks WHERE status <> 'complete'");
  auto before = db.Snapshot();
  auto r = RunCli({"upgrade", "head"}, db.url().text());
  EXPECT_EQ(r.exit_code, 3) << r.err;
  EXPECT_CONTAINS(r.err, "open_tasks");
  EXPECT_TRUE(inspect::Diff(before, db.Snapshot()).empty());
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
  EXPECT_CONTAINS(r.err, "Index idx_project_repository already exists (built beforehand): kept");
  EXPECT_EQ(db.Revision(), "002");
}

}  // namespace
}  // namespace harness::testing
