// The hard budget of FR-031: migration 002 at the quickstart's size (100
// repositories x 100 chunks) must finish within 5 minutes, measured through
// the real CLI on the embedded default. Speed goals live in bench/.
#include <gtest/gtest.h>

#include <fstream>

#include <nlohmann/json.hpp>

#include "scenarios/support/test_env.h"

namespace harness::testing {
namespace {

// The hard budget (FR-031) at the quickstart's size, through the real CLI.
TEST(Budget, DefaultEmbeddedRehearsalFitsFiveMinutes) {
  std::string json_path = ::testing::TempDir() + pg::UniqueDatabaseName("verify") + ".json";
  auto r = RunCli({"verify", "--report-json", json_path});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_CONTAINS(r.out, "All pre-migration checks passed (4/4)");
  EXPECT_CONTAINS(r.out, "All post-migration checks passed (8/8)");
  EXPECT_CONTAINS(r.out, "All post-rollback checks passed (7/7)");
  EXPECT_CONTAINS(r.out, "• Dropped tables' rows: tasks ");
  EXPECT_CONTAINS(r.out, "READY: migration 002 upgraded in");
  std::ifstream in(json_path);
  auto report = nlohmann::json::parse(in);
  std::remove(json_path.c_str());
  EXPECT_EQ(report["code_chunks"], 10000);
  double upgrade = report["upgrade"]["seconds"];
  std::printf("upgrade of 100 x 100 chunks: %.3f s of 300 s (margin %.1f%%)\n", upgrade,
              100.0 * (300 - upgrade) / 300);
  RecordProperty("upgrade_seconds", std::to_string(upgrade));
  EXPECT_LT(upgrade, 300.0);
}

}  // namespace
}  // namespace harness::testing
