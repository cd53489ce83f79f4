// An Alembic project's revisions as a rehearsal's source of revisions
// (verify/revision_source.h): each revision run by the project's own
// Alembic (`command.upgrade` / `command.downgrade` through the driver), one
// revision at a time so that each is measured on its own:
//   - what it did (inspect/step_probe.h): the server read before it from the
//     tool's connection and, in the revision's own transaction, just before
//     its commit (the driver runs the probe there), else after it;
//   - the strongest lock it took and how long it was held, from pg_locks
//     polled every few milliseconds by a second connection;
//   - its statements and their times, from the server's own statement log,
//     where the tool started that server (the embedded cluster, a copy into
//     it); per revision elsewhere.
// A revision that fails (a Python exception, an SQL error) is an
// engine::RevisionError: a verdict. env.py failing before any revision ran
// is bad input (exit 2).
#pragma once

#include <filesystem>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "harness/alembic/project.h"
#include "harness/pg/statement_log.h"
#include "harness/verify/revision_source.h"

namespace harness::alembic {

class AlembicRevisions : public verify::RevisionSource {
 public:
  // The path to `target` (Project::PathTo).
  AlembicRevisions(Project& project, const std::string& target);

  const engine::RevisionGraph& graph() const override { return graph_; }
  std::string Describe() const override;
  // Runs env.py against the database (Alembic's `current`): the revision it
  // reports, placed on the path. Throws UsageError when env.py fails, or
  // keeps its revision anywhere but public.alembic_version.
  std::optional<engine::Position> Current(pg::Connection& conn) override;
  verify::RevisionRun Run(pg::Connection& conn, engine::Direction direction, engine::Position to,
                          verify::RunMode mode) override;
  void Stamp(pg::Connection& conn, engine::Position p) override;
  bool DeclaresIdempotent(engine::Position) const override { return false; }
  std::string TransactionNote(engine::Direction) const override { return "with the project's Alembic, a revision at a time"; }
  std::map<std::string, std::string> ClusterSettings() const override;
  void UseServerLog(const std::filesystem::path& log) override { server_log_ = log; }
  std::vector<std::string> Notes() const override;
  verify::DeployFacts Deploy() const override;

 private:
  struct Measure;
  // One Alembic command against `conn`'s database; measured when `measure`.
  RunAnswer Command(pg::Connection& conn, const std::string& op, const nlohmann::json& rev, Measure* measure);
  // The position of alembic_version's `heads` on the path (UsageError when none).
  engine::Position PositionOf(const std::vector<std::string>& heads) const;
  [[noreturn]] void Fail(const RunAnswer& answer, const std::string& revision, const pg::Url& url,
                         const std::vector<pg::LoggedStatement>& logged);

  Project& project_;
  engine::RevisionGraph graph_;
  std::optional<std::filesystem::path> server_log_;
  bool env_checked_ = false;
  // What the report says: the deploy's hold, how statements were measured.
  std::string deploy_note_;
  bool statements_logged_ = false;
  nlohmann::json options_;  // what env.py gave context.configure()
  std::string lock_timeout_;  // the connection's, before a measured upgrade's commit
};

}  // namespace harness::alembic
