// Locks judged at production size (verify/lock_review.h): every form of a
// slow lock named with the table, its rows at production size, the
// forecast hold and the safer form; a hold charged to the steps that make
// it long; --max-lock-hold; --table-rows refused for a table that is not
// there; --with-traffic's queue behind the upgrade's lock. On scratch
// clones of databases this test fills itself.
#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>

#include <nlohmann/json.hpp>
#include <pqxx/pqxx>

#include "harness/engine/sql_statements.h"
#include "harness/pg/disposable_database.h"
#include "scenarios/support/test_env.h"

namespace harness::testing {
namespace {

struct Outcome {
  int exit_code = -1;
  std::string out;
  nlohmann::json report;
  // A line of a suite by id ("" when none).
  std::string Line(const std::string& suite, const std::string& id) const {
    return SuiteDetails(report, suite)[id];
  }
};

Outcome Verify(const TempChain& chain, const std::vector<std::string>& args, const std::string& url) {
  const std::string json = ::testing::TempDir() + pg::UniqueDatabaseName("locks") + ".json";
  std::vector<std::string> all = {"--migrations", chain.dir(), "verify", "--report-json", json};
  all.insert(all.end(), args.begin(), args.end());
  auto r = RunCli(all, url);
  Outcome o{r.exit_code, r.out + r.err, {}};
  std::ifstream in(json);
  if (in) o.report = nlohmann::json::parse(in, nullptr, false);
  std::remove(json.c_str());
  return o;
}

constexpr const char* kLocks = "locks at production size";

// A database of its own at `revision` of `chain`.
std::unique_ptr<pg::DisposableDatabase> At(const TempChain& chain, const std::string& revision) {
  auto db = std::make_unique<pg::DisposableDatabase>(TestServer().AdminUrl(), "template0", "mh_locks");
  auto r = RunCli({"--migrations", chain.dir(), "upgrade", revision}, db->url().text());
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  return db;
}

// l1: owners and items; l2: six steps, each a form of a slow lock.
const std::map<std::string, std::string> kSixForms = {
    {"l1_items.sql",
     "--! revision: l1\n--! down_revision:\n--! message: owners and items\n\n--! upgrade\n--! step: Create\n"
     "CREATE TABLE owners (id int PRIMARY KEY);\n"
     "CREATE TABLE items (id int PRIMARY KEY, code text NOT NULL, note text, n int NOT NULL DEFAULT 0);\n\n"
     "--! downgrade\n--! step: Drop\nDROP TABLE items; DROP TABLE owners;\n"},
    {"l2_forms.sql",
     "--! revision: l2\n--! down_revision: l1\n--! message: six forms\n\n--! upgrade\n"
     "--! step: Add a check\nALTER TABLE items ADD CONSTRAINT items_n CHECK (n >= 0);\n"
     "--! step: Backfill notes\nUPDATE items SET note = 'x' WHERE note IS NULL;\n"
     "--! step: Notes required\nALTER TABLE items ALTER COLUMN note SET NOT NULL;\n"
     "--! step: Unique codes\nALTER TABLE items ADD CONSTRAINT items_code UNIQUE (code);\n"
     "--! step: Owners\nALTER TABLE items ADD COLUMN owner_id int;\n"
     "ALTER TABLE items ADD CONSTRAINT items_owner FOREIGN KEY (owner_id) REFERENCES owners (id);\n"
     "--! step: Index notes\nCREATE INDEX items_note ON items (note);\n\n"
     "--! downgrade\n--! step: Undo\nDROP INDEX items_note;\nALTER TABLE items DROP COLUMN owner_id;\n"
     "ALTER TABLE items DROP CONSTRAINT items_code;\nALTER TABLE items ALTER COLUMN note DROP NOT NULL;\n"
     "UPDATE items SET note = NULL;\nALTER TABLE items DROP CONSTRAINT items_n;\n"}};

TEST(LockFindings, EachFormOfASlowLockIsNamedWithItsTableSizeAndSaferForm) {
  TempChain chain(kSixForms);
  auto at = At(chain, "l1");
  const pg::DisposableDatabase& db = *at;
  {
    pqxx::connection c(db.url().text());
    pqxx::work tx(c);
    tx.exec("INSERT INTO owners SELECT generate_series(1, 10)");
    tx.exec("INSERT INTO items (id, code) SELECT i, 'code ' || i FROM generate_series(1, 20000) i");
    tx.exec("ANALYZE items");
    tx.commit();
  }
  auto o = Verify(chain, {"--target", "l2", "--table-rows", "items=5000000"}, db.url().text());
  EXPECT_EQ(o.exit_code, 0) << o.out;
  ASSERT_TRUE(o.report.is_object()) << o.out;
  const std::pair<const char*, const char*> kExpected[] = {
      {"lock.validated-check.l2.1.items", "a CHECK added validated scans items (5000000 rows) under "
                                          "AccessExclusiveLock, held about "},
      {"lock.backfill.l2.2.items", "every row of items (5000000 rows) updated in one transaction"},
      {"lock.set-not-null.l2.3.items", "SET NOT NULL scans items (5000000 rows)"},
      {"lock.unique-in-place.l2.4.items", "CREATE UNIQUE INDEX CONCURRENTLY"},
      {"lock.validated-foreign-key.l2.5.items", "a foreign key added validated scans items (5000000 rows)"},
      {"lock.index-not-concurrent.l2.6.items", "CREATE INDEX CONCURRENTLY outside the transaction"},
      {"lock.work-after-lock.l2.3", "runs while the transaction holds AccessExclusiveLock on items (since l2 up 1/6 "
                                    "Add a check)"},
      {"lock.hold.items", "AccessExclusiveLock on items (5000000 rows): held about "},
      {"lock.timeout", "the deploy gives up a lock wait after 10s"},
  };
  for (const auto& [id, text] : kExpected) EXPECT_CONTAINS(o.Line(kLocks, id), text) << id;
  EXPECT_CONTAINS(o.Line(kLocks, "lock.hold.items"), "from l2 up 1/6 Add a check to the commit");
  // Sized: on a copy, the named table at its rows, the others at their own.
  EXPECT_CONTAINS(o.Line(kLocks, "lock.sizes"), "this copy's own rows");
  EXPECT_CONTAINS(o.Line(kLocks, "lock.sizes"), "the tables named by --table-rows at their rows");
  // The foreign key's SHARE ROW EXCLUSIVE on the referenced table: writes wait.
  EXPECT_CONTAINS(o.Line(kLocks, "lock.hold.owners"), "ShareRowExclusiveLock on owners (10 rows): held about ");
  EXPECT_CONTAINS(o.Line(kLocks, "lock.hold.owners"), "writes wait for it");
  EXPECT_EQ(o.report["longest_lock_hold"]["table"], "items");
  EXPECT_EQ(o.report["longest_lock_hold"]["rows"], 5000000);
  // A hold at 250 times the rows is longer than the one measured.
  EXPECT_GT(o.report["longest_lock_hold"]["seconds"].get<double>(),
            o.report["longest_lock_hold"]["measured_seconds"].get<double>());
  EXPECT_CONTAINS(o.out, "Locks at production size (what live traffic would wait for)");
  EXPECT_CONTAINS(o.out, "Longest lock hold: AccessExclusiveLock on items about ");
}

// A catalog-only step that takes ACCESS EXCLUSIVE, then a rewrite of the same
// table: the hold is charged to the rewrite, which says what it runs under.
const std::map<std::string, std::string> kChargedHold = {
    {"c1_t.sql",
     "--! revision: c1\n--! down_revision:\n--! message: t\n\n--! upgrade\n--! step: Create t\n"
     "CREATE TABLE t (id int PRIMARY KEY, v int NOT NULL);\n"
     "INSERT INTO t SELECT i, i FROM generate_series(1, 50000) i;\n\n"
     "--! downgrade\n--! step: Drop t\nDROP TABLE t;\n"},
    {"c2_x.sql",
     "--! revision: c2\n--! down_revision: c1\n--! message: x\n\n--! upgrade\n--! step: Add a column\n"
     "ALTER TABLE t ADD COLUMN x int;\n\n--! downgrade\n--! step: Drop x\nALTER TABLE t DROP COLUMN x;\n"},
    {"c3_v.sql",
     "--! revision: c3\n--! down_revision: c2\n--! message: v\n\n--! upgrade\n--! step: Widen v\n"
     "ALTER TABLE t ALTER COLUMN v TYPE bigint;\n\n--! downgrade\n--! step: Narrow v\n"
     "ALTER TABLE t ALTER COLUMN v TYPE int;\n"}};

TEST(LockFindings, AHoldIsChargedToTheStepsThatMakeItLong) {
  TempChain chain(kChargedHold);
  auto at = At(chain, "c1");
  const pg::DisposableDatabase& db = *at;
  auto o = Verify(chain, {"--target", "c3"}, db.url().text());
  EXPECT_EQ(o.exit_code, 0) << o.out;
  ASSERT_TRUE(o.report.is_object()) << o.out;
  EXPECT_CONTAINS(o.Line("step effects", "step.c2.up.1"), "AccessExclusiveLock on t, held ");
  EXPECT_CONTAINS(o.Line("step effects", "step.c2.up.1"), "s of it in c3 up 1/1 Widen v)");
  EXPECT_CONTAINS(o.Line("step effects", "step.c3.up.1"),
                  "no new table lock, under AccessExclusiveLock on t (since c2 up 1/1 Add a column)");
  EXPECT_CONTAINS(o.Line(kLocks, "lock.rewrite.c3.1.t"), "a column type change rewrites t (50000 rows)");
  EXPECT_CONTAINS(o.Line(kLocks, "lock.work-after-lock.c3.1"), "table rewrite (");
  // On a copy without sizes given, its own rows are the figures.
  EXPECT_CONTAINS(o.Line(kLocks, "lock.sizes"), "this copy's own rows");
  EXPECT_CONTAINS(o.Line(kLocks, "lock.hold.t"), ", most of it c3 up 1/1 Widen v (");

  // Over --max-lock-hold: NOT READY, naming the lock; and no lock_timeout said.
  auto over = Verify(chain, {"--target", "c3", "--max-lock-hold", "0.000001"},
                     db.url().text());
  EXPECT_EQ(over.exit_code, 1) << over.out;
  EXPECT_CONTAINS(over.report.value("verdict", ""), "NOT READY: AccessExclusiveLock on t (50000 rows) would be held "
                                                    "about ");
  EXPECT_CONTAINS(over.report.value("verdict", ""), "over --max-lock-hold 1e-06s");
  EXPECT_EQ(over.report["max_lock_hold_seconds"], 0.000001);
  auto within = Verify(chain, {"--target", "c3", "--max-lock-hold", "1000"}, db.url().text());
  EXPECT_EQ(within.exit_code, 0) << within.out;
  auto no_timeout = RunCli({"--migrations", chain.dir(), "--lock-timeout", "0", "verify", "--target", "c3"},
                           db.url().text());
  EXPECT_CONTAINS(no_timeout.out, "the deploy waits for its locks on t without a limit (lock_timeout 0");
}

TEST(LockFindings, TableRowsForATableThatIsNotThereIsRefused) {
  TempChain chain(kChargedHold);
  auto at = At(chain, "c1");
  const pg::DisposableDatabase& db = *at;
  auto r = RunCli({"--migrations", chain.dir(), "verify", "--target", "c2", "--table-rows", "nosuch=5"},
                  db.url().text());
  EXPECT_EQ(r.exit_code, 2) << r.out << r.err;
  EXPECT_CONTAINS(r.err, "--table-rows names nosuch, which is not a table here at c1");
  EXPECT_CONTAINS(r.err, "its tables: t");
  auto bad = RunCli({"--migrations", chain.dir(), "verify", "--table-rows", "t=5x"}, db.url().text());
  EXPECT_EQ(bad.exit_code, 2) << bad.err;
  EXPECT_CONTAINS(bad.err, "--table-rows takes TABLE=N (N >= 0), not t=5x");
}

// --with-traffic: a reader holds its locks 1 s into the upgrade; the
// upgrade's ACCESS EXCLUSIVE request waits behind it, and the steady reader
// and writer queue behind that request.
TEST(WithTraffic, TheQueueBehindTheUpgradesLockIsMeasured) {
  TempChain chain(kChargedHold);
  auto at = At(chain, "c1");
  auto o = Verify(chain, {"--target", "c3", "--with-traffic", "--traffic-hold", "1"}, at->url().text());
  EXPECT_EQ(o.exit_code, 0) << o.out;
  ASSERT_TRUE(o.report.is_object()) << o.out;
  EXPECT_CONTAINS(o.Line("traffic", "traffic.long-reader"),
                  "a reader holding AccessShareLock on 1 table(s): t from before the upgrade until 1.000s into it");
  const std::string upgrade = o.Line("traffic", "traffic.upgrade");
  ASSERT_EQ(upgrade.rfind("the upgrade waited ", 0), 0u) << upgrade;
  EXPECT_GE(std::stod(upgrade.substr(19)), 0.5) << upgrade;
  for (const char* client : {"traffic.reader", "traffic.writer"}) {
    const std::string line = o.Line("traffic", client);
    const auto at_longest = line.find("the longest ");
    ASSERT_NE(at_longest, std::string::npos) << line;
    // Queued behind the upgrade's request for most of the reader's hold.
    EXPECT_GE(std::stod(line.substr(at_longest + 12)), 0.5) << line;
    EXPECT_CONTAINS(line, "s (t); ");
  }
  EXPECT_CONTAINS(o.out, "Live traffic during the upgrade (--with-traffic)");
}

// Behind a reader that keeps its locks past --lock-timeout, the upgrade
// gives up: NOT READY, nothing changed on the copy or the source.
TEST(WithTraffic, ALockTimeoutBehindALongReaderIsNotReady) {
  TempChain chain(kChargedHold);
  auto at = At(chain, "c1");
  const DatabaseState before = CaptureState(at->url());
  const std::string json = ::testing::TempDir() + pg::UniqueDatabaseName("locks") + ".json";
  auto r = RunCli({"--migrations", chain.dir(), "--lock-timeout", "0.3", "verify", "--target", "c3",
                   "--with-traffic", "--traffic-hold", "30", "--report-json", json},
                  at->url().text());
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
  EXPECT_CONTAINS(r.out, "NOT READY: behind a reader that keeps its locks 30.000s into the upgrade, ");
  EXPECT_CONTAINS(r.out, "the upgrade gave up waiting for its locks after --lock-timeout 0.3s (nothing was "
                         "changed); traffic waited at most ");
  std::remove(json.c_str());
  ExpectUnchanged(at->url(), before);
  auto in_place = RunCli({"--migrations", chain.dir(), "verify", "--in-place", "--with-traffic"}, at->url().text());
  EXPECT_EQ(in_place.exit_code, 2) << in_place.err;
}

// The traffic reads and compares keys of built-in types only: a key of a
// type outside pg_catalog (whose casts and operators its owner wrote, and
// would run with the tool's rights) is never touched; with no other table
// there is nothing to drive traffic on, and it says so before the upgrade.
TEST(WithTraffic, AKeyOfATypeOutsidePgCatalogIsLeftAlone) {
  TempChain chain({{"k1_keyed.sql",
                    "--! revision: k1\n--! down_revision:\n--! message: keyed\n\n--! upgrade\n--! step: Create\n"
                    "CREATE DOMAIN code AS text;\nCREATE TABLE keyed (id code PRIMARY KEY, n int);\n"
                    "INSERT INTO keyed SELECT 'k' || i, i FROM generate_series(1, 100) i;\n\n"
                    "--! downgrade\n--! step: Drop\nDROP TABLE keyed; DROP DOMAIN code;\n"},
                   {"k2_index.sql",
                    "--! revision: k2\n--! down_revision: k1\n--! message: index\n\n--! upgrade\n--! step: Index\n"
                    "CREATE INDEX keyed_n ON keyed (n);\n\n--! downgrade\n--! step: Drop\nDROP INDEX keyed_n;\n"}});
  auto at = At(chain, "k1");
  const DatabaseState before = CaptureState(at->url());
  auto r = RunCli({"--migrations", chain.dir(), "verify", "--target", "k2", "--with-traffic"}, at->url().text());
  EXPECT_EQ(r.exit_code, 2) << r.out << r.err;
  EXPECT_CONTAINS(r.err, "--with-traffic needs a table with rows and a one-column primary key of a built-in type");
  ExpectUnchanged(at->url(), before);
}

TEST(SchemaChanges, EachFormIsReadFromTheStatement) {
  const auto changes = engine::SchemaChanges(
      "ALTER TABLE public.events ADD COLUMN token uuid DEFAULT gen_random_uuid(), ALTER COLUMN w TYPE bigint, "
      "ADD CONSTRAINT c CHECK (x > 0), ADD CONSTRAINT c2 CHECK (x > 1) NOT VALID, "
      "ADD CONSTRAINT f FOREIGN KEY (a) REFERENCES b (id), ADD CONSTRAINT f2 FOREIGN KEY (a) REFERENCES b (id) "
      "NOT VALID, ALTER COLUMN x SET NOT NULL, ADD CONSTRAINT u UNIQUE (a), ADD CONSTRAINT u2 UNIQUE USING INDEX i, "
      "ADD PRIMARY KEY (id), ADD g int GENERATED ALWAYS AS (1) STORED;"
      "CREATE INDEX i ON events (a); CREATE INDEX CONCURRENTLY j ON events (b); SET LOCAL lock_timeout = '2s';"
      "DO $$ BEGIN EXECUTE 'ALTER TABLE x ALTER COLUMN y TYPE int'; END $$;");
  std::vector<std::string> forms;
  for (const auto& c : changes)
    forms.push_back(c.form + (c.table.empty() ? "" : " " + c.table) + (c.value.empty() ? "" : " " + c.value));
  EXPECT_EQ(forms, (std::vector<std::string>{"add-column-default public.events", "type-change public.events",
                                             "add-check public.events", "add-foreign-key public.events",
                                             "set-not-null public.events", "add-unique public.events",
                                             "add-primary-key public.events", "add-column-generated public.events",
                                             "create-index events", "create-index-concurrently events",
                                             "lock-timeout 2s"}));
  EXPECT_TRUE(engine::SchemaChanges("not sql at all").empty());
}

}  // namespace
}  // namespace harness::testing
