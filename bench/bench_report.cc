// bench-report: turns a Google Benchmark JSON of migration_bench into a
// timing report (text, and a self-contained HTML page with an SVG chart of
// time against rows per step), compares it with a stored baseline and
// forecasts the time at a production size. The baseline comparison divides
// each time by a reference of its own kind measured in the same run
// (ReferencesOf) and compares those ratios: a loaded or slower machine
// moves both. Per schema shape: our 002 beside
// the quickstart's approach (quickstart shape) and beside the service's own
// 002 (production shape), as ratios from the same run; our upgrade against
// the budget (FR-031), measured and forecast.
//
//   bench-report RESULTS.json [--baseline bench/baseline.json] [--threshold 25] [--alpha 0.05]
//                [--gate] [--html FILE] [--forecast-rows N] [--save-baseline FILE]
//
// Exit codes: 0 ok; 1 --gate tripped (a ratio grew past the threshold, significantly over the
// repetitions, or our upgrade over the budget on a shape); 2 bad input (a file that cannot be read,
// a destination that can never be written, or, with --gate, too few repetitions to judge); 3 a file
// could not be written (the previous one is kept).
#include <algorithm>
#include <cmath>
#include <filesystem>
#include <functional>
#include <fstream>
#include <iostream>
#include <iterator>
#include <map>
#include <regex>
#include <tuple>
#include <vector>

#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "bench/service_002.h"
#include "harness/engine/revision_graph.h"
#include "harness/sys/files.h"
#include "harness/stats/model_fit.h"
#include "harness/report/rehearsal_report.h"
#include "harness/stats/significance.h"

