// One revision file of migrations/: header, upgrade and downgrade sections,
// each split into named steps (format: migrations/README.md).
#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace harness::engine {

struct Step {
  std::string name;
  std::string sql;
  int line = 0;  // line of the `--! step:` directive
  // `--! record_step:`: no SQL; the engine writes alembic_version here (and
  // commits, when this revision ends the run), logged as a step of its own.
  bool records_revision = false;
};

// `--! check pre|post|rollback: NAME` after the downgrade section: a query
// whose rows are the failures (none: the check passes), run read-only
// before the upgrade, after it, or after the rollback of this revision.
struct RevisionCheck {
  std::string when;  // "pre", "post", "rollback"
  std::string name;
  std::string sql;
  int line = 0;
};

struct MigrationFile {
  std::filesystem::path path;
  std::string revision;
  std::optional<std::string> down_revision;  // nullopt: the first revision
  std::string message;
  std::vector<Step> upgrade;
  std::vector<Step> downgrade;
  std::vector<RevisionCheck> checks;
  std::string content;  // the file as read, for hashing
};

// Throws UsageError ("file:line: what") on any malformed input.
MigrationFile ParseMigration(const std::string& text, const std::filesystem::path& path);
MigrationFile ReadMigrationFile(const std::filesystem::path& path);

}  // namespace harness::engine
