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

namespace harness::verify {

namespace {

using Clock = std::chrono::steady_clock;
using checks::CheckResult;
using checks::Status;
using checks::SuiteResult;

// ---- what one table holds, column by column -------------------------------

// Per column, the sum of a hash of (primary key, value) over the rows: the
// rows over any set of columns are equal when each of those columns' sums
// is (the key ties each value to its row). Without a primary key, the
// value alone (a weaker check: it says so).
struct TableData {
  std::vector<std::string> columns;
  std::vector<std::string> key;  // primary key columns; empty: none
  long long rows = 0;
  std::map<std::string, std::string> sums;       // column -> numeric text
  std::map<std::string, long long> non_null;     // column -> values that are not NULL
};

std::vector<std::string> PublicTables(pqxx::transaction_base& tx) {
  std::vector<std::string> out;
  for (const auto& r : tx.exec(
           "SELECT c.relname FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = "
           "c.relnamespace WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p') AND NOT "
           "c.relispartition AND c.relname <> 'alembic_version' ORDER BY 1"))
    out.push_back(r[0].as<std::string>());
  return out;
}

TableData ReadTable(pqxx::transaction_base& tx, const std::string& table,
                    const std::vector<std::string>* key_from = nullptr) {
  TableData d;
  const std::string qualified = "public." + tx.quote_name(table);
  for (const auto& r : tx.exec_params(
           "SELECT a.attname FROM pg_catalog.pg_attribute a WHERE a.attrelid = $1::pg_catalog.regclass "
           "AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum",
           qualified))
    d.columns.push_back(r[0].as<std::string>());
  if (key_from) {
    d.key = *key_from;
  } else {
    for (const auto& r : tx.exec_params(
             "SELECT a.attname FROM pg_catalog.pg_index i, unnest(i.indkey) WITH ORDINALITY u(n, o) "
             "JOIN pg_catalog.pg_attribute a ON a.attnum = u.n WHERE i.indrelid = "
             "$1::pg_catalog.regclass AND i.indisprimary AND a.attrelid = i.indrelid ORDER BY u.o",
             qualified))
      d.key.push_back(r[0].as<std::string>());
  }
  bool key_present = std::all_of(d.key.begin(), d.key.end(), [&](const std::string& k) {
    return std::find(d.columns.begin(), d.columns.end(), k) != d.columns.end();
  });
  std::string key;
  if (key_present)
    for (const auto& k : d.key) key += "t." + tx.quote_name(k) + ", ";
  std::string select = "SELECT count(*)";
  for (const auto& c : d.columns) {
    const std::string q = "t." + tx.quote_name(c);
    select += fmt::format(", coalesce(sum(hashtextextended(ROW({}{})::text, 0)::numeric), 0)::text, count({})",
                          key, q, q);
  }
  auto row = tx.exec(select + " FROM " + qualified + " t")[0];
  d.rows = row[0].as<long long>();
  for (size_t i = 0; i < d.columns.size(); ++i) {
    d.sums[d.columns[i]] = row[static_cast<int>(1 + 2 * i)].as<std::string>();
    d.non_null[d.columns[i]] = row[static_cast<int>(2 + 2 * i)].as<long long>();
  }
  return d;
}

// ---- what depends on a table ----------------------------------------------

// Objects outside a table of public that depend on it or one of its
// columns (pg_depend, normal dependencies): a view, a foreign key from
// another table, a function's default... A plain DROP TABLE or DROP COLUMN
// refuses while one exists (SQLSTATE 2BP01); CASCADE drops it too.
// Followed through what the table owns (its indexes, constraints, types).
constexpr const char* kDependents = R"SQL(
WITH RECURSIVE owned(tab, classid, objid) AS (
    SELECT c.relname::text, 'pg_catalog.pg_class'::pg_catalog.regclass, c.oid
      FROM pg_catalog.pg_class c
     WHERE c.relnamespace = 'public'::pg_catalog.regnamespace AND c.relkind IN ('r', 'p')
       AND NOT c.relispartition
    UNION
    SELECT o.tab, d.classid, d.objid
      FROM pg_catalog.pg_depend d JOIN owned o ON d.refclassid = o.classid AND d.refobjid = o.objid
     WHERE d.deptype IN ('a', 'i')
)
SELECT DISTINCT o.tab,
       coalesce((SELECT a.attname::text FROM pg_catalog.pg_attribute a
                  WHERE d.refclassid = 'pg_catalog.pg_class'::pg_catalog.regclass
                    AND a.attrelid = d.refobjid AND a.attnum = d.refobjsubid AND d.refobjsubid > 0), '') AS col,
       d.classid::pg_catalog.regclass::text AS catalog, d.objid::bigint AS objid,
       coalesce((SELECT 'view ' || pg_catalog.quote_ident(n.nspname) || '.' || pg_catalog.quote_ident(v.relname)
                   FROM pg_catalog.pg_rewrite rw JOIN pg_catalog.pg_class v ON v.oid = rw.ev_class
                   JOIN pg_catalog.pg_namespace n ON n.oid = v.relnamespace
                  WHERE d.classid = 'pg_catalog.pg_rewrite'::pg_catalog.regclass AND rw.oid = d.objid
                    AND rw.rulename = '_RETURN'),
                pg_catalog.pg_describe_object(d.classid, d.objid, d.objsubid)) AS what
  FROM pg_catalog.pg_depend d JOIN owned o ON d.refclassid = o.classid AND d.refobjid = o.objid
 WHERE d.deptype = 'n'
   AND NOT EXISTS (SELECT 1 FROM owned y WHERE y.tab = o.tab AND y.classid = d.classid AND y.objid = d.objid)
 ORDER BY 1, 2, 5
)SQL";

struct Dependent {
  std::string table, column;  // column: empty when on the table as a whole
  std::string catalog;        // "pg_rewrite", "pg_constraint", ...
  long long objid = 0;
  std::string what;           // "view public.audit_summary"
};

std::vector<Dependent> ReadDependents(pqxx::transaction_base& tx) {
  std::vector<Dependent> out;
  for (const auto& r : tx.exec(kDependents))
    out.push_back({r["tab"].as<std::string>(), r["col"].as<std::string>(), r["catalog"].as<std::string>(),
                   r["objid"].as<long long>(), r["what"].as<std::string>()});
  return out;
}

bool StillExists(pqxx::transaction_base& tx, const Dependent& d) {
  // catalog is a regclass's text, read from pg_depend: a system catalog.
  return !tx.exec_params("SELECT 1 FROM pg_catalog." + tx.quote_name(d.catalog) + " WHERE oid = $1",
                         d.objid)
              .empty();
}

// ---- what each step did ---------------------------------------------------

struct Relation {
  std::string name;
  char kind = 'r';
  long long filenode = 0;
  std::string table;  // an index's table
};

struct ServerState {
  std::map<long long, Relation> relations;         // oid ->
  std::map<std::string, long long> seq_scans;      // table -> this transaction's count
  std::map<std::string, std::string> locks;        // table -> strongest mode held
};

int LockRank(const std::string& mode) {
  static const char* kOrder[] = {"AccessShareLock", "RowShareLock", "RowExclusiveLock",
                                 "ShareUpdateExclusiveLock", "ShareLock", "ShareRowExclusiveLock",
                                 "ExclusiveLock", "AccessExclusiveLock"};
  for (int i = 0; i < 8; ++i)
    if (mode == kOrder[i]) return i;
  return -1;
}

ServerState ReadState(pqxx::transaction_base& tx) {
  ServerState s;
  for (const auto& r : tx.exec(
           "SELECT c.oid::bigint, c.relname, c.relkind, c.relfilenode::bigint, coalesce(t.relname, '') "
           "FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace "
           "LEFT JOIN pg_catalog.pg_index i ON i.indexrelid = c.oid "
           "LEFT JOIN pg_catalog.pg_class t ON t.oid = i.indrelid "
           "WHERE n.nspname = 'public' AND c.relkind IN ('r', 'i', 'm')"))
    s.relations[r[0].as<long long>()] = {r[1].as<std::string>(), r[2].as<std::string>()[0],
                                         r[3].as<long long>(), r[4].as<std::string>()};
  for (const auto& r : tx.exec("SELECT relname, seq_scan FROM pg_catalog.pg_stat_xact_user_tables "
                               "WHERE schemaname = 'public'"))
    s.seq_scans[r[0].as<std::string>()] = r[1].as<long long>();
  for (const auto& r : tx.exec(
           "SELECT c.relname, l.mode FROM pg_catalog.pg_locks l JOIN pg_catalog.pg_class c ON c.oid = "
           "l.relation JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace WHERE l.pid = "
           "pg_catalog.pg_backend_pid() AND l.granted AND n.nspname = 'public' AND c.relkind IN "
           "('r', 'p')")) {
    std::string& held = s.locks[r[0].as<std::string>()];
    std::string mode = r[1].as<std::string>();
    if (LockRank(mode) > LockRank(held)) held = mode;
  }
  return s;
}

struct StepEffect {
  engine::StepTiming step;
  std::vector<std::string> rewritten, scanned, indexes, created, dropped;
  std::string lock_table, lock_mode;  // the strongest lock this step took first
  double lock_held = 0;               // from this step's start to the commit

