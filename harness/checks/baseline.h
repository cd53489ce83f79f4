// What the rollback suite compares against, recorded before the upgrade:
// the catalog and every table's rows (a fingerprint, and per column a sum),
// made, written to a file (three formats read) and read back; and the
// comparison of the tables the round trip dropped and recreated.
#pragma once

#include <map>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include <pqxx/pqxx>

#include <nlohmann/json.hpp>

#include "harness/checks/range.h"
#include "harness/inspect/fingerprint.h"
#include "harness/inspect/table_reading.h"

namespace harness::checks {

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

// The table's oid now (0: gone), by its schema and name.
long long OidOf(pqxx::transaction_base& tx, const RecordedTable& table);
// The baseline's tables, oldest (lowest oid) first.
std::vector<std::pair<std::string, const RecordedTable*>> InOrder(const Baseline& b);
// Was `was` dropped and recreated since the baseline (`now`: its oid, 0 if gone)?
bool Recreated(const RecordedTable& was, long long now);
// The baseline's tables the round trip dropped and recreated: their oid
// changed (on the database the baseline was recorded on), or `tables`.
std::set<std::string> RecreatedTables(pqxx::transaction_base& tx, const Baseline& baseline,
                                      const std::vector<std::string>* tables);

}  // namespace harness::checks
