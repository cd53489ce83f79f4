// Order-independent table fingerprints: the row count and the sum of a
// 64-bit hash of each row's text. Equal fingerprints mean the same multiset
// of rows (up to hash collisions); one sequential scan, cheap at millions of
// rows, no sort.
#pragma once

#include <string>
#include <vector>

#include <pqxx/pqxx>

namespace harness::inspect {

struct Fingerprint {
  long long rows = 0;
  std::string hash_sum;  // numeric, as text: sums of 64-bit hashes overflow bigint
  bool operator==(const Fingerprint& o) const { return rows == o.rows && hash_sum == o.hash_sum; }
  bool operator!=(const Fingerprint& o) const { return !(*this == o); }
  std::string ToString() const { return std::to_string(rows) + " rows, hash " + hash_sum; }
};

// Fingerprint of the table public.`table` (a name, never qualified: a
// table of public named like one of pg_catalog's is still public's) over
// `columns` (all columns when empty), in
// column-list order, so a column added later does not change it.
Fingerprint TakeFingerprint(pqxx::transaction_base& tx, const std::string& table,
                            const std::vector<std::string>& columns = {});

// The live columns of `table` in order, for fingerprinting "what was there".
std::vector<std::string> ColumnsOf(pqxx::transaction_base& tx, const std::string& table);

}  // namespace harness::inspect
