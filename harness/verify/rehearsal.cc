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

#include "fixtures/generator.h"
#include "fixtures/shapes.h"
#include "harness/checks/suites.h"
#include "harness/error.h"
#include "harness/inspect/catalog.h"
#include "harness/pg/cluster.h"
#include "harness/pg/connection.h"
#include "harness/pg/disposable_database.h"
#include "harness/pg/interrupt.h"
#include "harness/report/forecast.h"
#include "harness/verify/effects.h"

namespace harness::verify {

namespace {

using Clock = std::chrono::steady_clock;

class Runner {
 public:
  Runner(const VerifyOptions& o, const engine::RevisionGraph& g)
      : options_(o), graph_(g), range_(checks::RangeTo(g, o.target)) {}

  Rehearsal Go(Rehearsal* partial) {
    try {
      PrepareTarget();
      Rehearse();
    } catch (const Error& e) {
      Record(e, partial);
      throw;
    } catch (const pqxx::sql_error& e) {
      // A query of the rehearsal's own (counts, snapshots, checks), or one
      // that Ctrl-C cancelled.
      try {
        pg::ThrowIfInterrupted(Running());
      } catch (const Error& interrupted) {
        Record(interrupted, partial);
        throw;
      }
      Error converted = pg::FromSqlError(e, "verify: " + Running());
      Record(converted, partial);
      throw converted;
    } catch (const pqxx::broken_connection& e) {
      Error converted =
          DatabaseError("verify: lost the connection while " + Running() + ": " +
                        (url_ ? pg::Redact(e.what(), *url_) : std::string(e.what())));
      Record(converted, partial);
      throw converted;
    }
    return std::move(r_);
  }

 private:
  // Times `fn`, records the phase; `fn` returns its detail line.
  template <typename Fn>
  void Phase(const std::string& name, Fn&& fn, bool status_line = true) {
    pg::ThrowIfInterrupted(name);
    spdlog::info("verify: {}...", name);
    struct StatusGuard {
      const VerifyOptions& o;
      bool on;
      ~StatusGuard() {
        if (on && o.on_phase_end) o.on_phase_end();
      }
    } guard{options_, status_line && options_.on_phase_start != nullptr};
    if (guard.on) options_.on_phase_start(name);
    running_ = name;
    auto t0 = Clock::now();
    std::string detail = fn();
    running_.clear();
    double s = std::chrono::duration<double>(Clock::now() - t0).count();
    r_.phases.push_back({name, s, true, detail});
    spdlog::info("verify: {}: {} ({:.3f}s)", name, detail, s);
  }

  void FailPhase(const std::string& name, const std::string& detail) {
    r_.phases.push_back({name, 0, false, detail});
  }

  std::string Running() const { return running_.empty() ? "the rehearsal" : running_; }

  // The phase that was running failed: the report says so, and the verdict
  // carries the error's exit code.
  void Record(const Error& e, Rehearsal* partial) {
    if (!partial) return;
    FailPhase(Running(), e.what());
    Verdict(false, static_cast<int>(e.code()),
            fmt::format("{}: {}", e.code() == ExitCode::kInterrupted ? "INTERRUPTED" : "FAILED",
                        e.what()));
    *partial = r_;
  }