namespace {

using nlohmann::json;
using harness::stats::FitLinear;
using harness::stats::LinearFit;
using harness::stats::Sample;

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

// A further repetition of the same benchmark (--benchmark_repetitions, as
// the forecast's error test runs them, interleaved): the means averaged,
// the fastest iterations' times the fastest of all, and a step that did
// more than the catalog in any repetition counted as doing so.
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

// "BM_Upgrade002/production/1000000": what Results() files a benchmark under.
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

// What a benchmark's time is divided by before it is compared with the
// baseline: measured in the same run, so that the machine's speed and load
// cancel out, and of its own kind where there is one, as a busy machine
// slows each kind of work differently (under two busy loops and a parallel
// build, a cluster start by 2.1 times more than the SQL probe, but no
// more than initdb alone). Our 002 up and down against the rival approach
// on the same data (the quickstart's on its shape, the service's own 002 on
// production's); the cluster start against initdb alone (BM_InitDb:
// process start-up and file writes); the upgrade under traffic against the
// same upgrade without it, and online against one transaction under the
// same traffic; everything else, the rivals included, against the
// calibration probe. Candidates in order: the first measured in both runs
// (a baseline recorded before BM_InitDb falls back to the probe).
std::vector<std::string> ReferencesOf(const Result& r) {
  if (r.family == "BM_Calibrate" || r.family == "BM_InitDb") return {};
  if (r.family == "BM_UpgradeOnlineUnderTraffic" && r.rows) return {Key("BM_UpgradeUnderTraffic", r.shape, r.rows)};
  if (r.family == "BM_UpgradeUnderTraffic" && r.rows) return {Key("BM_Upgrade002", r.shape, r.rows)};
  if ((r.family == "BM_Upgrade002" || r.family == "BM_Downgrade002") && r.rows)
    return {Key(r.shape == "production" ? "BM_Upgrade002ServiceApproach" : "BM_Upgrade002QuickstartApproach",
                r.shape, r.rows)};
  if (r.family == "BM_ClusterStart") return {"BM_InitDb", "BM_Calibrate"};
  return {"BM_Calibrate"};
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
  int color = -1;       // index into the palette; -1: the series' own position
  bool dashed = false;  // the baseline's figures
};

std::string Escape(const std::string& s) {
  std::string out;
  for (char c : s) out += c == '<' ? "&lt;" : c == '>' ? "&gt;" : c == '&' ? "&amp;" : std::string(1, c);
  return out;
}

// One table of the HTML report: the figures of one section of the text
// report, in columns.
struct HtmlTable {
  std::string title;
  std::vector<std::string> head;
  std::vector<std::vector<std::string>> rows;
  std::vector<std::string> notes;  // paragraphs under the table
};

// A cell: figures right-aligned (not in a label column: revision 001),
// verdicts marked.
std::string HtmlCell(const char* tag, const std::string& v, bool label = false) {
  std::string cls;
  if (label) {
  } else if (v == "SLOWER" || v == "EXCEEDED" || v.rfind("UNRELIABLE", 0) == 0) cls = "bad";
  else if (v == "within" || v == "as before") cls = "good";
  else if (static const std::regex kFigure(R"(^[+-]?x?[0-9][0-9.,]*(e[+-]?[0-9]+)?( ?(ms|s|%|chunks))?$)");
           std::regex_match(v, kFigure))
    cls = "num";
  return fmt::format("<{0}{1}>{2}</{0}>", tag, cls.empty() ? "" : " class=\"" + cls + "\"", Escape(v));
}

std::string RenderTable(const HtmlTable& t) {
  std::string out = "<h2>" + Escape(t.title) + "</h2>\n<table>\n<thead><tr>";
  for (const auto& h : t.head) out += HtmlCell("th", h);
  out += "</tr></thead>\n<tbody>\n";
  // The first column names the row, unless it is a size or a step number.
  const bool first_is_label = !t.head.empty() && t.head[0] != "chunks" && t.head[0] != "#";
  for (const auto& row : t.rows) {
    out += "<tr>";
    for (size_t i = 0; i < row.size(); ++i) out += HtmlCell("td", row[i], i == 0 && first_is_label);
    out += "</tr>\n";
  }
  out += "</tbody>\n</table>\n";
  for (const auto& n : t.notes) out += "<p>" + Escape(n) + "</p>\n";
  return out;
}

// 1000 -> "1K", 1e7 -> "10M": the chart's axis.
std::string RowsLabel(double rows) {
  if (rows >= 1e9) return fmt::format("{:g}G", rows / 1e9);
  if (rows >= 1e6) return fmt::format("{:g}M", rows / 1e6);
  if (rows >= 1e3) return fmt::format("{:g}K", rows / 1e3);
  return fmt::format("{:g}", rows);
}

// A log-log chart of time against rows, its legend under the plot: one
// line per series, the chart as tall as its legend needs, so that no name
// is ever cut off.
std::string Svg(const std::vector<Series>& series, const std::string& x_label) {
  const double W = 760, L = 70, R = 20, T = 20, plot_h = 330, B = 50, line_h = 18;
  const double H = T + plot_h + B + line_h * static_cast<double>(series.size()) + 10;
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
  const double bottom = T + plot_h;
  auto X = [&](double v) { return L + (std::log10(v) - lx0) / (lx1 - lx0) * (W - L - R); };
  auto Y = [&](double v) { return bottom - (std::log10(v) - ly0) / (ly1 - ly0) * plot_h; };
  std::string out = fmt::format(
      "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{0}\" height=\"{1}\" viewBox=\"0 0 {0} {1}\" "
      "font-family=\"sans-serif\" font-size=\"12\">\n",
      W, H);
  for (double e = lx0; e <= lx1; ++e)
    out += fmt::format("<line x1=\"{0}\" y1=\"{1}\" x2=\"{0}\" y2=\"{2}\" stroke=\"#ddd\"/><text x=\"{0}\" "
                       "y=\"{3}\" text-anchor=\"middle\">{4}</text>\n",
                       X(std::pow(10, e)), T, bottom, bottom + 15, RowsLabel(std::pow(10, e)));
  for (double e = ly0; e <= ly1; ++e)
    out += fmt::format("<line x1=\"{0}\" y1=\"{1}\" x2=\"{2}\" y2=\"{1}\" stroke=\"#ddd\"/><text x=\"{3}\" "
                       "y=\"{4}\" text-anchor=\"end\">{5}</text>\n",
                       L, Y(std::pow(10, e)), W - R, L - 5, Y(std::pow(10, e)) + 4, Seconds(std::pow(10, e)));
  out += fmt::format("<text x=\"{}\" y=\"{}\" text-anchor=\"middle\">{}</text>\n", (L + W - R) / 2,
                     bottom + 34, Escape(x_label));
  const char* colors[] = {"#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
                          "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"};
  int i = 0;
  for (const auto& s : series) {
    const int ci = s.color >= 0 ? s.color : i;
    const char* c = colors[ci % 10];
    // Past ten colours they come round again, dashed; the baseline is dashed.
    const char* dash = s.dashed || ci >= 10 ? " stroke-dasharray=\"6,3\"" : "";
    std::string pts;
    for (const auto& p : s.points)
      if (p.rows > 0 && p.seconds > 0) pts += fmt::format("{:.1f},{:.1f} ", X(p.rows), Y(p.seconds));
    out += fmt::format("<polyline fill=\"none\" stroke=\"{}\" stroke-width=\"2\"{} points=\"{}\"/>\n", c, dash,
                       pts);
    for (const auto& p : s.points)
      if (p.rows > 0 && p.seconds > 0)
        out += fmt::format("<circle cx=\"{:.1f}\" cy=\"{:.1f}\" r=\"3\" fill=\"{}\"/>\n", X(p.rows), Y(p.seconds), c);
    const double ly = bottom + B + line_h * i;
    out += fmt::format("<line x1=\"{}\" y1=\"{}\" x2=\"{}\" y2=\"{}\" stroke=\"{}\" stroke-width=\"3\"{}/>"
                       "<text class=\"legend\" x=\"{}\" y=\"{}\">{}</text>\n",
                       L, ly, L + 24, ly, c, dash, L + 30, ly + 4, Escape(s.name));
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
  double alpha = 0.05;
  double forecast_rows = 0;
  app.add_option("results", input, "Google Benchmark JSON (--benchmark_out)")->required()->check(CLI::ExistingFile);
  // No CLI::ExistingFile: a missing baseline gets the same one-line error and exit 2 as a malformed one.
  app.add_option("--baseline", baseline_path, "Baseline JSON to compare with");
  app.add_option("--threshold", threshold,
                 "Percent by which a ratio to the reference may grow against the baseline's")
      ->capture_default_str()->check(CLI::Range(0.0, 1000.0));
  app.add_flag("--gate", gate,
               "Exit 1 when a benchmark's ratio to its reference (same run) grew past the threshold "
               "against the baseline's and significantly across the repetitions, or our upgrade is over "
               "the budget; exit 2 when there are too few repetitions to judge");
  app.add_option("--alpha", alpha,
                 "Family-wise error of the gate: the chance that an unchanged tree has any benchmark "
                 "flagged (Holm's correction over all compared)")
      ->capture_default_str()
      ->check(CLI::Range(1e-6, 0.5));
  app.add_option("--html", html_path, "Also write a self-contained HTML report");
  app.add_option("--forecast-rows", forecast_rows, "Predict the upgrade time at this many chunks");
  std::string save_baseline;
  app.add_option("--save-baseline", save_baseline,
                 "Store the results as the new baseline FILE (without this machine's paths)");
  CLI11_PARSE(app, argc, argv);

  // Files are written atomically (harness/sys/files.h). A destination that can never be written
  // (missing folder, not a regular file, a symbolic link) is refused before anything: exit 2. A
  // write that fails later is said on stderr and is exit 3 unless the gate already says 1.
  for (const std::string* path : {&html_path, &save_baseline}) {
    if (path->empty()) continue;
    try {
      harness::sys::CheckWritable(*path);
    } catch (const std::exception& e) {
      std::cerr << "error: " << e.what() << "\n";
      return 2;
    }
  }
  bool written = true;
  auto write = [&written](const std::string& path, const std::string& content) {
    try {
      harness::sys::WriteFileAtomically(path, content);
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
    // Each repetition is kept (the gate compares them); the aggregates
    // Google Benchmark adds (mean, median, stddev, cv) are not.
    json runs = json::array();
    for (const auto& b : j["benchmarks"])
      if (b.value("run_type", "iteration") == "iteration") runs.push_back(b);
    j["benchmarks"] = runs;
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
  // The HTML report: the same sections as tables.
  std::vector<HtmlTable> tables;
  tables.push_back({"Benchmarks (time per iteration)", {"benchmark", "time", "rows/s"}, {}, {}});
  for (const auto& [key, r] : results) {
    const std::string rate = r.rows_per_s > 0 ? fmt::format("{:.0f}", r.rows_per_s) : "";
    text += fmt::format("{:<51} {:>10} {:>13}\n", key, Seconds(r.seconds), rate);
    tables.back().rows.push_back({key, Seconds(r.seconds), rate});
  }
  // The chain's revisions, from the parsed chain (migration_bench).
  const RevisionTimes revisions = RevisionResults(raw);
  if (!revisions.order.empty()) {
    const std::string title = "Every revision of the chain, on data generated from the catalog (work time)";
    text += "\n" + title + "\n";
    text += fmt::format("  {:<10} {:>14} {:>10} {:>10}\n", "revision", "rows per table", "up", "down");
    tables.push_back({title, {"revision", "rows per table", "up", "down"}, {}, {}});
    for (const auto& rev : revisions.order)
      for (const auto& [rows, t] : revisions.times.at(rev)) {
        text += fmt::format("  {:<10} {:>14} {:>10} {:>10}\n", rev, rows, Seconds(t.first), Seconds(t.second));
        tables.back().rows.push_back({rev, std::to_string(rows), Seconds(t.first), Seconds(t.second)});
      }
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
      if (!header) {
        text += "\n" + rival.title + "\n";
        tables.push_back({rival.title, {"chunks", "ours", rival.name, "ours as a share of it", "faster"}, {}, {}});
      }
      header = true;
      double ratio = ours->seconds / theirs->seconds;
      text += fmt::format("  {:>9} chunks: ours {:>9}, {} {:>9}: ours takes {:.1f}% of its time ({:.1f}x "
                          "faster)\n",
                          rows, Seconds(ours->seconds), rival.name, Seconds(theirs->seconds), 100 * ratio,
                          1 / ratio);
      tables.back().rows.push_back({std::to_string(rows), Seconds(ours->seconds), Seconds(theirs->seconds),
                                    fmt::format("{:.1f}%", 100 * ratio), fmt::format("x{:.1f}", 1 / ratio)});
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
    HtmlTable table{title + " (what the step did to the tables: catalog only, a scan, a rewrite...)",
                    {"#", "step"},
                    {},
                    {}};
    for (long long rows : sizes) table.head.insert(table.head.end(), {fmt::format("{} chunks", rows), "did"});
    for (const auto& [i, samples] : per_step) {
      std::string line = fmt::format("  {}. {:<42}", i, name_of(i));
      std::vector<std::string> row = {std::to_string(i), name_of(i)};
      for (const Sample& sample : samples) {
        const Result& r = *find(family, shape, static_cast<long long>(sample.rows));
        auto kind = r.kinds.count(i) ? r.kinds.at(i) : "?";
        line += fmt::format(" {:>9} {:<26}", Seconds(sample.seconds), kind);
        row.insert(row.end(), {Seconds(sample.seconds), kind});
      }
      text += line + "\n";
      table.rows.push_back(row);
    }
    tables.push_back(table);
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

  std::map<std::string, std::map<int, std::vector<Sample>>> upgrade_steps;  // shape -> step -> samples
  for (const std::string& shape : shapes)
    upgrade_steps[shape] =
        step_table("Upgrade steps, " + shape + " shape", "BM_Upgrade002", shape, step_name);
  step_table("The service's own 002 by step, production shape", "BM_Upgrade002ServiceApproach", "production",
             service_step_name);

  // The first chart: our upgrade against the rival approach of each shape,
  // and against the baseline's upgrade. The baseline was measured on
  // another machine, or this one at another time: its times are scaled by
  // the calibration probe of both runs, as the gate compares them.
  std::vector<Series> versus;
  std::string versus_note;
  const Result* calibrate_now = results.count("BM_Calibrate") ? &results.at("BM_Calibrate") : nullptr;
  const Result* calibrate_base = base.count("BM_Calibrate") ? &base.at("BM_Calibrate") : nullptr;
  const bool scaled = calibrate_now && calibrate_base && calibrate_now->seconds > 0 && calibrate_base->seconds > 0;
  const double scale = scaled ? calibrate_now->seconds / calibrate_base->seconds : 1;
  if (!baseline_path.empty())
    versus_note = scaled ? fmt::format("The baseline's times are scaled by this run's calibration probe over "
                                       "the baseline's (x{:.2f}), as the gate compares them.",
                                       scale)
                         : "The baseline has no calibration probe (BM_Calibrate) to scale it by: not charted.";
  struct Versus {
    std::string shape, rival_family, rival_name;
    int color, rival_color;
  };
  for (const Versus& v : {Versus{"quickstart", "BM_Upgrade002QuickstartApproach", "the quickstart's approach", 0, 1},
                          Versus{"production", "BM_Upgrade002ServiceApproach", "the service's own 002", 2, 3}}) {
    std::vector<Sample> ours = totals("BM_Upgrade002", v.shape);
    if (ours.empty()) continue;
    versus.push_back({"our 002, " + v.shape + " shape", ours, v.color, false});
    if (auto theirs = totals(v.rival_family, v.shape); !theirs.empty())
      versus.push_back({v.rival_name + ", " + v.shape + " shape (same run)", theirs, v.rival_color, false});
    if (scaled) {
      std::vector<Sample> was;
      for (const auto& [key, r] : base)
        if (r.family == "BM_Upgrade002" && r.shape == v.shape && r.rows)
          was.push_back({static_cast<double>(r.rows), r.seconds * scale});
      std::sort(was.begin(), was.end(), [](const Sample& a, const Sample& b) { return a.rows < b.rows; });
      if (!was.empty()) versus.push_back({"our 002, " + v.shape + " shape, baseline (scaled)", was, v.color, true});
    }
  }
  // The second: each step of the quickstart shape's upgrade.
  std::vector<Series> steps_chart;
  for (const auto& [i, samples] : upgrade_steps["quickstart"])
    steps_chart.push_back({fmt::format("{}. {}", i, step_name(i)), samples});

  {
    bool header = false;
    for (const auto& [key, r] : results) {
      if (r.family != "BM_UpgradeUnderTraffic") continue;
      const long long rows = r.rows;
      if (!header) {
        const std::string title =
            "Live traffic during the upgrade, " + r.shape + " shape (a reader and a writer on both tables)";
        text += "\n" + title + "\n";
        tables.push_back({title,
                          {"chunks", "tables locked in all", "longest read held up", "longest write held up",
                           "the upgrade waited for their locks", "lock-hold per step"},
                          {},
                          {}});
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
      tables.back().rows.push_back({std::to_string(rows), Seconds(c("lock_hold_s")), Seconds(c("reader_longest_s")),
                                    Seconds(c("writer_longest_s")), Seconds(c("lock_wait_s")), locks});
    }
  }

  // The budget (FR-031) holds for our upgrade on each shape: at every measured size and, with
  // --forecast-rows, at the forecast. --gate trips when it does not.
  std::map<std::string, double> forecast;  // shape -> seconds
  if (forecast_rows > 0) {
    for (const std::string& shape : shapes) {
      std::vector<Sample> total = totals("BM_Upgrade002", shape);
      if (total.empty()) continue;
      const std::string title = fmt::format(
          "Forecast at {:.0f} chunks, {} shape (a model per step, from what it did: constant for the catalog, n "
          "log n for an index build, else a line that never falls; fitted to each size's fastest iteration)",
          forecast_rows, shape);
      text += "\n" + title + "\n";
      tables.push_back({title, {"#", "step", "forecast", "model"}, {}, {}});
      HtmlTable& table = tables.back();
      // What each step did, at the largest size measured, chooses its model.
      const auto sizes = sizes_of("BM_Upgrade002", shape);
      const Result* largest = find("BM_Upgrade002", shape, sizes.back());
      auto model_of = [&](int i) {
        auto k = largest->kinds.find(i);
        return harness::stats::ModelOf(k == largest->kinds.end() ? "" : k->second);
      };
      // Each size's fastest iteration per step (a results file from before
      // those were recorded: the mean).
      std::map<int, std::vector<Sample>> fastest;
      for (long long rows : sizes) {
        const Result& r = *find("BM_Upgrade002", shape, rows);
        for (const auto& [i, seconds] : r.step_mins.empty() ? r.steps : r.step_mins)
          fastest[i].push_back({static_cast<double>(rows), seconds});
      }
      double sum = 0;
      std::string unreliable;
      for (const auto& [i, samples] : fastest) {
        // The model verify fits too (verify/forecast.h).
        const harness::stats::StepFit fit = harness::stats::FitStep(samples, model_of(i));
        const double at = harness::stats::ForecastAt(fit, samples, forecast_rows);
        sum += at;
        if (!fit.unreliable.empty()) unreliable += (unreliable.empty() ? "" : ", ") + std::to_string(i);
        text += fmt::format("  {}. {:<42} {:>9}   {}\n", i, step_name(i), Seconds(at), fit.Describe());
        table.rows.push_back({std::to_string(i), step_name(i), Seconds(at), fit.Describe()});
      }
      // The total is the steps' sum: never less than any of them.
      forecast[shape] = sum;
      text += fmt::format("  total upgrade {:>40}   the steps' sum; a line through the totals: {}\n",
                          Seconds(sum), FitLinear(total).Describe());
      table.rows.push_back({"", "total upgrade", Seconds(sum),
                            "the steps' sum; a line through the totals: " + FitLinear(total).Describe()});
      if (!unreliable.empty()) {
        const std::string note = "UNRELIABLE: the fit of step(s) " + unreliable + " (see above); measure more sizes";
        text += "  " + note + "\n";
        table.notes.push_back(note);
      }
      // The forecast's own error: from the smaller sizes to the largest,
      // against the largest's fastest iteration.
      if (sizes.size() >= 3) {
        double predicted = 0;
        for (const auto& [i, samples] : fastest) {
          std::vector<Sample> smaller;
          for (const auto& x : samples)
            if (x.rows < static_cast<double>(sizes.back())) smaller.push_back(x);
          if (!smaller.empty())
            predicted += harness::stats::ForecastAt(harness::stats::FitStep(smaller, model_of(i)), smaller,
                                                     static_cast<double>(sizes.back()));
        }
        const double measured = largest->counters.count("min_s") ? largest->counters.at("min_s") : largest->seconds;
        const std::string note =
            fmt::format("forecast error: from the smaller sizes to {} chunks, {} forecast against {} "
                        "measured ({:+.0f}%)",
                        sizes.back(), Seconds(predicted), Seconds(measured),
                        measured > 0 ? 100 * (predicted - measured) / measured : 0.0);
        text += "  " + note + "\n";
        table.notes.push_back(note);
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
      if (!header) {
        text += fmt::format("\nBudget {:.0f} s (FR-031), our upgrade\n", budget);
        tables.push_back({fmt::format("Budget {:.0f} s (FR-031), our upgrade", budget),
                          {"shape", "chunks (slowest measured)", "measured", "verdict", "forecast at", "forecast",
                           "verdict"},
                          {},
                          {}});
      }
      header = true;
      // The slowest measured size, which is the largest one unless timings were noisy.
      const Sample& worst = *std::max_element(
          total.begin(), total.end(), [](const Sample& a, const Sample& b) { return a.seconds < b.seconds; });
      bool over = worst.seconds >= budget;
      std::string line = fmt::format("  {:<10} {:>9} chunks {:>9}: {}", shape,
                                     static_cast<long long>(worst.rows), Seconds(worst.seconds),
                                     over ? "EXCEEDED" : "within");
      std::vector<std::string> row = {shape, std::to_string(static_cast<long long>(worst.rows)),
                                      Seconds(worst.seconds), over ? "EXCEEDED" : "within", "", "", ""};
      if (forecast.count(shape)) {
        bool forecast_over = forecast[shape] >= budget;
        over = over || forecast_over;
        line += fmt::format("; forecast at {:.0f} chunks {:>9}: {}", forecast_rows, Seconds(forecast[shape]),
                            forecast_over ? "EXCEEDED" : "within");
        row[4] = fmt::format("{:.0f} chunks", forecast_rows);
        row[5] = Seconds(forecast[shape]);
        row[6] = forecast_over ? "EXCEEDED" : "within";
      }
      tables.back().rows.push_back(row);
      over_budget += over;
      text += line + "\n";
    }
  }

  int flagged = 0;
  int too_few = 0;  // benchmarks whose repetitions cannot reach significance
  std::string too_few_text;
  if (!baseline_path.empty()) {
    // Each benchmark against a reference of its kind measured in the same
    // run (ReferencesOf), and that ratio against the baseline's: a machine
    // that is slower or loaded slows both alike, a slower migration only
    // itself. One ratio
    // per repetition (each against the median of its reference's, whose
    // repetitions were shuffled among all the others), and a slowdown
    // flagged only when the median ratio grew past the threshold and the
    // ratios now are larger than the baseline's beyond chance (Mann-Whitney
    // U, one-sided, Holm's correction over all the benchmarks compared at
    // once): a busy loop's spike in one repetition moves neither.
    struct Compared {
      std::string key, ref_key;
      double now = 0, was = 0, change = 0, p = 1;
      size_t n_now = 0, n_was = 0;
    };
    std::vector<Compared> compared;
    std::string no_reference;
    // Each repetition of `r` against the median of `ref`'s.
    auto ratios = [](const Result& r, const Result& ref) {
      std::vector<double> out;
      const double by = harness::stats::Median(ref.runs);
      if (by > 0)
        for (double seconds : r.runs) out.push_back(seconds / by);
      return out;
    };
    for (const auto& [key, r] : results) {
      auto it = base.find(key);
      // The probes are references, not judged: their time is the machine's (and initdb's).
      if (it == base.end() || it->second.seconds <= 0 || r.family == "BM_Calibrate" || r.family == "BM_InitDb")
        continue;
      std::string ref_key;
      for (const std::string& candidate : ReferencesOf(r)) {
        auto n = results.find(candidate), b = base.find(candidate);
        if (n != results.end() && b != base.end() && n->second.seconds > 0 && b->second.seconds > 0) {
          ref_key = candidate;
          break;
        }
      }
      if (ref_key.empty()) {
        no_reference += (no_reference.empty() ? "" : ", ") + key;
        continue;
      }
      auto ref_now = results.find(ref_key);
      auto ref_base = base.find(ref_key);
      const std::vector<double> now = ratios(r, ref_now->second), was = ratios(it->second, ref_base->second);
      if (now.empty() || was.empty()) continue;
      Compared c{key, ref_key};
      c.now = harness::stats::Median(now);
      c.was = harness::stats::Median(was);
      c.change = c.now / c.was;
      c.p = harness::stats::MannWhitneyGreaterP(was, now);
      c.n_now = now.size();
      c.n_was = was.size();
      compared.push_back(c);
    }
    std::vector<double> ps;
    for (const auto& c : compared) ps.push_back(c.p);
    const std::vector<bool> significant = harness::stats::HolmSignificant(ps, alpha);
    const double strictest = alpha / static_cast<double>(std::max<size_t>(1, compared.size()));
    // The repetitions a benchmark needs on each side so that its slowdown,
    // however clear, can pass Holm's first (strictest) threshold.
    size_t needed = 1;
    while (needed < 100 && harness::stats::SmallestP(needed, needed) > strictest) ++needed;
    const std::string heading = fmt::format(
        "Against the baseline {} (each as a ratio to its reference in the same run, the median of its "
        "repetitions; flagged when that ratio grew more than {:.0f}% and significantly: Mann-Whitney U, "
        "one-sided, alpha {} with Holm's correction over the {} compared)",
        baseline_path, threshold, alpha, compared.size());
    text += "\n" + heading + "\n";
    tables.push_back({heading,
                      {"benchmark", "ratio now", "ratio in the baseline", "reference (same run)", "change",
                       "p (runs now / baseline)", ""},
                      {},
                      {}});
    HtmlTable& table = tables.back();
    for (size_t k = 0; k < compared.size(); ++k) {
      const Compared& c = compared[k];
      const bool over = c.change > 1 + threshold / 100;
      const bool slow = over && significant[k];
      if (harness::stats::SmallestP(c.n_now, c.n_was) > strictest) {
        ++too_few;
        too_few_text += (too_few_text.empty() ? "" : ", ") + fmt::format("{} ({} / {})", c.key, c.n_now, c.n_was);
      }
      flagged += slow;
      text += fmt::format("  {:<51} {:>7.3f} vs {:>7.3f} of {}  x{:.2f}{}  (p {:.2g}, {} / {} runs)\n", c.key, c.now,
                          c.was, c.ref_key, c.change, slow ? "  SLOWER" : over ? "  over, not significant" : "", c.p,
                          c.n_now, c.n_was);
      table.rows.push_back({c.key, fmt::format("{:.3f}", c.now), fmt::format("{:.3f}", c.was), c.ref_key,
                            fmt::format("x{:.2f}", c.change), fmt::format("{:.2g} ({} / {})", c.p, c.n_now, c.n_was),
                            slow ? "SLOWER" : over ? "over the threshold, not significant" : "as before"});
    }
    if (too_few > 0)
      too_few_text = fmt::format(
          "too few repetitions to find a slowdown significant among {} benchmarks: {} (runs now / in the "
          "baseline); each needs {} on both sides (bench/run repeats each benchmark; record the baseline "
          "again with bench/run --refresh-baseline)",
          compared.size(), too_few_text, needed);
    auto note = [&](const std::string& line) {
      text += "  " + line + "\n";
      table.notes.push_back(line);
    };
    if (flagged == 0) note("nothing slower than the threshold");
    if (too_few > 0) note(too_few_text);
    if (!no_reference.empty())
      note("no reference in both runs, not compared: " + no_reference +
           " (a baseline without BM_Calibrate: refresh it with bench/run --refresh-baseline)");
    std::string missing;
    for (const auto& [key, r] : results)
      if (!base.count(key)) missing += (missing.empty() ? "" : ", ") + key;
    if (!missing.empty()) note("not in the baseline, not compared: " + missing);
  }
  std::cout << text << std::flush;
  if (!std::cout) {
    // A report that did not reach its reader (a full disk, a closed pipe) is no report.
    std::cerr << "error: could not write the report to standard output\n";
    written = false;
  }
  if (!html_path.empty()) {
    std::string html =
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>Migration 002 timing report</title>"
        "<style>body{font-family:sans-serif;margin:2em;max-width:70em}"
        "table{border-collapse:collapse;margin:0.5em 0 1em}"
        "th,td{border:1px solid #ccc;padding:0.25em 0.6em;text-align:left}"
        "th{background:#f0f0f0}td.num,th.num{text-align:right;font-variant-numeric:tabular-nums}"
        "td.bad{color:#b00;font-weight:bold}td.good{color:#070}h2{font-size:1.15em;margin-top:1.5em}"
        "</style></head><body><h1>Migration 002 timing report</h1>\n";
    if (!versus.empty()) {
      html += "<h2>Our upgrade against the other approach and the baseline (time against chunks, log-log)</h2>\n" +
              Svg(versus, "chunks (code_chunks rows)");
      if (!versus_note.empty()) html += "<p>" + Escape(versus_note) + "</p>\n";
    }
    if (!steps_chart.empty())
      html += "<h2>Each step of our upgrade, quickstart shape (time against chunks, log-log)</h2>\n" +
              Svg(steps_chart, "chunks (code_chunks rows)");
    for (const HtmlTable& t : tables) html += RenderTable(t);
    write(html_path, html + "</body></html>\n");
  }
  if (gate && too_few > 0 && flagged == 0 && over_budget == 0) {
    // A gate that could not have flagged anything has not passed.
    std::cerr << "error: the gate cannot judge: " << too_few_text << "\n";
    return 2;
  }
  if (gate && (flagged > 0 || over_budget > 0)) {
    if (flagged > 0)
      std::cerr << flagged << " benchmark(s) slower than the baseline by more than " << threshold
                << "%, significantly across their repetitions\n";
    if (over_budget > 0)
      std::cerr << "our upgrade exceeds the " << harness::report::kBudgetSeconds
                << " s budget (FR-031) on " << over_budget << " shape(s)\n";
    return 1;
  }
  return written ? 0 : 3;
}
