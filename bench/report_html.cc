#include "bench/report_html.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <regex>

#include <fmt/format.h>

namespace harness::bench_report {

std::string Seconds(double s) {
  return s < 1 ? fmt::format("{:.1f} ms", s * 1000) : fmt::format("{:.2f} s", s);
}

std::string Escape(const std::string& s) {
  std::string out;
  for (char c : s) out += c == '<' ? "&lt;" : c == '>' ? "&gt;" : c == '&' ? "&amp;" : std::string(1, c);
  return out;
}

std::string HtmlCell(const char* tag, const std::string& v, bool label) {
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

std::string RowsLabel(double rows) {
  if (rows >= 1e9) return fmt::format("{:g}G", rows / 1e9);
  if (rows >= 1e6) return fmt::format("{:g}M", rows / 1e6);
  if (rows >= 1e3) return fmt::format("{:g}K", rows / 1e3);
  return fmt::format("{:g}", rows);
}

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

}  // namespace harness::bench_report
