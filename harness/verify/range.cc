#include "harness/verify/range.h"

#include <algorithm>
#include <chrono>
#include <map>
#include <memory>
#include <set>

#include <fmt/format.h>
#include <pqxx/pqxx>
#include <spdlog/spdlog.h>

#include "fixtures/any_schema.h"
#include "harness/error.h"
#include "harness/inspect/catalog.h"
#include "harness/pg/cluster.h"
#include "harness/pg/connection.h"
#include "harness/pg/disposable_database.h"
#include "harness/pg/interrupt.h"
#include "harness/checks/revision_checks.h"
#include "harness/checks/suites.h"
#include "harness/verify/effects.h"
#include "harness/verify/runner_base.h"

namespace harness::verify {

namespace {

using Clock = std::chrono::steady_clock;
using checks::CheckResult;
using checks::Status;
using checks::SuiteResult;

// ---- the rehearsal ----------------------------------------------------------

class RangeRunner : public RunnerBase {
 public:
  RangeRunner(const VerifyOptions& o, const RangeOptions& range, const engine::RevisionGraph& g)
      : RunnerBase(o, g), range_(range) {}

 private:
  // The range's start as the engine takes it: "base" below the first revision.
  std::string FromTarget() const { return from_ == 0 ? std::string("base") : graph_.Name(from_); }

  void PrepareTarget() override {
    to_ = graph_.ResolveRevision(range_.target);
    if (to_ == 0) throw UsageError("verify --target base: there is nothing to rehearse below the first revision");
    if (!options_.source) {
      from_ = to_ - 1;
      StartEmbedded();
      Phase("build a database at " + graph_.Name(from_), [&] {
        db_ = std::make_unique<pg::DisposableDatabase>(cluster_->AdminUrl(), "template0", "mh_verify");
        url_ = db_->url();
        if (from_ > 0) {
          pg::Connection conn(*url_);
          QuietMigrator(conn).Upgrade(graph_.Name(from_));
        }
        return fmt::format("upgraded <base> -> {}", graph_.Name(from_));
      });
      Phase("generate data from the catalog", [&] {
        pg::Connection conn(*url_);
        fixtures::AnySchemaOptions ao;
        ao.rows_per_table = range_.rows_per_table;
        ao.seed = options_.seed;
        auto rep = fixtures::GenerateAnySchema(conn, ao);
        return fmt::format("{} rows in {} tables (seed {}, {} per table asked)", rep.Rows(),
                           rep.tables.size(), options_.seed, range_.rows_per_table);
      });
      r_.target = fmt::format("embedded cluster, data generated from the catalog at {} (seed {})",
                              graph_.Name(from_), options_.seed);
      return;
    }
    // The source's revision first: nothing is cloned for a range it is past.
    {
      pg::Connection conn(*options_.source);
      from_ = engine::Migrator(conn, graph_, options_.migrator).Current();
    }
    if (from_ >= to_)
      throw UsageError(fmt::format("the database is at {}, not below --target {}: nothing to rehearse",
                                   graph_.Name(from_), graph_.Name(to_)),
                       "pass a --target above the database's revision");
    PrepareSource(*options_.source, graph_.Name(to_));
  }

  // A suite of the range (checks/suites.h), read-only: pre and post with
  // the checks every revision gets; rollback, the revisions' own only
  // (this rehearsal compares the catalog and the rows itself, below).
  SuiteResult RangeSuite(const std::string& when) {
    pg::Connection conn(*url_);
    pqxx::read_transaction tx(conn.raw());
    pg::RefuseUntrustedCode(tx, *url_);
    const checks::Range range{&graph_, from_, to_};
    if (when == "pre") return checks::RunPreSuite(tx, range);
    if (when == "post") return checks::RunPostSuite(tx, range);
    SuiteResult s{when, {}};
    for (engine::Position p = from_ + 1; p <= to_; ++p)
      if (!checks::RunRevisionChecks(tx, graph_.at(p), when, s)) break;
    return s;
  }

  // The upgrade of the range on an empty database at its start, made next
  // to this one (the embedded cluster, or the source's server where a
  // scratch clone was made; never in place): each step's fixed cost.
  std::optional<std::vector<engine::StepTiming>> EmptyUpgradeSteps() {
    const std::optional<pg::Url> admin = AdminUrl();
    if (!admin) return std::nullopt;
    try {
      pg::DisposableDatabase empty(*admin, "template0", "mh_verify_empty");
      pg::Connection conn(empty.url());
      if (from_ > 0) QuietMigrator(conn).Upgrade(graph_.Name(from_));
      return QuietMigrator(conn).Upgrade(graph_.Name(to_)).steps;
    } catch (const Error& e) {
      if (e.code() == ExitCode::kInterrupted) throw;
      spdlog::warn("verify: no empty database for the forecast ({}); scaling every step", e.what());
      return std::nullopt;
    }
  }

