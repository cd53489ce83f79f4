#include "harness/inspect/fingerprint.h"

namespace harness::inspect {

Fingerprint TakeFingerprint(pqxx::transaction_base& tx, const std::string& table,
                            const std::vector<std::string>& columns) {
  std::string row = "t";
  if (!columns.empty()) {
    row = "ROW(";
    for (size_t i = 0; i < columns.size(); ++i)
      row += (i ? ", t." : "t.") + tx.quote_name(columns[i]);
    row += ")";
  }
  pqxx::result r = tx.exec("SELECT count(*), coalesce(sum(hashtextextended(" + row +
                           "::text, 0)::numeric), 0)::text FROM public." + tx.quote_name(table) + " t");
  if (r.size() != 1) throw std::logic_error("fingerprint query returned no row");
  return Fingerprint{r[0][0].as<long long>(), r[0][1].as<std::string>()};
}

std::vector<std::string> ColumnsOf(pqxx::transaction_base& tx, const std::string& table) {
  std::vector<std::string> out;
  for (const auto& r : tx.exec_params(
           "SELECT attname FROM pg_catalog.pg_attribute WHERE attrelid = "
           "pg_catalog.to_regclass('public.' || pg_catalog.quote_ident($1)) AND attnum > 0 "
           "AND NOT attisdropped ORDER BY attnum",
           table))
    out.push_back(r[0].as<std::string>());
  return out;
}

}  // namespace harness::inspect
