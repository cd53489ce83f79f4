// Catalog snapshots and their diff: what "the downgrade is exact" compares.
#include <gtest/gtest.h>

#include "harness/inspect/catalog.h"
#include "scenarios/support/test_env.h"

namespace harness::testing {
namespace {

constexpr const char* kInList =
    "CREATE TABLE t (status varchar(20) CONSTRAINT t_status_check "
    "CHECK (status IN ('open', 'closed')))";
// What pg_dump writes for the IN list above, and a restore stores.
constexpr const char* kDumpedInList =
    "CREATE TABLE t (status varchar(20) CONSTRAINT t_status_check "
    "CHECK ((status)::text = ANY (ARRAY[('open'::character varying)::text, "
    "('closed'::character varying)::text])))";

std::string RawDefinition(const TestDatabase& db) {
  return db.Scalar("SELECT pg_get_constraintdef(oid) FROM pg_constraint WHERE conname = "
                   "'t_status_check'");
}

// Regression: `verify --into-embedded` rehearses on a pg_dump/pg_restore
// copy, whose CHECK constraints the catalog prints differently from the ones
// the downgrade recreates; the rollback's catalog diff must not call that a
// difference.
TEST(CatalogDiff, ADumpAndRestoreSpellingOfACheckIsNotADifference) {
  TestDatabase original("base"), restored("base");
  original.Exec(kInList);
  restored.Exec(kDumpedInList);
  ASSERT_NE(RawDefinition(original), RawDefinition(restored))
      << "the server no longer prints the two spellings differently; this test proves nothing";
  auto diff = inspect::Diff(original.Snapshot(), restored.Snapshot());
  EXPECT_TRUE(diff.empty()) << JoinLines(diff);
}

TEST(CatalogDiff, ADifferentCheckIsADifference) {
  TestDatabase a("base"), b("base");
  a.Exec(kInList);
  b.Exec("CREATE TABLE t (status varchar(20) CONSTRAINT t_status_check "
         "CHECK (status IN ('open', 'closed', 'stale')))");
  auto diff = inspect::Diff(a.Snapshot(), b.Snapshot());
  ASSERT_EQ(diff.size(), 1u) << JoinLines(diff);
  EXPECT_NE(diff[0].find("~ constraint t.t_status_check"), std::string::npos) << diff[0];
  EXPECT_NE(diff[0].find("stale"), std::string::npos) << diff[0];
}

TEST(CatalogDiff, SeesColumnsDefaultsNullabilityIndexesAndValidation) {
  TestDatabase a("base"), b("base");
  a.Exec("CREATE TABLE t (id int PRIMARY KEY, n int NOT NULL DEFAULT 1, s text);"
         "CREATE INDEX t_s ON t (s); ALTER TABLE t ADD CONSTRAINT t_n CHECK (n > 0)");
  b.Exec("CREATE TABLE t (id int PRIMARY KEY, n bigint DEFAULT 2, s text);"
         "CREATE INDEX t_s ON t (s) WHERE s IS NOT NULL;"
         "ALTER TABLE t ADD CONSTRAINT t_n CHECK (n > 0) NOT VALID");
  auto diff = inspect::Diff(a.Snapshot(), b.Snapshot());
  std::string all = JoinLines(diff);
  EXPECT_EQ(diff.size(), 3u) << all;
  EXPECT_NE(all.find("~ column t.n: #2 integer NOT NULL DEFAULT 1 -> #2 bigint DEFAULT 2"),
            std::string::npos) << all;
  EXPECT_NE(all.find("WHERE (s IS NOT NULL)"), std::string::npos) << all;
  EXPECT_NE(all.find("(not validated)"), std::string::npos) << all;
}

}  // namespace
}  // namespace harness::testing
