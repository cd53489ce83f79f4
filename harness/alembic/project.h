// An Alembic project, as its users run it: its alembic.ini, the Python
// that imports its alembic, and its revisions, read and run by the
// project's own Alembic through a small driver of ours (driver.py, compiled
// in), started once in the folder of the ini (prepend_sys_path and
// script_location resolve as they do for the project) and spoken to line
// by line. The URL a run needs reaches env.py as Alembic's sqlalchemy.url
// and as an environment variable (DATABASE_URL, or --alembic-url-env), in
// SQLAlchemy's form with the project's driver; never on a command line.
#pragma once

#include <chrono>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "harness/engine/revision_graph.h"
#include "harness/sys/process.h"
#include "harness/pg/url.h"

namespace harness::alembic {

struct ProjectOptions {
  std::string path;     // the alembic.ini, or the folder holding it
  std::string python;   // --alembic-python; empty: the one that imports alembic
  std::string driver;   // asyncpg or psycopg2; empty: the ini's sqlalchemy.url's, else psycopg2
  std::string url_env = "DATABASE_URL";
};

// A revision as Alembic knows it.
struct Revision {
  std::string id;
  std::vector<std::string> parents;  // down_revision: none (base), one, or several (a merge)
  std::string message;
  std::string file;  // relative to the ini's folder
  // What its downgrade()'s code is: "body", "pass" (only pass, a docstring
  // or ...), "raises" (only raise statements), "missing", "unreadable".
  std::string downgrade_code;
};

// What a driver's run said: ok, or what failed and where.
struct RunAnswer {
  bool ok = false;
  double seconds = 0;  // the command's own time (env.py, connecting, the migration, the commit)
  std::vector<int> pids;
  std::vector<std::string> heads;
  // The probe's rows, read in the migration's transaction before its commit.
  std::optional<std::vector<std::vector<std::string>>> probe;
  std::string probe_error;
  // The connection's lock_timeout before the commit ("0", "5s"); empty when
  // not read.
  std::string lock_timeout;
  nlohmann::json options;  // what env.py gave context.configure()
  // A failure: "revision" (in a revision), "env" (env.py, before any
  // revision ran), "driver" (the DBAPI driver is missing), "connect".
  std::string kind, type, message, sqlstate, statement;
  std::vector<std::string> traceback;
  std::string stderr_text;  // what Alembic and the project wrote meanwhile (redacted)
};

// The project's Python running driver.py, spoken to line by line.
class Driver {
 public:
  Driver(const std::filesystem::path& python, const std::filesystem::path& ini);
  // Ready: the driver imported alembic. Else why not (its first line).
  bool ready() const { return ready_; }
  const std::string& not_ready() const { return not_ready_; }
  double startup_seconds() const { return startup_; }
  const nlohmann::json& versions() const { return versions_; }
  pid_t pid() const { return child_.pid(); }

  // Sends `request`, reads lines until its answer; `on_session` is told of
  // each backend pid a run begins a transaction on; `tick` runs while it
  // waits (lock polling, interrupts; it may throw). Throws DatabaseError
  // when the driver dies.
  nlohmann::json Request(const nlohmann::json& request, const std::function<void(int pid)>& on_session,
                         const std::function<void()>& tick);
  std::string TakeErr() { return child_.TakeErr(); }
  void Stop() { child_.Stop(); }

 private:
  std::chrono::steady_clock::time_point spawned_;
  sys::LineChild child_;
  bool ready_ = false;
  std::string not_ready_;
  double startup_ = 0;
  nlohmann::json versions_;
};

class Project {
 public:
  // Finds the ini (exit 2 when there is none, naming what was looked
  // for), the Python that imports alembic and has the driver's module,
  // and reads the revisions. Throws UsageError (exit 2, one line) for a
  // missing Alembic, an ini without script_location, a revision file that
  // does not parse, a down_revision that names nothing.
  static std::unique_ptr<Project> Open(const ProjectOptions& options);

  const std::filesystem::path& ini() const { return ini_; }
  const std::filesystem::path& python() const { return python_; }
  const std::string& driver_module() const { return driver_module_; }
  const std::string& url_env() const { return options_.url_env; }
  const std::vector<Revision>& revisions() const { return revisions_; }
  const std::vector<std::string>& heads() const { return heads_; }
  const Revision* Find(const std::string& id) const;
  Driver& driver() { return *driver_; }

  // The revisions from base to `target` (an id, a unique prefix of one, or
  // head when there is one head; two heads are refused naming both), in an
  // order Alembic applies them, as a chain of files without steps: what the
  // checks and the reports name. For a merge, both branches come first.
  engine::RevisionGraph PathTo(const std::string& target) const;
  // The URL env.py gets for `url`: SQLAlchemy's form with the driver.
  // Throws UsageError for a setting the driver cannot take.
  std::string SqlAlchemyUrl(const pg::Url& url) const;
  // `text` with the password of `url` in any form it took in a URL shown
  // as "****".
  static std::string Redact(const std::string& text, const pg::Url& url);

 private:
  ProjectOptions options_;
  std::filesystem::path ini_, python_;
  std::string driver_module_;
  std::vector<Revision> revisions_;
  std::vector<std::string> heads_;
  std::unique_ptr<Driver> driver_;
};

}  // namespace harness::alembic
