// bench-report: turns a Google Benchmark JSON of migration_bench into a
// timing report (text, and a self-contained HTML page with an SVG chart of
// time against rows per step), compares it with a stored baseline and
// forecasts the time at a production size. The baseline comparison divides
// each time by a reference measured in the same run (the rival approach,
// or the calibration probe BM_Calibrate) and compares those ratios: a
// loaded or slower machine moves both. Per schema shape: our 002 beside
// the quickstart's approach (quickstart shape) and beside the service's own
// 002 (production shape), as ratios from the same run; our upgrade against
// the budget (FR-031), measured and forecast.
//
//   bench-report RESULTS.json [--baseline bench/baseline.json] [--threshold 25]
//                [--gate] [--html FILE] [--forecast-rows N] [--save-baseline FILE]
//
// Exit codes: 0 ok; 1 --gate tripped (a ratio grew past the threshold, or our upgrade over the
// budget on a shape); 2 bad input (a file that cannot be read, or a destination that can never be
// written); 3 a file could not be written (the previous one is kept).
#include <algorithm>
#include <cmath>
#include <filesystem>
#include <functional>
#include <fstream>
#include <iostream>
#include <map>
#include <regex>
#include <tuple>
#include <vector>

#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "bench/service_002.h"
#include "harness/engine/revision_graph.h"
#include "harness/pg/files.h"
#include "harness/report/forecast.h"
#include "harness/report/rehearsal_report.h"

namespace {

using nlohmann::json;
using harness::report::FitLinear;
using harness::report::LinearFit;
using harness::report::Sample;

struct Result {
  std::string family;  // BM_Upgrade002
  std::string shape;   // quickstart, production; empty when none (BM_ClusterStart)
  long long rows = 0;  // the size argument, 0 when none
  double seconds = 0;  // per iteration
  double rows_per_s = 0;
  std::map<int, double> steps;       // step index -> seconds
  std::map<int, double> locks;       // step index -> seconds the tables were locked
  std::map<std::string, double> counters;
  std::map<int, std::string> kinds;  // step index -> rewrite / scan / catalog
};

double ToSeconds(double value, const std::string& unit) {
  if (unit == "ns") return value / 1e9;
  if (unit == "us") return value / 1e6;
  if (unit == "ms") return value / 1e3;
  return value;
}

// The reason without nlohmann's "[json.exception.parse_error.101] " prefix.
std::string Reason(const std::exception& e) {
  std::string what = e.what();
  if (what.rfind("[json.exception.", 0) == 0) {
    auto end = what.find("] ");
    if (end != std::string::npos) what.erase(0, end + 2);
  }
  return what;
}

// A Google Benchmark JSON (--benchmark_out); throws with a one-line reason.
json ReadJson(const std::string& path) {
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) throw std::runtime_error("no such file");
  if (!std::filesystem::is_regular_file(path, ec)) throw std::runtime_error("not a regular file");
  std::ifstream in(path);
  if (!in) throw std::runtime_error("cannot read it");
  json j;
  try {
    j = json::parse(in);
  } catch (const json::exception& e) {
    throw std::runtime_error("not valid JSON (" + Reason(e) + ")");
  }
  if (!j.is_object() || !j.contains("benchmarks") || !j["benchmarks"].is_array())
    throw std::runtime_error("not a Google Benchmark JSON (no \"benchmarks\" array)");
  return j;
}

// "BM_Upgrade002/production/1000000": what Results() files a benchmark under.
std::string Key(const std::string& family, const std::string& shape, long long rows) {
  return family + (shape.empty() ? "" : "/" + shape) + (rows ? "/" + std::to_string(rows) : "");
}

