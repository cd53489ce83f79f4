// The locks an upgrade holds, judged at production size: for each step of
// any revision (SQL or Alembic), the lock it took, how long the deploy
// holds it, and what the step's work makes of that hold when its tables
// have the rows production has. Measured on the server (effects.h: what
// each step did, the locks its transaction holds after it); sized table by
// table: on a copy of production the copy's own rows, on generated data
// each table's rows scaled to production (--table-rows T=N, or
// --forecast-rows: every table by the same factor). A step's time at that
// size follows the model its work calls for (stats/model_fit.h: constant
// for catalog-only work, n log n for an index build, a line for the rest).
//
// A finding names the step, the table and its rows, the forecast hold and
// the safer form (docs/migrations.md#locks-at-production-size maps them to squawk's
// and strong_migrations' rules):
//   rewrite                 a table rewrite under ACCESS EXCLUSIVE (a type
//                           change, a volatile default, a stored
//                           generated column)
//   validated-check, validated-foreign-key
//                           added validated: a scan under the lock
//   set-not-null            SET NOT NULL by a scan
//   index-not-concurrent    CREATE INDEX without CONCURRENTLY (SHARE
//                           blocks writes)
//   unique-in-place         a unique or primary key built in place
//   backfill                every row of a table updated in one
//                           transaction (writers of those rows wait)
//   work-after-lock         more work after ACCESS EXCLUSIVE in the same
//                           transaction
//   no-lock-timeout         the deploy waits for its locks without limit
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "harness/checks/check_result.h"
#include "harness/engine/migrator.h"
#include "harness/verify/effects.h"
#include "harness/verify/revision_source.h"

namespace harness::verify {

// Each table's rows here and at production size.
struct TableSizes {
  std::map<std::string, long long> here, then;  // TableId keys
  bool scaled = false;  // false: a copy at its own size, the figures are production's
  std::string basis;    // "this copy's own rows", "10x the generated rows (--forecast-rows)"
  long long Then(const std::string& table) const;
  long long Here(const std::string& table) const;
};

// Fills each effect's `under` and `hold_parts` (effects.h): the locks a step
// worked under that an earlier step of its transaction took, and which steps
// make a hold long. Measured times, the rehearsal's size.
void ChargeHolds(std::vector<StepEffect>& up, bool one_transaction);

// One lock the deploy holds, at production size.
struct LockHold {
  std::string table, mode;
  std::string taken_by;  // the first step whose lock on it blocked writes: "t5 up 1/1 Widen events.weight"
  // When a later step made it ACCESS EXCLUSIVE: "AccessExclusiveLock from
  // t6 up 1/1 ... (0.300s at production size)"; else empty.
  std::string stronger_from;
  long long rows = 0;    // the table's, at production size
  double measured = 0;   // held here, seconds
  double forecast = 0;   // held at production size
  std::string longest_part;  // the step whose work makes most of it; empty: the taking step alone
  bool blocks_reads = false;  // ACCESS EXCLUSIVE; else writes only
};

struct LockReview {
  checks::SuiteResult suite{"locks at production size", {}};
  std::vector<LockHold> holds;  // those that block reads or writes, longest first
  std::vector<std::string> over;  // holds over `max_hold`, one line each
};

// `up`: the measured upgrade; `again`: a second upgrade's steps on the same
// data (the final one); `empty`: the upgrade of an empty database at the
// range's start (each step's fixed cost), when there is one. `max_hold` >
// 0: a hold forecast over it is a failed line of the suite, and said in
// `over`.
LockReview ReviewLocks(const std::vector<StepEffect>& up, const std::vector<engine::StepTiming>& again,
                       const std::optional<std::vector<engine::StepTiming>>& empty, const TableSizes& sizes,
                       const DeployFacts& deploy, double max_hold);

}  // namespace harness::verify
