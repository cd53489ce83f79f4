// What a rehearsal measures on the server, for any revision and any source
// of revisions, with no code of the revision's own:
//   - every table's rows, column by column (inspect/table_reading.h), and
//     what depends on each table and column (pg_depend): a plain DROP of
//     them refuses while it exists;
//   - what each step did (inspect/step_probe.h): catalog only, a table
//     rewrite, an index build, every row updated, a full scan; the
//     strongest lock it took and how long that was held;
//   - what an upgrade discarded: tables and columns dropped (a rename is
//     not a drop), with their rows, and what depended on them;
//   - whether a second run of an idempotent range changes anything.
#pragma once

#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include <pqxx/pqxx>

#include "harness/checks/check_result.h"
#include "harness/engine/migrator.h"
#include "harness/inspect/step_probe.h"
#include "harness/inspect/table_reading.h"

namespace harness::verify {

// A statement the server logged for a step (an Alembic revision's on the
// embedded cluster, from the server's statement log).
struct Statement {
  std::string sql;
  double seconds = 0;
};

// One step's effect, measured by reading the server before and after it.
struct StepEffect {
  engine::StepTiming step;
  inspect::StepActivity activity;
  // From the step's start to the end of its transaction (the commit):
  // how long the lock it took (activity.lock_mode) was held.
  double lock_held = 0;
  bool lock_held_known = true;  // false: held, for less than a poll could see
  // Where the lock was read: empty for the migration's own transaction;
  // else how (an Alembic run: "seen by a second connection").
  std::string lock_seen;
  // Its SQL: a SQL revision's step as written, an Alembic revision's
  // statements as the server logged them (empty when not known).
  std::string sql;
  // The locks it ran under that earlier steps of its transaction took, and
  // how the hold of the lock it took is made up (lock_review.h
  // ChargeHolds); empty when there is nothing to say.
  std::string under, hold_parts;
  // Its statements, when the server can tell (empty otherwise).
  std::vector<Statement> statements;
  bool statements_known = false;
  // activity's rows written were counted in the transaction the step ran
  // in, the tool's own (a SQL revision's step in a transaction): no other
  // write of the step's can have been missed.
  bool writes_known = false;
  // "t2 up 1/1 Add token: table rewrite; rewrote events; AccessExclusiveLock on
  // events, held 0.028s (to the commit)"
  std::string Describe() const;
};

// An object outside a table that depends on it or one of its columns.
struct Dependent {
  std::string table, column;  // table: TableId::Key(); column: empty when on the table
  std::string catalog;        // "pg_rewrite", "pg_constraint", ...
  long long objid = 0;
  std::string what;           // "view public.audit_summary"
};

// Every table of the user schemas, read once before the upgrade, and what
// depends on them.
struct Recorded {
  std::vector<inspect::TableReading> tables;  // oldest first
  std::vector<Dependent> dependents;
  long long Rows() const;
};
Recorded ReadBeforeUpgrade(pqxx::transaction_base& tx);

// What the upgrade discarded (`suite` "discarded rows", information): the
// tables and columns gone since `before` (by oid and column number: a
// renamed table or column is named as renamed), with their rows, what
// depended on them, and the kept tables whose values it changed.
struct Discarded {
  checks::SuiteResult suite{"discarded rows", {}};
  std::set<std::string> tables;  // dropped, TableId keys
  long long rows = 0;            // in the dropped tables
  int columns = 0;               // dropped
};
// `changed`: the tables (by oid) that may differ from `before`, with why
// (table_marks.h); any other is not read again, its values `before`'s.
// nullptr: every table is read. `reread` receives the tables read, as
// they are now (every column).
Discarded CountDiscarded(pqxx::transaction_base& tx, const Recorded& before,
                         const std::map<long long, std::string>* changed = nullptr,
                         std::map<long long, inspect::TableReading>* reread = nullptr);

// "step.REVISION.up.N": a step's id in the "step effects" suite.
std::string StepId(const StepEffect& e);
// The "step effects" suite: one information line per step, up then down.
checks::SuiteResult StepEffectsSuite(const std::vector<StepEffect>& up, const std::vector<StepEffect>& down);

// What a database holds, to tell whether a second run changed it: the
// catalog of every user schema and the fingerprint of every table.
struct Contents {
  std::map<std::string, std::string> catalog;
  std::map<std::string, inspect::Fingerprint> rows;
};
Contents ReadContents(pqxx::transaction_base& tx);
// What changed from `first` to `second` ("3 catalog entries (first: ...)
// and the rows of t"), empty when nothing.
std::string Changes(const Contents& first, const Contents& second);

}  // namespace harness::verify
