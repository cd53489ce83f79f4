#include "harness/inspect/catalog.h"

#include <fmt/format.h>

#include "harness/inspect/table_reading.h"

namespace harness::inspect {

namespace {

constexpr const char* kTablesQuery = R"SQL(
SELECT c.oid, c.relname, c.relkind
FROM pg_catalog.pg_class c
WHERE c.relnamespace = to_regnamespace($1)
  AND c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f')
  AND NOT ($1 = 'public' AND c.relname IN ('alembic_version', 'migration_harness_progress'))
ORDER BY c.relname
)SQL";

constexpr const char* kColumnsQuery = R"SQL(
SELECT c.relname, a.attname,
       row_number() OVER (PARTITION BY c.oid ORDER BY a.attnum) AS position,
       format_type(a.atttypid, a.atttypmod) AS type,
       coalesce(pg_get_expr(d.adbin, d.adrelid), '') AS default_expr,
       a.attnotnull,
       -- PostgreSQL 18+: a NOT NULL may be NOT VALID (attnotnull is true for it too)
       NOT EXISTS (SELECT 1 FROM pg_catalog.pg_constraint n
                   WHERE n.conrelid = a.attrelid AND n.contype = 'n' AND NOT n.convalidated
                     AND n.conkey = ARRAY[a.attnum]) AS not_null_validated
FROM pg_catalog.pg_attribute a
JOIN pg_catalog.pg_class c ON c.oid = a.attrelid
LEFT JOIN pg_catalog.pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
WHERE c.relnamespace = to_regnamespace($1) AND c.relkind IN ('r', 'p')
  AND NOT ($1 = 'public' AND c.relname IN ('alembic_version', 'migration_harness_progress'))
  AND a.attnum > 0 AND NOT a.attisdropped
ORDER BY c.relname, a.attnum
)SQL";

constexpr const char* kConstraintsQuery = R"SQL(
SELECT c.relname, k.conname, k.contype, pg_get_constraintdef(k.oid) AS definition, k.convalidated,
       CASE WHEN k.contype = 'c' THEN pg_get_expr(k.conbin, k.conrelid) END AS check_expr,
       k.connoinherit
FROM pg_catalog.pg_constraint k
JOIN pg_catalog.pg_class c ON c.oid = k.conrelid
WHERE c.relnamespace = to_regnamespace($1) AND NOT ($1 = 'public' AND c.relname IN ('alembic_version', 'migration_harness_progress'))
  -- PostgreSQL 18 also records each column's NOT NULL as a constraint
  -- (contype 'n', named TABLE_COLUMN_not_null): the column's NOT NULL
  -- already says it, as on every earlier version.
  AND k.contype <> 'n'
ORDER BY c.relname, k.conname
)SQL";

constexpr const char* kIndexesQuery = R"SQL(
SELECT t.relname AS table_name, i.relname AS index_name, pg_get_indexdef(i.oid) AS definition,
       x.indisvalid
FROM pg_catalog.pg_index x
JOIN pg_catalog.pg_class i ON i.oid = x.indexrelid
JOIN pg_catalog.pg_class t ON t.oid = x.indrelid
WHERE t.relnamespace = to_regnamespace($1) AND NOT ($1 = 'public' AND t.relname IN ('alembic_version', 'migration_harness_progress'))
ORDER BY t.relname, i.relname
)SQL";

constexpr const char* kExtensionsQuery =
    "SELECT extname, extversion FROM pg_catalog.pg_extension ORDER BY extname";

const char* KindName(char k) {
  switch (k) {
    case 'v': return "view";
    case 'm': return "materialized view";
    case 'S': return "sequence";
    case 'f': return "foreign table";
    case 'p': return "partitioned table";
    default: return "relation";
  }
}

const char* ConstraintKind(char k) {
  switch (k) {
    case 'p': return "primary key";
    case 'f': return "foreign key";
    case 'c': return "check";
    case 'u': return "unique";
    case 'x': return "exclusion";
    default: return "constraint";
  }
}

// The planner's form of a CHECK expression on `table`: what EXPLAIN VERBOSE
// prints after constant folding. PostgreSQL stores `status IN ('a', 'b')`
// on a varchar column as `(ARRAY['a'::varchar, ...])::text[]`, but the text
// pg_dump writes for it is re-parsed as `ARRAY[('a'::varchar)::text, ...]`:
// a restored copy differs from the original in the catalog while meaning the
// same. Both fold to `'{a,b}'::text[]`. Read-only; empty when it cannot run
// (no SELECT right on the table, or a lock it cannot get within a second).
std::string PlannerForm(pqxx::transaction_base& tx, const std::string& schema,
                        const std::string& table, const std::string& expr) {
  auto* db_tx = dynamic_cast<pqxx::dbtransaction*>(&tx);
  if (!db_tx) return {};  // a nontransaction cannot take a savepoint
  try {
    pqxx::subtransaction sub(*db_tx, "normalize_check");
    sub.exec("SET LOCAL lock_timeout = '1s'");
    // `expr` is the server's own deparse of a stored constraint, not user
    // input; the table name is quoted.
    pqxx::result plan = sub.exec("EXPLAIN (VERBOSE, COSTS OFF) SELECT " + expr + " FROM ONLY " +
                                 sub.quote_name(schema) + "." + sub.quote_name(table));
    std::string out;
    for (const auto& row : plan) {
      std::string line = row[0].as<std::string>();
      auto pos = line.find("Output: ");
      if (pos != std::string::npos) {
        out = line.substr(pos + 8);
        break;
      }
    }
    sub.abort();
    return out;
  } catch (const pqxx::sql_error&) {
    return {};
  }
}

}  // namespace

