// migration-harness check chain [--alembic PATH]: the chain checks of this
// project's SQL files or of an Alembic project (verify/chain_checks.h), on
// an empty database of an embedded cluster.
#pragma once

#include <string>

#include "harness/alembic/project.h"
#include "harness/cli/context.h"

namespace harness::cli {

// Prints the suite (text, or JSON); writes JUnit to `junit` when given.
// 0 when every check passed; 1 when one failed, naming its revision.
int RunCheckChain(const GlobalOptions& g, const alembic::ProjectOptions& alembic, bool json,
                  const std::string& junit);

}  // namespace harness::cli
