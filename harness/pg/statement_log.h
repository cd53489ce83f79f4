// The statements a session ran, as the server logged them: what
// log_min_duration_statement = 0 writes to the log of a server the tool
// started itself (the embedded cluster; its log_line_prefix '%m [%p] '
// gives each entry its session's pid). Per statement its text and time
// (the extended protocol's parse, bind and execute added up), and the
// statement the server names with an error.
#pragma once

#include <cstdint>
#include <filesystem>
#include <set>
#include <string>
#include <vector>

namespace harness::pg {

struct LoggedStatement {
  int pid = 0;
  double seconds = 0;
  std::string sql;
  bool failed = false;  // the statement an ERROR named
  std::string error;    // that error's message
};

// The settings that make a server log every statement so.
inline constexpr const char* kStatementLogPrefix = "%m [%p] ";

// The entries of `pids` in the log from byte `offset` on; `offset` is
// moved past what was read. Statements marked with `skip_mark` (a comment
// the tool puts on its own probes) are left out.
std::vector<LoggedStatement> ReadStatementLog(const std::filesystem::path& log, std::uintmax_t& offset,
                                              const std::set<int>& pids, const std::string& skip_mark = {});
// The log's size now: where the next read starts.
std::uintmax_t LogSize(const std::filesystem::path& log);

}  // namespace harness::pg
