#include "harness/checks/suites.h"

#include <algorithm>
#include <fstream>
#include <optional>
#include <set>
#include <string_view>

#include <fmt/format.h>

#include "harness/checks/revision_checks.h"
#include "harness/error.h"
#include "harness/inspect/catalog.h"
#include "harness/join.h"
#include "harness/sys/files.h"

namespace harness::checks {

namespace {

constexpr std::string_view kNotValidSuffix = " NOT VALID (not validated)";

CheckResult Pass(std::string id, std::string detail) {
  return {std::move(id), Status::kPass, std::move(detail)};
}
CheckResult Fail(std::string id, std::string detail) {
  return {std::move(id), Status::kFail, std::move(detail)};
}
CheckResult Check(bool ok, std::string id, std::string detail_ok, std::string detail_fail) {
  return ok ? Pass(std::move(id), std::move(detail_ok)) : Fail(std::move(id), std::move(detail_fail));
}

bool Contains(const std::vector<std::string>& v, const std::string& x) {
  return std::find(v.begin(), v.end(), x) != v.end();
}

// The revisions' own checks of the range, in chain order; false when a gate stopped them.
bool RevisionChecks(pqxx::transaction_base& tx, const Range& range, const std::string& when,
                    SuiteResult& suite) {
  auto* dbtx = dynamic_cast<pqxx::dbtransaction*>(&tx);
  if (!dbtx) throw std::logic_error("the check suites run in a transaction");
  RefuseChecksThatAreNotOneQuery(*range.graph, range.from, range.to);
  for (engine::Position p = range.from + 1; p <= range.to; ++p)
    if (!RunRevisionChecks(*dbtx, range.graph->at(p), when, suite)) return false;
  return true;
}

}  // namespace

namespace {

// One kept table's rows against the baseline's, over the columns it still
// has: its fingerprint and, where the baseline has them, each column's sum,
// so that a difference names its columns.
CheckResult CompareRows(pqxx::transaction_base& tx, const std::string& table, const RecordedTable& want,
                        const std::string& id) {
  const std::vector<std::string> present = inspect::ColumnsOf(tx, want.Id());
  std::vector<std::string> in_order;  // the baseline's columns still there, in its order
  for (const auto& c : want.columns)
    if (Contains(present, c)) in_order.push_back(c);
  const bool all_there = in_order.size() == want.columns.size();
  if (want.sums.empty()) {
    // A baseline without column sums: the whole rows, over its columns.
    inspect::Fingerprint got = inspect::TakeFingerprint(tx, want.Id(), want.columns);
    return Check(got == want.fingerprint, id,
                 fmt::format("{} data preserved ({} rows, fingerprint matches baseline)", table, got.rows),
                 fmt::format("{} data preserved: baseline {}, now {}", table, want.fingerprint.ToString(),
                             got.ToString()));
  }
  const inspect::TableReading got = inspect::ReadTable(tx, want.Id(), &want.key, &in_order);
  std::vector<std::string> differ;
  for (const auto& c : got.columns)
    if (auto it = want.sums.find(c.name); it != want.sums.end() && it->second != c.sum) differ.push_back(c.name);
  const bool same_rows = got.rows() == want.fingerprint.rows && differ.empty() &&
                         (!all_there || got.fingerprint == want.fingerprint);
  std::vector<std::string> gone;
  for (const auto& c : want.columns)
    if (!Contains(in_order, c)) gone.push_back(c);
  const std::string unread = gone.empty() ? "" : fmt::format("; column(s) gone, not compared: {}", Join(gone));
  return Check(same_rows, id,
               fmt::format("{} data preserved ({} rows, fingerprint matches baseline{})", table, got.rows(),
                           all_there ? "" : ", every column still there" + unread),
               fmt::format("{} data preserved: baseline {} rows, now {}{}{}", table, want.fingerprint.rows,
                           got.rows(),
                           differ.empty() ? (got.rows() == want.fingerprint.rows ? "; the whole rows differ" : "")
                                          : "; values of " + Join(differ) + " differ",
                           unread));
}

}  // namespace

// ---- the suites --------------------------------------------------------------

SuiteResult RunPreSuite(pqxx::transaction_base& tx, const Range& range) {
  SuiteResult s{"pre", {}};
  if (!RevisionChecks(tx, range, "pre", s)) return s;
  // The target applies on top of its parent, or below it (the upgrade
  // then runs the revisions between).
  const std::string revision = RecordedRevision(tx);
  const engine::Position parent = range.to - 1;
  const auto at = RecordedPosition(tx, *range.graph);
  // Nothing recorded is base, which is the parent only of the first revision.
  const bool below_or_at_parent = at.has_value() && at.value() <= parent && (revision != "<none>" || parent == 0);
  s.checks.push_back(Check(below_or_at_parent, "pre.revision",
                           fmt::format("Current revision is {} ({} or earlier)", revision,
                                       range.graph->Name(parent)),
                           fmt::format("Current revision is {} or earlier: found {}",
                                       range.graph->Name(parent), revision)));
  return s;
}

SuiteResult RunPostSuite(pqxx::transaction_base& tx, const Range& range) {
  SuiteResult s{"post", {}};
  RevisionChecks(tx, range, "post", s);
  return s;
}

SuiteResult RunRollbackSuite(pqxx::transaction_base& tx, const Range& range,
                             const std::optional<Baseline>& baseline,
                             std::vector<std::string>* known_not_valid,
                             const std::map<std::string, std::string>* unchanged, DroppedRows* dropped) {
  SuiteResult s{"rollback", {}};
  if (!RevisionChecks(tx, range, "rollback", s)) return s;
  inspect::CatalogSnapshot cat =
      !baseline || baseline->all_schemas ? inspect::TakeSnapshotOfUserSchemas(tx) : inspect::TakeSnapshot(tx);
  if (!baseline) {
    s.checks.push_back({"rollback.data", Status::kSkipped,
                        "Tables' data preserved: no baseline (record one before the upgrade with "
                        "`check pre --save-baseline FILE`, then pass --baseline FILE)"});
    s.checks.push_back({"rollback.catalog_diff", Status::kSkipped,
                        "Schema equals the pre-upgrade catalog: no baseline to compare with"});
    return s;
  }

  // Tables the round trip dropped and recreated come back with the rows
  // of the downgrade only: rows missing there are a named, counted
  // difference (info, a backup has them), not a failure of the rollback;
  // rows that are there but differ from the baseline are a failure.
  const std::set<std::string> recreated = RecreatedTables(tx, *baseline, nullptr);
  if (!baseline->database.empty() && baseline->database != DatabaseIdentity(tx))
    s.checks.push_back({"rollback.other_database", Status::kInfo,
                        fmt::format("The baseline was recorded on {}, this is {}: every table is compared "
                                    "by its rows (a table the rollback recreated, empty, fails its line)",
                                    baseline->database, DatabaseIdentity(tx))});
  if (baseline->recorded_tables) {
    DroppedRows d = CompareDroppedRows(tx, *baseline);
    if (dropped) *dropped = d;
    if (!d.differing.empty()) {
      s.checks.push_back(Fail(kDroppedRowsId,
                              fmt::format("Dropped tables' rows differ from the baseline: {}{}",
                                          d.DifferingText(),
                                          d.only_in_backup.empty() ? "" : "; and " + d.OnlyInBackupText())));
    } else if (!d.only_in_backup.empty()) {
      std::string hint;
      for (engine::Position p = range.from + 1; p <= range.to; ++p)
        if (!range.graph->at(p).restore_hint.empty()) hint = range.graph->at(p).restore_hint;
      s.checks.push_back({kDroppedRowsId, Status::kInfo,
                          fmt::format("Dropped tables' rows: {} ({})", d.OnlyInBackupText(),
                                      hint.empty() ? std::string("a backup has them")
                                                   : "restore them with `" + hint + "`")});
    } else if (d.matched_tables > 0) {
      s.checks.push_back(Pass(kDroppedRowsId,
                              fmt::format("Dropped tables' rows match the baseline ({} tables, {} rows)",
                                          d.matched_tables, d.matched_rows)));
    }
  } else {
    s.checks.push_back({kDroppedRowsId, Status::kSkipped,
                        "Dropped and other tables' rows: not in this baseline file (recorded by an "
                        "older version; record a new one with `check pre --save-baseline FILE`)"});
  }
  // Every other table, one line each: its rows as they were, over the
  // columns the baseline fingerprinted.
  for (const auto& [table, want] : InOrder(*baseline)) {
    const long long oid = OidOf(tx, *want);
    if (recreated.count(table)) continue;
    const std::string id = fmt::format("rollback.{}_data", table);
    if (oid == 0) {
      s.checks.push_back(Fail(id, table + " data preserved: the table is gone"));
      continue;
    }
    const auto same = unchanged ? unchanged->find(table) : std::map<std::string, std::string>::const_iterator{};
    if (unchanged && same != unchanged->end()) {
      s.checks.push_back(Pass(id, fmt::format("{} data preserved ({} rows as recorded; not read again: {})", table,
                                              want->fingerprint.rows, same->second)));
      continue;
    }
    s.checks.push_back(CompareRows(tx, table, *want, id));
  }
  if (!baseline->prebuilt.empty())
    s.checks.push_back({"rollback.prebuilt_removed", Status::kInfo,
                        "Built before the upgrade and removed by the rollback (not compared): " +
                            Join(baseline->prebuilt) + "; build them again if they are wanted at " +
                            range.FromName()});

  // A foreign key the rollback restored NOT VALID (its rows reference rows
  // that only a backup brings back) differs from the baseline by exactly
  // that: a known difference, named, not a failure.
  auto now = cat.Entries();
  std::vector<std::string> known;
  for (auto& [key, is] : now) {
    if (!key.starts_with("constraint ") || !is.starts_with("foreign key ") || !is.ends_with(kNotValidSuffix))
      continue;
    auto was = baseline->catalog.find(key);
    if (was == baseline->catalog.end()) continue;
    if (is.substr(0, is.size() - kNotValidSuffix.size()) != was->second) continue;
    is = was->second;
    known.push_back(key.substr(std::string_view("constraint ").size()));
  }
  if (known_not_valid) *known_not_valid = known;
  auto diff = inspect::DiffEntries(baseline->catalog, now);
  std::string shown;
  for (size_t i = 0; i < diff.size() && i < 5; ++i) shown += (i ? "; " : "") + diff[i];
  if (diff.size() > 5) shown += fmt::format("; and {} more", diff.size() - 5);
  const std::string except =
      known.empty() ? std::string()
                    : fmt::format("; known: {} foreign key(s) restored NOT VALID ({})", known.size(), Join(known));
  s.checks.push_back(Check(diff.empty(), "rollback.catalog_diff",
                           "Schema equals the pre-upgrade catalog (empty diff" + except + ")",
                           fmt::format("Schema equals the pre-upgrade catalog: {} difference(s): {}{}",
                                       diff.size(), shown, except)));
  return s;
}

}  // namespace harness::checks
