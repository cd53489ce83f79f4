#include "harness/codesearch/rehearsal_data.h"

#include <fmt/format.h>

#include "harness/codesearch/generator.h"
#include "harness/codesearch/shapes.h"

namespace harness::codesearch {

bool RehearsesOnCodeSearchData(const engine::RevisionGraph& graph, engine::Position to) {
  return to >= 1 && graph.Name(to - 1) == kCodeSearchRevision;
}

std::string RehearsalData::Build(const pg::Url& url, verify::RevisionSource&, engine::Position) {
  shape_ = options_.shape;
  BuildAt005(url, options_.shape, chain_);
  return options_.shape == Shape::kProduction
             ? fmt::format("the production schema at {} (the service's own chain)", kCodeSearchRevision)
             : fmt::format("upgraded <base> -> {}", kCodeSearchRevision);
}

std::string RehearsalData::Fill(pg::Connection& conn, bool progress) {
  GeneratorOptions go;
  go.repositories = options_.repositories;
  go.chunks_per_repo = options_.chunks_per_repo;
  go.seed = options_.seed;
  go.progress = progress;
  auto rep = Generate(conn, go);
  return fmt::format("{} repositories, {}{} chunks, {} rows in the tables {} drops{} ({:.0f} rows/s, {:.0f} chunks/s)",
                     rep.repositories, rep.files ? fmt::format("{} code files, ", rep.files) : "", rep.chunks,
                     rep.other_rows, "002",
                     rep.kept_rows ? fmt::format(", {} in the other kept tables", rep.kept_rows) : "",
                     rep.rows_per_second, rep.chunks_per_second);
}

std::string RehearsalData::EmbeddedTarget(engine::Position, const engine::RevisionGraph&) const {
  return fmt::format("embedded cluster, generated data (seed {}, {} shape)", options_.seed, ShapeName(options_.shape));
}

void RehearsalData::Describe(pqxx::transaction_base& tx, report::Rehearsal& r) {
  // A schema of neither shape is refused (UsageError, exit 2); missing
  // core tables are the pre checks' to report.
  if (auto shape = DetectShape(tx)) {
    shape_ = *shape;
    r.shape = ShapeName(*shape);
    r.shape_detail = *shape == Shape::kProduction ? "code_chunks -> code_files -> repositories"
                                                  : "code_chunks -> repositories";
  }
  // Tables only: a view of that name would run its owner's code.
  for (auto [table, count] : {std::pair{"repositories", &repositories_}, std::pair{"code_chunks", &chunks_}})
    if (!tx.exec_params("SELECT 1 FROM pg_catalog.pg_class WHERE oid = "
                        "pg_catalog.to_regclass('public.' || $1) AND relkind IN ('r', 'p')",
                        table)
             .empty())
      *count = tx.exec1(std::string("SELECT count(*) FROM public.") + table)[0].as<long long>();
  r.counts = {{"repositories", repositories_}, {"code_chunks", chunks_}};
  r.data_line = fmt::format("{} repositories, {} code_chunks", repositories_, chunks_);
}

double RehearsalData::Size(const std::vector<inspect::TableReading>& recorded) const {
  for (const auto& t : recorded)
    if (t.table == inspect::TableId{"public", "code_chunks"}) return static_cast<double>(t.rows());
  return static_cast<double>(chunks_);
}

void RehearsalData::BuildEmpty(const pg::Url& url, verify::RevisionSource&, engine::Position) {
  BuildAt005(url, shape_, chain_);
}

std::string RehearsalData::VerdictDetail(const report::Rehearsal&) const {
  return fmt::format(" on {} repositories and {} chunks", repositories_, chunks_);
}

}  // namespace harness::codesearch
