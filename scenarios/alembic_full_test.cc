// The full set of Alembic tests (label `alembic`, scripts/test-alembic; the
// default run keeps alembic_test.cc): every revision of the sync project
// (psycopg2) with its expected classification and verdict, on the embedded
// cluster and on a scratch clone; the chain checks; bad input, each one
// line and exit 2 with nothing run; a branch and a merge; a password that
// needs quoting; an interrupt while a revision runs.
#include <gtest/gtest.h>

#include <signal.h>

#include <cstdio>
#include <fstream>
#include <map>
#include <regex>

#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <pqxx/pqxx>

#include "fixtures/any_schema.h"
#include "harness/pg/connection.h"
#include "harness/pg/disposable_database.h"
#include "scenarios/support/test_env.h"

namespace harness::testing {
namespace {

namespace fs = std::filesystem;

struct Outcome {
  int exit_code = -1;
  std::string out;
  nlohmann::json report;
};

Outcome Verify(const fs::path& project, const std::vector<std::string>& args, const std::string& url = {},
               const std::map<std::string, std::string>& env = {}) {
  const std::string json = ::testing::TempDir() + pg::UniqueDatabaseName("alembic") + ".json";
  std::vector<std::string> all = {"verify", "--alembic", project.string(), "--report-json", json};
  all.insert(all.end(), args.begin(), args.end());
  auto r = RunCli(all, url, env);
  Outcome o{r.exit_code, r.out + r.err, {}};
  std::ifstream in(json);
  if (in) o.report = nlohmann::json::parse(in, nullptr, false);
  std::remove(json.c_str());
  return o;
}

std::string Step(const Outcome& o, const std::string& id) {
  for (const auto& s : o.report["suites"])
    if (s["suite"] == "step effects")
      for (const auto& c : s["checks"])
        if (c["id"] == id) return c["detail"];
  return {};
}

std::string Verdict(const Outcome& o) { return o.report.is_object() ? o.report.value("verdict", "") : ""; }

// ---- every revision of the sync project ------------------------------------

struct RevisionCase {
  const char* revision;
  const char* kinds;    // its upgrade step, as measured
  int exit_code;
  const char* verdict;  // the verdict's beginning
  const char* also;     // in the step's detail or the verdict
};

const RevisionCase kSync[] = {
    {"s1", "catalog only", 0, "READY: <base> -> s1 upgraded in", "created accounts, audit.entries"},
    {"s2", "row update + full scan", 0, "READY: s1 -> s2 upgraded in", "updated 200 rows of accounts"},
    {"s3", "index build + full scan", 0, "READY: s2 -> s3 upgraded in", "built ix_accounts_name"},
    {"s4", "row update + full scan", 0, "READY: s3 -> s4 upgraded in", "updated 200 rows of accounts"},
    {"s5", "table rewrite", 1,
     "NOT READY: the rollback of s4 -> s5 is not exact: accounts data preserved: baseline 200 rows, now 200; "
     "values of balance differ",
     "rewrote accounts"},
    {"s6", "catalog only", 1, "NOT READY: revision s6 failed during final upgrade s5 -> s6 (and rollback check "
                              "rollback.catalog_diff failed)",
     "DuplicateColumn"},
    {"s7", "", 1, "NOT READY: revision s7 failed during upgrade s6 -> s7: revision s7 "
                  "(alembic/versions/s7_drops_an_index_the_chain_never_created.py) failed: ProgrammingError: "
                  "(psycopg2.errors.UndefinedObject) index \"ix_accounts_created_at\" does not exist (SQLSTATE 42704)",
     "statement: DROP INDEX ix_accounts_created_at"},
};

class AlembicSyncRevision : public ::testing::TestWithParam<RevisionCase> {};

TEST_P(AlembicSyncRevision, OnTheEmbeddedClusterItIsMeasuredAndJudged) {
  const RevisionCase& c = GetParam();
  auto o = Verify(AlembicProject("sync_project"), {"--target", c.revision, "--rows-per-table", "200"});
  EXPECT_EQ(o.exit_code, c.exit_code) << o.out;
  ASSERT_TRUE(o.report.is_object()) << o.out;
  EXPECT_EQ(Verdict(o).rfind(c.verdict, 0), 0u) << Verdict(o);
  const std::string step = Step(o, std::string("step.") + c.revision + ".up.1");
  if (*c.kinds) {
    EXPECT_NE(step.find(std::string(": ") + c.kinds + ";"), std::string::npos) << step;
  }
  EXPECT_TRUE(step.find(c.also) != std::string::npos || Verdict(o).find(c.also) != std::string::npos)
      << c.also << "\n" << step << "\n" << Verdict(o);
}

INSTANTIATE_TEST_SUITE_P(Sync, AlembicSyncRevision, ::testing::ValuesIn(kSync),
                         [](const auto& p) { return std::string(p.param.revision); });

// A copy at s1 with rows, rehearsed on a scratch clone up to s4: three
// revisions in one run, each measured; the copy unchanged. Then s7, which
// fails on the copy: NOT READY, no scratch database left.
TEST(AlembicSync, OnAScratchCloneARangeIsRehearsedAndAFailingRevisionIsNotReady) {
  pg::DisposableDatabase db(TestServer().AdminUrl(), "template0", "mh_alembic");
  RunAlembic(AlembicProject("sync_project"), db.url(), "psycopg2", "upgrade", "s1");
  {
    pg::Connection conn(db.url());
    fixtures::AnySchemaOptions o;
    o.rows_per_table = 100;
    fixtures::GenerateAnySchema(conn, o);
  }
  const DatabaseState before = CaptureState(db.url());
  auto o = Verify(AlembicProject("sync_project"), {"--target", "s4"}, db.url().text());
  EXPECT_EQ(o.exit_code, 0) << o.out;
  ExpectUnchanged(db.url(), before);
  EXPECT_EQ(Verdict(o).rfind("READY: s1 -> s4 upgraded in", 0), 0u) << Verdict(o);
  EXPECT_CONTAINS(Step(o, "step.s2.up.1"), ": row update + full scan;");
  EXPECT_CONTAINS(Step(o, "step.s3.up.1"), ": index build + full scan;");
  EXPECT_CONTAINS(Step(o, "step.s4.up.1"), ": row update + full scan;");
  EXPECT_CONTAINS(o.out, "✓ audit.entries data preserved (100 rows");
  RunAlembic(AlembicProject("sync_project"), db.url(), "psycopg2", "upgrade", "s6");
  const DatabaseState at_s6 = CaptureState(db.url());
  auto failing = Verify(AlembicProject("sync_project"), {"--target", "s7"}, db.url().text());
  EXPECT_EQ(failing.exit_code, 1) << failing.out;
  ExpectUnchanged(db.url(), at_s6);
  EXPECT_CONTAINS(Verdict(failing), "NOT READY: revision s7 failed during upgrade s6 -> s7");
  EXPECT_CONTAINS(Verdict(failing), "(SQLSTATE 42704)");
  std::smatch m;
  const std::string target = failing.report.value("target", "");
  ASSERT_TRUE(std::regex_search(target, m, std::regex("cloned into (mh_verify_\\w+)"))) << target;
  pqxx::connection admin(TestServer().AdminUrl().text());
  pqxx::nontransaction tx(admin);
  EXPECT_EQ(tx.exec_params1("SELECT count(*) FROM pg_database WHERE datname = $1", m[1].str())[0].as<int>(), 0);
}

// --into-embedded: the server's statement log is readable there.
TEST(AlembicSync, IntoEmbeddedMeasuresEachStatement) {
  if (const std::string why = WhyLocalPgDumpCannotDumpTestServer(); !why.empty()) GTEST_SKIP() << why;
  pg::DisposableDatabase db(TestServer().AdminUrl(), "template0", "mh_alembic");
  RunAlembic(AlembicProject("sync_project"), db.url(), "psycopg2", "upgrade", "s2");
  const DatabaseState before = CaptureState(db.url());
  auto o = Verify(AlembicProject("sync_project"), {"--target", "s3", "--into-embedded"}, db.url().text());
  EXPECT_EQ(o.exit_code, 0) << o.out;
  ExpectUnchanged(db.url(), before);
  // Every statement in the report (the step's line names the slowest three).
  std::string statements;
  for (const auto& st : o.report["statements"].value("step.s3.up.1", nlohmann::json::array()))
    statements += st["sql"].get<std::string>() + "\n";
  EXPECT_CONTAINS(statements, "CREATE INDEX ix_accounts_name ON accounts (name)");
  EXPECT_CONTAINS(Step(o, "step.s3.up.1"), "statement(s) logged by the server, the slowest: ");
  EXPECT_CONTAINS(o.out, "Statements and their times: from the server's own statement log");
}

// ---- the chain checks -------------------------------------------------------

TEST(AlembicChain, TheAsyncProjectPassesTheSyncOneNamesItsPassDowngrade) {
  auto good = RunCli({"check", "chain", "--alembic", AlembicProject("async_project").string(), "--alembic-driver",
                      "asyncpg"});
  EXPECT_EQ(good.exit_code, 0) << good.out << good.err;
  EXPECT_CONTAINS(good.out, "✓ One head: 0365901259f8");
  EXPECT_CONTAINS(good.out, "✓ a2: up, down, up: the down gave back exactly what was there");
  auto bad = RunCli({"check", "chain", "--alembic", AlembicProject("sync_project").string(), "--json"});
  EXPECT_EQ(bad.exit_code, 1) << bad.out << bad.err;
  auto j = nlohmann::json::parse(bad.out);
  std::map<std::string, std::string> failed;
  for (const auto& c : j["checks"])
    if (c["status"] == "fail") failed[c["id"]] = c["detail"];
  EXPECT_EQ(failed.size(), 3u) << bad.out;
  EXPECT_CONTAINS(failed["chain.downgrade_code.s6"], "s6: downgrade written: its body does nothing (pass)");
  EXPECT_CONTAINS(failed["chain.downgrade_effect.s6"], "its upgrade changed 2 catalog entries");
  EXPECT_CONTAINS(failed["chain.stairway.s6"], "the second upgrade failed");
}

// ---- check pre|post|rollback --alembic ----------------------------------------

// The checks every revision gets, on the project's own database: the
// revision it is at before, and after a rollback its schema and rows
// against the baseline recorded before the upgrade.
TEST(AlembicCheck, PrePostAndRollbackRunTheChecksEveryRevisionGets) {
  const std::string project = AlembicProject("sync_project").string();
  pg::DisposableDatabase db(TestServer().AdminUrl(), "template0", "mh_alembic");
  RunAlembic(project, db.url(), "psycopg2", "upgrade", "s3");
  {
    pg::Connection conn(db.url());
    fixtures::AnySchemaOptions o;
    o.rows_per_table = 50;
    fixtures::GenerateAnySchema(conn, o);
  }
  const std::string baseline = ::testing::TempDir() + pg::UniqueDatabaseName("alembic_baseline") + ".json";
  auto pre = RunCli({"check", "pre", "--alembic", project, "--target", "s4", "--save-baseline", baseline},
                    db.url().text());
  EXPECT_EQ(pre.exit_code, 0) << pre.out << pre.err;
  EXPECT_CONTAINS(pre.out, "✓ Current revision is s3 (s3 or earlier)");
  RunAlembic(project, db.url(), "psycopg2", "upgrade", "s4");
  auto post = RunCli({"check", "post", "--alembic", project, "--target", "s4"}, db.url().text());
  EXPECT_EQ(post.exit_code, 0) << post.out << post.err;
  EXPECT_CONTAINS(post.out, "No post checks for s3 -> s4");
  RunAlembic(project, db.url(), "psycopg2", "downgrade", "s3");
  auto rollback = RunCli({"check", "rollback", "--alembic", project, "--target", "s4", "--baseline", baseline},
                         db.url().text());
  EXPECT_EQ(rollback.exit_code, 0) << rollback.out << rollback.err;
  EXPECT_CONTAINS(rollback.out, "✓ accounts data preserved (50 rows, fingerprint matches baseline)");
  EXPECT_CONTAINS(rollback.out, "✓ audit.entries data preserved (50 rows, fingerprint matches baseline)");
  EXPECT_CONTAINS(rollback.out, "✓ Schema equals the pre-upgrade catalog (empty diff)");
  std::remove(baseline.c_str());
}

// ---- bad input: one line, exit 2, nothing run -------------------------------

Outcome BadInput(const fs::path& project, const std::vector<std::string>& args = {}) {
  TestDatabase db("base");
  const DatabaseState before = CaptureState(db);
  auto o = Verify(project, args, db.url().text());
  EXPECT_EQ(o.exit_code, 2) << o.out;
  ExpectUnchanged(db, before);
  return o;
}

TEST(AlembicBadInput, AnEnvPyThatRaisesOnImport) {
  AlembicProjectCopy p("sync_project");
  std::ifstream in(p.dir() / "alembic" / "env.py");
  std::string env((std::istreambuf_iterator<char>(in)), {});
  p.Write("alembic/env.py", "raise RuntimeError('no settings module here')\n" + env);
  auto o = BadInput(p.dir());
  EXPECT_CONTAINS(o.out, "error: the project's env.py failed before any revision ran: RuntimeError: no settings "
                         "module here");
}

TEST(AlembicBadInput, AnAsyncEnvPyWithTheDefaultDriverSaysWhichToPass) {
  auto o = BadInput(AlembicProject("async_project"));
  EXPECT_CONTAINS(o.out, "hint: its engine is async: pass --alembic-driver asyncpg");
}

TEST(AlembicBadInput, ARevisionThatDoesNotParse) {
  AlembicProjectCopy p("sync_project");
  p.Write("alembic/versions/s3_index_accounts_name.py", "revision = 's3'\ndown_revision = 's2'\ndef upgrade(:\n");
  auto o = BadInput(p.dir());
  EXPECT_CONTAINS(o.out, "error: the Alembic project " + fs::canonical(p.dir() / "alembic.ini").string() +
                             " cannot be read: SyntaxError");
}

TEST(AlembicBadInput, ADownRevisionThatNamesNothing) {
  AlembicProjectCopy p("sync_project");
  p.Write("alembic/versions/s8_orphan.py",
          "revision = 's8'\ndown_revision = 'nowhere'\nbranch_labels = None\ndepends_on = None\n"
          "def upgrade():\n    pass\ndef downgrade():\n    pass\n");
  auto o = BadInput(p.dir());
  EXPECT_CONTAINS(o.out, "cannot be read: ");
  EXPECT_CONTAINS(o.out, "nowhere");
}

TEST(AlembicBadInput, AnIniWithoutScriptLocation) {
  AlembicProjectCopy p("sync_project");
  std::ifstream in(p.dir() / "alembic.ini");
  std::string ini((std::istreambuf_iterator<char>(in)), {});
  ini = std::regex_replace(ini, std::regex("\nscript_location = [^\n]*"), "\n");
  p.Write("alembic.ini", ini);
  auto o = BadInput(p.dir());
  EXPECT_CONTAINS(o.out, "No 'script_location' key found in configuration");
}

TEST(AlembicBadInput, ARevisionNotInTheChainAndAMissingProject) {
  auto unknown = BadInput(AlembicProject("sync_project"), {"--target", "s9"});
  EXPECT_CONTAINS(unknown.out, "error: revision 's9' is not in the Alembic project");
  auto missing = BadInput(AlembicProject("no_such_project"));
  EXPECT_CONTAINS(missing.out, "error: no Alembic project at ");
}

// A Python whose `import X` fails, for X in `broken`: a wrapper that puts
// modules raising ModuleNotFoundError first on its path.
fs::path BrokenPython(const fs::path& dir, const std::vector<std::string>& broken) {
  fs::create_directories(dir / "shadow");
  for (const auto& module : broken)
    std::ofstream(dir / "shadow" / (module + ".py"))
        << "raise ModuleNotFoundError(\"No module named '" << module << "'\", name='" << module << "')\n";
  const fs::path python = dir / "python";
  std::ofstream(python) << "#!/bin/sh\nPYTHONPATH=" << (dir / "shadow").string() << " exec /usr/bin/python3 \"$@\"\n";
  fs::permissions(python, fs::perms::owner_all);
  return python;
}

TEST(AlembicBadInput, APythonWithoutAlembicOrWithoutTheDriverNamesThePackage) {
  const fs::path dir = fs::path(::testing::TempDir()) / pg::UniqueDatabaseName("mh_python");
  auto no_alembic = BadInput(AlembicProject("sync_project"),
                             {"--alembic-python", BrokenPython(dir / "a", {"alembic"}).string()});
  EXPECT_CONTAINS(no_alembic.out, "error: no Python here can import alembic (");
  EXPECT_CONTAINS(no_alembic.out, "No module named 'alembic'");
  auto no_driver = BadInput(AlembicProject("async_project"), {"--alembic-driver", "asyncpg", "--alembic-python",
                                                             BrokenPython(dir / "b", {"asyncpg"}).string()});
  EXPECT_CONTAINS(no_driver.out, "cannot import asyncpg, the database driver the project's env.py will use");
  EXPECT_CONTAINS(no_driver.out, "apt-get install python3-asyncpg");
  fs::remove_all(dir);
}

// ---- branches and merges ------------------------------------------------------

// base -> a -> b, a -> c, and (with `merged`) m merging b and c.
void WriteBranches(const AlembicProjectCopy& p, bool merged) {
  fs::remove_all(p.dir() / "alembic" / "versions");
  auto revision = [&](const std::string& id, const std::string& down) {
    p.Write("alembic/versions/" + id + "_x.py",
            "from alembic import op\nrevision = '" + id + "'\ndown_revision = " + down +
                "\nbranch_labels = None\ndepends_on = None\n"
                "def upgrade():\n    op.execute('CREATE TABLE t_" + id + " (id int PRIMARY KEY)')\n"
                "def downgrade():\n    op.execute('DROP TABLE t_" + id + "')\n");
  };
  revision("a", "None");
  revision("b", "'a'");
  revision("c", "'a'");
  if (merged) revision("m", "('b', 'c')");
}

TEST(AlembicBranches, TwoHeadsAreNamedAndAMergeIsRehearsedAlongItsPath) {
  AlembicProjectCopy p("sync_project");
  WriteBranches(p, false);
  auto heads = Verify(p.dir(), {});
  EXPECT_EQ(heads.exit_code, 2) << heads.out;
  EXPECT_CONTAINS(heads.out, "error: the Alembic project has 2 heads (b and c)");
  auto chain = RunCli({"check", "chain", "--alembic", p.dir().string()});
  EXPECT_EQ(chain.exit_code, 1) << chain.out << chain.err;
  EXPECT_CONTAINS(chain.out, "✗ One head: 2 heads (b, c)");
  EXPECT_CONTAINS(chain.out, "- Stairway (up, down, up of each revision): not run");
  auto b = Verify(p.dir(), {"--target", "b"});
  EXPECT_EQ(b.exit_code, 0) << b.out;
  EXPECT_CONTAINS(Verdict(b), "READY: a -> b upgraded in");
  WriteBranches(p, true);
  auto m = Verify(p.dir(), {"--target", "m"});
  EXPECT_EQ(m.exit_code, 0) << m.out;
  EXPECT_CONTAINS(Verdict(m), " -> m upgraded in");
  EXPECT_EQ(Verdict(m).rfind("READY: ", 0), 0u) << Verdict(m);
  auto merged_chain = RunCli({"check", "chain", "--alembic", p.dir().string()});
  EXPECT_EQ(merged_chain.exit_code, 0) << merged_chain.out << merged_chain.err;
  EXPECT_CONTAINS(merged_chain.out, "✓ m: up, down, up: the down gave back exactly what was there");
}

// ---- the URL and its password -----------------------------------------------

// A password with %, @ and / reaches env.py intact (the revision records
// whether it did), and is shown nowhere: not in the output, the report or
// the log.
TEST(AlembicUrl, APasswordThatNeedsQuotingArrivesAndIsNeverShown) {
  const std::string password = "p%25w@rd/x:y";
  AlembicProjectCopy p("sync_project");
  fs::remove_all(p.dir() / "alembic" / "versions");
  p.Write("alembic/versions/pw_check.py",
          "import sqlalchemy as sa\nfrom alembic import op\nrevision = 'pw'\ndown_revision = None\n"
          "branch_labels = None\ndepends_on = None\n"
          "def upgrade():\n"
          "    got = op.get_bind().engine.url.password\n"
          "    op.execute('CREATE TABLE seen (ok boolean PRIMARY KEY)')\n"
          "    op.get_bind().execute(sa.text('INSERT INTO seen VALUES (:ok)'), {'ok': got == '" + password + "'})\n"
          "def downgrade():\n    op.execute('DROP TABLE seen')\n");
  TestDatabase db("base");
  // The test cluster trusts its socket: the password is carried, not checked.
  std::string encoded;
  for (unsigned char ch : password)
    encoded += std::isalnum(ch) ? std::string(1, static_cast<char>(ch)) : fmt::format("%{:02X}", ch);
  const std::string url = fmt::format("postgresql://{}:{}@/{}?host={}&port={}", db.url().user(), encoded,
                                      db.url().dbname(), db.url().host(), db.url().port());
  const fs::path log = fs::path(::testing::TempDir()) / (pg::UniqueDatabaseName("pw") + ".log");
  auto o = Verify(p.dir(), {"--in-place", "--log-file", log.string(), "-v"}, url);
  EXPECT_EQ(o.exit_code, 0) << o.out;
  EXPECT_EQ(db.Scalar("SELECT ok::text FROM seen"), "true");
  std::ifstream in(log);
  const std::string logged((std::istreambuf_iterator<char>(in)), {});
  for (const std::string& form : {password, encoded, std::string("w@rd")}) {
    EXPECT_EQ(o.out.find(form), std::string::npos) << form;
    EXPECT_EQ(o.report.dump().find(form), std::string::npos) << form;
    EXPECT_EQ(logged.find(form), std::string::npos) << form;
  }
  fs::remove(log);
}

// ---- an interrupt while a revision runs ---------------------------------------

// SIGINT while a revision's statement runs: its session is cancelled on
// the server, the project's Python ended, exit 130 naming the upgrade; the
// copy unchanged, the scratch clone gone.
TEST(AlembicInterrupt, WhileARevisionRunsItsSessionIsCancelled) {
  AlembicProjectCopy p("sync_project");
  p.Write("alembic/versions/s8_slow.py",
          "from alembic import op\nrevision = 's8'\ndown_revision = 's7'\nbranch_labels = None\ndepends_on = None\n"
          "def upgrade():\n    op.execute('SELECT pg_catalog.pg_sleep(60)')\n"
          "def downgrade():\n    pass\n");
  fs::remove(p.dir() / "alembic" / "versions" / "s7_drops_an_index_the_chain_never_created.py");
  p.Write("alembic/versions/s7_noop.py",
          "revision = 's7'\ndown_revision = 's6'\nbranch_labels = None\ndepends_on = None\n"
          "def upgrade():\n    pass\ndef downgrade():\n    pass\n");
  pg::DisposableDatabase db(TestServer().AdminUrl(), "template0", "mh_alembic");
  RunAlembic(p.dir(), db.url(), "psycopg2", "upgrade", "s7");
  const DatabaseState before = CaptureState(db.url());
  BackgroundCli cli({"verify", "--alembic", p.dir().string(), "--target", "s8"}, db.url().text());
  pqxx::connection admin(TestServer().AdminUrl().text());
  auto sleeping = [&] {
    pqxx::nontransaction tx(admin);
    return tx.exec("SELECT count(*) FROM pg_stat_activity WHERE query LIKE '%pg_sleep(60)%' AND pid <> "
                   "pg_backend_pid()")[0][0].as<int>();
  };
  ASSERT_TRUE(WaitUntil([&] { return sleeping() == 1; }, std::chrono::seconds(60))) << cli.Output();
  const auto t0 = std::chrono::steady_clock::now();
  cli.Signal(SIGINT);
  auto status = cli.Wait(std::chrono::seconds(30));
  ASSERT_TRUE(status) << cli.Output();
  EXPECT_EQ(*status, 130) << cli.Output();
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(5)) << cli.Output();
  EXPECT_CONTAINS(cli.Output(), "INTERRUPTED: interrupted by SIGINT while Alembic ran upgrade s8");
  EXPECT_EQ(sleeping(), 0);
  ExpectUnchanged(db.url(), before);
}

}  // namespace
}  // namespace harness::testing
