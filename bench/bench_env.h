// What the benchmark programs share: their sizes from the environment and
// how a chunk count is laid out.
#pragma once

#include <algorithm>
#include <cstdlib>
#include <sstream>
#include <string>
#include <vector>

#include "harness/codesearch/generator.h"

namespace harness::bench {

// A comma-separated list of numbers from the environment variable `name`,
// or from `fallback` when it is unset or empty.
inline std::vector<long long> NumbersFromEnv(const char* name, const char* fallback) {
  const char* env = std::getenv(name);
  std::string text = env && *env ? env : fallback;
  std::vector<long long> out;
  std::stringstream ss(text);
  for (std::string item; std::getline(ss, item, ',');) out.push_back(std::stoll(item));
  return out;
}

// Repositories x chunks per repository for a chunk count: a thousand
// chunks a repository (at least ten repositories).
inline codesearch::GeneratorOptions Layout(long long chunks) {
  codesearch::GeneratorOptions go;
  go.repositories = static_cast<int>(std::max<long long>(10, chunks / 1000));
  go.chunks_per_repo = static_cast<int>(chunks / go.repositories);
  return go;
}

}  // namespace harness::bench
