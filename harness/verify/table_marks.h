// Which tables may have changed between two states, from what the server
// shows without reading their rows: the rehearsal reads each table once per
// state, and again only when this says it may differ from that reading.
//
// A table may have changed when:
//   - rows of it were inserted, updated or deleted, as the server counts
//     them in the transaction that wrote them (a step the tool ran in its
//     own transaction: StepEffect::writes_known); a run whose writes it
//     could not count so (an Alembic revision, which runs in Alembic's own
//     transaction; an online step, outside any) may have written every
//     table;
//   - its storage is new (relfilenode: a rewrite or a TRUNCATE), or the
//     table itself (its oid);
//   - a column's type is not the same (type, typmod, collation, the value
//     of rows older than the column (attmissingval); an enum's
//     labels, which its values are read as: a renamed label changes them
//     without a row written; a column added or dropped leaves the others'
//     values as they were), or a column is of a composite type (whose
//     text follows the type's own columns), a reg* type (another object's
//     name) or a domain or array nested in another: always re-read;
//   - it is partitioned, or has inheritance children: its reading reads
//     theirs, always re-read;
//   - a deferrable constraint trigger exists (it may write at the commit,
//     after the last count) or track_counts was off: every table.
// Writes by another session that a revision opens itself (dblink) are not
// in its transaction's counts: the rehearsal's database is the tool's own,
// and such a revision is outside what this can see.
#pragma once

#include <map>
#include <set>
#include <string>
#include <vector>

#include <pqxx/pqxx>

#include "harness/inspect/table_reading.h"
#include "harness/verify/effects.h"

namespace harness::verify {

// What the server shows of one table of a user schema.
struct TableMark {
  inspect::TableId id;
  char kind = 'r';        // r, or p (partitioned)
  long long filenode = 0;
  std::map<int, std::string> columns;  // attnum -> "type:typmod:collation:missing[:enum labels]"
  // A column whose text this does not follow: of a composite type, a reg*
  // type (a name of another object), or a domain or array nested in one.
  bool composite = false;
  std::string children;  // inheritance children's oids ("" for none)
};
using Marks = std::map<long long, TableMark>;  // table oid ->

// Every table inspect::UserTables lists, as the server shows it now.
Marks ReadMarks(pqxx::transaction_base& tx);

// Table oid -> why it may have changed ("the upgrade: 1 updated").
using MayHaveChanged = std::map<long long, std::string>;

// The tables of `after` that may differ from `before` after `steps` (a
// run's effects; `counted`: false when the run was not measured step by
// step, so that every table may have changed), named in the reasons as
// `what` ("the upgrade").
MayHaveChanged ChangedBy(const std::string& what, const std::vector<StepEffect>& steps, bool counted,
                         const Marks& before, const Marks& after);
// Whether every step of `steps` counted its writes in the tool's own
// transaction, and there is one effect per step of the run.
bool WritesCounted(const std::vector<StepEffect>& steps, size_t run_steps);

// Adds `more`'s reasons to `into` (a table's first reason stays first).
void Merge(MayHaveChanged& into, const MayHaveChanged& more);

// "re-read code_chunks (the upgrade: 1 updated); not re-read: 13 tables
// (no row written, same storage and column types)": what a state's
// reading did. `reread`: the tables read again, by key, with their reason;
// `kept`: how many were not.
std::string ReReadText(const std::vector<std::pair<std::string, std::string>>& reread, size_t kept);

}  // namespace harness::verify
