#include "harness/engine/version_table.h"

#include "harness/error.h"
#include "harness/sys/untrusted_text.h"

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

std::string OnlineProgress::Describe() const {
  // Read back from the table: shown under the rule for text that is not the tool's own.
  return sys::ShowUntrusted(revision, 32) + " in progress: phase " + std::to_string(phases_done) + " of " + std::to_string(phases) +
         " done (" + sys::ShowUntrusted(step, 80) + ")";
}

std::optional<OnlineProgress> ReadProgress(pqxx::transaction_base& tx) {
  pqxx::result owner = tx.exec(
      "SELECT c.relkind::text, r.rolname, r.rolsuper FROM pg_catalog.pg_class c "
      "JOIN pg_catalog.pg_roles r ON r.oid = c.relowner "
      "WHERE c.oid = pg_catalog.to_regclass('public.migration_harness_progress')");
  if (owner.empty()) return std::nullopt;
  if (owner[0][0].as<std::string>() != "r" || !owner[0][2].as<bool>())
    throw UsageError("public.migration_harness_progress is not the tool's table (" +
                         (owner[0][0].as<std::string>() != "r" ? std::string("not a plain table")
                                                               : "owned by " + sys::ShowUntrusted(owner[0][1].c_str(), 64) +
                                                                     ", not a superuser") +
                         "); nothing was changed",
                     "the tool records online progress there: find who made it, drop it, then run again");
  pqxx::result rows = tx.exec(
      "SELECT revision, parent, phases_done, phases, step FROM public.migration_harness_progress ORDER BY revision");
  if (rows.empty()) return std::nullopt;
  if (rows.size() > 1)
    throw UsageError("public.migration_harness_progress holds " + std::to_string(rows.size()) +
                         " revisions in progress; the tool writes one at most",
                     "find the real state of the schema; then delete the rows that are wrong");
  OnlineProgress p;
  p.revision = rows[0][0].as<std::string>();
  p.parent = rows[0][1].as<std::string>();
  p.phases_done = rows[0][2].as<int>();
  p.phases = rows[0][3].as<int>();
  p.step = rows[0][4].as<std::string>();
  return p;
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