  engine::RunReport Measured(pg::Connection& conn, engine::Direction dir, std::vector<StepEffect>& out) {
    return MeasuredRun(conn, graph_, options_.migrator, dir,
                       dir == engine::Direction::kUpgrade ? graph_.Name(to_) : FromTarget(), out);
  }

  void Rehearse() override {
    pg::Connection conn(*url_);
    const std::string range = graph_.Name(from_) + " -> " + graph_.Name(to_);
    r_.title = "Migration rehearsal " + range;
    Recorded recorded;
    inspect::CatalogSnapshot catalog_before;
    Phase("record the schema and the rows", [&] {
      pqxx::read_transaction tx(conn.raw());
      catalog_before = inspect::TakeSnapshot(tx);
      recorded = verify::Record(tx);
      r_.data_line = fmt::format("{} rows in {} tables", recorded.Rows(), recorded.tables.size());
      return r_.data_line;
    });
    const std::map<std::string, TableData>& before = recorded.tables;
    {
      SuiteResult suite;
      Phase("pre-migration checks", [&] {
        suite = RangeSuite("pre");
        return fmt::format("{} of {} passed", suite.Count(Status::kPass), suite.Total());
      });
      r_.phases.back().ok = suite.ok();
      r_.suites.push_back(suite);
      if (!suite.ok()) {
        r_.ready = false;
        r_.exit_code = suite.stopped ? 2 : 1;
        r_.verdict = suite.stopped
                         ? "BLOCKED: this is not the schema " + range + " knows (see the failed pre check); nothing was migrated"
                         : "BLOCKED: a pre check of " + range + " failed (see above); nothing was migrated";
        return;
      }
    }
    std::vector<StepEffect> up_effects, down_effects;
    engine::RunReport up;
    Phase("upgrade " + range, [&] {
      up = Measured(conn, engine::Direction::kUpgrade, up_effects);
      r_.upgrade_seconds = up.seconds;
      r_.upgrade_steps = up.steps;
      return fmt::format("{:.3f}s in one transaction", up.seconds);
    });
    // What the upgrade discarded: tables and columns gone, with their rows.
    Discarded discarded;
    Phase("count what the upgrade discarded", [&] {
      pqxx::read_transaction tx(conn.raw());
      discarded = CountDiscarded(tx, recorded);
      return fmt::format("{} table(s) and {} column(s) dropped", discarded.tables.size(), discarded.columns);
    });
    const std::set<std::string>& dropped_tables = discarded.tables;
    const std::map<std::string, TableData>& after_up = discarded.after;
    r_.suites.push_back(discarded.suite);

    SuiteResult post;
    Phase("post-migration checks", [&] {
      post = RangeSuite("post");
      return post.Total() ? fmt::format("{} of {} passed", post.Count(Status::kPass), post.Total())
                          : std::string("none in the range (`--! check post` in a revision's file)");
    });
    r_.phases.back().ok = post.ok();
    if (!post.checks.empty()) r_.suites.push_back(post);
    // Where every revision of the range says it is idempotent (`--!
    // idempotent`): run again on its own result, it must change nothing.
    std::string second_run_changed;
    bool idempotent_range = true;
    for (engine::Position p = from_ + 1; p <= to_; ++p) idempotent_range &= graph_.at(p).idempotent;
    if (idempotent_range) {
      Phase(fmt::format("idempotent re-run (stamp {}, upgrade again)", graph_.Name(from_)), [&] {
        second_run_changed = SecondRunChanges(conn, graph_, QuietOptions(), FromTarget(), graph_.Name(to_));
        return second_run_changed.empty() ? std::string("second run changed nothing")
                                          : "second run changed " + second_run_changed;
      });
      r_.phases.back().ok = second_run_changed.empty();
    }
    Phase("downgrade " + graph_.Name(to_) + " -> " + graph_.Name(from_), [&] {
      auto down = Measured(conn, engine::Direction::kDowngrade, down_effects);
      r_.downgrade_seconds = down.seconds;
      r_.downgrade_steps = down.steps;
      return fmt::format("{:.3f}s in one transaction", down.seconds);
    });
    r_.suites.push_back(StepEffectsSuite(up_effects, down_effects));

    SuiteResult rollback{"rollback", {}};
    Phase("rollback checks", [&] {
      pqxx::read_transaction tx(conn.raw());
      auto diff = inspect::Diff(catalog_before, inspect::TakeSnapshot(tx));
      std::string shown;
      for (size_t i = 0; i < diff.size() && i < 5; ++i) shown += (i ? "; " : "") + diff[i];
      if (diff.size() > 5) shown += fmt::format("; and {} more", diff.size() - 5);
      rollback.checks.push_back(
          {"rollback.catalog_exact", diff.empty() ? Status::kPass : Status::kFail,
           diff.empty() ? std::string("Schema equals the one before the upgrade (empty diff)")
                        : fmt::format("Schema equals the one before the upgrade: {} difference(s): {}",
                                      diff.size(), shown)});
      std::vector<std::string> differ, only_backup;
      long long kept_rows = 0;
      int kept = 0;
      for (const auto& [t, d] : before) {
        if (dropped_tables.count(t)) {
          if (d.rows > 0) only_backup.push_back(fmt::format("{} {}", t, d.rows));
          continue;
        }
        TableData now = ReadTable(tx, t, &d.key);
        std::vector<std::string> cols;
        for (const auto& c : d.columns)
          if (after_up.at(t).sums.count(c) && now.sums.count(c) && now.sums[c] != d.sums.at(c))
            cols.push_back(c);
        if (now.rows != d.rows)
          differ.push_back(fmt::format("{}: {} rows before, {} now", t, d.rows, now.rows));
        else if (!cols.empty()) {
          std::string list;
          for (const auto& c : cols) list += (list.empty() ? "" : ", ") + c;
          differ.push_back(fmt::format("{}: values of {} differ", t, list));
        }
        kept_rows += d.rows;
        ++kept;
      }
      std::string what;
      for (const auto& x : differ) what += (what.empty() ? "" : "; ") + x;
      rollback.checks.push_back(
          {"rollback.rows", differ.empty() ? Status::kPass : Status::kFail,
           differ.empty() ? fmt::format("Rows of the {} kept tables equal to before ({} rows, every "
                                        "column present before and after)",
                                        kept, kept_rows)
                          : "Rows of the kept tables equal to before: " + what});
      if (!only_backup.empty()) {
        std::string list;
        for (const auto& x : only_backup) list += (list.empty() ? "" : ", ") + x;
        rollback.checks.push_back({"rollback.discarded", Status::kInfo,
                                   "Tables the upgrade dropped come back empty: " + list +
                                       " rows only in a backup"});
      }
      tx.commit();
      for (auto& c : RangeSuite("rollback").checks) rollback.checks.push_back(std::move(c));
      return fmt::format("{} of {} passed", rollback.Count(Status::kPass), rollback.Total());
    });
    r_.phases.back().ok = rollback.ok();
    r_.suites.push_back(rollback);
    engine::RunReport again;
    Phase("final upgrade " + range, [&] {
      again = QuietMigrator(conn).Upgrade(graph_.Name(to_));
      return fmt::format("{:.3f}s", again.seconds);
    });
    // The upgrade at a larger size: a line per step through an empty
    // database at the range's start and this one.
    std::optional<std::vector<engine::StepTiming>> empty;
    Phase("forecast: upgrade an empty database", [&] {
      empty = EmptyUpgradeSteps();
      return empty ? fmt::format("{} steps timed", empty->size())
                   : std::string("no empty database here: the forecast scales every step");
    });
    std::set<std::string> revisions;
    for (engine::Position p = from_ + 1; p <= to_; ++p) revisions.insert(graph_.at(p).revision);
    const double here = static_cast<double>(std::max<long long>(recorded.Rows(), 1));
    r_.forecast = ForecastUpgrade(empty, {&up, &again}, revisions, here,
                                  options_.forecast_rows > 0 ? options_.forecast_rows
                                                             : static_cast<long long>(here) * 10,
                                  "rows");

    const bool in_budget = r_.upgrade_seconds < report::kBudgetSeconds;
    r_.ready = rollback.ok() && post.ok() && in_budget && second_run_changed.empty();
    r_.exit_code = r_.ready ? 0 : 1;
    std::vector<std::string> reasons;
    for (const auto& c : post.checks)
      if (c.status == Status::kFail) reasons.push_back("post check " + c.detail);
    if (!second_run_changed.empty())
      reasons.push_back(fmt::format("{} says it is idempotent, but its second run changed {}", range,
                                    second_run_changed));
    if (!rollback.ok()) {
      std::string why;
      for (const auto& c : rollback.checks)
        if (c.status == Status::kFail) why += (why.empty() ? "" : "; ") + c.detail;
      reasons.push_back(fmt::format("the rollback of {} is not exact: {}", range, why));
    }
    if (!reasons.empty()) {
      std::string all;
      for (const auto& x : reasons) all += (all.empty() ? "" : "; ") + x;
      r_.verdict = "NOT READY: " + all;
    } else if (!in_budget) {
      r_.verdict = fmt::format("NOT READY: the upgrade took {:.1f}s, over the {:.0f}s budget",
                               r_.upgrade_seconds, report::kBudgetSeconds);
    } else {
      long long lost = 0;
      for (const auto& t : dropped_tables) lost += before.at(t).rows;
      r_.verdict = fmt::format("READY: {} upgraded in {:.3f}s and rolled back exactly in {:.3f}s{}", range,
                               r_.upgrade_seconds, r_.downgrade_seconds,
                               lost ? fmt::format("; {} rows of dropped tables come back only from a backup", lost)
                                    : std::string());
    }
  }

  const RangeOptions& range_;
  engine::Position from_ = 0, to_ = 0;
};

}  // namespace

Rehearsal RunRange(const VerifyOptions& options, const RangeOptions& range,
                   const engine::RevisionGraph& graph, Rehearsal* partial) {
  return RangeRunner(options, range, graph).Go(partial);
}

}  // namespace harness::verify