  std::vector<std::string> Kinds() const {
    std::vector<std::string> k;
    if (!rewritten.empty()) k.push_back(kRewrite);
    if (!indexes.empty()) k.push_back(kIndexBuild);
    if (!scanned.empty()) k.push_back(kFullScan);
    if (k.empty()) k.push_back(kCatalogOnly);
    return k;
  }
  std::string Describe() const {
    auto list = [](const std::vector<std::string>& v) {
      std::string s;
      for (const auto& x : v) s += (s.empty() ? "" : ", ") + x;
      return s;
    };
    std::string kinds;
    for (const auto& k : Kinds()) kinds += (kinds.empty() ? "" : " + ") + k;
    std::string what;
    if (!rewritten.empty()) what += "; rewrote " + list(rewritten);
    if (!indexes.empty()) what += "; built " + list(indexes);
    if (!scanned.empty()) what += "; scanned " + list(scanned);
    if (!created.empty()) what += "; created " + list(created);
    if (!dropped.empty()) what += "; dropped " + list(dropped);
    std::string lock = lock_mode.empty()
                           ? "; no table lock beyond those already held"
                           : fmt::format("; {} on {}, held {:.3f}s (to the commit)", lock_mode,
                                         lock_table, lock_held);
    return fmt::format("{} {} {}/{} {}: {}{}{}", step.revision,
                       step.direction == engine::Direction::kUpgrade ? "up" : "down", step.index,
                       step.count, step.name, kinds, what, lock);
  }
};

StepEffect Compare(const engine::StepTiming& step, const ServerState& a, const ServerState& b) {
  StepEffect e;
  e.step = step;
  std::set<std::string> rewritten;
  for (const auto& [oid, rel] : b.relations) {
    auto was = a.relations.find(oid);
    if (rel.kind == 'r' || rel.kind == 'm') {
      if (was == a.relations.end()) e.created.push_back(rel.name);
      else if (was->second.filenode != rel.filenode) rewritten.insert(rel.name);
    }
  }
  e.rewritten.assign(rewritten.begin(), rewritten.end());
  const std::set<std::string> created(e.created.begin(), e.created.end());
  for (const auto& [oid, rel] : b.relations) {
    // A rewrite rebuilds its table's indexes; a new table's are empty.
    if (rel.kind != 'i' || rewritten.count(rel.table) || created.count(rel.table)) continue;
    auto was = a.relations.find(oid);
    if (was == a.relations.end() || was->second.filenode != rel.filenode) e.indexes.push_back(rel.name);
  }
  for (const auto& [oid, rel] : a.relations)
    if ((rel.kind == 'r' || rel.kind == 'm') && !b.relations.count(oid)) e.dropped.push_back(rel.name);
  for (const auto& [table, n] : b.seq_scans) {
    auto was = a.seq_scans.find(table);
    if (n > (was == a.seq_scans.end() ? 0 : was->second) && !rewritten.count(table) && !created.count(table))
      e.scanned.push_back(table);
  }
  for (const auto& [table, mode] : b.locks) {
    auto was = a.locks.find(table);
    if (was != a.locks.end() && LockRank(was->second) >= LockRank(mode)) continue;
    if (LockRank(mode) > LockRank(e.lock_mode)) {
      e.lock_mode = mode;
      e.lock_table = table;
    }
  }
  return e;
}

// ---- the rehearsal ----------------------------------------------------------

class RangeRunner {
 public:
  RangeRunner(const VerifyOptions& o, const RangeOptions& range, const engine::RevisionGraph& g)
      : options_(o), range_(range), graph_(g) {}

