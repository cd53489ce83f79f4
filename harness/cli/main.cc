// migration-harness: run, check and rehearse the schema migrations of
// migrations/. main only wires the subcommands (one file each).
#include <iostream>

#include <CLI/CLI.hpp>
#include <pqxx/pqxx>

#include "harness/cli/context.h"
#include "harness/error.h"
#include "harness/pg/interrupt.h"

namespace {

int Report(const harness::Error& e) {
  std::cerr << "error: " << e.what() << "\n";
  if (!e.hint().empty()) std::cerr << "hint: " << e.hint() << "\n";
  return static_cast<int>(e.code());
}

}  // namespace

int main(int argc, char** argv) {
  using namespace harness;
  pg::InstallInterruptHandler();
  cli::GlobalOptions g;
  CLI::App app{
      "migration-harness: proves a PostgreSQL schema migration safe before it reaches "
      "production.\nRuns the Alembic-compatible chain in migrations/ (001 -> 003 -> 003a -> "
      "003b -> 005 -> 002)."};
  app.set_version_flag("--version", "migration-harness 0.1.0");
  app.require_subcommand(1);
  // Global options also after the command: `upgrade head --log-file F`.
  app.fallthrough();
  app.add_option("--database-url", g.database_url,
                 "PostgreSQL URL, e.g. postgresql://user@host:5432/db")
      ->envname("DATABASE_URL");
  app.add_flag("-v,--verbose", g.verbosity, "More detail in the log (the SQL of each step)");
  app.add_option("--log-file", g.log_file, "Also write the log to this file");
  app.add_option("--lock-timeout", g.lock_timeout_seconds,
                 "Seconds to wait for a table lock before giving up (0: wait forever)")
      ->check(CLI::Range(0, 86400))
      ->capture_default_str();
  app.add_flag("--no-wait", g.no_wait,
               "Fail at once when another migration is running, instead of queueing behind it");
  app.add_option("--migrations", g.migrations_dir, "Directory of migration files")
      ->envname("HARNESS_MIGRATIONS")
      ->check(CLI::ExistingDirectory);
  app.footer(
      "Exit codes: 0 ok; 1 a check failed or the migration refused the data; 2 bad usage or "
      "input; 3 database error; 130 interrupted.\nRun 'migration-harness COMMAND --help' for a "
      "command's options.");

  std::vector<cli::Command> commands = {
      cli::setup_upgrade(app, g), cli::setup_downgrade(app, g), cli::setup_current(app, g),
      cli::setup_history(app, g), cli::setup_heads(app, g),     cli::setup_stamp(app, g),
      cli::setup_generate(app, g), cli::setup_check(app, g),    cli::setup_verify(app, g),
  };

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int rc = app.exit(e);
    return rc == 0 ? 0 : static_cast<int>(ExitCode::kUsage);
  }
  try {
    cli::SetupLogging(g);
    for (const auto& c : commands)
      if (c.app->parsed()) return c.run();
    return static_cast<int>(ExitCode::kUsage);
  } catch (const Error& e) {
    return Report(e);
  } catch (const pqxx::sql_error& e) {
    return Report(pg::FromSqlError(e, "database error"));
  } catch (const pqxx::broken_connection& e) {
    return Report(DatabaseError(std::string("lost the connection to the database: ") + e.what()));
  } catch (const std::exception& e) {
    return Report(DatabaseError(std::string("unexpected error: ") + e.what()));
  }
}
