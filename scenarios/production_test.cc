// Migration 002 on the production shape (the schema the service's own
// Alembic chain built: code_chunks -> code_files -> repositories, 20 tables,
// four foreign keys from kept tables into tasks): the schema the project
// builds itself, project_id through the code_files join, orphans through
// the join, the task links dropped by name and restored by the rollback
// (NOT VALID where their rows reference tasks that are gone), dependent
// objects refused, and a schema of neither shape refused with exit 2.
#include <gtest/gtest.h>

#include <set>
#include <string>

#include "harness/engine/migrator.h"
#include "harness/pg/connection.h"
#include "scenarios/support/test_env.h"

namespace harness::testing {
namespace {

constexpr const char* kTaskLinks[] = {"task_branch_links", "task_commit_links",
                                      "task_planning_references", "task_status_history"};

// Two repositories with a file each, chunks in both, two tasks, and rows in
// two of the four task link tables (the other two stay empty).
constexpr const char* kSample = R"SQL(
INSERT INTO repositories (id, path, name) VALUES
  ('00000000-0000-4000-8000-000000000001', '/srv/a', 'a'),
  ('00000000-0000-4000-8000-000000000002', '/srv/b', 'b');
INSERT INTO code_files (id, repository_id, path, relative_path, content_hash, size_bytes, language,
                        modified_at) VALUES
  ('00000000-0000-4000-8000-00000000f001', '00000000-0000-4000-8000-000000000001', '/srv/a/x.py',
   'x.py', repeat('a', 64), 10, 'python', '2024-01-01'),
  ('00000000-0000-4000-8000-00000000f002', '00000000-0000-4000-8000-000000000002', '/srv/b/y.go',
   'y.go', repeat('b', 64), 20, 'go', '2024-01-01');
INSERT INTO code_chunks (id, code_file_id, content, start_line, end_line, chunk_type)
SELECT ('00000000-0000-4000-8000-' || lpad(to_hex(n), 12, '0'))::uuid,
       CASE WHEN n % 2 = 0 THEN '00000000-0000-4000-8000-00000000f001'::uuid
            ELSE '00000000-0000-4000-8000-00000000f002'::uuid END,
       'def f(): pass', 1, 1, 'function'
  FROM generate_series(100, 139) n;
INSERT INTO tasks (id, title, version) VALUES
  ('00000000-0000-4000-8000-0000000000a1', 'one', 1),
  ('00000000-0000-4000-8000-0000000000a2', 'two', 1);
INSERT INTO task_branch_links (id, task_id, branch_name) VALUES
  ('00000000-0000-4000-8000-0000000000b1', '00000000-0000-4000-8000-0000000000a1', 'main'),
  ('00000000-0000-4000-8000-0000000000b2', '00000000-0000-4000-8000-0000000000a2', 'dev');
INSERT INTO task_status_history (id, task_id, to_status) VALUES
  ('00000000-0000-4000-8000-0000000000c1', '00000000-0000-4000-8000-0000000000a1', 'complete');
)SQL";

std::set<std::string> TableNames(const TestDatabase& db) {
  std::set<std::string> out;
  for (const auto& [name, t] : db.Snapshot().tables) out.insert(name);
  return out;
}

TEST(ProductionShape, TheProjectBuildsTheServicesSchemaAt005) {
  TestDatabase db("005", Shape::kProduction);
  EXPECT_EQ(db.Revision(), "005");
  // 20 with alembic_version, which snapshots leave out.
  EXPECT_EQ(TableNames(db).size(), 19u);
  pg::Connection conn(db.url());
  pqxx::read_transaction tx(conn.raw());
  EXPECT_EQ(codesearch::DetectShape(tx), Shape::kProduction);
}

TEST(ProductionShape, AtHeadTheTenKeptTablesRemainWithValidatedProjectIds) {
  TestDatabase db("005", Shape::kProduction);
  db.Exec(kSample);
  MigrateTo(db.url(), "head");
  EXPECT_EQ(TableNames(db),
            (std::set<std::string>{"repositories", "code_files", "code_chunks", "change_events",
                                   "embedding_metadata", "search_queries", "task_branch_links",
                                   "task_commit_links", "task_planning_references",
                                   "task_status_history"}));
  EXPECT_EQ(db.Scalar("SELECT count(*) FROM code_chunks WHERE project_id = 'default'"), "40");
  EXPECT_EQ(db.Scalar("SELECT count(*) FROM pg_constraint WHERE conname LIKE 'fk_task_%'"), "0");
  EXPECT_EQ(db.Scalar("SELECT count(*) FROM pg_constraint WHERE conname IN "
                      "('check_repositories_project_id', 'check_code_chunks_project_id') "
                      "AND convalidated"),
            "2");
}

// Same result by the UPDATE through the code_files join as by the
// constant-default fast path; with two project ids only the UPDATE can do.
TEST(ProductionShape, TheUpdatePathCopiesEachRepositorysProjectIdThroughItsFiles) {
  TestDatabase db("005", Shape::kProduction);
  db.Exec(kSample);
  db.Exec("ALTER TABLE repositories ADD COLUMN project_id varchar(50) NOT NULL DEFAULT 'default';"
          "UPDATE repositories SET project_id = 'team-b' WHERE name = 'b'");
  MigrateTo(db.url(), "head");
  EXPECT_EQ(db.Scalar("SELECT string_agg(project_id || ':' || n, ',' ORDER BY project_id) FROM "
                      "(SELECT project_id, count(*) AS n FROM code_chunks GROUP BY 1) s"),
            "default:20,team-b:20");
  EXPECT_EQ(db.Scalar("SELECT count(*) FROM code_chunks c JOIN code_files f ON f.id = "
                      "c.code_file_id JOIN repositories r ON r.id = f.repository_id WHERE "
                      "c.project_id <> r.project_id"),
            "0");
}

TEST(ProductionShape, OrphansThroughTheJoinAreRefusedWithTheDeleteToRun) {
  TestDatabase db("005", Shape::kProduction);
  db.Exec(kSample);
  // A file whose repository is gone: its chunks reach no repository.
  db.Exec("ALTER TABLE code_files DROP CONSTRAINT fk_code_files_repository_id_repositories;"
          "DELETE FROM repositories WHERE name = 'b'");
  auto up = RunCliUnchanged(db, {"upgrade", "head"}, 1);
  EXPECT_CONTAINS(up.err, "revision 002 refuses to run: No orphaned code_chunks: found 20 chunk(s) whose code file, "
                          "or whose file's repository, does not exist");
  EXPECT_CONTAINS(up.err, "DELETE FROM public.code_chunks c WHERE NOT EXISTS (SELECT 1 FROM "
                          "public.code_files f JOIN public.repositories r ON r.id = "
                          "f.repository_id WHERE f.id = c.code_file_id);");
  auto pre = RunCliUnchanged(db, {"check", "pre"}, 1);
  EXPECT_CONTAINS(pre.out, "found 20 chunk(s)");
}

TEST(ProductionShape, TheTaskLinksAreDroppedByNameAndTheRollbackRestoresThem) {
  TestDatabase db("005", Shape::kProduction);
  db.Exec(kSample);
  auto before = db.Snapshot();
  auto up = RunCli({"upgrade", "head"}, db.url().text());
  ASSERT_EQ(up.exit_code, 0) << up.err;
  for (const char* t : kTaskLinks)
    EXPECT_CONTAINS(up.err, std::string("Dropped foreign key fk_") + t + "_task_id_tasks of public." + t +
                                " into public.tasks");
  auto down = RunCli({"downgrade", "005"}, db.url().text());
  ASSERT_EQ(down.exit_code, 0) << down.err;
  // Rows of two link tables reference tasks the rollback cannot bring back.
  EXPECT_CONTAINS(down.err, "fk_task_branch_links_task_id_tasks of task_branch_links restored NOT "
                            "VALID: 2 row(s) reference tasks that are gone");
  EXPECT_CONTAINS(down.err, "ALTER TABLE task_status_history VALIDATE CONSTRAINT "
                            "fk_task_status_history_task_id_tasks;");
  // Exactly those two differ from 005: not validated. Everything else,
  // the nine tables' sequence and indexes included, is as it was.
  auto diff = inspect::Diff(before, db.Snapshot());
  ASSERT_EQ(diff.size(), 2u) << JoinLines(diff);
  EXPECT_CONTAINS(diff[0], "constraint task_branch_links.fk_task_branch_links_task_id_tasks");
  EXPECT_CONTAINS(diff[0], "(not validated)");
  EXPECT_CONTAINS(diff[1], "constraint task_status_history.fk_task_status_history_task_id_tasks");
  // Upgrading again before the rows are back drops them as before.
  auto again = RunCli({"upgrade", "head"}, db.url().text());
  EXPECT_EQ(again.exit_code, 0) << again.err;
  EXPECT_EQ(db.Revision(), "002");
}

TEST(ProductionShape, WithoutLinkRowsTheRollbackIsExact) {
  TestDatabase db("005", Shape::kProduction);
  auto before = db.Snapshot();
  MigrateTo(db.url(), "head");
  MigrateTo(db.url(), "005");
  auto diff = inspect::Diff(before, db.Snapshot());
  EXPECT_TRUE(diff.empty()) << JoinLines(diff);
}

TEST(ProductionShape, AViewOnADroppedTableIsRefusedBeforeAnyChange) {
  TestDatabase db("005", Shape::kProduction);
  db.Exec("CREATE VIEW public.open_tasks AS SELECT id, title FROM tasks WHERE status <> "
          "'complete';"
          "CREATE FUNCTION public.task_title(t tasks) RETURNS text LANGUAGE sql AS "
          "'SELECT t.title'");
  auto up = RunCliUnchanged(db, {"upgrade", "head"}, 1);
  EXPECT_CONTAINS(up.err, "revision 002 refuses to run: Objects outside the 9 tables depend on them and block 002");
  EXPECT_CONTAINS(up.err, "[dependent_objects]");
  EXPECT_CONTAINS(up.err, "view open_tasks");
  EXPECT_CONTAINS(up.err, "DROP VIEW public.open_tasks;");
  EXPECT_CONTAINS(up.err, "DROP FUNCTION public.task_title(t tasks);");
}

// A foreign key into the nine that the rollback could not restore (not one
// of production's four task links) is refused before any change, with the
// statements that drop it now and recreate it later.
TEST(ProductionShape, AnotherForeignKeyIntoTheNineIsRefused) {
  TestDatabase db("005", Shape::kProduction);
  db.Exec("ALTER TABLE search_queries ADD COLUMN vendor_id uuid "
          "CONSTRAINT search_queries_vendor_fk REFERENCES vendor_extractors (id)");
  auto up = RunCliUnchanged(db, {"upgrade", "head"}, 1);
  EXPECT_CONTAINS(up.err, "constraint search_queries_vendor_fk on table search_queries");
  EXPECT_CONTAINS(up.err, "ALTER TABLE public.search_queries DROP CONSTRAINT search_queries_vendor_fk;");
  auto pre = RunCliUnchanged(db, {"check", "pre"}, 1);
  EXPECT_CONTAINS(pre.out, "Objects outside the 9 tables depend on them and block 002: constraint "
                           "search_queries_vendor_fk on table search_queries");
}

// A view named like a table the tool reads would run its owner's code with
// the tool's rights: refused as not a table, before anything is read.
TEST(ProductionShape, AViewNamedCodeFilesIsRefused) {
  TestDatabase db("005", Shape::kProduction);
  db.Exec("ALTER TABLE code_chunks DROP CONSTRAINT fk_code_chunks_code_file_id_code_files;"
          "ALTER TABLE change_events DROP CONSTRAINT fk_change_events_code_file_id_code_files;"
          "ALTER TABLE code_files RENAME TO code_files_real;"
          "CREATE VIEW public.code_files AS SELECT * FROM code_files_real");
  auto up = RunCliUnchanged(db, {"upgrade", "head"}, 2);
  EXPECT_CONTAINS(up.err, "public.code_files is not a table (relkind v)");
  // 002's gates (`--! gate` in its file) stop the suites before any check reads it.
  auto pre = RunCliUnchanged(db, {"check", "pre"}, 2);
  EXPECT_CONTAINS(pre.out, "✗ Core tables exist: public.code_files is not a table (relkind v)\n");
  auto post = RunCliUnchanged(db, {"check", "post"}, 2);
  EXPECT_CONTAINS(post.out, "✗ Core tables exist: public.code_files is not a table (relkind v)\n");
}

// The rollback gives the nine tables back to the role that owns the
// schema's tables, not to the superuser that ran it.
TEST(ProductionShape, TheRestoredTablesBelongToTheOwnerOfRepositories) {
  TestDatabase db("005", Shape::kProduction);
  Role app("");
  db.Exec("ALTER TABLE repositories OWNER TO " + app.name());
  MigrateTo(db.url(), "head");
  MigrateTo(db.url(), "005");
  EXPECT_EQ(db.Scalar("SELECT string_agg(DISTINCT pg_get_userbyid(relowner), ',') FROM pg_class "
                      "WHERE relname IN ('tasks', 'vendor_extractors', 'deployment_events', "
                      "'project_configuration', 'future_enhancements', 'work_item_dependencies', "
                      "'vendor_deployment_links', 'work_item_deployment_links', "
                      "'archived_work_items', 'project_configuration_id_seq')"),
            app.name());
}

// A PL/pgSQL body is not a dependency: check pre names the trigger whose
// function reads a table 002 drops, so the operator can read it first.
TEST(ProductionShape, CheckPreNamesATriggerFunctionThatReadsADroppedTable) {
  TestDatabase db("005", Shape::kProduction);
  db.Exec("CREATE FUNCTION public.log_search() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
          "PERFORM 1 FROM tasks LIMIT 1; RETURN NEW; END $$;"
          "CREATE TRIGGER search_logged AFTER INSERT ON search_queries FOR EACH ROW "
          "EXECUTE FUNCTION public.log_search()");
  auto pre = RunCliUnchanged(db, {"check", "pre"}, 0);
  EXPECT_CONTAINS(pre.out, "trigger search_logged on public.search_queries runs "
                           "public.log_search() (names tasks)");
}

// The rollback counts the rows of each task link table before restoring
// its key; a view in a table's place is never read (it would run its
// owner's code with the tool's rights): its key is skipped, with a warning.
TEST(ProductionShape, TheRollbackNeverReadsAViewInPlaceOfATaskLinkTable) {
  TestDatabase db("head", Shape::kProduction);
  db.Exec("CREATE FUNCTION public.trap() RETURNS SETOF uuid LANGUAGE plpgsql AS $$ BEGIN "
          "RAISE EXCEPTION 'the view was read'; END $$;"
          "ALTER TABLE task_branch_links RENAME TO task_branch_links_real;"
          "CREATE VIEW public.task_branch_links AS SELECT t AS task_id FROM public.trap() t");
  auto down = RunCli({"downgrade", "005"}, db.url().text());
  EXPECT_EQ(down.exit_code, 0) << down.err;
  EXPECT_EQ(down.err.find("the view was read"), std::string::npos) << down.err;
  EXPECT_CONTAINS(down.err, "foreign key fk_task_branch_links_task_id_tasks not restored: "
                            "public.task_branch_links is no table with a task_id column");
  EXPECT_EQ(db.Revision(), "005");
}

TEST(ProductionShape, ASchemaOfNeitherShapeIsRefusedWithExitTwo) {
  TestDatabase db("005", Shape::kProduction);
  db.Exec("ALTER TABLE code_chunks DROP COLUMN code_file_id");
  auto up = RunCliUnchanged(db, {"upgrade", "head"}, 2);
  EXPECT_CONTAINS(up.err, "code_chunks has neither repository_id nor code_file_id");
}

// Both links at once: 002 cannot tell which one leads to the repository, so
// it takes neither shape (the production shape's code_file_id alone is not
// enough).
TEST(ProductionShape, ASchemaWithBothLinksIsRefusedWithExitTwo) {
  TestDatabase db("005", Shape::kProduction);
  db.Exec("ALTER TABLE code_chunks ADD COLUMN repository_id uuid");
  auto up = RunCliUnchanged(db, {"upgrade", "head"}, 2);
  EXPECT_CONTAINS(up.err, "code_chunks has both repository_id and code_file_id");
}

}  // namespace
}  // namespace harness::testing
