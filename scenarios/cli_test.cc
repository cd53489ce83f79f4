// The migration-harness binary as a user meets it: exit codes, the words of
// every error, and a database left exactly as it was.
#include <signal.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <regex>
#include <thread>

#include <gtest/gtest.h>
#include <pqxx/pqxx>

#include "fixtures/generator.h"
#include "harness/engine/migrator.h"
#include "harness/inspect/fingerprint.h"
#include "harness/pg/connection.h"
#include "harness/pg/process.h"
#include "scenarios/support/test_env.h"

namespace harness::testing {
namespace {

namespace fs = std::filesystem;

TEST(Cli, UpgradeRunsAndCurrentReportsHead) {
  TestDatabase db("005");
  auto up = RunCli({"upgrade", "head"}, db.url().text());
  EXPECT_EQ(up.exit_code, 0) << up.err;
  EXPECT_CONTAINS(up.err, "Running upgrade 005 -> 002, Remove non-search tables and add project_id columns");
  EXPECT_CONTAINS(up.err, "Step 1/10: Checking prerequisites...");
  EXPECT_CONTAINS(up.err, "Step 9/10: Logging total time...");
  EXPECT_CONTAINS(up.err, "NOTICE:  Migration 002 steps 1-8 took");
  EXPECT_CONTAINS(up.err, "Step 10/10: Committing and writing alembic_version...");
  EXPECT_CONTAINS(up.err, "Step 10/10: Complete");
  EXPECT_CONTAINS(up.err, "NOTICE:  No blocking foreign keys found");
  EXPECT_TRUE(std::regex_search(
      up.err, std::regex(R"(\[migration\.002\] Step 8/10: Complete \([0-9]+\.[0-9]{3}s\))")))
      << up.err;
  EXPECT_CONTAINS(up.out, "Upgraded 005 -> 002");
  auto cur = RunCli({"current"}, db.url().text());
  EXPECT_EQ(cur.exit_code, 0);
  EXPECT_EQ(cur.out, "002 (head)\n");
}

TEST(Cli, UpgradeAtHeadSaysItIsANoOp) {
  TestDatabase db("head");
  auto r = RunCli({"upgrade"}, db.url().text());
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_CONTAINS(r.out, "Already at 002: nothing to do");
}

TEST(Cli, DowngradeRelativeLogsTheWarning) {
  TestDatabase db("head");
  auto r = RunCli({"downgrade", "-1"}, db.url().text());
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_CONTAINS(r.err, "Running downgrade 002 -> 005");
  EXPECT_CONTAINS(r.err, "Rollback Step 1/6: Dropping performance index...");
  EXPECT_CONTAINS(r.err, "WARNING:  Data in dropped tables NOT restored");
  EXPECT_EQ(db.Revision(), "005");
}

TEST(Cli, HistoryListsTheChainNewestFirst) {
  auto r = RunCli({"history"});
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_EQ(r.out,
            "005 -> 002 (head), Remove non-search tables and add project_id columns\n"
            "003b -> 005, Case insensitive vendor name\n"
            "003a -> 003b, Fix version column for optimistic locking\n"
            "003 -> 003a, Add missing work item columns\n"
            "001 -> 003, Project tracking\n"
            "<base> -> 001, Initial schema\n");
  auto v = RunCli({"history", "--verbose"});
  EXPECT_CONTAINS(v.out, "Rev: 002 (head)\nParent: 005\n");
  EXPECT_CONTAINS(v.out, "1. Checking prerequisites");
  EXPECT_EQ(RunCli({"heads"}).out, "002 (head)\n");
}

TEST(Cli, StampRecordsWithoutRunning) {
  TestDatabase db("005");
  auto r = RunCliUnchanged(db, {"stamp", "003"}, 0);
  EXPECT_EQ(db.Revision(), "003");
}

TEST(Cli, SqlPrintsTheMigrationAndChangesNothing) {
  TestDatabase db("005");
  auto r = RunCliUnchanged(db, {"upgrade", "head", "--sql"}, 0);
  EXPECT_CONTAINS(r.out, "BEGIN;");
  EXPECT_CONTAINS(r.out, "-- Running upgrade 005 -> 002");
  EXPECT_CONTAINS(r.out, "CREATE INDEX");
  EXPECT_CONTAINS(r.out, "UPDATE alembic_version SET version_num='002' WHERE alembic_version.version_num = '005';");
  EXPECT_CONTAINS(r.out, "COMMIT;");
  EXPECT_EQ(db.Revision(), "005");
  auto offline = RunCli({"upgrade", "001", "--sql"});
  EXPECT_EQ(offline.exit_code, 0) << offline.err;
  EXPECT_CONTAINS(offline.out, "INSERT INTO alembic_version (version_num) VALUES ('001');");
}

TEST(Cli, DowngradeSqlPrintsTheRollbackAndChangesNothing) {
  TestDatabase db("head");
  auto r = RunCliUnchanged(db, {"downgrade", "-1", "--sql"}, 0);
  EXPECT_CONTAINS(r.out, "-- Running downgrade 002 -> 005");
  EXPECT_CONTAINS(r.out, "DROP INDEX IF EXISTS idx_project_repository;");
  EXPECT_CONTAINS(r.out, "UPDATE alembic_version SET version_num='005' WHERE alembic_version.version_num = '002';");
  EXPECT_EQ(db.Revision(), "002");
}

// Global options go before or after the command; the log file gets the
// same lines as the terminal, -v adds each step's SQL.
TEST(Cli, LogFileAndVerboseWorkAfterTheCommandToo) {
  TestDatabase db("005");
  std::string log = ::testing::TempDir() + pg::UniqueDatabaseName("log") + ".log";
  auto r = RunCli({"upgrade", "head", "--log-file", log, "-v"}, db.url().text());
  EXPECT_EQ(r.exit_code, 0) << r.err;
  std::ifstream in(log);
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::remove(log.c_str());
  EXPECT_CONTAINS(text, "Running upgrade 005 -> 002");
  EXPECT_CONTAINS(text, "Step 10/10: Complete");
  EXPECT_CONTAINS(text, "NOTICE:  All validations passed");
  EXPECT_CONTAINS(text, "ALTER TABLE code_chunks VALIDATE CONSTRAINT check_code_chunks_project_id");
  EXPECT_CONTAINS(r.err, "ALTER TABLE code_chunks VALIDATE CONSTRAINT");
  EXPECT_EQ(db.Revision(), "002");
}

// A CHECK of 002's name made by hand with the quickstart's weaker pattern
// is refused, not kept: it would let '-my-project' in.
TEST(CliBadInput, AProjectIdCheckWithAnotherDefinitionIsRefused) {
  TestDatabase db("005");
  db.Exec("ALTER TABLE repositories ADD COLUMN project_id varchar(50) NOT NULL DEFAULT 'default';"
          "ALTER TABLE repositories ADD CONSTRAINT check_repositories_project_id "
          "CHECK (project_id ~ '^[a-z0-9-]{1,50}$')");
  auto r = RunCliUnchanged(db, {"upgrade", "head"}, 2);
  EXPECT_CONTAINS(r.err, "constraint check_repositories_project_id on repositories exists with "
                         "another definition");
  EXPECT_CONTAINS(r.err, "ALTER TABLE repositories DROP CONSTRAINT check_repositories_project_id;");
  EXPECT_EQ(db.Revision(), "005");
}

// Step 8 validates the result: a code_chunks.project_id that was there
// before (and kept by step 4) but carries a default fails it, naming what
// is wrong, and everything rolls back.
TEST(CliBadInput, Step8NamesWhatItsValidationFound) {
  TestDatabase db("005");
  db.Exec("ALTER TABLE code_chunks ADD COLUMN project_id varchar(50) NOT NULL DEFAULT 'default'");
  auto r = RunCliUnchanged(db, {"upgrade", "head"}, 1);
  EXPECT_CONTAINS(r.err, "validation failed: code_chunks.project_id is not varchar(50) NOT NULL "
                         "without default");
  EXPECT_CONTAINS(r.err, "SQLSTATE MHV01");
  EXPECT_EQ(db.Revision(), "005");
}

// Another schema with the same tables (a backup copy, say) does not
// confuse 002's checks: stamp 005 and upgrade again still changes nothing.
TEST(Cli, AnotherSchemaWithTheSameTablesDoesNotBreakTheReRun) {
  TestDatabase db("head");
  db.Exec("CREATE SCHEMA bak; CREATE TABLE bak.repositories (LIKE public.repositories INCLUDING "
          "ALL); CREATE TABLE bak.code_chunks (LIKE public.code_chunks INCLUDING ALL)");
  auto before = db.Snapshot();
  ASSERT_EQ(RunCli({"stamp", "005"}, db.url().text()).exit_code, 0);
  auto r = RunCli({"upgrade", "head"}, db.url().text());
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_CONTAINS(r.err, "0 CHECK constraint(s) added");
  EXPECT_CONTAINS(r.err, "NOTICE:  0 tables dropped");
  EXPECT_EQ(r.err.find("does not exist, skipping"), std::string::npos) << r.err;
  EXPECT_EQ(db.Revision(), "002");
  EXPECT_TRUE(inspect::Diff(before, db.Snapshot()).empty());
}

TEST(Cli, CurrentSaysHowEmbeddingsAreStored) {
  TestDatabase db("005");
  auto r = RunCli({"current"}, db.url().text());
  EXPECT_EQ(r.exit_code, 0) << r.err;
  std::string type = db.Scalar(
      "SELECT format_type(atttypid, atttypmod) FROM pg_attribute "
      "WHERE attrelid = 'code_chunks'::regclass AND attname = 'embedding'");
  EXPECT_CONTAINS(r.err, "code_chunks.embedding is stored as " + type);
}

// Bad input: one clear line, exit 2 or 3, and the database as it was.
TEST(CliBadInput, NoUrl) {
  auto r = RunCli({"current"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_CONTAINS(r.err, "error: no database URL given");
  EXPECT_CONTAINS(r.err, "DATABASE_URL");
}

TEST(CliBadInput, MalformedUrl) {
  auto r = RunCli({"current"}, "postgresql://user:pw@host:notaport/db");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_CONTAINS(r.err, "malformed database URL");
  auto r2 = RunCli({"--database-url", "not a url at all", "current"});
  EXPECT_EQ(r2.exit_code, 2);
  EXPECT_CONTAINS(r2.err, "malformed database URL");
}

TEST(CliBadInput, UnknownTargetListsTheKnownRevisions) {
  TestDatabase db("005");
  auto r = RunCliUnchanged(db, {"upgrade", "004"}, 2);
  EXPECT_CONTAINS(r.err, "unknown revision '004'");
  EXPECT_CONTAINS(r.err, "known revisions: base, 001, 003, 003a, 003b, 005, 002, head");
  EXPECT_EQ(db.Revision(), "005");
}

TEST(CliBadInput, UnknownRevisionInTheDatabaseIsNamed) {
  TestDatabase db("005");
  db.Exec("UPDATE alembic_version SET version_num = 'f00ba4'");
  auto r = RunCliUnchanged(db, {"upgrade", "head"}, 2);
  EXPECT_CONTAINS(r.err, "the database is at revision 'f00ba4', which this chain does not know");
  EXPECT_CONTAINS(r.err, "stamp");
  EXPECT_EQ(db.Scalar("SELECT version_num FROM alembic_version"), "f00ba4");
  EXPECT_EQ(RunCli({"current"}, db.url().text()).exit_code, 2);
}

TEST(CliBadInput, TwoRowsInAlembicVersion) {
  TestDatabase db("005");
  db.Exec("INSERT INTO alembic_version VALUES ('003')");
  auto r = RunCli({"upgrade", "head"}, db.url().text());
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_CONTAINS(r.err, "alembic_version holds 2 rows (003, 005)");
}

TEST(CliBadInput, MalformedMigrationFileNamesFileAndLine) {
  TestDatabase db("005");
  fs::path dir = fs::temp_directory_path() / pg::UniqueDatabaseName("mh_migrations");
  fs::create_directories(dir);
  for (const auto& e : fs::directory_iterator(MigrationsDir()))
    fs::copy(e.path(), dir / e.path().filename());
  {
    std::ofstream broken(dir / "003a_add_missing_work_item_columns.sql");
    broken << "--! revision: 003a\n--! down_revision: 003\n--! message: broken\n--! upgrade\n"
              "--! stepp: typo\n";
  }
  auto r = RunCli({"upgrade", "head"}, db.url().text(), {{"HARNESS_MIGRATIONS", dir.string()}});
  fs::remove_all(dir);
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_CONTAINS(r.err, "003a_add_missing_work_item_columns.sql:5: unknown directive `--! stepp`");
  EXPECT_EQ(db.Revision(), "005");
}

TEST(CliBadInput, UnreachableServerNamesHostAndPortNotThePassword) {
  auto r = RunCli({"current"}, "postgresql://alice:s3cretPassw0rd@127.0.0.1:1/codebase_mcp");
  EXPECT_EQ(r.exit_code, 3);
  EXPECT_CONTAINS(r.err, "cannot connect to 127.0.0.1:1/codebase_mcp as alice");
  EXPECT_EQ(r.err.find("s3cretPassw0rd"), std::string::npos) << r.err;
  EXPECT_EQ(r.out.find("s3cretPassw0rd"), std::string::npos);
}

TEST(CliBadInput, UnknownSubcommandOrOptionIsUsage) {
  EXPECT_EQ(RunCli({"frobnicate"}).exit_code, 2);
  EXPECT_EQ(RunCli({"upgrade", "--bogus"}).exit_code, 2);
  EXPECT_EQ(RunCli({"--lock-timeout", "-3", "current"}).exit_code, 2);
  EXPECT_EQ(RunCli({"downgrade"}).exit_code, 2);
}

// A session holding a lock on a core table (a long report query): the
// upgrade gives up within --lock-timeout, names the table, the session and
// when its query started, and changes nothing.
class CliLocks : public ::testing::TestWithParam<std::string> {};

TEST_P(CliLocks, LockTimeoutNamesTheTableAndTheBlockingSession) {
  const std::string table = GetParam();
  TestDatabase db("005");
  auto before = db.Snapshot();
  pg::Connection blocker(db.url());
  pqxx::work hold(blocker.raw());
  hold.exec("LOCK TABLE " + table + " IN ACCESS SHARE MODE");
  auto t0 = std::chrono::steady_clock::now();
  auto r = RunCli({"--lock-timeout", "1", "upgrade", "head"}, db.url().text());
  double took = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  hold.abort();
  EXPECT_EQ(r.exit_code, 3) << r.err;
  EXPECT_CONTAINS(r.err, "lock timeout");
  EXPECT_CONTAINS(r.err, "table " + table + " is locked");
  EXPECT_CONTAINS(r.err, "by pid " + std::to_string(blocker.backend_pid()));
  EXPECT_CONTAINS(r.err, "query started ");
  EXPECT_LT(took, 30.0);
  EXPECT_EQ(db.Revision(), "005");
  EXPECT_TRUE(inspect::Diff(before, db.Snapshot()).empty());
}

INSTANTIATE_TEST_SUITE_P(CoreTables, CliLocks, ::testing::Values("repositories", "code_chunks"),
                         [](const auto& p) { return std::string(p.param); });

TEST(CliNoWait, NoWaitFailsFastWhileAnotherMigrationRuns) {
  TestDatabase db("005");
  pg::Connection other(db.url());
  pqxx::work hold(other.raw());
  hold.exec("SELECT pg_advisory_xact_lock(" + std::to_string(engine::kMigrationLockKey) + ")");
  auto r = RunCli({"--no-wait", "upgrade", "head"}, db.url().text());
  hold.abort();
  EXPECT_EQ(r.exit_code, 3);
  EXPECT_CONTAINS(r.err, "another migration is running");
  EXPECT_EQ(db.Revision(), "005");
}

// Ctrl-C while a statement waits: cancelled, rolled back, no session left.
class CliSignal : public ::testing::TestWithParam<int> {};

TEST_P(CliSignal, CancelsRollsBackAndLeavesNoSession) {
  const int sig = GetParam();
  TestDatabase db("005");
  auto before = db.Snapshot();
  pg::Connection blocker(db.url());
  pqxx::work hold(blocker.raw());
  hold.exec("LOCK TABLE code_chunks IN ACCESS SHARE MODE");

  BackgroundCli cli({"--lock-timeout", "0", "upgrade", "head"}, db.url().text());
  // Wait until the upgrade is really blocked behind our lock.
  ASSERT_TRUE(WaitUntil(
      [&] {
        return db.Scalar("SELECT count(*) FROM pg_stat_activity WHERE datname = "
                         "current_database() AND application_name = 'migration-harness' AND "
                         "wait_event_type = 'Lock'") == "1";
      },
      std::chrono::seconds(30)))
      << "the upgrade never blocked";
  cli.Signal(sig);
  auto status = cli.Wait(std::chrono::seconds(30));
  ASSERT_TRUE(status);
  hold.abort();
  std::string out = cli.Output();
  EXPECT_EQ(*status, 130) << out;
  EXPECT_CONTAINS(out, sig == SIGINT ? "interrupted by SIGINT" : "interrupted by SIGTERM");
  EXPECT_CONTAINS(out, "the database is as it was");
  EXPECT_EQ(db.Revision(), "005");
  EXPECT_TRUE(inspect::Diff(before, db.Snapshot()).empty());
  // The backend ends a moment after its client; give it up to 10 s.
  std::string sessions;
  for (int i = 0; i < 1000 && sessions != "0"; ++i) {
    sessions = db.Scalar(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND "
        "application_name = 'migration-harness' AND pid <> pg_backend_pid() AND pid <> " +
        std::to_string(blocker.backend_pid()));
    if (sessions != "0") std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_EQ(sessions, "0");
}

// HARNESS_SLOW_TESTS: the signal arrives while step 8 scans a million
// chunks: the running statement is cancelled, not waited for.
class SlowCliSignal : public ::testing::TestWithParam<int> {};

TEST_P(SlowCliSignal, CancelsTheValidationScanOfAMillionChunks) {
  const int sig = GetParam();
  TestDatabase db("005");
  {
    pg::Connection conn(db.url());
    fixtures::GeneratorOptions go;
    go.repositories = 1000;
    go.chunks_per_repo = 1000;
    fixtures::Generate(conn, go);
  }
  auto before = db.Snapshot();
  std::string rows;
  {
    pg::Connection conn(db.url());
    pqxx::read_transaction tx(conn.raw());
    rows = inspect::TakeFingerprint(tx, "code_chunks").ToString();
  }
  BackgroundCli cli({"upgrade", "head"}, db.url().text());
  pg::Connection side(db.url());
  bool scanning = WaitUntil(
      [&] {
        pqxx::nontransaction tx(side.raw());
        return !cli.Running() ||
               tx.exec1("SELECT count(*) FROM pg_stat_activity WHERE datname = "
                        "current_database() AND pid <> pg_backend_pid() AND state = 'active' "
                        "AND query LIKE '%VALIDATE CONSTRAINT check_repositories_project_id%'")[0]
                       .as<int>() > 0;
      },
      std::chrono::minutes(5));
  ASSERT_TRUE(scanning && cli.Running()) << "the upgrade finished before the scan could be caught";
  auto t0 = std::chrono::steady_clock::now();
  cli.Signal(sig);
  auto status = cli.Wait(std::chrono::seconds(60));
  ASSERT_TRUE(status);
  double took = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::string out = cli.Output();
  std::printf("exited %.3f s after the signal\n", took);
  EXPECT_EQ(*status, 130) << out;
  EXPECT_CONTAINS(out, "Step 8/10: Running validation checks");
  EXPECT_CONTAINS(out, "the database is as it was");
  EXPECT_EQ(db.Revision(), "005");
  EXPECT_TRUE(inspect::Diff(before, db.Snapshot()).empty());
  pg::Connection conn(db.url());
  pqxx::read_transaction tx(conn.raw());
  EXPECT_EQ(inspect::TakeFingerprint(tx, "code_chunks").ToString(), rows);
}

INSTANTIATE_TEST_SUITE_P(Signals, SlowCliSignal, ::testing::Values(SIGINT, SIGTERM),
                         [](const auto& p) { return p.param == SIGINT ? "SIGINT" : "SIGTERM"; });

INSTANTIATE_TEST_SUITE_P(Signals, CliSignal, ::testing::Values(SIGINT, SIGTERM),
                         [](const auto& p) { return p.param == SIGINT ? "SIGINT" : "SIGTERM"; });

}  // namespace
}  // namespace harness::testing
