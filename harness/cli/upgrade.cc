// migration-harness upgrade [TARGET] [--sql]
#include "harness/cli/context.h"

namespace harness::cli {

namespace {
struct UpgradeOptions {
  std::string target = "head";
  bool sql = false;
  int lock_retries = 0;
  bool online = false;
};
}  // namespace

Command setup_upgrade(CLI::App& app, const GlobalOptions& g) {
  auto opts = std::make_shared<UpgradeOptions>();
  CLI::App* sub = app.add_subcommand("upgrade", "Upgrade the database to a revision (default: head)");
  sub->add_option("target", opts->target,
                  "head, an id (e.g. 003a), or +N revisions above the current one")
      ->capture_default_str();
  sub->add_flag("--sql", opts->sql, "Print the SQL the upgrade would run; change nothing");
  AddLockRetriesOption(sub, opts->lock_retries);
  sub->add_flag("--online", opts->online,
                "Run a revision that has online steps (002) in phases, so that reads and writes go on: a short "
                "catalog-only transaction, then each online step (VALIDATE CONSTRAINT, a batched backfill) "
                "outside it, progress recorded after each; alembic_version moves when every phase is done. "
                "Run it again to complete a revision left in progress; `downgrade PARENT` undoes one")
      ->excludes("--sql");
  return {sub, [opts, &g] {
            return RunMigrationCommand(g, engine::Direction::kUpgrade, opts->target, opts->sql,
                                       opts->lock_retries, opts->online);
          }};
}

}  // namespace harness::cli
