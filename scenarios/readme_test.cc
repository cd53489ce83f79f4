// The README's and the docs' commands, run as written: the `sh` blocks of
// a section, taken from the file itself, in one bash session. README.md's
// examples run the tool as `build/migration-harness` (a link to the binary
// under test in the session's folder, with HARNESS_MIGRATIONS where the
// block writes a revision); docs/ name it as installed, `migration-harness`
// (the binary's folder first on the PATH). The deployment checklist runs
// against a production-shape database with generated data (a backup, a
// rehearsal on a restored copy, the window, the rollback, restore-dropped);
// `systemctl` is the one command replaced there: a function that records
// its calls.
#include <gtest/gtest.h>

#include <fmt/format.h>

#include <chrono>
#include <cstdlib>
#include <iostream>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

#include "fixtures/any_schema.h"
#include "harness/codesearch/generator.h"
#include "harness/checks/suites.h"
#include "harness/inspect/fingerprint.h"
#include "harness/pg/cluster.h"
#include "harness/pg/connection.h"
#include "harness/pg/disposable_database.h"
#include "harness/sys/process.h"
#include "scenarios/support/test_env.h"

namespace harness::testing {
namespace {

namespace fs = std::filesystem;

// The lines of the `sh` blocks of the section `heading` of `file` (from the
// source tree's root), in order, each dedented by its fence's indentation.
std::vector<std::string> ShellBlocks(const std::string& file, const std::string& heading) {
  std::ifstream in(SourceDir() / file);
  if (!in) throw std::runtime_error("cannot read " + file);
  std::vector<std::string> out;
  std::string line;
  bool in_section = false, in_block = false;
  size_t indent = 0;
  while (std::getline(in, line)) {
    if (line.starts_with("## ")) {
      in_section = line == heading;
      continue;
    }
    if (!in_section) continue;
    size_t first = line.find_first_not_of(' ');
    std::string trimmed = first == std::string::npos ? "" : line.substr(first);
    if (!in_block && trimmed == "```sh") {
      in_block = true;
      indent = first;
    } else if (in_block && trimmed == "```") {
      in_block = false;
    } else if (in_block) {
      out.push_back(line.size() > indent ? line.substr(indent) : trimmed);
    }
  }
  return out;
}

std::string Joined(const std::vector<std::string>& lines) {
  std::string out;
  for (const auto& l : lines) out += l + "\n";
  return out;
}

// One bash session that stops at its first failing command and echoes
// each command it runs (the output a failed assertion shows).
sys::ProcessResult RunSession(const std::string& commands, const sys::ProcessOptions& o) {
  return sys::RunProcess({"bash", "-c", "set -euo pipefail\nset -x\n" + commands}, o);
}

// A fresh folder for a session, with build/migration-harness in it: the
// README's name for the tool.
fs::path WorkDirWithTool(const std::string& name) {
  const fs::path work = fs::path(::testing::TempDir()) / pg::UniqueDatabaseName(name);
  fs::create_directories(work / "build");
  fs::create_symlink(HARNESS_CLI_PATH, work / "build" / "migration-harness");
  return work;
}

// README.md's "Your next migration, as SQL", run as written: the revision
// file it writes lands in a copy of the chain (HARNESS_MIGRATIONS), and
// `history` and `verify` see it; `verify` is READY, its own check and its
// idempotent re-run included.
TEST(Readme, YourNextMigrationIsRehearsedAsWritten) {
  const std::string commands = Joined(ShellBlocks("README.md", "## Your next migration, as SQL"));
  for (const char* step : {"cat > migrations/006_index_jobs.sql <<'SQL'", "--! check post:",
                           "build/migration-harness history", "build/migration-harness verify"})
    ASSERT_NE(commands.find(step), std::string::npos) << step << " is not in:\n" << commands;
  const fs::path work = WorkDirWithTool("readme_chain");
  fs::create_directories(work / "migrations");
  for (const auto& f : fs::directory_iterator(MigrationsDir()))
    if (f.path().extension() == ".sql") fs::copy(f.path(), work / "migrations" / f.path().filename());
  sys::ProcessOptions o;
  o.working_dir = work.string();
  o.env["HARNESS_MIGRATIONS"] = (work / "migrations").string();
  o.unset_env = {"DATABASE_URL"};
  o.timeout = std::chrono::seconds(300);
  auto r = RunSession(commands, o);
  fs::remove_all(work);
  ASSERT_EQ(r.exit_code, 0) << commands << "\nstdout:\n" << r.out << "\nstderr:\n" << r.err;
  EXPECT_CONTAINS(r.out, "002 -> 006 (head), A table of indexing jobs");
  EXPECT_CONTAINS(r.out, "Migration rehearsal 002 -> 006");
  EXPECT_CONTAINS(r.out, "✓ no job without its repository (006)");
  EXPECT_CONTAINS(r.out, "✓ idempotent re-run (stamp 002, upgrade again)");
  EXPECT_CONTAINS(r.out, "READY: 002 -> 006 upgraded in");
}

// README.md's "Your production copy", run as written: DATABASE_URL a
// production-shape database with rows, COPY_URL an empty database. The
// backup restored into the copy is rehearsed READY, and neither database
// is changed by it.
TEST(Readme, YourProductionCopyIsRehearsedAsWritten) {
  const std::string commands = Joined(ShellBlocks("README.md", "## Your production copy"));
  for (const char* step : {"pg_dump -Fc", "pg_restore", "build/migration-harness --database-url \"$COPY_URL\" verify"})
    ASSERT_NE(commands.find(step), std::string::npos) << step << " is not in:\n" << commands;
  TestDatabase production("005", Shape::kProduction);
  {
    pg::Connection conn(production.url());
    codesearch::GeneratorOptions go;
    go.repositories = 10;
    go.chunks_per_repo = 10;
    codesearch::Generate(conn, go);
  }
  const DatabaseState before = CaptureState(production.url());
  pg::DisposableDatabase copy(TestServer().AdminUrl(), "template0", "mh_readme_prod_copy");
  const fs::path work = WorkDirWithTool("readme_copy");
  sys::ProcessOptions o;
  o.working_dir = work.string();
  o.env["DATABASE_URL"] = production.url().text();
  o.env["COPY_URL"] = copy.url().text();
  // The server's own client programs first on the PATH.
  o.env["PATH"] = pg::FindServerBinDir().string() + ":" + std::getenv("PATH");
  o.timeout = std::chrono::seconds(300);
  auto r = RunSession(commands, o);
  const bool junit = fs::exists(work / "verify.xml");
  fs::remove_all(work);
  ASSERT_EQ(r.exit_code, 0) << commands << "\nstdout:\n" << r.out << "\nstderr:\n" << r.err;
  EXPECT_CONTAINS(r.err, "schema shape: production");  // current: the shape is logged
  EXPECT_CONTAINS(r.out, "READY: 005 -> 002 upgraded in");
  EXPECT_TRUE(junit);
  ExpectUnchanged(production.url(), before);
  pg::Connection conn(copy.url());
  pqxx::read_transaction tx(conn.raw());
  EXPECT_EQ(tx.exec("SELECT version_num FROM alembic_version")[0][0].as<std::string>(), "005")
      << "the copy itself is not migrated";
}

// An Alembic section run as written, in one bash session: PROJECT the
// async test project, COPY_URL a database its own Alembic brought to a1,
// with rows, which the session does not change. `readme`: the tool as
// build/migration-harness; else as installed, first on the PATH.
void RunAlembicSection(const std::string& file, const std::string& heading, bool readme,
                       const std::vector<std::string>& steps, const std::vector<std::string>& expected) {
  const std::string commands = Joined(ShellBlocks(file, heading));
  for (const std::string& step : steps)
    ASSERT_NE(commands.find(step), std::string::npos) << step << " is not in:\n" << commands;
  pg::DisposableDatabase copy(TestServer().AdminUrl(), "template0", "mh_readme_alembic");
  RunAlembic(AlembicProject("async_project"), copy.url(), "asyncpg", "upgrade", "a1");
  {
    pg::Connection conn(copy.url());
    fixtures::AnySchemaOptions o;
    o.rows_per_table = 100;
    fixtures::GenerateAnySchema(conn, o);
  }
  const DatabaseState before = CaptureState(copy.url());
  const fs::path work = WorkDirWithTool("readme_alembic");
  sys::ProcessOptions o;
  o.working_dir = work.string();
  o.env["PROJECT"] = AlembicProject("async_project").string();
  o.env["COPY_URL"] = copy.url().text();
  if (!readme) o.env["PATH"] = fs::path(HARNESS_CLI_PATH).parent_path().string() + ":" + std::getenv("PATH");
  o.unset_env = {"DATABASE_URL"};
  o.timeout = std::chrono::seconds(300);
  auto r = RunSession(commands, o);
  const bool junit = readme || fs::exists(work / "alembic.xml");  // docs/ asks for --junit
  fs::remove_all(work);
  ASSERT_EQ(r.exit_code, 0) << commands << "\nstdout:\n" << r.out << "\nstderr:\n" << r.err;
  for (const std::string& e : expected) EXPECT_CONTAINS(r.out, e);
  EXPECT_TRUE(junit);
  ExpectUnchanged(copy.url(), before);
}

TEST(SlowReadme, AnAlembicProjectIsRehearsedAsWritten) {
  RunAlembicSection("docs/alembic.md", "## Rehearsing an Alembic project", false,
                    {"check chain --alembic", "verify --alembic", "--database-url \"$COPY_URL\" verify"},
                    {"All chain checks passed", "READY: a3 -> 0365901259f8 upgraded in",
                     "READY: a1 -> 0365901259f8 upgraded in"});
}

TEST(SlowReadme, TheReadmesAlembicProjectIsRehearsedAsWritten) {
  RunAlembicSection("README.md", "## Your next migration, in Alembic", true,
                    {"build/migration-harness check chain --alembic",
                     "build/migration-harness --database-url \"$COPY_URL\" verify --alembic"},
                    {"All chain checks passed", "READY: a1 -> 0365901259f8 upgraded in"});
}

TEST(SlowReadme, TheDeploymentChecklistAndRollbackRunAsWritten) {
  auto lines = ShellBlocks("docs/deployment.md", "## Deployment checklist (migration 002)");
  std::string commands;
  for (const auto& l : lines) commands += l + "\n";
  // Not an empty extraction: the procedure's landmarks are there.
  for (const char* step : {"pg_dump -Fc", "pg_restore", " verify", "VACUUM ANALYZE",
                           "check pre --save-baseline pre-002.json", "upgrade head",
                           "downgrade -1", "restore-dropped --from", "check rollback --baseline"})
    ASSERT_NE(commands.find(step), std::string::npos) << step << " is not in:\n" << commands;

  TestDatabase production("005", Shape::kProduction);
  {
    pg::Connection conn(production.url());
    codesearch::GeneratorOptions go;
    go.repositories = 20;
    go.chunks_per_repo = 10;
    codesearch::Generate(conn, go);
  }
  auto before = DroppedFingerprints(production);
  ASSERT_GT(before.at("tasks").rows, 0);
  pg::DisposableDatabase copy(TestServer().AdminUrl(), "template0", "mh_readme_copy");
  const fs::path work = fs::path(::testing::TempDir()) / pg::UniqueDatabaseName("readme");
  fs::create_directories(work);

  const std::string script = "set -euo pipefail\n"
                             "cd \"$README_WORKDIR\"\n"
                             "systemctl() { echo \"systemctl $*\" >> systemctl.calls; }\n"
                             "set -x\n" +
                             commands;
  sys::ProcessOptions o;
  o.env["DATABASE_URL"] = production.url().text();
  o.env["COPY_URL"] = copy.url().text();
  o.env["README_WORKDIR"] = work.string();
  o.env["HARNESS_MIGRATIONS"] = MigrationsDir().string();
  // The server's own client programs, then the tool, first on the PATH.
  o.env["PATH"] = pg::FindServerBinDir().string() + ":" +
                  fs::path(HARNESS_CLI_PATH).parent_path().string() + ":" + std::getenv("PATH");
  o.env["LC_MESSAGES"] = "C";
  o.timeout = std::chrono::seconds(600);
  auto t0 = std::chrono::steady_clock::now();
  auto r = sys::RunProcess({"bash", "-c", script}, o);
  double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::cout << fmt::format("the checklist and rollback took {:.1f}s\n", seconds);
  ASSERT_EQ(r.exit_code, 0) << "script:\n" << script << "\nstdout:\n" << r.out << "\nstderr:\n" << r.err;

  EXPECT_CONTAINS(r.out, "READY: 005 -> 002 upgraded in");
  EXPECT_CONTAINS(r.out, "002 (head)");
  EXPECT_CONTAINS(r.out, "All post-migration checks passed (8/8)");
  EXPECT_CONTAINS(r.out, "rows only in the backup");
  EXPECT_CONTAINS(r.out, "Matches the baseline pre-002.json");
  EXPECT_CONTAINS(r.out, "✓ Dropped tables' rows match the baseline (9 tables, ");
  EXPECT_EQ(production.Revision(), "005");
  EXPECT_EQ(DroppedFingerprints(production), before) << "every row of the nine tables is back";
  EXPECT_EQ(production.Scalar("SELECT count(*) FROM pg_constraint WHERE NOT convalidated"), "0");
  for (const char* f : {"verify.xml", "pre-002.json", "migration-002.log"})
    EXPECT_TRUE(fs::exists(work / f)) << f;
  std::ifstream calls(work / "systemctl.calls");
  std::stringstream got;
  got << calls.rdbuf();
  EXPECT_EQ(got.str(),
            "systemctl stop codebase-mcp-server\nsystemctl start codebase-mcp-server\n"
            "systemctl stop codebase-mcp-server\nsystemctl start codebase-mcp-server\n");
  fs::remove_all(work);
}

}  // namespace
}  // namespace harness::testing
