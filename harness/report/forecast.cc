#include "harness/report/forecast.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>

#include <fmt/format.h>

namespace harness::report {

LinearFit FitLinear(const std::vector<Sample>& samples) {
  if (samples.empty()) throw std::invalid_argument("FitLinear needs at least one sample");
  LinearFit fit;
  fit.points = static_cast<int>(samples.size());
  double n = static_cast<double>(samples.size());
  double sx = 0, sy = 0, sxx = 0, sxy = 0;
  for (const auto& s : samples) {
    sx += s.rows;
    sy += s.seconds;
    sxx += s.rows * s.rows;
    sxy += s.rows * s.seconds;
  }
  double denom = n * sxx - sx * sx;
  if (samples.size() < 2 || std::abs(denom) < 1e-12) {
    fit.slope = sx > 0 ? sy / sx : 0;  // through the origin
    fit.intercept = sx > 0 ? 0 : sy / n;
  } else {
    fit.slope = (n * sxy - sx * sy) / denom;
    fit.intercept = (sy - fit.slope * sx) / n;
  }
  double sq = 0;
  for (const auto& s : samples) {
    double e = fit.Predict(s.rows) - s.seconds;
    sq += e * e;
    if (s.seconds > 0) fit.max_relative_error = std::max(fit.max_relative_error, std::abs(e) / s.seconds);
  }
  fit.rms_error = std::sqrt(sq / n);
  return fit;
}

std::string LinearFit::Describe() const {
  return fmt::format("{:.4f} s + {:.3g} s/row ({} point{}, rms {:.4f} s, worst {:.0f}%)", intercept,
                     slope, points, points == 1 ? "" : "s", rms_error, 100 * max_relative_error);
}

StepFit FitStep(const std::vector<Sample>& samples, bool catalog_only, double max_error) {
  StepFit f;
  f.line = FitLinear(samples);
  double mean = 0;
  for (const auto& s : samples) mean += s.seconds;
  mean /= static_cast<double>(samples.size());
  if (catalog_only || f.line.slope < 0) {
    // Constant: the mean, whatever the size.
    f.constant = true;
    f.line.slope = 0;
    f.line.intercept = mean;
    f.line.max_relative_error = 0;
    double sq = 0;
    for (const auto& s : samples) {
      const double e = mean - s.seconds;
      sq += e * e;
      if (s.seconds > 0) f.line.max_relative_error = std::max(f.line.max_relative_error, std::abs(e) / s.seconds);
    }
    f.line.rms_error = std::sqrt(sq / static_cast<double>(samples.size()));
  }
  std::vector<double> sizes;
  for (const auto& s : samples)
    if (std::find(sizes.begin(), sizes.end(), s.rows) == sizes.end()) sizes.push_back(s.rows);
  // How far the line misses a point, relative to it, over the points long
  // enough to be more than timer noise (10 ms and more).
  double worst = 0;
  for (const auto& s : samples)
    if (s.seconds >= 0.010) worst = std::max(worst, std::abs(f.line.Predict(s.rows) - s.seconds) / s.seconds);
  if (sizes.size() < 3)
    f.unreliable = fmt::format("{} size{} measured", sizes.size(), sizes.size() == 1 ? "" : "s");
  else if (worst > max_error && !f.constant)
    f.unreliable = fmt::format("the line misses a measured point of 10 ms or more by {:.0f}%", 100 * worst);
  return f;
}

std::string StepFit::Describe() const {
  std::string out = constant ? fmt::format("constant {:.4f} s ({} point{})", line.intercept, line.points,
                                           line.points == 1 ? "" : "s")
                             : line.Describe();
  if (!unreliable.empty()) out += "; unreliable: " + unreliable;
  return out;
}

}  // namespace harness::report
