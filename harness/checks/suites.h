// The pre, post and rollback check suites of migration 002 (the
// quickstart's validation tests). Checks only read: they never migrate.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>
#include <pqxx/pqxx>

#include "harness/checks/check_result.h"
#include "harness/inspect/fingerprint.h"

namespace harness::checks {

// The tables migration 002 drops, in the order the quickstart lists them.
const std::vector<std::string>& TablesDroppedBy002();

// The project_id pattern the CHECK constraints enforce (with length <= 50).
inline constexpr const char* kProjectIdPattern = "^[a-z0-9]+(-[a-z0-9]+)*$";

// The rollback suite's info lines for foreign keys it found restored NOT
// VALID: this prefix, then the constraint's name.
inline constexpr const char* kNotValidPrefix = "rollback.not_valid.";

// A table's columns (in order, as fingerprinted) and its rows' fingerprint.
struct TableData {
  std::vector<std::string> columns;
  inspect::Fingerprint fingerprint;
};

// What the rollback suite compares against: recorded before the upgrade.
struct Baseline {
  std::map<std::string, std::string> catalog;  // inspect::CatalogSnapshot::Entries()
  std::vector<std::string> repository_columns;
  std::vector<std::string> chunk_columns;
  inspect::Fingerprint repositories;
  inspect::Fingerprint code_chunks;
  // Objects of 002 found before the upgrade ("repositories.project_id",
  // "repositories.idx_project_repository"): left out of the catalog and the
  // fingerprints, since the rollback removes them.
  std::vector<std::string> prebuilt;
  // The tables 002 drops (those present) and every other table of public
  // but the two core tables and alembic_version: the rollback brings the
  // first back empty (their rows are in the backup) and must leave the
  // second untouched. Absent from a file written before they were
  // recorded (`recorded_tables` false): those checks are then skipped.
  std::map<std::string, TableData> dropped;
  std::map<std::string, TableData> kept;
  bool recorded_tables = true;
};
Baseline TakeBaseline(pqxx::transaction_base& tx);
nlohmann::json BaselineToJson(const Baseline& b);
Baseline BaselineFromJson(const nlohmann::json& j);  // throws UsageError on a bad file
void SaveBaseline(const Baseline& b, const std::string& path);
Baseline LoadBaseline(const std::string& path);

// The tables other than 002's nine, the two core tables and
// alembic_version in public (partitions are counted in their parent).
std::vector<std::string> KeptTables(pqxx::transaction_base& tx);

// The dropped tables' rows now against the baseline: which match, which are
// empty where the baseline had rows (only in the backup), which differ.
struct DroppedRows {
  std::vector<std::pair<std::string, long long>> only_in_backup;  // table, baseline rows
  struct Difference {
    std::string table;
    inspect::Fingerprint baseline, now;
  };
  std::vector<Difference> differing;
  long long matched_rows = 0;
  int matched_tables = 0;
  long long OnlyInBackupRows() const;
  // "tasks 8, vendor_extractors 3: 11 rows only in the backup"
  std::string OnlyInBackupText() const;
  // "tasks: baseline 8 rows; NOW 3 rows" ("same row count, other content"
  // when only the fingerprints differ), for each, joined by "; ".
  std::string DifferingText(const std::string& now = "now") const;
};
DroppedRows CompareDroppedRows(pqxx::transaction_base& tx, const Baseline& baseline);

// The rollback suite's line for the dropped tables' rows.
inline constexpr const char* kDroppedRowsId = "rollback.dropped_tables_data";

struct PreCheckOptions {
  // Revisions from which 002 may run: 005 and everything before it.
  std::vector<std::string> acceptable_revisions = {"001", "003", "003a", "003b", "005"};
};

SuiteResult RunPreChecks(pqxx::transaction_base& tx, const PreCheckOptions& options = {});
SuiteResult RunPostChecks(pqxx::transaction_base& tx);
// Without a baseline the data and catalog checks are reported as skipped.
SuiteResult RunRollbackChecks(pqxx::transaction_base& tx, const std::optional<Baseline>& baseline);

}  // namespace harness::checks