  void PrepareTarget() {
    if (!options_.source) {
      Phase("start embedded PostgreSQL", [&] {
        pg::ClusterOptions co;
        co.bin_dir = options_.pg_bindir;
        cluster_ = pg::EmbeddedCluster::Start(co);
        return fmt::format("PostgreSQL {} on a private socket", cluster_->server_version());
      });
      Phase("build a database at 005", [&] {
        db_ = std::make_unique<pg::DisposableDatabase>(cluster_->AdminUrl(), "template0",
                                                       "mh_verify");
        url_ = db_->url();
        fixtures::BuildAt005(*url_, options_.shape, graph_);
        return options_.shape == inspect::Shape::kProduction
                   ? std::string("the production schema at 005 (the service's own chain)")
                   : std::string("upgraded <base> -> 005");
      });
      Phase("generate data", [&] {
        pg::Connection conn(*url_);
        fixtures::GeneratorOptions go;
        go.repositories = options_.repositories;
        go.chunks_per_repo = options_.chunks_per_repo;
        go.seed = options_.seed;
        go.progress = options_.progress;
        auto rep = fixtures::Generate(conn, go);
        return fmt::format("{} repositories, {}{} chunks, {} rows in the tables 002 drops{} "
                           "({:.0f} rows/s, {:.0f} chunks/s)",
                           rep.repositories,
                           rep.files ? fmt::format("{} code files, ", rep.files) : "", rep.chunks,
                           rep.other_rows,
                           rep.kept_rows ? fmt::format(", {} in the other kept tables",
                                                       rep.kept_rows)
                                         : "",
                           rep.rows_per_second, rep.chunks_per_second);
      }, /*status_line=*/!options_.progress);  // the generator draws its own
      r_.target = fmt::format("embedded cluster, generated data (seed {}, {} shape)", options_.seed,
                              inspect::ShapeName(options_.shape));
      return;
    }
    const pg::Url& source = *options_.source;
    r_.target = source.Describe();  // until it says more
    ConnectPhase(source);
    if (options_.in_place) {
      url_ = source;
      r_.target = source.Describe() + " (in place: this database is migrated)";
      spdlog::warn("verify --in-place: migrating {} itself", source.Describe());
      return;
    }
    if (options_.into_embedded) {
      Phase("start embedded PostgreSQL", [&] {
        pg::ClusterOptions co;
        co.bin_dir = options_.pg_bindir;
        cluster_ = pg::EmbeddedCluster::Start(co);
        return fmt::format("PostgreSQL {} on a private socket", cluster_->server_version());
      });
      Phase("check the source's extensions", [&] { return RequireExtensions(source); });
      Phase("copy the database into the embedded cluster", [&] {
        double s = cluster_->CopyDatabaseFrom(source, "mh_verify_copy",
                                              options_.migrator.lock_timeout_seconds);
        url_ = cluster_->UrlFor("mh_verify_copy");
        return fmt::format("pg_dump, then pg_restore, in {:.1f}s; the source was only read", s);
      });
      r_.target = source.Describe() + " copied into the embedded cluster";
      return;
    }
    Phase("clone the database on its server", [&] {
      const pg::Url admin = source.WithDatabase("postgres");
      try {
        pg::Connection probe(admin, "migration-harness verify");
      } catch (const Error& e) {
        if (e.code() != ExitCode::kDatabase) throw;
        throw DatabaseError(
            std::string("verify makes its scratch clone from the database 'postgres' of the "
                        "same server, and ") + e.what(),
            "that database must exist and this user must be allowed to connect to it (GRANT "
            "CONNECT ON DATABASE postgres TO " +
                (source.user().empty() ? std::string("USER") : source.user()) +
                ";); or use --into-embedded (copies the database with pg_dump into a private "
                "PostgreSQL here), or --in-place on a restored copy");
      }
      // A verify killed before its clean-up (SIGKILL) leaves its clone.
      pg::ReapAbandonedDatabases(admin, "mh_verify");
      const std::string hint =
          "CREATE DATABASE ... TEMPLATE needs the CREATEDB right and no other session on the "
          "source database: close them, or use --into-embedded (copies it with pg_dump into "
          "a private PostgreSQL here), or --in-place on a restored copy";
      // The server would wait 5 s for other sessions on the source to
      // leave, then fail without naming them: they are named at once.
      if (std::string sessions = OtherSessions(admin, source.dbname()); !sessions.empty())
        throw DatabaseError("cannot clone " + source.Describe() +
                                " into a scratch database: other sessions are connected to it (" +
                                sessions + ")",
                            hint);
      try {
        db_ = std::make_unique<pg::DisposableDatabase>(admin, source.dbname(), "mh_verify");
      } catch (const Error& e) {
        if (e.code() == ExitCode::kInterrupted) throw;
        throw DatabaseError(
            std::string("cannot clone ") + source.Describe() + " into a scratch database: " +
                e.what(),
            hint);
      }
      url_ = db_->url();
      return fmt::format("scratch database {} (dropped at the end)", db_->name());
    });
    r_.target = source.Describe() + " cloned into " + db_->name();
  }

