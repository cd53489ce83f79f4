// The seam between the rehearsal and where its data comes from, and what
// it knows of that data: the catalog generator (catalog_data.h: any
// schema, its rows counted in every table), or a generator that knows one
// schema (harness/codesearch/rehearsal_data.h: realistic data at the
// revision below the code-search migration, counted in chunks).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <pqxx/pqxx>

#include "harness/engine/revision_graph.h"
#include "harness/inspect/table_reading.h"
#include "harness/pg/connection.h"
#include "harness/report/rehearsal_report.h"

namespace harness::verify {

class RevisionSource;

class DataSource {
 public:
  virtual ~DataSource() = default;

  // Where the rehearsal starts for a database at `current`, to reach `to`:
  // the database's own revision (every revision up to `to` rehearsed), or
  // `to`'s parent (a database below it brought there first, unrehearsed).
  virtual engine::Position From(engine::Position current, engine::Position to) const = 0;

  // The embedded run, without a database: builds the schema at `from` in
  // the empty database at `url` (the phase "build a database at FROM"),
  // then fills it (the phase FillPhase()). Each returns its detail line.
  virtual std::string Build(const pg::Url& url, RevisionSource& revisions, engine::Position from) = 0;
  virtual std::string FillPhase() const = 0;
  virtual std::string Fill(pg::Connection& conn, bool progress) = 0;
  // Whether Fill draws a progress bar of its own (no status line then).
  virtual bool DrawsProgress() const { return false; }
  // The report's target line for the embedded run.
  virtual std::string EmbeddedTarget(engine::Position from, const engine::RevisionGraph& graph) const = 0;

  // What the data is, read once connected at `from`: the report's shape
  // and counts. Throws UsageError for a schema it does not know (BLOCKED,
  // exit 2).
  virtual void Describe(pqxx::transaction_base& tx, report::Rehearsal& r) = 0;

  // The size the forecast scales from (the unit's count in `recorded`).
  virtual double Size(const std::vector<inspect::TableReading>& recorded) const = 0;
  virtual std::string Unit() const = 0;
  // Builds the schema at `from` in the empty database at `url`, with no
  // rows: the forecast's measure of each step's fixed cost.
  virtual void BuildEmpty(const pg::Url& url, RevisionSource& revisions, engine::Position from) = 0;
  // " on 100 repositories and 10000 chunks" for a READY verdict, or "".
  virtual std::string VerdictDetail(const report::Rehearsal& r) const = 0;
};

}  // namespace harness::verify
