// The plain SQL script `pg_restore --data-only --file=-` writes, read as
// data: its COPY blocks (COPY text format), sequence values and client
// encoding. Nothing of it is run as SQL.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace harness::pg {

// One table's rows in pg_restore's plain output: the COPY line's names and
// the data lines (COPY text format), as written.
struct CopyBlock {
  std::string schema;
  std::string table;
  std::vector<std::string> columns;
  std::vector<std::string> lines;
};

// `SELECT pg_catalog.setval('public.x_seq', 42, true);`
struct SequenceValue {
  std::string name;  // as written: "public.x_seq"
  long long value = 0;
  bool is_called = true;
};

struct DataScript {
  std::string client_encoding;  // from `SET client_encoding = '...'`; empty when absent
  std::vector<CopyBlock> tables;
  std::vector<SequenceValue> sequences;
};

// Reads the output of `pg_restore --data-only --file=-`. Statements other
// than SET, set_config, setval and COPY are refused (UsageError): the
// restore runs none of the script's SQL, only loads its data.
DataScript ParseDataScript(std::string_view text);

// One line of COPY text format as fields; nullopt for \N. Undoes the
// format's backslash escapes (\t, \n, \\, octal \NNN, hex \xHH, ...).
std::vector<std::optional<std::string>> SplitCopyLine(std::string_view line);

}  // namespace harness::pg
