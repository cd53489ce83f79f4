// A revision's own checks (`--! check|gate WHEN: NAME`, see
// engine/migration_file.h), run in the caller's read-only transaction, each
// in a savepoint of its own: a query that fails is a failed check naming the
// error, and the next one still runs.
#pragma once

#include <string>
#include <vector>

#include <pqxx/pqxx>

#include "harness/checks/check_result.h"
#include "harness/engine/migration_file.h"
#include "harness/engine/revision_graph.h"

namespace harness::checks {

// The checks of `file` that run `when`, appended to `suite`. A query whose
// rows are the failures gives one line, id "WHEN.REVISION.NAME", detail
// "NAME (REVISION)" and the first three failing rows; a query of columns
// `passed` and `detail` (and `key`) gives one line per row, id
// "WHEN.NAME[.KEY]", its detail as written. A gate that fails stops there
// (suite.stopped). An interrupt throws (exit 130). Returns false when
// stopped. The setting migration_harness.check_when holds WHEN while the
// query runs (current_setting), for a query several suites share.
bool RunRevisionChecks(pqxx::dbtransaction& tx, const engine::MigrationFile& file,
                       const std::string& when, SuiteResult& suite);

// Refuses (UsageError, exit 2, naming the check, its revision and its line)
// a check of the revisions above `from` up to `to` that is not one query
// (one SELECT, WITH ... SELECT or VALUES; engine/sql_statements.h): a
// second statement, a COMMIT, a COPY, a SET, a WITH that writes rows.
// Called before any check runs. What a lone SELECT can still do through
// the functions it calls is the trust model's (docs/security.md#running-it-as-a-superuser-on-production): a revision's checks
// are trusted as its steps are.
void RefuseChecksThatAreNotOneQuery(const engine::RevisionGraph& graph, engine::Position from,
                                    engine::Position to);

}  // namespace harness::checks
