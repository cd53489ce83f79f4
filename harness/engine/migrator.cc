#include "harness/engine/migrator.h"

#include <algorithm>
#include <chrono>
#include <memory>
#include <regex>
#include <sstream>
#include <thread>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "harness/engine/check_query.h"
#include "harness/engine/lock_wait_monitor.h"
#include "harness/engine/sql_statements.h"
#include "harness/engine/version_table.h"
#include "harness/error.h"
#include "harness/pg/interrupt.h"
#include "harness/sys/untrusted_text.h"

namespace harness::engine {

namespace {

using Clock = std::chrono::steady_clock;
double Since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

// Who holds locks on the database's tables: asked from a second connection
// after a lock timeout, so the message can name the table and the session.
constexpr const char* kLockHoldersQuery = R"SQL(
SELECT c.relname, l.mode, a.pid, a.query_start, a.state, left(a.query, 120) AS query
FROM pg_catalog.pg_locks l
JOIN pg_catalog.pg_class c ON c.oid = l.relation
JOIN pg_catalog.pg_stat_activity a ON a.pid = l.pid
WHERE l.database = (SELECT oid FROM pg_catalog.pg_database WHERE datname = current_database())
  AND l.granted AND l.pid <> pg_backend_pid()
  AND c.relkind IN ('r', 'p') AND c.relnamespace = 'public'::regnamespace
ORDER BY c.relname, a.query_start
)SQL";

std::string DescribeLockHolders(const pg::Url& url) {
  try {
    pg::Connection side(url, "migration-harness diagnostics");
    pqxx::read_transaction tx(side.raw());
    std::string out;
    for (const auto& r : tx.exec(kLockHoldersQuery)) {
      if (!out.empty()) out += "; ";
      // The other session's state and query are its own text: shown, made
      // safe to show (pg/untrusted_text.h).
      out += fmt::format("table {} is locked ({}) by pid {} ({}, query started {}: {})",
                         sys::ShowUntrusted(r["relname"].c_str()), r["mode"].c_str(),
                         r["pid"].c_str(), sys::ShowUntrusted(r["state"].c_str()),
                         r["query_start"].c_str(), sys::ShowUntrusted(r["query"].c_str(), 120));
    }
    return out;
  } catch (const std::exception&) {
    return {};
  }
}

// What a step's interval of the monitor saw, added to the step (its SQL,
// then its commit, are watched apart: the hook between is not the step's).
void AddWait(StepTiming& st, const LockWait& w) {
  st.lock_wait_known = st.lock_wait_known && w.known;
  st.lock_wait_seconds += w.seconds;
  for (const auto& b : w.blockers)
    if (std::find(st.waited_for.begin(), st.waited_for.end(), b) == st.waited_for.end())
      st.waited_for.push_back(b);
}

// ", waited 1.010s for a lock held by autovacuum worker pid 1234: ...", or
// nothing when the step did not wait (or its wait was not watched: the
// monitor said so once).
std::string WaitNote(const StepTiming& st) {
  if (st.lock_wait_seconds <= 0 && st.waited_for.empty()) return {};
  std::string who;
  for (const auto& b : st.waited_for) who += (who.empty() ? "" : "; ") + b;
  return fmt::format(", waited {:.3f}s for a lock{}", st.lock_wait_seconds,
                     who.empty() ? std::string() : " held by " + who);
}

// A revision's `--! guard_step:`: each of its guards (pre checks marked
// `guard`) in the migration's transaction, as `check pre` runs it; the
// first that fails refuses the upgrade with its failing lines (a gate's:
// exit 2, a check's: 1), before anything after the step has run. Passing
// lines are logged as the step's own.
void RunGuards(pqxx::dbtransaction& tx, const MigrationFile& file, spdlog::level::level_enum level) {
  for (const auto& c : file.checks) {
    if (!c.guard) continue;
    std::string failed;
    for (const auto& line : RunCheckQuery(tx, file, c, "pre", /*as_guard=*/true)) {
      if (line.passed == false) failed += (failed.empty() ? "" : "; ") + sys::ShowUntrusted(line.detail, 4000);
      else spdlog::log(level, "[migration.{}] {} {}", file.revision, line.passed ? "✓" : "•",
                       sys::ShowUntrusted(line.detail, 4000));
    }
    if (failed.empty()) continue;
    const std::string what = fmt::format("revision {} refuses to run: {} [{}]", file.revision, failed, c.name);
    const std::string hint = fmt::format("nothing was changed; `migration-harness check pre --target {}` reports the "
                                         "same (its {} {})",
                                         file.revision, c.gate ? "gate" : "check", c.name);
    throw c.gate ? UsageError(what, hint) : RefusedError(what, hint);
  }
}

// The guard step for --sql: each guard as a DO block that raises the
// detail of its first failing line (the verdict form) or its first row
// (the other form), as the engine refuses.
std::string GuardSql(const MigrationFile& file) {
  std::string out =
      "SELECT pg_catalog.set_config('migration_harness.check_when', 'pre', true), "
      "pg_catalog.set_config('migration_harness.guard', 'on', true);\n";
  // A name in a string literal of RAISE: quotes doubled, % not a placeholder.
  auto literal = [](const std::string& text) {
    std::string quoted;
    for (char ch : text) quoted += ch == '\'' ? std::string("''") : ch == '%' ? std::string("%%") : std::string(1, ch);
    return quoted;
  };
  for (const auto& c : file.checks) {
    if (!c.guard) continue;
    const std::vector<std::string> statements = SplitStatements(c.sql);
    const std::string query = statements.empty() ? c.sql : statements.front();
    out += fmt::format(
        "-- guard {0}: `migration-harness check pre` runs the same query\n"
        "DO $mh_guard$\nDECLARE r jsonb;\nBEGIN\n    FOR r IN SELECT pg_catalog.to_jsonb(q) FROM (\n{1}\n    ) q LOOP\n"
        "        IF NOT r ? 'passed' OR (r ->> 'passed')::boolean IS FALSE THEN\n"
        "            RAISE EXCEPTION 'revision {2} refuses to run: % [{0}]', coalesce(r ->> 'detail', r::text)\n"
        "                USING ERRCODE = '{3}';\n"
        "        END IF;\n    END LOOP;\nEND\n$mh_guard$;\n",
        literal(c.name), query, file.revision, c.gate ? "MHP00" : "MHR00");
  }
  return out;
}

}  // namespace

