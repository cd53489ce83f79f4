// The state file of the shared test cluster (test-cluster start): one
// `key=value` line each (socket_dir, port, keeper_pid, keeper_start,
// postmaster_pid, max_hours, stop_command). Read by the keeper itself, by
// the tests that use the cluster and by the keeper's own tests.
#pragma once

#include <cstdlib>
#include <fstream>
#include <map>
#include <string>

namespace harness::testing {

class StateFile {
 public:
  // An absent or unreadable file reads as empty.
  explicit StateFile(const std::string& path) {
    std::ifstream in(path);
    std::string line;
    while (std::getline(in, line)) {
      auto eq = line.find('=');
      if (eq != std::string::npos) values_[line.substr(0, eq)] = line.substr(eq + 1);
    }
  }
  std::string Get(const std::string& key) const {
    auto it = values_.find(key);
    return it == values_.end() ? std::string() : it->second;
  }
  long long Number(const std::string& key, long long otherwise = 0) const {
    std::string v = Get(key);
    return v.empty() ? otherwise : std::strtoll(v.c_str(), nullptr, 10);
  }

 private:
  std::map<std::string, std::string> values_;
};

}  // namespace harness::testing
