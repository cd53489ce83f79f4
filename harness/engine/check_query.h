// One check of a revision file (`--! check`, `--! gate`) run as a query:
// what the check suites (checks/revision_checks.h) and an upgrade's
// `--! guard_step:` both read, so that a condition is written once.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include <pqxx/pqxx>

#include "harness/engine/migration_file.h"

namespace harness::engine {

struct CheckLine {
  std::string id;               // WHEN.NAME[.KEY] (verdict form), or WHEN.REVISION.NAME
  std::optional<bool> passed;   // nullopt: an information
  std::string detail;
};

// Runs `check`'s query in a savepoint of `tx` as the `when` suite runs it
// (migration_harness.check_when = `when`), or as the upgrade's guard
// (`as_guard`: migration_harness.guard = on, under the migration's locks,
// where a query may skip a scan that a validated constraint proves
// needless; off in the suites), and reads its lines in either
// form (migration_file.h): no row of the any-columns form is one passing
// line, named `NAME (REVISION)`. Throws pqxx::sql_error when the query
// fails, std::exception when its result cannot be read (a `passed` that is
// not a boolean).
std::vector<CheckLine> RunCheckQuery(pqxx::dbtransaction& tx, const MigrationFile& file, const RevisionCheck& check,
                                     const std::string& when, bool as_guard = false);

}  // namespace harness::engine
