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

#include "bench/report_gate.h"
#include "bench/report_html.h"
#include "bench/report_results.h"
#include "bench/service_002.h"
#include "harness/engine/revision_graph.h"
#include "harness/sys/files.h"
#include "harness/stats/model_fit.h"
#include "harness/report/rehearsal_report.h"
#include "harness/stats/significance.h"

namespace {

using namespace harness::bench_report;
using harness::stats::FitLinear;
using harness::stats::LinearFit;
using harness::stats::Sample;

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
    GateComparison g = CompareWithBaseline(results, base, baseline_path, threshold, alpha);
    text += g.text;
    tables.push_back(std::move(g.table));
    flagged = g.flagged;
    too_few = g.too_few;
    too_few_text = g.too_few_text;
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
