// migration-harness check pre|post|rollback: the check suites of a revision
// (checks/suites.h), head by default.
#include <iostream>

#include <fmt/format.h>
#include <optional>

#include "harness/checks/suites.h"
#include "harness/cli/alembic_options.h"
#include "harness/cli/check_chain.h"
#include "harness/cli/context.h"
#include "harness/error.h"
#include "harness/pg/connection.h"
#include "harness/sys/files.h"
#include "harness/pg/interrupt.h"
#include "harness/report/suite_report.h"

namespace harness::cli {

namespace {
struct CheckOptions {
  alembic::ProjectOptions alembic;
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
      "check",
      "Run the pre, post or rollback checks of a revision (head by default; read-only), or the checks of the "
      "chain itself, of this project's SQL files or of an Alembic project (--alembic)");
  sub->add_option("suite", opts->suite,
                  "pre: before upgrading; post: after upgrading; rollback: after downgrading; chain: the "
                  "chain itself on an empty embedded database (one head, every revision reachable, every "
                  "downgrade written and doing something, up-down-up of each revision)")
      ->required()
      ->check(CLI::IsMember({"pre", "post", "rollback", "chain"}));
  sub->add_flag("--json", opts->json, "Print the results as JSON");
  sub->add_option("--save-baseline", opts->save_baseline,
                  "With pre: record the catalog and row fingerprints to FILE for `check rollback`");
  sub->add_option("--baseline", opts->baseline,
                  "With rollback: compare the catalog and the data with this FILE")
      ->check(CLI::ExistingFile);
  sub->add_option("--junit", opts->junit, "Also write the results as JUnit XML to FILE");
  sub->add_option("--target", opts->target,
                  "The revision whose checks to run (default: head): its own (`--! check` in its "
                  "file) and those every revision gets; `check pre` also runs those of every "
                  "revision between the database's and REV")
      ->default_str("head");
  AddAlembicOptions(sub, opts->alembic);
  return {sub, [opts, &g, sub] {
            if (opts->suite == "chain") {
              for (const char* o : {"--target", "--save-baseline", "--baseline"})
                if (sub->count(o)) throw UsageError(std::string(o) + " does not go with `check chain`, which checks "
                                                    "every revision");
              return RunCheckChain(g, opts->alembic, opts->json, opts->junit);
            }
            if (!opts->save_baseline.empty() && opts->suite != "pre")
              throw UsageError("--save-baseline goes with `check pre`");
            if (!opts->baseline.empty() && opts->suite != "rollback")
              throw UsageError("--baseline goes with `check rollback`");
            CheckOutputFiles({{"baseline", opts->save_baseline}, {"JUnit report", opts->junit}});
            const std::string target = opts->target.empty() ? "head" : opts->target;
            // The revisions: this project's SQL files, or the path to the
            // target in an Alembic project (its checks are those every
            // revision gets).
            std::unique_ptr<alembic::Project> project;
            if (!opts->alembic.path.empty()) project = OpenAlembicProject(opts->alembic);
            engine::RevisionGraph graph = project ? project->PathTo(target) : LoadGraph(g);
            checks::Range range = checks::RangeTo(graph, target);
            auto conn = Connect(g);
            // SIGINT or SIGTERM cancels the check running on the server.
            pg::CancelOnInterrupt cancel(*conn);
            pqxx::read_transaction tx(conn->raw());
            // The checks' SQL runs with this transaction's search path: code
            // planted since the connection was made must not run either.
            pg::RefuseUntrustedCode(tx, conn->url());
            // Before the upgrade: the checks of every revision it will apply
            // (an unknown revision is the pre suite's to report).
            if (opts->suite == "pre")
              if (auto at = checks::RecordedPosition(tx, graph); at && *at < range.from) range.from = *at;
            checks::SuiteResult result;
            std::optional<checks::Baseline> to_save;  // written after the results are shown
            if (opts->suite == "pre") {
              result = checks::RunPreSuite(tx, range);
              if (!opts->save_baseline.empty() && !result.stopped) to_save = checks::TakeBaseline(tx, range);
            } else if (opts->suite == "post") {
              result = checks::RunPostSuite(tx, range);
            } else {
              std::optional<checks::Baseline> baseline;
              if (!opts->baseline.empty()) baseline = checks::LoadBaseline(opts->baseline);
              result = checks::RunRollbackSuite(tx, range, baseline);
            }
            sys::ThrowIfInterrupted("the " + opts->suite + " checks");
            if (result.checks.empty()) {
              std::cout << fmt::format("No {} checks for {} (`--! check {}: NAME` in a revision's file)\n",
                                       opts->suite, range.Name(), opts->suite);
            } else if (opts->json) {
              std::cout << report::JsonText(report::SuiteJson(result)) << "\n";
            } else {
              std::cout << report::SuiteText(result);
            }
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
                sys::WriteFileAtomically(opts->junit,
                                        report::JUnitXml("migration-harness check " + opts->suite,
                                                         report::JUnitCases(result)));
              });
            // A gate that failed: this is not the schema the revisions know (bad input).
            if (result.stopped) return ExitCodeAfterWrites(static_cast<int>(ExitCode::kUsage), written);
            // A skipped check is not a pass: without --baseline, `check
            // rollback` cannot vouch for the data, and says so with exit 1.
            bool complete = result.Count(checks::Status::kSkipped) == 0;
            return ExitCodeAfterWrites(
                result.ok() && complete ? 0 : static_cast<int>(ExitCode::kCheckFailed), written);
          }};
}

}  // namespace harness::cli
