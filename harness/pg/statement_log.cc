#include "harness/pg/statement_log.h"

#include <fstream>
#include <map>
#include <regex>

namespace harness::pg {

std::uintmax_t LogSize(const std::filesystem::path& log) {
  std::error_code ec;
  auto size = std::filesystem::file_size(log, ec);
  return ec ? 0 : size;
}

std::vector<LoggedStatement> ReadStatementLog(const std::filesystem::path& log, std::uintmax_t& offset,
                                              const std::set<int>& pids, const std::string& skip_mark) {
  std::ifstream in(log, std::ios::binary);
  if (!in) return {};
  in.seekg(static_cast<std::streamoff>(offset));
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  offset += text.size();
  // An entry: "2026-12-07 01:02:03.456 UTC [1234] LEVEL:  message", and the
  // lines up to the next entry (a statement on several lines).
  static const std::regex kEntry(R"(^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(?:\.\d+)? \S+ \[(\d+)\] ([A-Z]+):  (.*)$)");
  static const std::regex kDuration(R"(^duration: ([0-9.]+) ms  (statement|parse|bind|execute)[^:]*: ([\s\S]*)$)");
  struct Entry {
    int pid = 0;
    std::string level, message;
  };
  std::vector<Entry> entries;
  size_t start = 0;
  while (start < text.size()) {
    size_t nl = text.find('\n', start);
    std::string line = text.substr(start, nl == std::string::npos ? std::string::npos : nl - start);
    start = nl == std::string::npos ? text.size() : nl + 1;
    std::smatch m;
    if (std::regex_match(line, m, kEntry)) {
      entries.push_back({std::stoi(m[1].str()), m[2].str(), m[3].str()});
    } else if (!entries.empty()) {
      entries.back().message += "\n" + (line.rfind('\t', 0) == 0 ? line.substr(1) : line);
    }
  }
  std::vector<LoggedStatement> out;
  std::map<int, double> pending;  // pid -> parse and bind time of the statement to come
  std::map<int, std::string> last_error;
  for (const auto& e : entries) {
    if (!pids.count(e.pid)) continue;
    std::smatch m;
    if (e.level == "LOG" && std::regex_match(e.message, m, kDuration)) {
      const double seconds = std::stod(m[1].str()) / 1000.0;
      const std::string kind = m[2].str(), sql = m[3].str();
      if (!skip_mark.empty() && sql.find(skip_mark) != std::string::npos) {
        pending.erase(e.pid);
        continue;
      }
      if (kind == "parse" || kind == "bind") {
        pending[e.pid] += seconds;
        continue;
      }
      out.push_back({e.pid, seconds + pending[e.pid], sql, false, {}});
      pending.erase(e.pid);
    } else if (e.level == "ERROR") {
      last_error[e.pid] = e.message;
    } else if (e.level == "STATEMENT" && last_error.count(e.pid)) {
      if (!skip_mark.empty() && e.message.find(skip_mark) != std::string::npos) continue;
      out.push_back({e.pid, 0, e.message, true, last_error[e.pid]});
      last_error.erase(e.pid);
    }
  }
  return out;
}

}  // namespace harness::pg
