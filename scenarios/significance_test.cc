// The statistics of the benchmark gate (harness/stats/significance.h):
// exact Mann-Whitney p-values against counts done by hand over every
// ordering, the normal approximation against the exact one, Holm's
// step-down against its definition.
#include "harness/stats/significance.h"

#include <vector>

#include <gtest/gtest.h>

namespace harness::testing {
namespace {

using stats::HolmSignificant;
using stats::MannWhitneyGreaterP;
using stats::Median;
using stats::SmallestP;

TEST(MannWhitney, ExactTailsMatchEveryOrderingCounted) {
  // All 5 later above all 5 earlier: 1 ordering of C(10, 5) = 252.
  EXPECT_DOUBLE_EQ(MannWhitneyGreaterP({1, 2, 3, 4, 5}, {6, 7, 8, 9, 10}), 1.0 / 252);
  // 3 against 3: 1 of 20 (the two-sided 0.10 of the issue, halved).
  EXPECT_DOUBLE_EQ(MannWhitneyGreaterP({1, 2, 3}, {4, 5, 6}), 1.0 / 20);
  // Interleaved 1 3 5 7 / 2 4 6 8: U = 10 of 16; 24 of the 70 orderings reach it.
  EXPECT_NEAR(MannWhitneyGreaterP({1, 3, 5, 7}, {2, 4, 6, 8}), 24.0 / 70, 1e-12);
  // Reversed: every later below every earlier, the tail is everything.
  EXPECT_DOUBLE_EQ(MannWhitneyGreaterP({6, 7, 8}, {1, 2, 3}), 1.0);
  // Samples of different sizes: 2 later above 4 earlier, 1 of C(6, 2) = 15.
  EXPECT_DOUBLE_EQ(MannWhitneyGreaterP({1, 2, 3, 4}, {5, 6}), 1.0 / 15);
  EXPECT_DOUBLE_EQ(MannWhitneyGreaterP({}, {1}), 1.0);
}

TEST(MannWhitney, OneOutlierIsNotASlowdown) {
  // One repetition three times slower (a busy loop's spike) among seven as
  // before: nowhere near significant, where the mean grew by a third.
  const std::vector<double> before = {1.00, 1.02, 0.98, 1.01, 0.99, 1.03, 0.97, 1.00};
  const std::vector<double> now = {1.01, 0.99, 3.00, 1.00, 0.98, 1.02, 1.00, 0.97};
  EXPECT_GT(MannWhitneyGreaterP(before, now), 0.2);
  EXPECT_DOUBLE_EQ(Median(now), 1.0);
  // Every repetition slower: significant at 1 / C(16, 8).
  const std::vector<double> slower = {1.31, 1.29, 1.35, 1.30, 1.28, 1.33, 1.32, 1.30};
  EXPECT_DOUBLE_EQ(MannWhitneyGreaterP(before, slower), 1.0 / 12870);
}

TEST(MannWhitney, TheNormalApproximationMeetsTheExactTail) {
  // 31 against 31 goes to the approximation; 30 against 30 is exact. The
  // same pattern (every third later value below its earlier neighbour) at
  // both sizes gives tails within a few percent of each other (0.183 and
  // 0.184, by a count done apart).
  auto samples = [](int n, std::vector<double>& earlier, std::vector<double>& later) {
    for (int i = 0; i < n; ++i) {
      earlier.push_back(i);
      later.push_back(i + (i % 3 == 0 ? -0.5 : 0.5) + 2);
    }
  };
  std::vector<double> e30, l30, e31, l31;
  samples(30, e30, l30);
  samples(31, e31, l31);
  const double exact = MannWhitneyGreaterP(e30, l30), approx = MannWhitneyGreaterP(e31, l31);
  EXPECT_GT(exact, 0.0);
  EXPECT_LT(exact, 0.5);
  EXPECT_NEAR(approx / exact, 1.0, 0.05) << exact << " " << approx;
}

TEST(MannWhitney, SmallestPIsOneOrderingOfAll) {
  EXPECT_DOUBLE_EQ(SmallestP(3, 3), 1.0 / 20);
  EXPECT_DOUBLE_EQ(SmallestP(8, 8), 1.0 / 12870);
  EXPECT_DOUBLE_EQ(SmallestP(1, 1), 0.5);
}

TEST(Holm, StepsDownUntilTheFirstThatFails) {
  // alpha 0.05 over 4: the smallest against 0.0125, then 0.05/3, 0.025, 0.05.
  EXPECT_EQ(HolmSignificant({0.01, 0.04, 0.016, 0.5}, 0.05), (std::vector<bool>{true, false, true, false}));
  // Each passes its step: all three.
  EXPECT_EQ(HolmSignificant({0.02, 0.001, 0.03}, 0.05), (std::vector<bool>{true, true, true}));
  // The smallest fails its threshold (0.05 / 3): nothing is, whatever the rest.
  EXPECT_EQ(HolmSignificant({0.02, 0.018, 0.03}, 0.05), (std::vector<bool>{false, false, false}));
  EXPECT_EQ(HolmSignificant({0.02, 0.03}, 0.01), (std::vector<bool>{false, false}));
  EXPECT_TRUE(HolmSignificant({}, 0.05).empty());
}

}  // namespace
}  // namespace harness::testing
