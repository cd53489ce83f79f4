#include "harness/inspect/table_reading.h"

#include <algorithm>

#include <fmt/format.h>

namespace harness::inspect {

std::string TableId::Sql(const pqxx::transaction_base& tx) const {
  return tx.quote_name(schema) + "." + tx.quote_name(name);
}

std::string UserSchemaPredicate(const std::string& column) {
  return fmt::format("({0} OPERATOR(pg_catalog.<>) 'information_schema' AND "
                     "pg_catalog.left({0}, 3) OPERATOR(pg_catalog.<>) 'pg_')",
                     column);
}

std::vector<std::string> UserSchemas(pqxx::transaction_base& tx) {
  std::vector<std::string> out;
  for (const auto& r : tx.exec("SELECT n.nspname FROM pg_catalog.pg_namespace n WHERE " +
                               UserSchemaPredicate("n.nspname") +
                               " ORDER BY n.nspname OPERATOR(pg_catalog.<>) 'public', n.nspname"))
    out.push_back(r[0].as<std::string>());
  return out;
}

std::vector<std::pair<TableId, long long>> UserTables(pqxx::transaction_base& tx) {
  std::vector<std::pair<TableId, long long>> out;
  for (const auto& r : tx.exec(
           "SELECT n.nspname, c.relname, c.oid::pg_catalog.int8 FROM pg_catalog.pg_class c "
           "JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace WHERE " +
           UserSchemaPredicate("n.nspname") +
           " AND c.relkind IN ('r', 'p') AND NOT c.relispartition AND NOT (n.nspname = 'public' "
           "AND c.relname IN ('alembic_version', 'migration_harness_progress')) ORDER BY c.oid"))
    out.push_back({TableId{r[0].as<std::string>(), r[1].as<std::string>()}, r[2].as<long long>()});
  return out;
}

const ColumnData* TableReading::Find(const std::string& column) const {
  for (const auto& c : columns)
    if (c.name == column) return &c;
  return nullptr;
}

std::vector<std::string> TableReading::ColumnNames() const {
  std::vector<std::string> out;
  for (const auto& c : columns) out.push_back(c.name);
  return out;
}

TableReading ReadTable(pqxx::transaction_base& tx, const TableId& table,
                       const std::vector<std::string>* key_from,
                       const std::vector<std::string>* only) {
  TableReading d;
  d.table = table;
  const std::string qualified = table.Sql(tx);
  d.oid = tx.exec_params1("SELECT $1::pg_catalog.regclass::pg_catalog.oid::pg_catalog.int8", qualified)[0]
              .as<long long>();
  const std::vector<ColumnData> all = LiveColumns(tx, d.oid);
  if (only) {
    for (const auto& name : *only)
      for (const auto& c : all)
        if (c.name == name) d.columns.push_back(c);
  } else {
    d.columns = all;
  }
  if (key_from) {
    d.key = *key_from;
  } else {
    for (const auto& r : tx.exec_params(
             "SELECT a.attname FROM pg_catalog.pg_index i, pg_catalog.unnest(i.indkey) WITH "
             "ORDINALITY u(n, o) JOIN pg_catalog.pg_attribute a ON a.attnum = u.n WHERE i.indrelid = "
             "$1 AND i.indisprimary AND a.attrelid = i.indrelid ORDER BY u.o",
             d.oid))
      d.key.push_back(r[0].as<std::string>());
  }
  // The whole row as fingerprint.h hashes it: ROW of the columns, in order.
  // (A sum of bigints is numeric already, exact: no cast per row.) Each
  // column's values are hashed on their own: which row holds a value is the
  // whole rows' fingerprint's to tell, not the column's (tied to the row's
  // key, each value cost a second hash of the key: twice the read).
  std::string row;
  for (const auto& c : d.columns) row += (row.empty() ? "" : ", ") + ("t." + tx.quote_name(c.name));
  std::string select = "SELECT pg_catalog.count(*), coalesce(pg_catalog.sum(pg_catalog.hashtextextended(" +
                       (row.empty() ? std::string("t") : "ROW(" + row + ")") + "::text, 0)), 0)::text";
  for (const auto& c : d.columns) {
    const std::string q = "t." + tx.quote_name(c.name);
    select += fmt::format(", coalesce(pg_catalog.sum(pg_catalog.hashtextextended({}::text, 0)), 0)::text, "
                          "pg_catalog.count({})",
                          q, q);
  }
  pqxx::result result = tx.exec(select + " FROM " + qualified + " t");
  if (result.size() != 1) throw std::logic_error("a table reading returned no row");
  const pqxx::row r = result[0];
  d.fingerprint = {r[0].as<long long>(), r[1].as<std::string>()};
  for (size_t i = 0; i < d.columns.size(); ++i) {
    d.columns[i].sum = r[static_cast<int>(2 + 2 * i)].as<std::string>();
    d.columns[i].non_null = r[static_cast<int>(3 + 2 * i)].as<long long>();
  }
  return d;
}

std::vector<ColumnData> LiveColumns(pqxx::transaction_base& tx, long long oid) {
  std::vector<ColumnData> all;
  for (const auto& r : tx.exec_params(
           "SELECT a.attname, a.attnum FROM pg_catalog.pg_attribute a WHERE a.attrelid = $1 "
           "AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum",
           oid))
    all.push_back({r[0].as<std::string>(), r[1].as<int>(), {}, 0});
  return all;
}

std::vector<std::string> ColumnsOf(pqxx::transaction_base& tx, const TableId& table) {
  std::vector<std::string> names;
  for (const auto& r : tx.exec_params(
           "SELECT a.attname FROM pg_catalog.pg_attribute a WHERE a.attrelid = "
           "$1::pg_catalog.regclass AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum",
           table.Sql(tx)))
    names.push_back(r[0].as<std::string>());
  return names;
}

Fingerprint TakeFingerprint(pqxx::transaction_base& tx, const TableId& table,
                            const std::vector<std::string>& columns) {
  const std::vector<std::string> names = columns.empty() ? ColumnsOf(tx, table) : columns;
  std::string row;
  for (const auto& c : names) row += (row.empty() ? "" : ", ") + ("t." + tx.quote_name(c));
  pqxx::result r = tx.exec("SELECT pg_catalog.count(*), coalesce(pg_catalog.sum(pg_catalog.hashtextextended(" +
                           (row.empty() ? std::string("t") : "ROW(" + row + ")") +
                           "::text, 0)), 0)::text FROM " + table.Sql(tx) + " t");
  if (r.size() != 1) throw std::logic_error("fingerprint query returned no row");
  return Fingerprint{r[0][0].as<long long>(), r[0][1].as<std::string>()};
}

}  // namespace harness::inspect
