#include "harness/verify/catalog_data.h"

#include <fmt/format.h>

#include "fixtures/any_schema.h"
#include "harness/verify/revision_source.h"

namespace harness::verify {

std::string CatalogData::Build(const pg::Url& url, RevisionSource& revisions, engine::Position from) {
  BuildEmpty(url, revisions, from);
  return fmt::format("upgraded <base> -> {} with {}", revisions.graph().Name(from), revisions.Describe());
}

void CatalogData::BuildEmpty(const pg::Url& url, RevisionSource& revisions, engine::Position from) {
  if (from == 0) return;
  pg::Connection conn(url);
  revisions.Run(conn, engine::Direction::kUpgrade, from, RunMode::kQuiet);
}

std::string CatalogData::Fill(pg::Connection& conn, bool) {
  fixtures::AnySchemaOptions ao;
  ao.rows_per_table = rows_per_table_;
  ao.rows = table_rows_;
  ao.seed = seed_;
  auto rep = fixtures::GenerateAnySchema(conn, ao);
  return fmt::format("{} rows in {} tables (seed {}, {} per table asked)", rep.Rows(), rep.tables.size(), seed_,
                     rows_per_table_);
}

std::string CatalogData::EmbeddedTarget(engine::Position from, const engine::RevisionGraph& graph) const {
  return fmt::format("embedded cluster, data generated from the catalog at {} (seed {})", graph.Name(from), seed_);
}

double CatalogData::Size(const std::vector<inspect::TableReading>& recorded) const {
  long long rows = 0;
  for (const auto& t : recorded) rows += t.rows();
  return static_cast<double>(rows);
}

}  // namespace harness::verify
