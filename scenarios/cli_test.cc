// The migration-harness binary as a user meets it: exit codes, the words of
// every error, and a database left exactly as it was.
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <regex>
#include <thread>

#include <gtest/gtest.h>
#include <pqxx/pqxx>

#include "harness/codesearch/generator.h"
#include "harness/engine/migrator.h"
#include "harness/pg/connection.h"
#include "harness/sys/process.h"
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
  // The guards of step 2, the pre checks' passing lines.
  EXPECT_CONTAINS(up.err, "[migration.002] ✓ No foreign keys found from dropped tables to repositories/code_chunks");
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
  // The last thing the rollback says, after its validation.
  EXPECT_LT(r.err.find("9 tables restored"), r.err.find("WARNING:  Data in dropped tables"))
      << r.err;
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
  const DatabaseState before = CaptureState(db);
  auto r = RunCli({"stamp", "003"}, db.url().text());
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(db.Revision(), "003");
  // It wrote the revision and nothing else: stamped back, all is as it was.
  ASSERT_EQ(RunCli({"stamp", "005"}, db.url().text()).exit_code, 0);
  ExpectUnchanged(db, before);
}

TEST(Cli, SqlPrintsTheMigrationAndChangesNothing) {
  TestDatabase db("005");
  auto r = RunCliUnchanged(db, {"upgrade", "head", "--sql"}, 0);
  EXPECT_CONTAINS(r.out, "BEGIN;");
  EXPECT_CONTAINS(r.out, "-- Running upgrade 005 -> 002");
  EXPECT_CONTAINS(r.out, "CREATE INDEX");
  EXPECT_CONTAINS(r.out, "UPDATE public.alembic_version SET version_num='002' WHERE alembic_version.version_num = '005';");
  EXPECT_CONTAINS(r.out, "COMMIT;");
  EXPECT_EQ(db.Revision(), "005");
  auto offline = RunCli({"upgrade", "001", "--sql"});
  EXPECT_EQ(offline.exit_code, 0) << offline.err;
  EXPECT_CONTAINS(offline.out, "INSERT INTO public.alembic_version (version_num) VALUES ('001');");
}

TEST(Cli, DowngradeSqlPrintsTheRollbackAndChangesNothing) {
  TestDatabase db("head");
  auto r = RunCliUnchanged(db, {"downgrade", "-1", "--sql"}, 0);
  EXPECT_CONTAINS(r.out, "-- Running downgrade 002 -> 005");
  EXPECT_CONTAINS(r.out, "DROP INDEX IF EXISTS idx_project_repository;");
  EXPECT_CONTAINS(r.out, "UPDATE public.alembic_version SET version_num='005' WHERE alembic_version.version_num = '002';");
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
  EXPECT_CONTAINS(text, "EXECUTE format('ALTER TABLE %I VALIDATE CONSTRAINT %I', t.tab, t.con);");
  EXPECT_CONTAINS(r.err, "VALIDATE CONSTRAINT %I");
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
  EXPECT_CONTAINS(r.err, "ALTER TABLE public.repositories DROP CONSTRAINT check_repositories_project_id;");
  EXPECT_EQ(db.Revision(), "005");
}

// A code_chunks.project_id that was there before but carries a default is
// not what 002 builds: refused by its guard before any change, naming what
// it found and what 002 wants (exit 2, as `check pre`'s gate).
TEST(CliBadInput, AChunkColumnWithADefaultIsRefusedBeforeAnyChange) {
  TestDatabase db("005");
  db.Exec("ALTER TABLE code_chunks ADD COLUMN project_id varchar(50) NOT NULL DEFAULT 'default'");
  auto r = RunCliUnchanged(db, {"upgrade", "head"}, 2);
  EXPECT_CONTAINS(r.err, "revision 002 refuses to run: Objects of 002 built beforehand are not what 002 builds: "
                         "code_chunks.project_id is character varying(50), NOT NULL, DEFAULT "
                         "'default'::character varying, not character varying(50), NOT NULL, no default "
                         "[project_id_definitions]");
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
  RunCliUnchanged(db, {"current"}, 2);
}

