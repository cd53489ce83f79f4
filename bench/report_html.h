// bench-report's HTML: tables and a log-log SVG chart, self-contained.
#pragma once

#include <string>
#include <vector>

#include "harness/stats/model_fit.h"

namespace harness::bench_report {

using harness::stats::Sample;

struct Series {
  std::string name;
  std::vector<Sample> points;
  int color = -1;       // index into the palette; -1: the series' own position
  bool dashed = false;  // the baseline's figures
};

// One table of the HTML report: the figures of one section of the text
// report, in columns.
struct HtmlTable {
  std::string title;
  std::vector<std::string> head;
  std::vector<std::vector<std::string>> rows;
  std::vector<std::string> notes;  // paragraphs under the table
};

std::string Seconds(double s);
std::string Escape(const std::string& s);
// A cell: figures right-aligned (not in a label column: revision 001),
// verdicts marked.
std::string HtmlCell(const char* tag, const std::string& v, bool label = false);
std::string RenderTable(const HtmlTable& t);
// 1000 -> "1K", 1e7 -> "10M": the chart's axis.
std::string RowsLabel(double rows);
// A log-log chart of time against rows, its legend under the plot: one
// line per series, the chart as tall as its legend needs, so that no name
// is ever cut off.
std::string Svg(const std::vector<Series>& series, const std::string& x_label);

}  // namespace harness::bench_report
