#include "harness/checks/baseline.h"

#include <algorithm>
#include <fstream>
#include <optional>
#include <set>
#include <string_view>

#include <fmt/format.h>

#include "harness/error.h"
#include "harness/inspect/catalog.h"
#include "harness/join.h"
#include "harness/sys/files.h"

namespace harness::checks {

namespace {

constexpr const char* kBaselineFormat = "migration-harness baseline 3";
constexpr const char* kBaselineFormat2 = "migration-harness baseline 2";
constexpr const char* kBaselineFormat1 = "migration-harness baseline 1";

}  // namespace

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

}  // namespace harness::checks