std::map<std::string, Result> Results(const json& j) {
  std::map<std::string, Result> out;
  static const std::regex kName(R"(^([A-Za-z0-9_]+)(?:/(quickstart|production))?(?:/(\d+))?)");
  static const std::regex kStep(R"(^step(\d+)_s$)");
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
    r.rows_per_s = b.value("rows_per_s", 0.0);
    for (auto it = b.begin(); it != b.end(); ++it) {
      std::smatch sm;
      std::string key = it.key();
      if (std::regex_match(key, sm, kStep)) r.steps[std::stoi(sm[1])] = it.value().get<double>();
      else if (std::regex_match(key, sm, kLock)) r.locks[std::stoi(sm[1])] = it.value().get<double>();
      else if (it.value().is_number()) r.counters[key] = it.value().get<double>();
    }
    std::string label = b.value("label", "");
    static const std::regex kKind(R"((\d+):([a-z_+-]+))");
    for (std::sregex_iterator k(label.begin(), label.end(), kKind), end; k != end; ++k)
      r.kinds[std::stoi((*k)[1])] = (*k)[2];
    out[Key(r.family, r.shape, r.rows)] = r;
  }
  return out;
}

std::map<std::string, Result> Load(const std::string& path) { return Results(ReadJson(path)); }

// What a benchmark's time is divided by before it is compared with the
// baseline: measured in the same run, so that the machine's speed and load
// cancel out. Our 002 against the rival approach on the same data (the
// quickstart's on its shape, the service's own 002 on production's);
// everything else, the rivals included, against the calibration probe.
std::string ReferenceOf(const Result& r) {
  if (r.family == "BM_Calibrate") return {};
  if ((r.family == "BM_Upgrade002" || r.family == "BM_Downgrade002") && r.rows)
    return Key(r.shape == "production" ? "BM_Upgrade002ServiceApproach" : "BM_Upgrade002QuickstartApproach",
               r.shape, r.rows);
  return "BM_Calibrate";
}

// Every revision of the chain, up and down ("BM_RevisionUp/003a/1000": rows
// per table): revision -> rows -> {up, down} seconds, in chain order.
struct RevisionTimes {
  std::vector<std::string> order;
  std::map<std::string, std::map<long long, std::pair<double, double>>> times;
};
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

std::string Seconds(double s) {
  return s < 1 ? fmt::format("{:.1f} ms", s * 1000) : fmt::format("{:.2f} s", s);
}

struct Series {
  std::string name;
  std::vector<Sample> points;
};

std::string Escape(const std::string& s) {
  std::string out;
  for (char c : s) out += c == '<' ? "&lt;" : c == '>' ? "&gt;" : c == '&' ? "&amp;" : std::string(1, c);
  return out;
}

