// The two schemas at 005 that migration 002 migrates, told apart by how a
// code chunk reaches its repository:
//   quickstart  code_chunks.repository_id -> repositories.id
//               (migrations/001..005, the quickstart's SQL)
//   production  code_chunks.code_file_id -> code_files.id,
//               code_files.repository_id -> repositories.id
//               (the service's own Alembic chain; harness/codesearch/shapes/)
// Anything else is refused before it is read or migrated.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include <pqxx/pqxx>

namespace harness::codesearch {

enum class Shape { kQuickstart, kProduction };

const char* ShapeName(Shape shape);  // "quickstart", "production"
// Throws UsageError naming the choices.
Shape ParseShape(std::string_view name);

// The shape of the public schema. nullopt when repositories or code_chunks
// is missing (the pre-checks' "core tables" failure says so); throws
// UsageError (exit 2) saying what was expected and what was found when both
// exist but the schema is neither shape (a core column missing, both links).
std::optional<Shape> DetectShape(pqxx::transaction_base& tx);

// SQL over the chunk -> repository path of `shape`.
struct ShapeSql {
  // FROM items joining code_chunks c to repositories r (inner joins).
  std::string chunk_to_repository;
  // A predicate on code_chunks c: its repository (or, on the production
  // shape, its file or its file's repository) does not exist.
  std::string orphaned;
  // A statement that deletes those chunks.
  std::string delete_orphans;
};
ShapeSql SqlFor(Shape shape);

}  // namespace harness::codesearch
