#include "harness/verify/rehearsal.h"

#include <chrono>
#include <algorithm>
#include <functional>
#include <map>
#include <memory>
#include <thread>

#include <fmt/format.h>
#include <pqxx/pqxx>
#include <spdlog/spdlog.h>

#include "harness/codesearch/generator.h"
#include "harness/codesearch/shapes.h"
#include "harness/checks/suites.h"
#include "harness/error.h"
#include "harness/inspect/catalog.h"
#include "harness/pg/cluster.h"
#include "harness/pg/connection.h"
#include "harness/pg/disposable_database.h"
#include "harness/pg/interrupt.h"
#include "harness/report/forecast.h"
#include "harness/verify/effects.h"
#include "harness/verify/runner_base.h"

namespace harness::verify {

namespace {

using Clock = std::chrono::steady_clock;

class Runner : public RunnerBase {
 public:
  Runner(const VerifyOptions& o, const engine::RevisionGraph& g)
      : RunnerBase(o, g), range_(checks::RangeTo(g, o.target)) {}


 private:
  void PrepareTarget() override {
    if (!options_.source) {
      StartEmbedded();
      Phase("build a database at " + range_.FromName(), [&] {
        db_ = std::make_unique<pg::DisposableDatabase>(cluster_->AdminUrl(), "template0",
                                                       "mh_verify");
        url_ = db_->url();
        codesearch::BuildAt005(*url_, options_.shape, graph_);
        return options_.shape == codesearch::Shape::kProduction
                   ? "the production schema at " + range_.FromName() + " (the service's own chain)"
                   : "upgraded <base> -> " + range_.FromName();
      });
      Phase("generate data", [&] {
        pg::Connection conn(*url_);
        codesearch::GeneratorOptions go;
        go.repositories = options_.repositories;
        go.chunks_per_repo = options_.chunks_per_repo;
        go.seed = options_.seed;
        go.progress = options_.progress;
        auto rep = codesearch::Generate(conn, go);
        return fmt::format("{} repositories, {}{} chunks, {} rows in the tables {} drops{} "
                           "({:.0f} rows/s, {:.0f} chunks/s)",
                           rep.repositories,
                           rep.files ? fmt::format("{} code files, ", rep.files) : "", rep.chunks,
                           rep.other_rows, range_.graph->Name(range_.to),
                           rep.kept_rows ? fmt::format(", {} in the other kept tables",
                                                       rep.kept_rows)
                                         : "",
                           rep.rows_per_second, rep.chunks_per_second);
      }, /*status_line=*/!options_.progress);  // the generator draws its own
      r_.target = fmt::format("embedded cluster, generated data (seed {}, {} shape)", options_.seed,
                              codesearch::ShapeName(options_.shape));
      return;
    }
    PrepareSource(*options_.source, range_.graph->Name(range_.to));
  }

  // A check suite, timed as a phase of its own.
  checks::SuiteResult Suite(const std::string& name,
                            const std::function<checks::SuiteResult(pqxx::transaction_base&)>& fn) {
    checks::SuiteResult s;
    Phase(name, [&] {
      pg::Connection conn(*url_);
      pqxx::read_transaction tx(conn.raw());
      pg::RefuseUntrustedCode(tx, *url_);
      s = fn(tx);
      return fmt::format("{} of {} passed", s.Count(checks::Status::kPass), s.Total());
    });
    r_.phases.back().ok = s.ok();
    r_.suites.push_back(s);
    return s;
  }

