// A snapshot of the schema as the catalog sees it (tables, columns with
// types, defaults and nullability, constraints via pg_get_constraintdef,
// indexes via pg_get_indexdef, other relations, extensions) and a readable
// diff between two snapshots. "The downgrade is exact" means: empty diff.
// CHECK expressions are compared in the planner's folded form (see
// Constraint::normalized), everything else as the catalog prints it. The
// same schema gives the same snapshot on PostgreSQL 14 to 18: NOT NULL is a
// column's property (18's not-null constraints, contype 'n', are not listed
// as constraints).
#pragma once

#include <map>
#include <set>
#include <string>
#include <vector>

#include <pqxx/pqxx>

namespace harness::inspect {

struct Column {
  std::string name;
  int position = 0;  // 1-based among live columns (dropped ones do not count)
  std::string type;  // format_type, e.g. "character varying(50)"
  std::string default_expr;
  bool not_null = false;
  bool not_null_validated = true;  // false: NOT NULL NOT VALID (PostgreSQL 18+)
};

struct Constraint {
  std::string name;
  char type = '?';  // p, f, c, u, x
  std::string definition;  // pg_get_constraintdef
  // CHECK constraints: the expression as the planner folds it, so that
  // equivalent spellings (a dump-and-restore round trip) compare equal.
  // Empty when it could not be read; Entries() then uses `definition`.
  std::string normalized;
  bool validated = true;
};

struct Index {
  std::string name;
  std::string definition;
  bool valid = true;
};

struct Table {
  std::string name;
  std::vector<Column> columns;  // in position order
  std::vector<Constraint> constraints;
  std::vector<Index> indexes;

  const Column* FindColumn(const std::string& column) const;
  const Constraint* FindConstraint(const std::string& constraint) const;
  const Index* FindIndex(const std::string& index) const;
};

struct CatalogSnapshot {
  std::map<std::string, Table> tables;            // ordinary tables of the schema
  std::map<std::string, std::string> relations;   // views, sequences, ...: name -> kind
  std::map<std::string, std::string> extensions;  // name -> version
  // TakeSnapshotOfUserSchemas: the user schemas besides public; their
  // tables and relations are named "schema.name" (public's, "name").
  std::set<std::string> schemas;

  const Table* FindTable(const std::string& name) const;
  // One line per object, "key: description", sorted: the diff's raw material.
  std::map<std::string, std::string> Entries() const;
};

// Reads the catalog of `schema`; public.alembic_version is left out (its
// content is the revision, not the schema).
CatalogSnapshot TakeSnapshot(pqxx::transaction_base& tx, const std::string& schema = "public");

// Every user schema (table_reading.h UserSchemas): public's objects under
// their names, as TakeSnapshot gives them, and any other schema's as
// "schema.name", with a "schema NAME" entry of its own.
CatalogSnapshot TakeSnapshotOfUserSchemas(pqxx::transaction_base& tx);

// "- key: was", "+ key: now", "~ key: was -> now", sorted; empty when equal.
std::vector<std::string> Diff(const CatalogSnapshot& before, const CatalogSnapshot& after);
// The same over Entries() maps (a snapshot saved to a file keeps only those).
std::vector<std::string> DiffEntries(const std::map<std::string, std::string>& before,
                                     const std::map<std::string, std::string>& after);

}  // namespace harness::inspect
