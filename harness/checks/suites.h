// The pre, post and rollback check suites of a revision range: the checks
// every revision gets (the revision the database is at; after a rollback,
// the catalog and every table's rows against a baseline) and the checks each
// revision carries in its own file (`--! check`, revision_checks.h), which
// are what makes the code-search migration's suites the quickstart's.
// Checks only read: they never migrate.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>
#include <pqxx/pqxx>

#include "harness/checks/baseline.h"
#include "harness/checks/check_result.h"
#include "harness/checks/range.h"
#include "harness/engine/revision_graph.h"
#include "harness/inspect/fingerprint.h"
#include "harness/inspect/table_reading.h"

namespace harness::checks {

// The rollback suite's line for the dropped tables' rows.
inline constexpr const char* kDroppedRowsId = "rollback.dropped_tables_data";

// The suites. A gate of the revisions' (`--! gate`) that fails stops its
// suite (SuiteResult::stopped). The rollback suite without a baseline
// reports its data and catalog checks as skipped. `known_not_valid`, if
// given, receives the foreign keys the rollback restored NOT VALID: the
// catalog diff's one known difference, named in its line.
SuiteResult RunPreSuite(pqxx::transaction_base& tx, const Range& range);
SuiteResult RunPostSuite(pqxx::transaction_base& tx, const Range& range);
// `unchanged`: the baseline's tables (by key) that the server shows were
// not written since it was recorded, with what shows it (verify's
// table_marks.h): passed without reading their rows again. `dropped`, if
// given, receives the comparison of the tables the round trip recreated.
SuiteResult RunRollbackSuite(pqxx::transaction_base& tx, const Range& range,
                             const std::optional<Baseline>& baseline,
                             std::vector<std::string>* known_not_valid = nullptr,
                             const std::map<std::string, std::string>* unchanged = nullptr,
                             DroppedRows* dropped = nullptr);

}  // namespace harness::checks