  void Rehearse() override {
    if (!options_.source) ConnectPhase(*url_, range_.graph->Name(range_.to));
    pg::Connection conn(*url_);
    const std::string from = range_.FromName(), to = range_.graph->Name(range_.to);
    r_.title = "Migration " + to + " rehearsal";
    engine::Position current = 0;
    Phase("current revision", [&] {
      auto pos = MakeMigrator(conn).CurrentIfVersioned();
      if (!pos)
        throw UsageError("the database has no alembic_version table: it was never migrated by "
                         "Alembic or by this tool",
                         "if its schema is that of revision " + from + ", record it with "
                         "`migration-harness stamp " + from + "` on the copy, then verify again");
      current = *pos;
      if (current > range_.from)
        throw UsageError("the database is at " + graph_.Name(current) + ", past " + from +
                         ": migration " + to + " is already applied");
      return graph_.Name(current);
    });
    if (current < range_.from) {
      Phase("upgrade to " + from + " first", [&] {
        auto rep = MakeMigrator(conn).Upgrade(from);
        return fmt::format("{} -> {} in {:.3f}s", rep.from, from, rep.seconds);
      });
    }
    {
      // A schema of neither shape is bad input (2), with the verdict
      // saying so; missing core tables are the pre-checks' to report.
      pqxx::read_transaction tx(conn.raw());
      try {
        if (auto shape = codesearch::DetectShape(tx)) {
          shape_ = *shape;
          r_.shape = codesearch::ShapeName(*shape);
        }
      } catch (const Error& e) {
        FailPhase("schema shape", e.what());
        Verdict(false, static_cast<int>(e.code()),
                fmt::format("BLOCKED: migration {} does not know this schema: {}",
                            range_.graph->Name(range_.to), e.what()));
        return;
      }
      // Tables only: a view of that name would run its owner's code.
      for (auto [table, count] : {std::pair{"repositories", &r_.repositories},
                                  std::pair{"code_chunks", &r_.chunks}})
        if (!tx.exec_params("SELECT 1 FROM pg_catalog.pg_class WHERE oid = "
                            "pg_catalog.to_regclass('public.' || $1) AND relkind IN ('r', 'p')",
                            table)
                 .empty())
          *count = tx.exec1(std::string("SELECT count(*) FROM public.") + table)[0].as<long long>();
      r_.counted = true;
    }
    checks::SuiteResult pre =
        Suite("pre-migration checks", [&](auto& tx) { return checks::RunPreSuite(tx, range_); });
    if (!pre.ok()) {
      // A gate that failed (a missing core table) means this is not the
      // schema the revision knows: bad input (2), not data that blocks
      // the migration (1).
      Verdict(false, pre.stopped ? 2 : 1,
              pre.stopped ? fmt::format("BLOCKED: this is not the schema {} knows at {} (see the "
                                        "failed pre-migration check)",
                                        to, from)
                          : fmt::format("BLOCKED: the data or schema blocks migration {} (see the "
                                        "failed pre-migration checks)",
                                        to));
      return;
    }
    checks::Baseline baseline;
    Recorded recorded;  // every column's values, and what depends on each table
    Phase("record baseline (catalog and fingerprints)", [&] {
      pqxx::read_transaction tx(conn.raw());
      baseline = checks::TakeBaseline(tx, range_);
      recorded = verify::Record(tx);
      std::string prebuilt;
      for (const auto& n : baseline.prebuilt) prebuilt += (prebuilt.empty() ? "" : ", ") + n;
      long long rows = 0;
      for (const auto& [t, d] : baseline.tables) rows += d.fingerprint.rows;
      return fmt::format("{} rows in {} tables{}", rows, baseline.tables.size(),
                         prebuilt.empty() ? "" : "; built beforehand, not compared: " + prebuilt);
    });
    engine::RunReport up;
    std::vector<StepEffect> up_effects, down_effects;
    const std::string up_name = fmt::format("upgrade {} -> {}", from, to);
    try {
      Phase(up_name, [&] {
        up = MeasuredRun(conn, graph_, options_.migrator, engine::Direction::kUpgrade, to, up_effects);
        r_.upgrade_seconds = up.seconds;
        r_.upgrade_steps = up.steps;
        return fmt::format("{:.3f}s in one transaction", up.seconds);
      });
    } catch (const Error& e) {
      if (e.code() != ExitCode::kCheckFailed) throw;
      FailPhase(up_name, e.what());
      Verdict(false, 1, fmt::format("BLOCKED: migration {} refused the data: {}", to, e.what()));
      return;
    }
    Discarded discarded;
    Phase("count what the upgrade discarded", [&] {
      pqxx::read_transaction tx(conn.raw());
      discarded = CountDiscarded(tx, recorded);
      return fmt::format("{} table(s) and {} column(s) dropped", discarded.tables.size(), discarded.columns);
    });
    checks::SuiteResult post =
        Suite("post-migration checks", [&](auto& tx) { return checks::RunPostSuite(tx, range_); });
    r_.suites.push_back(discarded.suite);
    bool idempotent = true;
    if (range_.graph->at(range_.to).idempotent)
      Phase(fmt::format("idempotent re-run (stamp {}, upgrade again)", from), [&] {
        engine::MigratorOptions quiet = options_.migrator;
        quiet.log_steps = false;
        const std::string changed = SecondRunChanges(conn, graph_, quiet, from, to);
        idempotent = changed.empty();
        return idempotent ? std::string("second run changed nothing") : "second run changed " + changed;
      });
    if (!idempotent) r_.phases.back().ok = false;
    Phase(fmt::format("downgrade {} -> {}", to, from), [&] {
      auto down = MeasuredRun(conn, graph_, options_.migrator, engine::Direction::kDowngrade, from, down_effects);
      r_.downgrade_seconds = down.seconds;
      r_.downgrade_steps = down.steps;
      return fmt::format("{:.3f}s in one transaction", down.seconds);
    });
    std::vector<std::string> known_not_valid;
    checks::SuiteResult rollback = Suite("rollback checks", [&](auto& tx) {
      return checks::RunRollbackSuite(tx, range_, baseline, &known_not_valid);
    });
    r_.suites.push_back(StepEffectsSuite(up_effects, down_effects));
    checks::DroppedRows dropped_rows;
    {
      pqxx::read_transaction tx(conn.raw());
      dropped_rows = checks::CompareDroppedRows(tx, baseline);
    }
    engine::RunReport again;
    Phase(fmt::format("final upgrade {} -> {}", from, to), [&] {
      again = QuietMigrator(conn).Upgrade(to);
      return fmt::format("{:.3f}s", again.seconds);
    });
    Forecast(up, again);
    bool ok = pre.ok() && post.ok() && rollback.ok() && idempotent;
    bool in_budget = r_.upgrade_seconds < report::kBudgetSeconds;
    // Foreign keys the rollback restored NOT VALID (their rows reference
    // rows that only a backup brings back): the verdict says so.
    const size_t not_valid = known_not_valid.size();
    if (ok && in_budget)
      Verdict(true, 0,
              fmt::format("READY: migration {} upgraded in {:.3f}s and rolled back {}in "
                          "{:.3f}s on {} repositories and {} chunks{}",
                          to, r_.upgrade_seconds,
                          not_valid ? fmt::format("(exactly, but for {} foreign key(s) restored "
                                                  "NOT VALID: see the rollback checks) ",
                                                  not_valid)
                                    : std::string("exactly "),
                          r_.downgrade_seconds, r_.repositories, r_.chunks,
                          dropped_rows.only_in_backup.empty()
                              ? std::string()
                              : fmt::format("; the dropped tables come back empty ({}: "
                                            "restore-dropped brings them back)",
                                            dropped_rows.OnlyInBackupText())));
    else if (ok)
      Verdict(false, 1,
              fmt::format("NOT READY: the upgrade took {:.1f}s, over the {:.0f}s budget (FR-031)",
                          r_.upgrade_seconds, report::kBudgetSeconds));
    else
      Verdict(false, 1, "NOT READY: some checks failed (see above)");
  }

