#include "harness/alembic/alembic_revisions.h"

#include <algorithm>
#include <chrono>
#include <csignal>
#include <memory>
#include <set>

#include <fmt/format.h>
#include <pqxx/pqxx>
#include <spdlog/spdlog.h>

#include "harness/engine/version_table.h"
#include "harness/error.h"
#include "harness/inspect/step_probe.h"
#include "harness/pg/interrupt.h"
#include "harness/pg/statement_log.h"
#include "harness/sys/untrusted_text.h"

namespace harness::alembic {

namespace {

using Clock = std::chrono::steady_clock;

// How often the second connection reads pg_locks while a revision runs: a
// lock held for less than that may go unseen (its mode is still read in
// the revision's transaction; only its time is not).
constexpr auto kPoll = std::chrono::milliseconds(5);
// The driver marks the statements it sends itself (driver.py PROBE_MARK).
constexpr const char* kProbeMark = "/* migration-harness probe */";

// The relation locks and lock waits of the revision's sessions, polled
// from a connection of the tool's own.
struct LockWatch {
  explicit LockWatch(const pg::Url& url) : conn(url, "migration-harness lock watch") {
    pqxx::nontransaction tx(conn.raw());
    tx.exec("SET statement_timeout = '2s'");
  }
  void Add(int pid) { pids.insert(pid); }
  void Poll() {
    if (pids.empty()) return;
    std::string list = "{";
    for (int pid : pids) list += (list.size() > 1 ? "," : "") + std::to_string(pid);
    list += "}";
    const auto now = Clock::now();
    pqxx::nontransaction tx(conn.raw());
    bool waiting = false;
    for (const auto& r : tx.exec_params(
             "SELECT l.relation::pg_catalog.int8, l.mode, l.granted FROM pg_catalog.pg_locks l "
             "WHERE l.pid OPERATOR(pg_catalog.=) ANY ($1::pg_catalog.int4[]) AND l.locktype OPERATOR(pg_catalog.=) "
             "'relation' AND l.database OPERATOR(pg_catalog.=) (SELECT d.oid FROM pg_catalog.pg_database d "
             "WHERE d.datname OPERATOR(pg_catalog.=) pg_catalog.current_database())",
             list)) {
      if (!r[2].as<bool>()) {
        waiting = true;
        continue;
      }
      const long long oid = r[0].as<long long>();
      const std::string mode = r[1].as<std::string>();
      auto it = locks.find(oid);
      if (it == locks.end()) {
        locks[oid] = {mode, now};
      } else if (inspect::LockRank(mode) > inspect::LockRank(it->second.first)) {
        it->second = {mode, now};
      }
    }
    if (waiting) waited += waiting_since ? std::chrono::duration<double>(now - *waiting_since).count() : 0;
    waiting_since = waiting ? std::optional<Clock::time_point>(now) : std::nullopt;
  }
  pg::Connection conn;
  std::set<int> pids;
  std::map<long long, std::pair<std::string, Clock::time_point>> locks;  // table oid -> mode, first seen
  double waited = 0;
  std::optional<Clock::time_point> waiting_since;
};

// Cancels the statements of `pids` that are sessions of the tool's user on
// the database `url` names: those the driver reported, and provably its own.
void CancelSessions(const pg::Url& url, const std::vector<int>& pids) {
  if (pids.empty()) return;
  try {
    std::string list = "{";
    for (int pid : pids) list += (list.size() > 1 ? "," : "") + std::to_string(pid);
    list += "}";
    pg::Connection conn(url, "migration-harness cancel");
    pqxx::nontransaction tx(conn.raw());
    tx.exec_params("SELECT pg_catalog.pg_cancel_backend(a.pid) FROM pg_catalog.pg_stat_activity a "
                   "WHERE a.pid OPERATOR(pg_catalog.=) ANY ($1::pg_catalog.int4[]) AND a.datname "
                   "OPERATOR(pg_catalog.=) pg_catalog.current_database() AND a.usename OPERATOR(pg_catalog.=) "
                   "CURRENT_USER",
                   list);
  } catch (const std::exception& e) {
    spdlog::debug("could not cancel the Alembic session: {}", e.what());
  }
}

std::vector<std::string> Strings(const nlohmann::json& j) {
  std::vector<std::string> out;
  if (j.is_array())
    for (const auto& x : j) out.push_back(x.is_string() ? x.get<std::string>() : x.dump());
  return out;
}

RunAnswer Parse(const nlohmann::json& j) {
  RunAnswer a;
  a.ok = j.value("ok", false);
  a.seconds = j.value("seconds", 0.0);
  if (j.contains("pids") && j["pids"].is_array())
    for (const auto& p : j["pids"])
      if (p.is_number_integer()) a.pids.push_back(p.get<int>());
  if (j.contains("heads")) a.heads = Strings(j["heads"]);
  if (j.contains("probe") && j["probe"].is_array()) {
    std::vector<std::vector<std::string>> rows;
    for (const auto& row : j["probe"]) {
      std::vector<std::string> r;
      for (const auto& v : row) r.push_back(v.is_null() ? std::string() : v.get<std::string>());
      rows.push_back(std::move(r));
    }
    a.probe = std::move(rows);
  }
  auto text = [&](const char* key) {
    return j.contains(key) && j[key].is_string() ? j[key].get<std::string>() : std::string();
  };
  a.probe_error = text("probe_error");
  a.lock_timeout = text("lock_timeout");
  a.options = j.value("options", nlohmann::json::object());
  a.kind = text("kind");
  a.type = text("type");
  a.message = text("message");
  a.sqlstate = text("sqlstate");
  a.statement = text("statement");
  if (j.contains("traceback")) a.traceback = Strings(j["traceback"]);
  return a;
}

}  // namespace

struct AlembicRevisions::Measure {
  std::unique_ptr<LockWatch> watch;
};

AlembicRevisions::AlembicRevisions(Project& project, const std::string& target)
    : project_(project), graph_(project.PathTo(target)) {}

std::string AlembicRevisions::Describe() const { return "the Alembic project " + project_.ini().string(); }

std::map<std::string, std::string> AlembicRevisions::ClusterSettings() const {
  return {{"log_min_duration_statement", "0"}, {"log_line_prefix", pg::kStatementLogPrefix}};
}

engine::Position AlembicRevisions::PositionOf(const std::vector<std::string>& heads) const {
  if (auto p = graph_.FindHeads(heads)) return *p;
  std::string list;
  for (const auto& h : heads) list += (list.empty() ? "" : ", ") + h;
  throw UsageError(fmt::format("the database is at {}, which is not on the path to {} in {}", list,
                               graph_.Name(graph_.head_position()), project_.ini().string()),
                   "pass a --target whose path holds the database's revision");
}

RunAnswer AlembicRevisions::Command(pg::Connection& conn, const std::string& op, const nlohmann::json& rev,
                                    Measure* measure) {
  nlohmann::json request = {{"cmd", "run"},
                            {"op", op},
                            {"rev", rev},
                            {"url", project_.SqlAlchemyUrl(conn.url())},
                            {"url_env", project_.url_env()}};
  if (measure) request["probe"] = inspect::ProbeSql(inspect::ProbeScope::kThisTransaction);
  std::vector<int> sessions;
  auto answer = project_.driver().Request(
      request,
      [&](int pid) {
        sessions.push_back(pid);
        if (measure) measure->watch->Add(pid);
      },
      [&] {
        if (sys::InterruptSignal() != 0) {
          // Its transaction cancelled on the server, its Python ended:
          // nothing of the revision is committed.
          CancelSessions(conn.url(), sessions);
          project_.driver().Stop();
          sys::ThrowIfInterrupted(fmt::format("Alembic ran {} {} (its transaction was cancelled)", op,
                                             rev.is_string() ? rev.get<std::string>() : rev.dump()));
        }
        if (measure) measure->watch->Poll();
      });
  RunAnswer a = Parse(answer);
  a.stderr_text = Project::Redact(project_.driver().TakeErr(), conn.url());
  for (size_t start = 0; start < a.stderr_text.size();) {
    size_t nl = a.stderr_text.find('\n', start);
    spdlog::debug("alembic: {}", sys::ShowUntrusted(a.stderr_text.substr(start, nl - start), 300));
    start = nl == std::string::npos ? a.stderr_text.size() : nl + 1;
  }
  if (!a.options.empty() && a.options.is_object()) options_ = a.options;
  return a;
}

void AlembicRevisions::Fail(const RunAnswer& a, const std::string& revision, const pg::Url& url,
                            const std::vector<pg::LoggedStatement>& logged) {
  const std::string message = sys::ShowUntrusted(Project::Redact(a.message, url), 300);
  const std::string what = fmt::format("{}: {}{}", sys::ShowUntrusted(a.type, 60), message,
                                       a.sqlstate.empty() ? "" : " (SQLSTATE " + sys::ShowUntrusted(a.sqlstate, 5) + ")");
  const std::string folder = project_.ini().parent_path().string();
  if (a.kind == "revision") {
    std::string statement = a.statement;
    for (const auto& s : logged)
      if (s.failed) statement = s.sql;  // the server's own word on it
    std::string tail;
    for (size_t i = a.traceback.size() > 3 ? a.traceback.size() - 3 : 0; i < a.traceback.size(); ++i)
      tail += (tail.empty() ? "" : " | ") + sys::ShowUntrusted(Project::Redact(a.traceback[i], url), 200);
    const Revision* r = project_.Find(revision);
    throw engine::RevisionError(
        DatabaseError(fmt::format("revision {} ({}) failed: {}", revision, r ? r->file : "?", what),
                      "nothing of it was committed; run it with `alembic` on a copy to see the whole error"),
        revision, a.sqlstate, Project::Redact(statement, url), tail.empty() ? "" : "Alembic said: " + tail);
  }
  if (a.kind == "driver")
    throw UsageError(fmt::format("the project's env.py needs a database driver {} cannot import: {}",
                                 project_.python().string(), what),
                     "install it (Debian: python3-asyncpg, python3-psycopg2), or pass --alembic-python");
  if (a.kind == "connect")
    throw DatabaseError(fmt::format("the project's env.py could not connect to {}: {}", url.Describe(), what),
                        fmt::format("env.py must take the URL from sqlalchemy.url or ${} (--alembic-url-env "
                                    "names another variable)",
                                    project_.url_env()));
  throw UsageError(
      fmt::format("the project's env.py failed before any revision ran: {}", what),
      message.find("async driver") != std::string::npos
          ? std::string("its engine is async: pass --alembic-driver asyncpg")
          : fmt::format("run `alembic current` in {} to see the whole error; nothing was migrated", folder));
}

std::optional<engine::Position> AlembicRevisions::Current(pg::Connection& conn) {
  RunAnswer a = Command(conn, "current", nullptr, nullptr);
  if (!a.ok) Fail(a, "", conn.url(), {});
  const std::string table = a.options.value("version_table", nlohmann::json()).is_string()
                                ? a.options["version_table"].get<std::string>()
                                : "alembic_version";
  const std::string schema = a.options.value("version_table_schema", nlohmann::json()).is_string()
                                 ? a.options["version_table_schema"].get<std::string>()
                                 : "public";
  if (table != "alembic_version" || schema != "public")
    throw UsageError(fmt::format("the project's env.py keeps its revision in {}.{}; migration-harness reads and "
                                 "checks public.alembic_version",
                                 schema, table),
                     "not supported yet: rehearse a copy of the project whose env.py keeps the default version table");
  {
    pqxx::read_transaction tx(conn.raw());
    if (!engine::ReadVersionRows(tx)) return std::nullopt;
  }
  return PositionOf(a.heads);
}

void AlembicRevisions::Stamp(pg::Connection& conn, engine::Position p) {
  const auto heads = graph_.HeadsAt(p);
  RunAnswer a = Command(conn, "stamp", heads.empty() ? nlohmann::json("base") : nlohmann::json(heads), nullptr);
  if (!a.ok) Fail(a, graph_.Name(p), conn.url(), {});
}

verify::RevisionRun AlembicRevisions::Run(pg::Connection& conn, engine::Direction direction, engine::Position to,
                                          verify::RunMode mode) {
  const bool up = direction == engine::Direction::kUpgrade;
  engine::Position at = 0;
  {
    pqxx::read_transaction tx(conn.raw());
    auto rows = engine::ReadVersionRows(tx);
    at = PositionOf(rows ? *rows : std::vector<std::string>{});
  }
  verify::RevisionRun run;
  run.report.from = graph_.Name(at);
  run.report.to = graph_.Name(to);
  run.report.noop = at == to;
  const bool measured = mode == verify::RunMode::kMeasured;
  const auto level = measured ? spdlog::level::info : spdlog::level::debug;
  std::vector<std::map<std::string, std::string>> locks_at_commit;  // per revision: table -> mode
  for (engine::Position p = at; p != to; p += up ? 1 : -1) {
    const engine::MigrationFile& file = graph_.at(up ? p + 1 : p);
    const Revision* revision = project_.Find(file.revision);
    nlohmann::json rev = file.revision;
    if (!up) {
      // Alembic's way to undo exactly this revision: its parent, branch-wise.
      if (p - 1 == 0) rev = "base";
      else if (revision && revision->parents.size() > 1) rev = revision->parents.front();
      else rev = file.revision + "@-1";
    }
    spdlog::log(level, "Running {} {} ({}) with the project's Alembic", up ? "upgrade" : "downgrade", file.revision,
                sys::ShowUntrusted(file.message, 120));
    sys::ThrowIfInterrupted("starting Alembic's " + std::string(up ? "upgrade " : "downgrade ") + file.revision);
    Measure m;
    inspect::ServerProbe before;
    std::uintmax_t log_offset = server_log_ ? pg::LogSize(*server_log_) : 0;
    if (measured) {
      m.watch = std::make_unique<LockWatch>(conn.url());
      pqxx::read_transaction tx(conn.raw());
      before = inspect::ReadProbe(tx, inspect::ProbeScope::kOtherSessions);
    }
    RunAnswer a = Command(conn, up ? "upgrade" : "downgrade", rev, measured ? &m : nullptr);
    const auto done = Clock::now();
    std::vector<pg::LoggedStatement> logged;
    if (server_log_) {
      std::set<int> pids(a.pids.begin(), a.pids.end());
      logged = pg::ReadStatementLog(*server_log_, log_offset, pids, kProbeMark);
    }
    if (!a.ok) Fail(a, file.revision, conn.url(), logged);
    engine::StepTiming st;
    st.revision = file.revision;
    st.direction = direction;
    st.index = 1;
    st.count = 1;
    st.name = file.message.empty() ? file.revision : file.message;
    st.seconds = a.seconds;
    if (measured) {
      st.lock_wait_known = true;
      st.lock_wait_seconds = m.watch->waited;
      verify::StepEffect e;
      inspect::ServerProbe after;
      if (a.probe) {
        // Read in its own transaction: this transaction's counters start at 0.
        after = inspect::ProbeFromRows(*a.probe);
        for (auto& [oid, rel] : before.relations)
          rel.seq_scans = rel.blocks_fetched = rel.tuples_inserted = rel.tuples_updated = rel.tuples_deleted = 0;
      } else {
        pqxx::read_transaction tx(conn.raw());
        after = inspect::ReadProbe(tx, inspect::ProbeScope::kOtherSessions);
        e.lock_seen = "the revision's transaction could not be read before its commit" +
                      (a.probe_error.empty() ? std::string() : " (" + a.probe_error + ")") +
                      "; rows scanned and updated as the server's statistics had them after it";
      }
      e.activity = inspect::Compare(before, after);
      std::map<std::string, std::string> held;
      for (const auto& [oid, lock] : after.locks)
        if (auto rel = after.relations.find(oid); rel != after.relations.end()) held[rel->second.id.Key()] = lock;
      locks_at_commit.push_back(held);
      // Held from the first poll that saw it to the revision's end.
      double first = -1;
      for (const auto& [oid, seen] : m.watch->locks)
        if (seen.first == e.activity.lock_mode)
          first = std::max(first, std::chrono::duration<double>(done - seen.second).count());
      if (!e.activity.lock_mode.empty()) {
        if (first >= 0) {
          e.lock_held = first;
          if (e.lock_seen.empty()) e.lock_seen = "seen by a second connection";
        } else {
          e.lock_held_known = false;
          e.lock_seen = fmt::format("held to the commit, for less than the {} ms between two polls of a second "
                                    "connection",
                                    kPoll.count());
        }
      }
      for (const auto& s : logged)
        if (!s.failed) {
          e.statements.push_back({sys::ShowUntrusted(s.sql, 2000), s.seconds});
          e.sql += s.sql + ";\n";
        }
      if (up && !a.lock_timeout.empty()) lock_timeout_ = a.lock_timeout;
      e.statements_known = server_log_.has_value();
      st.lock_wait_known = true;
      e.step = st;
      run.effects.push_back(std::move(e));
    }
    statements_logged_ = server_log_.has_value();
    run.report.steps.push_back(st);
    run.report.revision_seconds[file.revision] = st.seconds;
    run.report.seconds += st.seconds;
    spdlog::log(level, "[alembic.{}] {}: complete ({:.3f}s{})", file.revision, up ? "upgrade" : "downgrade",
                st.seconds, st.lock_wait_seconds > 0 ? fmt::format(", waited {:.3f}s for a lock", st.lock_wait_seconds) : "");
  }
  // The project's deploy runs the whole range in one transaction unless
  // env.py says transaction_per_migration: a lock an early revision takes
  // is held across the later ones.
  if (measured && up && run.effects.size() > 1) {
    const bool per_migration = options_.value("transaction_per_migration", nlohmann::json()).is_boolean() &&
                               options_["transaction_per_migration"].get<bool>();
    if (per_migration) {
      deploy_note_ = "the deploy (alembic upgrade) commits each revision on its own (env.py sets "
                     "transaction_per_migration): no lock is held across revisions";
    } else {
      std::string table, strongest, from;
      double hold = 0;
      std::map<std::string, size_t> first_taken;  // table -> revision index
      for (size_t i = 0; i < locks_at_commit.size(); ++i)
        for (const auto& [t, mo] : locks_at_commit[i]) first_taken.emplace(t, i);
      for (const auto& [t, i] : first_taken) {
        const std::string& mo = locks_at_commit.back().count(t) ? locks_at_commit.back().at(t) : locks_at_commit[i].at(t);
        double h = 0;
        for (size_t j = i; j < run.report.steps.size(); ++j) h += run.report.steps[j].seconds;
        if (inspect::LockRank(mo) > inspect::LockRank(strongest) || (mo == strongest && h > hold)) {
          table = t;
          strongest = mo;
          hold = h;
          from = run.report.steps[i].revision;
        }
      }
      if (!table.empty())
        deploy_note_ = fmt::format(
            "the deploy (alembic upgrade {}) runs these {} revisions in one transaction (env.py does not set "
            "transaction_per_migration): it holds {} on {} from {} to its commit, about {:.3f}s here",
            graph_.Name(to), run.effects.size(), strongest, table, from, hold);
    }
  }
  return run;
}

std::vector<std::string> AlembicRevisions::Notes() const {
  std::vector<std::string> notes;
  const auto& v = project_.driver().versions();
  notes.push_back(fmt::format(
      "Revisions run by the project's own Alembic {} (SQLAlchemy {}, Python {} at {}, driver {}), a revision "
      "at a time, from {}; its start-up took {:.3f}s, counted in no revision's time",
      v.value("alembic", "?"), v.value("sqlalchemy", "?"), v.value("version", "?"), project_.python().string(),
      project_.driver_module(), project_.ini().parent_path().string(), project_.driver().startup_seconds()));
  notes.push_back(statements_logged_
                      ? "Statements and their times: from the server's own statement log (a server the tool started)"
                      : "Statements: not measured one by one (the tool reads the statement log of a server it "
                        "starts itself only: without a database or with --into-embedded); times are per revision");
  if (!deploy_note_.empty()) notes.push_back(deploy_note_);
  notes.push_back("The tool's search_path, lock timeout and guard against untrusted code apply to its own "
                  "connections; the revisions ran on the connection the project's env.py makes");
  return notes;
}

verify::DeployFacts AlembicRevisions::Deploy() const {
  verify::DeployFacts d;
  d.one_transaction = !(options_.value("transaction_per_migration", nlohmann::json()).is_boolean() &&
                        options_["transaction_per_migration"].get<bool>());
  d.rehearsed_in_one_transaction = false;
  d.lock_timeout = lock_timeout_;
  d.lock_timeout_from = "the connection the project's env.py makes, read before the revision's commit";
  return d;
}

}  // namespace harness::alembic
