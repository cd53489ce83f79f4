// A revision range of the chain, and where alembic_version puts a database
// on it: what the check suites and baselines are taken over.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <pqxx/pqxx>

#include "harness/engine/revision_graph.h"

namespace harness::checks {

// The revisions above `from` up to `to` (positions in `graph`).
struct Range {
  const engine::RevisionGraph* graph = nullptr;
  engine::Position from = 0, to = 0;
  // "t1 -> t2"
  std::string Name() const;
  // The revision the range starts from ("t1"; "<base>").
  std::string FromName() const;
};
// The target's parent up to the target; `target` is an id or head (throws
// UsageError for base or an unknown id).
Range RangeTo(const engine::RevisionGraph& graph, const std::string& target);

// The revision recorded in alembic_version: "t1", "<none>", or, where an
// Alembic branch leaves several heads, "b, c". A NULL version_num is
// refused, as the engine refuses it (UsageError).
std::string RecordedRevision(pqxx::transaction_base& tx);
// Where alembic_version puts the database on `graph`'s chain: 0 for none,
// nullopt for rows no position of it has.
std::optional<engine::Position> RecordedPosition(pqxx::transaction_base& tx, const engine::RevisionGraph& graph);

}  // namespace harness::checks
