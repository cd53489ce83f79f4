#include "harness/engine/check_query.h"

#include <fmt/format.h>

namespace harness::engine {

namespace {

std::string Field(const pqxx::field& f) { return f.is_null() ? "NULL" : f.c_str(); }

// The verdict form: columns named passed and detail (and key).
bool IsVerdictForm(const pqxx::result& r) {
  bool passed = false, detail = false;
  for (pqxx::row::size_type i = 0; i < r.columns(); ++i) {
    const std::string name = r.column_name(i);
    passed |= name == "passed";
    detail |= name == "detail";
  }
  return passed && detail;
}

}  // namespace

std::vector<CheckLine> RunCheckQuery(pqxx::dbtransaction& tx, const MigrationFile& file, const RevisionCheck& check,
                                     const std::string& when, bool as_guard) {
  const std::string label = fmt::format("{} ({})", check.name, file.revision);
  pqxx::subtransaction sub(tx, "check");
  // A query shared by several suites (`--! check pre, post:`) reads which
  // one runs it here.
  sub.exec_params("SELECT pg_catalog.set_config('migration_harness.check_when', $1, true), "
                  "pg_catalog.set_config('migration_harness.guard', $2, true)",
                  when, as_guard ? "on" : "off");
  // One statement (checked when the file is read: engine/sql_statements.h).
  pqxx::result rows = sub.exec(check.sql, check.name);
  sub.commit();
  std::vector<CheckLine> out;
  if (IsVerdictForm(rows)) {
    bool has_key = false;
    for (pqxx::row::size_type i = 0; i < rows.columns(); ++i) has_key |= std::string(rows.column_name(i)) == "key";
    for (const auto& row : rows) {
      std::string id = fmt::format("{}.{}", when, check.name);
      if (has_key && !row["key"].is_null()) id += "." + row["key"].as<std::string>();
      std::optional<bool> passed;
      if (!row["passed"].is_null()) passed = row["passed"].as<bool>();
      out.push_back({id, passed, Field(row["detail"])});
    }
    return out;
  }
  const std::string id = fmt::format("{}.{}.{}", when, file.revision, check.name);
  if (rows.empty()) {
    out.push_back({id, true, label});
    return out;
  }
  std::string shown;
  for (size_t i = 0; i < rows.size() && i < 3; ++i) {
    std::string row;
    for (const auto& f : rows[static_cast<int>(i)]) row += (row.empty() ? "" : ", ") + Field(f);
    shown += (shown.empty() ? "(" : "; (") + row.substr(0, 80) + ")";
  }
  out.push_back({id, false, fmt::format("{}: {} row(s) fail it, e.g. {}", label, rows.size(), shown)});
  return out;
}

}  // namespace harness::engine