  // The upgrade's steps on an empty database at 005: each step's fixed cost,
  // the intercept of the forecast's lines.
  std::optional<std::vector<engine::StepTiming>> EmptyUpgradeSteps() {
    auto admin = AdminUrl();
    if (!admin) return std::nullopt;
    try {
      pg::DisposableDatabase empty(*admin, "template0", "mh_verify_empty");
      codesearch::BuildAt005(empty.url(), shape_, graph_);
      pg::Connection conn(empty.url());
      return QuietMigrator(conn).Upgrade(range_.graph->Name(range_.to)).steps;
    } catch (const Error& e) {
      spdlog::warn("verify: no empty database for the forecast ({}); fitting through the origin",
                   e.what());
      return std::nullopt;
    }
  }

  // Upgrade time at forecast_rows chunks: for each step, a line through its
  // times on an empty database and on this one (both upgrades), summed.
  // Work time only: a step's wait for a lock (autovacuum, another session)
  // depends on who else is on the database, not on the number of rows, and
  // scaled with them would make a second of waiting into minutes.
  void Forecast(const engine::RunReport& first, const engine::RunReport& second) {
    const long long rows = options_.forecast_rows > 0 ? options_.forecast_rows
                                                      : std::max<long long>(r_.chunks, 1) * 10;
    std::optional<std::vector<engine::StepTiming>> empty;
    Phase("forecast: upgrade an empty database", [&] {
      empty = EmptyUpgradeSteps();
      return empty ? fmt::format("{} steps timed", empty->size())
                   : std::string("no empty database here: the forecast scales every step");
    });
    r_.forecast = ForecastUpgrade(empty, {&first, &second}, {range_.graph->Name(range_.to)},
                                  static_cast<double>(r_.chunks), rows, "chunks");
  }

  const checks::Range range_;  // the target's parent to the target
  codesearch::Shape shape_ = codesearch::Shape::kQuickstart;  // the database's, once detected
};

}  // namespace

Rehearsal Run(const VerifyOptions& options, const engine::RevisionGraph& graph,
              Rehearsal* partial) {
  return Runner(options, graph).Go(partial);
}

}  // namespace harness::verify