void RefuseStepsThatLeaveTheTransaction(const RevisionGraph& graph, Direction direction, Position from,
                                        Position to) {
  const bool up = direction == Direction::kUpgrade;
  for (Position p = from; p != to; p += up ? 1 : -1) {
    const MigrationFile& file = graph.at(up ? p + 1 : p);
    const auto& steps = up ? file.upgrade : file.downgrade;
    for (size_t i = 0; i < steps.size(); ++i) {
      if (steps[i].records_revision || steps[i].runs_guards) continue;
      const std::string why = WhyLeavesTheTransaction(steps[i].sql);
      if (why.empty()) continue;
      throw UsageError(fmt::format("revision {} {} step {}/{} ({}, {}:{}) holds {}, which would end or replace the "
                                   "migration's one transaction and leave the revision half applied; nothing was "
                                   "run",
                                   file.revision, up ? "upgrade" : "downgrade", i + 1, steps.size(),
                                   sys::ShowUntrusted(steps[i].name, 80), file.path.filename().string(), steps[i].line,
                                   why),
                       "remove it: the engine runs every step of the path in one transaction and commits it "
                       "itself");
    }
  }
}

bool IsRevisionsOwnError(const std::string& state) {
  if (state.size() != 5) return false;
  const std::string cls = state.substr(0, 2);
  for (const char* environment : {"08", "53", "57", "58", "XX", "40"})
    if (cls == environment) return false;
  return state != "55P03";
}

// At <base> the schema must be empty: tables there mean the database was
// built some other way (or its alembic_version was emptied), and running
// the first revision would only fail half way with "already exists".
void RefuseUnrecordedSchema(pqxx::transaction_base& tx, bool version_table) {
  pqxx::row r = tx.exec1(
      "SELECT count(*), string_agg(relname, ', ' ORDER BY relname) FILTER (WHERE rn <= 5) "
      "FROM (SELECT relname, row_number() OVER (ORDER BY relname) AS rn FROM pg_catalog.pg_class c "
      "      WHERE relnamespace = 'public'::regnamespace AND relkind IN ('r', 'p') "
      "        AND relname NOT IN ('alembic_version', 'migration_harness_progress') "
      // An extension's own tables (PostGIS's spatial_ref_sys, say) are not the schema's.
      "        AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend d WHERE d.classid = 'pg_class'::regclass "
      "                        AND d.objid = c.oid AND d.deptype = 'e')) t");
  long long n = r[0].as<long long>();
  if (n == 0) return;
  throw UsageError(
      fmt::format("{}, but the database already has {} table(s) ({}{}): its revision is not "
                  "recorded",
                  version_table ? "alembic_version is empty" : "there is no alembic_version table",
                  n, r[1].c_str(), n > 5 ? ", ..." : ""),
      "nothing was changed; if you know which revision its schema is at, record it with "
      "`migration-harness stamp REVISION`, then upgrade");
}

