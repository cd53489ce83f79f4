// restore-dropped: after a rollback of 002 the nine tables it dropped come
// back empty; their rows come back from the backup taken before the upgrade
// (pg_dump -Fc), in foreign-key order, in one transaction, by a role that
// is not a superuser, and must equal the baseline. The slow case takes a
// real backup with pg_dump; the fast ones read what pg_restore writes and
// refuse what cannot be restored without changing anything.
#include <gtest/gtest.h>

#include <fmt/format.h>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <map>

#include "fixtures/any_schema.h"
#include "harness/codesearch/generator.h"
#include "harness/checks/suites.h"
#include "harness/codesearch/restore_dropped.h"
#include "harness/inspect/fingerprint.h"
#include "harness/pg/cluster.h"
#include "harness/pg/connection.h"
#include "harness/pg/disposable_database.h"
#include "harness/sys/process.h"
#include "harness/codesearch/quickstart_sample.h"
#include "scenarios/support/test_env.h"

namespace harness::testing {
namespace {

using pg::DataScript;
using pg::ParseDataScript;
using pg::SplitCopyLine;

// What `pg_restore --data-only --file=-` writes (PostgreSQL 15.14 and later
// add the \restrict lines).
constexpr const char* kScript = R"(--
-- PostgreSQL database dump
--

\restrict AbC123

SET statement_timeout = 0;
SET client_encoding = 'UTF8';
SET standard_conforming_strings = on;
SELECT pg_catalog.set_config('search_path', '', false);

--
-- Data for Name: tasks; Type: TABLE DATA; Schema: public; Owner: app
--

COPY public.tasks (id, title, "Odd ""name""") FROM stdin;
1	first\ttab	\N
2	back\\slash	x
\.


--
-- Name: project_configuration_id_seq; Type: SEQUENCE SET; Schema: public; Owner: app
--

SELECT pg_catalog.setval('public.project_configuration_id_seq', 42, true);

\unrestrict AbC123
)";

TEST(RestoreScript, ReadsTheCopyBlocksTheSequenceValuesAndTheEncoding) {
  DataScript s = ParseDataScript(kScript);
  EXPECT_EQ(s.client_encoding, "UTF8");
  ASSERT_EQ(s.tables.size(), 1u);
  EXPECT_EQ(s.tables[0].schema, "public");
  EXPECT_EQ(s.tables[0].table, "tasks");
  EXPECT_EQ(s.tables[0].columns, (std::vector<std::string>{"id", "title", "Odd \"name\""}));
  EXPECT_EQ(s.tables[0].lines, (std::vector<std::string>{"1\tfirst\\ttab\t\\N", "2\tback\\\\slash\tx"}));
  ASSERT_EQ(s.sequences.size(), 1u);
  EXPECT_EQ(s.sequences[0].name, "public.project_configuration_id_seq");
  EXPECT_EQ(s.sequences[0].value, 42);
  EXPECT_TRUE(s.sequences[0].is_called);
}

TEST(RestoreScript, SplitsACopyLineAndUndoesItsEscapes) {
  using Fields = std::vector<std::optional<std::string>>;
  EXPECT_EQ(SplitCopyLine("1\tfirst\\ttab\t\\N"), (Fields{"1", "first\ttab", std::nullopt}));
  EXPECT_EQ(SplitCopyLine("a\\\\N\t\t\\n\\r\\101\\x41\\x4a"),
            (Fields{"a\\N", "", "\n\rAAJ"}));  // \\N is a backslash and N, not NULL
  EXPECT_EQ(SplitCopyLine(""), (Fields{""}));
}

TEST(RestoreScript, RefusesAnyStatementButDataAndSequenceValues) {
  try {
    ParseDataScript("SET client_encoding = 'UTF8';\nDROP TABLE public.repositories;\n");
    FAIL() << "a statement was accepted";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ExitCode::kUsage);
    EXPECT_CONTAINS(std::string(e.what()), "unexpected statement in the backup's data: DROP TABLE");
  }
  EXPECT_THROW(ParseDataScript("COPY public.tasks (id) FROM stdin;\n1\n"), Error)
      << "data without its \\. end";
}

