// The revision chain on real databases: table counts, exact downgrades of
// every revision (catalog diff), Alembic's alembic_version semantics, the
// quickstart's own SQL verbatim, 002's refusals and idempotency.
#include <gtest/gtest.h>

#include <pqxx/pqxx>

#include "fixtures/quickstart_sample.h"
#include "harness/engine/migrator.h"
#include "harness/error.h"
#include "harness/pg/connection.h"
#include "scenarios/support/test_env.h"

namespace harness::testing {
namespace {

std::set<std::string> TableNames(const TestDatabase& db) {
  std::set<std::string> out;
  for (const auto& [name, t] : db.Snapshot().tables) out.insert(name);
  return out;
}

const std::set<std::string> kDroppedBy002 = {
    "tasks", "vendor_extractors", "deployment_events", "project_configuration",
    "future_enhancements", "work_item_dependencies", "vendor_deployment_links",
    "work_item_deployment_links", "archived_work_items"};

TEST(Chain, At005ThereAreExactlyTheElevenTables) {
  TestDatabase db("005");
  std::set<std::string> expected = kDroppedBy002;
  expected.insert("repositories");
  expected.insert("code_chunks");
  EXPECT_EQ(TableNames(db), expected);
  EXPECT_EQ(db.Revision(), "005");
}

TEST(Chain, AtHeadOnlyTheSearchTablesRemain) {
  TestDatabase db("head");
  EXPECT_EQ(TableNames(db), (std::set<std::string>{"code_chunks", "repositories"}));
  EXPECT_EQ(db.Revision(), "002");
}

// For every revision N: upgrading to N gives the same catalog as upgrading
// one past N and downgrading one.
class DowngradeIsExact : public ::testing::TestWithParam<std::string> {};

TEST_P(DowngradeIsExact, CatalogEqualsTheUpgradedOne) {
  const std::string rev = GetParam();
  engine::Position p = Chain().ResolveRevision(rev);
  ASSERT_LT(p, Chain().head_position());
  const std::string next = Chain().at(p + 1).revision;
  TestDatabase reference(rev);
  TestDatabase round_trip(next);
  MigrateTo(round_trip.url(), rev);
  EXPECT_EQ(round_trip.Revision(), Chain().Name(p));
  std::vector<std::string> diff = inspect::Diff(reference.Snapshot(), round_trip.Snapshot());
  EXPECT_TRUE(diff.empty()) << "downgrade " << next << " -> " << rev << " is not exact:\n"
                            << JoinLines(diff);
}

INSTANTIATE_TEST_SUITE_P(EveryRevision, DowngradeIsExact,
                         ::testing::Values("base", "001", "003", "003a", "003b", "005"));

TEST(Chain, FullRoundTripFromBaseToHeadAndBack) {
  TestDatabase db("base");
  auto empty = db.Snapshot();
  MigrateTo(db.url(), "head");
  MigrateTo(db.url(), "base");
  EXPECT_TRUE(inspect::Diff(empty, db.Snapshot()).empty());
  EXPECT_EQ(db.Revision(), "<base>");
}

TEST(AlembicVersion, IsWrittenAsAlembicWritesIt) {
  TestDatabase db("base");
  MigrateTo(db.url(), "003");
  EXPECT_EQ(db.Scalar("SELECT string_agg(version_num, ',') FROM alembic_version"), "003");
  EXPECT_EQ(db.Scalar("SELECT pg_get_constraintdef(oid) FROM pg_constraint WHERE conname = "
                      "'alembic_version_pkc'"),
            "PRIMARY KEY (version_num)");
  EXPECT_EQ(db.Scalar("SELECT format_type(atttypid, atttypmod) FROM pg_attribute WHERE attrelid "
                      "= 'alembic_version'::regclass AND attname = 'version_num'"),
            "character varying(32)");
  MigrateTo(db.url(), "base");
  // Alembic keeps the table and deletes the row at base.
  EXPECT_EQ(db.Scalar("SELECT count(*) FROM alembic_version"), "0");
}

TEST(AlembicVersion, AVersionWrittenByAlembicIsUnderstood) {
  TestDatabase db("005");
  // What Alembic leaves behind: its own DDL and one row.
  db.Exec("DROP TABLE alembic_version; CREATE TABLE alembic_version (version_num VARCHAR(32) NOT "
          "NULL, CONSTRAINT alembic_version_pkc PRIMARY KEY (version_num)); INSERT INTO "
          "alembic_version (version_num) VALUES ('005')");
  MigrateTo(db.url(), "head");
  EXPECT_EQ(db.Revision(), "002");
}

using fixtures::kQuickstartSampleSql;
using fixtures::kQuickstartValidProjectIdsSql;

TEST(QuickstartSql, Scenario2InsertsRunVerbatimAt005AndSurvive002) {
  TestDatabase db("005");
  db.Exec(kQuickstartSampleSql);
  MigrateTo(db.url(), "head");
  EXPECT_EQ(db.Scalar("SELECT count(*) FROM repositories"), "3");
  EXPECT_EQ(db.Scalar("SELECT count(*) FROM code_chunks"), "6");
  EXPECT_EQ(db.Scalar("SELECT string_agg(DISTINCT project_id, ',') FROM repositories"), "default");
  EXPECT_EQ(db.Scalar("SELECT count(*) FROM code_chunks c JOIN repositories r ON r.id = "
                      "c.repository_id WHERE c.project_id = r.project_id"),
            "6");
}

TEST(QuickstartSql, Scenario6ValidInsertsRunVerbatimAt002) {
  TestDatabase db("head");
  db.Exec(kQuickstartValidProjectIdsSql);
  EXPECT_EQ(db.Scalar("SELECT count(*) FROM repositories"), "5");
}

engine::RunReport Upgrade(const TestDatabase& db, engine::MigratorOptions o = {}) {
  pg::Connection conn(db.url());
  engine::Migrator m(conn, Chain(), std::move(o));
  return m.Upgrade("head");
}

ExitCode UpgradeError(const TestDatabase& db, std::string* what) {
  try {
    Upgrade(db);
  } catch (const Error& e) {
    *what = std::string(e.what()) + " | " + e.hint();
    return e.code();
  }
  return ExitCode::kOk;
}

TEST(Migration002, RefusesABlockingForeignKeyAndNamesIt) {
  TestDatabase db("005");
  db.Exec(kQuickstartSampleSql);
  db.Exec("ALTER TABLE tasks ADD COLUMN repo_id uuid CONSTRAINT tasks_repo_fk REFERENCES "
          "repositories(id)");
  auto before = db.Snapshot();
  std::string what;
  EXPECT_EQ(UpgradeError(db, &what), ExitCode::kCheckFailed);
  EXPECT_NE(what.find("tasks_repo_fk"), std::string::npos) << what;
  EXPECT_NE(what.find("DROP CONSTRAINT"), std::string::npos) << what;
  EXPECT_TRUE(inspect::Diff(before, db.Snapshot()).empty());
  EXPECT_EQ(db.Revision(), "005");
}

TEST(Migration002, RefusesOrphanedChunksWithTheirCount) {
  TestDatabase db("005");
  db.Exec(kQuickstartSampleSql);
  db.Exec("ALTER TABLE code_chunks DROP CONSTRAINT code_chunks_repository_id_fkey;"
          "INSERT INTO code_chunks (repository_id, file_path, content, start_line, end_line) "
          "SELECT gen_random_uuid(), 'orphan.py', 'x', 1, 1 FROM generate_series(1, 7)");
  auto before = db.Snapshot();
  std::string what;
  EXPECT_EQ(UpgradeError(db, &what), ExitCode::kCheckFailed);
  EXPECT_NE(what.find("7 orphaned"), std::string::npos) << what;
  EXPECT_TRUE(inspect::Diff(before, db.Snapshot()).empty());
  EXPECT_EQ(db.Scalar("SELECT count(*) FROM code_chunks"), "13");
}

TEST(Migration002, StampAndRerunChangesNothing) {
  TestDatabase db("005");
  db.Exec(kQuickstartSampleSql);
  MigrateTo(db.url(), "head");
  auto migrated = db.Snapshot();
  std::string rows = db.Scalar(
      "SELECT string_agg(c::text, '|' ORDER BY c.id) FROM code_chunks c");
  {
    pg::Connection conn(db.url());
    engine::Migrator(conn, Chain()).Stamp("005");
  }
  auto report = Upgrade(db);
  EXPECT_FALSE(report.noop);
  EXPECT_EQ(db.Revision(), "002");
  EXPECT_TRUE(inspect::Diff(migrated, db.Snapshot()).empty())
      << JoinLines(inspect::Diff(migrated, db.Snapshot()));
  EXPECT_EQ(db.Scalar("SELECT string_agg(c::text, '|' ORDER BY c.id) FROM code_chunks c"), rows);
}

TEST(Migration002, UpgradeAtHeadIsANoOp) {
  TestDatabase db("head");
  auto report = Upgrade(db);
  EXPECT_TRUE(report.noop);
  EXPECT_TRUE(report.steps.empty());
}

TEST(Migration002, FastPathAndUpdatePathGiveIdenticalResults) {
  TestDatabase fast("005"), slow("005");
  fast.Exec(kQuickstartSampleSql);
  slow.Exec(kQuickstartSampleSql);
  Upgrade(fast);
  engine::MigratorOptions o;
  o.settings["migration_harness.force_update_path"] = "on";
  Upgrade(slow, o);
  EXPECT_TRUE(inspect::Diff(fast.Snapshot(), slow.Snapshot()).empty())
      << JoinLines(inspect::Diff(fast.Snapshot(), slow.Snapshot()));
  const char* rows =
      "SELECT string_agg(file_path || ':' || project_id, ',' ORDER BY file_path) FROM code_chunks";
  EXPECT_EQ(fast.Scalar(rows), slow.Scalar(rows));
}

TEST(Migration002, LogsEveryStepWithItsTiming) {
  TestDatabase db("005");
  auto report = Upgrade(db);
  ASSERT_FALSE(report.steps.empty());
  int steps_002 = 0;
  for (const auto& s : report.steps)
    if (s.revision == "002") {
      ++steps_002;
      EXPECT_GE(s.seconds, 0.0);
    }
  // DESIGN.md's ten: eight SQL steps, the total time, then the engine's
  // alembic_version write and commit.
  EXPECT_EQ(steps_002, 10);
  EXPECT_EQ(report.steps.front().name, "Checking prerequisites");
  EXPECT_EQ(report.steps.back().name, "Committing and writing alembic_version");
}

TEST(Migration002, AFailingStepLeavesNothingBehind) {
  TestDatabase db("005");
  db.Exec(kQuickstartSampleSql);
  auto before = db.Snapshot();
  engine::MigratorOptions o;
  o.after_step = [](const engine::StepTiming& s, pqxx::transaction_base&) {
    if (s.index == 6) throw std::runtime_error("injected fault after step 6");
  };
  EXPECT_THROW(Upgrade(db, o), std::runtime_error);
  EXPECT_TRUE(inspect::Diff(before, db.Snapshot()).empty());
  EXPECT_EQ(db.Revision(), "005");
}

}  // namespace
}  // namespace harness::testing