Migrator::Migrator(pg::Connection& conn, const RevisionGraph& graph, MigratorOptions options)
    : conn_(conn), graph_(graph), options_(std::move(options)) {}

Position Migrator::Interpret(const std::optional<std::vector<std::string>>& rows) const {
  if (!rows || rows->empty()) return 0;
  if (rows->size() > 1) {
    std::string all;
    for (const auto& r : *rows) all += (all.empty() ? "" : ", ") + r;
    throw UsageError("alembic_version holds " + std::to_string(rows->size()) + " rows (" + all +
                         "); this chain has a single head",
                     "find the real state of the schema, then record it with: migration-harness "
                     "stamp REVISION");
  }
  if (auto p = graph_.Find(rows->front())) return *p;
  throw UsageError("the database is at revision '" + rows->front() +
                       "', which this chain does not know (" + graph_.KnownRevisions() + ")",
                   "use the migrations the database was built with, or, if you are sure of its "
                   "schema, record the right revision with: migration-harness stamp REVISION");
}

std::optional<Position> Migrator::CurrentIfVersioned() {
  try {
    pqxx::read_transaction tx(conn_.raw());
    auto rows = ReadVersionRows(tx);
    if (!rows) return std::nullopt;
    return Interpret(rows);
  } catch (const pqxx::sql_error& e) {
    throw pg::FromSqlError(e, "reading alembic_version");
  }
}

Position Migrator::Current() { return CurrentIfVersioned().value_or(0); }

RunReport Migrator::Upgrade(const std::string& target) { return Run(Direction::kUpgrade, target); }
RunReport Migrator::Downgrade(const std::string& target) {
  return Run(Direction::kDowngrade, target);
}

RunReport Migrator::Run(Direction direction, const std::string& target) {
  double delay = options_.lock_retry_delay_seconds;
  const int attempts = 1 + std::max(0, options_.lock_retries);
  for (int attempt = 1;; ++attempt) {
    try {
      return RunOnce(direction, target);
    } catch (const LockTimeoutError& e) {
      if (attempt == attempts) {
        if (attempts == 1) throw;
        throw LockTimeoutError(e, fmt::format("{} (attempt {} of {})", e.what(), attempt, attempts),
                               std::string(left_in_progress_ ? "the phase that gave up changed nothing"
                                                             : "nothing was changed") +
                                   "; retry when those sessions are done (or stop them), or raise --lock-timeout "
                                   "or --lock-retries");
      }
      spdlog::warn("attempt {} of {}: {}; {} in {:.1f}s", attempt, attempts, e.what(),
                   left_in_progress_ ? fmt::format("the phase that gave up changed nothing, trying again from phase {}",
                                                   left_in_progress_->phases_done + 1)
                                     : std::string("nothing was changed, trying again from the start"),
                   delay);
      // A pause Ctrl-C ends at once.
      const auto until = Clock::now() + std::chrono::duration<double>(delay);
      while (Clock::now() < until) {
        sys::ThrowIfInterrupted("waiting to try the migration again");
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
      }
      delay = std::min(delay * 2, 30.0);
    }
  }
}

namespace {

// The phase of each upgrade step of a revision run online: phase 1 is the
// transaction of the steps before the first `--! online_step:`; each
// online step is a phase of its own; the steps after one (and the
// recording of the revision) are a transaction, the next phase.
std::vector<int> PhasesOf(const std::vector<Step>& steps) {
  std::vector<int> out;
  int phase = 1;
  for (size_t i = 0; i < steps.size(); ++i) {
    if (steps[i].online || (i > 0 && steps[i - 1].online)) ++phase;
    out.push_back(phase);
  }
  return out;
}

// One revision's part of a run.
struct Hop {
  const MigrationFile* file = nullptr;
  std::string from_rev, to_rev;  // what alembic_version says before and after ("" at base)
  bool online = false;           // run in phases (upgrade --online, a revision with online steps)
  int phases_done = 0;           // resumed: the phases a previous run committed
  bool undo = false;             // a downgrade of the revision in progress: alembic_version stays
};

}  // namespace

