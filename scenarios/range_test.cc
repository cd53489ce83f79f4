// verify --target: any revision of any chain, with the checks every
// revision gets. The test chain (scenarios/test_chain/, one kind of change
// per revision) is rehearsed from t1 to its head in one run, and what the
// rehearsal measured for each step is compared with what each revision is
// known to do; a revision the expectations below do not cover fails the
// test, so the chain cannot grow without them.
#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>

#include <nlohmann/json.hpp>

#include "fixtures/any_schema.h"
#include "harness/codesearch/generator.h"
#include "harness/engine/revision_graph.h"
#include "harness/pg/connection.h"
#include "harness/pg/disposable_database.h"
#include "scenarios/support/test_env.h"

namespace harness::testing {
namespace {

std::filesystem::path TestChainDir() { return SourceDir() / "scenarios" / "test_chain"; }

// What each upgrade step does, as the rehearsal classifies it.
const std::map<std::string, std::string> kExpectedUpgrade = {
    {"t1", "catalog only"},
    {"t2", "table rewrite"},
    {"t3", "index build + full scan"},
    {"t4", "catalog only"},
    {"t5", "table rewrite"},
    {"t6", "table rewrite"},
};

nlohmann::json RunVerify(const std::vector<std::string>& args, const std::string& url, int* exit_code,
                         std::string* out, const std::filesystem::path& chain = TestChainDir()) {
  std::string json = ::testing::TempDir() + pg::UniqueDatabaseName("range") + ".json";
  std::vector<std::string> all = {"--migrations", chain.string(), "verify"};
  all.insert(all.end(), args.begin(), args.end());
  all.insert(all.end(), {"--report-json", json});
  auto r = RunCli(all, url);
  *exit_code = r.exit_code;
  *out = r.out + r.err;
  std::ifstream in(json);
  nlohmann::json j = nlohmann::json::parse(in);
  std::remove(json.c_str());
  return j;
}


TEST(VerifyTarget, EveryStepOfTheTestChainIsMeasuredAsWhatItDoes) {
  auto chain = engine::RevisionGraph::LoadDirectory(TestChainDir());
  for (engine::Position p = 1; p <= chain.head_position(); ++p)
    ASSERT_TRUE(kExpectedUpgrade.count(chain.at(p).revision))
        << "revision " << chain.at(p).revision << " of the test chain has no expected classification";

  pg::DisposableDatabase db(TestServer().AdminUrl(), "template0", "mh_range");
  ASSERT_EQ(RunCli({"--migrations", TestChainDir().string(), "upgrade", "t1"}, db.url().text()).exit_code, 0);
  {
    pg::Connection conn(db.url());
    fixtures::AnySchemaOptions o;
    o.rows_per_table = 200;
    fixtures::GenerateAnySchema(conn, o);
  }
  int code = 0;
  std::string out;
  const DatabaseState before = CaptureState(db.url());
  auto report = RunVerify({"--target", "head"}, db.url().text(), &code, &out);
  EXPECT_EQ(code, 1) << out;
  ExpectUnchanged(db.url(), before);
  auto steps = SuiteDetails(report, "step effects");
  for (engine::Position p = 2; p <= chain.head_position(); ++p) {
    const std::string rev = chain.at(p).revision;
    const std::string detail = steps["step." + rev + ".up.1"];
    EXPECT_NE(detail.find(": " + kExpectedUpgrade.at(rev) + ";"), std::string::npos)
        << rev << " expected " << kExpectedUpgrade.at(rev) << ", measured: " << detail;
  }
  EXPECT_NE(steps["step.t2.up.1"].find("rewrote events; AccessExclusiveLock on events, held "),
            std::string::npos) << steps["step.t2.up.1"];
  auto discarded = SuiteDetails(report, "discarded rows");
  EXPECT_EQ(discarded["discarded.table.audit_log"], "table audit_log dropped: 200 rows discarded");
  EXPECT_EQ(discarded["dependents.audit_log"],
            "table audit_log: view public.audit_summary depended on it (a plain DROP refuses while "
            "they exist, SQLSTATE 2BP01); the upgrade dropped them too");
  auto rollback = SuiteDetails(report, "rollback");
  EXPECT_EQ(rollback["rollback.catalog_diff"], "Schema equals the pre-upgrade catalog (empty diff)");
  EXPECT_EQ(rollback["rollback.accounts_data"],
            "accounts data preserved: baseline 200 rows, now 200; values of balance differ");
  EXPECT_EQ(rollback["rollback.events_data"].rfind("events data preserved (200 rows, fingerprint matches baseline)", 0),
            0u) << rollback["rollback.events_data"];
  EXPECT_EQ(rollback["rollback.dropped_tables_data"],
            "Dropped tables' rows: audit_log 200: 200 rows only in the backup (a backup has them)");
  auto pre = SuiteDetails(report, "pre");
  EXPECT_EQ(pre["pre.t6.balances are not negative"], "balances are not negative (t6)");
  auto post = SuiteDetails(report, "post");
  EXPECT_EQ(post["post.t2.every event has a token"], "every event has a token (t2)");
  EXPECT_EQ(post["post.t6.no balance lost a digit"].rfind("no balance lost a digit (t6): 200 row(s) fail it, e.g. (", 0), 0u)
      << post["post.t6.no balance lost a digit"];
  EXPECT_EQ(rollback["rollback.t2.events.token is gone"], "events.token is gone (t2)");
  const std::string verdict = report["verdict"];
  EXPECT_EQ(verdict.rfind("NOT READY: post check no balance lost a digit (t6): ", 0), 0u) << verdict;
  EXPECT_NE(verdict.find("; the rollback of t1 -> t6 is not exact: accounts data preserved: baseline 200 rows, "
                         "now 200; values of balance differ"),
            std::string::npos) << verdict;
}

// Without a database: from the target's parent, on an embedded cluster
// filled from the catalog.
TEST(VerifyTarget, AnEmbeddedRunOfARevisionThatDropsATableIsReadyAndCountsWhatItDiscards) {
  int code = 0;
  std::string out;
  auto report = RunVerify({"--target", "t4", "--rows-per-table", "50"}, "", &code, &out);
  EXPECT_EQ(code, 0) << out;
  EXPECT_CONTAINS(out, "Migration rehearsal t3 -> t4");
  EXPECT_CONTAINS(out, "• table audit_log dropped: 50 rows discarded");
  EXPECT_CONTAINS(out, "READY: t3 -> t4 upgraded in");
  EXPECT_CONTAINS(out, "; the dropped tables come back empty (audit_log 50: 50 rows only in the backup)");
  EXPECT_EQ(SuiteDetails(report, "step effects")["step.t4.up.1"].find("t4 up 1/1 Drop audit_log: catalog only; dropped audit_log"), 0u);
}

// A pre check that fails stops the rehearsal before anything is migrated.
TEST(VerifyTarget, AFailingPreCheckBlocksTheUpgrade) {
  pg::DisposableDatabase db(TestServer().AdminUrl(), "template0", "mh_range");
  ASSERT_EQ(RunCli({"--migrations", TestChainDir().string(), "upgrade", "t5"}, db.url().text()).exit_code, 0);
  {
    pg::Connection conn(db.url());
    pqxx::work tx(conn.raw());
    tx.exec("INSERT INTO public.accounts (name, balance) VALUES ('overdrawn', -5)");
    tx.commit();
  }
  int code = 0;
  std::string out;
  const DatabaseState before = CaptureState(db.url());
  auto report = RunVerify({"--target", "t6"}, db.url().text(), &code, &out);
  EXPECT_EQ(code, 1) << out;
  ExpectUnchanged(db.url(), before);
  EXPECT_CONTAINS(out, "✗ balances are not negative (t6): 1 row(s) fail it, e.g. (1, -5.0000)");
  EXPECT_EQ(report["verdict"], "BLOCKED: a pre check of t5 -> t6 failed (see above); nothing was migrated");
  EXPECT_EQ(report["upgrade_steps"].size(), 0u);
}

// `verify --target REV` for every revision of the service's chain, from the
// parsed chain: a revision added later is rehearsed without editing this
// test. On a scratch clone of a database at REV's parent on the test
// server: the revision above 005 (002) on the code-search data; any other
// on data generated from the catalog. Each is READY: exact rollback, rows
// back, the source unchanged.
class VerifyEachRevision : public ::testing::TestWithParam<std::string> {};

TEST_P(VerifyEachRevision, IsReadyOnAScratchCloneOfItsParent) {
  const engine::Position p = Chain().ResolveRevision(GetParam());
  const std::string parent = p > 1 ? Chain().Name(p - 1) : std::string("base");
  const bool code_search = Chain().Name(p - 1) == "005";
  TestDatabase db(parent);
  {
    pg::Connection conn(db.url());
    if (code_search) {
      codesearch::GeneratorOptions go;
      go.repositories = 5;
      go.chunks_per_repo = 5;
      codesearch::Generate(conn, go);
    } else if (p > 1) {
      fixtures::AnySchemaOptions o;
      o.rows_per_table = 30;
      fixtures::GenerateAnySchema(conn, o);
    }
  }
  const DatabaseState before = CaptureState(db.url());
  auto r = RunCli({"verify", "--target", GetParam()}, db.url().text());
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  ExpectUnchanged(db.url(), before);
  EXPECT_CONTAINS(r.out, "READY: ");
  EXPECT_CONTAINS(r.out, "Migration rehearsal " + Chain().Name(p - 1) + " -> " + GetParam());
}

std::vector<std::string> EveryRevisionOfTheChain() {
  std::vector<std::string> out;
  for (const auto& f : Chain().chain()) out.push_back(f.revision);
  return out;
}

INSTANTIATE_TEST_SUITE_P(EveryRevision, VerifyEachRevision, ::testing::ValuesIn(EveryRevisionOfTheChain()),
                         [](const auto& p) { return "Revision" + p.param; });

// A revision that says it is idempotent is run twice; one whose second run
// changes rows is NOT READY, naming them.
TEST(VerifyTarget, ARevisionThatSaysItIsIdempotentIsRunTwice) {
  int code = 0;
  std::string out;
  auto report = RunVerify({"--target", "t3", "--rows-per-table", "50"}, "", &code, &out);
  EXPECT_EQ(code, 0) << out;
  EXPECT_CONTAINS(out, "✓ idempotent re-run (stamp t2, upgrade again)");
  EXPECT_CONTAINS(out, "second run changed nothing");

  const std::filesystem::path dir =
      std::filesystem::path(::testing::TempDir()) / pg::UniqueDatabaseName("chain");
  std::filesystem::create_directories(dir);
  for (const auto& f : std::filesystem::directory_iterator(TestChainDir()))
    if (f.path().extension() == ".sql") std::filesystem::copy(f.path(), dir / f.path().filename());
  std::string text;
  {
    std::ifstream in(dir / "t3_event_kind_index.sql");
    text.assign(std::istreambuf_iterator<char>(in), {});
  }
  const std::string create = "CREATE INDEX IF NOT EXISTS idx_events_kind ON public.events (kind);\n";
  ASSERT_NE(text.find(create), std::string::npos);
  text.replace(text.find(create), create.size(),
               create + "UPDATE public.events SET weight = coalesce(weight, 0) + 1;\n");
  std::ofstream(dir / "t3_event_kind_index.sql") << text;
  int bad_code = 0;
  std::string bad_out;
  auto bad = RunVerify({"--target", "t3", "--rows-per-table", "50"}, "", &bad_code, &bad_out, dir);
  std::filesystem::remove_all(dir);
  EXPECT_EQ(bad_code, 1) << bad_out;
  EXPECT_CONTAINS(bad_out, "✗ idempotent re-run (stamp t2, upgrade again)");
  EXPECT_CONTAINS(bad["verdict"].get<std::string>(),
                  "t2 -> t3 says it is idempotent, but its second run changed the rows of events");
}

// check --target runs a revision's own checks outside a rehearsal.
TEST(CheckTarget, RunsTheChecksTheRevisionCarries) {
  pg::DisposableDatabase db(TestServer().AdminUrl(), "template0", "mh_range");
  const std::string dir = TestChainDir().string(), url = db.url().text();
  ASSERT_EQ(RunCli({"--migrations", dir, "upgrade", "t5"}, url).exit_code, 0);
  {
    pg::Connection conn(db.url());
    pqxx::work tx(conn.raw());
    tx.exec("INSERT INTO public.accounts (name, balance) VALUES ('a', 1.2345)");
    tx.commit();
  }
  auto pre = RunCli({"--migrations", dir, "check", "pre", "--target", "t6"}, url);
  EXPECT_EQ(pre.exit_code, 0) << pre.out << pre.err;
  EXPECT_CONTAINS(pre.out, "✓ balances are not negative (t6)\n✓ Current revision is t5 (t5 or earlier)\n"
                          "All pre-migration checks passed (2/2)");
  ASSERT_EQ(RunCli({"--migrations", dir, "upgrade", "t6"}, url).exit_code, 0);
  const DatabaseState before = CaptureState(db.url());
  auto post = RunCli({"--migrations", dir, "check", "post", "--target", "t6"}, url);
  EXPECT_EQ(post.exit_code, 1) << post.out << post.err;
  ExpectUnchanged(db.url(), before);
  EXPECT_CONTAINS(post.out, "✗ no balance lost a digit (t6): 1 row(s) fail it, e.g. (1, 1.23)");
}

// A check in the verdict form prints its own words; a gate that fails
// stops the suite (the revision check never runs) with exit 2.
TEST(CheckTarget, AVerdictFormCheckSpeaksForItselfAndAGateStops) {
  pg::DisposableDatabase db(TestServer().AdminUrl(), "template0", "mh_range");
  const std::string dir = TestChainDir().string(), url = db.url().text();
  ASSERT_EQ(RunCli({"--migrations", dir, "upgrade", "t3"}, url).exit_code, 0);
  auto post = RunCli({"--migrations", dir, "check", "post", "--target", "t3", "--json"}, url);
  EXPECT_EQ(post.exit_code, 0) << post.out << post.err;
  auto j = nlohmann::json::parse(post.out);
  ASSERT_EQ(j["checks"].size(), 1u) << post.out;
  EXPECT_EQ(j["checks"][0]["id"], "post.kind index");
  EXPECT_EQ(j["checks"][0]["detail"], "idx_events_kind is valid");
  ASSERT_EQ(RunCli({"--migrations", dir, "downgrade", "t2"}, url).exit_code, 0);
  {
    pg::Connection conn(db.url());
    pqxx::work tx(conn.raw());
    tx.exec("ALTER TABLE public.events RENAME TO events_real; "
            "CREATE VIEW public.events AS SELECT * FROM public.events_real");
    tx.commit();
  }
  const DatabaseState before = CaptureState(db.url());
  auto pre = RunCli({"--migrations", dir, "check", "pre", "--target", "t3"}, url);
  EXPECT_EQ(pre.exit_code, 2) << pre.out << pre.err;
  ExpectUnchanged(db.url(), before);
  EXPECT_CONTAINS(pre.out, "✗ public.events is not a table: t3 indexes a table\n");
  EXPECT_EQ(pre.out.find("Current revision"), std::string::npos) << pre.out;
}

// Any revision is rehearsed where 002's is: here on a copy in the embedded
// cluster (pg_dump, pg_restore), the source only read.
TEST(VerifyTarget, IntoEmbeddedRehearsesACopyAndLeavesTheSourceUnchanged) {
  if (const std::string why = WhyLocalPgDumpCannotDumpTestServer(); !why.empty()) GTEST_SKIP() << why;
  pg::DisposableDatabase db(TestServer().AdminUrl(), "template0", "mh_range");
  const std::string dir = TestChainDir().string(), url = db.url().text();
  ASSERT_EQ(RunCli({"--migrations", dir, "upgrade", "t2"}, url).exit_code, 0);
  {
    pg::Connection conn(db.url());
    fixtures::AnySchemaOptions o;
    o.rows_per_table = 40;
    fixtures::GenerateAnySchema(conn, o);
  }
  const DatabaseState before = CaptureState(db.url());
  int code = 0;
  std::string out;
  auto report = RunVerify({"--target", "t3", "--into-embedded"}, url, &code, &out);
  EXPECT_EQ(code, 0) << out;
  ExpectUnchanged(db.url(), before);
  EXPECT_CONTAINS(out, "copied into the embedded cluster");
  EXPECT_CONTAINS(out, "READY: t2 -> t3 upgraded in");
  EXPECT_CONTAINS(out, "Forecast: upgrade of ");
  EXPECT_EQ(report["forecast"]["unit"], "rows");
}

TEST(VerifyTarget, ADatabaseAlreadyAtTheTargetIsBadInput) {
  pg::DisposableDatabase db(TestServer().AdminUrl(), "template0", "mh_range");
  ASSERT_EQ(RunCli({"--migrations", TestChainDir().string(), "upgrade", "t2"}, db.url().text()).exit_code, 0);
  const DatabaseState before = CaptureState(db.url());
  auto r = RunCli({"--migrations", TestChainDir().string(), "verify", "--target", "t2"}, db.url().text());
  EXPECT_EQ(r.exit_code, 2) << r.out << r.err;
  ExpectUnchanged(db.url(), before);
  EXPECT_CONTAINS(r.err, "the database is at t2, not below --target t2");
}


// A column or table renamed keeps its values: the report says renamed, not
// "dropped: N values discarded".
TEST(VerifyTarget, ARenameIsNotADrop) {
  const std::filesystem::path dir =
      std::filesystem::path(::testing::TempDir()) / pg::UniqueDatabaseName("chain");
  std::filesystem::create_directories(dir);
  std::filesystem::copy(TestChainDir() / "t1_accounts_and_events.sql", dir / "t1_accounts_and_events.sql");
  std::ofstream(dir / "r2_renames.sql")
      << "--! revision: r2\n--! down_revision: t1\n--! message: Renames\n\n--! upgrade\n--! step: Rename\n"
         "ALTER TABLE events RENAME COLUMN kind TO category;\nALTER TABLE audit_log RENAME TO audit_entries;\n\n"
         "--! downgrade\n--! step: Rename back\n"
         "ALTER TABLE audit_entries RENAME TO audit_log;\nALTER TABLE events RENAME COLUMN category TO kind;\n";
  int code = 0;
  std::string out;
  auto report = RunVerify({"--target", "r2", "--rows-per-table", "20"}, "", &code, &out, dir);
  std::filesystem::remove_all(dir);
  EXPECT_EQ(code, 0) << out;
  auto discarded = SuiteDetails(report, "discarded rows");
  EXPECT_EQ(discarded["renamed.column.events.kind"], "column events.kind renamed to category: its values kept");
  EXPECT_EQ(discarded["renamed.table.audit_log"], "table audit_log renamed to audit_entries: its rows kept");
  EXPECT_EQ(out.find("dropped:"), std::string::npos) << out;
  EXPECT_CONTAINS(out, "READY: t1 -> r2 upgraded in");
}


// ---- each table read once per state ------------------------------------------
// verify reads every table before the upgrade, and again after a run only
// when the server shows it may have changed (verify/table_marks.h): rows
// counted as written in the run's transaction, new storage, a column's type
// (an enum's labels) not the same. Each case is judged as a full re-read
// would judge it.

// A chain of t1 and the revisions given (file name -> text), in a folder of
// its own; removed at scope end.
struct OwnChain {
  explicit OwnChain(const std::map<std::string, std::string>& files)
      : dir(std::filesystem::path(::testing::TempDir()) / pg::UniqueDatabaseName("chain")) {
    std::filesystem::create_directories(dir);
    std::filesystem::copy(TestChainDir() / "t1_accounts_and_events.sql", dir / "t1_accounts_and_events.sql");
    for (const auto& [name, text] : files) std::ofstream(dir / name) << text;
  }
  ~OwnChain() { std::filesystem::remove_all(dir); }
  std::filesystem::path dir;
};

std::string Revision(const std::string& id, const std::string& down, const std::string& up_sql,
                     const std::string& down_sql, bool idempotent = false) {
  return "--! revision: " + id + "\n--! down_revision: " + down + "\n--! message: " + id + "\n" +
         (idempotent ? "--! idempotent\n" : "") + "\n--! upgrade\n--! step: Up\n" + up_sql +
         "\n\n--! downgrade\n--! step: Down\n" + down_sql + "\n";
}

TEST(VerifyReads, ATableNoRunWritesIsReadOnceAndPassesAsRecorded) {
  OwnChain chain({{"r2_flag.sql", Revision("r2", "t1",
                                           "ALTER TABLE events ADD COLUMN IF NOT EXISTS flag boolean NOT NULL "
                                           "DEFAULT false;",
                                           "ALTER TABLE events DROP COLUMN flag;", true)}});
  int code = 0;
  std::string out;
  auto report = RunVerify({"--target", "r2", "--rows-per-table", "200"}, "", &code, &out, chain.dir);
  ASSERT_EQ(code, 0) << out;
  EXPECT_CONTAINS(out, "Table reads (each table once, again only where the server shows a change)\n"
                       "• before the upgrade: read every table once (3 tables, ");
  auto reads = SuiteDetails(report, "table reads");
  EXPECT_EQ(reads["reads.upgraded"],
            "after the upgrade: not re-read: 3 tables (no row written, same storage and column types)");
  EXPECT_EQ(reads["reads.second_run"],
            "after the second run: not re-read: 3 tables (no row written, same storage and column types)");
  EXPECT_EQ(reads["reads.rolled_back"],
            "after the downgrade: not re-read: 3 tables (no row written, same storage and column types)");
  EXPECT_CONTAINS(SuiteDetails(report, "rollback")["rollback.events_data"],
                  "events data preserved (200 rows as recorded; not read again: no row written since");
}

TEST(VerifyReads, OneRowUpdatedOutOfManyIsReadAgainAndFailsTheRollback) {
  OwnChain chain({{"r2_touch.sql",
                   Revision("r2", "t1", "UPDATE events SET weight = coalesce(weight, 0) + 1 WHERE id = 7;",
                            "SELECT 1;")}});
  int code = 0;
  std::string out;
  auto report = RunVerify({"--target", "r2", "--rows-per-table", "5000"}, "", &code, &out, chain.dir);
  EXPECT_EQ(code, 1) << out;
  auto reads = SuiteDetails(report, "table reads");
  EXPECT_EQ(reads["reads.upgraded"],
            "after the upgrade: re-read events (the upgrade: 1 updated); not re-read: 2 tables (no row written, "
            "same storage and column types)");
  EXPECT_CONTAINS(reads["reads.rolled_back"], "after the downgrade: re-read events (the upgrade: 1 updated)");
  EXPECT_EQ(SuiteDetails(report, "discarded rows")["changed.events"],
            "the upgrade changed values of events (weight): the rollback must bring them back");
  EXPECT_CONTAINS(report["verdict"].get<std::string>(),
                  "the rollback of t1 -> r2 is not exact: events data preserved: baseline 5000 rows, now 5000; "
                  "values of weight differ");
}

TEST(VerifyReads, ARewriteThatKeepsEveryRowIsReadAgainAndPasses) {
  // USING weight alone keeps the storage (no rewrite); weight + 0 rewrites it.
  OwnChain chain({{"r2_rewrite.sql", Revision("r2", "t1", "ALTER TABLE events ALTER COLUMN weight TYPE integer "
                                                          "USING weight + 0;",
                                              "SELECT 1;")}});
  int code = 0;
  std::string out;
  auto report = RunVerify({"--target", "r2", "--rows-per-table", "300"}, "", &code, &out, chain.dir);
  ASSERT_EQ(code, 0) << out;
  auto reads = SuiteDetails(report, "table reads");
  EXPECT_EQ(reads["reads.upgraded"],
            "after the upgrade: re-read events (the upgrade gave it new storage (a rewrite or a TRUNCATE)); not "
            "re-read: 2 tables (no row written, same storage and column types)");
  EXPECT_EQ(SuiteDetails(report, "rollback")["rollback.events_data"],
            "events data preserved (300 rows, fingerprint matches baseline)");
}

TEST(VerifyReads, RowsDeletedAndInsertedAgainAreTheSameRowsEachRun) {
  OwnChain chain({{"r2_again.sql",
                   Revision("r2", "t1", "WITH gone AS (DELETE FROM events RETURNING *) INSERT INTO events SELECT * "
                                        "FROM gone;",
                            "SELECT 1;", true)}});
  int code = 0;
  std::string out;
  auto report = RunVerify({"--target", "r2", "--rows-per-table", "250"}, "", &code, &out, chain.dir);
  ASSERT_EQ(code, 0) << out;
  EXPECT_CONTAINS(out, "second run changed nothing");
  auto reads = SuiteDetails(report, "table reads");
  EXPECT_CONTAINS(reads["reads.upgraded"], "re-read events (the upgrade: 250 inserted, 250 deleted)");
  EXPECT_CONTAINS(reads["reads.second_run"], "re-read events (the second run: 250 inserted, 250 deleted)");
  EXPECT_EQ(SuiteDetails(report, "rollback")["rollback.events_data"],
            "events data preserved (250 rows, fingerprint matches baseline)");
  EXPECT_EQ(SuiteDetails(report, "discarded rows").count("changed.events"), 0u);
}

TEST(VerifyReads, AnEnumLabelRenamedChangesValuesWithoutARowWritten) {
  OwnChain chain(
      {{"e2_moods.sql", Revision("e2", "t1",
                                 "CREATE TYPE mood AS ENUM ('calm', 'busy');\nCREATE TABLE moods (id serial PRIMARY "
                                 "KEY, m mood NOT NULL);",
                                 "DROP TABLE moods;\nDROP TYPE mood;")},
       // The downgrade renames the label back wrong: 'Calm'. No row is
       // written, and the catalog's snapshot has no enum labels.
       {"e3_rename.sql",
        Revision("e3", "e2",
                 "DO $$ BEGIN IF EXISTS (SELECT FROM pg_enum WHERE enumlabel = 'calm') THEN ALTER TYPE mood RENAME "
                 "VALUE 'calm' TO 'quiet'; ELSE ALTER TYPE mood RENAME VALUE 'Calm' TO 'quiet'; END IF; END $$;",
                 "ALTER TYPE mood RENAME VALUE 'quiet' TO 'Calm';")}});
  int code = 0;
  std::string out;
  auto report = RunVerify({"--target", "e3", "--rows-per-table", "40"}, "", &code, &out, chain.dir);
  EXPECT_EQ(code, 1) << out;
  EXPECT_CONTAINS(SuiteDetails(report, "table reads")["reads.upgraded"],
                  "re-read moods (the upgrade changed the type of its column(s) #2)");
  EXPECT_CONTAINS(report["verdict"].get<std::string>(),
                  "the rollback of e2 -> e3 is not exact: moods data preserved: baseline 40 rows, now 40; values of "
                  "m differ");
}

TEST(VerifyReads, RowsWrittenUnderANameUsedOnlyWithinTheRunAreCounted) {
  // The update names the table as it is called between two renames: the
  // count is the table's, by oid, whatever its name then.
  OwnChain chain(std::map<std::string, std::string>{{"r2_renamed.sql",
                   "--! revision: r2\n--! down_revision: t1\n--! message: r2\n\n--! upgrade\n"
                   "--! step: Rename\nALTER TABLE events RENAME TO events_v2;\n"
                   "--! step: Touch\nUPDATE events_v2 SET weight = coalesce(weight, 0) + 1 WHERE id = 7;\n"
                   "--! step: Rename back\nALTER TABLE events_v2 RENAME TO events;\n\n"
                   "--! downgrade\n--! step: Down\nSELECT 1;\n"}});
  int code = 0;
  std::string out;
  auto report = RunVerify({"--target", "r2", "--rows-per-table", "300"}, "", &code, &out, chain.dir);
  EXPECT_EQ(code, 1) << out;
  EXPECT_CONTAINS(SuiteDetails(report, "table reads")["reads.upgraded"], "re-read events (the upgrade: 1 updated)");
  EXPECT_CONTAINS(report["verdict"].get<std::string>(), "events data preserved: baseline 300 rows, now 300; "
                                                        "values of weight differ");
}

TEST(VerifyReads, ASecondRunThatDropsAndAddsAColumnAgainChangedIt) {
  // The catalog's entries are the same after it (same name, type and
  // place); the column's number is not.
  OwnChain chain({{"r2_readd.sql", Revision("r2", "t1",
                                            "ALTER TABLE events DROP COLUMN IF EXISTS score;\nALTER TABLE events "
                                            "ADD COLUMN score integer;",
                                            "ALTER TABLE events DROP COLUMN IF EXISTS score;", true)}});
  int code = 0;
  std::string out;
  auto report = RunVerify({"--target", "r2", "--rows-per-table", "100"}, "", &code, &out, chain.dir);
  EXPECT_EQ(code, 1) << out;
  EXPECT_CONTAINS(report["verdict"].get<std::string>(),
                  "t1 -> r2 says it is idempotent, but its second run changed the columns of events");
}

TEST(VerifyReads, ATableNamedWithAnEscapeIsShownEscapedWhereItIsReadAgain) {
  OwnChain chain({{"h2_table.sql", Revision("h2", "t1", "CREATE TABLE \"h\x1b[2Jx\" (id serial PRIMARY KEY, n int);",
                                            "DROP TABLE \"h\x1b[2Jx\";")},
                  {"h3_touch.sql", Revision("h3", "h2", "UPDATE \"h\x1b[2Jx\" SET n = n;", "SELECT 1;")}});
  int code = 0;
  std::string out;
  RunVerify({"--target", "h3", "--rows-per-table", "20"}, "", &code, &out, chain.dir);
  EXPECT_EQ(code, 0) << out;
  EXPECT_CONTAINS(out, "re-read h\\x1b[2Jx (the upgrade: 20 updated)");
  EXPECT_EQ(out.find("\x1b[2J"), std::string::npos) << out;
}

}  // namespace
}  // namespace harness::testing
