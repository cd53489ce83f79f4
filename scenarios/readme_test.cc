// The README's deployment checklist and rollback, run as written: every
// `sh` block of its "Deployment checklist" section, taken from README.md
// itself, in one bash session against a production-shape database with
// generated data (a backup, a rehearsal on a restored copy, the window,
// the rollback, restore-dropped). `systemctl` is the one command replaced:
// a function that records its calls.
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
#include "harness/pg/process.h"
#include "scenarios/support/test_env.h"

namespace harness::testing {
namespace {

namespace fs = std::filesystem;

// The lines of the `sh` blocks of the README section `heading`, in order,
// each dedented by its fence's indentation.
std::vector<std::string> ShellBlocks(const std::string& heading) {
  std::ifstream in(SourceDir() / "README.md");
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

// "Rehearsing your own next migration": the revision file the README
// writes, added to a copy of the chain, is READY under `verify` as it
// stands, its own check and its idempotent re-run included.
TEST(Readme, YourNextMigrationIsRehearsedAsWritten) {
  auto lines = ShellBlocks("## Rehearsing your own next migration");
  std::string file, name;
  bool in_file = false;
  for (const auto& l : lines) {
    if (in_file && l == "SQL") in_file = false;
    else if (in_file) file += l + "\n";
    else if (l.starts_with("cat > migrations/") && l.ends_with(" <<'SQL'")) {
      in_file = true;
      name = l.substr(std::string("cat > migrations/").size());
      name.resize(name.find(' '));
    }
  }
  ASSERT_FALSE(name.empty()) << "no `cat > migrations/FILE <<'SQL'` in the section";
  ASSERT_NE(file.find("--! check post:"), std::string::npos) << file;
  const fs::path dir = fs::path(::testing::TempDir()) / pg::UniqueDatabaseName("readme_chain");
  fs::create_directories(dir);
  for (const auto& f : fs::directory_iterator(MigrationsDir()))
    if (f.path().extension() == ".sql") fs::copy(f.path(), dir / f.path().filename());
  std::ofstream(dir / name) << file;
  auto r = RunCli({"verify"}, "", {{"HARNESS_MIGRATIONS", dir.string()}});
  fs::remove_all(dir);
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_CONTAINS(r.out, "Migration rehearsal 002 -> 006");
  EXPECT_CONTAINS(r.out, "✓ no job without its repository (006)");
  EXPECT_CONTAINS(r.out, "✓ idempotent re-run (stamp 002, upgrade again)");
  EXPECT_CONTAINS(r.out, "READY: 002 -> 006 upgraded in");
}

// "Rehearsing an Alembic project", run as written: its `sh` block in one
// bash session, PROJECT the async test project, COPY_URL a database its own
// Alembic brought to a1, with rows; the tool first on the PATH.
TEST(SlowReadme, AnAlembicProjectIsRehearsedAsWritten) {
  const auto lines = ShellBlocks("## Rehearsing an Alembic project");
  std::string commands;
  for (const auto& l : lines) commands += l + "\n";
  for (const char* step : {"check chain --alembic", "verify --alembic", "--database-url \"$COPY_URL\" verify"})
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
  const fs::path work = fs::path(::testing::TempDir()) / pg::UniqueDatabaseName("readme_alembic");
  fs::create_directories(work);
  pg::ProcessOptions o;
  o.working_dir = work.string();
  o.env["PROJECT"] = AlembicProject("async_project").string();
  o.env["COPY_URL"] = copy.url().text();
  o.env["PATH"] = fs::path(HARNESS_CLI_PATH).parent_path().string() + ":" + std::getenv("PATH");
  o.unset_env = {"DATABASE_URL"};
  o.timeout = std::chrono::seconds(300);
  auto r = pg::RunProcess({"bash", "-c", "set -euo pipefail\nset -x\n" + commands}, o);
  ASSERT_EQ(r.exit_code, 0) << commands << "\nstdout:\n" << r.out << "\nstderr:\n" << r.err;
  EXPECT_CONTAINS(r.out, "All chain checks passed");
  EXPECT_CONTAINS(r.out, "READY: a3 -> 0365901259f8 upgraded in");
  EXPECT_CONTAINS(r.out, "READY: a1 -> 0365901259f8 upgraded in");
  EXPECT_TRUE(fs::exists(work / "alembic.xml"));
  ExpectUnchanged(copy.url(), before);
  fs::remove_all(work);
}

TEST(SlowReadme, TheDeploymentChecklistAndRollbackRunAsWritten) {
  auto lines = ShellBlocks("## Deployment checklist (migration 002)");
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
  pg::ProcessOptions o;
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
  auto r = pg::RunProcess({"bash", "-c", script}, o);
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
