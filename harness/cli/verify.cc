// migration-harness verify: the whole pre-deployment rehearsal, of this
// project's SQL revisions or of an Alembic project's own (--alembic).
#include <unistd.h>

#include <iostream>
#include <optional>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "harness/alembic/alembic_revisions.h"
#include "harness/cli/alembic_options.h"
#include "harness/cli/context.h"
#include "harness/cli/status_line.h"
#include "harness/codesearch/rehearsal_data.h"
#include "harness/codesearch/shapes.h"
#include "harness/error.h"
#include "harness/sys/files.h"
#include "harness/report/suite_report.h"
#include "harness/verify/catalog_data.h"
#include "harness/verify/rehearsal.h"
#include "harness/verify/sql_revisions.h"

namespace harness::cli {

namespace {
struct VerifyCliOptions {
  bool in_place = false;
  bool into_embedded = false;
  std::string shape;
  int repositories = 100;
  int chunks_per_repo = 100;
  std::uint64_t seed = 42;
  long long forecast_rows = 0;
  std::string report_json;
  std::string junit;
  std::string target;
  long long rows_per_table = 1000;
  std::vector<std::string> table_rows;  // TABLE=N, production's
  double max_lock_hold = 0;
  bool with_traffic = false;
  double traffic_hold = 2;
  bool online = false;
  alembic::ProjectOptions alembic;
};
}  // namespace

Command setup_verify(CLI::App& app, const GlobalOptions& g) {
  auto opts = std::make_shared<VerifyCliOptions>();
  CLI::App* sub = app.add_subcommand(
      "verify",
      "Rehearse a migration (--target, default head) of this project's SQL files, or of an Alembic project's "
      "own revisions (--alembic): pre-checks, timed upgrade, what each step did on the server, post-checks, "
      "idempotent re-run, timed rollback, rollback checks, re-upgrade, forecast, verdict. With a URL it works "
      "on a scratch clone of that database (never the database itself unless --in-place); without one, on an "
      "embedded PostgreSQL with generated data.");
  sub->add_flag("--in-place", opts->in_place,
                "Work on the given database itself (it ends migrated to the target)");
  sub->add_flag("--into-embedded", opts->into_embedded,
                "Copy the given database with pg_dump/pg_restore into an embedded PostgreSQL and "
                "rehearse there (when the server refuses a clone)")
      ->excludes("--in-place");
  sub->add_option("--shape", opts->shape,
                  fmt::format("Embedded run of the code-search migration: the schema to build at {}: "
                              "quickstart (this project's chain, the default) or production (the "
                              "service's own chain: code_chunks -> code_files -> repositories). A given "
                              "database's shape is detected",
                              codesearch::kCodeSearchRevision))
      ->check(CLI::IsMember({"quickstart", "production"}));
  sub->add_option("--repositories", opts->repositories, "Embedded run: repositories to generate")
      ->check(CLI::Range(1, 10'000'000))
      ->capture_default_str();
  sub->add_option("--chunks-per-repo", opts->chunks_per_repo,
                  "Embedded run: chunks per repository")
      ->check(CLI::Range(0, 10'000'000))
      ->capture_default_str();
  sub->add_option("--seed", opts->seed, "Embedded run: generator seed")->capture_default_str();
  sub->add_option("--forecast-rows", opts->forecast_rows,
                  fmt::format("Forecast the upgrade time at this many code_chunks ({}), or rows in all "
                              "tables (any other revision); default: ten times the rehearsed data",
                              codesearch::kMigration))
      ->check(CLI::Range(1LL, 100'000'000'000LL));
  sub->add_option(
      "--target", opts->target,
      fmt::format("The revision to rehearse (default: head): from the database's revision (without a "
                  "database: from REV's parent, on an embedded cluster) up to REV and back, with the "
                  "checks every revision gets and its own. The revision above {} ({}) of this project's "
                  "chain is rehearsed on the code-search data (--shape, --repositories, --chunks-per-repo); "
                  "any other, and every Alembic revision, on data generated from the catalog "
                  "(--rows-per-table), with what each step did to each table, the locks it held and the rows "
                  "it discards",
                  codesearch::kCodeSearchRevision, codesearch::kMigration))
      ->default_str("head");
  sub->add_option("--rows-per-table", opts->rows_per_table,
                  fmt::format("Embedded run of a revision other than {}: rows generated per table",
                              codesearch::kMigration))
      ->check(CLI::Range(0LL, 100'000'000LL))
      ->capture_default_str();
  sub->add_option("--table-rows", opts->table_rows,
                  "TABLE=N (repeatable): production's rows of TABLE, which the locks each step holds are "
                  "forecast at (the rehearsal itself runs on --rows-per-table or the code-search data); the "
                  "other tables by the --forecast-rows factor")
      ->type_name("TABLE=N");
  sub->add_option("--max-lock-hold", opts->max_lock_hold,
                  "NOT READY when a lock that blocks reads or writes of a table is forecast to be held longer "
                  "than SECONDS at production size (default: off; the report always shows the longest)")
      ->type_name("SECONDS")
      ->check(CLI::PositiveNumber);
  sub->add_flag("--with-traffic", opts->with_traffic,
                "Rehearse the queue behind the upgrade's locks: a reader that holds its locks --traffic-hold "
                "seconds into the upgrade (as a long query would), and a reader and a writer running every "
                "5-10 ms behind it; the report says how long they waited and whether --lock-timeout gave up")
      ->excludes("--in-place");
  sub->add_option("--traffic-hold", opts->traffic_hold, "With --with-traffic: how long the long reader keeps its "
                                                         "locks into the upgrade")
      ->type_name("SECONDS")
      ->check(CLI::Range(0.0, 60.0))
      ->capture_default_str()
      ->needs("--with-traffic");
  sub->add_flag("--online", opts->online,
                "Rehearse `upgrade --online`: a revision with online steps (002) runs in phases, each lock held "
                "to the end of its phase only (the idempotent re-run too)");
  sub->add_option("--report-json", opts->report_json, "Also write the report as JSON to FILE");
  sub->add_option("--junit", opts->junit, "Also write JUnit XML (one case per check and phase)");
  AddAlembicOptions(sub, opts->alembic);
  return {sub, [opts, &g, sub] {
            const std::string target = opts->target.empty() ? "head" : opts->target;
            verify::VerifyOptions vo;
            if (!g.database_url.empty()) vo.source = pg::Url::Parse(g.database_url);
            else if (opts->in_place)
              throw UsageError("--in-place needs a database: pass --database-url or set DATABASE_URL");
            if (opts->into_embedded && !vo.source)
              throw UsageError("--into-embedded needs a database: pass --database-url or set DATABASE_URL");
            if (!opts->shape.empty() && vo.source)
              throw UsageError("--shape is for the embedded run (no database given); the shape "
                               "of " + vo.source->Describe() + " is detected");
            CheckOutputFiles({{"JSON report", opts->report_json}, {"JUnit report", opts->junit}});
            vo.target = target;
            vo.in_place = opts->in_place;
            vo.into_embedded = opts->into_embedded;
            vo.pg_bindir = g.pg_bindir;
            vo.migrator = MigratorOptionsFrom(g);
            vo.migrator.online = opts->online;
            vo.progress = isatty(2);
            vo.forecast_rows = opts->forecast_rows;
            vo.table_rows = ParseTableRows(opts->table_rows);
            vo.max_lock_hold = opts->max_lock_hold;
            vo.with_traffic = opts->with_traffic;
            vo.traffic_hold_seconds = opts->traffic_hold;
            if (StatusLine::Get().active()) {
              vo.on_phase_start = [](const std::string& phase) { StatusLine::Get().Start(phase); };
              vo.on_phase_end = [] { StatusLine::Get().Stop(); };
            }

            // Where the revisions come from, and the data they are rehearsed on.
            std::optional<engine::RevisionGraph> graph;
            std::unique_ptr<alembic::Project> project;
            std::unique_ptr<verify::RevisionSource> revisions;
            bool code_search = false;
            if (!opts->alembic.path.empty()) {
              if (opts->online)
                throw UsageError("--online is for this project's SQL files (their `--! online_step:`s); an "
                                 "Alembic revision commits where its own code says (autocommit_block)");
              project = OpenAlembicProject(opts->alembic);
              revisions = std::make_unique<alembic::AlembicRevisions>(*project, target);
            } else {
              graph = LoadGraph(g);
              const engine::Position to = graph->ResolveRevision(target);
              if (to == 0)
                throw UsageError("verify --target base: there is nothing to rehearse below the first revision");
              code_search = codesearch::RehearsesOnCodeSearchData(*graph, to);
              revisions = std::make_unique<verify::SqlRevisions>(
                  *graph, vo.migrator, engine::DefaultMigrationsDir(g.migrations_dir).string());
            }
            const std::string to_name = revisions->graph().Name(revisions->graph().ResolveRevision(target));
            if (!code_search)
              for (const char* o : {"--shape", "--repositories", "--chunks-per-repo"})
                if (sub->count(o))
                  throw UsageError(fmt::format("{} belongs to the rehearsal of {} (the revision above {} of this "
                                               "project's chain, on the code-search data); {} gets data generated "
                                               "from the catalog (--rows-per-table, --seed)",
                                               o, codesearch::kMigration, codesearch::kCodeSearchRevision, to_name));
            if (code_search && sub->count("--rows-per-table"))
              throw UsageError(fmt::format("--rows-per-table is for revisions other than {}, whose rehearsal "
                                           "uses the code-search data (--repositories, --chunks-per-repo)",
                                           to_name));
            codesearch::RehearsalData::Options co;
            if (!opts->shape.empty()) co.shape = codesearch::ParseShape(opts->shape);
            co.repositories = opts->repositories;
            co.chunks_per_repo = opts->chunks_per_repo;
            co.seed = opts->seed;
            std::unique_ptr<verify::DataSource> data;
            if (code_search)
              data = std::make_unique<codesearch::RehearsalData>(co, *graph);
            else
              data = std::make_unique<verify::CatalogData>(opts->rows_per_table,
                                                           std::map<std::string, long long>{}, opts->seed);

            // False when a report file could not be written (said on stderr;
            // the other one is still written).
            auto emit = [&](const report::Rehearsal& r) {
              std::cout << report::RehearsalText(r) << std::flush;
              bool written = true;
              if (!opts->report_json.empty())
                written &= WriteOutput("JSON report", [&] {
                  sys::WriteFileAtomically(opts->report_json, report::JsonText(report::RehearsalJson(r)) + "\n");
                });
              if (!opts->junit.empty())
                written &= WriteOutput("JUnit report", [&] {
                  sys::WriteFileAtomically(opts->junit, report::RehearsalJUnit(r));
                });
              return written;
            };
            report::Rehearsal partial;
            std::optional<report::Rehearsal> r;
            try {
              r = verify::Run(vo, *revisions, *data, &partial);
            } catch (const Error&) {
              // The reports still say how far it got and what failed; the
              // error itself follows on stderr, and stays the one reported.
              try {
                if (!partial.phases.empty()) emit(partial);
              } catch (const std::exception& e) {
                spdlog::warn("verify: could not write the report: {}", e.what());
              }
              throw;
            }
            // A report that cannot be written is exit 3 unless the
            // rehearsal's own code already says it failed.
            return ExitCodeAfterWrites(r->exit_code, emit(*r));
          }};
}

}  // namespace harness::cli
