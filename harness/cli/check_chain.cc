#include "harness/cli/check_chain.h"

#include <iostream>

#include <spdlog/spdlog.h>

#include "harness/alembic/alembic_revisions.h"
#include "harness/cli/alembic_options.h"
#include "harness/engine/migration_file.h"
#include "harness/error.h"
#include "harness/pg/cluster.h"
#include "harness/pg/disposable_database.h"
#include "harness/sys/files.h"
#include "harness/report/suite_report.h"
#include "harness/verify/chain_checks.h"
#include "harness/verify/sql_revisions.h"

namespace harness::cli {

namespace {

// This project's SQL files as written: each file read on its own, so that
// two heads or a missing parent are a failed check, not a refusal to load.
std::vector<verify::ChainRevision> SqlChain(const std::filesystem::path& dir) {
  std::vector<std::filesystem::path> paths;
  for (const auto& e : std::filesystem::directory_iterator(dir))
    if (e.path().extension() == ".sql" && e.is_regular_file()) paths.push_back(e.path());
  std::sort(paths.begin(), paths.end());
  std::vector<verify::ChainRevision> out;
  for (const auto& path : paths) {
    const engine::MigrationFile f = engine::ReadMigrationFile(path);
    bool does_something = false;
    for (const auto& step : f.downgrade) {
      if (step.records_revision) does_something = true;
      std::istringstream lines(step.sql);
      for (std::string line; std::getline(lines, line);) {
        const auto start = line.find_first_not_of(" \t\r");
        if (start != std::string::npos && line.compare(start, 2, "--") != 0) does_something = true;
      }
    }
    out.push_back({f.revision, f.down_revision ? std::vector<std::string>{*f.down_revision} : std::vector<std::string>{},
                   path.filename().string(), does_something ? "body" : "pass"});
  }
  return out;
}

}  // namespace

int RunCheckChain(const GlobalOptions& g, const alembic::ProjectOptions& ao, bool json, const std::string& junit) {
  if (!g.database_url.empty())
    spdlog::info("check chain runs on an empty database of an embedded PostgreSQL; {} is not used",
                 pg::Url::Parse(g.database_url).Describe());
  std::vector<verify::ChainRevision> chain;
  std::unique_ptr<alembic::Project> project;
  std::optional<engine::RevisionGraph> graph;
  std::unique_ptr<verify::RevisionSource> linear;
  if (!ao.path.empty()) {
    project = OpenAlembicProject(ao);
    for (const auto& r : project->revisions()) chain.push_back({r.id, r.parents, r.file, r.downgrade_code});
    if (project->heads().size() == 1) linear = std::make_unique<alembic::AlembicRevisions>(*project, "head");
  } else {
    const auto dir = engine::DefaultMigrationsDir(g.migrations_dir);
    chain = SqlChain(dir);
    try {
      graph = engine::RevisionGraph::LoadDirectory(dir);
      linear = std::make_unique<verify::SqlRevisions>(*graph, MigratorOptionsFrom(g), dir.string());
    } catch (const Error& e) {
      spdlog::info("no single path through the chain ({}): the stairway is not run", e.what());
    }
  }
  checks::SuiteResult result;
  {
    std::unique_ptr<pg::EmbeddedCluster> cluster;
    std::unique_ptr<pg::DisposableDatabase> db;
    if (linear) {
      pg::ClusterOptions co;
      co.bin_dir = g.pg_bindir;
      co.settings = linear->ClusterSettings();
      cluster = pg::EmbeddedCluster::Start(co);
      db = std::make_unique<pg::DisposableDatabase>(cluster->AdminUrl(), "template0", "mh_chain");
      spdlog::info("the stairway runs on an empty database of PostgreSQL {}", cluster->server_version());
    }
    result = verify::CheckChain(chain, linear.get(), db ? db->url() : pg::Url::Parse("postgresql:///unused"));
  }
  if (json)
    std::cout << report::JsonText(report::SuiteJson(result)) << "\n";
  else
    std::cout << report::SuiteText(result);
  bool written = true;
  if (!junit.empty())
    written = WriteOutput("JUnit report", [&] {
      sys::WriteFileAtomically(junit, report::JUnitXml("migration-harness check chain", report::JUnitCases(result)));
    });
  return ExitCodeAfterWrites(result.ok() ? 0 : static_cast<int>(ExitCode::kCheckFailed), written);
}

}  // namespace harness::cli
