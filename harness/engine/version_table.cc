#include "harness/engine/version_table.h"

namespace harness::engine {

std::optional<std::vector<std::string>> ReadVersionRows(pqxx::transaction_base& tx) {
  pqxx::result exists = tx.exec("SELECT to_regclass('alembic_version') IS NOT NULL");
  if (exists.size() != 1 || !exists[0][0].as<bool>()) return std::nullopt;
  std::vector<std::string> rows;
  for (const auto& row : tx.exec("SELECT version_num FROM alembic_version ORDER BY version_num"))
    rows.push_back(row[0].as<std::string>());
  return rows;
}

std::string VersionUpdateSql(const std::string& from, const std::string& to) {
  auto quote = [](const std::string& id) {
    std::string out = "'";
    for (char c : id) out += c == '\'' ? std::string("''") : std::string(1, c);
    return out + "'";
  };
  if (from.empty()) return "INSERT INTO alembic_version (version_num) VALUES (" + quote(to) + ")";
  if (to.empty())
    return "DELETE FROM alembic_version WHERE alembic_version.version_num = " + quote(from);
  return "UPDATE alembic_version SET version_num=" + quote(to) +
         " WHERE alembic_version.version_num = " + quote(from);
}

}  // namespace harness::engine
