// The revision chain on real databases: table counts, exact downgrades of
// every revision (catalog diff), Alembic's alembic_version semantics, the
// quickstart's own SQL verbatim, 002's refusals and idempotency. What is
// about 002 runs on both shapes (harness/codesearch/shape.h); the production
// shape has no revision before 005.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <set>
#include <sstream>
#include <thread>

#include <pqxx/pqxx>
#include <spdlog/spdlog.h>

#include "harness/codesearch/generator.h"
#include "harness/codesearch/quickstart_sample.h"
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
// one past N and downgrading one (on production, only 005: from 002).
struct DowngradeCase {
  Shape shape;
  std::string revision;
};

class DowngradeIsExact : public ::testing::TestWithParam<DowngradeCase> {};

TEST_P(DowngradeIsExact, CatalogEqualsTheUpgradedOne) {
  const auto& [shape, rev] = GetParam();
  engine::Position p = Chain().ResolveRevision(rev);
  ASSERT_LT(p, Chain().head_position());
  const std::string next = Chain().at(p + 1).revision;
  TestDatabase reference(rev, shape);
  TestDatabase round_trip(next, shape);
  MigrateTo(round_trip.url(), rev);
  EXPECT_EQ(round_trip.Revision(), Chain().Name(p));
  std::vector<std::string> diff = inspect::Diff(reference.Snapshot(), round_trip.Snapshot());
  EXPECT_TRUE(diff.empty()) << "downgrade " << next << " -> " << rev << " is not exact:\n"
                            << JoinLines(diff);
}

std::vector<DowngradeCase> DowngradeCases() {
  std::vector<DowngradeCase> out;
  // Every revision below the head, from the parsed chain: a revision added
  // later is covered without editing this list.
  for (engine::Position p = 0; p < Chain().head_position(); ++p)
    out.push_back({Shape::kQuickstart, p == 0 ? std::string("base") : Chain().at(p).revision});
  out.push_back({Shape::kProduction, "005"});
  return out;
}

INSTANTIATE_TEST_SUITE_P(EveryRevision, DowngradeIsExact, ::testing::ValuesIn(DowngradeCases()),
                         [](const auto& p) {
                           return (p.param.shape == Shape::kProduction ? "Production_"
                                                                       : "Quickstart_") +
                                  p.param.revision;
                         });

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
  db.Exec("DROP TABLE alembic_version; CREATE TABLE public.alembic_version (version_num VARCHAR(32) NOT "
          "NULL, CONSTRAINT alembic_version_pkc PRIMARY KEY (version_num)); INSERT INTO "
          "alembic_version (version_num) VALUES ('005')");
  MigrateTo(db.url(), "head");
  EXPECT_EQ(db.Revision(), "002");
}

using codesearch::kQuickstartSampleSql;
using codesearch::kQuickstartValidProjectIdsSql;

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

// 002 on each shape, on data of that shape.
class Migration002 : public ::testing::TestWithParam<Shape> {
 protected:
  // A database of this test's shape at `revision`.
  TestDatabase Database(const std::string& revision = "005") const {
    return TestDatabase(revision, GetParam());
  }
  // The quickstart's sample (3 repositories, 6 chunks), or on production
  // the generator's 3 repositories x 2 chunks (with their files, and rows in
  // every task link table and in the tables 002 drops).
  void InsertSample(const TestDatabase& db) const {
    if (GetParam() == Shape::kQuickstart) {
      db.Exec(kQuickstartSampleSql);
      return;
    }
    pg::Connection conn(db.url());
    codesearch::GeneratorOptions o;
    o.repositories = 3;
    o.chunks_per_repo = 2;
    codesearch::Generate(conn, o);
  }
  // Seven chunks whose repository (on production: whose file) does not
  // exist, once the foreign key that keeps them out is dropped.
  const char* SevenOrphansSql() const {
    return GetParam() == Shape::kProduction
               ? "ALTER TABLE code_chunks DROP CONSTRAINT fk_code_chunks_code_file_id_code_files;"
                 "INSERT INTO code_chunks (id, code_file_id, content, start_line, end_line, "
                 "chunk_type) SELECT gen_random_uuid(), gen_random_uuid(), 'x', 1, 1, 'function' "
                 "FROM generate_series(1, 7)"
               : "ALTER TABLE code_chunks DROP CONSTRAINT code_chunks_repository_id_fkey;"
                 "INSERT INTO code_chunks (repository_id, file_path, content, start_line, "
                 "end_line) SELECT gen_random_uuid(), 'orphan.py', 'x', 1, 1 FROM "
                 "generate_series(1, 7)";
  }
};

