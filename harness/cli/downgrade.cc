// migration-harness downgrade TARGET [--sql]
#include "harness/cli/context.h"

namespace harness::cli {

namespace {
struct DowngradeOptions {
  std::string target;
  bool sql = false;
  int lock_retries = 0;
};
}  // namespace

Command setup_downgrade(CLI::App& app, const GlobalOptions& g) {
  auto opts = std::make_shared<DowngradeOptions>();
  CLI::App* sub = app.add_subcommand("downgrade", "Downgrade the database to a revision");
  sub->add_option("target", opts->target,
                  "base, an id (e.g. 003a), or -N revisions below the current one")
      ->required();
  sub->add_flag("--sql", opts->sql, "Print the SQL the downgrade would run; change nothing");
  AddLockRetriesOption(sub, opts->lock_retries);
  return {sub, [opts, &g] {
            return RunMigrationCommand(g, engine::Direction::kDowngrade, opts->target, opts->sql,
                                       opts->lock_retries);
          }};
}

}  // namespace harness::cli
