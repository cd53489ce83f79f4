// Time against rows: a least-squares line through measured (rows, seconds)
// points, its error on those points, and the time it predicts at a
// production size. Used by the bench report and by verify.
#pragma once

#include <string>
#include <vector>

namespace harness::report {

struct Sample {
  double rows = 0;
  double seconds = 0;
};

struct LinearFit {
  double intercept = 0;  // seconds
  double slope = 0;      // seconds per row
  double rms_error = 0;  // seconds, on the fitted points
  double max_relative_error = 0;  // worst |fit - measured| / measured, on the fitted points
  int points = 0;
  double Predict(double rows) const { return intercept + slope * rows; }
  // "0.0021 s + 6.5e-07 s/row (3 points, rms 0.004 s, worst 12%)"
  std::string Describe() const;
};

// Needs at least one point; with one, the line goes through the origin.
LinearFit FitLinear(const std::vector<Sample>& samples);

}  // namespace harness::report
