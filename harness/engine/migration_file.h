// One revision file of migrations/: header, upgrade and downgrade sections,
// each split into named steps (format: migrations/README.md).
#pragma once

#include <cstdint>
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
  // `--! guard_step:`: no SQL; the engine runs the revision's guards here
  // (the pre checks marked `guard`), in the migration's transaction, and
  // refuses the upgrade when one fails, before anything after it runs.
  bool runs_guards = false;
  // `--! online_step:` (upgrade only): run by `upgrade --online` alone,
  // outside any transaction, each of its statements on its own (a VALIDATE
  // CONSTRAINT, a CREATE INDEX CONCURRENTLY, a DO block that commits
  // batches), with the revision's progress recorded after it; a run in one
  // transaction skips it (its `--! step:`s do that work themselves).
  bool online = false;
};

// `--! check pre|post|rollback: NAME` after the downgrade section, run
// read-only before the upgrade, after it, or after the rollback of this
// revision (checks/revision_checks.h). One query, in one of two forms:
//   - any columns: its rows are the failures (none: the check passes);
//   - columns `passed` (boolean) and `detail` (text), and optionally `key`:
//     each row is one line of the suite, passed (true), failed (false) or
//     an information (NULL), its id WHEN.NAME[.KEY]; no row, no line.
// `--! check pre, post: NAME` gives both suites the query. `--! gate WHEN:
// NAME` is a check that stops its suite when it fails: the schema is not
// the one the revision knows (bad input, exit code 2).
struct RevisionCheck {
  std::string when;  // "pre", "post", "rollback"
  std::string name;
  std::string sql;
  int line = 0;
  bool gate = false;
  // `--! check pre, guard: NAME` (or `gate`): the upgrade also runs this
  // pre check, at its `--! guard_step:`, and refuses when it fails (exit 1,
  // a gate's exit 2), its failing lines the message: one query for both.
  bool guard = false;
};

struct MigrationFile {
  std::filesystem::path path;
  std::string revision;
  std::optional<std::string> down_revision;  // nullopt: the first revision
  // Its parents as its source wrote them: an Alembic merge has several (the
  // chain a RevisionGraph holds is then one path through them, linked by
  // down_revision); empty: down_revision alone.
  std::vector<std::string> parents;
  std::string message;
  std::vector<Step> upgrade;
  std::vector<Step> downgrade;
  std::vector<RevisionCheck> checks;
  // `--! prebuilt: KIND TABLE.NAME, ...` in the header: objects this
  // revision creates that may exist before it runs (built beforehand) and
  // that its rollback removes; a baseline leaves them out of what it
  // compares ("column repositories.project_id", "index repositories.idx").
  std::vector<std::string> prebuilt;
  // `--! idempotent` in the header: run again on its own result (after
  // `stamp` of its parent) it succeeds and changes nothing; `verify`
  // proves it.
  bool idempotent = false;
  // `--! writes: TABLE, ...` in the header: tables of public the revision
  // writes rows of (besides those it creates), whose triggers, rules,
  // CHECKs, defaults and index expressions would run with the tool's
  // rights: the engine refuses those owned by a role that is not a
  // superuser before every step (pg::RefuseUntrustedCode).
  std::vector<std::string> writes;
  // `--! restore_hint: TEXT` in the header: the command that brings back
  // the rows of the tables this revision drops, which the rollback's line
  // for them names (without one: "a backup has them").
  std::string restore_hint;
  // The upgrade steps a run in one transaction takes (the online ones skipped).
  size_t UpgradeStepsInOneTransaction() const {
    size_t n = 0;
    for (const auto& s : upgrade) n += !s.online;
    return n;
  }
  // Whether its upgrade has `--! online_step:`s.
  bool HasOnlineSteps() const {
    for (const auto& s : upgrade)
      if (s.online) return true;
    return false;
  }
  std::uint64_t content_hash = 0;  // FNV-1a of the file as read (not kept)
};

// Throws UsageError ("file:line: what") on any malformed input.
MigrationFile ParseMigration(const std::string& text, const std::filesystem::path& path);
MigrationFile ReadMigrationFile(const std::filesystem::path& path);

}  // namespace harness::engine
