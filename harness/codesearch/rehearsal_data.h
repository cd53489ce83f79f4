// The code-search data for a rehearsal of migration 002, the revision above
// kCodeSearchRevision (shapes.h): the schema at 005 in either shape (the
// quickstart's chain, or the production schema compiled in), realistic
// data from the generator (generator.h), the shape detected on a copy, and
// a forecast in chunks. Any other revision is rehearsed on data from the
// catalog (verify/catalog_data.h).
#pragma once

#include <cstdint>

#include "harness/codesearch/shape.h"
#include "harness/engine/revision_graph.h"
#include "harness/verify/data_source.h"

namespace harness::codesearch {

// Whether `to` is the revision this data is for: the one right above 005.
bool RehearsesOnCodeSearchData(const engine::RevisionGraph& graph, engine::Position to);

class RehearsalData : public verify::DataSource {
 public:
  struct Options {
    Shape shape = Shape::kQuickstart;  // the embedded run's (a copy's own is detected)
    int repositories = 100;
    int chunks_per_repo = 100;
    std::uint64_t seed = 42;
  };
  // `chain`: this project's SQL chain, which builds the quickstart shape.
  RehearsalData(Options options, const engine::RevisionGraph& chain) : options_(options), chain_(chain) {}

  // Always from the target's parent: 002's rehearsal is 005 -> 002.
  engine::Position From(engine::Position, engine::Position to) const override { return to - 1; }
  std::string Build(const pg::Url& url, verify::RevisionSource& revisions, engine::Position from) override;
  std::string FillPhase() const override { return "generate data"; }
  std::string Fill(pg::Connection& conn, bool progress) override;
  bool DrawsProgress() const override { return true; }
  std::string EmbeddedTarget(engine::Position from, const engine::RevisionGraph& graph) const override;
  void Describe(pqxx::transaction_base& tx, report::Rehearsal& r) override;
  double Size(const std::vector<inspect::TableReading>& recorded) const override;
  std::string Unit() const override { return "chunks"; }
  void BuildEmpty(const pg::Url& url, verify::RevisionSource& revisions, engine::Position from) override;
  std::string VerdictDetail(const report::Rehearsal& r) const override;

 private:
  Options options_;
  const engine::RevisionGraph& chain_;
  Shape shape_ = Shape::kQuickstart;  // the database's, once described
  long long repositories_ = 0, chunks_ = 0;
};

}  // namespace harness::codesearch
