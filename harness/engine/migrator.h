// Runs a path through the revision chain: one transaction for the whole
// path, an advisory lock so two runners never apply twice, lock_timeout so
// a migration never queues forever behind live traffic, every step logged
// with its duration, alembic_version written as Alembic does.
#pragma once

#include <algorithm>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "harness/engine/revision_graph.h"
#include "harness/engine/version_table.h"
#include "harness/pg/connection.h"

namespace harness::engine {

enum class Direction { kUpgrade, kDowngrade };

struct StepTiming {
  std::string revision;
  Direction direction = Direction::kUpgrade;
  int index = 0;  // 1-based, among the steps the run takes (one transaction skips the online steps)
  int count = 0;
  size_t file_step = 0;  // 0-based, its place in the file's section
  // The transaction it ran in, counted from 1 in the run (an online step,
  // each of its statements committed on its own, counts as one): a lock it
  // took is held to the end of that transaction, not beyond.
  int transaction = 0;
  bool online = false;  // an `--! online_step:`, outside any transaction
  std::string name;
  double seconds = 0;  // on the clock: its SQL (and the commit, for the step that commits)
  // Of `seconds`, the time the step waited for a lock another session held
  // (autovacuum, a user's transaction), and who held it, as
  // LockWaitMonitor names them. lock_wait_known false: the wait could not
  // be watched (see the log), and `seconds` may include one.
  double lock_wait_seconds = 0;
  bool lock_wait_known = false;
  std::vector<std::string> waited_for;
  // What the step itself took: its time less its lock wait. What a
  // forecast may scale with the data; a wait depends on other sessions.
  double work_seconds() const { return std::max(0.0, seconds - lock_wait_seconds); }
};

struct RunReport {
  std::string from;  // revision names, "<base>" for base
  std::string to;
  bool noop = false;
  std::vector<StepTiming> steps;
  std::map<std::string, double> revision_seconds;
  double seconds = 0;  // the whole transaction, commit included
};

struct MigratorOptions {
  double lock_timeout_seconds = 10;  // 0: wait forever
  // A lock not granted within the timeout: the whole transaction again, from
  // scratch, this many more times (nothing was changed by the one that gave
  // up), after a pause that starts at `lock_retry_delay_seconds` and doubles
  // (at most 30 s); each attempt logged.
  int lock_retries = 0;
  double lock_retry_delay_seconds = 1;
  bool wait_for_migration_lock = true;  // false: fail at once when another runner holds it
  // Session settings for the migration transaction (SET LOCAL), e.g.
  // migration_harness.force_update_path=on, which the code-search migration
  // reads to take its slower UPDATE path.
  std::map<std::string, std::string> settings;
  // false: revisions, steps and the server's NOTICE lines are logged at
  // debug level (a setup run that is not what the user is watching).
  bool log_steps = true;
  // `upgrade --online`: a revision with `--! online_step:`s runs in phases
  // (engine/migration_file.h): the steps before its first online step in
  // one transaction, committed with a row of public.migration_harness_progress
  // ("phase 1 of N done"); each online step outside any transaction, the
  // progress recorded after it; the rest in a last transaction that writes
  // alembic_version and drops the progress table. Each phase's transaction
  // sets migration_harness.online=on, which a revision's steps read to leave
  // to the online steps what they would do under their locks. A run that
  // finds a revision in progress resumes it after its last committed phase;
  // a downgrade to its parent (or below) undoes it first. The migration lock
  // is the session's, held across the phases. false: everything in one
  // transaction, the online steps skipped, a revision in progress refused.
  bool online = false;
  // Watch each step's lock waits from a second connection
  // (LockWaitMonitor); false: lock_wait_known stays false.
  bool watch_lock_waits = true;
  // Called around each step, inside the migration's transaction: benchmarks
  // measure what a step touched, tests inject faults.
  std::function<void(const StepTiming&, pqxx::transaction_base&)> before_step;
  std::function<void(const StepTiming&, pqxx::transaction_base&)> after_step;
};

// A lock not granted within --lock-timeout (after every retry): nothing was
// changed. Exit 3.
class LockTimeoutError : public Error {
 public:
  explicit LockTimeoutError(const Error& e) : Error(e.code(), e.what(), e.hint()) {}
  LockTimeoutError(const Error& e, std::string what, std::string hint) : Error(e.code(), std::move(what), std::move(hint)) {}
};

// A revision's own statement failed on this database: an error of its SQL
// or of its data (a missing object, a violated constraint, a syntax
// error), as opposed to the server, the connection or another session (a
// lock timeout, a deadlock, a full disk, a cancelled query). The database
// cannot take the revision as written: exit 3 for the command that ran it,
// a verdict (NOT READY) for a rehearsal. Thrown by the migrator for this
// project's SQL files and by an Alembic run for a project's revisions.
class RevisionError : public Error {
 public:
  RevisionError(const Error& e, std::string revision, std::string sqlstate, std::string statement,
                std::string details = {})
      : Error(e.code(), e.what(), e.hint()),
        revision_(std::move(revision)),
        sqlstate_(std::move(sqlstate)),
        statement_(std::move(statement)),
        details_(std::move(details)) {}
  const std::string& revision() const noexcept { return revision_; }
  const std::string& sqlstate() const noexcept { return sqlstate_; }  // empty: not a server error
  // The statement that failed, as the server or the driver reports it; may be empty.
  const std::string& statement() const noexcept { return statement_; }
  // More of what the runner said (the last lines of Alembic's message).
  const std::string& details() const noexcept { return details_; }