INSTANTIATE_TEST_SUITE_P(BothShapes, Migration002,
                         ::testing::Values(Shape::kQuickstart, Shape::kProduction), ShapeTestName);

// The stairway of 002: up, down, up again; each stair gives the catalog of
// the first time there.
TEST_P(Migration002, UpDownUpIsExactAtEachStair) {
  TestDatabase db = Database();
  const auto at005 = db.Snapshot();
  MigrateTo(db.url(), "002");
  const auto at002 = db.Snapshot();
  ASSERT_FALSE(inspect::Diff(at005, at002).empty()) << "002 changed nothing; this proves nothing";
  MigrateTo(db.url(), "005");
  EXPECT_EQ(db.Revision(), "005");
  EXPECT_TRUE(inspect::Diff(at005, db.Snapshot()).empty())
      << "down:\n" << JoinLines(inspect::Diff(at005, db.Snapshot()));
  MigrateTo(db.url(), "002");
  EXPECT_EQ(db.Revision(), "002");
  EXPECT_TRUE(inspect::Diff(at002, db.Snapshot()).empty())
      << "up again:\n" << JoinLines(inspect::Diff(at002, db.Snapshot()));
}

TEST_P(Migration002, RefusesABlockingForeignKeyAndNamesIt) {
  TestDatabase db = Database();
  InsertSample(db);
  db.Exec("ALTER TABLE tasks ADD COLUMN repo_id uuid CONSTRAINT tasks_repo_fk REFERENCES "
          "repositories(id)");
  const DatabaseState before = CaptureState(db);
  std::string what;
  EXPECT_EQ(UpgradeError(db, &what), ExitCode::kCheckFailed);
  EXPECT_NE(what.find("tasks_repo_fk"), std::string::npos) << what;
  EXPECT_NE(what.find("DROP CONSTRAINT"), std::string::npos) << what;
  ExpectUnchanged(db, before);
  EXPECT_EQ(db.Revision(), "005");
}

TEST_P(Migration002, RefusesOrphanedChunksWithTheirCount) {
  TestDatabase db = Database();
  InsertSample(db);
  db.Exec(SevenOrphansSql());
  const DatabaseState before = CaptureState(db);
  std::string what;
  EXPECT_EQ(UpgradeError(db, &what), ExitCode::kCheckFailed);
  EXPECT_NE(what.find("found 7 chunk(s) whose"), std::string::npos) << what;
  ExpectUnchanged(db, before);
  EXPECT_EQ(db.Scalar("SELECT count(*) FROM code_chunks"), "13");
}

// Step 8 validates the result: what the steps before it left wrong (here a
// default set on code_chunks.project_id just before it) fails it, naming
// what is wrong, and everything rolls back.
TEST_P(Migration002, Step8NamesWhatItsValidationFound) {
  TestDatabase db = Database();
  InsertSample(db);
  const DatabaseState before = CaptureState(db);
  pg::Connection conn(db.url());
  engine::MigratorOptions o;
  o.log_steps = false;
  o.before_step = [](const engine::StepTiming& s, pqxx::transaction_base& tx) {
    if (s.revision == "002" && s.index == 8) tx.exec("ALTER TABLE code_chunks ALTER COLUMN project_id SET DEFAULT 'x'");
  };
  engine::Migrator m(conn, Chain(), std::move(o));
  try {
    m.Upgrade("head");
    ADD_FAILURE() << "step 8 let a column with a default through";
  } catch (const Error& e) {
    EXPECT_CONTAINS(std::string(e.what()), "validation failed: code_chunks.project_id is not varchar(50) NOT NULL "
                                           "without default");
    EXPECT_CONTAINS(std::string(e.what()) + e.hint(), "MHV01");
  }
  ExpectUnchanged(db, before);
  EXPECT_EQ(db.Revision(), "005");
}

