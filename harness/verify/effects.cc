#include "harness/verify/effects.h"

#include <algorithm>

#include <fmt/format.h>

#include "harness/inspect/catalog.h"
#include "harness/join.h"
#include "harness/sys/untrusted_text.h"

namespace harness::verify {

namespace {

using checks::Status;

// "1 row", "2 rows".
std::string Counted(long long n, const std::string& noun) {
  return fmt::format("{} {}{}", n, noun, n == 1 ? "" : "s");
}

// Objects outside a table of a user schema that depend on it or one of its
// columns (pg_depend, normal dependencies): a view, a foreign key from
// another table, a function's default... A plain DROP TABLE or DROP COLUMN
// refuses while one exists (SQLSTATE 2BP01); CASCADE drops it too.
// Followed through what the table owns (its indexes, constraints, types).
std::string DependentsSql() {
  return R"SQL(
WITH RECURSIVE owned(tab, classid, objid) AS (
    SELECT CASE WHEN n.nspname = 'public' THEN c.relname::text
                ELSE n.nspname || '.' || c.relname END,
           'pg_catalog.pg_class'::pg_catalog.regclass, c.oid
      FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
     WHERE )SQL" + inspect::UserSchemaPredicate("n.nspname") + R"SQL( AND c.relkind IN ('r', 'p')
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
}

std::vector<Dependent> ReadDependents(pqxx::transaction_base& tx) {
  std::vector<Dependent> out;
  for (const auto& r : tx.exec(DependentsSql()))
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

}  // namespace

std::string StepEffect::Describe() const {
  std::string kinds;
  for (const auto& k : activity.Kinds()) kinds += (kinds.empty() ? "" : " + ") + k;
  std::string lock;
  if (!activity.lock_mode.empty() && !lock_held_known)
    lock = fmt::format("; {} on {} ({})", activity.lock_mode, activity.lock_tables, lock_seen);
  else if (!activity.lock_mode.empty())
    lock = fmt::format("; {} on {}, held {:.3f}s (to the commit{}{})", activity.lock_mode, activity.lock_tables,
                       lock_held, hold_parts.empty() ? "" : ", " + hold_parts,
                       lock_seen.empty() ? "" : "; " + lock_seen);
  if (step.online)  // no lock of the transaction's outlives its statement
    lock = "; outside any transaction (upgrade --online): each statement's locks end with it";
  else if (!under.empty() && lock_seen.empty())
    lock += (activity.lock_mode.empty() ? "; no new table lock, under " : "; under ") + under;
  else if (activity.lock_mode.empty() && lock_seen.empty())
    lock = "; no table lock beyond those already held";
  else if (activity.lock_mode.empty())
    lock = "; no table lock seen (" + lock_seen + ")";
  std::string statements_text;
  if (statements_known) {
    std::vector<Statement> slowest = statements;
    std::stable_sort(slowest.begin(), slowest.end(),
                     [](const Statement& a, const Statement& b) { return a.seconds > b.seconds; });
    std::string shown;
    for (size_t i = 0; i < slowest.size() && i < 3; ++i)
      shown += fmt::format("{}{:.3f}s {}", shown.empty() ? "" : "; ", slowest[i].seconds,
                           sys::ShowUntrusted(slowest[i].sql, 160));
    statements_text = fmt::format("; {} statement(s) logged by the server{}", statements.size(),
                                  shown.empty() ? "" : ", the slowest: " + shown);
  }
  return fmt::format("{} {} {}/{} {}: {}{}{}{}", step.revision,
                     step.direction == engine::Direction::kUpgrade ? "up" : "down", step.index, step.count,
                     step.name, kinds, activity.Objects(), lock, statements_text);
}

long long Recorded::Rows() const {
  long long n = 0;
  for (const auto& t : tables) n += t.rows();
  return n;
}

Recorded ReadBeforeUpgrade(pqxx::transaction_base& tx) {
  Recorded r;
  for (const auto& [id, oid] : inspect::UserTables(tx)) r.tables.push_back(inspect::ReadTable(tx, id));
  r.dependents = ReadDependents(tx);
  return r;
}

Discarded CountDiscarded(pqxx::transaction_base& tx, const Recorded& before,
                         const std::map<long long, std::string>* changed,
                         std::map<long long, inspect::TableReading>* reread) {
  Discarded out;
  auto& checks = out.suite.checks;
  std::map<long long, inspect::TableId> now;  // oid ->
  for (const auto& [id, oid] : inspect::UserTables(tx)) now[oid] = id;
  // Columns dropped, per table key: what depended on them is named below.
  std::vector<std::pair<std::string, std::string>> dropped_columns;
  for (const auto& b : before.tables) {
    const std::string key = b.table.Key();
    auto it = now.find(b.oid);
    if (it == now.end()) {
      out.tables.insert(key);
      out.rows += b.rows();
      checks.push_back({"discarded.table." + key, Status::kInfo,
                        fmt::format("table {} dropped: {} discarded", key, Counted(b.rows(), "row"))});
      continue;
    }
    if (it->second != b.table)
      checks.push_back({"renamed.table." + key, Status::kInfo,
                        fmt::format("table {} renamed to {}: its rows kept", key, it->second.Key())});
    inspect::TableReading after;
    if (!changed || changed->count(b.oid)) {
      after = inspect::ReadTable(tx, it->second, &b.key);
      if (reread) (*reread)[b.oid] = after;
    } else {
      // Not written since: its columns now, each with its values then.
      after.table = it->second;
      after.oid = b.oid;
      after.columns = inspect::LiveColumns(tx, b.oid);
      for (auto& c : after.columns)
        for (const auto& was : b.columns)
          if (was.attnum == c.attnum) {
            c.sum = was.sum;
            c.non_null = was.non_null;
          }
    }
    std::vector<std::string> changed_values;
    for (const auto& c : b.columns) {
      const auto same = std::find_if(after.columns.begin(), after.columns.end(),
                                     [&](const inspect::ColumnData& a) { return a.attnum == c.attnum; });
      if (same == after.columns.end()) {
        ++out.columns;
        dropped_columns.emplace_back(key, c.name);
        checks.push_back({"discarded.column." + key + "." + c.name, Status::kInfo,
                          fmt::format("column {}.{} dropped: {} discarded", key, c.name,
                                      Counted(c.non_null, "value"))});
        continue;
      }
      if (same->name != c.name)
        checks.push_back({"renamed.column." + key + "." + c.name, Status::kInfo,
                          fmt::format("column {}.{} renamed to {}: its values {}", key, c.name, same->name,
                                      same->sum == c.sum ? "kept" : "changed")});
      else if (same->sum != c.sum)
        changed_values.push_back(c.name);
    }
    if (!changed_values.empty())
      checks.push_back({"changed." + key, Status::kInfo,
                        fmt::format("the upgrade changed values of {} ({}): the rollback must bring "
                                    "them back",
                                    key, Join(changed_values))});
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
    const std::string what = column.empty() ? "table " + table : "column " + table + "." + column;
    checks.push_back({"dependents." + (column.empty() ? table : table + "." + column), Status::kInfo,
                      fmt::format("{}: {} depended on it (a plain DROP refuses while they exist, "
                                  "SQLSTATE 2BP01); {}",
                                  what, Join(all),
                                  kept.empty()   ? std::string("the upgrade dropped them too")
                                  : gone.empty() ? std::string("still there after the upgrade")
                                                 : "the upgrade dropped " + Join(gone) +
                                                       "; still there: " + Join(kept))});
  };
  for (const auto& t : out.tables) report_dependents(t, "");
  for (const auto& [t, c] : dropped_columns) report_dependents(t, c);
  if (checks.empty()) checks.push_back({"discarded.none", Status::kInfo, "no table or column dropped"});
  return out;
}

std::string StepId(const StepEffect& e) {
  return fmt::format("step.{}.{}.{}", e.step.revision, e.step.direction == engine::Direction::kUpgrade ? "up" : "down",
                     e.step.index);
}

checks::SuiteResult StepEffectsSuite(const std::vector<StepEffect>& up, const std::vector<StepEffect>& down) {
  checks::SuiteResult steps{"step effects", {}};
  for (const auto* effects : {&up, &down})
    for (const auto& e : *effects) steps.checks.push_back({StepId(e), Status::kInfo, e.Describe()});
  return steps;
}

Contents ReadContents(pqxx::transaction_base& tx) {
  Contents c;
  c.catalog = inspect::TakeSnapshotOfUserSchemas(tx).Entries();
  for (const auto& [id, oid] : inspect::UserTables(tx)) c.rows[id.Key()] = inspect::TakeFingerprint(tx, id);
  return c;
}

std::string Changes(const Contents& first, const Contents& second) {
  const auto diff = inspect::DiffEntries(first.catalog, second.catalog);
  std::vector<std::string> changed;
  for (const auto& [t, was] : first.rows)
    if (auto it = second.rows.find(t); it == second.rows.end() || it->second != was) changed.push_back(t);
  std::string out;
  if (!diff.empty()) out = fmt::format("{} catalog entries (first: {})", diff.size(), diff.front());
  if (!changed.empty()) out += (out.empty() ? "" : " and ") + std::string("the rows of ") + Join(changed);
  return out;
}

}  // namespace harness::verify
