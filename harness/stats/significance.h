// Whether one set of timings is slower than another beyond chance: the
// Mann-Whitney U test (rank-based, as Google Benchmark's compare.py uses,
// robust to the long tail a busy machine gives timings), and Holm's
// correction for judging many benchmarks at once.
#pragma once

#include <cstddef>
#include <vector>

namespace harness::stats {

// The one-sided p-value that `later` is stochastically larger than
// `earlier` (H0: both from one distribution): the exact distribution of U
// for samples of up to 30 each, the normal approximation (with continuity
// and tie corrections) beyond. A tie counts one half. 1 when either is empty.
double MannWhitneyGreaterP(const std::vector<double>& earlier, const std::vector<double>& later);

// The smallest p-value samples of sizes n and m can give (all of `later`
// above all of `earlier`): 1 / C(n + m, n). Fewer repetitions than it takes
// to go below a test's threshold can never be significant.
double SmallestP(size_t n, size_t m);

// Holm's step-down procedure at family-wise error `alpha`: which of the
// p-values are significant when all of them are judged together.
std::vector<bool> HolmSignificant(const std::vector<double>& p, double alpha);

double Median(std::vector<double> values);

}  // namespace harness::stats
