#include "harness/checks/range.h"

#include <algorithm>
#include <fstream>
#include <optional>
#include <set>
#include <string_view>

#include <fmt/format.h>

#include "harness/engine/version_table.h"
#include "harness/error.h"
#include "harness/inspect/catalog.h"
#include "harness/join.h"
#include "harness/sys/files.h"

namespace harness::checks {


std::string RecordedRevision(pqxx::transaction_base& tx) {
  const auto rows = engine::ReadVersionRows(tx);
  if (!rows || rows->empty()) return "<none>";
  return Join(*rows);
}

std::optional<engine::Position> RecordedPosition(pqxx::transaction_base& tx, const engine::RevisionGraph& graph) {
  const auto rows = engine::ReadVersionRows(tx);
  if (!rows || rows->empty()) return 0;
  return graph.FindHeads(*rows);
}

std::string Range::Name() const { return graph->Name(from) + " -> " + graph->Name(to); }
std::string Range::FromName() const { return graph->Name(from); }

Range RangeTo(const engine::RevisionGraph& graph, const std::string& target) {
  const engine::Position to = graph.ResolveRevision(target);
  if (to == 0) throw UsageError("there is no revision at base: name one (an id, or head)");
  return {&graph, to - 1, to};
}

}  // namespace harness::checks