RunReport Migrator::RunOnce(Direction direction, const std::string& target) {
  const bool up = direction == Direction::kUpgrade;
  const auto level = options_.log_steps ? spdlog::level::info : spdlog::level::debug;
  RunReport report;
  left_in_progress_.reset();
  auto t_start = Clock::now();
  pg::CancelOnInterrupt cancel(conn_);
  struct QuietNotices {
    pg::Connection& conn;
    explicit QuietNotices(pg::Connection& c, bool quiet) : conn(c) { conn.set_quiet_notices(quiet); }
    ~QuietNotices() { conn.set_quiet_notices(false); }
  } quiet_notices(conn_, !options_.log_steps);
  // `--online`: the migration lock is the session's, held across the
  // phases' transactions, and let go however the run ends (declared before
  // the transaction, so it is let go after it).
  struct SessionLock {
    pg::Connection& conn;
    bool held = false;
    ~SessionLock() {
      if (!held) return;
      try {
        pqxx::nontransaction nt(conn.raw());
        nt.exec(fmt::format("SELECT pg_catalog.pg_advisory_unlock({})", kMigrationLockKey));
      } catch (const std::exception&) {  // a broken connection lets it go too
      }
    }
  } session_lock{conn_};
  // Made once there is something to run (it connects while the first
  // step's checks run); destroyed when the run ends, however it ends (it
  // joins its thread and closes its connection).
  std::unique_ptr<LockWaitMonitor> monitor;
  double waited = 0;
  int transactions = 0;
  std::string where = "starting the migration";
  // The step whose SQL is running: an error there is the revision's own.
  const Step* running_step = nullptr;
  std::string running_revision;
  std::unique_ptr<pqxx::work> tx;
  // What every transaction of the run starts with (SET LOCAL), or, for an
  // online step, the session (SET, reset after it).
  auto apply_settings = [&](pqxx::transaction_base& t, bool local) {
    t.exec(fmt::format("SELECT pg_catalog.set_config('lock_timeout', '{}', {})",
                       pg::PgDuration(options_.lock_timeout_seconds), local));
    for (const auto& [name, value] : options_.settings)
      t.exec("SELECT pg_catalog.set_config(" + t.quote(name) + ", " + t.quote(value) + ", " +
             (local ? "true" : "false") + ")");
    if (options_.online) t.exec(fmt::format("SELECT pg_catalog.set_config('migration_harness.online', 'on', {})", local));
  };
  auto reset_settings = [&](pqxx::transaction_base& t) {
    t.exec("RESET lock_timeout");
    static const std::regex kSettingName("[a-z_][a-z0-9_]*(\\.[a-z_][a-z0-9_]*)?");
    for (const auto& [name, value] : options_.settings)
      t.exec(std::regex_match(name, kSettingName) ? "RESET " + name
                                                   : "SELECT pg_catalog.set_config(" + t.quote(name) + ", '', false)");
    if (options_.online) t.exec("RESET migration_harness.online");
  };
  std::string xid;
  int unit = 0;  // StepTiming::transaction
  auto open_transaction = [&] {
    tx = std::make_unique<pqxx::work>(conn_.raw());
    ++transactions;
    ++unit;
    apply_settings(*tx, true);
    xid = tx->exec1("SELECT pg_catalog.txid_current()::pg_catalog.text")[0].as<std::string>();
  };
  // The revision left part way (said before the error, whatever it is).
  std::optional<OnlineProgress> progress_now;
  auto save_progress = [&](pqxx::transaction_base& t, const Hop& hop, int done, int phases,
                           const std::string& step) {
    t.exec(kCreateProgressTable);
    ReadProgress(t);  // refuses a table of that name that is not the tool's
    t.exec("INSERT INTO public.migration_harness_progress (revision, parent, phases_done, phases, step) VALUES (" +
           t.quote(hop.file->revision) + ", " + t.quote(up ? hop.from_rev : hop.to_rev) + ", " +
           std::to_string(done) + ", " + std::to_string(phases) + ", " + t.quote(step) +
           ") ON CONFLICT (revision) DO UPDATE SET phases_done = EXCLUDED.phases_done, step = EXCLUDED.step, "
           "updated_at = pg_catalog.now()");
  };
  // An online revision's phase ends: its transaction commits with the
  // progress. `timed`: the step that ends the phase, whose time and lock
  // waits the commit's are.
  auto commit_phase = [&](const Hop& hop, int done, int phases, const std::string& step, StepTiming* timed) {
    save_progress(*tx, hop, done, phases, step);
    where = fmt::format("committing phase {} of {} of revision {}", done, phases, hop.file->revision);
    sys::ThrowIfInterrupted(where);
    if (timed && monitor) monitor->Begin();
    auto t_commit = Clock::now();
    tx->commit();
    tx.reset();
    if (timed) {
      timed->seconds += Since(t_commit);
      if (monitor) AddWait(*timed, monitor->End());
    }
    progress_now = OnlineProgress{hop.file->revision, hop.from_rev, done, phases, step};
    spdlog::log(level, "[migration.{}] Phase {} of {} committed", hop.file->revision, done, phases);
  };
  try {
    open_transaction();
    // Serialise runners: the second waits here, then finds nothing to do.
    const std::string lock_fn = options_.online ? "pg_advisory_lock" : "pg_advisory_xact_lock";
    if (!tx->exec1(fmt::format("SELECT pg_catalog.pg_try_{}({})", lock_fn.substr(3), kMigrationLockKey))[0]
             .as<bool>()) {
      if (!options_.wait_for_migration_lock)
        throw DatabaseError("another migration is running on " + conn_.url().Describe() +
                                " (it holds the migration lock)",
                            "wait for it to finish, or run without --no-wait to queue behind it");
      spdlog::info("Another migration holds the migration lock on this database; waiting for it");
      tx->exec("SET LOCAL lock_timeout = 0");
      tx->exec(fmt::format("SELECT pg_catalog.{}({})", lock_fn, kMigrationLockKey));
      tx->exec(fmt::format("SET LOCAL lock_timeout = '{}'", pg::PgDuration(options_.lock_timeout_seconds)));
    }
    session_lock.held = options_.online;

    auto rows = ReadVersionRows(*tx);
    Position from = Interpret(rows);
    const std::optional<OnlineProgress> progress = ReadProgress(*tx);
    if (progress) {
      const Position at = graph_.Find(progress->revision).value_or(-1);
      if (at < 1 || graph_.Name(at - 1) != (progress->parent.empty() ? graph_.Name(0) : progress->parent) ||
          at - 1 != from)
        throw UsageError(fmt::format("{}, but alembic_version says {}: the two records disagree", progress->Describe(),
                                     graph_.Name(from)),
                         "find the real state of the schema; then record it with `migration-harness stamp "
                         "REVISION` and delete the row of public.migration_harness_progress");
      if (up && !options_.online)
        throw UsageError(fmt::format("{}: an upgrade in one transaction would run its phases again", progress->Describe()),
                         fmt::format("complete it with `migration-harness upgrade --online`, or undo it with "
                                     "`migration-harness downgrade {}`",
                                     graph_.Name(from)));
      progress_now = progress;
    }
    Position to = up ? graph_.ResolveUpgradeTarget(target, from)
                     : graph_.ResolveDowngradeTarget(target, from);
    report.from = progress && !up ? progress->revision + " (in progress)" : graph_.Name(from);
    report.to = graph_.Name(to);
    if (from == to && !(progress && !up)) {
      report.noop = true;
      spdlog::info("Already at {}: nothing to {}{}", graph_.Name(from), up ? "upgrade" : "downgrade",
                   progress ? fmt::format(" ({}; `upgrade --online` completes it)", progress->Describe())
                            : std::string());
      tx->commit();
      report.seconds = Since(t_start);
      return report;
    }
    if (options_.watch_lock_waits)
      monitor = std::make_unique<LockWaitMonitor>(conn_.url(), conn_.backend_pid(),
                                                  !options_.log_steps);
    RefuseStepsThatLeaveTheTransaction(graph_, direction, from, to);
    // The undo of a revision in progress runs its downgrade too.
    if (progress && !up) RefuseStepsThatLeaveTheTransaction(graph_, Direction::kDowngrade, from + 1, from);
    if (up && from == 0) RefuseUnrecordedSchema(*tx, rows.has_value());
    if (!rows) tx->exec(kCreateVersionTable);

    std::vector<Hop> hops;
    if (progress && !up) {
      const MigrationFile& file = graph_.at(from + 1);
      hops.push_back({&file, progress->parent, progress->parent, false, 0, true});
    }
    for (Position p = from; p != to; p += up ? 1 : -1) {
      const MigrationFile& file = graph_.at(up ? p + 1 : p);
      const std::string prev = graph_.Name(up ? p : p - 1);
      Hop hop{&file, up ? (p == 0 ? "" : prev) : file.revision, up ? file.revision : (p - 1 == 0 ? "" : prev)};
      hop.online = up && options_.online && file.HasOnlineSteps();
      if (progress && up && p == from) hop.phases_done = progress->phases_done;
      hops.push_back(hop);
    }

    // The first revision's guards, once before any of its steps takes a
    // lock: a refusal comes before the run has locked anything, and the run
    // at its guard step, under the locks (the one that counts), finds this
    // session's catalog caches warm, which is most of a guard's time. In a
    // savepoint rolled back, so that what it read stays unlocked.
    if (up && !hops.empty() && !hops.front().undo && hops.front().phases_done == 0 &&
        std::any_of(hops.front().file->checks.begin(), hops.front().file->checks.end(),
                    [](const RevisionCheck& c) { return c.guard; })) {
      const MigrationFile& first = *hops.front().file;
      where = fmt::format("checking revision {}'s guards before its locks", first.revision);
      pg::RefuseUntrustedCode(*tx, conn_.url(), first.writes);
      pqxx::subtransaction early(*tx, "early_guards");
      RunGuards(early, first, spdlog::level::debug);
      early.abort();
    }

    for (size_t h = 0; h < hops.size(); ++h) {
      const Hop& hop = hops[h];
      const MigrationFile& file = *hop.file;
      const bool last = h + 1 == hops.size();
      if (hop.undo)
        spdlog::log(level, "Undoing {} (left in progress at phase {} of {}): its downgrade, in one transaction",
                    file.revision, progress->phases_done, progress->phases);
      else
        spdlog::log(level, "Running {} {} -> {}, {}{}", up ? "upgrade" : "downgrade", hop.from_rev, hop.to_rev,
                    file.message, hop.online ? " (online, in phases)" : "");
      auto t_rev = Clock::now();
      const auto& steps = up ? file.upgrade : file.downgrade;
      const std::vector<int> phase_of = PhasesOf(steps);
      const int phases = phase_of.empty() ? 1 : phase_of.back();
      if (hop.phases_done > 0)
        spdlog::log(level, "[migration.{}] Resuming at phase {} of {} (phases 1-{} were committed by an earlier run)",
                    file.revision, hop.phases_done + 1, phases, hop.phases_done);
      const std::string label = up ? "Step" : "Rollback Step";
      // The steps this run takes: a run in one transaction skips the online ones.
      int count = 0;
      for (const auto& s : steps) count += !s.online || hop.online;
      bool recorded = false;
      int index = 0;
      for (size_t i = 0; i < steps.size(); ++i) {
        const Step& step = steps[i];
        if (step.online && !hop.online) continue;
        ++index;
        if (hop.online && phase_of[i] <= hop.phases_done) {
          spdlog::debug("[migration.{}] {} {}/{}: done by an earlier run", file.revision, label, index, count);
          continue;
        }
        StepTiming st;
        st.revision = file.revision;
        st.direction = direction;
        st.index = index;
        st.count = count;
        st.name = step.name;
        st.file_step = i;
        st.online = step.online;
        where = fmt::format("revision {} {} {}/{} ({}, {}:{})", file.revision, label, st.index, st.count, st.name,
                            file.path.filename().string(), step.line);
        sys::ThrowIfInterrupted(where);
        if (step.online && tx) {
          // A resumed run's first transaction (it read where the last one
          // stopped) ends before an online step: it commits with the progress.
          commit_phase(hop, phase_of[i] - 1, phases, steps[i - 1].name, nullptr);
          where = fmt::format("revision {} {} {}/{} ({}, {}:{})", file.revision, label, st.index, st.count, st.name,
                              file.path.filename().string(), step.line);
        } else if (!step.online && !tx) {
          open_transaction();
        }
        spdlog::log(level, "[migration.{}] {} {}/{}: {}{}...", file.revision, label, st.index, st.count, st.name,
                    step.online ? fmt::format(" (phase {} of {}, outside a transaction)", phase_of[i], phases)
                                : std::string());
        std::unique_ptr<pqxx::nontransaction> outside;
        st.transaction = step.online ? ++unit : unit;
        if (step.online) {
          outside = std::make_unique<pqxx::nontransaction>(conn_.raw());
          apply_settings(*outside, false);
        }
        pqxx::transaction_base& t = step.online ? static_cast<pqxx::transaction_base&>(*outside) : *tx;
        if (options_.before_step) options_.before_step(st, t);
        // Before every step, inside the transaction: code planted since the
        // connection was made (while a step waited for a lock, say) must not
        // run either. A step takes its locks first and calls nothing after
        // a wait, so nothing can be planted between this look and its use.
        pg::RefuseUntrustedCode(t, conn_.url(), file.writes);
        // A step's time is its SQL (and the commit, for the step that
        // commits), never the hooks' own queries.
        st.lock_wait_known = monitor != nullptr;
        if (monitor) {
          monitor->Begin();
          // The first Begin() may have waited for the monitor's connection:
          // a signal that came meanwhile had no statement to cancel.
          sys::ThrowIfInterrupted(where);
        }
        auto t_step = Clock::now();
        if (step.records_revision) {
          if (!hop.undo) t.exec(VersionUpdateSql(hop.from_rev, hop.to_rev));
          recorded = true;
        } else if (step.runs_guards) {
          RunGuards(*tx, file, level);
        } else {
          spdlog::debug("{}", sys::ShowSql(step.sql, step.sql.size()));
          running_step = &step;
          running_revision = file.revision;
          if (step.online) {
            // One statement at a time: each is its own transaction.
            for (const std::string& statement : SplitStatements(step.sql)) t.exec(statement, step.name);
          } else {
            t.exec(step.sql, step.name);
          }
          running_step = nullptr;
        }
        st.seconds = Since(t_step);
        if (monitor) AddWait(st, monitor->End());
        // The hook runs before any commit, so a fault injected after the
        // last step still rolls everything back.
        if (!step.records_revision && !step.runs_guards && !step.online &&
            tx->exec1("SELECT pg_catalog.txid_current()::pg_catalog.text")[0].as<std::string>() != xid)
          throw RevisionError(
              DatabaseError(fmt::format("{}: the step ended the migration's transaction (its statements after "
                                        "that ran and committed on their own)",
                                        where),
                            "restore the database from its backup or undo those statements by hand; then remove "
                            "the COMMIT (or what ended it) from the step"),
              file.revision, "", step.sql);
        if (options_.after_step) options_.after_step(st, t);
        if (hop.online && !step.online && i + 1 < steps.size() && steps[i + 1].online) {
          // The phase ends with this step: its time includes the commit, as
          // the last commit is the record step's.
          commit_phase(hop, phase_of[i], phases, step.name, &st);
        }
        if (step.online) {
          reset_settings(t);
          save_progress(t, hop, phase_of[i], phases, step.name);
          progress_now = OnlineProgress{file.revision, hop.from_rev, phase_of[i], phases, step.name};
          outside.reset();
        }
        if (step.records_revision && (hop.online || hop.undo)) {
          tx->exec("DROP TABLE IF EXISTS public.migration_harness_progress");
        }
        if (step.records_revision && last) {
          where = "committing";
          sys::ThrowIfInterrupted(where);
          if (monitor) monitor->Begin();
          auto t_commit = Clock::now();
          tx->commit();
          tx.reset();
          progress_now.reset();
          st.seconds += Since(t_commit);
          if (monitor) AddWait(st, monitor->End());
        }
        spdlog::log(level, "[migration.{}] {} {}/{}: Complete ({:.3f}s){}", file.revision, label, st.index, st.count,
                    st.seconds, WaitNote(st));
        waited += st.lock_wait_seconds;
        report.steps.push_back(st);
      }
      if (!recorded) {
        if (!tx) open_transaction();
        where = "recording revision " + (up ? hop.to_rev : hop.from_rev) + " in alembic_version";
        if (!hop.undo) tx->exec(VersionUpdateSql(hop.from_rev, hop.to_rev));
        if (hop.online || hop.undo) tx->exec("DROP TABLE IF EXISTS public.migration_harness_progress");
      }
      double rev_seconds = Since(t_rev);
      report.revision_seconds[file.revision] = rev_seconds;
      spdlog::log(level, "[migration.{}] Migration {} {} completed successfully in {:.3f}s", file.revision,
                  file.revision, hop.undo ? "undo" : up ? "upgrade" : "rollback", rev_seconds);
    }
    if (tx) {
      where = "committing";
      sys::ThrowIfInterrupted(where);
      tx->commit();
      tx.reset();
      progress_now.reset();
    }
    report.seconds = Since(t_start);
    spdlog::log(level, "Now at {} ({:.3f}s in {}{})", report.to, report.seconds,
                transactions == 1 ? std::string("one transaction")
                                  : fmt::format("{} transactions and the online steps between them", transactions),
                waited > 0 ? fmt::format(", {:.3f}s of it waiting for locks", waited) : std::string());
    return report;
  } catch (...) {
    tx.reset();  // rolls back what the failed phase did
    left_in_progress_ = progress_now;
    if (progress_now)
      spdlog::warn("{}: the phases before are committed; `migration-harness upgrade --online` completes it, "
                   "`migration-harness downgrade {}` undoes it",
                   progress_now->Describe(), progress_now->parent.empty() ? "base" : progress_now->parent);
    try {
      throw;
    } catch (const pqxx::sql_error& e) {
      sys::ThrowIfInterrupted(where);
      if (e.sqlstate() == "55P03") {
        std::string holders = DescribeLockHolders(conn_.url());
        Error base = pg::FromSqlError(e, where);
        throw LockTimeoutError(DatabaseError(
            std::string(base.what()) + ": a lock was not granted within --lock-timeout " +
                fmt::format("{}s", options_.lock_timeout_seconds) + (holders.empty() ? "" : "; " + holders),
            progress_now ? "the phase that gave up changed nothing; retry when those sessions are done (or stop "
                           "them), or raise --lock-timeout"
                         : "nothing was changed; retry when those sessions are done (or stop them), or raise "
                           "--lock-timeout"));
      }
      Error error = pg::FromSqlError(e, where);
      if (running_step && error.code() == ExitCode::kDatabase && IsRevisionsOwnError(e.sqlstate()))
        throw RevisionError(error, running_revision, e.sqlstate(), e.query());
      throw error;
    } catch (const pqxx::broken_connection& e) {
      throw DatabaseError("lost the connection to " + conn_.url().Describe() + " while " + where + ": " +
                              pg::Redact(e.what(), conn_.url()),
                          progress_now ? "the phase running did not commit; check the server, then run again"
                                       : "the transaction did not commit; check the server, then run again");
    } catch (const pqxx::in_doubt_error& e) {
      throw DatabaseError("the connection broke during COMMIT; the outcome is unknown",
                          "run `migration-harness current` to see which revision is recorded");
    }
  }
}

