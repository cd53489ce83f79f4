// migration-harness stamp REV: record a revision without running anything.
#include <iostream>

#include "harness/cli/context.h"

namespace harness::cli {

namespace {
struct StampOptions {
  std::string revision;
};
}  // namespace

Command setup_stamp(CLI::App& app, const GlobalOptions& g) {
  auto opts = std::make_shared<StampOptions>();
  CLI::App* sub = app.add_subcommand(
      "stamp", "Record a revision in alembic_version without running any migration");
  sub->add_option("revision", opts->revision, "head, base or a revision id")->required();
  return {sub, [opts, &g] {
            engine::RevisionGraph graph = LoadGraph(g);
            auto conn = Connect(g);
            engine::Migrator migrator(*conn, graph, MigratorOptionsFrom(g));
            const std::string stamped = migrator.Stamp(opts->revision);
            SayIfOutputFails("the stamp committed: alembic_version names " + stamped);
            std::cout << "Stamped " << stamped << "\n";
            return 0;
          }};
}

}  // namespace harness::cli
