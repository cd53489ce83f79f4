// The seam between the rehearsal and where its revisions come from: this
// project's SQL files, run by the engine (sql_revisions.h), or an Alembic
// project, run by its own Alembic one revision at a time (harness/alembic/).
// The rehearsal knows phases, not sources: it asks a source for the chain,
// the database's revision, and measured or quiet runs up and down.
#pragma once

#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "harness/engine/migrator.h"
#include "harness/engine/revision_graph.h"
#include "harness/pg/connection.h"
#include "harness/verify/effects.h"

namespace harness::verify {

// One run of a path of revisions.
struct RevisionRun {
  engine::RunReport report;         // each step's time (an Alembic run's steps are its revisions)
  std::vector<StepEffect> effects;  // what each step did, when measured
};

// How the deploy of the range holds its locks, as far as the source can
// tell (the lock findings, lock_review.h).
struct DeployFacts {
  // Every revision of the range in one transaction: a lock an early one
  // takes is held across the later ones.
  bool one_transaction = true;
  // The rehearsal's own runs: the whole range in one transaction (the
  // engine), or a revision at a time (an Alembic project's).
  bool rehearsed_in_one_transaction = true;
  // `upgrade --online`: a revision with online steps runs in phases, a
  // lock held to the end of its phase's transaction.
  bool online = false;
  // The lock_timeout the deploy runs with, as the server shows it ("0":
  // none, "10s"); empty: not known. `lock_timeout_from` says whose it is.
  std::string lock_timeout, lock_timeout_from;
};

enum class RunMode {
  kMeasured,  // each step's effect read from the server, logged as it runs
  kQuiet,     // a run the report sums up in a line: its log at debug level
  // Quiet, with each step's effect read where the source can do that in
  // its own transaction (the engine's; an Alembic run's are not read).
  kProbed,
};

class RevisionSource {
 public:
  virtual ~RevisionSource() = default;

  // The revisions in the order they apply, base first: a chain, or for an
  // Alembic project with branches the path to the target. What the checks
  // and the reports name.
  virtual const engine::RevisionGraph& graph() const = 0;
  // "the SQL files of DIR", "the Alembic project DIR/alembic.ini".
  virtual std::string Describe() const = 0;
  // The database's revision; nullopt when it has no alembic_version table.
  // Throws UsageError for one the chain does not know.
  virtual std::optional<engine::Position> Current(pg::Connection& conn) = 0;
  // Upgrades or downgrades the database `conn` is connected to, from its
  // revision to `to`. Throws engine::RevisionError when a revision's own
  // code or statement fails, harness::Error otherwise.
  virtual RevisionRun Run(pg::Connection& conn, engine::Direction direction, engine::Position to,
                          RunMode mode) = 0;
  // Records `p` without running anything.
  virtual void Stamp(pg::Connection& conn, engine::Position p) = 0;
  // Whether the revision says that a second run on its own result changes
  // nothing (`--! idempotent`): the rehearsal then proves it.
  virtual bool DeclaresIdempotent(engine::Position p) const = 0;
  // How a run holds its locks: "in one transaction" (the engine's), or how
  // the project's own runner does it. Said in the report.
  virtual std::string TransactionNote(engine::Direction direction) const = 0;

  // Settings this source wants on an embedded cluster the rehearsal starts
  // (a statement log, say), and that cluster's server log once it runs:
  // the one server whose log the tool can read.
  virtual std::map<std::string, std::string> ClusterSettings() const { return {}; }
  virtual void UseServerLog(const std::filesystem::path& /*log*/) {}
  // Known after a measured upgrade.
  virtual DeployFacts Deploy() const { return {}; }
  // What the report should say of how the revisions ran (their runner,
  // what could be measured and what not).
  virtual std::vector<std::string> Notes() const { return {}; }
};

}  // namespace harness::verify
