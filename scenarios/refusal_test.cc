// Every condition that makes the upgrade refuse is found by `check pre`
// first, in the same words and with the same exit code: 002's guards are
// its pre checks (`--! check pre, guard:`). One row per condition, the same
// database given to both, each asserting the pre-check's ✗ line and exit
// code, then the upgrade's refusal, its exit code and an unchanged database.
#include <gtest/gtest.h>

#include <sstream>
#include <string>

#include <pqxx/pqxx>

#include "harness/codesearch/quickstart_sample.h"
#include "harness/pg/connection.h"
#include "scenarios/support/test_env.h"

namespace harness::testing {
namespace {

struct Refusal {
  const char* name;
  const char* setup;  // SQL on a database at 005 with the quickstart's sample
  const char* says;   // in check pre's ✗ line, and in the upgrade's refusal
  int exit_code;      // of both: 2 for a gate, 1 for a check
  // The upgrade's words where they are not its guard's ("revision 002
  // refuses to run: ..." saying `says`): a refusal that is no guard's.
  const char* upgrade_says = nullptr;
  int pre_exit_code = -1;  // where it is not `exit_code`
};

const Refusal kRefusals[] = {
    {"ProjectIdValueTheCheckRejects",
     "ALTER TABLE repositories ADD COLUMN project_id varchar(50) NOT NULL DEFAULT 'default'; "
     "UPDATE repositories SET project_id = '-Bad_Project-' "
     "WHERE path = (SELECT min(path) FROM repositories)",
     "1 row(s) of repositories have a project_id that the CHECK rejects (e.g. '-Bad_Project-')", 1},
    // Any text comes back as it is: characters XML escapes, a control character.
    {"ProjectIdValueOfMarkupCharacters",
     "ALTER TABLE repositories ADD COLUMN project_id varchar(50) NOT NULL DEFAULT 'default'; "
     "UPDATE repositories SET project_id = 'R&D <x>' "
     "WHERE path = (SELECT min(path) FROM repositories)",
     "1 row(s) of repositories have a project_id that the CHECK rejects (e.g. 'R&D <x>')", 1},
    {"ProjectIdValueOfAControlCharacter",
     "ALTER TABLE repositories ADD COLUMN project_id varchar(50) NOT NULL DEFAULT 'default'; "
     "UPDATE repositories SET project_id = E'bad\\x01id' "
     "WHERE path = (SELECT min(path) FROM repositories)",
     "1 row(s) of repositories have a project_id that the CHECK rejects (e.g. 'bad\\x01id')", 1},
    {"ChunkProjectIdValueTheCheckRejects",
     "ALTER TABLE code_chunks ADD COLUMN project_id varchar(50) NOT NULL DEFAULT 'Default'; "
     "ALTER TABLE code_chunks ALTER COLUMN project_id DROP DEFAULT",
     "row(s) of code_chunks have a project_id that the CHECK rejects (e.g. 'Default')", 1},
    // Not what 002 builds: gates (exit 2 from both).
    {"CheckOfAnotherDefinition",
     "ALTER TABLE repositories ADD COLUMN project_id varchar(50) NOT NULL DEFAULT 'default'; "
     "ALTER TABLE repositories ADD CONSTRAINT check_repositories_project_id "
     "CHECK (project_id ~ '^[a-z0-9-]{1,50}$')",
     "constraint check_repositories_project_id on repositories exists with another definition", 2},
    {"IndexOfAnotherDefinition",
     "ALTER TABLE repositories ADD COLUMN project_id varchar(50) NOT NULL DEFAULT 'default'; "
     "CREATE INDEX idx_project_repository ON repositories (project_id)",
     "index idx_project_repository is CREATE INDEX idx_project_repository ON public.repositories USING btree "
     "(project_id); drop it",
     2},
    // What a failed CREATE INDEX CONCURRENTLY leaves behind.
    {"InvalidIndex",
     "ALTER TABLE repositories ADD COLUMN project_id varchar(50) NOT NULL DEFAULT 'default'; "
     "CREATE INDEX idx_project_repository ON repositories (project_id, id); "
     "UPDATE pg_index SET indisvalid = false "
     "WHERE indexrelid = 'idx_project_repository'::regclass",
     "(INVALID); drop it: DROP INDEX CONCURRENTLY public.idx_project_repository;", 2},
    {"ChunkColumnOfAnotherType", "ALTER TABLE code_chunks ADD COLUMN project_id text",
     "code_chunks.project_id is text, NULL, no default, not character varying(50), NOT NULL, no default", 2},
    {"BlockingForeignKey",
     "ALTER TABLE tasks ADD COLUMN repository_id uuid REFERENCES repositories (id)",
     "Foreign keys from dropped tables block 002: tasks.tasks_repository_id_fkey -> repositories", 1},
    // Found in pg_depend before anything changes, not by the DROP in step 7.
    {"DependentView",
     "CREATE VIEW public.open_tasks AS SELECT id, title FROM tasks WHERE status <> 'complete'",
     "Objects outside the 9 tables depend on them and block 002: view open_tasks; remove them "
     "first (save their definitions if they are still wanted; the rollback cannot bring them "
     "back): DROP VIEW public.open_tasks;",
     1},
    // No foreign key proves there is none: the guard scans.
    {"OrphanedChunks",
     "ALTER TABLE code_chunks DROP CONSTRAINT code_chunks_repository_id_fkey; "
     "DELETE FROM repositories WHERE path = (SELECT min(path) FROM repositories)",
     "No orphaned code_chunks: found 2 chunk(s) whose repository does not exist", 1},
    // Not the schema 002 knows: the gate core_tables (exit 2 from both).
    {"CodeFilesMissing",
     "ALTER TABLE code_chunks DROP COLUMN repository_id; ALTER TABLE code_chunks ADD COLUMN code_file_id uuid",
     "Core tables exist: missing: table code_files", 2},
    {"CoreTableAView",
     "ALTER TABLE code_chunks RENAME TO code_chunks_data; "
     "CREATE VIEW public.code_chunks AS SELECT * FROM code_chunks_data",
     "Core tables exist: public.code_chunks is not a table (relkind v)", 2},
    {"UnknownRevision", "UPDATE alembic_version SET version_num = '004'",
     "Current revision is 005 or earlier: found 004", 2,
     "the database is at revision '004', which this chain does not know", 1},
};

// Whether a ✗ line of `check pre`'s output says `text`.
bool FailedLineSays(const std::string& out, const std::string& text) {
  std::istringstream in(out);
  for (std::string line; std::getline(in, line);)
    if (line.starts_with("✗ ") && line.find(text) != std::string::npos) return true;
  return false;
}

class RefusedByBoth : public ::testing::TestWithParam<Refusal> {};

TEST_P(RefusedByBoth, CheckPreFailsWhereTheUpgradeRefuses) {
  const Refusal& c = GetParam();
  TestDatabase db("005");
  db.Exec(codesearch::kQuickstartSampleSql);
  db.Exec(c.setup);
  const std::string recorded = db.Scalar("SELECT version_num FROM alembic_version");
  auto pre = RunCliUnchanged(db, {"check", "pre"}, c.pre_exit_code < 0 ? c.exit_code : c.pre_exit_code);
  EXPECT_TRUE(FailedLineSays(pre.out, c.says)) << "no ✗ line says\n  " << c.says << "\nin\n" << pre.out;
  auto up = RunCliUnchanged(db, {"upgrade", "head"}, c.exit_code);
  if (c.upgrade_says) {
    EXPECT_CONTAINS(up.err, c.upgrade_says);
  } else {
    EXPECT_CONTAINS(up.err, "revision 002 refuses to run: ");
    EXPECT_CONTAINS(up.err, c.says);
  }
  EXPECT_EQ(db.Scalar("SELECT version_num FROM alembic_version"), recorded);
}

INSTANTIATE_TEST_SUITE_P(Conditions, RefusedByBoth, ::testing::ValuesIn(kRefusals),
                         [](const auto& p) { return std::string(p.param.name); });

// The guards 002 shares with `check pre` are in its `--sql` output too: the
// script refuses what the upgrade refuses, and runs on a clean database.
TEST(RefusedByBoth, TheSqlOutputRunsTheGuards) {
  for (bool blocked : {true, false}) {
    TestDatabase db("005");
    db.Exec(codesearch::kQuickstartSampleSql);
    if (blocked)
      for (const Refusal& r : kRefusals)
        if (std::string(r.name) == "BlockingForeignKey") db.Exec(r.setup);
    auto sql = RunCliUnchanged(db, {"upgrade", "head", "--sql"}, 0);
    pqxx::connection conn(pg::ConnectString(db.url()));
    try {
      pqxx::nontransaction tx(conn);
      tx.exec(sql.out);
      EXPECT_FALSE(blocked) << "the script ran over a blocking foreign key";
    } catch (const pqxx::sql_error& e) {
      EXPECT_TRUE(blocked) << e.what();
      EXPECT_CONTAINS(std::string(e.what()), "revision 002 refuses to run: Foreign keys from dropped tables block 002");
    }
    EXPECT_EQ(db.Revision(), blocked ? "005" : "002");
  }
}

// The upgrade's refusal of data the CHECK rejects says how to list it, and
// the listed query finds exactly those rows.
TEST(RefusedByBoth, TheListingQueryOfTheRefusalFindsTheRows) {
  TestDatabase db("005");
  db.Exec(codesearch::kQuickstartSampleSql);
  db.Exec(kRefusals[0].setup);
  auto up = RunCliUnchanged(db, {"upgrade", "head"}, 1);
  const std::string marker = "list them with: ";
  auto at = up.err.find(marker);
  ASSERT_NE(at, std::string::npos) << up.err;
  std::string query = up.err.substr(at + marker.size());
  query = query.substr(0, query.find(';'));
  EXPECT_EQ(db.Scalar("SELECT count(*) FROM (" + query + ") q"), "1") << query;
  EXPECT_EQ(db.Scalar("SELECT project_id FROM (" + query + ") q"), "-Bad_Project-");
}

// A project_id column built beforehand, as the README's recipe builds it,
// passes and is listed as kept.
TEST(RefusedByBoth, AColumnAndIndexBuiltAsTheReadmeSaysPass) {
  TestDatabase db("005");
  db.Exec(codesearch::kQuickstartSampleSql);
  db.Exec("ALTER TABLE repositories ADD COLUMN project_id varchar(50) NOT NULL DEFAULT "
          "'default'; CREATE INDEX idx_project_repository ON repositories (project_id, id)");
  auto pre = RunCliUnchanged(db, {"check", "pre"}, 0);
  EXPECT_CONTAINS(pre.out, "✓ Objects of 002 built beforehand are what 002 builds "
                           "(repositories.project_id, idx_project_repository: kept)");
  EXPECT_EQ(RunCli({"upgrade", "head"}, db.url().text()).exit_code, 0);
}

}  // namespace
}  // namespace harness::testing
