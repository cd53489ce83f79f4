// This project's SQL revision files as a rehearsal's source of revisions:
// run by the engine (engine/migrator.h), a whole path in one transaction,
// each step measured inside it (inspect/step_probe.h, before and after the
// step, in the migration's own transaction).
#pragma once

#include "harness/engine/migrator.h"
#include "harness/engine/revision_graph.h"
#include "harness/verify/revision_source.h"

namespace harness::verify {

class SqlRevisions : public RevisionSource {
 public:
  // `options`: the runs' lock timeout, settings and hooks; `where`: the
  // directory, for Describe().
  SqlRevisions(const engine::RevisionGraph& graph, engine::MigratorOptions options, std::string where);

  const engine::RevisionGraph& graph() const override { return graph_; }
  std::string Describe() const override;
  std::optional<engine::Position> Current(pg::Connection& conn) override;
  RevisionRun Run(pg::Connection& conn, engine::Direction direction, engine::Position to,
                  RunMode mode) override;
  void Stamp(pg::Connection& conn, engine::Position p) override;
  bool DeclaresIdempotent(engine::Position p) const override { return graph_.at(p).idempotent; }
  std::string TransactionNote(engine::Direction direction) const override {
    return options_.online && direction == engine::Direction::kUpgrade ? "online, in phases" : "in one transaction";
  }
  DeployFacts Deploy() const override;

 private:
  // A step's SQL as its file has it.
  std::string StepSql(const engine::StepTiming& st) const;

  const engine::RevisionGraph& graph_;
  engine::MigratorOptions options_;
  std::string where_;
};

}  // namespace harness::verify
