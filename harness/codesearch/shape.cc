#include "harness/codesearch/shape.h"

#include <vector>

#include <fmt/format.h>

#include "harness/error.h"

namespace harness::codesearch {

namespace {

constexpr const char* kProbe = R"SQL(
SELECT to_regclass('public.repositories') IS NOT NULL AS repositories,
       to_regclass('public.code_chunks') IS NOT NULL AS code_chunks,
       to_regclass('public.code_files') IS NOT NULL AS code_files,
       -- Tables, not views of those names (reading a view runs its owner's code).
       pg_catalog.array_to_string(ARRAY(
         SELECT c.relname || ' (relkind ' || c.relkind::text || ')'
           FROM pg_catalog.pg_class c
          WHERE c.relnamespace = 'public'::regnamespace
            AND c.relname IN ('repositories', 'code_chunks', 'code_files')
            AND c.relkind NOT IN ('r', 'p')
          ORDER BY 1), ', ') AS not_tables,
       pg_catalog.array_to_string(ARRAY(
         SELECT c.relname || '.' || a.attname
           FROM pg_catalog.pg_attribute a
           JOIN pg_catalog.pg_class c ON c.oid = a.attrelid
          WHERE c.relnamespace = 'public'::regnamespace
            AND c.relname IN ('repositories', 'code_chunks', 'code_files')
            AND a.attname IN ('id', 'repository_id', 'code_file_id')
            AND a.attnum > 0 AND NOT a.attisdropped
          ORDER BY 1), ',') AS columns
)SQL";

}  // namespace

const char* ShapeName(Shape shape) {
  return shape == Shape::kProduction ? "production" : "quickstart";
}

Shape ParseShape(std::string_view name) {
  if (name == "quickstart") return Shape::kQuickstart;
  if (name == "production") return Shape::kProduction;
  throw UsageError(fmt::format("unknown schema shape '{}'", name),
                   "use quickstart (migrations/001..005) or production (the service's own "
                   "Alembic chain: code_chunks -> code_files -> repositories)");
}

std::optional<Shape> DetectShape(pqxx::transaction_base& tx) {
  pqxx::row r = tx.exec1(kProbe);
  if (!r["repositories"].as<bool>() || !r["code_chunks"].as<bool>()) return std::nullopt;
  if (const std::string not_tables = r["not_tables"].as<std::string>(); !not_tables.empty())
    throw UsageError("this is not a schema migration 002 knows: public." + not_tables +
                         " is not a table",
                     "point the tool at the codebase-search database at revision 005 "
                     "(docs/migrations.md#supported-schemas); nothing was changed");
  const std::string columns = "," + r["columns"].as<std::string>() + ",";
  auto has = [&](const char* column) {
    return columns.find(fmt::format(",{},", column)) != std::string::npos;
  };
  const bool files = r["code_files"].as<bool>();
  const bool direct = has("code_chunks.repository_id");
  const bool via_file = has("code_chunks.code_file_id");
  std::vector<std::string> missing;
  for (const char* c : {"repositories.id", "code_chunks.id"})
    if (!has(c)) missing.push_back(c);
  if (via_file && !direct) {
    if (!files) missing.push_back("table code_files");
    for (const char* c : {"code_files.id", "code_files.repository_id"})
      if (files && !has(c)) missing.push_back(c);
  }
  std::string found;
  if (direct && via_file)
    found = "code_chunks has both repository_id and code_file_id, so 002 cannot tell which one "
            "leads to a chunk's repository";
  else if (!direct && !via_file)
    found = "code_chunks has neither repository_id nor code_file_id";
  else if (!missing.empty()) {
    for (const auto& m : missing) found += (found.empty() ? "" : ", ") + m;
    found = "missing: " + found;
  }
  if (found.empty()) return via_file ? Shape::kProduction : Shape::kQuickstart;
  throw UsageError(
      "this is not a schema migration 002 knows: a code chunk reaches its repository either "
      "through code_chunks.repository_id (the quickstart's shape) or through "
      "code_chunks.code_file_id -> code_files.repository_id (the production shape), with an id "
      "column on each table; " + found,
      "point the tool at the codebase-search database at revision 005 "
      "(docs/migrations.md#supported-schemas); nothing was changed");
}

ShapeSql SqlFor(Shape shape) {
  // Schema-qualified: the DELETE is pasted into a session whose search
  // path may put another role's schema first.
  if (shape == Shape::kQuickstart)
    return {"public.code_chunks c JOIN public.repositories r ON r.id = c.repository_id",
            "NOT EXISTS (SELECT 1 FROM public.repositories r WHERE r.id = c.repository_id)",
            "DELETE FROM public.code_chunks c WHERE NOT EXISTS (SELECT 1 FROM public.repositories "
            "r WHERE r.id = c.repository_id);"};
  return {"public.code_chunks c JOIN public.code_files f ON f.id = c.code_file_id "
          "JOIN public.repositories r ON r.id = f.repository_id",
          "NOT EXISTS (SELECT 1 FROM public.code_files f JOIN public.repositories r ON r.id = "
          "f.repository_id WHERE f.id = c.code_file_id)",
          "DELETE FROM public.code_chunks c WHERE NOT EXISTS (SELECT 1 FROM public.code_files f "
          "JOIN public.repositories r ON r.id = f.repository_id WHERE f.id = c.code_file_id);"};
}

}  // namespace harness::codesearch
