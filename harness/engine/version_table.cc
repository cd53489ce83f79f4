#include "harness/engine/version_table.h"

#include "harness/error.h"

namespace harness::engine {

std::optional<std::vector<std::string>> ReadVersionRows(pqxx::transaction_base& tx) {
  pqxx::result exists =
      tx.exec("SELECT pg_catalog.to_regclass('public.alembic_version') IS NOT NULL");
  if (exists.size() != 1 || !exists[0][0].as<bool>()) return std::nullopt;
  std::vector<std::string> rows;
  for (const auto& row :
       tx.exec("SELECT version_num FROM public.alembic_version ORDER BY version_num")) {
    if (row[0].is_null())
      throw UsageError("alembic_version holds a NULL version_num, which no tool writes",
                       "find the real state of the schema, then record it with: "
                       "migration-harness stamp REVISION");
    rows.push_back(row[0].as<std::string>());
  }
  return rows;
}

std::string VersionUpdateSql(const std::string& from, const std::string& to) {
  auto quote = [](const std::string& id) {
    std::string out = "'";
    for (char c : id) out += c == '\'' ? std::string("''") : std::string(1, c);
    return out + "'";
  };
  if (from.empty())
    return "INSERT INTO public.alembic_version (version_num) VALUES (" + quote(to) + ")";
  if (to.empty())
    return "DELETE FROM public.alembic_version WHERE alembic_version.version_num = " + quote(from);
  return "UPDATE public.alembic_version SET version_num=" + quote(to) +
         " WHERE alembic_version.version_num = " + quote(from);
}

}  // namespace harness::engine