std::string Migrator::Stamp(const std::string& target) {
  Position to = graph_.ResolveRevision(target);
  try {
    pqxx::work tx(conn_.raw());
    tx.exec(fmt::format("SELECT pg_advisory_xact_lock({})", kMigrationLockKey));
    tx.exec(fmt::format("SET LOCAL lock_timeout = '{}'",
                        pg::PgDuration(options_.lock_timeout_seconds)));
    std::optional<std::vector<std::string>> rows;
    try {
      rows = ReadVersionRows(tx);
    } catch (const Error&) {  // a NULL row: what stamp is there to replace
      rows = std::vector<std::string>{"NULL"};
    }
    std::string was = rows && !rows->empty() ? rows->front() : "<base>";
    if (!rows) tx.exec(kCreateVersionTable);
    tx.exec("DELETE FROM public.alembic_version");
    if (to != 0)
      tx.exec("INSERT INTO public.alembic_version (version_num) VALUES (" +
              tx.quote(graph_.at(to).revision) + ")");
    tx.commit();
    spdlog::log(options_.log_steps ? spdlog::level::info : spdlog::level::debug,
                "Stamped revision {} (was {}); no migration was run", graph_.Name(to), was);
    return graph_.Name(to);
  } catch (const pqxx::sql_error& e) {
    throw pg::FromSqlError(e, "stamping revision " + graph_.Name(to));
  }
}

