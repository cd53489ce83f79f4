#include "harness/checks/range.h"

#include <algorithm>
#include <fstream>
#include <optional>
#include <set>
#include <string_view>

#include <fmt/format.h>

#include "harness/error.h"
#include "harness/inspect/catalog.h"
#include "harness/join.h"
#include "harness/sys/files.h"

namespace harness::checks {

namespace {
// The rows of alembic_version, sorted; nullopt without the table.
std::optional<std::vector<std::string>> VersionRows(pqxx::transaction_base& tx) {
  if (tx.exec("SELECT pg_catalog.to_regclass('public.alembic_version')")[0][0].is_null()) return std::nullopt;
  std::vector<std::string> rows;
  for (const auto& row : tx.exec("SELECT version_num FROM public.alembic_version ORDER BY 1")) {
    if (row[0].is_null())
      throw UsageError("alembic_version holds a NULL version_num, which no tool writes",
                       "find the real state of the schema, then record it with: "
                       "migration-harness stamp REVISION");
    rows.push_back(row[0].as<std::string>());
  }
  return rows;
}
}  // namespace

std::string RecordedRevision(pqxx::transaction_base& tx) {
  const auto rows = VersionRows(tx);
  if (!rows || rows->empty()) return "<none>";
  return Join(*rows);
}

std::optional<engine::Position> RecordedPosition(pqxx::transaction_base& tx, const engine::RevisionGraph& graph) {
  const auto rows = VersionRows(tx);
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
