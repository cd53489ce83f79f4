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

// The rows of public.alembic_version; nullopt when the table does not
// exist. A NULL version_num (only possible when the table lost its primary
// key) is bad input: UsageError.
std::optional<std::vector<std::string>> ReadVersionRows(pqxx::transaction_base& tx);

// The statement that moves the recorded revision from `from` to `to`
// (either may be empty for base), as Alembic writes it. Revision ids are
// [A-Za-z0-9_] (the parser enforces it); quotes are doubled all the same.
std::string VersionUpdateSql(const std::string& from, const std::string& to);

}  // namespace harness::engine
