#include "harness/verify/table_marks.h"

#include <fmt/format.h>

#include "harness/inspect/table_reading.h"
#include "harness/join.h"

namespace harness::verify {

Marks ReadMarks(pqxx::transaction_base& tx) {
  const std::string tables =
      "FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace WHERE " +
      inspect::UserSchemaPredicate("n.nspname") +
      " AND c.relkind IN ('r', 'p') AND NOT c.relispartition AND NOT (n.nspname = 'public' "
      "AND c.relname IN ('alembic_version', 'migration_harness_progress'))";
  Marks out;
  // Its inheritance children too: a reading of a parent reads theirs.
  for (const auto& r : tx.exec("SELECT c.oid::pg_catalog.int8, n.nspname, c.relname, c.relkind::text, "
                               "coalesce(pg_catalog.pg_relation_filenode(c.oid), 0)::pg_catalog.int8, "
                               "coalesce((SELECT pg_catalog.string_agg(i.inhrelid::text, ',' ORDER BY i.inhrelid) "
                               "FROM pg_catalog.pg_inherits i WHERE i.inhparent = c.oid), '') " +
                               tables)) {
    TableMark& m = out[r[0].as<long long>()];
    m.id = inspect::TableId{r[1].as<std::string>(), r[2].as<std::string>()};
    m.kind = r[3].as<std::string>().front();
    m.filenode = r[4].as<long long>();
    m.children = r[5].as<std::string>();
  }
  // Each live column: type, typmod, collation, the value rows stored
  // before it was added read it as (attmissingval), and the labels of an enum
  // it is read through (itself, the element of an array, the base of a
  // domain, the subtype of a range or multirange); whether it is of a
  // composite type (or an array of, or a domain over, one).
  for (const auto& r : tx.exec(
           "SELECT c.oid::pg_catalog.int8, a.attnum::pg_catalog.int4, a.atttypid::text || ':' || "
           "a.atttypmod::text || ':' || a.attcollation::text || ':' || coalesce(a.attmissingval::text, '') || "
           "coalesce(':' || (SELECT "
           "pg_catalog.string_agg(e.enumlabel::text, ',' ORDER BY e.enumsortorder) FROM pg_catalog.pg_enum e "
           "WHERE e.enumtypid IN (t.oid, t.typelem, t.typbasetype, b.typelem) OR e.enumtypid IN (SELECT "
           "g.rngsubtype FROM pg_catalog.pg_range g WHERE t.oid IN (g.rngtypid, g.rngmultitypid))), ''), "
           "'c' IN (t.typtype, coalesce(el.typtype, '-'), coalesce(b.typtype, '-')) OR (t.typnamespace = "
           "'pg_catalog'::pg_catalog.regnamespace AND t.typname::text LIKE 'reg%') OR coalesce(el.typtype, '-') = 'd' "
           "OR coalesce(b.typtype, '-') = 'd' OR coalesce(b.typelem, 0) <> 0 "
           "FROM pg_catalog.pg_attribute a JOIN pg_catalog.pg_class c ON c.oid = a.attrelid "
           "JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace JOIN pg_catalog.pg_type t ON t.oid = "
           "a.atttypid LEFT JOIN pg_catalog.pg_type el ON el.oid = t.typelem LEFT JOIN pg_catalog.pg_type b ON "
           "b.oid = t.typbasetype " +
           tables.substr(tables.find(" WHERE ")) + " AND a.attnum > 0 AND NOT a.attisdropped")) {
    auto it = out.find(r[0].as<long long>());
    if (it == out.end()) continue;
    it->second.columns[r[1].as<int>()] = r[2].as<std::string>();
    it->second.composite |= r[3].as<bool>();
  }
  return out;
}

bool WritesCounted(const std::vector<StepEffect>& steps, size_t run_steps) {
  if (steps.size() != run_steps) return false;
  for (const auto& e : steps)
    if (!e.writes_known) return false;
  return true;
}

MayHaveChanged ChangedBy(const std::string& what, const std::vector<StepEffect>& steps, bool counted,
                         const Marks& before, const Marks& after) {
  // By oid: a name may have changed within the run.
  std::map<long long, std::map<std::string, long long>> written;  // oid -> "inserted" -> rows
  std::set<long long> rewritten;
  if (counted)
    for (const auto& e : steps) {
      for (const auto& [oid, rows] : e.activity.written_oids)
        for (const auto& [how, n] : rows) written[oid][how] += n;
      rewritten.insert(e.activity.rewritten_oids.begin(), e.activity.rewritten_oids.end());
    }
  MayHaveChanged out;
  for (const auto& [oid, now] : after) {
    std::vector<std::string> why;
    auto was = before.find(oid);
    if (was == before.end()) {
      out[oid] = what + " created it";
      continue;
    }
    if (now.kind == 'p') why.push_back("partitioned: its partitions' rows are not counted here");
    if (now.composite) why.push_back("a column whose text follows other objects (a composite, reg* or nested type)");
    if (!counted) why.push_back(what + " ran outside the tool's own transaction: its writes are not counted");
    if (!now.children.empty() || was->second.children != now.children)
      why.push_back("its inheritance children are read with it");
    if (was->second.filenode != now.filenode || rewritten.count(oid))
      why.push_back(what + " gave it new storage (a rewrite or a TRUNCATE)");
    // A column added or dropped leaves the others' values as they were.
    std::vector<std::string> retyped;
    for (const auto& [attnum, type] : now.columns)
      if (auto w = was->second.columns.find(attnum); w != was->second.columns.end() && w->second != type)
        retyped.push_back(fmt::format("#{}", attnum));
    if (!retyped.empty()) why.push_back(what + " changed the type of its column(s) " + Join(retyped));
    if (auto w = written.find(oid); w != written.end()) {
      std::vector<std::string> counts;
      for (const char* how : {"inserted", "updated", "deleted"})
        if (auto n = w->second.find(how); n != w->second.end() && n->second > 0)
          counts.push_back(fmt::format("{} {}", n->second, how));
      if (!counts.empty()) why.push_back(what + ": " + Join(counts));
    }
    if (!why.empty()) out[oid] = Join(why, "; ");
  }
  return out;
}

void Merge(MayHaveChanged& into, const MayHaveChanged& more) {
  for (const auto& [oid, why] : more) {
    auto [it, fresh] = into.emplace(oid, why);
    if (!fresh && it->second.find(why) == std::string::npos) it->second += "; " + why;
  }
}

std::string ReReadText(const std::vector<std::pair<std::string, std::string>>& reread, size_t kept) {
  std::vector<std::string> shown;
  for (const auto& [table, why] : reread) shown.push_back(fmt::format("{} ({})", table, why));
  const std::string not_reread =
      kept == 0 ? std::string()
                : fmt::format("not re-read: {} table{} (no row written, same storage and column types)", kept,
                              kept == 1 ? "" : "s");
  if (shown.empty()) return not_reread.empty() ? "no table to read" : not_reread;
  return "re-read " + Join(shown, ", ") + (not_reread.empty() ? "" : "; " + not_reread);
}

}  // namespace harness::verify