 private:
  std::string revision_, sqlstate_, statement_, details_;
};

// Refuses (UsageError, exit 2, naming the revision, the step and its line)
// a step on the path from `from` to `to` whose SQL would end or replace the
// transaction the engine runs the whole path in (a COMMIT, a BEGIN, a SET
// TRANSACTION: engine/sql_statements.h): nothing of the path has run then.
void RefuseStepsThatLeaveTheTransaction(const RevisionGraph& graph, Direction direction, Position from,
                                        Position to);

// Whether a server error is the revision's own (RevisionError) rather than
// the environment's: not a connection, resource, operator, system or
// internal error, not a lock timeout, deadlock or serialization failure.
bool IsRevisionsOwnError(const std::string& sqlstate);

// At <base> the schema must be empty: throws UsageError (exit 2, with the
// stamp hint) when public has tables but alembic_version is empty
// (`version_table`) or missing.
void RefuseUnrecordedSchema(pqxx::transaction_base& tx, bool version_table);

// Arbitrary but fixed: the key of the advisory lock that serialises runners.
inline constexpr long long kMigrationLockKey = 0x6d6967726e6573LL;

class Migrator {
 public:
  Migrator(pg::Connection& conn, const RevisionGraph& graph, MigratorOptions options = {});

  // The recorded revision. Throws UsageError (exit 2) when alembic_version
  // holds a revision the chain does not know, or several rows.
  Position Current();
  // Same, but nullopt when there is no alembic_version table at all.
  std::optional<Position> CurrentIfVersioned();

  RunReport Upgrade(const std::string& target);
  RunReport Downgrade(const std::string& target);
  // Records `target` (head, base or an id) without running anything.
  std::string Stamp(const std::string& target);

 private:
  // Once, then again on a lock timeout while retries are left.
  RunReport Run(Direction direction, const std::string& target);
  RunReport RunOnce(Direction direction, const std::string& target);
  Position Interpret(const std::optional<std::vector<std::string>>& rows) const;
  // A phase of the last run had committed when it failed: where it stands.
  std::optional<OnlineProgress> left_in_progress_;

  pg::Connection& conn_;
  const RevisionGraph& graph_;
  MigratorOptions options_;
};

// The SQL a run from `from` to `to` would execute, for --sql; runs nothing.
std::string RenderSql(const RevisionGraph& graph, Direction direction, Position from,
                      Position to, double lock_timeout_seconds);

}  // namespace harness::engine