  Rehearsal Go(Rehearsal* partial) {
    try {
      Prepare();
      Rehearse();
    } catch (const Error& e) {
      Record(e, partial);
      throw;
    } catch (const pqxx::sql_error& e) {
      try {
        pg::ThrowIfInterrupted(running_);
      } catch (const Error& interrupted) {
        Record(interrupted, partial);
        throw;
      }
      Error converted = pg::FromSqlError(e, "verify: " + running_);
      Record(converted, partial);
      throw converted;
    }
    return std::move(r_);
  }

 private:
  template <typename Fn>
  void Phase(const std::string& name, Fn&& fn) {
    pg::ThrowIfInterrupted(name);
    spdlog::info("verify: {}...", name);
    if (options_.on_phase_start) options_.on_phase_start(name);
    running_ = name;
    auto t0 = Clock::now();
    std::string detail;
    try {
      detail = fn();
    } catch (...) {
      if (options_.on_phase_end) options_.on_phase_end();
      throw;
    }
    if (options_.on_phase_end) options_.on_phase_end();
    double s = std::chrono::duration<double>(Clock::now() - t0).count();
    r_.phases.push_back({name, s, true, detail});
    spdlog::info("verify: {}: {} ({:.3f}s)", name, detail, s);
  }

  void Record(const Error& e, Rehearsal* partial) {
    if (!partial) return;
    r_.phases.push_back({running_.empty() ? "the rehearsal" : running_, 0, false, e.what()});
    r_.ready = false;
    r_.exit_code = static_cast<int>(e.code());
    r_.verdict = fmt::format("{}: {}", e.code() == ExitCode::kInterrupted ? "INTERRUPTED" : "FAILED",
                             e.what());
    *partial = r_;
  }