TEST(CliBadInput, TwoRowsInAlembicVersion) {
  TestDatabase db("005");
  db.Exec("INSERT INTO alembic_version VALUES ('003')");
  auto r = RunCliUnchanged(db, {"upgrade", "head"}, 2);
  EXPECT_CONTAINS(r.err, "alembic_version holds 2 rows (003, 005)");
}

// Only a table that lost its primary key can hold one; no tool writes it.
TEST(CliBadInput, NullVersionNumIsBadInputWithOneClearLine) {
  TestDatabase db("005");
  db.Exec("ALTER TABLE alembic_version DROP CONSTRAINT alembic_version_pkc; "
          "ALTER TABLE alembic_version ALTER COLUMN version_num DROP NOT NULL; "
          "UPDATE alembic_version SET version_num = NULL");
  for (const std::vector<std::string>& args :
       {std::vector<std::string>{"upgrade", "head"}, {"current"}, {"downgrade", "-1"},
        {"check", "pre"}}) {
    auto r = RunCliUnchanged(db, args, 2);
    EXPECT_CONTAINS(r.err, "error: alembic_version holds a NULL version_num");
    EXPECT_EQ(r.err.find("unexpected error"), std::string::npos) << r.err;
  }
  // The hint's remedy works.
  auto stamp = RunCli({"stamp", "005"}, db.url().text());
  EXPECT_EQ(stamp.exit_code, 0) << stamp.err;
  EXPECT_EQ(db.Revision(), "005");
}

TEST(CliBadInput, ASymlinkLoopInTheMigrationsIsBadInput) {
  TestDatabase db("005");
  fs::path dir = fs::temp_directory_path() / pg::UniqueDatabaseName("mh_migrations");
  fs::create_directories(dir);
  for (const auto& e : fs::directory_iterator(MigrationsDir()))
    fs::copy(e.path(), dir / e.path().filename());
  fs::create_symlink(dir / "loop_b.sql", dir / "loop_a.sql");
  fs::create_symlink(dir / "loop_a.sql", dir / "loop_b.sql");
  auto r = RunCliUnchanged(db, {"--migrations", dir.string(), "upgrade", "head"}, 2);
  EXPECT_CONTAINS(r.err, "loop_a.sql cannot be read");
  EXPECT_EQ(r.err.find("unexpected error"), std::string::npos) << r.err;
  // The directory itself a loop: refused by the option's own check.
  fs::path loop = dir / "self";
  fs::create_symlink(loop, loop);
  auto d = RunCliUnchanged(db, {"--migrations", loop.string(), "current"}, 2);
  EXPECT_CONTAINS(d.err, "self");
  fs::remove_all(dir);
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
  auto r = RunCliUnchanged(db, {"upgrade", "head"}, 2, {}, {{"HARNESS_MIGRATIONS", dir.string()}});
  fs::remove_all(dir);
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
  const DatabaseState before = CaptureState(db);
  pg::Connection blocker(db.url());
  pqxx::work hold(blocker.raw());
  hold.exec("LOCK TABLE " + table + " IN ACCESS SHARE MODE");
  auto t0 = std::chrono::steady_clock::now();
  auto r = RunCli({"--lock-timeout", "0.3", "upgrade", "head"}, db.url().text());
  double took = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  hold.abort();
  EXPECT_EQ(r.exit_code, 3) << r.err;
  EXPECT_CONTAINS(r.err, "lock timeout");
  EXPECT_CONTAINS(r.err, "table " + table + " is locked");
  EXPECT_CONTAINS(r.err, "by pid " + std::to_string(blocker.backend_pid()));
  EXPECT_CONTAINS(r.err, "query started ");
  EXPECT_LT(took, 30.0);
  EXPECT_EQ(db.Revision(), "005");
  ExpectUnchanged(db, before);
}

INSTANTIATE_TEST_SUITE_P(CoreTables, CliLocks, ::testing::Values("repositories", "code_chunks"),
                         [](const auto& p) { return std::string(p.param); });

TEST(CliNoWait, NoWaitFailsFastWhileAnotherMigrationRuns) {
  TestDatabase db("005");
  pg::Connection other(db.url());
  pqxx::work hold(other.raw());
  hold.exec("SELECT pg_advisory_xact_lock(" + std::to_string(engine::kMigrationLockKey) + ")");
  auto r = RunCliUnchanged(db, {"--no-wait", "upgrade", "head"}, 3);
  hold.abort();
  EXPECT_CONTAINS(r.err, "another migration is running");
  EXPECT_EQ(db.Revision(), "005");
}

