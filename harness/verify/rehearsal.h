// `verify`: the rehearsal of a revision range, whatever its revisions are
// written in (revision_source.h) and wherever its data comes from
// (data_source.h), on a copy of a database (a scratch clone on its own
// server, a copy into an embedded cluster, or the database itself when
// asked) or on an embedded cluster with generated data. One pipeline of
// timed phases: record, pre checks, measured upgrade, what it discarded,
// post checks, idempotent re-run, measured downgrade, the rollback proof
// (checks/suites.h: the catalog of every user schema and the rows of every
// kept table over every column), final upgrade, forecast, verdict.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>

#include "harness/engine/migrator.h"
#include "harness/pg/url.h"
#include "harness/report/rehearsal_report.h"
#include "harness/verify/data_source.h"
#include "harness/verify/revision_source.h"

namespace harness::verify {

struct VerifyOptions {
  std::string target = "head";    // the revision rehearsed: an id or head
  std::optional<pg::Url> source;  // nullopt: an embedded cluster with generated data
  bool in_place = false;          // work on `source` itself
  bool into_embedded = false;     // copy `source` into the embedded cluster (pg_dump/pg_restore)
  // The embedded cluster's server programs (--pg-bindir); empty: $HARNESS_PG_BINDIR, else the
  // newest /usr/lib/postgresql/*/bin (pg::FindServerBinDir).
  std::string pg_bindir;
  engine::MigratorOptions migrator;  // the lock timeout of the tool's own connections' waits
  bool progress = false;             // a generator's progress bar
  // Forecast the upgrade time at this many of the data source's unit; 0: ten times the data.
  long long forecast_rows = 0;
  // Production's rows of a table (TableId key: "events", "audit.entries"),
  // which the lock findings size it at (lock_review.h); the other tables
  // by `forecast_rows`'s factor.
  std::map<std::string, long long> table_rows;
  // A lock that blocks reads or writes forecast to be held longer than
  // this (seconds) makes the verdict NOT READY; 0: off.
  double max_lock_hold = 0;
  // The queue behind the upgrade's locks, rehearsed (traffic.h): a reader
  // holding its locks this long into the upgrade, steady readers and
  // writers behind it. Not with `in_place`.
  bool with_traffic = false;
  double traffic_hold_seconds = 2;
  // Servers older than this are refused (server_version_num).
  int minimum_server_version = 140000;
  // Called as each phase starts and ends (a terminal's status line).
  std::function<void(const std::string& phase)> on_phase_start;
  std::function<void()> on_phase_end;
};

using report::Phase;
using report::Rehearsal;

// Runs the rehearsal. A failed check, a refusal of the data and a revision
// that fails on the copy are verdicts (exit 1), not throws. Throws
// harness::Error when it cannot judge: bad input (2), the server or the
// disk (3), an interrupt (130); `partial` (if given) then receives the
// rehearsal so far: the failed phase, and a verdict with the error's code.
Rehearsal Run(const VerifyOptions& options, RevisionSource& revisions, DataSource& data,
              Rehearsal* partial = nullptr);

}  // namespace harness::verify