TEST_P(Migration002, StampAndRerunChangesNothing) {
  TestDatabase db = Database();
  InsertSample(db);
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

TEST_P(Migration002, UpgradeAtHeadIsANoOp) {
  TestDatabase db = Database("head");
  auto report = Upgrade(db);
  EXPECT_TRUE(report.noop);
  EXPECT_TRUE(report.steps.empty());
}

// Rows of code_chunks the migration's own transaction UPDATEd, read from
// pg_stat_xact_user_tables inside that transaction right after 002's step 4
// (deterministic: unlike pg_stat_user_tables, no asynchronous stats flush).
struct PathProbe {
  std::string log;
  long long chunks_updated = -1;
};

PathProbe UpgradeAndProbe(const TestDatabase& db, engine::MigratorOptions o = {}) {
  PathProbe probe;
  o.after_step = [&](const engine::StepTiming& s, pqxx::transaction_base& tx) {
    if (s.revision == "002" && s.name == "Adding project_id to code_chunks table")
      probe.chunks_updated = tx.exec1("SELECT n_tup_upd FROM pg_stat_xact_user_tables "
                                      "WHERE relid = 'code_chunks'::regclass")[0]
                                 .as<long long>();
  };
  LogCapture capture;
  Upgrade(db, std::move(o));
  probe.log = capture.Text();
  return probe;
}

// Where step 3 has just added repositories.project_id, every repository
// has 'default': step 4 takes its fast path without reading repositories
// (a scan there would grow with the repositories, under ACCESS EXCLUSIVE).
// Built beforehand, the column is read: its values may differ.
TEST_P(Migration002, Step4ReadsNoRepositoryWhereStep3AddedTheColumn) {
  for (bool prebuilt : {false, true}) {
    SCOPED_TRACE(prebuilt ? "column built beforehand" : "column added by step 3");
    TestDatabase db = Database();
    InsertSample(db);
    if (prebuilt) db.Exec("ALTER TABLE repositories ADD COLUMN project_id varchar(50) NOT NULL DEFAULT 'default'");
    long long before = -1, after = -1;
    auto read = [](pqxx::transaction_base& tx) {
      return tx.exec1("SELECT seq_tup_read + coalesce(idx_tup_fetch, 0) FROM pg_stat_xact_user_tables "
                      "WHERE relid = 'repositories'::regclass")[0]
          .as<long long>();
    };
    engine::MigratorOptions o;
    o.before_step = [&](const engine::StepTiming& s, pqxx::transaction_base& tx) {
      if (s.revision == "002" && s.name == "Adding project_id to code_chunks table") before = read(tx);
    };
    o.after_step = [&](const engine::StepTiming& s, pqxx::transaction_base& tx) {
      if (s.revision == "002" && s.name == "Adding project_id to code_chunks table") after = read(tx);
    };
    Upgrade(db, std::move(o));
    ASSERT_GE(before, 0);
    if (prebuilt)
      EXPECT_GT(after, before);
    else
      EXPECT_EQ(after, before);
    EXPECT_EQ(db.Scalar("SELECT count(*) FROM code_chunks WHERE project_id <> 'default'"), "0");
  }
}

TEST_P(Migration002, FastPathAndUpdatePathGiveIdenticalResults) {
  TestDatabase fast = Database(), slow = Database();
  InsertSample(fast);
  InsertSample(slow);
  const std::string chunks = fast.Scalar("SELECT count(*) FROM code_chunks");
  ASSERT_EQ(chunks, "6");
  PathProbe fast_run = UpgradeAndProbe(fast);
  engine::MigratorOptions o;
  o.settings["migration_harness.force_update_path"] = "on";
  PathProbe slow_run = UpgradeAndProbe(slow, o);

  // The default run took the metadata-only path: no chunk was updated.
  EXPECT_EQ(fast_run.chunks_updated, 0) << fast_run.log;
  EXPECT_NE(fast_run.log.find("populated from parent repositories (fast path: constant default "
                              "'default', no table rewrite)"),
            std::string::npos)
      << fast_run.log;
  EXPECT_EQ(fast_run.log.find("by UPDATE"), std::string::npos) << fast_run.log;
  // The forced run really took the UPDATE fallback: every chunk updated once.
  EXPECT_EQ(slow_run.chunks_updated, std::stoll(chunks)) << slow_run.log;
  EXPECT_NE(slow_run.log.find("populated from parent repositories by UPDATE (1 distinct project "
                              "ids)"),
            std::string::npos)
      << slow_run.log;
  EXPECT_EQ(slow_run.log.find("fast path"), std::string::npos) << slow_run.log;

  EXPECT_TRUE(inspect::Diff(fast.Snapshot(), slow.Snapshot()).empty())
      << JoinLines(inspect::Diff(fast.Snapshot(), slow.Snapshot()));
  // By content: the quickstart's chunk ids are random.
  const char* rows = "SELECT string_agg(content || ':' || project_id, ',' ORDER BY content, "
                     "project_id) FROM code_chunks";
  EXPECT_EQ(fast.Scalar(rows), slow.Scalar(rows));
}

// docs/migrations.md#migration-002-in-brief's ten: eight SQL steps, the total time, then the engine's
// alembic_version write and commit.
const std::vector<std::string> kUpgradeSteps002 = {
    "Checking prerequisites",
    "Verifying foreign key constraints",
    "Adding project_id to repositories table",
    "Adding project_id to code_chunks table",
    "Adding validation constraints",
    "Creating performance index",
    "Dropping unused tables",
    "Running validation checks",
    "Logging total time",
    "Committing and writing alembic_version"};

TEST_P(Migration002, LogsEveryStepWithItsTiming) {
  TestDatabase db = Database();
  auto report = Upgrade(db);
  std::vector<std::string> names;
  double sum = 0;
  for (const auto& s : report.steps) {
    EXPECT_EQ(s.revision, "002") << s.name;
    EXPECT_EQ(s.direction, engine::Direction::kUpgrade) << s.name;
    names.push_back(s.name);
    EXPECT_EQ(s.index, static_cast<int>(names.size())) << s.name;
    EXPECT_EQ(s.count, 10) << s.name;
    // Every step is at least one round trip to the server: never 0.
    EXPECT_GT(s.seconds, 0.0) << s.name;
    sum += s.seconds;
  }
  EXPECT_EQ(names, kUpgradeSteps002);
  // The steps are disjoint intervals of the one transaction: together no
  // longer than the revision, which is no longer than the whole run.
  ASSERT_EQ(report.revision_seconds.count("002"), 1u);
  EXPECT_LE(sum, report.revision_seconds.at("002") + 1e-6);
  EXPECT_LE(report.revision_seconds.at("002"), report.seconds + 1e-6);
  EXPECT_GT(report.seconds, 0.0);
}

// A step's time is the time of its own SQL, waits included: step 1 takes its
// table locks up front, so a reader holding code_chunks for 300 ms after the
// upgrade started waiting for it shows in step 1's time.
TEST(Migration002Timing, AStepsTimeIncludesWhatItWaitedFor) {
  TestDatabase db("005");
  constexpr auto kHold = std::chrono::milliseconds(300);
  std::atomic<bool> locked{false}, saw_waiter{false};
  std::string reader_error;
  std::thread reader([&] {
    try {
      pg::Connection conn(db.url());
      pqxx::work tx(conn.raw());
      tx.exec("LOCK TABLE code_chunks IN ACCESS SHARE MODE");
      locked = true;
      saw_waiter = WaitUntil(
          [&] {
            // Databases cloned from one template share table OIDs: only
            // this database's waiters count.
            return db.Scalar("SELECT count(*) FROM pg_locks WHERE relation = "
                             "'code_chunks'::regclass AND NOT granted AND database = "
                             "(SELECT oid FROM pg_database WHERE datname = current_database())") ==
                   "1";
          },
          std::chrono::seconds(30));
      std::this_thread::sleep_for(kHold);
      tx.abort();
    } catch (const std::exception& e) {
      reader_error = e.what();
      locked = true;
    }
  });
  WaitUntil([&] { return locked.load(); }, std::chrono::seconds(60));
  engine::RunReport report;
  std::string upgrade_error;
  try {
    report = Upgrade(db);
  } catch (const std::exception& e) {
    upgrade_error = e.what();
  }
  reader.join();
  ASSERT_EQ(reader_error, "");
  ASSERT_EQ(upgrade_error, "");
  ASSERT_TRUE(saw_waiter) << "the upgrade never waited for the reader's lock";
  ASSERT_EQ(report.steps.size(), kUpgradeSteps002.size());
  const double held = std::chrono::duration<double>(kHold).count();
  EXPECT_EQ(report.steps[0].name, kUpgradeSteps002[0]);
  EXPECT_GE(report.steps[0].seconds, held);
  double sum = 0;
  for (const auto& s : report.steps) sum += s.seconds;
  EXPECT_LE(sum, report.seconds + 1e-6);
}

TEST_P(Migration002, AFailingStepLeavesNothingBehind) {
  TestDatabase db = Database();
  InsertSample(db);
  const DatabaseState before = CaptureState(db);
  engine::MigratorOptions o;
  o.after_step = [](const engine::StepTiming& s, pqxx::transaction_base&) {
    if (s.index == 6) throw std::runtime_error("injected fault after step 6");
  };
  EXPECT_THROW(Upgrade(db, o), std::runtime_error);
  ExpectUnchanged(db, before);
  EXPECT_EQ(db.Revision(), "005");
}

}  // namespace
}  // namespace harness::testing
