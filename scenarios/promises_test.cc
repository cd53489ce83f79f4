// The README's promises against a hostile or careless revision, as a
// superuser runs the tool on production: a check only reads (one query,
// refused before anything runs otherwise); a revision runs in one
// transaction (a step that would end it is refused before anything runs,
// and a step that ended it anyway is caught after it); a rehearsal that
// found a defect ends NOT READY, not FAILED; a running check is cancelled
// by SIGINT or SIGTERM. Each case proves the database (and, for COPY, the
// file system) unchanged.
#include <gtest/gtest.h>

#include <signal.h>

#include <chrono>
#include <filesystem>
#include <fstream>

#include <pqxx/pqxx>

#include "harness/engine/migrator.h"
#include "harness/pg/connection.h"
#include "harness/pg/disposable_database.h"
#include "scenarios/support/test_env.h"

namespace harness::testing {
namespace {

namespace fs = std::filesystem;

// A chain of its own in a temporary folder: p1 makes a table with rows, p2
// is written by the test.
class Chain2 {
 public:
  explicit Chain2(const std::string& p2)
      : dir_(fs::path(::testing::TempDir()) / pg::UniqueDatabaseName("mh_promises")) {
    fs::create_directories(dir_);
    std::ofstream(dir_ / "p1_items.sql")
        << "--! revision: p1\n--! down_revision:\n--! message: items\n\n--! upgrade\n--! step: Create items\n"
           "CREATE TABLE items (id int PRIMARY KEY, name text NOT NULL);\n"
           "INSERT INTO items SELECT i, 'item ' || i FROM generate_series(1, 10) i;\n\n"
           "--! downgrade\n--! step: Drop items\nDROP TABLE items;\n";
    std::ofstream(dir_ / "p2_change.sql") << p2;
  }
  ~Chain2() {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }
  std::string dir() const { return dir_.string(); }

 private:
  fs::path dir_;
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

}  // namespace
}  // namespace harness::testing
