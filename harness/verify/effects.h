// What a rehearsal measures on the server, for any revision, with no code of
// the revision's own (both rehearsals use it: rehearsal.h and range.h):
//   - each table's rows, column by column (hashes keyed by the primary key);
//   - what depends on each table and column (pg_depend): a plain DROP of
//     them refuses while it exists;
//   - what each step did: catalog only, a table rewrite (its relfilenode
//     changed), a full scan, an index built; the strongest lock it took and
//     how long that was held;
//   - what an upgrade discarded: tables and columns dropped, with their
//     rows, and what depended on them;
//   - whether a second run of an idempotent range changes anything;
//   - the upgrade's time at a larger size, a line per step.
#pragma once

#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include <pqxx/pqxx>

#include "harness/checks/check_result.h"
#include "harness/engine/migrator.h"
#include "harness/engine/revision_graph.h"
#include "harness/pg/connection.h"
#include "harness/report/rehearsal_report.h"

namespace harness::verify {

// The step classifications, as the "step effects" suite names them.
inline constexpr const char* kCatalogOnly = "catalog only";
inline constexpr const char* kRewrite = "table rewrite";
inline constexpr const char* kFullScan = "full scan";
inline constexpr const char* kIndexBuild = "index build";

// Per column, the sum of a hash of (primary key, value) over the rows: the
// rows over any set of columns are equal when each of those columns' sums
// is (the key ties each value to its row). Without a primary key, the
// value alone (a weaker check).
struct TableData {
  std::vector<std::string> columns;
  std::vector<std::string> key;  // primary key columns; empty: none
  long long rows = 0;
  std::map<std::string, std::string> sums;    // column -> numeric text
  std::map<std::string, long long> non_null;  // column -> values that are not NULL
};

// The tables of public but alembic_version (partitions in their parent).
std::vector<std::string> PublicTables(pqxx::transaction_base& tx);
// `key_from`: compare with an earlier reading keyed the same way.
TableData ReadTable(pqxx::transaction_base& tx, const std::string& table,
                    const std::vector<std::string>* key_from = nullptr);

// An object outside a table that depends on it or one of its columns.
struct Dependent {
  std::string table, column;  // column: empty when on the table as a whole
  std::string catalog;        // "pg_rewrite", "pg_constraint", ...
  long long objid = 0;
  std::string what;           // "view public.audit_summary"
};

// The tables, their rows and their dependents, before an upgrade.
struct Recorded {
  std::map<std::string, TableData> tables;
  std::vector<Dependent> dependents;
  long long Rows() const;
};
Recorded Record(pqxx::transaction_base& tx);

// What the upgrade discarded (`suite` "discarded rows", info lines): the
// tables and columns gone since `before`, with their rows, what depended on
// them, and the values it changed in the tables it kept.
struct Discarded {
  checks::SuiteResult suite{"discarded rows", {}};
  std::set<std::string> tables;                 // dropped
  std::map<std::string, TableData> after;       // the kept tables, now
  long long rows = 0;                           // in the dropped tables
  int columns = 0;                              // dropped
};
Discarded CountDiscarded(pqxx::transaction_base& tx, const Recorded& before);

// One step's effect, measured by reading the server before and after it
// in the migration's own transaction.
struct StepEffect {
  engine::StepTiming step;
  std::vector<std::string> rewritten, scanned, indexes, created, dropped;
  std::string lock_mode;   // the strongest lock this step took first
  std::string lock_table;  // the tables it took it on: "code_chunks, repositories"
  double lock_held = 0;               // from this step's start to the commit
  std::vector<std::string> Kinds() const;
  // "t2 up 1/1 Add token: table rewrite; rewrote events; AccessExclusiveLock on events, held 0.028s (to the commit)"
  std::string Describe() const;
};

// Upgrades to, or downgrades to, `target` with each step's effect measured.
// The report's seconds leave out the measurements' own queries.
engine::RunReport MeasuredRun(pg::Connection& conn, const engine::RevisionGraph& graph,
                              const engine::MigratorOptions& options, engine::Direction direction,
                              const std::string& target, std::vector<StepEffect>& out);

// The "step effects" suite: one info line per step, up then down.
checks::SuiteResult StepEffectsSuite(const std::vector<StepEffect>& up, const std::vector<StepEffect>& down);

// Stamps `from` and upgrades to `to` again (quietly), on a database at `to`:
// what the second run changed (catalog entries, tables' rows), empty when
// nothing.
std::string SecondRunChanges(pg::Connection& conn, const engine::RevisionGraph& graph,
                             const engine::MigratorOptions& quiet, const std::string& from,
                             const std::string& to);

// The upgrade's time at `rows`, work time only: a line per step of the
// revisions `revisions`, through an upgrade of an empty database (if any:
// each step's fixed cost) and the upgrades measured at `here` rows; more
// rows never take less time. `unit`: what the rows are ("chunks", "rows").
report::Rehearsal::Forecast ForecastUpgrade(const std::optional<std::vector<engine::StepTiming>>& empty,
                                            const std::vector<const engine::RunReport*>& runs,
                                            const std::set<std::string>& revisions, double here,
                                            long long rows, const std::string& unit);

}  // namespace harness::verify
