// Time against rows: a least-squares line through measured (rows, seconds)
// points, its error on those points, and the time it predicts at a
// production size. Used by the bench report and by verify.
#pragma once

#include <algorithm>
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

// A step's model, chosen from what it did to the tables: a step that only
// touches the catalog costs the same at any size (constant: the mean); any
// other grows with the rows (a line, its slope never below zero: more rows
// never take less time, a falling line being noise). `unreliable` says why
// the forecast should not be trusted, empty when it can: fewer than three
// sizes measured, or a line that misses a measured point of 10 ms or more
// (shorter ones are timer noise) by more than `max_error` (relative).
struct StepFit {
  LinearFit line;
  bool constant = false;
  std::string unreliable;
  double Predict(double rows) const { return std::max(0.0, line.Predict(rows)); }
  // "constant 0.0021 s" / "0.0021 s + 6.5e-07 s/row (...)", then "; unreliable: ..."
  std::string Describe() const;
};
StepFit FitStep(const std::vector<Sample>& samples, bool catalog_only, double max_error = 0.25);

}  // namespace harness::report