// Ctrl-C while a statement waits: cancelled, rolled back, no session left.
class CliSignal : public ::testing::TestWithParam<int> {};

TEST_P(CliSignal, CancelsRollsBackAndLeavesNoSession) {
  const int sig = GetParam();
  TestDatabase db("005");
  const DatabaseState before = CaptureState(db);
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
  ExpectUnchanged(db, before);
  // The backend ends a moment after its client; give it up to 10 s. The
  // lock monitor's session ("migration-harness lock monitor") too.
  std::string sessions;
  for (int i = 0; i < 1000 && sessions != "0"; ++i) {
    sessions = db.Scalar(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND "
        "application_name LIKE 'migration-harness%' AND pid <> pg_backend_pid() AND pid <> " +
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
    codesearch::GeneratorOptions go;
    go.repositories = 1000;
    go.chunks_per_repo = 1000;
    codesearch::Generate(conn, go);
  }
  const DatabaseState before = CaptureState(db);
  BackgroundCli cli({"upgrade", "head"}, db.url().text());
  pg::Connection side(db.url());
  bool scanning = WaitUntil(
      [&] {
        pqxx::nontransaction tx(side.raw());
        return !cli.Running() ||
               tx.exec1("SELECT count(*) FROM pg_stat_activity WHERE datname = "
                        "current_database() AND pid <> pg_backend_pid() AND state = 'active' "
                        // Step 8's DO block (the EXECUTE'd ALTER is not what
                        // pg_stat_activity shows: the top-level statement is).
                        "AND query LIKE '%ALTER TABLE !%I VALIDATE CONSTRAINT !%I%' ESCAPE '!'")[0]
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
  ExpectUnchanged(db, before);
}

INSTANTIATE_TEST_SUITE_P(Signals, SlowCliSignal, ::testing::Values(SIGINT, SIGTERM),
                         [](const auto& p) { return p.param == SIGINT ? "SIGINT" : "SIGTERM"; });

INSTANTIATE_TEST_SUITE_P(Signals, CliSignal, ::testing::Values(SIGINT, SIGTERM),
                         [](const auto& p) { return p.param == SIGINT ? "SIGINT" : "SIGTERM"; });

// The files the CLI writes (--save-baseline, --junit, --report-json,
// --log-file) appear whole or not at all (harness/sys/files.h). A destination
// that can never be written is refused before any work (exit 2); a write
// that fails after the run is exit 3, with the run's outcome still printed.
// Root runs these tests: /dev/full, /proc, missing folders and directories
// stand for unwritable paths, RLIMIT_FSIZE (EFBIG) for a full disk.
class CliFiles : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / pg::UniqueDatabaseName("mh_cli_files");
    fs::create_directories(dir_);
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }
  // Names in the folder besides `keep` (a temporary file left behind).
  std::string Others(const std::vector<std::string>& keep) const {
    std::string out;
    for (const auto& e : fs::directory_iterator(dir_)) {
      std::string name = e.path().filename().string();
      if (std::find(keep.begin(), keep.end(), name) == keep.end()) out += name + " ";
    }
    return out;
  }
  static std::string Read(const fs::path& path) {
    std::ifstream in(path);
    return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  }
  static void Write(const fs::path& path, const std::string& text) { std::ofstream(path) << text; }
  // RunCli with every file the CLI writes limited to 512 bytes (dash's
  // `ulimit -f 1`), SIGXFSZ ignored: a write past it fails with EFBIG.
  static sys::ProcessResult RunCliWithSmallFiles(const std::vector<std::string>& args,
                                                const std::string& url) {
    std::vector<std::string> argv = {"/bin/sh", "-c", "trap '' XFSZ; ulimit -f 1; exec \"$0\" \"$@\"",
                                     HARNESS_CLI_PATH};
    argv.insert(argv.end(), args.begin(), args.end());
    sys::ProcessOptions o;
    o.env = {{"HARNESS_MIGRATIONS", MigrationsDir().string()}, {"DATABASE_URL", url}};
    o.timeout = std::chrono::seconds(600);
    return sys::RunProcess(argv, o);
  }
  fs::path dir_;
};

TEST_F(CliFiles, SaveBaselineToDevFullIsRefusedBeforeAnyWork) {
  TestDatabase db("005");
  auto r = RunCliUnchanged(db, {"check", "pre", "--save-baseline", "/dev/full"}, 2);
  EXPECT_CONTAINS(r.err, "error: cannot write the baseline /dev/full: it is a character device, "
                         "not a regular file");
  EXPECT_EQ(r.err.find("baseline saved"), std::string::npos) << r.err;
  EXPECT_EQ(r.out, "") << "refused before the checks ran";
  struct stat st {};
  ASSERT_EQ(::lstat("/dev/full", &st), 0);
  EXPECT_TRUE(S_ISCHR(st.st_mode)) << "/dev/full was replaced";
  // And --junit the same.
  auto j = RunCliUnchanged(db, {"check", "post", "--junit", "/dev/full"}, 2);
  EXPECT_CONTAINS(j.err, "error: cannot write the JUnit report /dev/full: it is a character device");
}

TEST_F(CliFiles, SaveBaselineIntoAMissingFolderIsRefusedAndCreatesNothing) {
  TestDatabase db("005");
  fs::path file = dir_ / "missing" / "pre-002.json";
  auto r = RunCliUnchanged(db, {"check", "pre", "--save-baseline", file.string()}, 2);
  EXPECT_CONTAINS(r.err, "error: cannot write the baseline " + file.string() + ": the folder " +
                             (dir_ / "missing").string() + " does not exist (No such file or directory)");
  EXPECT_EQ(r.err.find("baseline saved"), std::string::npos) << r.err;
  EXPECT_FALSE(fs::exists(dir_ / "missing"));
  // A destination that is a directory.
  fs::create_directories(dir_ / "adir");
  auto d = RunCliUnchanged(db, {"check", "pre", "--save-baseline", (dir_ / "adir").string()}, 2);
  EXPECT_CONTAINS(d.err, "cannot write the baseline " + (dir_ / "adir").string() + ": it is a directory");
  EXPECT_TRUE(fs::is_directory(dir_ / "adir"));
}

// A write that fails after the run: the results are printed, the error
// names the file and the reason, the previous baseline stays, exit 3.
TEST_F(CliFiles, SaveBaselineThatFailsAfterTheChecksIsExit3AndKeepsThePreviousFile) {
  TestDatabase db("005");
  fs::path file = dir_ / "pre-002.json";
  Write(file, "previous\n");
  const DatabaseState before = CaptureState(db);
  auto r = RunCliWithSmallFiles({"check", "pre", "--save-baseline", file.string()}, db.url().text());
  EXPECT_EQ(r.exit_code, 3) << r.out << r.err;
  ExpectUnchanged(db, before);
  EXPECT_CONTAINS(r.out, "All pre-migration checks passed");
  EXPECT_CONTAINS(r.err, "error: cannot write the baseline " + file.string() + ": writing " +
                             (dir_ / ".pre-002.json.").string());
  EXPECT_CONTAINS(r.err, "File too large");
  EXPECT_EQ(r.err.find("baseline saved"), std::string::npos) << r.err;
  EXPECT_EQ(Read(file), "previous\n");
  EXPECT_EQ(Others({"pre-002.json"}), "");
  // Without the limit the same command replaces it.
  auto ok = RunCli({"check", "pre", "--save-baseline", file.string()}, db.url().text());
  EXPECT_EQ(ok.exit_code, 0) << ok.err;
  EXPECT_CONTAINS(ok.err, "baseline saved to " + file.string());
  EXPECT_CONTAINS(Read(file), "\"catalog\"");
  EXPECT_EQ(Others({"pre-002.json"}), "");
}

// The run's own failure keeps its code; the write error is still printed.
TEST_F(CliFiles, AJUnitWriteErrorKeepsTheChecksOwnExitCode) {
  TestDatabase db("005");
  fs::path file = dir_ / "rollback.xml";
  const DatabaseState before = CaptureState(db);
  auto r = RunCliWithSmallFiles({"check", "rollback", "--junit", file.string()}, db.url().text());
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;  // skipped checks: not a full pass
  ExpectUnchanged(db, before);
  EXPECT_CONTAINS(r.out, "not a full pass");
  EXPECT_CONTAINS(r.err, "error: cannot write the JUnit report " + file.string());
  EXPECT_CONTAINS(r.err, "File too large");
  EXPECT_FALSE(fs::exists(file));
  EXPECT_EQ(Others({}), "");
}

TEST_F(CliFiles, VerifyReportToProcVersionIsRefusedBeforeAnyWork) {
  TestDatabase db("005");
  std::string before = Read("/proc/version");
  auto r = RunCliUnchanged(db, {"verify", "--report-json", "/proc/version"}, 2);
  EXPECT_CONTAINS(r.err, "error: cannot write the JSON report /proc/version: /proc is on the proc "
                         "pseudo file system");
  EXPECT_EQ(r.out, "") << "refused before the rehearsal";
  EXPECT_EQ(Read("/proc/version"), before);
}

TEST_F(CliFiles, VerifyJUnitIntoAMissingFolderIsRefusedAndCreatesNothing) {
  TestDatabase db("005");
  fs::path file = dir_ / "no" / "such" / "verify.xml";
  auto r = RunCliUnchanged(db, {"verify", "--junit", file.string()}, 2);
  EXPECT_CONTAINS(r.err, "error: cannot write the JUnit report " + file.string() + ": the folder " +
                             (dir_ / "no" / "such").string() + " does not exist");
  EXPECT_EQ(r.out, "");
  EXPECT_FALSE(fs::exists(dir_ / "no"));
}

TEST_F(CliFiles, LogFileInAMissingFolderIsExit2AndTouchesNothing) {
  ASSERT_FALSE(fs::exists("/nonexistent"));
  TestDatabase db("005");
  auto r = RunCliUnchanged(db, {"--log-file", "/nonexistent/dir/x", "upgrade", "head"}, 2);
  EXPECT_CONTAINS(r.err, "error: cannot write the log file /nonexistent/dir/x: the folder "
                         "/nonexistent/dir does not exist (No such file or directory)");
  EXPECT_CONTAINS(r.err, "--log-file");
  EXPECT_EQ(r.err.find("Running upgrade"), std::string::npos) << r.err;
  EXPECT_FALSE(fs::exists("/nonexistent"));
  EXPECT_EQ(db.Revision(), "005");
  // Not a regular file, or a symbolic link: refused the same way.
  auto dev = RunCliUnchanged(db, {"--log-file", "/dev/full", "upgrade", "head"}, 2);
  EXPECT_CONTAINS(dev.err, "error: cannot write the log file /dev/full: it is a character device");
  Write(dir_ / "real.log", "kept\n");
  fs::create_symlink(dir_ / "real.log", dir_ / "link.log");
  auto link = RunCliUnchanged(db, {"upgrade", "head", "--log-file", (dir_ / "link.log").string()}, 2);
  EXPECT_CONTAINS(link.err, "it is a symbolic link");
  EXPECT_EQ(Read(dir_ / "real.log"), "kept\n");
  EXPECT_TRUE(fs::is_symlink(dir_ / "link.log"));
  EXPECT_EQ(Others({"real.log", "link.log"}), "");
  EXPECT_EQ(db.Revision(), "005");
}

// A good --log-file: replaced by this run's log when the command ends, also
// when the command fails; no temporary file left.
TEST_F(CliFiles, LogFileIsReplacedWithTheWholeLogAlsoOnFailure) {
  TestDatabase db("005");
  fs::path log = dir_ / "migration-002.log";
  Write(log, "the previous run\n");
  auto r = RunCli({"--log-file", log.string(), "upgrade", "head"}, db.url().text());
  EXPECT_EQ(r.exit_code, 0) << r.err;
  std::string text = Read(log);
  EXPECT_EQ(text.find("the previous run"), std::string::npos) << text;
  EXPECT_CONTAINS(text, "Running upgrade 005 -> 002");
  EXPECT_CONTAINS(text, "Step 10/10: Complete");
  EXPECT_TRUE(std::regex_search(
      text, std::regex(R"(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3} info    Running upgrade 005 -> 002)")))
      << text;
  EXPECT_EQ(Others({"migration-002.log"}), "");
  EXPECT_EQ(db.Revision(), "002");
  // A command that fails (a lock timeout, exit 3) still leaves its log,
  // and the database as it was.
  const DatabaseState before = CaptureState(db);
  pg::Connection blocker(db.url());
  pqxx::work hold(blocker.raw());
  hold.exec("LOCK TABLE code_chunks IN ACCESS SHARE MODE");
  auto bad = RunCli({"--lock-timeout", "0.3", "--log-file", log.string(), "downgrade", "-1"},
                    db.url().text());
  hold.abort();
  EXPECT_EQ(bad.exit_code, 3) << bad.err;
  EXPECT_CONTAINS(bad.err, "lock timeout");
  ExpectUnchanged(db, before);
  text = Read(log);
  EXPECT_CONTAINS(text, "Running downgrade 002 -> 005");
  EXPECT_EQ(text.find("Running upgrade 005 -> 002"), std::string::npos) << text;
  EXPECT_EQ(Others({"migration-002.log"}), "");
  EXPECT_EQ(db.Revision(), "002");
}

// verify: a report that cannot be written after a good rehearsal is exit 3,
// with the text report printed; the other report is still written.
TEST_F(CliFiles, VerifyReportWriteErrorAfterTheRehearsalIsExit3) {
  TestDatabase db("005");
  fs::path json = dir_ / "verify.json";
  Write(json, "previous\n");
  const DatabaseState before = CaptureState(db);
  auto r = RunCliWithSmallFiles({"verify", "--report-json", json.string()}, db.url().text());
  EXPECT_EQ(r.exit_code, 3) << r.out << r.err;
  ExpectUnchanged(db, before);
  EXPECT_CONTAINS(r.out, "READY");
  EXPECT_CONTAINS(r.err, "error: cannot write the JSON report " + json.string() + ": writing " +
                             (dir_ / ".verify.json.").string());
  EXPECT_CONTAINS(r.err, "File too large");
  EXPECT_EQ(Read(json), "previous\n");
  EXPECT_EQ(Others({"verify.json"}), "");
}

// verify stopping on its own error (exit 2) keeps that code when its
// reports cannot be written either; both errors are printed.
TEST_F(CliFiles, VerifyStoppedByAnErrorKeepsItsCodeWhenTheReportsCannotBeWritten) {
  TestDatabase db("005");
  db.Exec("UPDATE alembic_version SET version_num = '9zz'");
  fs::path xml = dir_ / "verify.xml";
  const DatabaseState before = CaptureState(db);
  auto r = RunCliWithSmallFiles({"verify", "--junit", xml.string()}, db.url().text());
  EXPECT_EQ(r.exit_code, 2) << r.out << r.err;
  ExpectUnchanged(db, before);
  EXPECT_CONTAINS(r.out, "FAILED: the database is at revision '9zz'");
  EXPECT_CONTAINS(r.err, "error: cannot write the JUnit report " + xml.string());
  EXPECT_CONTAINS(r.err, "File too large");
  EXPECT_CONTAINS(r.err, "error: the database is at revision '9zz'");
  EXPECT_FALSE(fs::exists(xml));
  EXPECT_EQ(Others({}), "");
}

// A write error in the log during the run: said at once and at the end,
// the previous log kept, exit 3 although the command itself succeeded.
TEST_F(CliFiles, LogWriteErrorIsExit3AndKeepsThePreviousLog) {
  TestDatabase db("005");
  fs::path log = dir_ / "migration-002.log";
  Write(log, "the previous run\n");
  auto r = RunCliWithSmallFiles({"--log-file", log.string(), "upgrade", "head"}, db.url().text());
  EXPECT_EQ(r.exit_code, 3) << r.out << r.err;
  EXPECT_CONTAINS(r.out, "Upgraded 005 -> 002");
  EXPECT_CONTAINS(r.err, "warning: cannot write the log file " + log.string());
  EXPECT_CONTAINS(r.err, "error: cannot write the log file " + log.string() + ": writing " +
                             (dir_ / ".migration-002.log.").string());
  EXPECT_CONTAINS(r.err, "File too large");
  EXPECT_CONTAINS(r.err, "Step 10/10: Complete") << "the terminal still gets the whole log";
  EXPECT_EQ(Read(log), "the previous run\n");
  EXPECT_EQ(Others({"migration-002.log"}), "");
  EXPECT_EQ(db.Revision(), "002");
}

}  // namespace
}  // namespace harness::testing
