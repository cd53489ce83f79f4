#include "harness/verify/effects.h"

#include <algorithm>
#include <chrono>

#include <fmt/format.h>

#include "harness/inspect/catalog.h"
#include "harness/inspect/fingerprint.h"
#include "harness/pg/interrupt.h"
#include "harness/report/forecast.h"

namespace harness::verify {

namespace {

using checks::CheckResult;
using checks::Status;
using checks::SuiteResult;
using Clock = std::chrono::steady_clock;

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
    } else if (mode == e.lock_mode) {
      e.lock_table += ", " + table;
    }
  }
  return e;
}

}  // namespace

// ---- what one table holds, column by column -------------------------------


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
                    const std::vector<std::string>* key_from) {
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


std::vector<std::string> StepEffect::Kinds() const {
  std::vector<std::string> k;
  if (!rewritten.empty()) k.push_back(kRewrite);
  if (!indexes.empty()) k.push_back(kIndexBuild);
  if (!scanned.empty()) k.push_back(kFullScan);
  if (k.empty()) k.push_back(kCatalogOnly);
  return k;
}

std::string StepEffect::Describe() const {
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

long long Recorded::Rows() const {
  long long n = 0;
  for (const auto& [t, d] : tables) n += d.rows;
  return n;
}

Recorded Record(pqxx::transaction_base& tx) {
  Recorded r;
  for (const auto& t : PublicTables(tx)) r.tables[t] = ReadTable(tx, t);
  r.dependents = ReadDependents(tx);
  return r;
}

namespace {
// "1 row", "2 rows".
std::string Counted(long long n, const std::string& noun) {
  return fmt::format("{} {}{}", n, noun, n == 1 ? "" : "s");
}
}  // namespace

Discarded CountDiscarded(pqxx::transaction_base& tx, const Recorded& before) {
  Discarded out;
  auto& checks = out.suite.checks;
  std::set<std::string> now;
  for (const auto& t : PublicTables(tx)) now.insert(t);
  for (const auto& [t, d] : before.tables) {
    if (!now.count(t)) {
      out.tables.insert(t);
      out.rows += d.rows;
      checks.push_back({"discarded.table." + t, Status::kInfo,
                        fmt::format("table {} dropped: {} discarded", t, Counted(d.rows, "row"))});
      continue;
    }
    TableData& after = out.after[t] = ReadTable(tx, t, &d.key);
    for (const auto& c : d.columns)
      if (!after.sums.count(c)) {
        ++out.columns;
        checks.push_back({"discarded.column." + t + "." + c, Status::kInfo,
                          fmt::format("column {}.{} dropped: {} discarded", t, c, Counted(d.non_null.at(c), "value"))});
      }
    std::vector<std::string> changed;
    for (const auto& c : d.columns)
      if (after.sums.count(c) && after.sums.at(c) != d.sums.at(c)) changed.push_back(c);
    if (!changed.empty()) {
      std::string cols;
      for (const auto& c : changed) cols += (cols.empty() ? "" : ", ") + c;
      checks.push_back({"changed." + t, Status::kInfo,
                        fmt::format("the upgrade changed values of {} ({}): the rollback must bring "
                                    "them back",
                                    t, cols)});
    }
  }
  // What depended on a table or column the upgrade dropped: a plain DROP
  // refuses it; the upgrade dropped it too (CASCADE), or first.
  auto report_dependents = [&](const std::string& table, const std::string& column) {
    std::vector<std::string> gone, kept, all;
    std::set<std::pair<std::string, long long>> seen;
    for (const auto& d : before.dependents) {
      if (d.table != table || (!column.empty() && d.column != column)) continue;
      if (!seen.insert({d.catalog, d.objid}).second) continue;
      (StillExists(tx, d) ? kept : gone).push_back(d.what);
      all.push_back(d.what);
    }
    if (all.empty()) return;
    auto list = [](const std::vector<std::string>& v) {
      std::string s;
      for (const auto& x : v) s += (s.empty() ? "" : ", ") + x;
      return s;
    };
    const std::string what = column.empty() ? "table " + table : "column " + table + "." + column;
    checks.push_back({"dependents." + (column.empty() ? table : table + "." + column), Status::kInfo,
                      fmt::format("{}: {} depended on it (a plain DROP refuses while they exist, "
                                  "SQLSTATE 2BP01); {}",
                                  what, list(all),
                                  kept.empty()   ? std::string("the upgrade dropped them too")
                                  : gone.empty() ? std::string("still there after the upgrade")
                                                 : "the upgrade dropped " + list(gone) +
                                                       "; still there: " + list(kept))});
  };
  for (const auto& t : out.tables) report_dependents(t, "");
  for (const auto& [t, d] : before.tables)
    if (!out.tables.count(t))
      for (const auto& c : d.columns)
        if (!out.after.at(t).sums.count(c)) report_dependents(t, c);
  if (checks.empty()) checks.push_back({"discarded.none", Status::kInfo, "no table or column dropped"});
  return out;
}

engine::RunReport MeasuredRun(pg::Connection& conn, const engine::RevisionGraph& graph,
                              const engine::MigratorOptions& options, engine::Direction direction,
                              const std::string& target, std::vector<StepEffect>& out) {
  engine::MigratorOptions mo = options;
  ServerState before;
  double measuring = 0;  // the hooks' own time, left out of the run's
  mo.before_step = [&](const engine::StepTiming&, pqxx::transaction_base& tx) {
    auto t0 = Clock::now();
    before = ReadState(tx);
    measuring += std::chrono::duration<double>(Clock::now() - t0).count();
  };
  mo.after_step = [&](const engine::StepTiming& st, pqxx::transaction_base& tx) {
    auto t0 = Clock::now();
    out.push_back(Compare(st, before, ReadState(tx)));
    measuring += std::chrono::duration<double>(Clock::now() - t0).count();
  };
  engine::Migrator m(conn, graph, mo);
  engine::RunReport rep =
      direction == engine::Direction::kUpgrade ? m.Upgrade(target) : m.Downgrade(target);
  rep.seconds = std::max(0.0, rep.seconds - measuring);
  // A lock is held from the step that took it to the commit; a step's time
  // is the engine's (the commit's included for the last).
  for (size_t i = 0; i < out.size(); ++i) {
    out[i].step.seconds = i < rep.steps.size() ? rep.steps[i].seconds : 0;
    double held = 0;
    for (size_t j = i; j < rep.steps.size(); ++j) held += rep.steps[j].seconds;
    out[i].lock_held = held;
  }
  return rep;
}

SuiteResult StepEffectsSuite(const std::vector<StepEffect>& up, const std::vector<StepEffect>& down) {
  SuiteResult steps{"step effects", {}};
  for (const auto* effects : {&up, &down})
    for (const auto& e : *effects)
      steps.checks.push_back({fmt::format("step.{}.{}.{}", e.step.revision,
                                          e.step.direction == engine::Direction::kUpgrade ? "up" : "down",
                                          e.step.index),
                              Status::kInfo, e.Describe()});
  return steps;
}

std::string SecondRunChanges(pg::Connection& conn, const engine::RevisionGraph& graph,
                             const engine::MigratorOptions& quiet, const std::string& from,
                             const std::string& to) {
  // Whole rows, one hash each: a second run that changes any value shows.
  inspect::CatalogSnapshot first;
  std::map<std::string, inspect::Fingerprint> rows;
  {
    pqxx::read_transaction tx(conn.raw());
    first = inspect::TakeSnapshot(tx);
    for (const auto& t : PublicTables(tx)) rows[t] = inspect::TakeFingerprint(tx, t);
  }
  engine::Migrator m(conn, graph, quiet);
  m.Stamp(from);
  m.Upgrade(to);
  pqxx::read_transaction tx(conn.raw());
  const auto diff = inspect::Diff(first, inspect::TakeSnapshot(tx));
  std::vector<std::string> changed;
  for (const auto& [t, was] : rows)
    if (inspect::TakeFingerprint(tx, t) != was) changed.push_back(t);
  std::string out;
  if (!diff.empty()) out = fmt::format("{} catalog entries (first: {})", diff.size(), diff.front());
  if (!changed.empty()) {
    std::string list;
    for (const auto& t : changed) list += (list.empty() ? "" : ", ") + t;
    out += (out.empty() ? "" : " and ") + std::string("the rows of ") + list;
  }
  return out;
}

report::Rehearsal::Forecast ForecastUpgrade(const std::optional<std::vector<engine::StepTiming>>& empty,
                                            const std::vector<const engine::RunReport*>& runs,
                                            const std::set<std::string>& revisions, double here,
                                            long long rows, const std::string& unit) {
  std::map<std::pair<std::string, int>, std::vector<report::Sample>> per_step;
  std::vector<report::Sample> totals;
  int unwatched = 0;
  auto add = [&](const std::vector<engine::StepTiming>& steps, double at) {
    double total = 0;
    for (const auto& s : steps)
      if (revisions.count(s.revision)) {
        per_step[{s.revision, s.index}].push_back({at, s.work_seconds()});
        total += s.work_seconds();
        unwatched += !s.lock_wait_known;
      }
    totals.push_back({at, total});
  };
  if (empty) add(*empty, 0);
  for (const auto* run : runs) add(run->steps, here);
  // More rows never take less time: a step whose line falls (noise on a
  // small database, the empty run the slower one) is forecast at what it
  // took here, and no step below that when forecasting a larger size.
  double predicted = 0;
  for (const auto& [step, samples] : per_step) {
    double at_here = 0;
    int n = 0;
    for (const auto& x : samples)
      if (x.rows == here) {
        at_here += x.seconds;
        ++n;
      }
    at_here = n ? at_here / n : 0;
    const report::LinearFit fit = report::FitLinear(samples);
    double at = fit.slope >= 0 ? fit.Predict(static_cast<double>(rows)) : at_here;
    if (static_cast<double>(rows) >= here) at = std::max(at, at_here);
    predicted += std::max(0.0, at);
  }
  report::Rehearsal::Forecast f;
  f.rows = rows;
  f.unit = unit;
  f.seconds = predicted;
  f.basis = fmt::format("work time, lock waits excluded{}; ",
                        unwatched ? fmt::format(" (but {} step run(s) not watched, counted whole)", unwatched)
                                  : std::string()) +
            (empty ? fmt::format("a line per step through 0 and {:.0f} {} (two sizes: a rough line; a "
                                 "step never below its time here)",
                                 here, unit)
                   : fmt::format("every step scaled from {:.0f} {}", here, unit));
  f.fit = report::FitLinear(totals).Describe();
  return f;
}

}  // namespace harness::verify
