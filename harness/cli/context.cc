#include "harness/cli/context.h"

#include <spdlog/sinks/basic_file_sink.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <iostream>

#include "harness/cli/status_line.h"
#include "harness/error.h"

namespace harness::cli {

void SetupLogging(const GlobalOptions& g) {
  std::vector<spdlog::sink_ptr> sinks;
  auto console = std::make_shared<spdlog::sinks::stderr_color_sink_mt>();
  console->set_pattern("%^%-7l%$ %v");
  sinks.push_back(StatusLine::WrapSink(console));
  if (!g.log_file.empty()) {
    try {
      auto file = std::make_shared<spdlog::sinks::basic_file_sink_mt>(g.log_file);
      file->set_pattern("%Y-%m-%d %H:%M:%S.%e %-7l %v");
      sinks.push_back(file);
    } catch (const spdlog::spdlog_ex& e) {
      throw UsageError("cannot write the log file " + g.log_file + ": " + e.what(),
                       "pass a writable path to --log-file");
    }
  }
  auto logger = std::make_shared<spdlog::logger>("harness", sinks.begin(), sinks.end());
  logger->set_level(g.verbosity > 0 ? spdlog::level::debug : spdlog::level::info);
  logger->flush_on(spdlog::level::info);
  spdlog::set_default_logger(logger);
}

engine::RevisionGraph LoadGraph(const GlobalOptions& g) {
  return engine::RevisionGraph::LoadDirectory(engine::DefaultMigrationsDir(g.migrations_dir));
}

std::unique_ptr<pg::Connection> Connect(const GlobalOptions& g) {
  pg::Url url = pg::Url::Parse(g.database_url);
  spdlog::debug("connecting to {}", url.Describe());
  return std::make_unique<pg::Connection>(url);
}

engine::MigratorOptions MigratorOptionsFrom(const GlobalOptions& g) {
  engine::MigratorOptions o;
  o.lock_timeout_seconds = g.lock_timeout_seconds;
  o.wait_for_migration_lock = !g.no_wait;
  return o;
}

int RunMigrationCommand(const GlobalOptions& g, engine::Direction direction,
                        const std::string& target, bool sql_only) {
  const bool up = direction == engine::Direction::kUpgrade;
  engine::RevisionGraph graph = LoadGraph(g);
  if (sql_only) {
    engine::Position from = 0;
    std::unique_ptr<pg::Connection> conn;
    if (!g.database_url.empty()) {
      conn = Connect(g);
      engine::Migrator reader(*conn, graph, MigratorOptionsFrom(g));
      from = reader.Current();
    } else if (!up) {
      throw UsageError("downgrade --sql needs to know the current revision",
                       "pass --database-url (it is only read) or set DATABASE_URL");
    }
    engine::Position to = up ? graph.ResolveUpgradeTarget(target, from)
                             : graph.ResolveDowngradeTarget(target, from);
    std::cout << engine::RenderSql(graph, from, to, g.lock_timeout_seconds);
    return 0;
  }
  auto conn = Connect(g);
  engine::Migrator migrator(*conn, graph, MigratorOptionsFrom(g));
  engine::RunReport report = up ? migrator.Upgrade(target) : migrator.Downgrade(target);
  if (report.noop)
    std::cout << "Already at " << report.to << ": nothing to do\n";
  else
    std::cout << (up ? "Upgraded " : "Downgraded ") << report.from << " -> " << report.to
              << " in " << fmt::format("{:.3f}", report.seconds) << "s\n";
  return 0;
}

}  // namespace harness::cli