std::string Svg(const std::vector<Series>& series) {
  const double W = 760, H = 420, L = 70, R = 230, T = 20, B = 50;
  double xmin = 1e300, xmax = 0, ymin = 1e300, ymax = 0;
  for (const auto& s : series)
    for (const auto& p : s.points) {
      if (p.rows <= 0 || p.seconds <= 0) continue;
      xmin = std::min(xmin, p.rows);
      xmax = std::max(xmax, p.rows);
      ymin = std::min(ymin, p.seconds);
      ymax = std::max(ymax, p.seconds);
    }
  if (xmax <= 0) return "<p>No data to chart.</p>";
  double lx0 = std::floor(std::log10(xmin)), lx1 = std::ceil(std::log10(xmax));
  double ly0 = std::floor(std::log10(ymin)), ly1 = std::ceil(std::log10(ymax));
  if (lx1 == lx0) lx1 += 1;
  if (ly1 == ly0) ly1 += 1;
  auto X = [&](double v) { return L + (std::log10(v) - lx0) / (lx1 - lx0) * (W - L - R); };
  auto Y = [&](double v) { return H - B - (std::log10(v) - ly0) / (ly1 - ly0) * (H - T - B); };
  std::string out = fmt::format(
      "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{}\" height=\"{}\" font-family=\"sans-serif\" "
      "font-size=\"11\">\n",
      W, H);
  for (double e = lx0; e <= lx1; ++e)
    out += fmt::format("<line x1=\"{0}\" y1=\"{1}\" x2=\"{0}\" y2=\"{2}\" stroke=\"#ddd\"/><text x=\"{0}\" "
                       "y=\"{3}\" text-anchor=\"middle\">1e{4}</text>\n",
                       X(std::pow(10, e)), T, H - B, H - B + 15, e);
  for (double e = ly0; e <= ly1; ++e)
    out += fmt::format("<line x1=\"{0}\" y1=\"{1}\" x2=\"{2}\" y2=\"{1}\" stroke=\"#ddd\"/><text x=\"{3}\" "
                       "y=\"{4}\" text-anchor=\"end\">{5}</text>\n",
                       L, Y(std::pow(10, e)), W - R, L - 5, Y(std::pow(10, e)) + 4, Seconds(std::pow(10, e)));
  out += fmt::format("<text x=\"{}\" y=\"{}\" text-anchor=\"middle\">rows (code_chunks)</text>\n",
                     (L + W - R) / 2, H - 10);
  const char* colors[] = {"#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
                          "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"};
  int i = 0;
  for (const auto& s : series) {
    const char* c = colors[i % 10];
    // Past ten series the colours come round again, dashed.
    const char* dash = i >= 10 ? " stroke-dasharray=\"6,3\"" : "";
    std::string pts;
    for (const auto& p : s.points)
      if (p.rows > 0 && p.seconds > 0) pts += fmt::format("{:.1f},{:.1f} ", X(p.rows), Y(p.seconds));
    out += fmt::format("<polyline fill=\"none\" stroke=\"{}\" stroke-width=\"2\"{} points=\"{}\"/>\n", c, dash,
                       pts);
    for (const auto& p : s.points)
      if (p.rows > 0 && p.seconds > 0)
        out += fmt::format("<circle cx=\"{:.1f}\" cy=\"{:.1f}\" r=\"3\" fill=\"{}\"/>\n", X(p.rows), Y(p.seconds), c);
    out += fmt::format("<line x1=\"{}\" y1=\"{}\" x2=\"{}\" y2=\"{}\" stroke=\"{}\" stroke-width=\"3\"{}/>"
                       "<text x=\"{}\" y=\"{}\">{}</text>\n",
                       W - R + 8, T + 16 * i + 5, W - R + 22, T + 16 * i + 5, c, dash, W - R + 27,
                       T + 16 * i + 9, Escape(s.name));
    ++i;
  }
  return out + "</svg>\n";
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"bench-report: timing report, baseline comparison and forecast for migration_bench"};
  std::string input, baseline_path, html_path;
  double threshold = 25;
  bool gate = false;
  double forecast_rows = 0;
  app.add_option("results", input, "Google Benchmark JSON (--benchmark_out)")->required()->check(CLI::ExistingFile);
  // No CLI::ExistingFile: a missing baseline gets the same one-line error and exit 2 as a malformed one.
  app.add_option("--baseline", baseline_path, "Baseline JSON to compare with");
  app.add_option("--threshold", threshold,
                 "Percent by which a ratio to the reference may grow against the baseline's")
      ->capture_default_str()->check(CLI::Range(0.0, 1000.0));
  app.add_flag("--gate", gate,
               "Exit 1 when a benchmark's ratio to its reference (same run) grew past the threshold "
               "against the baseline's, or our upgrade is over the budget");
  app.add_option("--html", html_path, "Also write a self-contained HTML report");
  app.add_option("--forecast-rows", forecast_rows, "Predict the upgrade time at this many chunks");
  std::string save_baseline;
  app.add_option("--save-baseline", save_baseline,
                 "Store the results as the new baseline FILE (without this machine's paths)");
  CLI11_PARSE(app, argc, argv);

  // Files are written atomically (harness/pg/files.h). A destination that can never be written
  // (missing folder, not a regular file, a symbolic link) is refused before anything: exit 2. A
  // write that fails later is said on stderr and is exit 3 unless the gate already says 1.
  for (const std::string* path : {&html_path, &save_baseline}) {
    if (path->empty()) continue;
    try {
      harness::pg::CheckWritable(*path);
    } catch (const std::exception& e) {
      std::cerr << "error: " << e.what() << "\n";
      return 2;
    }
  }
  bool written = true;
  auto write = [&written](const std::string& path, const std::string& content) {
    try {
      harness::pg::WriteFileAtomically(path, content);
      return true;
    } catch (const std::exception& e) {
      std::cerr << "error: " << e.what() << "\n";
      written = false;
      return false;
    }
  };

  const std::string results_hint =
      "; pass the JSON that migration_bench wrote with --benchmark_out=FILE --benchmark_out_format=json";
  json raw;
  std::map<std::string, Result> results;
  try {
    raw = ReadJson(input);
    results = Results(raw);
  } catch (const std::exception& e) {
    std::cerr << "error: results " << input << ": " << Reason(e) << results_hint << "\n";
    return 2;
  }

  if (!save_baseline.empty()) {
    json j = raw;
    if (j.contains("context") && j["context"].is_object()) {
      j["context"].erase("executable");
      j["context"].erase("host_name");
    }
    if (write(save_baseline, j.dump(2) + "\n")) std::cerr << "baseline saved to " << save_baseline << "\n";
  }

  // Read before any report is printed: a bad baseline is an error, not half a report.
  std::map<std::string, Result> base;
  if (!baseline_path.empty()) {
    try {
      base = Load(baseline_path);
    } catch (const std::exception& e) {
      std::cerr << "error: baseline " << baseline_path << ": " << Reason(e)
                << "; pass an existing Google Benchmark JSON to --baseline (bench/run --refresh-baseline "
                   "stores one as bench/baseline.json)\n";
      return 2;
    }
  }
  std::vector<std::string> step_names;
  try {
    auto graph = harness::engine::RevisionGraph::LoadDirectory(harness::engine::DefaultMigrationsDir({}));
    for (const auto& s : graph.head().upgrade) step_names.push_back(s.name);
  } catch (const std::exception&) {
  }
  auto step_name = [&](int i) {
    return i >= 1 && i <= static_cast<int>(step_names.size()) ? step_names[static_cast<size_t>(i - 1)]
                                                            : "step " + std::to_string(i);
  };

  std::string text = fmt::format("Migration 002 timing report\n\n{:<51} {:>10} {:>13}\n", "Benchmark", "time",
                                 "rows/s");
  for (const auto& [key, r] : results)
    text += fmt::format("{:<51} {:>10} {:>13}\n", key, Seconds(r.seconds),
                        r.rows_per_s > 0 ? fmt::format("{:.0f}", r.rows_per_s) : "");
  // The chain's revisions, from the parsed chain (migration_bench).
  const RevisionTimes revisions = RevisionResults(raw);
  if (!revisions.order.empty()) {
    text += "\nEvery revision of the chain, on data generated from the catalog (work time)\n";
    text += fmt::format("  {:<10} {:>14} {:>10} {:>10}\n", "revision", "rows per table", "up", "down");
    for (const auto& rev : revisions.order)
      for (const auto& [rows, t] : revisions.times.at(rev))
        text += fmt::format("  {:<10} {:>14} {:>10} {:>10}\n", rev, rows, Seconds(t.first), Seconds(t.second));
  }

  // Every figure below is per shape; a shape that was not run is left out.
  const std::vector<std::string> shapes = {"quickstart", "production"};
  auto sizes_of = [&](const std::string& family, const std::string& shape) {
    std::vector<long long> sizes;
    for (const auto& [key, r] : results)
      if (r.family == family && r.shape == shape && r.rows) sizes.push_back(r.rows);
    std::sort(sizes.begin(), sizes.end());
    return sizes;
  };
  auto find = [&](const std::string& family, const std::string& shape, long long rows) -> const Result* {
    auto it = results.find(Key(family, shape, rows));
    return it == results.end() ? nullptr : &it->second;
  };

  // Ours against the other approach on the same shape, measured in the same run on the same data.
  struct Rival {
    std::string shape, family, title, name;
  };
  const std::vector<Rival> rivals = {
      {"quickstart", "BM_Upgrade002QuickstartApproach",
       "Our 002 against the quickstart's approach, quickstart shape (same run, same data)",
       "quickstart approach"},
      {"production", "BM_Upgrade002ServiceApproach",
       "Our 002 against the service's own 002, production shape (same run, same data)", "service's 002"},
  };
  for (const Rival& rival : rivals) {
    bool header = false;
    for (long long rows : sizes_of("BM_Upgrade002", rival.shape)) {
      const Result* ours = find("BM_Upgrade002", rival.shape, rows);
      const Result* theirs = find(rival.family, rival.shape, rows);
      if (!theirs || theirs->seconds <= 0) continue;
      if (!header) text += "\n" + rival.title + "\n";
      header = true;
      double ratio = ours->seconds / theirs->seconds;
      text += fmt::format("  {:>9} chunks: ours {:>9}, {} {:>9}: ours takes {:.1f}% of its time ({:.1f}x "
                          "faster)\n",
                          rows, Seconds(ours->seconds), rival.name, Seconds(theirs->seconds), 100 * ratio,
                          1 / ratio);
    }
  }

  // Per-step times of one benchmark at each size, with what each step did to the tables.
  auto step_table = [&](const std::string& title, const std::string& family, const std::string& shape,
                        const std::function<std::string(int)>& name_of) {
    std::map<int, std::vector<Sample>> per_step;
    std::vector<long long> sizes = sizes_of(family, shape);
    for (long long rows : sizes)
      for (const auto& [i, s] : find(family, shape, rows)->steps)
        per_step[i].push_back({static_cast<double>(rows), s});
    if (per_step.empty()) return per_step;
    text += "\n" + title + " (seconds; what the step did to the tables)\n";
    for (const auto& [i, samples] : per_step) {
      std::string line = fmt::format("  {}. {:<42}", i, name_of(i));
      for (const Sample& sample : samples) {
        const Result& r = *find(family, shape, static_cast<long long>(sample.rows));
        auto kind = r.kinds.count(i) ? r.kinds.at(i) : "?";
        line += fmt::format(" {:>9} {:<26}", Seconds(sample.seconds), kind);
      }
      text += line + "\n";
    }
    return per_step;
  };
  auto totals = [&](const std::string& family, const std::string& shape) {
    std::vector<Sample> out;
    for (long long rows : sizes_of(family, shape))
      out.push_back({static_cast<double>(rows), find(family, shape, rows)->seconds});
    return out;
  };
  auto service_step_name = [](int i) {
    return i >= 1 && i <= static_cast<int>(harness::bench::kServiceUpgrade002.size())
               ? std::string(harness::bench::kServiceUpgrade002[static_cast<size_t>(i - 1)].name)
               : "step " + std::to_string(i);
  };

  std::vector<Series> series;
  std::map<std::string, std::map<int, std::vector<Sample>>> upgrade_steps;  // shape -> step -> samples
  for (const std::string& shape : shapes)
    upgrade_steps[shape] =
        step_table("Upgrade steps, " + shape + " shape", "BM_Upgrade002", shape, step_name);
  step_table("The service's own 002 by step, production shape", "BM_Upgrade002ServiceApproach", "production",
             service_step_name);
  // The chart: the quickstart shape's steps (the chart the report always had), then each approach's total.
  for (const auto& [i, samples] : upgrade_steps["quickstart"])
    series.push_back({fmt::format("{}. {}", i, step_name(i)), samples});
  const std::vector<std::tuple<std::string, std::string, std::string>> charted = {
      {"BM_Upgrade002", "quickstart", "upgrade, quickstart"},
      {"BM_Downgrade002", "quickstart", "rollback, quickstart"},
      {"BM_Upgrade002QuickstartApproach", "quickstart", "quickstart's approach"},
      {"BM_Upgrade002", "production", "upgrade, production"},
      {"BM_Downgrade002", "production", "rollback, production"},
      {"BM_Upgrade002ServiceApproach", "production", "service's 002, production"},
  };
  for (const auto& [family, shape, name] : charted)
    if (auto points = totals(family, shape); !points.empty()) series.push_back({name, points});

  {
    bool header = false;
    for (const auto& [key, r] : results) {
      if (r.family != "BM_UpgradeUnderTraffic") continue;
      const long long rows = r.rows;
      if (!header) {
        text += "\nLive traffic during the upgrade, " + r.shape +
                " shape (a reader and a writer on both tables)\n";
        header = true;
      }
      auto c = [&](const char* k) { return r.counters.count(k) ? r.counters.at(k) : 0.0; };
      text += fmt::format(
          "  {:>9} chunks: tables locked {:>9} in all; longest read held up {:>9}, longest write "
          "{:>9}; the upgrade waited {:>9} for their locks\n",
          rows, Seconds(c("lock_hold_s")), Seconds(c("reader_longest_s")),
          Seconds(c("writer_longest_s")), Seconds(c("lock_wait_s")));
      std::string locks;
      for (const auto& [i, seconds] : r.locks)
        locks += fmt::format("{}{}. {}", locks.empty() ? "" : ", ", i, Seconds(seconds));
      text += "             lock-hold per step: " + locks + "\n";
    }
  }

  // The budget (FR-031) holds for our upgrade on each shape: at every measured size and, with
  // --forecast-rows, at the forecast. --gate trips when it does not.
  std::map<std::string, double> forecast;  // shape -> seconds
  if (forecast_rows > 0) {
    for (const std::string& shape : shapes) {
      std::vector<Sample> total = totals("BM_Upgrade002", shape);
      if (total.empty()) continue;
      text += fmt::format("\nForecast at {:.0f} chunks, {} shape (a model per step, from what it did: constant "
                          "for the catalog, else a line that never falls)\n",
                          forecast_rows, shape);
      // What each step did, at the largest size measured.
      const auto sizes = sizes_of("BM_Upgrade002", shape);
      const Result* largest = find("BM_Upgrade002", shape, sizes.back());
      auto catalog_only = [&](int i) {
        auto k = largest->kinds.find(i);
        return k != largest->kinds.end() && k->second == "catalog";
      };
      double sum = 0;
      std::string unreliable;
      for (const auto& [i, samples] : upgrade_steps[shape]) {
        const harness::report::StepFit fit = harness::report::FitStep(samples, catalog_only(i));
        sum += fit.Predict(forecast_rows);
        if (!fit.unreliable.empty()) unreliable += (unreliable.empty() ? "" : ", ") + std::to_string(i);
        text += fmt::format("  {}. {:<42} {:>9}   {}\n", i, step_name(i), Seconds(fit.Predict(forecast_rows)),
                            fit.Describe());
      }
      // The total is the steps' sum: never less than any of them.
      forecast[shape] = sum;
      text += fmt::format("  total upgrade {:>40}   the steps' sum; a line through the totals: {}\n",
                          Seconds(sum), FitLinear(total).Describe());
      if (!unreliable.empty())
        text += "  UNRELIABLE: the fit of step(s) " + unreliable + " (see above); measure more sizes\n";
      // The forecast's own error: from the smaller sizes to the largest, measured.
      if (sizes.size() >= 3) {
        double predicted = 0;
        for (const auto& [i, samples] : upgrade_steps[shape]) {
          std::vector<Sample> smaller;
          for (const auto& x : samples)
            if (x.rows < static_cast<double>(sizes.back())) smaller.push_back(x);
          if (!smaller.empty())
            predicted += harness::report::FitStep(smaller, catalog_only(i)).Predict(static_cast<double>(sizes.back()));
        }
        const double measured = largest->seconds;
        text += fmt::format("  forecast error: from the smaller sizes to {} chunks, {} forecast against {} "
                            "measured ({:+.0f}%)\n",
                            sizes.back(), Seconds(predicted), Seconds(measured),
                            measured > 0 ? 100 * (predicted - measured) / measured : 0.0);
      }
    }
  }
  int over_budget = 0;
  {
    const double budget = harness::report::kBudgetSeconds;
    bool header = false;
    for (const std::string& shape : shapes) {
      std::vector<Sample> total = totals("BM_Upgrade002", shape);
      if (total.empty()) continue;
      if (!header) text += fmt::format("\nBudget {:.0f} s (FR-031), our upgrade\n", budget);
      header = true;
      // The slowest measured size, which is the largest one unless timings were noisy.
      const Sample& worst = *std::max_element(
          total.begin(), total.end(), [](const Sample& a, const Sample& b) { return a.seconds < b.seconds; });
      bool over = worst.seconds >= budget;
      std::string line = fmt::format("  {:<10} {:>9} chunks {:>9}: {}", shape,
                                     static_cast<long long>(worst.rows), Seconds(worst.seconds),
                                     over ? "EXCEEDED" : "within");
      if (forecast.count(shape)) {
        bool forecast_over = forecast[shape] >= budget;
        over = over || forecast_over;
        line += fmt::format("; forecast at {:.0f} chunks {:>9}: {}", forecast_rows, Seconds(forecast[shape]),
                            forecast_over ? "EXCEEDED" : "within");
      }
      over_budget += over;
      text += line + "\n";
    }
  }

  int flagged = 0;
  if (!baseline_path.empty()) {
    // Each benchmark against a reference measured in the same run (the
    // rival approach on the same data, else the calibration probe), and
    // that ratio against the baseline's: a machine that is slower or
    // loaded slows both alike, a slower migration only itself.
    text += fmt::format("\nAgainst the baseline {} (each as a ratio to its reference in the same run; flagged "
                        "when that ratio grew more than {:.0f}%)\n",
                        baseline_path, threshold);
    std::string no_reference;
    for (const auto& [key, r] : results) {
      auto it = base.find(key);
      if (it == base.end() || it->second.seconds <= 0 || r.family == "BM_Calibrate") continue;
      const std::string ref_key = ReferenceOf(r);
      auto ref_now = results.find(ref_key);
      auto ref_base = base.find(ref_key);
      if (ref_key.empty() || ref_now == results.end() || ref_base == base.end() ||
          ref_now->second.seconds <= 0 || ref_base->second.seconds <= 0) {
        no_reference += (no_reference.empty() ? "" : ", ") + key;
        continue;
      }
      const double now = r.seconds / ref_now->second.seconds;
      const double was = it->second.seconds / ref_base->second.seconds;
      const double change = now / was;
      const bool slow = change > 1 + threshold / 100;
      flagged += slow;
      text += fmt::format("  {:<51} {:>7.3f} vs {:>7.3f} of {}  x{:.2f}{}\n", key, now, was, ref_key, change,
                          slow ? "  SLOWER" : "");
    }
    if (flagged == 0) text += "  nothing slower than the threshold\n";
    if (!no_reference.empty())
      text += "  no reference in both runs, not compared: " + no_reference +
              " (a baseline without BM_Calibrate: refresh it with bench/run --refresh-baseline)\n";
    std::string missing;
    for (const auto& [key, r] : results)
      if (!base.count(key)) missing += (missing.empty() ? "" : ", ") + key;
    if (!missing.empty()) text += "  not in the baseline, not compared: " + missing + "\n";
  }
  std::cout << text;
  if (!html_path.empty()) {
    write(html_path,
          "<!doctype html><html><head><meta charset=\"utf-8\"><title>Migration 002 timing report</title>"
          "<style>body{font-family:sans-serif;margin:2em}pre{background:#f6f6f6;padding:1em}</style>"
          "</head><body><h1>Migration 002 timing report</h1>\n<h2>Time against rows, per step "
          "(log-log)</h2>\n" +
              Svg(series) + "<h2>Figures</h2><pre>" + Escape(text) + "</pre></body></html>\n");
  }
  if (gate && (flagged > 0 || over_budget > 0)) {
    if (flagged > 0)
      std::cerr << flagged << " benchmark(s) slower than the baseline by more than " << threshold << "%\n";
    if (over_budget > 0)
      std::cerr << "our upgrade exceeds the " << harness::report::kBudgetSeconds
                << " s budget (FR-031) on " << over_budget << " shape(s)\n";
    return 1;
  }
  return written ? 0 : 3;
}
