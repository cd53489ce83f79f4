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

}  // namespace harness::report
