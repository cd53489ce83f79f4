#include "harness/stats/significance.h"

#include <algorithm>
#include <cmath>
#include <numeric>

namespace harness::stats {

namespace {

// U of `later` over `earlier` counted in halves (a tie is 1), so that it
// stays an integer: the number of pairs (e, l) with l > e, twice, plus ties.
long long TwiceU(const std::vector<double>& earlier, const std::vector<double>& later) {
  long long u2 = 0;
  for (double l : later)
    for (double e : earlier) u2 += l > e ? 2 : l == e ? 1 : 0;
  return u2;
}

// How many of the C(n + m, n) equally likely orderings give each U (no
// ties), by the recurrence f(n, m, u) = f(n - 1, m, u - m) + f(n, m - 1, u):
// the largest value of all n + m is either one of the n (it beats all m)
// or one of the m.
std::vector<double> CountsOfU(size_t n, size_t m) {
  // f[j][u] for the current i, over j = 0..m.
  std::vector<std::vector<double>> f(m + 1);
  for (size_t j = 0; j <= m; ++j) f[j] = {1.0};  // i = 0: U = 0, one ordering
  for (size_t i = 1; i <= n; ++i) {
    std::vector<std::vector<double>> g(m + 1);
    g[0] = {1.0};  // j = 0: U = 0
    for (size_t j = 1; j <= m; ++j) {
      g[j].assign(i * j + 1, 0.0);
      for (size_t u = 0; u < f[j].size(); ++u) g[j][u + j] += f[j][u];  // largest among the n (i of them)
      for (size_t u = 0; u < g[j - 1].size(); ++u) g[j][u] += g[j - 1][u];
    }
    f = std::move(g);
  }
  return f[m];
}

}  // namespace

double MannWhitneyGreaterP(const std::vector<double>& earlier, const std::vector<double>& later) {
  const size_t n = later.size(), m = earlier.size();
  if (n == 0 || m == 0) return 1.0;
  const long long u2 = TwiceU(earlier, later);
  if (n <= 30 && m <= 30) {
    // U counts pairs where `later` wins; P(U >= observed) over all orderings.
    // With ties U is a half-integer: the orderings at or above its ceiling.
    const std::vector<double> counts = CountsOfU(n, m);
    const long long at_least = (u2 + 1) / 2;
    double tail = 0, total = 0;
    for (size_t u = 0; u < counts.size(); ++u) {
      total += counts[u];
      if (static_cast<long long>(u) >= at_least) tail += counts[u];
    }
    return tail / total;
  }
  // Normal approximation with the tie correction of the variance.
  std::vector<double> all(earlier);
  all.insert(all.end(), later.begin(), later.end());
  std::sort(all.begin(), all.end());
  double ties = 0;
  for (size_t i = 0; i < all.size();) {
    size_t j = i;
    while (j < all.size() && all[j] == all[i]) ++j;
    const double t = static_cast<double>(j - i);
    ties += t * t * t - t;
    i = j;
  }
  const double nn = static_cast<double>(n), mm = static_cast<double>(m), N = nn + mm;
  const double mean = nn * mm / 2;
  const double var = nn * mm / 12 * ((N + 1) - ties / (N * (N - 1)));
  if (var <= 0) return 1.0;
  const double z = (static_cast<double>(u2) / 2 - mean - 0.5) / std::sqrt(var);
  return 0.5 * std::erfc(z / std::sqrt(2.0));
}

double SmallestP(size_t n, size_t m) {
  double c = 1;  // C(n + m, n), built up as a product
  for (size_t k = 1; k <= n; ++k) c = c * static_cast<double>(m + k) / static_cast<double>(k);
  return 1 / c;
}

std::vector<bool> HolmSignificant(const std::vector<double>& p, double alpha) {
  std::vector<size_t> order(p.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return p[a] < p[b]; });
  std::vector<bool> out(p.size(), false);
  for (size_t k = 0; k < order.size(); ++k) {
    if (p[order[k]] > alpha / static_cast<double>(order.size() - k)) break;
    out[order[k]] = true;
  }
  return out;
}

double Median(std::vector<double> values) {
  if (values.empty()) return 0;
  std::sort(values.begin(), values.end());
  const size_t h = values.size() / 2;
  return values.size() % 2 ? values[h] : (values[h - 1] + values[h]) / 2;
}

}  // namespace harness::stats
