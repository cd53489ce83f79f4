// `verify --target REV`: the rehearsal of any revision range of any chain,
// with checks that need no code of the revision's own. From the database's
// revision (a scratch clone of it, or in place) or, with no database, from
// the target's parent on an embedded cluster filled by the catalog-driven
// generator, up to REV and back:
//   - what each step did to each table, measured on the server: catalog
//     only, a table rewrite (its relfilenode changed), a full scan, an
//     index built; the strongest lock it took and how long that was held;
//   - the rows the upgrade discards: tables and columns it drops, counted;
//   - the rollback: the catalog equal to before (exact), and the rows of
//     every table it kept equal over the columns present before and after.
// READY when the rollback is exact and the rows came back (but for the
// discarded ones, named); NOT READY naming the difference otherwise.
#pragma once

#include <string>

#include "harness/verify/effects.h"
#include "harness/verify/rehearsal.h"

namespace harness::verify {

struct RangeOptions {
  std::string target;  // a revision id, or head
  long long rows_per_table = 1000;  // embedded run: rows the generator writes per table
};

// Throws like Run (rehearsal.h): bad input 2, database errors 3, interrupts 130.
Rehearsal RunRange(const VerifyOptions& options, const RangeOptions& range,
                   const engine::RevisionGraph& graph, Rehearsal* partial = nullptr);

}  // namespace harness::verify