  // Sessions on `dbname` other than this one: "pid 123 (psql, user app)".
  // A session that has just closed (this run's own first connection, say)
  // lingers while its backend exits, longer on a loaded machine: given up
  // to 1 s to go before the others are named.
  static std::string OtherSessions(const pg::Url& admin, const std::string& dbname) {
    pg::Connection conn(admin, "migration-harness verify");
    std::string out;
    for (int attempt = 0; attempt < 20; ++attempt) {
      if (attempt) {
        pg::ThrowIfInterrupted("waiting for closing sessions on " + dbname);
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
      }
      out.clear();
      // Its own transaction each time: pg_stat_activity is read once per transaction.
      pqxx::nontransaction tx(conn.raw());
      for (const auto& r : tx.exec_params(
               "SELECT pid, coalesce(nullif(application_name, ''), 'no application name'), "
               "coalesce(usename::text, '?') FROM pg_catalog.pg_stat_activity WHERE datname = $1 "
               "AND pid <> pg_catalog.pg_backend_pid() ORDER BY pid",
               dbname))
        out += fmt::format("{}pid {} ({}, user {})", out.empty() ? "" : ", ", r[0].c_str(),
                           r[1].c_str(), r[2].c_str());
      if (out.empty()) break;
    }
    return out;
  }

  // pg_restore of a database that uses an extension the embedded server
  // lacks (pgvector, say) fails half way: refused before anything is copied.
  std::string RequireExtensions(const pg::Url& source) {
    std::vector<std::pair<std::string, std::string>> used;  // name, version
    {
      pg::Connection conn(source);
      pqxx::read_transaction tx(conn.raw());
      for (const auto& r :
           tx.exec("SELECT extname, extversion FROM pg_catalog.pg_extension ORDER BY 1"))
        used.emplace_back(r[0].as<std::string>(), r[1].as<std::string>());
    }
    // The same version: pg_restore of another one's objects can fail half way.
    std::string missing;
    {
      pg::Connection conn(cluster_->AdminUrl());
      pqxx::read_transaction tx(conn.raw());
      for (const auto& [name, version] : used) {
        if (!tx.exec_params("SELECT 1 FROM pg_catalog.pg_available_extension_versions WHERE "
                            "name = $1 AND version = $2",
                            name, version)
                 .empty())
          continue;
        pqxx::row has = tx.exec_params1(
            "SELECT coalesce(pg_catalog.string_agg(version, ', ' ORDER BY version), '') FROM "
            "pg_catalog.pg_available_extension_versions WHERE name = $1",
            name);
        const std::string here = has[0].as<std::string>();
        missing += fmt::format("{}{} {}{}", missing.empty() ? "" : ", ", name, version,
                               here.empty() ? "" : " (here: " + here + ")");
      }
    }
    if (!missing.empty())
      throw UsageError(
          fmt::format("{} uses the extension(s) {}, which the embedded PostgreSQL {} does not "
                      "have; a copy could not be restored there",
                      source.Describe(), missing, cluster_->server_version()),
          "rehearse on the source's own server instead: leave out --into-embedded (verify then "
          "clones the database there; needs CREATEDB), or --in-place on a restored copy; "
          "nothing was copied");
    std::string names;
    for (const auto& [name, version] : used)
      names += fmt::format("{}{} {}", names.empty() ? "" : ", ", name, version);
    return fmt::format("{} available here", names.empty() ? "no extensions," : names + ":");
  }

  engine::Migrator MakeMigrator(pg::Connection& conn) {
    return engine::Migrator(conn, graph_, options_.migrator);
  }

  // For runs the report sums up in a line (setup, the idempotent re-run,
  // the final upgrade, the forecast's measurement): their steps and the
  // server's notices go to the debug log (-v), not the terminal.
  engine::Migrator QuietMigrator(pg::Connection& conn) {
    engine::MigratorOptions quiet = options_.migrator;
    quiet.log_steps = false;
    return engine::Migrator(conn, graph_, quiet);
  }

