// Brings the rows of the nine tables 002 drops back from a `pg_dump -Fc`
// backup after a rollback (which recreates them empty): pg_restore reads the
// backup (it never connects), the rows are loaded through COPY into the
// empty tables in foreign-key order, in one transaction, with no
// superuser-only setting (no session_replication_role, no disabled
// triggers), then compared with the baseline recorded before the upgrade;
// the foreign keys the rollback restored NOT VALID are validated.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "harness/checks/suites.h"
#include "harness/pg/copy_script.h"
#include "harness/pg/connection.h"

namespace harness::codesearch {

// The tables migration 002 drops, in the order the quickstart lists them:
// what this command restores.
const std::vector<std::string>& TablesDroppedBy002();

// The nine tables in an order where every table comes after those its
// foreign keys reference (ties in the quickstart's order). Throws
// UsageError on a cycle.
std::vector<std::string> DependencyOrder(pqxx::transaction_base& tx,
                                         const std::vector<std::string>& tables);

struct RestoreOptions {
  std::string backup;  // a pg_dump -Fc (custom format) file
  std::optional<checks::Baseline> baseline;
  double lock_timeout_seconds = 10;  // 0: wait forever
  std::string bin_dir;            // where pg_restore is; empty: pg::FindClientBinDir()
};

struct RestoreReport {
  struct Table {
    std::string name;
    long long rows = 0;
    bool in_backup = false;
  };
  std::vector<Table> tables;           // in the order loaded
  std::vector<std::string> sequences;  // "public.project_configuration_id_seq = 42"
  std::vector<std::string> validated;      // "task_branch_links.fk_task_branch_links_task_id_tasks"
  std::vector<std::string> not_validated;  // the same, then ": " and the server's reason
  bool compared = false;  // against the baseline: equal, or it would have thrown
  bool already_restored = false;  // the rows were there and equal the baseline: none loaded
  long long Rows() const;
};

// Throws UsageError (exit 2) for a backup pg_restore cannot read, tables
// that are missing (the database is at 002) or not empty (unless their rows
// already equal the baseline); RefusedError (exit 1) when the backup's rows
// differ from the baseline: then nothing was restored.
RestoreReport RestoreDropped(pg::Connection& conn, const RestoreOptions& options);

}  // namespace harness::codesearch
