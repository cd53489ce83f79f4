// migration-harness check pre|post|rollback: the check suites of 002.
#include <iostream>

#include <fmt/format.h>
#include <optional>

#include "harness/checks/suites.h"
#include "harness/cli/context.h"
#include "harness/error.h"
#include "harness/pg/files.h"
#include "harness/report/suite_report.h"
#include "harness/verify/revision_checks.h"

namespace harness::cli {

namespace {
struct CheckOptions {
  std::string suite;
  bool json = false;
  std::string save_baseline;
  std::string baseline;
  std::string junit;
  std::string target;
};
}  // namespace

Command setup_check(CLI::App& app, const GlobalOptions& g) {
  auto opts = std::make_shared<CheckOptions>();
  CLI::App* sub = app.add_subcommand(
      "check", "Run the pre, post or rollback checks of migration 002 (read-only)");
  sub->add_option("suite", opts->suite,
                  "pre: before upgrading; post: after upgrading; rollback: after downgrading")
      ->required()
      ->check(CLI::IsMember({"pre", "post", "rollback"}));
  sub->add_flag("--json", opts->json, "Print the results as JSON");
  sub->add_option("--save-baseline", opts->save_baseline,
                  "With pre: record the catalog and row fingerprints to FILE for `check rollback`");
  sub->add_option("--baseline", opts->baseline,
                  "With rollback: compare the catalog and the data with this FILE")
      ->check(CLI::ExistingFile);
  sub->add_option("--junit", opts->junit, "Also write the results as JUnit XML to FILE");
  sub->add_option("--target", opts->target,
                  "Instead of 002's suites, the checks a revision carries itself (`--! check "
                  "pre|post|rollback: NAME` in its file): pre, those of every revision above the "
                  "database's up to REV; post and rollback, those of REV");
  return {sub, [opts, &g] {
            if (!opts->save_baseline.empty() && opts->suite != "pre")
              throw UsageError("--save-baseline goes with `check pre`");
            if (!opts->baseline.empty() && opts->suite != "rollback")
              throw UsageError("--baseline goes with `check rollback`");
            CheckOutputFiles({{"baseline", opts->save_baseline}, {"JUnit report", opts->junit}});
            engine::RevisionGraph graph = LoadGraph(g);
            auto conn = Connect(g);
            if (!opts->target.empty()) {
              if (!opts->save_baseline.empty() || !opts->baseline.empty())
                throw UsageError("--save-baseline and --baseline go with 002's suites, not --target");
              const engine::Position target = graph.ResolveRevision(opts->target);
              if (target == 0) throw UsageError("check --target base: no revision carries checks there");
              engine::Position from = target - 1;
              if (opts->suite == "pre") from = engine::Migrator(*conn, graph, MigratorOptionsFrom(g)).Current();
              checks::SuiteResult result{opts->suite, {}};
              for (engine::Position p = from + 1; p <= target; ++p)
                for (auto& c : verify::RunRevisionChecks(conn->url(), graph.at(p), opts->suite))
                  result.checks.push_back(std::move(c));
              if (result.checks.empty())
                std::cout << fmt::format("No {} checks in revision{} {} (`--! check {}: NAME` in its file)\n",
                                         opts->suite, from + 1 < target ? "s up to" : "",
                                         graph.Name(target), opts->suite);
              else if (opts->json)
                std::cout << report::SuiteJson(result).dump(2) << "\n";
              else
                std::cout << report::SuiteText(result);
              bool written = true;
              if (!opts->junit.empty())
                written &= WriteOutput("JUnit report", [&] {
                  pg::WriteFileAtomically(opts->junit,
                                          report::JUnitXml("migration-harness check " + opts->suite,
                                                           report::JUnitCases(result)));
                });
              return ExitCodeAfterWrites(result.ok() ? 0 : static_cast<int>(ExitCode::kCheckFailed), written);
            }
            pqxx::read_transaction tx(conn->raw());
            checks::SuiteResult result;
            std::optional<checks::Baseline> to_save;  // written after the results are shown
            if (opts->suite == "pre") {
              checks::PreCheckOptions pre;
              pre.acceptable_revisions.clear();
              auto p005 = graph.Find("005");
              for (engine::Position p = 1; p005 && p <= *p005; ++p)
                pre.acceptable_revisions.push_back(graph.at(p).revision);
              result = checks::RunPreChecks(tx, pre);
              if (!opts->save_baseline.empty()) to_save = checks::TakeBaseline(tx);
            } else if (opts->suite == "post") {
              result = checks::RunPostChecks(tx);
            } else {
              std::optional<checks::Baseline> baseline;
              if (!opts->baseline.empty()) baseline = checks::LoadBaseline(opts->baseline);
              result = checks::RunRollbackChecks(tx, baseline);
            }
            if (opts->json)
              std::cout << report::SuiteJson(result).dump(2) << "\n";
            else
              std::cout << report::SuiteText(result);
            // A file that cannot be written is printed and is exit 3 unless
            // the checks failed (their exit 1 stays); the other file is still written.
            bool written = true;
            if (to_save)
              written &= WriteOutput("baseline", [&] {
                checks::SaveBaseline(*to_save, opts->save_baseline);
                std::cerr << "baseline saved to " << opts->save_baseline << "\n";
              });
            if (!opts->junit.empty())
              written &= WriteOutput("JUnit report", [&] {
                pg::WriteFileAtomically(opts->junit,
                                        report::JUnitXml("migration-harness check " + opts->suite,
                                                         report::JUnitCases(result)));
              });
            // A skipped check is not a pass: without --baseline, `check
            // rollback` cannot vouch for the data, and says so with exit 1.
            bool complete = result.Count(checks::Status::kSkipped) == 0;
            return ExitCodeAfterWrites(
                result.ok() && complete ? 0 : static_cast<int>(ExitCode::kCheckFailed), written);
          }};
}

}  // namespace harness::cli
