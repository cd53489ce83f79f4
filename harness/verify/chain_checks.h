// The chain checks Alembic users know from pytest-alembic, for any source
// of revisions, reported per revision (`check chain`):
//   - one head (test_single_head_revision), and every revision reachable
//     from base;
//   - every downgrade present and not a no-op, judged twice: by its code
//     (a body of `pass`, or one that only raises) and by its effect (the
//     catalog and rows a downgrade leaves, when its upgrade changed them);
//   - the stairway (test_up_down_consistency, one revision at a time): up,
//     down, up again, on an empty database, the down giving back exactly
//     what was there before the up.
#pragma once

#include <string>
#include <vector>

#include "harness/checks/check_result.h"
#include "harness/pg/url.h"
#include "harness/verify/revision_source.h"

namespace harness::verify {

// The chain as written, branches and all.
struct ChainRevision {
  std::string id;
  std::vector<std::string> parents;  // none: it starts from base
  std::string file;
  // What its downgrade's code is: "body"; "pass" (nothing but pass, a
  // docstring or comments); "raises" (nothing but raise); "missing".
  std::string downgrade_code;
};

// The checks of the chain's shape (heads, reachability, downgrade code),
// and, when `linear` is given (the path to its one head), the stairway on
// the empty database at `empty_db`. Exit 1 material: a failed line names
// its revision. Interrupts throw.
checks::SuiteResult CheckChain(const std::vector<ChainRevision>& chain, RevisionSource* linear,
                               const pg::Url& empty_db);

}  // namespace harness::verify
