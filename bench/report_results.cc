#include "bench/report_results.h"

#include <algorithm>
#include <cmath>
#include <fstream>
#include <regex>

#include <fmt/format.h>

namespace harness::bench_report {

void MergeRepetition(Result& into, const Result& more) {
  const double n = static_cast<double>(into.runs.size());
  into.runs.insert(into.runs.end(), more.runs.begin(), more.runs.end());
  auto mean = [n](double& a, double b) { a = (a * n + b) / (n + 1); };
  mean(into.seconds, more.seconds);
  mean(into.rows_per_s, more.rows_per_s);
  for (const auto& [i, v] : more.steps) mean(into.steps[i], v);
  for (const auto& [i, v] : more.locks) mean(into.locks[i], v);
  for (const auto& [i, v] : more.step_mins) {
    auto [it, first] = into.step_mins.emplace(i, v);
    if (!first) it->second = std::min(it->second, v);
  }
  for (const auto& [key, v] : more.counters) {
    auto [it, first] = into.counters.emplace(key, v);
    if (first) continue;
    if (key == "min_s") it->second = std::min(it->second, v);
    else mean(it->second, v);
  }
  for (const auto& [i, kind] : more.kinds) {
    auto [it, first] = into.kinds.emplace(i, kind);
    if (!first && it->second == "catalog") it->second = kind;
  }
}

double ToSeconds(double value, const std::string& unit) {
  if (unit == "ns") return value / 1e9;
  if (unit == "us") return value / 1e6;
  if (unit == "ms") return value / 1e3;
  return value;
}

std::string Reason(const std::exception& e) {
  std::string what = e.what();
  if (what.rfind("[json.exception.", 0) == 0) {
    auto end = what.find("] ");
    if (end != std::string::npos) what.erase(0, end + 2);
  }
  return what;
}

json ReadJson(const std::string& path) {
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) throw std::runtime_error("no such file");
  if (!std::filesystem::is_regular_file(path, ec)) throw std::runtime_error("not a regular file");
  std::ifstream in(path);
  if (!in) throw std::runtime_error("cannot read it");
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  // Google Benchmark writes the coefficient of variation of a counter that
  // is 0 in every repetition as NaN, which JSON has no word for: null.
  static const std::regex kNotANumber(R"((:\s*)-?(NaN|nan|Infinity|inf)\b)");
  text = std::regex_replace(text, kNotANumber, "$1null");
  json j;
  try {
    j = json::parse(text);
  } catch (const json::exception& e) {
    throw std::runtime_error("not valid JSON (" + Reason(e) + ")");
  }
  if (!j.is_object() || !j.contains("benchmarks") || !j["benchmarks"].is_array())
    throw std::runtime_error("not a Google Benchmark JSON (no \"benchmarks\" array)");
  return j;
}

std::string Key(const std::string& family, const std::string& shape, long long rows) {
  return family + (shape.empty() ? "" : "/" + shape) + (rows ? "/" + std::to_string(rows) : "");
}

std::map<std::string, Result> Results(const json& j) {
  std::map<std::string, Result> out;
  static const std::regex kName(R"(^([A-Za-z0-9_]+)(?:/(quickstart|production))?(?:/(\d+))?)");
  static const std::regex kStep(R"(^step(\d+)_s$)");
  static const std::regex kStepMin(R"(^step(\d+)_min_s$)");
  static const std::regex kLock(R"(^lock(\d+)_s$)");
  for (const auto& b : j.at("benchmarks")) {
    if (!b.is_object()) throw std::runtime_error("not a Google Benchmark JSON (a benchmark is not an object)");
    if (b.value("run_type", "iteration") != "iteration") continue;
    std::smatch m;
    std::string name = b.at("name");
    if (name.rfind("BM_Revision", 0) == 0) continue;  // RevisionResults()
    if (!std::regex_search(name, m, kName)) continue;
    Result r;
    r.family = m[1];
    r.rows = m[3].matched ? std::stoll(m[3]) : 0;
    // Names from before the production shape have none, and were all on
    // the quickstart's: an older baseline still compares.
    r.shape = m[2].matched ? std::string(m[2]) : r.rows ? "quickstart" : "";
    r.seconds = ToSeconds(b.at("real_time").get<double>(), b.value("time_unit", "ns"));
    r.runs = {r.seconds};
    r.rows_per_s = b.value("rows_per_s", 0.0);
    for (auto it = b.begin(); it != b.end(); ++it) {
      std::smatch sm;
      std::string key = it.key();
      if (std::regex_match(key, sm, kStep)) r.steps[std::stoi(sm[1])] = it.value().get<double>();
      else if (std::regex_match(key, sm, kStepMin)) r.step_mins[std::stoi(sm[1])] = it.value().get<double>();
      else if (std::regex_match(key, sm, kLock)) r.locks[std::stoi(sm[1])] = it.value().get<double>();
      else if (it.value().is_number()) r.counters[key] = it.value().get<double>();
    }
    std::string label = b.value("label", "");
    static const std::regex kKind(R"((\d+):([a-z_+-]+))");
    for (std::sregex_iterator k(label.begin(), label.end(), kKind), end; k != end; ++k)
      r.kinds[std::stoi((*k)[1])] = (*k)[2];
    if (auto [it, first] = out.emplace(Key(r.family, r.shape, r.rows), r); !first) MergeRepetition(it->second, r);
  }
  return out;
}

std::map<std::string, Result> Load(const std::string& path) { return Results(ReadJson(path)); }

RevisionTimes RevisionResults(const json& j) {
  RevisionTimes out;
  static const std::regex kName(R"(^BM_Revision(Up|Down)/([A-Za-z0-9_]+)/(\d+)$)");
  for (const auto& b : j.at("benchmarks")) {
    if (!b.is_object() || b.value("run_type", "iteration") != "iteration") continue;
    std::smatch m;
    std::string name = b.at("name");
    // Manual time, iterations fixed: "BM_RevisionUp/003a/1000/iterations:3/manual_time".
    if (auto slash = name.find("/iterations:"); slash != std::string::npos) name.resize(slash);
    if (!std::regex_match(name, m, kName)) continue;
    const std::string rev = m[2];
    if (!out.times.count(rev)) out.order.push_back(rev);
    auto& t = out.times[rev][std::stoll(m[3])];
    (m[1] == "Up" ? t.first : t.second) = ToSeconds(b.at("real_time").get<double>(), b.value("time_unit", "ns"));
  }
  return out;
}

}  // namespace harness::bench_report
