#include "bench/report_gate.h"

#include <algorithm>

#include <fmt/format.h>

#include "harness/stats/significance.h"

namespace harness::bench_report {

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

GateComparison CompareWithBaseline(const std::map<std::string, Result>& results,
                                   const std::map<std::string, Result>& base, const std::string& baseline_path,
                                   double threshold, double alpha) {
  std::string text;
  std::vector<HtmlTable> tables;
  int flagged = 0;
  int too_few = 0;
  std::string too_few_text;
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
  return {text, tables.back(), flagged, too_few, too_few_text};
}

}  // namespace harness::bench_report
