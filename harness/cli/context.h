// What every subcommand shares: the global options, logging, loading the
// chain, connecting. Each subcommand lives in its own file with an options
// struct and a setup_X() that declares its flags and returns a Command whose
// `run` does the work.
#pragma once

#include <functional>
#include <initializer_list>
#include <memory>
#include <map>
#include <string>
#include <utility>
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
  double lock_timeout_seconds = 10;
  bool no_wait = false;
  std::string migrations_dir;
  std::string pg_bindir;  // the embedded cluster's server programs; empty: pg::FindServerBinDir
};

// A subcommand: its CLI11 node and what to run when it was chosen.
struct Command {
  CLI::App* app = nullptr;
  std::function<int()> run;
};

// The log on the terminal and, with --log-file, in a file written through
// sys::AtomicFile (a temporary file renamed over F when the command ends).
// A log file that cannot be created is exit 2, before any work.
void SetupLogging(const GlobalOptions& g);
// Ends the log file (fsync, close, rename); main calls it once after the
// command, also when it threw. A write error anywhere in the log is printed
// and makes the exit code 3 when `rc` is 0; otherwise `rc` stays.
int FinishLogging(int rc) noexcept;

// Standard output through a buffer that keeps the first write error (a full
// disk, a closed pipe: SIGPIPE is ignored, so that is EPIPE, not death).
// main installs it before the command line is parsed.
void InstallCheckedOutput();
// What the database is like now, said with the error when standard output
// fails after the command changed it ("the database is at 002").
void SayIfOutputFails(std::string outcome);
// Flushes standard output and standard error; main calls it once after the
// command. A write that failed is said on stderr ("error: cannot write
// standard output: No space left on device") as coreutils do, and makes the
// exit code 3 when `rc` is 0; otherwise `rc` stays.
int FinishOutput(int rc) noexcept;
// "error: MESSAGE" and "hint: HINT" on stderr, under the rule for untrusted
// text (an error may quote a value, a name or a server message).
void PrintError(const std::string& message, const std::string& hint);

// The files a command writes (--save-baseline, --junit, --report-json), as
// {what, path}: before any work, a destination that cannot be written is
// exit 2 (sys::CheckWritable); empty paths are skipped.
void CheckOutputFiles(std::initializer_list<std::pair<std::string, std::string>> files);
// After the run: runs `write` (sys::WriteFileAtomically and the like); an
// Error it throws is printed on stderr ("error: cannot write the WHAT PATH:
// REASON") and gives false, so the run's own outcome still stands.
bool WriteOutput(const std::string& what, const std::function<void()>& write);
// The exit code of a run that ended with `rc`: its own code when it failed,
// else 3 (an I/O error) when a file could not be written.
int ExitCodeAfterWrites(int rc, bool written);
engine::RevisionGraph LoadGraph(const GlobalOptions& g);
// --table-rows TABLE=N, repeated: table -> N (UsageError for anything else).
std::map<std::string, long long> ParseTableRows(const std::vector<std::string>& values);

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
Command setup_restore_dropped(CLI::App& app, const GlobalOptions& g);

// upgrade's and downgrade's --lock-retries N (MigratorOptions::lock_retries).
void AddLockRetriesOption(CLI::App* sub, int& lock_retries);

// Shared by upgrade and downgrade; `lock_retries`: MigratorOptions'.
int RunMigrationCommand(const GlobalOptions& g, engine::Direction direction,
                        const std::string& target, bool sql_only, int lock_retries = 0,
                        bool online = false);

}  // namespace harness::cli
