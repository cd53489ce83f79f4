// Data for any schema: the rehearsal starts at the database's revision and,
// without a database, fills an embedded one at the target's parent from
// its catalog (fixtures/any_schema.h: every table of every user schema);
// the forecast scales the rows of every table.
#pragma once

#include <cstdint>
#include <map>
#include <string>

#include "harness/verify/data_source.h"

namespace harness::verify {

class CatalogData : public DataSource {
 public:
  CatalogData(long long rows_per_table, std::map<std::string, long long> table_rows, std::uint64_t seed)
      : rows_per_table_(rows_per_table), table_rows_(std::move(table_rows)), seed_(seed) {}

  engine::Position From(engine::Position current, engine::Position) const override { return current; }
  std::string Build(const pg::Url& url, RevisionSource& revisions, engine::Position from) override;
  std::string FillPhase() const override { return "generate data from the catalog"; }
  std::string Fill(pg::Connection& conn, bool progress) override;
  std::string EmbeddedTarget(engine::Position from, const engine::RevisionGraph& graph) const override;
  void Describe(pqxx::transaction_base&, report::Rehearsal&) override {}
  double Size(const std::vector<inspect::TableReading>& recorded) const override;
  std::string Unit() const override { return "rows"; }
  void BuildEmpty(const pg::Url& url, RevisionSource& revisions, engine::Position from) override;
  std::string VerdictDetail(const report::Rehearsal&) const override { return {}; }

 private:
  long long rows_per_table_;
  std::map<std::string, long long> table_rows_;
  std::uint64_t seed_;
};

}  // namespace harness::verify
