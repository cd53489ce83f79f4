// Live traffic during migration 002: a reader and a writer on repositories
// and code_chunks run before, during and after the upgrade. 002 takes both
// tables' ACCESS EXCLUSIVE locks in step 1 and holds them to the commit (one
// transaction); traffic must be held up no longer than that, fail never,
// and go on at normal speed afterwards. The figures are printed per step.
#include <gtest/gtest.h>

#include <fmt/format.h>
#include <pqxx/pqxx>

#include "harness/codesearch/generator.h"
#include "harness/codesearch/live_traffic.h"
#include "harness/codesearch/shape.h"
#include "harness/pg/connection.h"
#include "scenarios/support/test_env.h"

namespace harness::testing {
namespace {

using codesearch::TrafficClock;

double Seconds(TrafficClock::time_point a, TrafficClock::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}

void UpgradeUnderTraffic(Shape shape, int repositories, int chunks_per_repo) {
  TestDatabase db("005", shape);
  {
    pg::Connection conn(db.url());
    codesearch::GeneratorOptions go;
    go.repositories = repositories;
    go.chunks_per_repo = chunks_per_repo;
    codesearch::Generate(conn, go);
  }
  codesearch::UpgradeUnderTraffic u = codesearch::RunUpgradeUnderTraffic(db.url(), Chain());
  const double migration = Seconds(u.start, u.end);

  std::string table = fmt::format(
      "upgrade of {} chunks ({} shape) under live traffic: {:.3f} s\n"
      "  step                                          seconds  lock wait  tables locked  "
      "reader held  writer held\n",
      static_cast<long long>(repositories) * chunks_per_repo, codesearch::ShapeName(shape), migration);
  double locked_seconds = 0;
  for (const auto& w : u.steps) {
    auto r = codesearch::Window(u.reader, w.start, w.end);
    auto wr = codesearch::Window(u.writer, w.start, w.end);
    table += fmt::format("  {:>2}. {:<42} {:>7.3f}  {:>9.3f}  {:<13}  {:>9.3f} s  {:>9.3f} s\n",
                         w.step.index, w.step.name, w.step.seconds, w.step.lock_wait_seconds,
                         w.tables_locked ? "yes" : "no", r.held_seconds, wr.held_seconds);
    // Step 1 may wait for the traffic's own locks first: held only after.
    if (w.tables_locked) locked_seconds += w.step.work_seconds();
  }
  auto during_r = codesearch::Window(u.reader, u.start, u.end);
  auto during_w = codesearch::Window(u.writer, u.start, u.end);
  table += fmt::format(
      "  lock-hold {:.3f} s; longest reader operation {:.3f} s, longest writer operation {:.3f} s; "
      "{} reads and {} writes in all\n",
      locked_seconds, during_r.longest_seconds, during_w.longest_seconds, u.reader.ops.size(),
      u.writer.ops.size());
  std::printf("%s", table.c_str());
  ::testing::Test::RecordProperty("lock_hold_seconds", std::to_string(locked_seconds));
  ::testing::Test::RecordProperty("longest_reader_wait_seconds",
                                  std::to_string(during_r.longest_seconds));
  ::testing::Test::RecordProperty("longest_writer_wait_seconds",
                                  std::to_string(during_w.longest_seconds));

  // Nothing failed on either side.
  EXPECT_EQ(u.reader.failures, 0) << u.reader.first_error;
  EXPECT_EQ(u.writer.failures, 0) << u.writer.first_error;
  // Traffic ran all through: before the migration and after it.
  for (const auto* log : {&u.reader, &u.writer}) {
    int before = 0, after = 0;
    for (const auto& op : log->ops) {
      before += op.end < u.start;
      after += op.start > u.end;
    }
    EXPECT_GT(before, 0) << log->role;
    EXPECT_GT(after, 0) << log->role;
  }
  // From step 1 on, both tables are locked until the commit.
  ASSERT_EQ(u.steps.size(), 10u);
  for (const auto& w : u.steps) EXPECT_TRUE(w.tables_locked) << w.step.name;
  // Held up at most as long as the migration ran (plus 0.3 s of scheduling
  // slack on a busy 2-core machine: an operation itself takes milliseconds),
  // never stalled beyond it. A lock kept past the commit (a session left
  // idle in transaction) stalls them by its length.
  EXPECT_LE(during_r.longest_seconds, migration + 0.3);
  EXPECT_LE(during_w.longest_seconds, migration + 0.3);
  // Afterwards, the writes of the live session are there and 002 holds.
  EXPECT_EQ(db.Scalar("SELECT count(*) FROM " + codesearch::SqlFor(shape).chunk_to_repository +
                      " WHERE c.project_id <> r.project_id"),
            "0");
}

// Both shapes: on the production one the reader counts a repository's
// chunks through code_files, which 002 locks in SHARE mode only.
class LiveTraffic : public ::testing::TestWithParam<Shape> {};
INSTANTIATE_TEST_SUITE_P(Shapes, LiveTraffic,
                         ::testing::Values(Shape::kQuickstart, Shape::kProduction), ShapeTestName);

TEST_P(LiveTraffic, IsHeldUpOnlyWhileTheUpgradeRuns) { UpgradeUnderTraffic(GetParam(), 100, 100); }

// HARNESS_SLOW_TESTS: the same at a million chunks.
class SlowLiveTraffic : public ::testing::TestWithParam<Shape> {};
INSTANTIATE_TEST_SUITE_P(Shapes, SlowLiveTraffic,
                         ::testing::Values(Shape::kQuickstart, Shape::kProduction), ShapeTestName);

TEST_P(SlowLiveTraffic, IsHeldUpOnlyWhileTheUpgradeOfAMillionChunksRuns) {
  UpgradeUnderTraffic(GetParam(), 1000, 1000);
}

}  // namespace
}  // namespace harness::testing