const Column* Table::FindColumn(const std::string& column) const {
  for (const auto& c : columns)
    if (c.name == column) return &c;
  return nullptr;
}
const Constraint* Table::FindConstraint(const std::string& constraint) const {
  for (const auto& c : constraints)
    if (c.name == constraint) return &c;
  return nullptr;
}
const Index* Table::FindIndex(const std::string& index) const {
  for (const auto& i : indexes)
    if (i.name == index) return &i;
  return nullptr;
}

const Table* CatalogSnapshot::FindTable(const std::string& name) const {
  auto it = tables.find(name);
  return it == tables.end() ? nullptr : &it->second;
}

CatalogSnapshot TakeSnapshot(pqxx::transaction_base& tx, const std::string& schema) {
  CatalogSnapshot s;
  for (const auto& r : tx.exec_params(kTablesQuery, schema)) {
    std::string name = r["relname"].as<std::string>();
    char kind = r["relkind"].c_str()[0];
    if (kind == 'r' || kind == 'p')
      s.tables[name].name = name;
    else
      s.relations[name] = KindName(kind);
  }
  for (const auto& r : tx.exec_params(kColumnsQuery, schema)) {
    Column c;
    c.name = r["attname"].as<std::string>();
    c.position = r["position"].as<int>();
    c.type = r["type"].as<std::string>();
    c.default_expr = r["default_expr"].as<std::string>();
    c.not_null = r["attnotnull"].as<bool>();
    c.not_null_validated = r["not_null_validated"].as<bool>();
    s.tables[r["relname"].as<std::string>()].columns.push_back(c);
  }
  for (const auto& r : tx.exec_params(kConstraintsQuery, schema)) {
    Constraint k;
    k.name = r["conname"].as<std::string>();
    k.type = r["contype"].c_str()[0];
    k.definition = r["definition"].as<std::string>();
    k.validated = r["convalidated"].as<bool>();
    std::string table = r["relname"].as<std::string>();
    if (k.type == 'c') {
      std::string folded = PlannerForm(tx, schema, table, r["check_expr"].as<std::string>());
      if (!folded.empty())
        k.normalized = "CHECK (" + folded + ")" + (r["connoinherit"].as<bool>() ? " NO INHERIT" : "");
    }
    s.tables[table].constraints.push_back(k);
  }
  for (const auto& r : tx.exec_params(kIndexesQuery, schema)) {
    Index i;
    i.name = r["index_name"].as<std::string>();
    i.definition = r["definition"].as<std::string>();
    i.valid = r["indisvalid"].as<bool>();
    s.tables[r["table_name"].as<std::string>()].indexes.push_back(i);
  }
  for (const auto& r : tx.exec(kExtensionsQuery))
    s.extensions[r[0].as<std::string>()] = r[1].as<std::string>();
  return s;
}

CatalogSnapshot TakeSnapshotOfUserSchemas(pqxx::transaction_base& tx) {
  CatalogSnapshot all;
  for (const auto& schema : UserSchemas(tx)) {
    CatalogSnapshot one = TakeSnapshot(tx, schema);
    const std::string prefix = schema == "public" ? "" : schema + ".";
    if (!prefix.empty()) all.schemas.insert(schema);
    for (auto& [name, table] : one.tables) {
      table.name = prefix + name;
      all.tables[prefix + name] = std::move(table);
    }
    for (auto& [name, kind] : one.relations) all.relations[prefix + name] = kind;
    all.extensions = one.extensions;
  }
  return all;
}

std::map<std::string, std::string> CatalogSnapshot::Entries() const {
  std::map<std::string, std::string> out;
  for (const auto& name : schemas) out["schema " + name] = "schema";
  for (const auto& [name, t] : tables) {
    out["table " + name] = fmt::format("{} columns", t.columns.size());
    for (const auto& c : t.columns)
      out[fmt::format("column {}.{}", name, c.name)] =
          fmt::format("#{} {}{}{}", c.position, c.type,
                      !c.not_null                ? ""
                      : c.not_null_validated     ? " NOT NULL"
                                                 : " NOT NULL (not validated)",
                      c.default_expr.empty() ? "" : " DEFAULT " + c.default_expr);
    for (const auto& k : t.constraints)
      out[fmt::format("constraint {}.{}", name, k.name)] =
          fmt::format("{} {}{}", ConstraintKind(k.type),
                      k.normalized.empty() ? k.definition : k.normalized,
                      k.validated ? "" : " (not validated)");
    for (const auto& i : t.indexes)
      out[fmt::format("index {}.{}", name, i.name)] = i.definition + (i.valid ? "" : " (INVALID)");
  }
  for (const auto& [name, kind] : relations) out["relation " + name] = kind;
  for (const auto& [name, version] : extensions) out["extension " + name] = version;
  return out;
}

std::vector<std::string> Diff(const CatalogSnapshot& before, const CatalogSnapshot& after) {
  return DiffEntries(before.Entries(), after.Entries());
}

std::vector<std::string> DiffEntries(const std::map<std::string, std::string>& a,
                                     const std::map<std::string, std::string>& b) {
  std::vector<std::string> out;
  for (const auto& [key, was] : a) {
    auto it = b.find(key);
    if (it == b.end())
      out.push_back("- " + key + ": " + was);
    else if (it->second != was)
      out.push_back("~ " + key + ": " + was + " -> " + it->second);
  }
  for (const auto& [key, now] : b)
    if (!a.count(key)) out.push_back("+ " + key + ": " + now);
  return out;
}

}  // namespace harness::inspect
