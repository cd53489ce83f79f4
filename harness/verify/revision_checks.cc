#include "harness/verify/revision_checks.h"

#include <fmt/format.h>
#include <pqxx/pqxx>

#include "harness/pg/connection.h"
#include "harness/pg/interrupt.h"

namespace harness::verify {

std::vector<checks::CheckResult> RunRevisionChecks(const pg::Url& url, const engine::MigrationFile& file,
                                                   const std::string& when) {
  std::vector<checks::CheckResult> out;
  for (const auto& c : file.checks) {
    if (c.when != when) continue;
    const std::string id = fmt::format("{}.{}.{}", when, file.revision, c.name);
    const std::string label = fmt::format("{} ({})", c.name, file.revision);
    pg::Connection conn(url);
    try {
      pqxx::read_transaction tx(conn.raw());
      pqxx::result rows = tx.exec(c.sql, c.name);
      if (rows.empty()) {
        out.push_back({id, checks::Status::kPass, label});
        continue;
      }
      std::string shown;
      for (size_t i = 0; i < rows.size() && i < 3; ++i) {
        std::string row;
        for (const auto& f : rows[static_cast<int>(i)])
          row += (row.empty() ? "" : ", ") + std::string(f.is_null() ? "NULL" : f.c_str());
        shown += (shown.empty() ? "(" : "; (") + row.substr(0, 80) + ")";
      }
      out.push_back({id, checks::Status::kFail,
                     fmt::format("{}: {} row(s) fail it, e.g. {}", label, rows.size(), shown)});
    } catch (const pqxx::sql_error& e) {
      pg::ThrowIfInterrupted("the checks of " + file.revision);
      std::string why = e.what();
      if (auto nl = why.find('\n'); nl != std::string::npos) why.resize(nl);
      out.push_back({id, checks::Status::kFail, fmt::format("{}: the query failed: {}", label, why)});
    }
  }
  return out;
}

}  // namespace harness::verify
