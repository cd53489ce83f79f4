// `verify`: the pre-deployment rehearsal of migration 002 on a production
// copy (cloned on its server into a scratch database, or in place when
// asked) or on an embedded cluster with generated data. Every phase timed;
// the verdict is ready / blocked / failed.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "harness/report/rehearsal_report.h"
#include "harness/engine/migrator.h"
#include "harness/engine/revision_graph.h"
#include "harness/codesearch/shape.h"
#include "harness/pg/url.h"

namespace harness::verify {

struct VerifyOptions {
  // The revision rehearsed (Run: the one above the code-search data's,
  // codesearch::kCodeSearchRevision): an id or head.
  std::string target = "head";
  std::optional<pg::Url> source;  // nullopt: embedded cluster with generated data
  bool in_place = false;          // work on `source` itself
  bool into_embedded = false;     // copy `source` into the embedded cluster (pg_dump/pg_restore)
  // The embedded cluster's server programs (--pg-bindir); empty: $HARNESS_PG_BINDIR, else the
  // newest /usr/lib/postgresql/*/bin (pg::FindServerBinDir).
  std::string pg_bindir;
  // Embedded run: the schema built at 005 (a source database's own shape
  // is detected).
  codesearch::Shape shape = codesearch::Shape::kQuickstart;
  int repositories = 100;
  int chunks_per_repo = 100;
  std::uint64_t seed = 42;
  engine::MigratorOptions migrator;
  bool progress = false;  // the generator's progress bar
  // Forecast the upgrade time at this many chunks; 0: ten times the data.
  long long forecast_rows = 0;
  // Servers older than this are refused (server_version_num).
  int minimum_server_version = 140000;
  // Called as each phase starts and ends (a terminal's status line).
  std::function<void(const std::string& phase)> on_phase_start;
  std::function<void()> on_phase_end;
};

using report::Phase;
using report::Rehearsal;

// Runs the rehearsal. Throws harness::Error for bad input (2), database
// errors (3) and interrupts (130); a failed check or a refusal is a verdict
// (exit 1), not a throw. When it throws, `partial` (if given) receives the
// rehearsal so far: the failed phase, and a verdict with the error's code.
Rehearsal Run(const VerifyOptions& options, const engine::RevisionGraph& graph,
              Rehearsal* partial = nullptr);

}  // namespace harness::verify
