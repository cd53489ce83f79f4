// What every subcommand shares: the global options, logging, loading the
// chain, connecting. Each subcommand lives in its own file with an options
// struct, a setup_X() that declares its flags and a run_X() that does it.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "harness/engine/migrator.h"
#include "harness/engine/revision_graph.h"
#include "harness/pg/connection.h"

namespace harness::cli {

struct GlobalOptions {
  std::string database_url;
  int verbosity = 0;
  std::string log_file;
  int lock_timeout_seconds = 10;
  bool no_wait = false;
  std::string migrations_dir;
};

// A subcommand: its CLI11 node and what to run when it was chosen.
struct Command {
  CLI::App* app = nullptr;
  std::function<int()> run;
};

void SetupLogging(const GlobalOptions& g);
engine::RevisionGraph LoadGraph(const GlobalOptions& g);
// Parses --database-url / DATABASE_URL and connects (exit 2 / exit 3).
std::unique_ptr<pg::Connection> Connect(const GlobalOptions& g);
engine::MigratorOptions MigratorOptionsFrom(const GlobalOptions& g);

// Subcommands (one file each).
Command setup_upgrade(CLI::App& app, const GlobalOptions& g);
Command setup_downgrade(CLI::App& app, const GlobalOptions& g);
Command setup_current(CLI::App& app, const GlobalOptions& g);
Command setup_history(CLI::App& app, const GlobalOptions& g);
Command setup_heads(CLI::App& app, const GlobalOptions& g);
Command setup_stamp(CLI::App& app, const GlobalOptions& g);
Command setup_generate(CLI::App& app, const GlobalOptions& g);
Command setup_check(CLI::App& app, const GlobalOptions& g);
Command setup_verify(CLI::App& app, const GlobalOptions& g);

// Shared by upgrade and downgrade.
int RunMigrationCommand(const GlobalOptions& g, engine::Direction direction,
                        const std::string& target, bool sql_only);

}  // namespace harness::cli
