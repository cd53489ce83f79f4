#include "harness/stats/model_fit.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>

#include <fmt/format.h>

namespace harness::stats {

namespace {

// The fit's errors on the points it was fitted to.
void MeasureErrors(LinearFit& fit, const std::vector<Sample>& samples) {
  double sq = 0;
  fit.max_relative_error = 0;
  for (const auto& s : samples) {
    const double e = fit.Predict(s.rows) - s.seconds;
    sq += e * e;
    if (s.seconds > 0) fit.max_relative_error = std::max(fit.max_relative_error, std::abs(e) / s.seconds);
  }
  fit.rms_error = std::sqrt(sq / static_cast<double>(samples.size()));
}

}  // namespace

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
  MeasureErrors(fit, samples);
  return fit;
}

std::string LinearFit::Describe() const {
  return fmt::format("{:.4f} s + {:.3g} s/row ({} point{}, rms {:.4f} s, worst {:.0f}%)", intercept,
                     slope, points, points == 1 ? "" : "s", rms_error, 100 * max_relative_error);
}

StepModel ModelOf(const std::string& kind) {
  if (kind == "catalog") return StepModel::kConstant;
  if (kind.rfind("index-", 0) == 0) return StepModel::kNLogN;
  return StepModel::kLinear;
}

namespace {

// The x a model is a line in.
double ModelX(StepModel model, double rows) {
  return model == StepModel::kNLogN && rows > 1 ? rows * std::log2(rows) : rows;
}

}  // namespace

double StepFit::Predict(double rows) const {
  return std::max(0.0, line.Predict(ModelX(model, rows)));
}

StepFit FitStep(const std::vector<Sample>& samples, StepModel model, double max_error) {
  StepFit f;
  f.model = model;
  std::vector<Sample> in_x;
  for (const auto& s : samples) in_x.push_back({ModelX(model, s.rows), s.seconds});
  f.line = FitLinear(in_x);
  if (model != StepModel::kConstant && f.line.intercept < 0 && f.line.slope > 0) {
    // No step takes less than no time at no rows: through the origin
    // instead, the least-squares slope of seconds = slope * x.
    double sxx = 0, sxy = 0;
    for (const auto& s : in_x) {
      sxx += s.rows * s.rows;
      sxy += s.rows * s.seconds;
    }
    f.line.intercept = 0;
    f.line.slope = sxx > 0 ? sxy / sxx : 0;
    MeasureErrors(f.line, in_x);
  }
  double mean = 0;
  for (const auto& s : samples) mean += s.seconds;
  mean /= static_cast<double>(samples.size());
  if (model == StepModel::kConstant || f.line.slope < 0) {
    // Constant: the mean, whatever the size.
    f.constant = true;
    f.line.slope = 0;
    f.line.intercept = mean;
    MeasureErrors(f.line, samples);
  }
  std::vector<double> sizes;
  for (const auto& s : samples)
    if (std::find(sizes.begin(), sizes.end(), s.rows) == sizes.end()) sizes.push_back(s.rows);
  // How far the fit misses a point, relative to it, over the points long
  // enough to be more than timer noise (10 ms and more).
  double worst = 0;
  for (const auto& s : samples)
    if (s.seconds >= 0.010) worst = std::max(worst, std::abs(f.Predict(s.rows) - s.seconds) / s.seconds);
  if (sizes.size() < 3)
    f.unreliable = fmt::format("{} size{} measured", sizes.size(), sizes.size() == 1 ? "" : "s");
  else if (worst > max_error && !f.constant)
    f.unreliable = fmt::format("the {} misses a measured point of 10 ms or more by {:.0f}%",
                               f.model == StepModel::kNLogN ? "n log n fit" : "line", 100 * worst);
  return f;
}

double ForecastAt(const StepFit& fit, const std::vector<Sample>& samples, double rows) {
  double at = -1, floor = 0;
  for (const auto& s : samples) {
    if (s.rows > rows) continue;
    if (s.rows > at) {
      at = s.rows;
      floor = s.seconds;
    } else if (s.rows == at) {
      floor = std::max(floor, s.seconds);
    }
  }
  return std::max(fit.Predict(rows), floor);
}

std::string StepFit::Describe() const {
  std::string out;
  if (constant)
    out = fmt::format("constant {:.4f} s ({} point{})", line.intercept, line.points, line.points == 1 ? "" : "s");
  else if (model == StepModel::kNLogN)
    out = fmt::format("n log n: {:.4f} s + {:.3g} s per row*log2(rows) ({} point{}, rms {:.4f} s, worst {:.0f}%)",
                      line.intercept, line.slope, line.points, line.points == 1 ? "" : "s", line.rms_error,
                      100 * line.max_relative_error);
  else
    out = line.Describe();
  if (!unreliable.empty()) out += "; unreliable: " + unreliable;
  return out;
}

}  // namespace harness::stats