TEST(RestoreDropped, LoadsReferencedTablesFirst) {
  TestDatabase db("005", Shape::kProduction);
  std::vector<std::string> reversed(codesearch::TablesDroppedBy002().rbegin(),
                                    codesearch::TablesDroppedBy002().rend());
  pg::Connection conn(db.url());
  pqxx::read_transaction tx(conn.raw());
  auto order = codesearch::DependencyOrder(tx, reversed);
  ASSERT_EQ(order.size(), 9u);
  auto at = [&](const std::string& t) { return std::find(order.begin(), order.end(), t) - order.begin(); };
  for (const auto& [child, parent] : std::vector<std::pair<std::string, std::string>>{
           {"project_configuration", "tasks"},
           {"work_item_dependencies", "tasks"},
           {"vendor_deployment_links", "vendor_extractors"},
           {"vendor_deployment_links", "deployment_events"},
           {"work_item_deployment_links", "deployment_events"},
           {"work_item_deployment_links", "tasks"}})
    EXPECT_LT(at(parent), at(child)) << parent << " must be loaded before " << child;
}

TEST(RestoreDropped, AFileThatIsNotABackupIsExit2AndChangesNothing) {
  TestDatabase db("005", Shape::kProduction);
  std::string junk = ::testing::TempDir() + pg::UniqueDatabaseName("junk") + ".dump";
  std::ofstream(junk) << "not a dump\n";
  auto r = RunCliUnchanged(db, {"restore-dropped", "--from", junk}, 2);
  std::remove(junk.c_str());
  EXPECT_CONTAINS(r.err, "pg_restore cannot read the backup");
  EXPECT_CONTAINS(r.err, "pg_dump -Fc");
}

TEST(RestoreDropped, AtRevision002ThereIsNothingToRestoreInto) {
  TestDatabase db("002", Shape::kProduction);
  std::string junk = ::testing::TempDir() + pg::UniqueDatabaseName("junk") + ".dump";
  std::ofstream(junk) << "not a dump\n";
  auto r = RunCliUnchanged(db, {"restore-dropped", "--from", junk}, 2);
  std::remove(junk.c_str());
  EXPECT_CONTAINS(r.err, "9 of the 9 tables 002 drops are not here");
  EXPECT_CONTAINS(r.err, "downgrade 005");
}