std::string RenderSql(const RevisionGraph& graph, Direction direction, Position from,
                      Position to, double lock_timeout_seconds) {
  std::ostringstream out;
  const bool up = direction == Direction::kUpgrade;
  if (from == to) {
    out << "-- migration-harness: already at " << graph.Name(from) << "; nothing to "
        << (up ? "upgrade" : "downgrade") << ", no SQL to run.\n";
    return out.str();
  }
  RefuseStepsThatLeaveTheTransaction(graph, direction, from, to);
  out << "-- migration-harness: " << (up ? "upgrade " : "downgrade ") << graph.Name(from)
      << " -> " << graph.Name(to) << "\n-- Generated SQL; nothing was run.\n\nBEGIN;\n\n";
  // The search_path every run of the tool uses (pg/connection.h): never
  // "$user"; pg_catalog is searched first all the same.
  out << "-- Unqualified names resolve in public (pg_catalog is searched first; never \"$user\").\n";
  out << "SET LOCAL search_path = public;\n";
  out << "SELECT pg_advisory_xact_lock(" << kMigrationLockKey << ");\n";
  out << "SET LOCAL lock_timeout = '" << pg::PgDuration(lock_timeout_seconds) << "';\n\n";
  out << kCreateVersionTable << ";\n\n";
  for (Position p = from; p != to; p += up ? 1 : -1) {
    const MigrationFile& file = graph.at(up ? p + 1 : p);
    const std::string prev = p - 1 >= 1 ? graph.at(p - 1).revision : "";
    const std::string before = up ? (p == 0 ? "" : graph.at(p).revision) : file.revision;
    const std::string after = up ? file.revision : prev;
    out << "-- Running " << (up ? "upgrade " : "downgrade ") << before << " -> " << after << ", "
        << file.message << "\n\n";
    const auto& steps = up ? file.upgrade : file.downgrade;
    const std::string record = VersionUpdateSql(before, after) + ";\n";
    bool recorded = false;
    // One transaction: the online steps are `upgrade --online`'s alone.
    size_t count = 0, index = 0;
    for (const auto& s : steps) count += !s.online;
    for (size_t i = 0; i < steps.size(); ++i) {
      if (steps[i].online) continue;
      out << "-- Step " << ++index << "/" << count << ": " << steps[i].name << "\n";
      if (steps[i].records_revision) {
        out << record << "\n";
        recorded = true;
      } else if (steps[i].runs_guards) {
        out << GuardSql(file) << "\n";
      } else {
        out << steps[i].sql << "\n";
      }
    }
    if (!recorded) out << record << "\n";
  }
  out << "COMMIT;\n";
  return out.str();
}

}  // namespace harness::engine
