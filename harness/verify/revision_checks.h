// A revision's own checks (`--! check pre|post|rollback: NAME`, see
// engine/migration_file.h): each query run read-only in a transaction of
// its own; no rows is a pass, rows are the failures (the first three shown).
#pragma once

#include <string>
#include <vector>

#include "harness/checks/check_result.h"
#include "harness/engine/migration_file.h"
#include "harness/pg/url.h"

namespace harness::verify {

// The checks of `file` that run `when`, ids "WHEN.REVISION.NAME", details
// "NAME (REVISION)". A query that fails is a failed check naming the error;
// an interrupt throws (exit 130).
std::vector<checks::CheckResult> RunRevisionChecks(const pg::Url& url, const engine::MigrationFile& file,
                                                   const std::string& when);

}  // namespace harness::verify
