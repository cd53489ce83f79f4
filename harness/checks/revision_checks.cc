#include "harness/checks/revision_checks.h"

#include <fmt/format.h>

#include "harness/engine/check_query.h"
#include "harness/engine/sql_statements.h"
#include "harness/error.h"
#include "harness/pg/interrupt.h"
#include "harness/sys/untrusted_text.h"

namespace harness::checks {

void RefuseChecksThatAreNotOneQuery(const engine::RevisionGraph& graph, engine::Position from,
                                    engine::Position to) {
  for (engine::Position p = from + 1; p <= to; ++p) {
    const engine::MigrationFile& file = graph.at(p);
    for (const auto& c : file.checks) {
      const std::string why = engine::WhyNotOneQuery(c.sql);
      if (why.empty()) continue;
      throw UsageError(fmt::format("the {} check '{}' of revision {} ({}:{}) must be one query (one SELECT, WITH ... "
                                   "SELECT or VALUES) and is {}; no check was run",
                                   c.when, sys::ShowUntrusted(c.name, 80), file.revision, file.path.filename().string(),
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
      for (const auto& line : engine::RunCheckQuery(tx, file, c, when))
        suite.checks.push_back({line.id,
                                !line.passed ? Status::kInfo : *line.passed ? Status::kPass : Status::kFail,
                                line.detail});
    } catch (const pqxx::sql_error& e) {
      sys::ThrowIfInterrupted("the checks of " + file.revision);
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
