// bench-report's input: Google Benchmark JSON read into one Result per
// benchmark (its repetitions merged, each repetition's time kept), and the
// chain's revision benchmarks.
#pragma once

#include <exception>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

namespace harness::bench_report {

using json = nlohmann::json;

struct Result {
  std::string family;  // BM_Upgrade002
  std::string shape;   // quickstart, production; empty when none (BM_ClusterStart)
  long long rows = 0;  // the size argument, 0 when none
  double seconds = 0;  // per iteration
  double rows_per_s = 0;
  std::map<int, double> steps;       // step index -> seconds
  std::map<int, double> step_mins;   // step index -> seconds of the fastest iteration (when recorded)
  std::map<int, double> locks;       // step index -> seconds the tables were locked
  std::map<std::string, double> counters;
  std::map<int, std::string> kinds;  // step index -> rewrite / scan / catalog
  std::vector<double> runs;          // each repetition's seconds per iteration, in the file's order
};

// Every revision of the chain, up and down ("BM_RevisionUp/003a/1000": rows
// per table): revision -> rows -> {up, down} seconds, in chain order.
struct RevisionTimes {
  std::vector<std::string> order;
  std::map<std::string, std::map<long long, std::pair<double, double>>> times;
};

// A further repetition of the same benchmark (--benchmark_repetitions, as
// the forecast's error test runs them, interleaved): the means averaged,
// the fastest iterations' times the fastest of all, and a step that did
// more than the catalog in any repetition counted as doing so.
void MergeRepetition(Result& into, const Result& more);
double ToSeconds(double value, const std::string& unit);
// The reason without nlohmann's "[json.exception.parse_error.101] " prefix.
std::string Reason(const std::exception& e);
// A Google Benchmark JSON (--benchmark_out); throws with a one-line reason.
json ReadJson(const std::string& path);
// "BM_Upgrade002/production/1000000": what Results() files a benchmark under.
std::string Key(const std::string& family, const std::string& shape, long long rows);
std::map<std::string, Result> Results(const json& j);
std::map<std::string, Result> Load(const std::string& path);
RevisionTimes RevisionResults(const json& j);

}  // namespace harness::bench_report