  // The range's start as the engine takes it: "base" below the first revision.
  std::string FromTarget() const { return from_ == 0 ? std::string("base") : graph_.Name(from_); }

  engine::Migrator Quiet(pg::Connection& conn) {
    engine::MigratorOptions quiet = options_.migrator;
    quiet.log_steps = false;
    return engine::Migrator(conn, graph_, quiet);
  }

  void Prepare() {
    to_ = graph_.ResolveRevision(range_.target);
    if (to_ == 0) throw UsageError("verify --target base: there is nothing to rehearse below the first revision");
    if (!options_.source) {
      from_ = to_ - 1;
      Phase("start embedded PostgreSQL", [&] {
        pg::ClusterOptions co;
        co.bin_dir = options_.pg_bindir;
        cluster_ = pg::EmbeddedCluster::Start(co);
        r_.server_version = cluster_->server_version();
        return fmt::format("PostgreSQL {} on a private socket", cluster_->server_version());
      });
      Phase("build a database at " + graph_.Name(from_), [&] {
        db_ = std::make_unique<pg::DisposableDatabase>(cluster_->AdminUrl(), "template0", "mh_verify");
        url_ = db_->url();
        if (from_ > 0) {
          pg::Connection conn(*url_);
          Quiet(conn).Upgrade(graph_.Name(from_));
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
    const pg::Url& source = *options_.source;
    r_.target = source.Describe();
    if (options_.in_place) {
      url_ = source;
      r_.target += " (in place: this database is migrated)";
    } else {
      Phase("clone the database on its server", [&] {
        const pg::Url admin = source.WithDatabase("postgres");
        pg::ReapAbandonedDatabases(admin, "mh_verify");
        try {
          db_ = std::make_unique<pg::DisposableDatabase>(admin, source.dbname(), "mh_verify");
        } catch (const Error& e) {
          if (e.code() == ExitCode::kInterrupted) throw;
          throw DatabaseError("cannot clone " + source.Describe() + " into a scratch database: " + e.what(),
                              "CREATE DATABASE ... TEMPLATE needs the CREATEDB right and no other "
                              "session on the source database; or --in-place on a restored copy");
        }
        url_ = db_->url();
        return "scratch database " + db_->name();
      });
      r_.target += " (scratch clone; the source is not changed)";
    }
    pg::Connection conn(*url_);
    r_.server_version = pqxx::nontransaction(conn.raw()).exec("SHOW server_version")[0][0].as<std::string>();
    from_ = engine::Migrator(conn, graph_, options_.migrator).Current();
    if (from_ >= to_)
      throw UsageError(fmt::format("the database is at {}, not below --target {}: nothing to rehearse",
                                   graph_.Name(from_), graph_.Name(to_)),
                       "pass a --target above the database's revision");
  }

  // A suite of the range (checks/suites.h), read-only: pre and post with
  // the checks every revision gets; rollback, the revisions' own only
  // (this rehearsal compares the catalog and the rows itself, below).
  SuiteResult RangeSuite(const std::string& when) {
    pg::Connection conn(*url_);
    pqxx::read_transaction tx(conn.raw());
    const checks::Range range{&graph_, from_, to_};
    if (when == "pre") return checks::RunPreSuite(tx, range);
    if (when == "post") return checks::RunPostSuite(tx, range);
    SuiteResult s{when, {}};
    for (engine::Position p = from_ + 1; p <= to_; ++p)
      if (!checks::RunRevisionChecks(tx, graph_.at(p), when, s)) break;
    return s;
  }

  // Runs one direction with the per-step measurements.
  engine::RunReport Measured(pg::Connection& conn, engine::Direction dir, std::vector<StepEffect>& out) {
    engine::MigratorOptions mo = options_.migrator;
    ServerState before;
    mo.before_step = [&](const engine::StepTiming&, pqxx::transaction_base& tx) { before = ReadState(tx); };
    mo.after_step = [&](const engine::StepTiming& st, pqxx::transaction_base& tx) {
      out.push_back(Compare(st, before, ReadState(tx)));
    };
    engine::Migrator m(conn, graph_, mo);
    engine::RunReport rep = dir == engine::Direction::kUpgrade ? m.Upgrade(graph_.Name(to_))
                                                               : m.Downgrade(FromTarget());
    // A lock is held from the step that took it to the commit.
    for (size_t i = 0; i < out.size(); ++i) {
      const size_t at = i < rep.steps.size() ? i : rep.steps.size();
      out[i].step.seconds = at < rep.steps.size() ? rep.steps[at].seconds : 0;
      double held = 0;
      for (size_t j = i; j < rep.steps.size(); ++j) held += rep.steps[j].seconds;
      out[i].lock_held = held;
    }
    return rep;
  }

  void Rehearse() {
    pg::Connection conn(*url_);
    const std::string range = graph_.Name(from_) + " -> " + graph_.Name(to_);
    r_.title = "Migration rehearsal " + range;
    std::map<std::string, TableData> before;
    std::vector<Dependent> dependents;
    inspect::CatalogSnapshot catalog_before;
    Phase("record the schema and the rows", [&] {
      pqxx::read_transaction tx(conn.raw());
      catalog_before = inspect::TakeSnapshot(tx);
      dependents = ReadDependents(tx);
      long long rows = 0;
      for (const auto& t : PublicTables(tx)) {
        before[t] = ReadTable(tx, t);
        rows += before[t].rows;
      }
      r_.data_line = fmt::format("{} rows in {} tables", rows, before.size());
      return r_.data_line;
    });
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
    Phase("upgrade " + range, [&] {
      auto up = Measured(conn, engine::Direction::kUpgrade, up_effects);
      r_.upgrade_seconds = up.seconds;
      r_.upgrade_steps = up.steps;
      return fmt::format("{:.3f}s in one transaction", up.seconds);
    });
    // What the upgrade discarded: tables and columns gone, with their rows.
    SuiteResult discarded{"discarded rows", {}};
    std::map<std::string, TableData> after_up;
    std::set<std::string> dropped_tables;
    Phase("count what the upgrade discarded", [&] {
      pqxx::read_transaction tx(conn.raw());
      std::set<std::string> now;
      for (const auto& t : PublicTables(tx)) now.insert(t);
      for (const auto& [t, d] : before) {
        if (!now.count(t)) {
          dropped_tables.insert(t);
          discarded.checks.push_back({"discarded.table." + t, Status::kInfo,
                                      fmt::format("table {} dropped: {} rows discarded", t, d.rows)});
          continue;
        }
        after_up[t] = ReadTable(tx, t, &d.key);
        for (const auto& c : d.columns)
          if (!after_up[t].sums.count(c))
            discarded.checks.push_back({"discarded.column." + t + "." + c, Status::kInfo,
                                        fmt::format("column {}.{} dropped: {} values discarded", t, c,
                                                    d.non_null.at(c))});
        std::vector<std::string> changed;
        for (const auto& c : d.columns)
          if (after_up[t].sums.count(c) && after_up[t].sums[c] != d.sums.at(c)) changed.push_back(c);
        if (!changed.empty()) {
          std::string cols;
          for (const auto& c : changed) cols += (cols.empty() ? "" : ", ") + c;
          discarded.checks.push_back({"changed." + t, Status::kInfo,
                                      fmt::format("the upgrade changed values of {} ({}): the "
                                                  "rollback must bring them back",
                                                  t, cols)});
        }
      }
      // What depended on a table or column the upgrade dropped: a plain
      // DROP refuses it; the upgrade dropped it too (CASCADE), or first.
      auto report_dependents = [&](const std::string& table, const std::string& column) {
        std::vector<std::string> gone, kept, all;
        std::set<std::pair<std::string, long long>> seen;
        for (const auto& d : dependents) {
          if (d.table != table || (!column.empty() && d.column != column)) continue;
          if (!seen.insert({d.catalog, d.objid}).second) continue;
          (StillExists(tx, d) ? kept : gone).push_back(d.what);
          all.push_back(d.what);
        }
        if (gone.empty() && kept.empty()) return;
        auto list = [](const std::vector<std::string>& v) {
          std::string out;
          for (const auto& x : v) out += (out.empty() ? "" : ", ") + x;
          return out;
        };
        const std::string what = column.empty() ? "table " + table : "column " + table + "." + column;
        discarded.checks.push_back(
            {"dependents." + (column.empty() ? table : table + "." + column), Status::kInfo,
             fmt::format("{}: {} depended on it (a plain DROP refuses while they exist, SQLSTATE "
                         "2BP01); {}",
                         what, list(all),
                         kept.empty()   ? std::string("the upgrade dropped them too")
                         : gone.empty() ? std::string("still there after the upgrade")
                                        : "the upgrade dropped " + list(gone) + "; still there: " + list(kept))});
      };
      for (const auto& t : dropped_tables) report_dependents(t, "");
      for (const auto& [t, d] : before)
        if (!dropped_tables.count(t))
          for (const auto& c : d.columns)
            if (!after_up[t].sums.count(c)) report_dependents(t, c);
      long long columns = std::count_if(discarded.checks.begin(), discarded.checks.end(),
                                        [](const CheckResult& c) { return c.id.starts_with("discarded.column."); });
      return fmt::format("{} table(s) and {} column(s) dropped", dropped_tables.size(), columns);
    });
    if (discarded.checks.empty())
      discarded.checks.push_back({"discarded.none", Status::kInfo, "no table or column dropped"});
    r_.suites.push_back(discarded);

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
        inspect::CatalogSnapshot first;
        std::map<std::string, TableData> rows;
        {
          pqxx::read_transaction tx(conn.raw());
          first = inspect::TakeSnapshot(tx);
          for (const auto& t : PublicTables(tx)) rows[t] = ReadTable(tx, t);
        }
        auto m = Quiet(conn);
        m.Stamp(FromTarget());
        m.Upgrade(graph_.Name(to_));
        pqxx::read_transaction tx(conn.raw());
        const auto diff = inspect::Diff(first, inspect::TakeSnapshot(tx));
        std::vector<std::string> changed;
        for (const auto& [t, d] : rows) {
          TableData now = ReadTable(tx, t, &d.key);
          if (now.rows != d.rows || now.sums != d.sums) changed.push_back(t);
        }
        if (!diff.empty())
          second_run_changed = fmt::format("{} catalog entries (first: {})", diff.size(), diff.front());
        if (!changed.empty()) {
          std::string list;
          for (const auto& t : changed) list += (list.empty() ? "" : ", ") + t;
          second_run_changed += (second_run_changed.empty() ? "" : " and ") + std::string("the rows of ") + list;
        }
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
    SuiteResult steps{"step effects", {}};
    for (const auto* effects : {&up_effects, &down_effects})
      for (const auto& e : *effects)
        steps.checks.push_back({fmt::format("step.{}.{}.{}", e.step.revision,
                                            e.step.direction == engine::Direction::kUpgrade ? "up" : "down",
                                            e.step.index),
                                Status::kInfo, e.Describe()});
    r_.suites.push_back(steps);

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
    Phase("final upgrade " + range, [&] {
      auto again = Quiet(conn).Upgrade(graph_.Name(to_));
      return fmt::format("{:.3f}s", again.seconds);
    });

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

  const VerifyOptions& options_;
  const RangeOptions& range_;
  const engine::RevisionGraph& graph_;
  Rehearsal r_;
  std::unique_ptr<pg::EmbeddedCluster> cluster_;
  std::unique_ptr<pg::DisposableDatabase> db_;
  std::optional<pg::Url> url_;
  engine::Position from_ = 0, to_ = 0;
  std::string running_;
};

}  // namespace

Rehearsal RunRange(const VerifyOptions& options, const RangeOptions& range,
                   const engine::RevisionGraph& graph, Rehearsal* partial) {
  return RangeRunner(options, range, graph).Go(partial);
}

}  // namespace harness::verify
