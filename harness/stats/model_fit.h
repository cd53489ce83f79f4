// Time against rows: a least-squares line through measured (rows, seconds)
// points, its error on those points, and the time it predicts at a
// production size. Used by the bench report and by verify.
#pragma once

#include <algorithm>
#include <string>
#include <vector>

namespace harness::stats {

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

// A step's model, chosen from what it did to the tables (as classified by
// the benchmark: "catalog", "index-TABLE", "scan-TABLE", "rewrite-TABLE"...):
// a step that only touches the catalog costs the same at any size
// (constant: the mean); an index build sorts, n log n; anything else reads
// or writes every row, a line, through the origin when the best line would
// start below zero. A fitted slope never falls below zero (more
// rows never take less time; a falling fit is noise, and the step is taken
// as constant). `unreliable` says why the forecast should not be trusted,
// empty when it can: fewer than three sizes measured, or a fit that misses
// a measured point of 10 ms or more (shorter ones are timer noise) by more
// than `max_error` (relative).
enum class StepModel { kConstant, kLinear, kNLogN };
StepModel ModelOf(const std::string& kind);

struct StepFit {
  StepModel model = StepModel::kLinear;
  // Through (x, seconds), x being the rows (linear) or rows * log2(rows)
  // (n log n); slope 0 when constant.
  LinearFit line;
  bool constant = false;
  std::string unreliable;
  double Predict(double rows) const;
  // "constant 0.0021 s" / "0.0021 s + 6.5e-07 s/row (...)" / "0.0021 s +
  // 3.1e-08 s per row*log2(rows) (...)", then "; unreliable: ..."
  std::string Describe() const;
};
StepFit FitStep(const std::vector<Sample>& samples, StepModel model, double max_error = 0.25);
// What `fit` forecasts at `rows`, never below the slowest time measured at
// the largest size of `samples` at or under `rows`: more rows never take
// less time (a constant fit is the mean of its points; a forecast at the
// size measured is at least what was measured there).
double ForecastAt(const StepFit& fit, const std::vector<Sample>& samples, double rows);
// The old form: catalog-only or a line.
inline StepFit FitStep(const std::vector<Sample>& samples, bool catalog_only, double max_error = 0.25) {
  return FitStep(samples, catalog_only ? StepModel::kConstant : StepModel::kLinear, max_error);
}

}  // namespace harness::stats
