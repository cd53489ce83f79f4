// alembic_version, written exactly as Alembic writes it, so a database
// migrated by Alembic is understood and vice versa.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include <pqxx/pqxx>

namespace harness::engine {

// Always schema-qualified: a table of the same name in another schema on a
// search path (a role's own schema, say) must never be read or written.
inline constexpr const char* kCreateVersionTable =
    "CREATE TABLE IF NOT EXISTS public.alembic_version (\n"
    "    version_num VARCHAR(32) NOT NULL,\n"
    "    CONSTRAINT alembic_version_pkc PRIMARY KEY (version_num)\n"
    ")";

// `upgrade --online`'s record of a revision part way through its phases
// (engine/migrator.h): alembic_version names its parent until the last
// phase commits, which deletes the row. The tool's own table, never one
// the catalog comparison or a fingerprint reads (inspect/catalog.h).
inline constexpr const char* kProgressTable = "migration_harness_progress";
inline constexpr const char* kCreateProgressTable =
    "CREATE TABLE IF NOT EXISTS public.migration_harness_progress (\n"
    "    revision VARCHAR(32) NOT NULL PRIMARY KEY,\n"
    "    parent VARCHAR(32) NOT NULL,\n"
    "    phases_done INTEGER NOT NULL,\n"
    "    phases INTEGER NOT NULL,\n"
    "    step TEXT NOT NULL,\n"
    "    updated_at TIMESTAMPTZ NOT NULL DEFAULT pg_catalog.now()\n"
    ")";

struct OnlineProgress {
  std::string revision;  // the revision in progress
  std::string parent;    // what alembic_version says meanwhile ("" at base)
  int phases_done = 0;
  int phases = 0;
  std::string step;  // the last step done
  // "002 in progress: phase 2 of 6 done (Validating ...)"
  std::string Describe() const;
};

// The revision in progress, if any. Throws UsageError (exit 2) when the
// table is not the tool's (not a plain table owned by a superuser) or holds
// more than one row.
std::optional<OnlineProgress> ReadProgress(pqxx::transaction_base& tx);

// The rows of public.alembic_version; nullopt when the table does not
// exist. A NULL version_num (only possible when the table lost its primary
// key) is bad input: UsageError.
std::optional<std::vector<std::string>> ReadVersionRows(pqxx::transaction_base& tx);

// The statement that moves the recorded revision from `from` to `to`
// (either may be empty for base), as Alembic writes it. Revision ids are
// [A-Za-z0-9_] (the parser enforces it); quotes are doubled all the same.
std::string VersionUpdateSql(const std::string& from, const std::string& to);

}  // namespace harness::engine
