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

#include "harness/checks/check_result.h"
#include "harness/engine/revision_graph.h"
#include "harness/inspect/fingerprint.h"
#include "harness/inspect/table_reading.h"

namespace harness::checks {

// The revisions above `from` up to `to` (positions in `graph`).
struct Range {
  const engine::RevisionGraph* graph = nullptr;
  engine::Position from = 0, to = 0;
  // "t1 -> t2"
  std::string Name() const;
  // The revision the range starts from ("t1"; "<base>").
  std::string FromName() const;
};
// The target's parent up to the target; `target` is an id or head (throws
// UsageError for base or an unknown id).
Range RangeTo(const engine::RevisionGraph& graph, const std::string& target);

// The revision recorded in alembic_version: "t1", "<none>", or, where an
// Alembic branch leaves several heads, "b, c". A NULL version_num is
// refused, as the engine refuses it (UsageError).
std::string RecordedRevision(pqxx::transaction_base& tx);
// Where alembic_version puts the database on `graph`'s chain: 0 for none,
// nullopt for rows no position of it has.
std::optional<engine::Position> RecordedPosition(pqxx::transaction_base& tx, const engine::RevisionGraph& graph);

// A table as a baseline recorded it: its columns (in order, as fingerprinted), its rows' fingerprint, its
// oid (a rollback that drops and recreates a table gives it another) and,
// per column, the sum of a hash of its values (inspect/
// table_reading.h): what lets a difference name its columns.
struct RecordedTable {
  std::string schema = "public";
  std::string name;  // the table's own name (the map's key is TableId::Key())
  std::vector<std::string> columns;
  inspect::Fingerprint fingerprint;
  long long oid = 0;  // 0: not recorded (a baseline file of format 1)
  // Format 1 named the tables the revision drops instead of recording oids.
  bool recorded_as_dropped = false;
  // Format 3: the primary key the sums were taken with, and the sums.
  std::vector<std::string> key;
  std::map<std::string, std::string> sums;  // column -> sum; empty: not recorded
  inspect::TableId Id() const { return {schema, name}; }
};

// What the rollback suite compares against: recorded before the upgrade.
struct Baseline {
  std::string revision;                        // the database's, when recorded
  // "codebase (oid 16384)": the database it was recorded on. Oids tell a
  // table the rollback recreated only there; elsewhere (a restored copy)
  // every table is compared by its rows. Empty in older files: the same.
  std::string database;
  std::map<std::string, std::string> catalog;  // inspect::CatalogSnapshot::Entries()
  // Every table of every user schema (public's alone in files of format 1
  // and 2) but public.alembic_version (partitions counted in their parent),
  // without the prebuilt columns; keyed by TableId::Key().
  std::map<std::string, RecordedTable> tables;
  // False for a file of format 1 or 2: the catalog and the tables of public
  // only were recorded, and only those are compared.
  bool all_schemas = true;
  // Objects the range's revisions declare `--! prebuilt:` found before the
  // upgrade ("repositories.project_id"): left out of the catalog and the
  // fingerprints, since the rollback removes them.
  std::vector<std::string> prebuilt;
  // False for a format-1 file written before every table was recorded: it
  // holds the two core tables only, and the other tables' check is skipped.
  bool recorded_tables = true;
};
Baseline TakeBaseline(pqxx::transaction_base& tx, const Range& range);
// The same from readings made already (verify's record of every table:
// inspect::ReadTable of every inspect::UserTables entry), without reading
// the tables again.
Baseline BaselineFromReadings(pqxx::transaction_base& tx, const Range& range,
                              const std::vector<inspect::TableReading>& readings);
// The columns of `table` that a baseline over `range` leaves out: those the
// range's revisions declare prebuilt (`--! prebuilt: column TABLE.COLUMN`)
// that exist now.
std::vector<std::string> PrebuiltColumns(const Range& range, const std::string& table);
nlohmann::json BaselineToJson(const Baseline& b);
Baseline BaselineFromJson(const nlohmann::json& j);  // throws UsageError on a bad file
void SaveBaseline(const Baseline& b, const std::string& path);
Baseline LoadBaseline(const std::string& path);

// The baseline's tables that the round trip dropped and recreated (their oid
// changed), now against the baseline: which match, which came back empty
// where the baseline had rows (only in the backup), which differ. In the
// baseline's order of creation (oid).
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
// `tables`: compare these as the dropped ones (restore-dropped's nine),
// instead of those whose oid changed.
DroppedRows CompareDroppedRows(pqxx::transaction_base& tx, const Baseline& baseline,
                               const std::vector<std::string>* tables = nullptr);
// The database `tx` reads, as Baseline::database names it.
std::string DatabaseIdentity(pqxx::transaction_base& tx);

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
