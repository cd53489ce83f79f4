// What a migration step did to the tables, read from the server before and
// after it: the one classifier of verify's "what each step did" and of the
// benchmarks' step labels (and so of the forecast's model of each step).
//
//   - a table whose relfilenode changed (same oid) was rewritten;
//   - an index that is new, or has a new relfilenode, with pages of its own
//     beyond the metapage, was built (a sort of its table's rows);
//   - a table that got at least half as many row updates as it has rows
//     had every row updated;
//   - a table with a new sequential scan that read at least half its pages
//     was scanned;
//   - anything else touched the catalog only.
// Read in the migration's own transaction (its counters and the locks it
// holds: the engine's hooks, or the statement an Alembic run sends before
// its commit), or from another session (the cumulative counters, which a
// session publishes when its transaction ends).
#pragma once

#include <map>
#include <string>
#include <vector>

#include <pqxx/pqxx>

#include "harness/inspect/table_reading.h"

namespace harness::inspect {

struct RelationProbe {
  TableId id;
  char kind = 'r';               // r, p, m; i for an index
  long long filenode = 0;
  long long pages = 0;           // its size in blocks now
  long long table_oid = 0;       // an index's table
  long long rows_estimate = 0;   // reltuples, or the live tuples the statistics count
  long long seq_scans = 0;
  long long blocks_fetched = 0;
  long long tuples_inserted = 0;
  long long tuples_updated = 0;
  long long tuples_deleted = 0;
};

struct ServerProbe {
  std::map<long long, RelationProbe> relations;  // oid ->
  std::map<long long, std::string> locks;        // table oid -> the strongest mode held
};

enum class ProbeScope {
  kThisTransaction,  // pg_stat_get_xact_*: this transaction's counters; its own locks
  kOtherSessions,    // the cumulative counters; no locks
};

// The probe's query and the reading of its rows. The query names every
// function and operator with its schema: it also runs on a connection whose
// search_path is not the tool's (an Alembic project's, before its commit).
// Its columns: oid, schema, name, kind, filenode, pages, table_oid,
// rows_estimate, seq_scans, blocks_fetched, tuples_inserted,
// tuples_updated, tuples_deleted, lock (NULL but for a table this backend
// holds a lock on, in kThisTransaction).
std::string ProbeSql(ProbeScope scope);
ServerProbe ProbeFromRows(const std::vector<std::vector<std::string>>& rows);
ServerProbe ReadProbe(pqxx::transaction_base& tx, ProbeScope scope);

// The heavyweight lock modes, weakest first; -1 for anything else.
int LockRank(const std::string& mode);

struct StepActivity {
  std::vector<std::string> created, dropped, rewritten, indexes, updated, scanned;  // TableId keys
  std::vector<std::string> indexed_tables;  // the tables of `indexes`
  std::map<std::string, long long> rows_updated;  // table -> rows, any number
  // Every table with rows written, by oid (a name may change within a
  // run): "inserted", "updated", "deleted" -> rows (those over 0); a
  // partition under its own. And the oids of the tables rewritten.
  std::map<long long, std::map<std::string, long long>> written_oids;
  std::vector<long long> rewritten_oids;
  // The strongest lock the step took that was not held before it, and the
  // tables it holds it on ("code_chunks, repositories"); empty when none
  // (or not read: another session's).
  std::string lock_mode, lock_tables;
  // Every table lock the transaction holds after the step (table -> the
  // strongest mode), those of earlier steps included; empty when not read.
  std::map<std::string, std::string> held;
  // "table rewrite", "index build", "row update", "full scan"; "catalog only".
  std::vector<std::string> Kinds() const;
  // "rewrite-events", "index-events", "update-items", "scan-code_chunks",
  // "catalog": what the forecast's model of the step is chosen from
  // (stats/model_fit.h ModelOf), the strongest kind first.
  std::string Label() const;
  // "; rewrote events; built ix; scanned events; created t; dropped u".
  std::string Objects() const;
};

StepActivity Compare(const ServerProbe& before, const ServerProbe& after);

}  // namespace harness::inspect
