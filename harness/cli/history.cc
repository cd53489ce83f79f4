// migration-harness history [--verbose]: the chain, newest first.
#include <iostream>

#include "harness/cli/context.h"
#include "harness/sys/untrusted_text.h"

namespace harness::cli {

namespace {
struct HistoryOptions {
  bool verbose = false;
};
}  // namespace

Command setup_history(CLI::App& app, const GlobalOptions& g) {
  auto opts = std::make_shared<HistoryOptions>();
  CLI::App* sub = app.add_subcommand("history", "List the revisions of the chain, newest first");
  sub->add_flag("--verbose", opts->verbose, "Show each revision's file, parent and steps");
  return {sub, [opts, &g] {
            engine::RevisionGraph graph = LoadGraph(g);
            for (engine::Position p = graph.head_position(); p >= 1; --p) {
              const auto& f = graph.at(p);
              std::string head = p == graph.head_position() ? " (head)" : "";
              if (!opts->verbose) {
                std::cout << sys::Escaped(graph.Name(p - 1)) << " -> " << sys::Escaped(f.revision) << head << ", "
                          << sys::Escaped(f.message) << "\n";
                continue;
              }
              std::cout << "Rev: " << sys::Escaped(f.revision) << head << "\n"
                        << "Parent: " << sys::Escaped(graph.Name(p - 1)) << "\n"
                        << "Path: " << sys::Escaped(f.path.string()) << "\n\n"
                        << "    " << sys::Escaped(f.message) << "\n\n";
              std::cout << "    upgrade:\n";
              // Numbered as a run in one transaction numbers them; the
              // online steps (upgrade --online's alone) marked.
              for (size_t i = 0, n = 0; i < f.upgrade.size(); ++i)
                std::cout << "      " << (f.upgrade[i].online ? std::string("-") : std::to_string(++n) + ".") << " "
                          << sys::Escaped(f.upgrade[i].name) << (f.upgrade[i].online ? " (online only)" : "") << "\n";
              std::cout << "    downgrade:\n";
              for (size_t i = 0; i < f.downgrade.size(); ++i)
                std::cout << "      " << i + 1 << ". " << sys::Escaped(f.downgrade[i].name) << "\n";
              std::cout << "\n";
            }
            return 0;
          }};
}

}  // namespace harness::cli
