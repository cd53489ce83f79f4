#include "harness/verify/forecast.h"

#include <map>
#include <tuple>

#include <fmt/format.h>

#include "harness/stats/model_fit.h"

namespace harness::verify {

report::Rehearsal::Forecast ForecastUpgrade(const std::optional<std::vector<engine::StepTiming>>& empty,
                                            const std::vector<const engine::RunReport*>& runs,
                                            const std::vector<StepEffect>& effects, double here,
                                            long long rows, const std::string& unit) {
  using Key = std::tuple<std::string, int>;  // revision, step
  std::map<Key, std::string> labels;
  for (const auto& e : effects) labels[{e.step.revision, e.step.index}] = e.activity.Label();
  std::map<Key, std::vector<stats::Sample>> samples;
  int unwatched = 0;
  auto add = [&](const std::vector<engine::StepTiming>& steps, double at) {
    for (const auto& s : steps) {
      if (!labels.count({s.revision, s.index})) continue;  // not a step of the range
      samples[{s.revision, s.index}].push_back({at, s.work_seconds()});
      unwatched += !s.lock_wait_known;
    }
  };
  if (empty) add(*empty, 0);
  for (const auto* run : runs) add(run->steps, here);
  report::Rehearsal::Forecast f;
  f.rows = rows;
  f.unit = unit;
  int constant = 0, line = 0, nlogn = 0;
  std::string per_step;
  for (const auto& [key, points] : samples) {
    const std::string& label = labels.at(key);
    stats::StepFit fit = stats::FitStep(points, stats::ModelOf(label));
    // Without the empty database, a step that reads the rows is a line
    // through the origin and its time here.
    const double at = stats::ForecastAt(fit, points, static_cast<double>(rows));
    f.seconds += at;
    (fit.constant ? constant : fit.model == stats::StepModel::kNLogN ? nlogn : line) += 1;
    per_step += fmt::format("{}{} {}: {:.3f}s ({})", per_step.empty() ? "" : "; ", std::get<0>(key),
                            std::get<1>(key), at, fit.constant ? "constant" : label);
  }
  f.basis = fmt::format(
      "work time, lock waits excluded{}; a model per step from what it did ({} constant, {} line, {} n log n), "
      "fitted through {}; no step below its time here",
      unwatched ? fmt::format(" (but {} step run(s) not watched, counted whole)", unwatched) : std::string(),
      constant, line, nlogn,
      empty ? fmt::format("0 and {:.0f} {} (two sizes: a rough forecast)", here, unit)
            : fmt::format("{:.0f} {} alone (no empty database to measure the fixed costs)", here, unit));
  f.fit = per_step;
  return f;
}

}  // namespace harness::verify
