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

constexpr const char* kBaselineFormat = "migration-harness baseline 3";
constexpr const char* kBaselineFormat2 = "migration-harness baseline 2";
constexpr const char* kBaselineFormat1 = "migration-harness baseline 1";
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


long long OidOf(pqxx::transaction_base& tx, const RecordedTable& table) {
  pqxx::row r = tx.exec_params1(
      "SELECT c.oid::bigint FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = "
      "c.relnamespace WHERE n.nspname = $1 AND c.relname = $2 AND c.relkind IN ('r', 'p') "
      "UNION ALL SELECT 0 LIMIT 1",
      table.schema, table.name);
  return r[0].as<long long>();
}

// The baseline's tables, oldest first.
std::vector<std::pair<std::string, const RecordedTable*>> InOrder(const Baseline& b) {
  std::vector<std::pair<std::string, const RecordedTable*>> out;
  for (const auto& [name, d] : b.tables) out.emplace_back(name, &d);
  std::stable_sort(out.begin(), out.end(),
                   [](const auto& x, const auto& y) { return x.second->oid < y.second->oid; });
  return out;
}

// Was `table` dropped and recreated since the baseline (now: its oid, 0 if gone)?
bool Recreated(const RecordedTable& was, long long now) {
  if (now == 0) return false;
  if (was.recorded_as_dropped) return true;
  return was.oid != 0 && was.oid != now;
}

}  // namespace

namespace {
// The rows of alembic_version, sorted; nullopt without the table.
std::optional<std::vector<std::string>> VersionRows(pqxx::transaction_base& tx) {
  if (tx.exec("SELECT pg_catalog.to_regclass('public.alembic_version')")[0][0].is_null()) return std::nullopt;
  std::vector<std::string> rows;
  for (const auto& row : tx.exec("SELECT version_num FROM public.alembic_version ORDER BY 1")) {
    if (row[0].is_null())
      throw UsageError("alembic_version holds a NULL version_num, which no tool writes",
                       "find the real state of the schema, then record it with: "
                       "migration-harness stamp REVISION");
    rows.push_back(row[0].as<std::string>());
  }
  return rows;
}
}  // namespace

std::string RecordedRevision(pqxx::transaction_base& tx) {
  const auto rows = VersionRows(tx);
  if (!rows || rows->empty()) return "<none>";
  return Join(*rows);
}

std::optional<engine::Position> RecordedPosition(pqxx::transaction_base& tx, const engine::RevisionGraph& graph) {
  const auto rows = VersionRows(tx);
  if (!rows || rows->empty()) return 0;
  return graph.FindHeads(*rows);
}

