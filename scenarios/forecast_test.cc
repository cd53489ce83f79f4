// The per-step forecast model (harness/report/forecast.h): a catalog step
// is constant, any other a line that never falls, and the fit says when it
// cannot be trusted.
#include <gtest/gtest.h>

#include "harness/report/forecast.h"

namespace harness::testing {
namespace {

using report::FitStep;
using report::Sample;

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

}  // namespace
}  // namespace harness::testing
