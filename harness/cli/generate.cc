// migration-harness generate: realistic data at 005 (fixtures/generator).
#include "harness/cli/context.h"

namespace harness::cli {

Command setup_generate(CLI::App& app, const GlobalOptions& g) {
  CLI::App* sub = app.add_subcommand("generate", "Fill a database at 005 with generated data");
  return {sub, [&g] { (void)g; return 2; }};
}

}  // namespace harness::cli
