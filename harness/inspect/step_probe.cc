#include "harness/inspect/step_probe.h"

#include <algorithm>
#include <set>

#include <fmt/format.h>

#include "harness/join.h"

namespace harness::inspect {

namespace {

long long Number(const std::string& s) { return s.empty() ? 0 : std::stoll(s); }

}  // namespace

int LockRank(const std::string& mode) {
  static const char* kOrder[] = {"AccessShareLock", "RowShareLock", "RowExclusiveLock",
                                 "ShareUpdateExclusiveLock", "ShareLock", "ShareRowExclusiveLock",
                                 "ExclusiveLock", "AccessExclusiveLock"};
  for (int i = 0; i < 8; ++i)
    if (mode == kOrder[i]) return i;
  return -1;
}

std::string ProbeSql(ProbeScope scope) {
  const bool own = scope == ProbeScope::kThisTransaction;
  const std::string stat = own ? "pg_catalog.pg_stat_get_xact_" : "pg_catalog.pg_stat_get_";
  return fmt::format(
      "SELECT c.oid::pg_catalog.int8, n.nspname, c.relname, c.relkind::pg_catalog.text, "
      "coalesce(pg_catalog.pg_relation_filenode(c.oid), 0)::pg_catalog.int8, "
      "pg_catalog.pg_relation_size(c.oid) OPERATOR(pg_catalog./) "
      "pg_catalog.current_setting('block_size')::pg_catalog.int8, "
      "coalesce(x.indrelid, 0)::pg_catalog.int8, "
      "GREATEST(c.reltuples::pg_catalog.int8, pg_catalog.pg_stat_get_live_tuples(c.oid), 0), "
      "{0}numscans(c.oid), {0}blocks_fetched(c.oid), {0}tuples_inserted(c.oid), "
      "{0}tuples_updated(c.oid), {0}tuples_deleted(c.oid), {1} "
      "FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) "
      "c.relnamespace LEFT JOIN pg_catalog.pg_index x ON x.indexrelid OPERATOR(pg_catalog.=) c.oid "
      "WHERE {2} AND c.relkind OPERATOR(pg_catalog.=) ANY ('{{r,p,m,i}}'::pg_catalog.\"char\"[]) "
      // The revision's bookkeeping (and its index) is no step's work.
      "AND NOT coalesce(n.nspname OPERATOR(pg_catalog.=) 'public' AND (c.relname OPERATOR(pg_catalog.=) "
      "ANY ('{{alembic_version,migration_harness_progress}}'::pg_catalog.name[]) OR x.indrelid "
      "OPERATOR(pg_catalog.=) ANY (ARRAY[pg_catalog.to_regclass('public.alembic_version'), "
      "pg_catalog.to_regclass('public.migration_harness_progress')])), false)",
      stat,
      own ? "(SELECT pg_catalog.string_agg(l.mode, ',') FROM pg_catalog.pg_locks l WHERE l.relation "
            "OPERATOR(pg_catalog.=) c.oid AND l.pid OPERATOR(pg_catalog.=) pg_catalog.pg_backend_pid() "
            "AND l.granted)"
          : "NULL::pg_catalog.text",
      UserSchemaPredicate("n.nspname"));
}

ServerProbe ProbeFromRows(const std::vector<std::vector<std::string>>& rows) {
  ServerProbe p;
  for (const auto& r : rows) {
    if (r.size() != 14) throw std::runtime_error("a probe row has " + std::to_string(r.size()) + " columns, not 14");
    RelationProbe rel;
    const long long oid = Number(r[0]);
    rel.id = {r[1], r[2]};
    rel.kind = r[3].empty() ? '?' : r[3][0];
    rel.filenode = Number(r[4]);
    rel.pages = Number(r[5]);
    rel.table_oid = Number(r[6]);
    rel.rows_estimate = Number(r[7]);
    rel.seq_scans = Number(r[8]);
    rel.blocks_fetched = Number(r[9]);
    rel.tuples_inserted = Number(r[10]);
    rel.tuples_updated = Number(r[11]);
    rel.tuples_deleted = Number(r[12]);
    std::string strongest;
    for (size_t start = 0; start < r[13].size();) {
      size_t comma = r[13].find(',', start);
      std::string mode = r[13].substr(start, comma == std::string::npos ? std::string::npos : comma - start);
      if (LockRank(mode) > LockRank(strongest)) strongest = mode;
      if (comma == std::string::npos) break;
      start = comma + 1;
    }
    if (!strongest.empty() && rel.kind != 'i') p.locks[oid] = strongest;
    p.relations[oid] = rel;
  }
  return p;
}

ServerProbe ReadProbe(pqxx::transaction_base& tx, ProbeScope scope) {
  std::vector<std::vector<std::string>> rows;
  for (const auto& r : tx.exec(ProbeSql(scope))) {
    std::vector<std::string> row;
    for (const auto& f : r) row.push_back(f.is_null() ? std::string() : f.as<std::string>());
    rows.push_back(std::move(row));
  }
  return ProbeFromRows(rows);
}

StepActivity Compare(const ServerProbe& a, const ServerProbe& b) {
  StepActivity e;
  std::set<long long> rewritten, created;
  for (const auto& [oid, rel] : b.relations) {
    if (rel.kind == 'i') continue;
    auto was = a.relations.find(oid);
    if (was == a.relations.end()) {
      created.insert(oid);
      e.created.push_back(rel.id.Key());
    } else if (rel.kind != 'p' && was->second.filenode != rel.filenode) {
      rewritten.insert(oid);
      e.rewritten.push_back(rel.id.Key());
      e.rewritten_oids.push_back(oid);
    }
  }
  std::set<std::string> indexed_tables;
  for (const auto& [oid, rel] : b.relations) {
    // A rewrite rebuilds its table's indexes; a new table's are new too.
    if (rel.kind != 'i' || rewritten.count(rel.table_oid) || created.count(rel.table_oid)) continue;
    auto was = a.relations.find(oid);
    const bool fresh = was == a.relations.end() || was->second.filenode != rel.filenode;
    // Pages beyond the metapage: rows were sorted into it.
    if (fresh && rel.pages > 1) {
      e.indexes.push_back(rel.id.Key());
      if (auto t = b.relations.find(rel.table_oid); t != b.relations.end()) indexed_tables.insert(t->second.id.Key());
    }
  }
  for (const auto& [oid, rel] : a.relations)
    if (rel.kind != 'i' && !b.relations.count(oid)) e.dropped.push_back(rel.id.Key());
  for (const auto& [oid, rel] : b.relations) {
    if (rel.kind == 'i' || created.count(oid)) continue;
    auto was = a.relations.find(oid);
    if (was == a.relations.end()) continue;
    const RelationProbe& w = was->second;
    const long long rows = std::max(w.rows_estimate, rel.rows_estimate);
    const long long updated = rel.tuples_updated - w.tuples_updated;
    if (updated > 0) e.rows_updated[rel.id.Key()] = updated;
    for (const auto& [how, n] : {std::pair<const char*, long long>{"inserted", rel.tuples_inserted - w.tuples_inserted},
                                 {"updated", updated},
                                 {"deleted", rel.tuples_deleted - w.tuples_deleted}})
      if (n > 0) e.written_oids[oid][how] = n;
    if (updated >= std::max<long long>(1, rows / 2)) e.updated.push_back(rel.id.Key());
    if (rewritten.count(oid)) continue;
    const long long blocks = rel.blocks_fetched - w.blocks_fetched;
    if (rel.seq_scans > w.seq_scans && blocks >= std::max<long long>(1, rel.pages / 2))
      e.scanned.push_back(rel.id.Key());
  }
  e.indexed_tables.assign(indexed_tables.begin(), indexed_tables.end());
  std::vector<std::string> locked;
  // A table dropped by the step is named as it was before it.
  auto name_of = [&](long long oid) {
    if (auto rel = b.relations.find(oid); rel != b.relations.end()) return rel->second.id.Key();
    if (auto rel = a.relations.find(oid); rel != a.relations.end()) return rel->second.id.Key();
    return std::to_string(oid);
  };
  for (const auto& [oid, mode] : b.locks) e.held[name_of(oid)] = mode;
  for (const auto& [oid, mode] : b.locks) {
    auto was = a.locks.find(oid);
    if (was != a.locks.end() && LockRank(was->second) >= LockRank(mode)) continue;
    const std::string name = name_of(oid);
    if (LockRank(mode) > LockRank(e.lock_mode)) {
      e.lock_mode = mode;
      locked = {name};
    } else if (mode == e.lock_mode) {
      locked.push_back(name);
    }
  }
  std::sort(locked.begin(), locked.end());
  e.lock_tables = Join(locked);
  // Created and dropped in the order the catalog made them (oid order).
  for (auto* v : {&e.rewritten, &e.indexes, &e.updated, &e.scanned}) std::sort(v->begin(), v->end());
  return e;
}

std::vector<std::string> StepActivity::Kinds() const {
  std::vector<std::string> k;
  if (!rewritten.empty()) k.push_back("table rewrite");
  if (!indexes.empty()) k.push_back("index build");
  if (!updated.empty()) k.push_back("row update");
  if (!scanned.empty()) k.push_back("full scan");
  if (k.empty()) k.push_back("catalog only");
  return k;
}

std::string StepActivity::Label() const {
  if (!rewritten.empty()) return "rewrite-" + Join(rewritten, "+");
  if (!indexes.empty()) return "index-" + Join(indexed_tables, "+");
  if (!updated.empty()) return "update-" + Join(updated, "+");
  if (!scanned.empty()) return "scan-" + Join(scanned, "+");
  return "catalog";
}

std::string StepActivity::Objects() const {
  std::string out;
  if (!rewritten.empty()) out += "; rewrote " + Join(rewritten);
  if (!indexes.empty()) out += "; built " + Join(indexes);
  if (!rows_updated.empty()) {
    std::vector<std::string> u;
    for (const auto& [t, n] : rows_updated) u.push_back(fmt::format("{} row{} of {}", n, n == 1 ? "" : "s", t));
    out += "; updated " + Join(u);
  }
  if (!scanned.empty()) out += "; scanned " + Join(scanned);
  if (!created.empty()) out += "; created " + Join(created);
  if (!dropped.empty()) out += "; dropped " + Join(dropped);
  return out;
}

}  // namespace harness::inspect