// A pg_dump -Fc backup of `db`'s database, removed at scope end.
class Backup {
 public:
  explicit Backup(const std::string& url)
      : path_(::testing::TempDir() + pg::UniqueDatabaseName("backup") + ".dump") {
    auto dump = sys::RunProcess({(pg::FindClientBinDir() / "pg_dump").string(), "--format=custom", "--file",
                                path_, "--dbname", url});
    EXPECT_EQ(dump.exit_code, 0) << dump.err;
  }
  ~Backup() { std::remove(path_.c_str()); }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// Without --baseline nothing says a backup is the right one; one that holds
// none of the nine tables (another database's) is refused, not "0 rows".
TEST(RestoreDropped, ABackupOfAnotherDatabaseIsRefused) {
  TestDatabase other("001");
  Backup backup(other.url().text());
  TestDatabase db("005");
  db.Exec(codesearch::kQuickstartSampleSql);
  MigrateTo(db.url(), "002");
  MigrateTo(db.url(), "005");
  auto r = RunCliUnchanged(db, {"restore-dropped", "--from", backup.path()}, 2);
  EXPECT_CONTAINS(r.err, "is not of this service's database at 005 (alembic_version 001): nothing was restored");
}

// The README's promise: a role with INSERT on the nine tables (SELECT to
// compare them, UPDATE on their sequences to set them) restores; without
// UPDATE, DELETE or TRUNCATE it cannot keep other writers out, and says so.
TEST(RestoreDropped, InsertRightsSuffice) {
  TestDatabase db("005");
  db.Exec(codesearch::kQuickstartSampleSql);
  {
    pg::Connection conn(db.url());
    fixtures::AnySchemaOptions rows;
    rows.rows_per_table = 0;
    for (const auto& t : codesearch::TablesDroppedBy002()) rows.rows[t] = 20;
    fixtures::GenerateAnySchema(conn, rows);
  }
  const std::string url = db.url().text();
  Backup backup(url);
  const std::string baseline = ::testing::TempDir() + pg::UniqueDatabaseName("baseline") + ".json";
  ASSERT_EQ(RunCli({"check", "pre", "--save-baseline", baseline}, url).exit_code, 0);
  MigrateTo(db.url(), "002");
  MigrateTo(db.url(), "005");
  Role restorer("NOSUPERUSER");
  std::string tables;
  for (const auto& t : codesearch::TablesDroppedBy002()) tables += (tables.empty() ? "" : ", ") + t;
  db.Exec("GRANT SELECT, INSERT ON " + tables + " TO " + restorer.name() +
          "; GRANT UPDATE ON ALL SEQUENCES IN SCHEMA public TO " + restorer.name());
  auto r = RunCli({"restore-dropped", "--from", backup.path(), "--baseline", baseline}, restorer.UrlFor(db));
  std::remove(baseline.c_str());
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_CONTAINS(r.out, "Matches the baseline");
  EXPECT_CONTAINS(r.err, "no UPDATE, DELETE or TRUNCATE right on public.tasks, ");
  EXPECT_NE(db.Scalar("SELECT count(*) FROM tasks"), "0");
}

class SlowRestoreDropped : public ::testing::TestWithParam<Shape> {};
INSTANTIATE_TEST_SUITE_P(BothShapes, SlowRestoreDropped,
                         ::testing::Values(Shape::kQuickstart, Shape::kProduction), ShapeTestName);

// The maintenance window as the README tells it, with a real backup: a
// baseline, pg_dump -Fc, upgrade, rollback (the nine tables come back
// empty: check rollback names their rows as only in the backup), then
// restore-dropped as the tables' owner, not a superuser. A backup that
// does not match the baseline restores nothing; the right one restores
// every row of all nine tables, and the task links validate again.
TEST_P(SlowRestoreDropped, ARealBackupBringsBackEveryRowOfTheNineTables) {
  TestDatabase db("005", GetParam());
  Role owner("");
  {
    pg::Connection conn(db.url());
    codesearch::GeneratorOptions go;
    go.repositories = 20;
    go.chunks_per_repo = 10;
    codesearch::Generate(conn, go);
    // Thousands of rows in the nine tables besides the generator's few,
    // from the catalog (their keys, CHECKs and foreign keys between them).
    fixtures::AnySchemaOptions more;
    more.rows_per_table = 0;
    for (const auto& t : codesearch::TablesDroppedBy002()) more.rows[t] = 2000;
    fixtures::GenerateAnySchema(conn, more);
    pqxx::work tx(conn.raw());
    for (const auto& r : tx.exec("SELECT format('ALTER %s public.%I OWNER TO %I', CASE relkind WHEN "
                                 "'S' THEN 'SEQUENCE' ELSE 'TABLE' END, relname, " +
                                 tx.quote(owner.name()) +
                                 ") FROM pg_class WHERE relnamespace = 'public'::regnamespace AND "
                                 "relkind IN ('r', 'p', 'S') AND NOT EXISTS (SELECT 1 FROM "
                                 "pg_depend d WHERE d.objid = pg_class.oid AND d.deptype IN "
                                 "('a', 'i') AND relkind = 'S')"))
      tx.exec(r[0].as<std::string>());
    tx.commit();
  }
  const std::string url = db.url().text();
  const std::string as_owner = owner.UrlFor(db);
  const std::string dir = ::testing::TempDir() + pg::UniqueDatabaseName("restore");
  const std::string baseline = dir + ".json", stale = dir + ".stale.json", backup = dir + ".dump";
  auto before = DroppedFingerprints(db);
  long long rows = 0;
  for (const auto& [t, f] : before) rows += f.rows;
  ASSERT_GT(before.at("tasks").rows, 0);

  ASSERT_EQ(RunCli({"check", "pre", "--save-baseline", baseline}, url).exit_code, 0);
  auto dump = sys::RunProcess({(pg::FindServerBinDir() / "pg_dump").string(), "--format=custom",
                              "--file", backup, "--dbname", url});
  ASSERT_EQ(dump.exit_code, 0) << dump.err;
  // A baseline recorded after a change the backup does not have.
  db.Exec("UPDATE tasks SET title = title || ' (edited)' WHERE id = (SELECT id FROM tasks ORDER BY id LIMIT 1)");
  ASSERT_EQ(RunCli({"check", "pre", "--save-baseline", stale}, url).exit_code, 0);

  ASSERT_EQ(RunCli({"upgrade", "head"}, url).exit_code, 0);
  ASSERT_EQ(RunCli({"downgrade", "005"}, url).exit_code, 0);
  auto rollback = RunCli({"check", "rollback", "--baseline", baseline}, url);
  EXPECT_EQ(rollback.exit_code, 0) << rollback.out;
  EXPECT_CONTAINS(rollback.out, "• Dropped tables' rows: ");  // in the order they were created
  EXPECT_CONTAINS(rollback.out, fmt::format("tasks {}, ", before.at("tasks").rows));
  EXPECT_CONTAINS(rollback.out, fmt::format(": {} rows only in the backup", rows));

  auto refused =
      RunCliUnchanged(db, {"restore-dropped", "--from", backup, "--baseline", stale}, 1, as_owner);
  EXPECT_CONTAINS(refused.err, "the backup's rows differ from the baseline: tasks: baseline");
  EXPECT_CONTAINS(refused.err, "nothing was restored");
  EXPECT_EQ(db.Scalar("SELECT count(*) FROM tasks"), "0");

  auto restored = RunCli({"restore-dropped", "--from", backup, "--baseline", baseline}, as_owner);
  ASSERT_EQ(restored.exit_code, 0) << restored.out << restored.err;
  EXPECT_CONTAINS(restored.out, fmt::format("Restored {} rows from {} in one transaction", rows, backup));
  for (const auto& [t, f] : before) {
    EXPECT_CONTAINS(restored.out, fmt::format("  {:<28} {} rows\n", t, f.rows));
    std::cout << fmt::format("restored {:<28} {:>6} rows\n", t, f.rows);
  }
  EXPECT_CONTAINS(restored.out, "Matches the baseline");
  EXPECT_EQ(DroppedFingerprints(db), before);
  if (GetParam() == Shape::kProduction) {
    EXPECT_CONTAINS(restored.out, "validated task_status_history.fk_task_status_history_task_id_tasks");
    EXPECT_EQ(db.Scalar("SELECT count(*) FROM pg_constraint WHERE NOT convalidated"), "0");
  }
  auto after = RunCli({"check", "rollback", "--baseline", baseline}, url);
  EXPECT_EQ(after.exit_code, 0) << after.out;
  EXPECT_CONTAINS(after.out, fmt::format("✓ Dropped tables' rows match the baseline (9 tables, {} rows)", rows));
  EXPECT_CONTAINS(after.out, "✓ Schema equals the pre-upgrade catalog (empty diff)");

  auto again = RunCli({"restore-dropped", "--from", backup, "--baseline", baseline}, as_owner);
  EXPECT_EQ(again.exit_code, 0) << again.err;
  EXPECT_CONTAINS(again.out, "already hold the baseline's rows: nothing loaded");
  for (const auto& f : {baseline, stale, backup}) std::remove(f.c_str());
}

}  // namespace
}  // namespace harness::testing
