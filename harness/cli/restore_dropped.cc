// migration-harness restore-dropped --from BACKUP [--baseline FILE]: after a
// rollback of the code-search migration, the rows of the nine tables it
// dropped, back from the backup taken before the upgrade
// (harness/codesearch/restore_dropped.h).
#include <chrono>
#include <iostream>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "harness/checks/suites.h"
#include "harness/cli/context.h"
#include "harness/codesearch/restore_dropped.h"
#include "harness/codesearch/shapes.h"
#include "harness/sys/untrusted_text.h"

namespace harness::cli {

namespace {
struct RestoreDroppedOptions {
  std::string from;
  std::string baseline;
};
}  // namespace

Command setup_restore_dropped(CLI::App& app, const GlobalOptions& g) {
  auto opts = std::make_shared<RestoreDroppedOptions>();
  CLI::App* sub = app.add_subcommand(
      "restore-dropped",
      fmt::format("After a rollback of {}: load the rows of the 9 tables it dropped from the backup taken "
                  "before the upgrade (pg_dump -Fc), in foreign-key order and in one transaction, compare "
                  "them with the baseline, and validate the foreign keys the rollback restored NOT VALID",
                  codesearch::kMigration));
  sub->add_option("--from", opts->from, "The backup: a pg_dump -Fc file taken before the upgrade")
      ->required()
      ->check(CLI::ExistingFile);
  sub->add_option("--baseline", opts->baseline,
                  "The baseline `check pre --save-baseline` recorded before the upgrade: the "
                  "restored rows must equal it, or nothing is restored (exit 1)")
      ->check(CLI::ExistingFile);
  sub->footer(
      "The tables must be empty, as the rollback leaves them; nothing changes unless every table "
      "loads. Needs INSERT on the nine tables (and ownership of the tables whose foreign keys it "
      "validates), no superuser. Exit codes: 0 restored (or already equal to the baseline); 1 the "
      "backup differs from the baseline; 2 bad input (backup, tables missing or not empty); 3 "
      "database error.");
  return {sub, [opts, &g] {
            codesearch::RestoreOptions o;
            o.backup = opts->from;
            o.lock_timeout_seconds = g.lock_timeout_seconds;
            if (!opts->baseline.empty()) o.baseline = checks::LoadBaseline(opts->baseline);
            auto conn = Connect(g);
            auto t0 = std::chrono::steady_clock::now();
            codesearch::RestoreReport r = codesearch::RestoreDropped(*conn, o);
            double seconds =
                std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
            if (r.already_restored) {
              std::cout << "The dropped tables already hold the baseline's rows: nothing "
                           "loaded\n";
            } else {
              std::cout << fmt::format("Restored {} rows from {} in one transaction ({:.3f}s):\n",
                                       r.Rows(), opts->from, seconds);
              for (const auto& t : r.tables)
                std::cout << fmt::format("  {:<28} {}\n", sys::Escaped(t.name),
                                         t.in_backup ? fmt::format("{} rows", t.rows)
                                                     : std::string("not in the backup"));
              for (const auto& s : r.sequences) std::cout << "  sequence " << sys::Escaped(s) << "\n";
            }
            for (const auto& v : r.validated) std::cout << "  validated " << sys::Escaped(v) << "\n";
            for (const auto& v : r.not_validated)
              spdlog::warn("still NOT VALID: {} (its rows reference rows the backup does not "
                           "have)",
                           v);
            if (r.compared)
              std::cout << fmt::format("Matches the baseline {}: every dropped table's rows equal "
                                       "what was there before the upgrade\n",
                                       opts->baseline);
            else
              spdlog::warn("not compared with a baseline (pass --baseline FILE from `check pre "
                           "--save-baseline`): the rows are the backup's, whatever it holds");
            return 0;
          }};
}

}  // namespace harness::cli