  // A check suite, timed as a phase of its own.
  checks::SuiteResult Suite(const std::string& name,
                            const std::function<checks::SuiteResult(pqxx::transaction_base&)>& fn) {
    checks::SuiteResult s;
    Phase(name, [&] {
      pg::Connection conn(*url_);
      pqxx::read_transaction tx(conn.raw());
      s = fn(tx);
      return fmt::format("{} of {} passed", s.Count(checks::Status::kPass), s.Total());
    });
    r_.phases.back().ok = s.ok();
    r_.suites.push_back(s);
    return s;
  }

  void Verdict(bool ready, int code, const std::string& line) {
    r_.ready = ready;
    r_.exit_code = code;
    r_.verdict = line;
  }

  // The server the database lives on: the source's, before anything is
  // cloned or copied (a copy into the embedded cluster would hide it).
  void ConnectPhase(const pg::Url& url) {
    Phase("connect", [&] {
      pg::Connection conn(url);
      pqxx::read_transaction tx(conn.raw());
      int num = tx.exec1("SHOW server_version_num")[0].as<int>();
      r_.server_version = tx.exec1("SHOW server_version")[0].as<std::string>();
      if (num < options_.minimum_server_version)
        throw UsageError(fmt::format("the server runs PostgreSQL {} (server_version_num {}); "
                                     "migration {} needs {} or later",
                                     r_.server_version, num, range_.graph->Name(range_.to),
                                     options_.minimum_server_version / 10000),
                         "upgrade the server first; nothing was changed");
      return "PostgreSQL " + r_.server_version + " at " + url.Describe();
    });
  }

  void Rehearse() {
    if (!options_.source) ConnectPhase(*url_);
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
        if (auto shape = inspect::DetectShape(tx)) {
          shape_ = *shape;
          r_.shape = inspect::ShapeName(*shape);
        }
      } catch (const Error& e) {
        FailPhase("schema shape", e.what());
        Verdict(false, static_cast<int>(e.code()),
                fmt::format("BLOCKED: migration {} does not know this schema: {}",
                            range_.graph->Name(range_.to), e.what()));
        return;
      }
      for (auto [table, count] : {std::pair{"repositories", &r_.repositories},
                                  std::pair{"code_chunks", &r_.chunks}})
        if (!tx.exec_params1("SELECT to_regclass($1)", table)[0].is_null())
          *count = tx.exec1(std::string("SELECT count(*) FROM ") + table)[0].as<long long>();
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

  // Where an empty database can be made next to the rehearsal's: the
  // embedded cluster, or the source's server where a scratch clone was
  // made already (needs CREATEDB). Never in place: that server is not ours
  // to add databases to.
  std::optional<pg::Url> AdminUrl() const {
    if (cluster_) return cluster_->AdminUrl();
    if (options_.source && !options_.in_place) return options_.source->WithDatabase("postgres");
    return std::nullopt;
  }

  // The upgrade's steps on an empty database at 005: each step's fixed cost,
  // the intercept of the forecast's lines.
  std::optional<std::vector<engine::StepTiming>> EmptyUpgradeSteps() {
    auto admin = AdminUrl();
    if (!admin) return std::nullopt;
    try {
      pg::DisposableDatabase empty(*admin, "template0", "mh_verify_empty");
      fixtures::BuildAt005(empty.url(), shape_, graph_);
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

  const VerifyOptions& options_;
  const engine::RevisionGraph& graph_;
  const checks::Range range_;  // the target's parent to the target
  Rehearsal r_;
  std::unique_ptr<pg::EmbeddedCluster> cluster_;
  std::unique_ptr<pg::DisposableDatabase> db_;  // declared after cluster_: dropped first
  std::optional<pg::Url> url_;
  inspect::Shape shape_ = inspect::Shape::kQuickstart;  // the database's, once detected
  std::string running_;  // the phase under way, for the report of a failure
};

}  // namespace

Rehearsal Run(const VerifyOptions& options, const engine::RevisionGraph& graph,
              Rehearsal* partial) {
  return Runner(options, graph).Go(partial);
}

}  // namespace harness::verify
