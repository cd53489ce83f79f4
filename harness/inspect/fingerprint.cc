#include "harness/inspect/fingerprint.h"

#include "harness/inspect/table_reading.h"

namespace harness::inspect {

Fingerprint TakeFingerprint(pqxx::transaction_base& tx, const std::string& table,
                            const std::vector<std::string>& columns) {
  return TakeFingerprint(tx, TableId{"public", table}, columns);
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
