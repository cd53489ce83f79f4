// The per-step forecast model (harness/stats/model_fit.h): a catalog step
// is constant, any other a line that never falls, and the fit says when it
// cannot be trusted.
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "harness/stats/model_fit.h"

namespace harness::testing {
namespace {

using stats::FitStep;
using stats::Sample;

TEST(ForecastModel, ACatalogStepCostsTheSameAtAnySize) {
  auto fit = FitStep({{10'000, 0.002}, {100'000, 0.003}, {1'000'000, 0.002}}, /*catalog_only=*/true);
  EXPECT_TRUE(fit.constant);
  EXPECT_NEAR(fit.Predict(10'000'000), 0.00233, 1e-4);
  EXPECT_EQ(fit.unreliable, "");
}

TEST(ForecastModel, AScanGrowsWithTheRows) {
  auto fit = FitStep({{10'000, 0.010}, {100'000, 0.100}, {1'000'000, 1.0}}, false);
  EXPECT_FALSE(fit.constant);
  EXPECT_NEAR(fit.Predict(10'000'000), 10.0, 0.01);
  EXPECT_EQ(fit.unreliable, "");
}

// A falling line is noise: more rows never take less time.
TEST(ForecastModel, AFallingLineIsNeverForecastBelowItsMean) {
  auto fit = FitStep({{10'000, 0.030}, {100'000, 0.020}, {1'000'000, 0.010}}, false);
  EXPECT_TRUE(fit.constant);
  EXPECT_NEAR(fit.Predict(10'000'000), 0.020, 1e-9);
  EXPECT_GE(fit.Predict(1e12), 0.0);
}

TEST(ForecastModel, FewerThanThreeSizesOrABadFitIsUnreliable) {
  EXPECT_EQ(FitStep({{10'000, 0.01}, {10'000, 0.011}}, false).unreliable, "1 size measured");
  EXPECT_EQ(FitStep({{10'000, 0.01}, {100'000, 0.1}}, false).unreliable, "2 sizes measured");
  auto bent = FitStep({{10'000, 0.05}, {100'000, 0.06}, {1'000'000, 1.0}}, false);
  EXPECT_NE(bent.unreliable.find("the line misses a measured point of 10 ms or more by "), std::string::npos)
      << bent.unreliable;
  // Points under 10 ms are timer noise, not a bad fit.
  EXPECT_EQ(FitStep({{10'000, 0.001}, {100'000, 0.004}, {1'000'000, 0.030}}, false).unreliable, "");
}

// A line that would start below zero (the largest size dominates a least-
// squares fit) goes through the origin: no step takes negative time, and
// the smaller sizes are no longer forecast at nothing.
TEST(ForecastModel, ALineNeverStartsBelowZero) {
  auto fit = FitStep({{100'000, 0.050}, {1'000'000, 0.44}, {10'000'000, 5.9}}, stats::StepModel::kLinear);
  EXPECT_EQ(fit.line.intercept, 0.0);
  EXPECT_GT(fit.Predict(100'000), 0.04);
  EXPECT_NEAR(fit.Predict(10'000'000), 5.9, 0.1);
}

// The model follows what the step did: the benchmark's classification.
TEST(ForecastModel, WhatAStepDidChoosesItsModel) {
  EXPECT_EQ(stats::ModelOf("catalog"), stats::StepModel::kConstant);
  EXPECT_EQ(stats::ModelOf("index-repositories"), stats::StepModel::kNLogN);
  EXPECT_EQ(stats::ModelOf("scan-code_chunks"), stats::StepModel::kLinear);
  EXPECT_EQ(stats::ModelOf("rewrite-code_chunks"), stats::StepModel::kLinear);
  EXPECT_EQ(stats::ModelOf("update-code_chunks+repositories"), stats::StepModel::kLinear);
  EXPECT_EQ(stats::ModelOf(""), stats::StepModel::kLinear);  // not classified: never constant
}

// An index build sorts: measured on n log n, it is forecast on n log n,
// above what a line through the same points says.
TEST(ForecastModel, AnIndexBuildGrowsAsNLogN) {
  auto cost = [](double n) { return 0.002 + 5e-9 * n * std::log2(n); };
  std::vector<Sample> measured;
  for (double n : {10'000.0, 100'000.0, 1'000'000.0}) measured.push_back({n, cost(n)});
  auto fit = FitStep(measured, stats::StepModel::kNLogN);
  EXPECT_FALSE(fit.constant);
  EXPECT_NEAR(fit.Predict(10'000'000), cost(10'000'000), 1e-6);
  EXPECT_EQ(fit.unreliable, "");
  EXPECT_NE(fit.Describe().find("n log n: "), std::string::npos) << fit.Describe();
  auto line = FitStep(measured, stats::StepModel::kLinear);
  EXPECT_LT(line.Predict(10'000'000), fit.Predict(10'000'000));
}


// A forecast at a size never comes out below what was measured at the
// largest size under it: a constant fit is the mean of its points (here
// the empty database's 2 ms and 21 ms at 10,000 rows), and a line through
// noise may fall; neither may forecast a million rows below 21 ms.
TEST(ForecastModel, AForecastIsNeverBelowTheTimeMeasuredAtASmallerSize) {
  const std::vector<Sample> measured = {{0, 0.002}, {10'000, 0.021}};
  const auto constant = FitStep(measured, stats::StepModel::kConstant);
  EXPECT_NEAR(constant.Predict(1'000'000), 0.0115, 1e-9);
  EXPECT_NEAR(stats::ForecastAt(constant, measured, 1'000'000), 0.021, 1e-12);
  const std::vector<Sample> falling = {{0, 0.030}, {10'000, 0.021}, {10'000, 0.025}};
  const auto line = FitStep(falling, stats::StepModel::kLinear);
  EXPECT_GE(line.line.slope, 0.0);
  EXPECT_TRUE(line.constant);  // a falling line is its points' mean, 25.3 ms, above 25 ms
  EXPECT_GE(stats::ForecastAt(line, falling, 100'000), 0.025);
  EXPECT_GE(stats::ForecastAt(FitStep({{0, 0.001}, {10'000, 0.030}, {10'000, 0.021}}, stats::StepModel::kConstant),
                               {{0, 0.001}, {10'000, 0.030}, {10'000, 0.021}}, 100'000),
            0.030);
  // At a smaller size the floor is that size's measurement, not the larger one's.
  EXPECT_NEAR(stats::ForecastAt(constant, measured, 0), 0.0115, 1e-9);
}

}  // namespace
}  // namespace harness::testing