namespace {

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

std::string Range::Name() const { return graph->Name(from) + " -> " + graph->Name(to); }
std::string Range::FromName() const { return graph->Name(from); }

Range RangeTo(const engine::RevisionGraph& graph, const std::string& target) {
  const engine::Position to = graph.ResolveRevision(target);
  if (to == 0) throw UsageError("there is no revision at base: name one (an id, or head)");
  return {&graph, to - 1, to};
}

// ---- the baseline ----------------------------------------------------------

std::string DatabaseIdentity(pqxx::transaction_base& tx) {
  pqxx::row r = tx.exec1(
      "SELECT pg_catalog.current_database(), d.oid::bigint FROM pg_catalog.pg_database d "
      "WHERE d.datname = pg_catalog.current_database()");
  return fmt::format("{} (oid {})", r[0].as<std::string>(), r[1].as<long long>());
}

std::vector<std::string> PrebuiltColumns(const Range& range, const std::string& table) {
  std::vector<std::string> out;
  for (engine::Position p = range.from + 1; p <= range.to; ++p)
    for (const auto& key : range.graph->at(p).prebuilt) {
      const auto space = key.find(' '), dot = key.find('.');
      if (space == std::string::npos || dot == std::string::npos || key.substr(0, space) != "column") continue;
      if (key.substr(space + 1, dot - space - 1) == table) out.push_back(key.substr(dot + 1));
    }
  return out;
}

namespace {

// What a baseline records besides the tables' rows: the revision, the
// database, and the catalog of every user schema without the objects the
// range may find built beforehand (an index built CONCURRENTLY before the
// window needs its column): the rollback removes them, so the baseline is
// the schema without them, and says so.
Baseline BaselineHead(pqxx::transaction_base& tx, const Range& range) {
  Baseline b;
  b.revision = RecordedRevision(tx);
  b.database = DatabaseIdentity(tx);
  b.catalog = inspect::TakeSnapshotOfUserSchemas(tx).Entries();
  for (engine::Position p = range.from + 1; p <= range.to; ++p)
    for (const auto& key : range.graph->at(p).prebuilt) {
      if (b.catalog.erase(key) == 0) continue;
      const auto space = key.find(' '), dot = key.find('.');
      b.prebuilt.push_back(key.substr(space + 1));
      if (key.substr(0, space) == "column") {  // and one column fewer
        std::string& count = b.catalog[fmt::format("table {}", key.substr(space + 1, dot - space - 1))];
        count = fmt::format("{} columns", std::stoi(count) - 1);
      }
    }
  return b;
}

bool Contains(const std::vector<std::string>& v, const std::string& x) {
  return std::find(v.begin(), v.end(), x) != v.end();
}

}  // namespace

// One fingerprint per table, the cheapest read (check pre --save-baseline
// runs in the maintenance window): no column sums.
Baseline TakeBaseline(pqxx::transaction_base& tx, const Range& range) {
  Baseline b = BaselineHead(tx, range);
  for (const auto& [id, oid] : inspect::UserTables(tx)) {
    RecordedTable d;
    d.schema = id.schema;
    d.name = id.name;
    d.oid = oid;
    const std::vector<std::string> leave_out = PrebuiltColumns(range, id.Key());
    for (const auto& c : inspect::ColumnsOf(tx, id))
      if (!Contains(leave_out, c)) d.columns.push_back(c);
    d.fingerprint = inspect::TakeFingerprint(tx, id, d.columns);
    b.tables[id.Key()] = std::move(d);
  }
  return b;
}

Baseline BaselineFromReadings(pqxx::transaction_base& tx, const Range& range,
                              const std::vector<inspect::TableReading>& readings) {
  Baseline b = BaselineHead(tx, range);
  for (const auto& reading : readings) {
    RecordedTable d;
    d.schema = reading.table.schema;
    d.name = reading.table.name;
    d.oid = reading.oid;
    d.key = reading.key;
    const std::vector<std::string> leave_out = PrebuiltColumns(range, reading.table.Key());
    for (const auto& c : reading.columns)
      if (!Contains(leave_out, c.name)) {
        d.columns.push_back(c.name);
        d.sums[c.name] = c.sum;
      }
    // A prebuilt column was read: the fingerprint is over the others.
    d.fingerprint = d.columns.size() < reading.columns.size() ? inspect::TakeFingerprint(tx, reading.table, d.columns)
                                                              : reading.fingerprint;
    b.tables[reading.table.Key()] = std::move(d);
  }
  return b;
}

nlohmann::json BaselineToJson(const Baseline& b) {
  nlohmann::json tables = nlohmann::json::object();
  for (const auto& [key, d] : b.tables)
    tables[key] = {{"schema", d.schema},
                   {"name", d.name},
                   {"oid", d.oid},
                   {"columns", d.columns},
                   {"rows", d.fingerprint.rows},
                   {"hash_sum", d.fingerprint.hash_sum},
                   {"key", d.key},
                   {"column_sums", d.sums}};
  return {{"format", kBaselineFormat}, {"revision", b.revision}, {"database", b.database},
          {"catalog", b.catalog},      {"prebuilt", b.prebuilt},  {"tables", tables}};
}

Baseline BaselineFromJson(const nlohmann::json& j) {
  try {
    Baseline b;
    auto table = [](const std::string& name, const nlohmann::json& t, long long oid, bool dropped) {
      RecordedTable d;
      d.name = name;
      d.columns = t.at("columns").get<std::vector<std::string>>();
      d.fingerprint = {t.at("rows").get<long long>(), t.at("hash_sum").get<std::string>()};
      d.oid = oid;
      d.recorded_as_dropped = dropped;
      return d;
    };
    b.catalog = j.at("catalog").get<std::map<std::string, std::string>>();
    b.prebuilt = j.value("prebuilt", std::vector<std::string>{});
    if (j.at("format") == kBaselineFormat || j.at("format") == kBaselineFormat2) {
      const bool three = j.at("format") == kBaselineFormat;
      b.all_schemas = three;
      b.revision = j.value("revision", std::string());
      b.database = j.value("database", std::string());
      for (const auto& [key, t] : j.at("tables").items()) {
        RecordedTable d = table(key, t, t.at("oid").get<long long>(), false);
        if (three) {
          d.schema = t.at("schema").get<std::string>();
          d.name = t.at("name").get<std::string>();
          d.key = t.at("key").get<std::vector<std::string>>();
          d.sums = t.at("column_sums").get<std::map<std::string, std::string>>();
        }
        b.tables[key] = std::move(d);
      }
      return b;
    }
    if (j.at("format") != kBaselineFormat1) throw std::runtime_error("unknown format");
    // Format 1: the two core tables in fields of their own, and (when
    // recorded) the tables the revision dropped and the other ones, without oids.
    b.all_schemas = false;
    b.tables["repositories"] = table("repositories", {{"columns", j.at("repository_columns")},
                                                      {"rows", j.at("repositories").at("rows")},
                                                      {"hash_sum", j.at("repositories").at("hash_sum")}},
                                     0, false);
    b.tables["code_chunks"] = table("code_chunks", {{"columns", j.at("chunk_columns")},
                                                    {"rows", j.at("code_chunks").at("rows")},
                                                    {"hash_sum", j.at("code_chunks").at("hash_sum")}},
                                    0, false);
    b.recorded_tables = j.contains("dropped") && j.contains("kept");
    if (b.recorded_tables)
      for (const auto& [key, dropped] : {std::pair{"dropped", true}, std::pair{"kept", false}})
        for (const auto& [name, t] : j.at(key).items()) b.tables[name] = table(name, t, 0, dropped);
    return b;
  } catch (const std::exception& e) {
    throw UsageError(std::string("not a baseline file: ") + e.what(),
                     "record one with `migration-harness check pre --save-baseline FILE`");
  }
}

// Atomically (pg/files.h): a failed write keeps the previous file; throws
// Error(kDatabase) "cannot write PATH: REASON".
void SaveBaseline(const Baseline& b, const std::string& path) {
  sys::WriteFileAtomically(path, BaselineToJson(b).dump(1) + "\n");
}

Baseline LoadBaseline(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw UsageError("cannot read baseline file " + path);
  nlohmann::json j;
  try {
    in >> j;
  } catch (const std::exception& e) {
    throw UsageError("baseline file " + path + " is not JSON: " + e.what());
  }
  return BaselineFromJson(j);
}

// ---- the dropped tables' rows ---------------------------------------------

long long DroppedRows::OnlyInBackupRows() const {
  long long n = 0;
  for (const auto& [t, rows] : only_in_backup) n += rows;
  return n;
}

std::string DroppedRows::OnlyInBackupText() const {
  std::string out;
  for (const auto& [t, rows] : only_in_backup) out += fmt::format("{}{} {}", out.empty() ? "" : ", ", t, rows);
  return fmt::format("{}: {} rows only in the backup", out, OnlyInBackupRows());
}

std::string DroppedRows::DifferingText(const std::string& now) const {
  std::string out;
  for (const auto& d : differing)
    out += fmt::format("{}{}: baseline {} rows; {} {}", out.empty() ? "" : "; ", d.table,
                       d.baseline.rows, now,
                       d.baseline.rows == d.now.rows
                           ? fmt::format("{} rows of other content (fingerprint {} not {})",
                                         d.now.rows, d.now.hash_sum, d.baseline.hash_sum)
                           : fmt::format("{} rows", d.now.rows));
  return out;
}

namespace {

// The baseline's tables the round trip dropped and recreated: their oid
// changed (on the database the baseline was recorded on), or `tables`.
std::set<std::string> RecreatedTables(pqxx::transaction_base& tx, const Baseline& baseline,
                                      const std::vector<std::string>* tables) {
  std::set<std::string> out;
  if (tables) {
    for (const auto& t : *tables)
      if (auto it = baseline.tables.find(t); it != baseline.tables.end() && OidOf(tx, it->second) != 0)
        out.insert(t);
    return out;
  }
  if (!baseline.database.empty() && baseline.database != DatabaseIdentity(tx)) return out;
  for (const auto& [table, want] : baseline.tables)
    if (Recreated(want, OidOf(tx, want))) out.insert(table);
  return out;
}

}  // namespace

DroppedRows CompareDroppedRows(pqxx::transaction_base& tx, const Baseline& baseline,
                               const std::vector<std::string>* tables) {
  DroppedRows d;
  const std::set<std::string> recreated = RecreatedTables(tx, baseline, tables);
  for (const auto& [table, want] : InOrder(baseline)) {
    if (!recreated.count(table)) continue;  // kept, or gone: the rollback suite says which
    const inspect::Fingerprint& was = want->fingerprint;
    inspect::Fingerprint now = inspect::TakeFingerprint(tx, want->Id(), want->columns);
    if (now == was) {
      ++d.matched_tables;
      d.matched_rows += now.rows;
    } else if (now.rows == 0) {
      d.only_in_backup.emplace_back(table, was.rows);
    } else {
      d.differing.push_back({table, was, now});
    }
  }
  return d;
}

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
