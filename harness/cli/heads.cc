// migration-harness heads: the newest revision of the chain.
#include <iostream>

#include "harness/cli/context.h"

namespace harness::cli {

Command setup_heads(CLI::App& app, const GlobalOptions& g) {
  CLI::App* sub = app.add_subcommand("heads", "Show the head revision of the chain");
  return {sub, [&g] {
            engine::RevisionGraph graph = LoadGraph(g);
            std::cout << graph.head().revision << " (head)\n";
            return 0;
          }};
}

}  // namespace harness::cli
