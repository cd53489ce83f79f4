// migration-harness: run, check and rehearse the schema migrations of
// migrations/. main only wires the subcommands (one file each).
#include <signal.h>

#include <iostream>

#include <CLI/CLI.hpp>
#include <pqxx/pqxx>

#include "harness/cli/context.h"
#include "harness/error.h"
#include "harness/pg/cluster.h"
#include "harness/pg/interrupt.h"

namespace {

int Report(const harness::Error& e) {
  harness::cli::PrintError(e.what(), e.hint());
  return static_cast<int>(e.code());
}

// Before main, as soon as this program's own code runs: a SIGINT or SIGTERM
// that arrives while it starts up waits for the handler main installs,
// instead of ending the process without a word. (Only the dynamic loader
// runs earlier.)
__attribute__((constructor)) void HoldInterruptsUntilMain() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  sigprocmask(SIG_BLOCK, &set, nullptr);
}

}  // namespace

int main(int argc, char** argv) {
  using namespace harness;
  sys::InstallInterruptHandler();
  // A closed pipe is a write error (EPIPE) that the command says, not a
  // silent death half way through a migration.
  signal(SIGPIPE, SIG_IGN);
  cli::InstallCheckedOutput();
  cli::GlobalOptions g;
  CLI::App app{
      "migration-harness: proves a PostgreSQL schema migration safe before it reaches "
      "production.\nRuns the Alembic-compatible SQL chain in migrations/ (`history` lists it), and "
      "rehearses its revisions or an Alembic project's own (verify --alembic)."};
  app.set_version_flag("--version", "migration-harness 0.1.0");
  app.require_subcommand(1);
  // Global options also after the command: `upgrade head --log-file F`.
  app.fallthrough();
  app.add_option("--database-url", g.database_url,
                 "PostgreSQL URL (postgresql://user:password@host:5432/db) or key=value "
                 "connection string; the password is never printed")
      ->envname("DATABASE_URL");
  app.add_flag("-v,--verbose", g.verbosity, "More detail in the log (the SQL of each step)");
  app.add_option("--log-file", g.log_file,
                 "Also write the log to this file (in an existing folder). It is written as "
                 ".NAME.XXXXXX next to it and renamed to NAME when the command ends; a killed "
                 "run leaves that temporary file behind");
  app.add_option("--lock-timeout", g.lock_timeout_seconds,
                 "Seconds to wait for a table lock before giving up, fractions allowed (0.5); "
                 "0: wait forever")
      ->check(CLI::Range(0.0, 86400.0))
      ->capture_default_str();
  app.add_flag("--no-wait", g.no_wait,
               "Fail at once when another migration is running, instead of queueing behind it");
  app.add_option("--migrations", g.migrations_dir, "Directory of migration files")
      ->envname("HARNESS_MIGRATIONS")
      ->check(CLI::ExistingDirectory);
  app.add_option("--pg-bindir", g.pg_bindir,
                 "The PostgreSQL server programs (initdb, pg_ctl, postgres) for the embedded "
                 "cluster that verify starts (without a URL, or with --into-embedded), e.g. "
                 "/usr/lib/postgresql/15/bin. Default: $HARNESS_PG_BINDIR, else the newest "
                 "/usr/lib/postgresql/*/bin. pg_dump and pg_restore come from this directory when "
                 "it has them, else from the newest /usr/lib/postgresql/*/bin")
      ->check(CLI::Validator(
          [](std::string& dir) {
            try {
              pg::FindServerBinDir(dir);
              return std::string();
            } catch (const Error& e) {
              return std::string(e.what()) + " (" + e.hint() + ")";
            }
          },
          "DIR"));
  app.footer(
      "Exit codes: 0 ok; 1 a check failed or the migration refused the data; 2 bad usage or "
      "input; 3 database error, or a file that could not be written after the run; 130 "
      "interrupted.\nRun 'migration-harness COMMAND --help' for a command's options.");

  std::vector<cli::Command> commands = {
      cli::setup_upgrade(app, g), cli::setup_downgrade(app, g), cli::setup_current(app, g),
      cli::setup_history(app, g), cli::setup_heads(app, g),     cli::setup_stamp(app, g),
      cli::setup_generate(app, g), cli::setup_check(app, g),    cli::setup_verify(app, g),
      cli::setup_restore_dropped(app, g),
  };

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int rc = app.exit(e);
    return cli::FinishOutput(rc == 0 ? 0 : static_cast<int>(ExitCode::kUsage));
  }
  auto run = [&]() -> int {
    try {
      cli::SetupLogging(g);
      sys::ThrowIfInterrupted("starting");
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
  };
  // Standard output is flushed and the log file complete (renamed into
  // place) only now, whatever the outcome; a write error in either is exit 3
  // unless the command failed itself.
  return cli::FinishLogging(cli::FinishOutput(run()));
}
