// bench-report's gate: each benchmark as a ratio to a reference of its own
// kind measured in the same run, against the baseline's ratio, flagged
// when it grew past the threshold and significantly across repetitions.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "bench/report_html.h"
#include "bench/report_results.h"

namespace harness::bench_report {

std::vector<std::string> ReferencesOf(const Result& r);

struct GateComparison {
  std::string text;   // the report's lines
  HtmlTable table;    // the same, for the HTML report
  int flagged = 0;    // benchmarks slower, significantly
  int too_few = 0;    // benchmarks whose repetitions cannot reach significance
  std::string too_few_text;
};
GateComparison CompareWithBaseline(const std::map<std::string, Result>& results,
                                   const std::map<std::string, Result>& base, const std::string& baseline_path,
                                   double threshold, double alpha);

}  // namespace harness::bench_report
