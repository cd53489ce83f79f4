// The upgrade's time at a larger size, work time only (a wait for a lock
// depends on the other sessions, not on the rows). Each step of the
// measured upgrade is fitted by the model its effect calls for
// (stats/model_fit.h ModelOf of inspect::StepActivity::Label(): constant
// for a catalog-only step, n log n for an index build, a line for anything
// that reads or writes the rows: the model bench-report fits to the
// benchmarks), through an upgrade of an empty database (each step's fixed
// cost) and the upgrades measured here, and never forecast below what it
// took here; the steps are summed.
#pragma once

#include <optional>
#include <vector>

#include "harness/engine/migrator.h"
#include "harness/report/rehearsal_report.h"
#include "harness/verify/effects.h"

namespace harness::verify {

// `empty`: the upgrade of an empty database at the range's start (none:
// every step is scaled from here alone); `runs`: the upgrades measured at
// `here` rows; `effects`: the measured upgrade's, whose labels choose the
// models; `unit`: what the rows count ("chunks", "rows").
report::Rehearsal::Forecast ForecastUpgrade(const std::optional<std::vector<engine::StepTiming>>& empty,
                                            const std::vector<const engine::RunReport*>& runs,
                                            const std::vector<StepEffect>& effects, double here,
                                            long long rows, const std::string& unit);

}  // namespace harness::verify
