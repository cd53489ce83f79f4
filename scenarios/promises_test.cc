// The README's promises against a hostile or careless revision, as a
// superuser runs the tool on production: a check only reads (one query,
// refused before anything runs otherwise); a revision runs in one
// transaction (a step that would end it is refused before anything runs,
// and a step that ended it anyway is caught after it); a rehearsal that
// found a defect ends NOT READY, not FAILED; a running check is cancelled
// by SIGINT or SIGTERM; text that is not the tool's own is shown escaped;
// a write to standard output that fails is exit 3. Each refusal proves the
// database (and, for COPY, the file system) unchanged.
#include <gtest/gtest.h>

#include <signal.h>

#include <chrono>
#include <filesystem>
#include <fstream>

#include <nlohmann/json.hpp>
#include <pqxx/pqxx>

#include "harness/engine/migrator.h"
#include "harness/pg/connection.h"
#include "harness/pg/disposable_database.h"
#include "harness/sys/untrusted_text.h"
#include "scenarios/support/test_env.h"

namespace harness::testing {
namespace {

namespace fs = std::filesystem;

// A chain of its own in a temporary folder: p1 makes a table with rows, p2
// is written by the test.
class Chain2 : public TempChain {
 public:
  explicit Chain2(const std::string& p2)
      : TempChain({{"p1_items.sql",
                    "--! revision: p1\n--! down_revision:\n--! message: items\n\n--! upgrade\n--! step: Create items\n"
                    "CREATE TABLE items (id int PRIMARY KEY, name text NOT NULL);\n"
                    "INSERT INTO items SELECT i, 'item ' || i FROM generate_series(1, 10) i;\n\n"
                    "--! downgrade\n--! step: Drop items\nDROP TABLE items;\n"},
                   {"p2_change.sql", p2}}) {}
};

std::string Revision2(const std::string& upgrade, const std::string& checks = {},
                      const std::string& downgrade = "DROP TABLE IF EXISTS extra;\n") {
  return "--! revision: p2\n--! down_revision: p1\n--! message: the change\n\n--! upgrade\n" + upgrade +
         "\n--! downgrade\n--! step: Undo\n" + downgrade + "\n" + checks;
}

// A database at p1 of `chain`.
std::unique_ptr<pg::DisposableDatabase> AtP1(const Chain2& chain) {
  auto db = std::make_unique<pg::DisposableDatabase>(TestServer().AdminUrl(), "template0", "mh_promises");
  auto r = RunCli({"--migrations", chain.dir(), "upgrade", "p1"}, db->url().text());
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  return db;
}

// ---- a check is one query ------------------------------------------------------

struct HostileCheck {
  const char* name;
  const char* sql;
  const char* why;  // what the refusal says the query is
};

const HostileCheck kHostileChecks[] = {
    {"CommitThenDelete", "COMMIT; DELETE FROM items WHERE id <= 3 RETURNING id;",
     "2 statements, not one (a statement of kind Delete follows the first)"},
    {"CopyToAFile", "COPY (SELECT 1) TO '/tmp/mh_promises_copy_check';", "a COPY, not a SELECT"},
    {"SetRole", "SET ROLE postgres;", "a SET ROLE, not a SELECT"},
    {"DeletingWith", "WITH gone AS (DELETE FROM items RETURNING id) SELECT id FROM gone;",
     "a WITH that writes rows"},
    {"SelectInto", "SELECT * INTO stolen FROM items;", "a SELECT ... INTO, which creates a table"},
    {"TwoSelects", "SELECT 1; SELECT 2;", "2 statements, not one"},
};

class ChecksOnlyRead : public ::testing::TestWithParam<HostileCheck> {};

// Refused by every path that runs checks, before any check runs: the
// database and the file system as they were.
TEST_P(ChecksOnlyRead, AQueryThatIsNotOneSelectIsRefusedBeforeAnythingRuns) {
  const HostileCheck& c = GetParam();
  Chain2 chain(Revision2("--! step: Add extra\nCREATE TABLE extra (id int PRIMARY KEY);\n",
                         std::string("--! check pre: hostile\n") + c.sql + "\n"));
  auto db = AtP1(chain);
  fs::remove("/tmp/mh_promises_copy_check");
  const DatabaseState before = CaptureState(db->url());
  for (const std::vector<std::string>& args :
       {std::vector<std::string>{"check", "pre"}, {"check", "post"}, {"check", "rollback"}, {"verify"}}) {
    std::vector<std::string> all = {"--migrations", chain.dir()};
    all.insert(all.end(), args.begin(), args.end());
    auto r = RunCli(all, db->url().text());
    EXPECT_EQ(r.exit_code, 2) << args[0] << "\n" << r.out << r.err;
    EXPECT_CONTAINS(r.err, "error: the pre check 'hostile' of revision p2 (p2_change.sql:");
    EXPECT_CONTAINS(r.err, std::string("must be one query (one SELECT, WITH ... SELECT or VALUES) and is ") + c.why);
    EXPECT_EQ(r.out.find("\u2713"), std::string::npos) << r.out;  // verify: no phase ran
    ExpectUnchanged(db->url(), before, args[0]);
  }
  EXPECT_FALSE(fs::exists("/tmp/mh_promises_copy_check"));
}

INSTANTIATE_TEST_SUITE_P(Hostile, ChecksOnlyRead, ::testing::ValuesIn(kHostileChecks),
                         [](const auto& p) { return std::string(p.param.name); });

// ---- one transaction ---------------------------------------------------------------

// A step that commits half way, then a step that fails: refused before
// anything of the revision runs, by upgrade, --sql and verify.
TEST(OneTransaction, AStepThatWouldCommitIsRefusedBeforeAnythingRuns) {
  Chain2 chain(Revision2("--! step: Commit half way\nCOMMIT; DROP TABLE items; CREATE TABLE t2 (id int);\n"
                         "--! step: Fail\nSELECT 1 / 0;\n"));
  auto db = AtP1(chain);
  const DatabaseState before = CaptureState(db->url());
  for (const std::vector<std::string>& args : {std::vector<std::string>{"upgrade", "head"},
                                               {"upgrade", "head", "--sql"}, {"verify"}}) {
    std::vector<std::string> all = {"--migrations", chain.dir()};
    all.insert(all.end(), args.begin(), args.end());
    auto r = RunCli(all, db->url().text());
    EXPECT_EQ(r.exit_code, 2) << r.out << r.err;
    EXPECT_CONTAINS(r.err, "error: revision p2 upgrade step 1/2 (Commit half way, p2_change.sql:6) holds a COMMIT, "
                           "which would end or replace the migration's one transaction");
    ExpectUnchanged(db->url(), before, args[0]);
  }
  for (const char* statement : {"BEGIN;", "END;", "ROLLBACK;", "ABORT;", "START TRANSACTION;",
                                "PREPARE TRANSACTION 'x';", "SET TRANSACTION ISOLATION LEVEL SERIALIZABLE;",
                                "/* a comment */ commit;"}) {
    Chain2 other(Revision2(std::string("--! step: Control\nSELECT 1;\n") + statement + "\n"));
    auto r = RunCli({"--migrations", other.dir(), "upgrade", "head", "--sql"});
    EXPECT_EQ(r.exit_code, 2) << statement << "\n" << r.out << r.err;
    EXPECT_CONTAINS(r.err, "which would end or replace the migration's one transaction");
  }
  // What stays inside the transaction is not refused: a savepoint and its
  // rollback, a DO block's BEGIN, a string holding COMMIT.
  Chain2 fine(Revision2("--! step: Inside\nSAVEPOINT s; ROLLBACK TO SAVEPOINT s; RELEASE s;\n"
                        "DO $$BEGIN PERFORM 1; END$$;\nSELECT 'COMMIT; BEGIN';\n"
                        "CREATE TABLE extra (id int PRIMARY KEY);\n"));
  auto ok = RunCli({"--migrations", fine.dir(), "verify"});
  EXPECT_EQ(ok.exit_code, 0) << ok.out << ok.err;
}

// The second line: a step that ended the transaction anyway (here a hook
// commits in its place) is caught after it, naming it.
TEST(OneTransaction, AStepThatEndedTheTransactionIsCaughtAfterIt) {
  Chain2 chain(Revision2("--! step: Add extra\nCREATE TABLE extra (id int PRIMARY KEY);\n"
                         "--! step: Add more\nCREATE TABLE more (id int PRIMARY KEY);\n"));
  auto db = AtP1(chain);
  auto graph = engine::RevisionGraph::LoadDirectory(chain.dir());
  engine::MigratorOptions o;
  o.log_steps = false;
  o.after_step = [](const engine::StepTiming& st, pqxx::transaction_base& tx) {
    if (st.revision == "p2" && st.index == 1) tx.exec("COMMIT");
  };
  // The hook runs after the step's own check: a COMMIT before step 2 is
  // what step 2's check sees.
  pg::Connection conn(db->url());
  try {
    engine::Migrator(conn, graph, o).Upgrade("p2");
    ADD_FAILURE() << "a step after the transaction ended went unnoticed";
  } catch (const engine::RevisionError& e) {
    EXPECT_EQ(e.code(), ExitCode::kDatabase);
    EXPECT_EQ(e.revision(), "p2");
    EXPECT_CONTAINS(e.what(), "revision p2 Step 2/2 (Add more, p2_change.sql:8): the step ended the migration's "
                              "transaction");
  }
}

// ---- verdicts say what was found -------------------------------------------------------

// A downgrade that forgets the CHECK its upgrade added: the rollback check
// names it, the final upgrade then fails on it (42710): NOT READY naming
// both, exit 1, not FAILED.
TEST(Verdicts, ADefectFoundAndThenAFailingPhaseIsNotReady) {
  Chain2 chain(Revision2("--! step: Add a check\nALTER TABLE items ADD CONSTRAINT named CHECK (id > 0);\n", "",
                         "SELECT 1;\n"));
  auto r = RunCli({"--migrations", chain.dir(), "verify", "--rows-per-table", "5"});
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
  EXPECT_CONTAINS(r.out, "✗ Schema equals the pre-upgrade catalog: 1 difference(s): + constraint items.named");
  EXPECT_CONTAINS(r.out, "NOT READY: revision p2 failed during final upgrade p1 -> p2 (and rollback check "
                         "rollback.catalog_diff failed)");
  EXPECT_CONTAINS(r.out, "(SQLSTATE 42710)");
  EXPECT_EQ(r.out.find("FAILED:"), std::string::npos) << r.out;
}

// ---- a running check is cancelled ------------------------------------------------------

TEST(Checks, SigintOrSigtermCancelsARunningCheckWithinASecond) {
  for (int sig : {SIGINT, SIGTERM}) {
    Chain2 chain(Revision2("--! step: Add extra\nCREATE TABLE extra (id int PRIMARY KEY);\n",
                           "--! check pre: slow\nSELECT 1 FROM pg_catalog.pg_sleep(60);\n"));
    auto db = AtP1(chain);
    BackgroundCli cli({"--migrations", chain.dir(), "check", "pre"}, db->url().text());
    pqxx::connection admin(TestServer().AdminUrl().text());
    auto sleeping = [&] {
      pqxx::nontransaction tx(admin);
      return tx.exec_params1("SELECT count(*) FROM pg_stat_activity WHERE datname = $1 AND query LIKE "
                             "'%pg_sleep(60)%' AND pid <> pg_backend_pid()",
                             db->name())[0]
          .as<int>();
    };
    ASSERT_TRUE(WaitUntil([&] { return sleeping() == 1; }, std::chrono::seconds(30))) << cli.Output();
    const auto t0 = std::chrono::steady_clock::now();
    cli.Signal(sig);
    auto status = cli.Wait(std::chrono::seconds(30));
    ASSERT_TRUE(status);
    EXPECT_EQ(*status, 130) << cli.Output();
    EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(1)) << cli.Output();
    EXPECT_CONTAINS(cli.Output(), sig == SIGINT ? "interrupted by SIGINT" : "interrupted by SIGTERM");
    EXPECT_EQ(sleeping(), 0);
  }
}


// ---- text that is not the tool's own --------------------------------------------------

// What a hostile value does on a terminal that obeys it: a new window title,
// a cleared screen, a line of its own that reads READY, a reversed tail.
const std::string kHostile = "\x1b]0;pwned\x07\x1b[2J\nREADY \xe2\x80\xae" "evil";
const char* kHostileSql = "E'\\033]0;pwned\\007\\033[2J\\nREADY \\u202eevil'";
const std::string kHostileShown = "\\x1b]0;pwned\\x07\\x1b[2J\\x0aREADY \\u202eevil";

void ExpectNothingRaw(const std::string& text, const std::string& where) {
  for (const char* raw : {"\x1b", "\x07", "\xe2\x80\xae", "\nREADY"})
    EXPECT_EQ(text.find(raw), std::string::npos) << where << ": " << sys::Escaped(raw) << " raw in\n" << text;
}

// A value in the data, a server WARNING raised with it, an error quoting
// it, a revision's message: every command that prints them shows them in
// the one escaped form; JSON carries the exact text; JUnit XML is well
// formed.
TEST(UntrustedText, IsShownEscapedByEveryCommandThatPrintsIt) {
  const std::string p2 =
      "--! revision: p2\n--! down_revision: p1\n--! message: the change \x1b[2J\n\n--! upgrade\n"
      "--! step: Warn\nDO $$BEGIN RAISE WARNING 'seen: %', (SELECT name FROM items WHERE id = 11); END$$;\n"
      "--! step: Fail\nDO $$BEGIN RAISE EXCEPTION 'refused: %', (SELECT name FROM items WHERE id = 11); END$$;\n"
      "\n--! downgrade\n--! step: Undo\nSELECT 1;\n\n"
      "--! check pre: no hostile names\nSELECT id, name FROM items WHERE name LIKE '%pwned%';\n";
  Chain2 chain(p2);
  auto db = AtP1(chain);
  {
    pqxx::connection c(db->url().text());
    pqxx::work tx(c);
    tx.exec(std::string("INSERT INTO items VALUES (11, ") + kHostileSql + ")");
    tx.commit();
  }
  const std::string dir = chain.dir();
  const std::string junit = fs::path(::testing::TempDir()) / (pg::UniqueDatabaseName("mh_junit") + ".xml");

  auto pre = RunCli({"--migrations", dir, "check", "pre", "--junit", junit}, db->url().text());
  EXPECT_EQ(pre.exit_code, 1) << pre.out << pre.err;
  EXPECT_CONTAINS(pre.out, "(11, " + kHostileShown + ")");
  ExpectNothingRaw(pre.out + pre.err, "check pre");
  std::string xml;
  {
    std::ifstream in(junit);
    xml.assign(std::istreambuf_iterator<char>(in), {});
  }
  ExpectNothingRaw(xml, "check pre --junit");
  EXPECT_CONTAINS(xml, kHostileShown);
  auto parsed = sys::RunProcess({"/usr/bin/python3", "-c", "import sys, xml.dom.minidom; xml.dom.minidom.parse(sys.argv[1])",
                                junit});
  EXPECT_EQ(parsed.exit_code, 0) << parsed.err << xml;
  fs::remove(junit);

  auto json = RunCli({"--migrations", dir, "check", "pre", "--json"}, db->url().text());
  EXPECT_EQ(json.exit_code, 1) << json.err;
  const auto report = nlohmann::json::parse(json.out);
  EXPECT_CONTAINS(report["checks"][0]["detail"].get<std::string>(), "(11, " + kHostile + ")");

  auto up = RunCli({"--migrations", dir, "upgrade", "head"}, db->url().text());
  EXPECT_EQ(up.exit_code, 3) << up.out << up.err;
  EXPECT_CONTAINS(up.err, "seen: " + kHostileShown);
  EXPECT_CONTAINS(up.err, "refused: " + kHostileShown + " CONTEXT:  PL/pgSQL function");
  ExpectNothingRaw(up.out + up.err, "upgrade");

  auto verify = RunCli({"--migrations", dir, "verify", "--rows-per-table", "3"});
  EXPECT_EQ(verify.exit_code, 1) << verify.out << verify.err;
  ExpectNothingRaw(verify.out + verify.err, "verify");

  auto history = RunCli({"--migrations", dir, "history", "--verbose"});
  EXPECT_EQ(history.exit_code, 0) << history.err;
  EXPECT_CONTAINS(history.out, "the change \\x1b[2J");
  ExpectNothingRaw(history.out, "history");
}

// Names in the catalog are text too: a table named to rewrite the screen,
// printed by generate --any-schema.
TEST(UntrustedText, ATableNameIsShownEscapedByGenerate) {
  pg::DisposableDatabase db(TestServer().AdminUrl(), "template0", "mh_promises");
  {
    pqxx::connection c(db.url().text());
    pqxx::work tx(c);
    tx.exec(std::string("CREATE TABLE public.") + tx.quote_name(kHostile) + " (id int PRIMARY KEY)");
    tx.commit();
  }
  auto r = RunCli({"generate", "--any-schema", "--rows-per-table", "2"}, db.url().text());
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_CONTAINS(r.out, kHostileShown);
  ExpectNothingRaw(r.out + r.err, "generate --any-schema");
}

// ---- standard output that cannot be written -------------------------------------------

// `> /dev/full`: every command that prints says so on stderr and exits 3.
const std::vector<std::string> kToDevFull = {"/bin/sh", "-c", "exec \"$0\" \"$@\" > /dev/full"};
// A pipe whose reader is gone (EPIPE; perl leaves SIGPIPE as it is).
const std::vector<std::string> kToClosedPipe = {
    "/usr/bin/perl", "-e", "pipe(R, W) or die; close R; open(STDOUT, '>&', W) or die; exec @ARGV or die"};

TEST(StandardOutput, AWriteThatFailsIsExit3ForEveryCommandThatPrints) {
  Chain2 chain(Revision2("--! step: Add extra\nCREATE TABLE extra (id int PRIMARY KEY);\n",
                         "--! check pre: fine\nSELECT 1 WHERE false;\n"));
  auto db = AtP1(chain);
  const std::string url = db->url().text();
  const std::string dir = chain.dir();
  for (const std::vector<std::string>& args :
       {std::vector<std::string>{"history"}, {"history", "--verbose"}, {"current"}, {"heads"}, {"--help"},
        {"check", "pre"}, {"check", "pre", "--json"}, {"upgrade", "head", "--sql"},
        {"verify", "--rows-per-table", "3"}}) {
    std::vector<std::string> all = {"--migrations", dir};
    all.insert(all.end(), args.begin(), args.end());
    std::string command;
    for (const auto& a : args) command += " " + a;
    auto r = RunCliThrough(kToDevFull, all, url);
    EXPECT_EQ(r.exit_code, 3) << command << "\n" << r.err;
    EXPECT_CONTAINS(r.err, "error: cannot write standard output: No space left on device");
  }
  for (const std::vector<std::string>& args :
       {std::vector<std::string>{"history"}, {"check", "pre", "--json"}}) {
    std::vector<std::string> all = {"--migrations", dir};
    all.insert(all.end(), args.begin(), args.end());
    auto r = RunCliThrough(kToClosedPipe, all, url);
    EXPECT_EQ(r.exit_code, 3) << args[0] << "\n" << r.err;
    EXPECT_CONTAINS(r.err, "error: cannot write standard output: Broken pipe");
  }
  // The migration's outcome does not depend on its output: it is said.
  auto up = RunCliThrough(kToDevFull, {"--migrations", dir, "upgrade", "head"}, url);
  EXPECT_EQ(up.exit_code, 3) << up.err;
  EXPECT_CONTAINS(up.err, "cannot write standard output: No space left on device; the upgrade committed: the "
                          "database is at p2");
  EXPECT_EQ(RunCli({"--migrations", dir, "current"}, url).out, "p2 (head)\n");
  auto down = RunCliThrough(kToDevFull, {"--migrations", dir, "downgrade", "p1"}, url);
  EXPECT_EQ(down.exit_code, 3) << down.err;
  EXPECT_CONTAINS(down.err, "; the downgrade committed: the database is at p1");
  auto stamp = RunCliThrough(kToDevFull, {"--migrations", dir, "stamp", "p2"}, url);
  EXPECT_EQ(stamp.exit_code, 3) << stamp.err;
  EXPECT_CONTAINS(stamp.err, "; the stamp committed: alembic_version names p2");
}

// Standard error too: nothing can be said, the exit code says it.
TEST(StandardOutput, StandardErrorThatCannotBeWrittenIsExit3) {
  Chain2 chain(Revision2("--! step: Add extra\nCREATE TABLE extra (id int PRIMARY KEY);\n",
                         "--! check pre: fine\nSELECT 1 WHERE false;\n"));
  auto db = AtP1(chain);
  const std::vector<std::string> to_full_stderr = {"/bin/sh", "-c", "exec \"$0\" \"$@\" 2> /dev/full"};
  auto up = RunCliThrough(to_full_stderr, {"--migrations", chain.dir(), "upgrade", "head"}, db->url().text());
  EXPECT_EQ(up.exit_code, 3) << up.out;
  EXPECT_EQ(RunCli({"--migrations", chain.dir(), "current"}, db->url().text()).out, "p2 (head)\n");
  auto usage = RunCliThrough(to_full_stderr, {"--migrations", chain.dir(), "upgrade", "nosuch"}, db->url().text());
  EXPECT_EQ(usage.exit_code, 2) << usage.out;
}

TEST(StandardOutput, GenerateToAFullDiskIsExit3) {
  pg::DisposableDatabase db(TestServer().AdminUrl(), "template0", "mh_promises");
  {
    pqxx::connection c(db.url().text());
    pqxx::work tx(c);
    tx.exec("CREATE TABLE t (id int PRIMARY KEY)");
    tx.commit();
  }
  auto r = RunCliThrough(kToDevFull, {"generate", "--any-schema", "--rows-per-table", "2"}, db.url().text());
  EXPECT_EQ(r.exit_code, 3) << r.err;
  EXPECT_CONTAINS(r.err, "error: cannot write standard output: No space left on device");
}

}  // namespace
}  // namespace harness::testing
