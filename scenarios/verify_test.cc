// `verify`, the rehearsal an engineer runs before the maintenance window:
// on the embedded default, and on a "production copy" given by URL, which
// must come out of it unchanged.
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <fstream>
#include <regex>

#include <signal.h>

#include <thread>

#include <nlohmann/json.hpp>
#include <pqxx/pqxx>

#include "fixtures/quickstart_sample.h"
#include "harness/error.h"
#include "harness/pg/process.h"
#include "harness/verify/rehearsal.h"
#include "harness/inspect/fingerprint.h"
#include "harness/pg/connection.h"
#include "scenarios/support/test_env.h"

namespace harness::testing {
namespace {

struct State {
  inspect::CatalogSnapshot catalog;
  inspect::Fingerprint repositories, chunks;
  std::string revision;
};

State Capture(const TestDatabase& db) {
  State s;
  s.catalog = db.Snapshot();
  pg::Connection conn(db.url());
  pqxx::read_transaction tx(conn.raw());
  s.repositories = inspect::TakeFingerprint(tx, "repositories");
  s.chunks = inspect::TakeFingerprint(tx, "code_chunks");
  s.revision = db.Scalar("SELECT to_regclass('alembic_version') IS NULL") == "t"
                   ? "<no table>"
                   : db.Scalar("SELECT coalesce((SELECT string_agg(version_num, ',') FROM "
                               "alembic_version), '<none>')");
  return s;
}

void ExpectUnchanged(const TestDatabase& db, const State& before) {
  State after = Capture(db);
  EXPECT_TRUE(inspect::Diff(before.catalog, after.catalog).empty())
      << JoinLines(inspect::Diff(before.catalog, after.catalog));
  EXPECT_EQ(after.repositories, before.repositories);
  EXPECT_EQ(after.chunks, before.chunks);
  EXPECT_EQ(after.revision, before.revision);
}

TEST(VerifyCopy, RehearsesOnAScratchCloneAndLeavesTheSourceUnchanged) {
  TestDatabase db("005");
  db.Exec(fixtures::kQuickstartSampleSql);
  State before = Capture(db);
  std::string junit = ::testing::TempDir() + pg::UniqueDatabaseName("junit") + ".xml";
  auto r = RunCli({"verify", "--junit", junit}, db.url().text());
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_CONTAINS(r.out, "cloned into mh_verify");
  EXPECT_CONTAINS(r.out, "READY");
  // The rehearsed upgrade and rollback log their steps; the re-run, the
  // final upgrade and the forecast's measurement only with -v.
  EXPECT_CONTAINS(r.err, "Running upgrade 005 -> 002");
  EXPECT_CONTAINS(r.err, "WARNING:  Data in dropped tables NOT restored");
  EXPECT_EQ(r.err.find("Stamped revision"), std::string::npos) << r.err;
  EXPECT_EQ(r.err.find("NOTICE:  Constraint check_repositories_project_id already exists"),
            std::string::npos)
      << r.err;
  std::ifstream in(junit);
  std::string xml((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::remove(junit.c_str());
  EXPECT_CONTAINS(xml, "<testcase classname=\"migration-harness.post\" name=\"post.data_integrity\"");
  EXPECT_EQ(xml.find("<failure"), std::string::npos) << xml;
  ExpectUnchanged(db, before);
  // The scratch database is gone (by name: other tests clone in parallel).
  std::smatch m;
  ASSERT_TRUE(std::regex_search(r.out, m, std::regex("cloned into (mh_verify_[0-9a-z_]+)"))) << r.out;
  EXPECT_EQ(db.Scalar("SELECT count(*) FROM pg_database WHERE datname = '" + m[1].str() + "'"), "0");
}

TEST(VerifyCopy, IntoEmbeddedCopiesWithPgDumpAndLeavesTheSourceUnchanged) {
  TestDatabase db("005");
  db.Exec(fixtures::kQuickstartSampleSql);
  State before = Capture(db);
  auto r = RunCli({"verify", "--into-embedded"}, db.url().text());
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_CONTAINS(r.out, "copied into the embedded cluster");
  EXPECT_CONTAINS(r.out, "✓ code_chunks data preserved (6 rows, fingerprint matches baseline)");
  EXPECT_CONTAINS(r.out, "READY");
  ExpectUnchanged(db, before);
}

TEST(VerifyCopy, CloneRefusedWhileAnotherSessionIsConnectedSaysWhatToDo) {
  TestDatabase db("005");
  State before = Capture(db);
  pg::Connection other(db.url());  // an application still connected
  auto r = RunCli({"verify"}, db.url().text());
  EXPECT_EQ(r.exit_code, 3) << r.out << r.err;
  EXPECT_CONTAINS(r.err, "cannot clone");
  EXPECT_CONTAINS(r.err, "--into-embedded");
  ExpectUnchanged(db, before);
}

TEST(VerifyCopy, PasswordNeverAppearsInOutputOrReports) {
  TestDatabase db("005");
  std::string url = db.url().text() + " password=Sup3rS3cretValue";
  std::string json = ::testing::TempDir() + pg::UniqueDatabaseName("pw") + ".json";
  auto r = RunCli({"verify", "--report-json", json}, url);
  std::ifstream in(json);
  std::string report((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::remove(json.c_str());
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_EQ((r.out + r.err + report).find("Sup3rS3cretValue"), std::string::npos);
}

TEST(VerifyCopy, BlockingForeignKeyIsRefusedAndNamed) {
  TestDatabase db("005");
  db.Exec(fixtures::kQuickstartSampleSql);
  db.Exec("ALTER TABLE deployment_events ADD COLUMN repo uuid CONSTRAINT deployment_repo_fk "
          "REFERENCES repositories(id)");
  State before = Capture(db);
  auto r = RunCli({"verify"}, db.url().text());
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
  EXPECT_CONTAINS(r.out, "deployment_events.deployment_repo_fk -> repositories");
  EXPECT_CONTAINS(r.out, "ALTER TABLE deployment_events DROP CONSTRAINT deployment_repo_fk;");
  EXPECT_CONTAINS(r.out, "BLOCKED");
  ExpectUnchanged(db, before);
}

TEST(VerifyCopy, OrphanedChunksAreRefusedWithCountAndSample) {
  TestDatabase db("005");
  db.Exec(fixtures::kQuickstartSampleSql);
  db.Exec("ALTER TABLE code_chunks DROP CONSTRAINT code_chunks_repository_id_fkey;"
          "INSERT INTO code_chunks (id, repository_id, file_path, content, start_line, end_line) "
          "VALUES ('00000000-0000-0000-0000-0000000000ff', gen_random_uuid(), 'o.py', 'x', 1, 1)");
  State before = Capture(db);
  auto r = RunCli({"verify"}, db.url().text());
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
  EXPECT_CONTAINS(r.out, "found 1 chunk(s) whose repository does not exist (e.g. 00000000-0000-0000-0000-0000000000ff)");
  EXPECT_CONTAINS(r.out, "DELETE FROM code_chunks c WHERE NOT EXISTS");
  ExpectUnchanged(db, before);
}

TEST(VerifyCopy, UnknownRevisionIsRefused) {
  TestDatabase db("005");
  db.Exec("UPDATE alembic_version SET version_num = '9zz'");
  State before = Capture(db);
  auto r = RunCli({"verify"}, db.url().text());
  EXPECT_EQ(r.exit_code, 2) << r.out << r.err;
  EXPECT_CONTAINS(r.err, "'9zz'");
  ExpectUnchanged(db, before);
}

TEST(VerifyCopy, AlreadyMigratedIsRefused) {
  TestDatabase db("head");
  auto r = RunCli({"verify"}, db.url().text());
  EXPECT_EQ(r.exit_code, 2) << r.out << r.err;
  EXPECT_CONTAINS(r.err, "already applied");
}

TEST(VerifyCopy, NoVersionTableIsRefused) {
  TestDatabase db("005");
  db.Exec("DROP TABLE alembic_version");
  State before = Capture(db);
  auto r = RunCli({"verify"}, db.url().text());
  EXPECT_EQ(r.exit_code, 2) << r.out << r.err;
  EXPECT_CONTAINS(r.err, "no alembic_version table");
  ExpectUnchanged(db, before);
}

// Bad input or a database error still leaves the reports, with the phase
// that failed and the exit code, so a CI system shows why.
TEST(VerifyCopy, ReportsAreWrittenWhenTheRehearsalStopsOnAnError) {
  TestDatabase db("005");
  db.Exec("UPDATE alembic_version SET version_num = '9zz'");
  std::string base = ::testing::TempDir() + pg::UniqueDatabaseName("failed");
  auto r = RunCli({"verify", "--junit", base + ".xml", "--report-json", base + ".json"},
                  db.url().text());
  EXPECT_EQ(r.exit_code, 2) << r.out << r.err;
  EXPECT_CONTAINS(r.out, "✗ current revision");
  EXPECT_CONTAINS(r.out, "FAILED: the database is at revision '9zz'");
  std::ifstream xml_in(base + ".xml");
  std::string xml((std::istreambuf_iterator<char>(xml_in)), std::istreambuf_iterator<char>());
  std::ifstream json_in(base + ".json");
  auto json = nlohmann::json::parse(json_in, nullptr, /*allow_exceptions=*/false);
  std::remove((base + ".xml").c_str());
  std::remove((base + ".json").c_str());
  EXPECT_CONTAINS(xml, "name=\"current revision\"");
  EXPECT_CONTAINS(xml, "<failure");
  ASSERT_TRUE(json.is_object());
  EXPECT_EQ(json["exit_code"], 2);
  EXPECT_EQ(json["ready"], false);
}

// The index built CONCURRENTLY beforehand (README, troubleshooting) needs
// repositories.project_id at 005: the rehearsal keeps them through the
// upgrade, says the rollback removes them, and compares the rest exactly.
TEST(VerifyCopy, AnIndexBuiltBeforehandIsKeptAndTheRollbackSaysItRemovesIt) {
  TestDatabase db("005");
  db.Exec(fixtures::kQuickstartSampleSql);
  db.Exec("ALTER TABLE repositories ADD COLUMN project_id varchar(50) NOT NULL DEFAULT 'default'");
  db.Exec("CREATE INDEX idx_project_repository ON repositories (project_id, id)");
  State before = Capture(db);
  auto r = RunCli({"verify"}, db.url().text());
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_CONTAINS(r.err, "already exists: kept");
  EXPECT_CONTAINS(r.out, "built beforehand, not compared: repositories.project_id, "
                         "repositories.idx_project_repository");
  EXPECT_CONTAINS(r.out, "Built before the upgrade and removed by the rollback");
  EXPECT_CONTAINS(r.out, "✓ Schema equals the pre-upgrade catalog (empty diff)");
  EXPECT_CONTAINS(r.out, "READY");
  ExpectUnchanged(db, before);
}

TEST(VerifyCopy, EarlierRevisionIsUpgradedTo005First) {
  TestDatabase db("003a");
  State before = Capture(db);
  auto r = RunCli({"verify"}, db.url().text());
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_CONTAINS(r.out, "upgrade to 005 first");
  ExpectUnchanged(db, before);
}

TEST(VerifyCopy, AMissingCoreTableBlocksTheMigration) {
  TestDatabase db("005");
  db.Exec("DROP TABLE code_chunks");
  State before;
  before.catalog = db.Snapshot();
  auto r = RunCli({"verify"}, db.url().text());
  EXPECT_EQ(r.exit_code, 2) << r.out << r.err;  // not the schema 002 is for: bad input
  EXPECT_CONTAINS(r.out, "✗ Core tables exist: missing {code_chunks}");
  EXPECT_CONTAINS(r.out, "BLOCKED");
  EXPECT_TRUE(inspect::Diff(before.catalog, db.Snapshot()).empty());
  EXPECT_EQ(db.Revision(), "005");
}

// No PostgreSQL older than 14 is packaged here: the refusal is exercised by
// raising the minimum above the running server.
TEST(VerifyCopy, AServerBelowTheMinimumIsRefusedBeforeAnythingRuns) {
  TestDatabase db("005");
  db.Exec(fixtures::kQuickstartSampleSql);
  State before = Capture(db);
  verify::VerifyOptions o;
  o.source = db.url();
  o.in_place = true;  // even in place: nothing may change
  o.minimum_server_version = 990000;
  try {
    verify::Run(o, Chain());
    ADD_FAILURE() << "verify ran on a server below its minimum";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ExitCode::kUsage);
    EXPECT_CONTAINS(e.what(), "migration 002 needs 99 or later");
    EXPECT_CONTAINS(e.hint(), "nothing was changed");
  }
  ExpectUnchanged(db, before);
}

// --into-embedded: the version that counts is the source's, read before
// pg_dump runs, not the embedded cluster's; nothing is started or copied.
TEST(VerifyCopy, IntoEmbeddedChecksTheSourceServerVersionFirst) {
  TestDatabase db("005");
  verify::VerifyOptions o;
  o.source = db.url();
  o.into_embedded = true;
  o.minimum_server_version = 990000;
  report::Rehearsal partial;
  try {
    verify::Run(o, Chain(), &partial);
    ADD_FAILURE() << "verify copied from a server below its minimum";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ExitCode::kUsage);
    EXPECT_CONTAINS(e.what(), "migration 002 needs 99 or later");
  }
  ASSERT_EQ(partial.phases.size(), 1u);
  EXPECT_EQ(partial.phases[0].name, "connect");
  EXPECT_FALSE(partial.phases[0].ok);
  EXPECT_EQ(partial.exit_code, 2);
}

TEST(VerifyCopy, AUserWithoutCreatedbIsToldWhatToDo) {
  TestDatabase db("005");
  db.Exec(fixtures::kQuickstartSampleSql);
  Role reader("NOCREATEDB");
  db.Exec("GRANT SELECT ON ALL TABLES IN SCHEMA public TO " + reader.name());
  State before = Capture(db);
  std::string url = db.url().text() + " user=" + reader.name();
  auto r = RunCli({"verify"}, url);
  EXPECT_EQ(r.exit_code, 3) << r.out << r.err;
  EXPECT_CONTAINS(r.err, "cannot clone");
  EXPECT_CONTAINS(r.err, "permission denied to create database");
  EXPECT_CONTAINS(r.err, "--into-embedded");
  // What the hint says works for the same user: pg_dump only reads.
  auto copy = RunCli({"verify", "--into-embedded"}, url);
  EXPECT_EQ(copy.exit_code, 0) << copy.out << copy.err;
  EXPECT_CONTAINS(copy.out, "READY");
  ExpectUnchanged(db, before);
}

// A live session holds a lock on a core table: in place, the upgrade gives
// up within --lock-timeout and names the table; the copy's pg_dump too.
TEST(VerifyCopy, ALockedCoreTableFailsWithinTheLockTimeoutAndIsNamed) {
  TestDatabase db("005");
  db.Exec(fixtures::kQuickstartSampleSql);
  State before = Capture(db);
  {
    pg::Connection blocker(db.url());
    pqxx::work hold(blocker.raw());
    hold.exec("LOCK TABLE code_chunks IN ACCESS SHARE MODE");
    auto t0 = std::chrono::steady_clock::now();
    auto r = RunCli({"--lock-timeout", "1", "verify", "--in-place"}, db.url().text());
    double took = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    EXPECT_EQ(r.exit_code, 3) << r.out << r.err;
    EXPECT_CONTAINS(r.err, "table code_chunks is locked");
    EXPECT_CONTAINS(r.err, "by pid " + std::to_string(blocker.backend_pid()));
    EXPECT_LT(took, 30.0);
  }
  ExpectUnchanged(db, before);
  {
    pg::Connection blocker(db.url());
    pqxx::work hold(blocker.raw());
    hold.exec("LOCK TABLE repositories IN ACCESS EXCLUSIVE MODE");
    auto r = RunCli({"--lock-timeout", "1", "verify", "--into-embedded"}, db.url().text());
    EXPECT_EQ(r.exit_code, 3) << r.out << r.err;
    EXPECT_CONTAINS(r.err, "pg_dump");
    EXPECT_CONTAINS(r.err, "repositories");
  }
  ExpectUnchanged(db, before);
}

// A verify in clone mode held on its scratch clone: finds the clone made by
// `cli`, takes a lock on its repositories table from another session, and
// waits until the rehearsal queues behind it. Empty name on failure.
struct HeldScratch {
  std::string name;
  std::unique_ptr<pg::Connection> blocker;
  std::unique_ptr<pqxx::work> hold;

  explicit HeldScratch(const BackgroundCli& cli) {
    pg::Connection admin(TestServer().AdminUrl());
    auto scalar = [&](const std::string& sql) {
      pqxx::nontransaction tx(admin.raw());
      auto rows = tx.exec(sql);
      return rows.empty() ? std::string() : rows[0][0].as<std::string>();
    };
    const std::string like = "'mh\\_verify\\_%\\_" + std::to_string(cli.pid()) + "\\_%'";
    std::string found;
    if (!WaitUntil([&] { return !(found = scalar("SELECT datname FROM pg_database WHERE datname "
                                                 "LIKE " + like)).empty(); },
                   std::chrono::seconds(30)))
      return;
    if (!WaitUntil(
            [&] {
              try {  // it may still be being created
                blocker = std::make_unique<pg::Connection>(TestServer().UrlFor(found));
              } catch (const Error&) {
              }
              return blocker != nullptr;
            },
            std::chrono::seconds(30)))
      return;
    hold = std::make_unique<pqxx::work>(blocker->raw());
    hold->exec("LOCK TABLE repositories IN ACCESS SHARE MODE");
    if (WaitUntil([&] { return scalar("SELECT count(*) FROM pg_stat_activity WHERE datname = '" +
                                      found + "' AND wait_event_type = 'Lock'") == "1"; },
                  std::chrono::seconds(30)))
      name = found;
  }
};

// A verify killed with SIGKILL cannot drop its clone; the next verify on
// the same server does, and says so.
TEST(VerifyCopy, ASigkilledRunsScratchDatabaseIsDroppedByTheNextVerify) {
  TestDatabase db("005");
  db.Exec(fixtures::kQuickstartSampleSql);
  pg::Connection admin(TestServer().AdminUrl());
  auto count = [&](const std::string& where) {
    pqxx::nontransaction tx(admin.raw());
    return tx.exec("SELECT count(*) FROM " + where)[0][0].as<int>();
  };
  std::string scratch;
  {
    BackgroundCli cli({"--lock-timeout", "0", "verify"}, db.url().text());
    HeldScratch held(cli);
    ASSERT_FALSE(held.name.empty()) << "the rehearsal never waited on its scratch clone";
    scratch = held.name;
    cli.Signal(SIGKILL);
    ASSERT_TRUE(cli.Wait(std::chrono::seconds(30)));
    held.hold->abort();  // the orphaned session then finds its client gone
  }
  ASSERT_EQ(count("pg_database WHERE datname = '" + scratch + "'"), 1) << "nothing was left";
  ASSERT_TRUE(WaitUntil([&] { return count("pg_stat_activity WHERE datname = '" + scratch + "'") == 0; },
                        std::chrono::seconds(30)));
  auto r = RunCli({"verify"}, db.url().text());
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  // (A verify of a test running beside this one may have dropped it first.)
  EXPECT_EQ(count("pg_database WHERE datname = '" + scratch + "'"), 0) << r.err;
}

// Only this role's, made on this host, by a process that is gone. A prefix
// of its own: verify runs of other tests clean up mh_verify_* meanwhile.
TEST(ScratchDatabases, TheCleanUpLeavesOtherRolesHostsAndLiveProcessesAlone) {
  Role other("NOSUPERUSER");
  pid_t dead = fork();
  if (dead == 0) _exit(0);
  waitpid(dead, nullptr, 0);
  pid_t live = fork();
  if (live == 0) {
    pause();
    _exit(0);
  }
  const std::string prefix = "mh_rt" + std::to_string(getpid());
  const std::string host = pg::ScratchHostTag(), d = std::to_string(dead),
                    l = std::to_string(live),
                    l_start = std::to_string(pg::ProcessStartTime(live));
  const std::string gone = prefix + "_" + host + "_" + d + "_1_0_0000000a";
  const std::string gone_empty = prefix + "_empty_" + host + "_" + d + "_1_1_0000000e";
  // The live child's pid, but another process's start time: the pid was reused.
  const std::string reused = prefix + "_" + host + "_" + l + "_1_2_0000000f";
  const std::map<std::string, std::string> kept = {
      {prefix + "_" + host + "_" + d + "_1_3_0000000b", " OWNER " + other.name()},
      {prefix + "_0badc0de_" + d + "_1_4_0000000c", ""},
      {prefix + "_" + host + "_" + l + "_" + l_start + "_5_0000000d", ""},
      {prefix + "_" + host + "_" + d + "_notmine", ""}};
  pg::Connection admin(TestServer().AdminUrl());
  pqxx::nontransaction tx(admin.raw());
  for (const auto& name : {gone, gone_empty, reused}) tx.exec("CREATE DATABASE " + name);
  for (const auto& [name, owner] : kept) tx.exec("CREATE DATABASE " + name + owner);
  auto dropped = pg::ReapAbandonedDatabases(TestServer().AdminUrl(), prefix);
  kill(live, SIGKILL);
  waitpid(live, nullptr, 0);
  std::sort(dropped.begin(), dropped.end());
  std::vector<std::string> expected = {gone, gone_empty, reused};
  std::sort(expected.begin(), expected.end());
  EXPECT_EQ(dropped, expected);
  auto exists = [&](const std::string& name) {
    return tx.exec("SELECT count(*) FROM pg_database WHERE datname = " + tx.quote(name))[0][0]
               .as<int>() == 1;
  };
  for (const auto& name : expected) EXPECT_FALSE(exists(name)) << name;
  for (const auto& [name, owner] : kept) {
    EXPECT_TRUE(exists(name)) << name;
    tx.exec("DROP DATABASE IF EXISTS " + name);
  }
}

// Ctrl-C while the rehearsal waits on the scratch clone: exit 130, and the
// scratch database is dropped on the way out.
TEST(VerifyCopy, AnInterruptDropsTheScratchDatabase) {
  TestDatabase db("005");
  db.Exec(fixtures::kQuickstartSampleSql);
  State before = Capture(db);
  pg::Connection admin(TestServer().AdminUrl());
  BackgroundCli cli({"--lock-timeout", "0", "verify"}, db.url().text());
  // Find the scratch clone and hold a lock on it, so the upgrade waits.
  HeldScratch held(cli);
  ASSERT_FALSE(held.name.empty()) << "the rehearsal never waited on its scratch clone";
  const std::string scratch = held.name;
  cli.Signal(SIGINT);
  auto status = cli.Wait(std::chrono::seconds(60));
  ASSERT_TRUE(status);
  std::string out = cli.Output();
  EXPECT_EQ(*status, 130) << out;
  EXPECT_CONTAINS(out, "interrupted by SIGINT");
  pqxx::nontransaction tx(admin.raw());
  EXPECT_EQ(tx.exec("SELECT count(*) FROM pg_database WHERE datname = " + tx.quote(scratch))[0][0]
                .as<std::string>(),
            "0");
  ExpectUnchanged(db, before);
}

TEST(VerifyReport, ForecastsTheUpgradeAtALargerSize) {
  TestDatabase db("005");
  db.Exec(fixtures::kQuickstartSampleSql);
  std::string json_path = ::testing::TempDir() + pg::UniqueDatabaseName("forecast") + ".json";
  auto r = RunCli({"verify", "--forecast-rows", "5000000", "--report-json", json_path},
                  db.url().text());
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_CONTAINS(r.out, "Forecast: upgrade of 5000000 chunks about");
  EXPECT_CONTAINS(r.out, "a line per step through 0 and 6 chunks");
  std::ifstream in(json_path);
  auto report = nlohmann::json::parse(in);
  std::remove(json_path.c_str());
  EXPECT_EQ(report["forecast"]["code_chunks"], 5000000);
  EXPECT_GT(report["forecast"]["upgrade_seconds"].get<double>(), 0.0);
  EXPECT_EQ(RunCli({"verify", "--forecast-rows", "0"}, db.url().text()).exit_code, 2);
}

}  // namespace
}  // namespace harness::testing
