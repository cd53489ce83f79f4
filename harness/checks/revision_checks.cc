#include "harness/checks/revision_checks.h"

#include <fmt/format.h>

#include "harness/engine/sql_statements.h"
#include "harness/error.h"
#include "harness/pg/interrupt.h"
#include "harness/pg/untrusted_text.h"

namespace harness::checks {

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

void RefuseChecksThatAreNotOneQuery(const engine::RevisionGraph& graph, engine::Position from,
                                    engine::Position to) {
  for (engine::Position p = from + 1; p <= to; ++p) {
    const engine::MigrationFile& file = graph.at(p);
    for (const auto& c : file.checks) {
      const std::string why = engine::WhyNotOneQuery(c.sql);
      if (why.empty()) continue;
      throw UsageError(fmt::format("the {} check '{}' of revision {} ({}:{}) must be one query (one SELECT, WITH ... "
                                   "SELECT or VALUES) and is {}; no check was run",
                                   c.when, pg::ShowUntrusted(c.name, 80), file.revision, file.path.filename().string(),
                                   c.line, why),
                       "a check only reads: write what it must verify as one SELECT whose rows are the failures");
    }
  }
}

bool RunRevisionChecks(pqxx::dbtransaction& tx, const engine::MigrationFile& file,
                       const std::string& when, SuiteResult& suite) {
  for (const auto& c : file.checks) {
    if (c.when != when) continue;
    const std::string label = fmt::format("{} ({})", c.name, file.revision);
    const size_t first = suite.checks.size();
    try {
      pqxx::subtransaction sub(tx, "check");
      // A query shared by several suites (`--! check pre, post:`) reads
      // which one runs it here.
      sub.exec_params("SELECT pg_catalog.set_config('migration_harness.check_when', $1, true)", when);
      // One statement (RefuseChecksThatAreNotOneQuery), in the caller's
      // read-only transaction.
      pqxx::result rows = sub.exec(c.sql, c.name);
      sub.commit();
      if (IsVerdictForm(rows)) {
        bool has_key = false;
        for (pqxx::row::size_type i = 0; i < rows.columns(); ++i) has_key |= std::string(rows.column_name(i)) == "key";
        for (const auto& row : rows) {
          std::string id = fmt::format("{}.{}", when, c.name);
          if (has_key && !row["key"].is_null()) id += "." + row["key"].as<std::string>();
          const Status status = row["passed"].is_null()   ? Status::kInfo
                                : row["passed"].as<bool>() ? Status::kPass
                                                           : Status::kFail;
          suite.checks.push_back({id, status, Field(row["detail"])});
        }
      } else if (rows.empty()) {
        suite.checks.push_back({fmt::format("{}.{}.{}", when, file.revision, c.name), Status::kPass, label});
      } else {
        std::string shown;
        for (size_t i = 0; i < rows.size() && i < 3; ++i) {
          std::string row;
          for (const auto& f : rows[static_cast<int>(i)]) row += (row.empty() ? "" : ", ") + Field(f);
          shown += (shown.empty() ? "(" : "; (") + row.substr(0, 80) + ")";
        }
        suite.checks.push_back({fmt::format("{}.{}.{}", when, file.revision, c.name), Status::kFail,
                                fmt::format("{}: {} row(s) fail it, e.g. {}", label, rows.size(), shown)});
      }
    } catch (const pqxx::sql_error& e) {
      pg::ThrowIfInterrupted("the checks of " + file.revision);
      std::string why = e.what();
      if (auto nl = why.find('\n'); nl != std::string::npos) why.resize(nl);
      suite.checks.resize(first);
      suite.checks.push_back({fmt::format("{}.{}.{}", when, file.revision, c.name), Status::kFail,
                              fmt::format("{}: the query failed: {}", label, why)});
    } catch (const pqxx::broken_connection&) {
      throw;
    } catch (const std::exception& e) {
      // A result the forms cannot read (a `passed` that is not a boolean).
      suite.checks.resize(first);
      suite.checks.push_back({fmt::format("{}.{}.{}", when, file.revision, c.name), Status::kFail,
                              fmt::format("{}: its result cannot be read: {}", label, e.what())});
    }
    if (c.gate) {
      bool failed = false;
      for (size_t i = first; i < suite.checks.size(); ++i) failed |= suite.checks[i].status == Status::kFail;
      if (failed) {
        suite.stopped = true;
        return false;
      }
    }
  }
  return true;
}

}  // namespace harness::checks
