// Every table of the schemas a user owns, and one read of a table that says
// what its rows are: their count, the fingerprint of the whole rows
// (fingerprint.h's, over the columns read) and, per column, the sum of a
// hash of each value and how many values are not NULL. Equal
// fingerprints are the same rows; a column whose sums differ is one whose
// values changed (equal sums are the same values, in some rows: values
// moved between rows show in the fingerprint alone). One sequential scan,
// no sort.
#pragma once

#include <compare>
#include <string>
#include <utility>
#include <vector>

#include <pqxx/pqxx>

#include "harness/inspect/fingerprint.h"

namespace harness::inspect {

// A table of a user schema: every schema but pg_catalog,
// information_schema and pg_* (toast, temporary). Named and keyed `name` in
// public (as every report and baseline file always named public's tables),
// `schema.name` in any other.
struct TableId {
  std::string schema = "public";
  std::string name;
  std::string Key() const { return schema == "public" ? name : schema + "." + name; }
  // Quoted and qualified, for a query.
  std::string Sql(const pqxx::transaction_base& tx) const;
  auto operator<=>(const TableId&) const = default;
};

// A predicate on a schema name (pg_namespace.nspname as `column`): true for
// the user schemas.
std::string UserSchemaPredicate(const std::string& column);

// The user schemas, public first, then by name.
std::vector<std::string> UserSchemas(pqxx::transaction_base& tx);

// The tables (ordinary and partitioned; a partition is read through its
// parent) of every user schema but public.alembic_version, oldest first,
// with their oids.
std::vector<std::pair<TableId, long long>> UserTables(pqxx::transaction_base& tx);

struct ColumnData {
  std::string name;
  int attnum = 0;         // the column's number: a rename keeps it
  std::string sum;        // numeric text
  long long non_null = 0;
};

struct TableReading {
  TableId table;
  long long oid = 0;
  std::vector<std::string> key;  // primary key columns; empty: none
  std::vector<ColumnData> columns;  // in column order
  Fingerprint fingerprint;          // the whole rows over `columns`
  long long rows() const { return fingerprint.rows; }
  const ColumnData* Find(const std::string& column) const;
  std::vector<std::string> ColumnNames() const;
};

// Reads `table` once. `key_from`: record this key (an earlier reading's),
// so that the two compare; `only`: these columns alone (those the table
// still has), in this order. Throws pqxx errors as they come.
TableReading ReadTable(pqxx::transaction_base& tx, const TableId& table,
                       const std::vector<std::string>* key_from = nullptr,
                       const std::vector<std::string>* only = nullptr);

// The live columns of `table`, in order.
std::vector<std::string> ColumnsOf(pqxx::transaction_base& tx, const TableId& table);
// The same of the table `oid`, with their numbers (no sums read).
std::vector<ColumnData> LiveColumns(pqxx::transaction_base& tx, long long oid);
// fingerprint.h's fingerprint of a table of any user schema.
Fingerprint TakeFingerprint(pqxx::transaction_base& tx, const TableId& table,
                            const std::vector<std::string>& columns = {});

}  // namespace harness::inspect
