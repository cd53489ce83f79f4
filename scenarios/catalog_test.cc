// Catalog snapshots and their diff: what "the downgrade is exact" compares;
// and the golden snapshots that pin the schema at 005 and at 002.
//
// Golden catalogs: scenarios/golden/catalog_005.txt and catalog_002.txt hold
// the public schema of a fresh database at that revision as
// inspect::CatalogSnapshot::Entries() renders it ("key: description", one
// line per table, column, constraint, index, other relation and extension,
// sorted; '#' lines are comments). They were reviewed against DESIGN.md's
// table descriptions, so a migration edit that changes either schema (or a
// downgrade that does not recreate 005 exactly) fails here with the diff
// instead of passing against itself. Taken on PostgreSQL 15 without
// pgvector (code_chunks.embedding is real[]).
//
// To regenerate them after an intended schema change:
//   HARNESS_UPDATE_GOLDEN=1 ctest --test-dir build -R GoldenCatalog
// (or run build/scenarios/catalog_test --gtest_filter='*GoldenCatalog*'
// with the variable set); the cases then write the files and report
// SKIPPED. Run the tests again without it, and review
// `git diff scenarios/golden/` against DESIGN.md before committing them.
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>

#include "harness/inspect/catalog.h"
#include "scenarios/support/test_env.h"

namespace harness::testing {
namespace {

constexpr const char* kInList =
    "CREATE TABLE public.t (status varchar(20) CONSTRAINT t_status_check "
    "CHECK (status IN ('open', 'closed')))";
// What pg_dump writes for the IN list above, and a restore stores.
constexpr const char* kDumpedInList =
    "CREATE TABLE public.t (status varchar(20) CONSTRAINT t_status_check "
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
  b.Exec("CREATE TABLE public.t (status varchar(20) CONSTRAINT t_status_check "
         "CHECK (status IN ('open', 'closed', 'stale')))");
  auto diff = inspect::Diff(a.Snapshot(), b.Snapshot());
  ASSERT_EQ(diff.size(), 1u) << JoinLines(diff);
  EXPECT_NE(diff[0].find("~ constraint t.t_status_check"), std::string::npos) << diff[0];
  EXPECT_NE(diff[0].find("stale"), std::string::npos) << diff[0];
}

TEST(CatalogDiff, SeesColumnsDefaultsNullabilityIndexesAndValidation) {
  TestDatabase a("base"), b("base");
  a.Exec("CREATE TABLE public.t (id int PRIMARY KEY, n int NOT NULL DEFAULT 1, s text);"
         "CREATE INDEX t_s ON t (s); ALTER TABLE t ADD CONSTRAINT t_n CHECK (n > 0)");
  b.Exec("CREATE TABLE public.t (id int PRIMARY KEY, n bigint DEFAULT 2, s text);"
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

// The golden files live beside this test; found from the migrations
// directory the build passes in (both are in the source tree).
std::filesystem::path GoldenFile(const std::string& revision) {
  return MigrationsDir().parent_path() / "scenarios" / "golden" / ("catalog_" + revision + ".txt");
}

bool UpdateGolden() {
  const char* v = std::getenv("HARNESS_UPDATE_GOLDEN");
  return v && std::string(v) == "1";
}

void WriteGolden(const std::filesystem::path& file, const std::string& revision,
                 const std::map<std::string, std::string>& entries) {
  std::filesystem::create_directories(file.parent_path());
  std::ofstream out(file, std::ios::trunc);
  out << "# Public schema of a fresh database at revision " << revision
      << " (inspect::CatalogSnapshot::Entries()).\n"
      << "# Checked by scenarios/catalog_test.cc (GoldenCatalog); regenerate with\n"
      << "# HARNESS_UPDATE_GOLDEN=1 ctest --test-dir build -R GoldenCatalog, then review the diff.\n";
  for (const auto& [key, value] : entries) out << key << ": " << value << "\n";
  if (!out) throw std::runtime_error("cannot write " + file.string());
}

// Entries from a golden file; nullopt when it does not exist.
std::optional<std::map<std::string, std::string>> ReadGolden(const std::filesystem::path& file) {
  std::ifstream in(file);
  if (!in) return std::nullopt;
  std::map<std::string, std::string> out;
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') continue;
    auto sep = line.find(": ");  // keys ("column t.c", ...) never contain ": "
    if (sep == std::string::npos) throw std::runtime_error(file.string() + ": malformed line: " + line);
    out[line.substr(0, sep)] = line.substr(sep + 2);
  }
  return out;
}

struct GoldenCase {
  std::string name;
  std::string golden;     // catalog_<golden>.txt
  std::string start;      // a fresh database at this revision ...
  std::string downgrade;  // ... then downgraded to this one ("" for none)
};

class GoldenCatalog : public ::testing::TestWithParam<GoldenCase> {};

TEST_P(GoldenCatalog, MatchesTheCheckedInSnapshot) {
  const GoldenCase& c = GetParam();
  TestDatabase db(c.start);
  if (!c.downgrade.empty()) MigrateTo(db.url(), c.downgrade);
  ASSERT_EQ(db.Revision(), c.golden);
  const auto snapshot = db.Snapshot();
  if (snapshot.extensions.count("vector"))
    GTEST_SKIP() << "pgvector is installed (code_chunks.embedding is vector(768)); the golden "
                    "files describe the real[] variant";
  const auto entries = snapshot.Entries();
  const auto file = GoldenFile(c.golden);
  if (UpdateGolden() && c.downgrade.empty()) {
    WriteGolden(file, c.golden, entries);
    GTEST_SKIP() << "HARNESS_UPDATE_GOLDEN=1: wrote " << file << " (" << entries.size()
                 << " entries); review it against DESIGN.md";
  }
  auto golden = ReadGolden(file);
  ASSERT_TRUE(golden) << file << " is missing; create it with HARNESS_UPDATE_GOLDEN=1";
  auto diff = inspect::DiffEntries(*golden, entries);
  EXPECT_TRUE(diff.empty()) << "the schema at " << c.golden
                            << (c.downgrade.empty() ? "" : " (after downgrading from " + c.start + ")")
                            << " differs from " << file << " (- golden, + database, ~ changed):\n"
                            << JoinLines(diff)
                            << "\nif the change is intended, regenerate with HARNESS_UPDATE_GOLDEN=1 "
                               "(see the top of catalog_test.cc) and review it against DESIGN.md";
}

INSTANTIATE_TEST_SUITE_P(
    Revisions, GoldenCatalog,
    ::testing::Values(GoldenCase{"At005", "005", "005", ""}, GoldenCase{"At002", "002", "head", ""},
                      GoldenCase{"At005AfterDowngradeFrom002", "005", "head", "005"}),
    [](const auto& p) { return p.param.name; });

// The golden files themselves say what DESIGN.md says (a regeneration that
// silently accepted a wrong schema fails here).
TEST(GoldenCatalogContent, StatesDesignFacts) {
  if (UpdateGolden()) GTEST_SKIP() << "HARNESS_UPDATE_GOLDEN=1: the files are being rewritten";
  auto at005 = ReadGolden(GoldenFile("005"));
  auto at002 = ReadGolden(GoldenFile("002"));
  ASSERT_TRUE(at005 && at002);
  int tables_005 = 0, tables_002 = 0;
  for (const auto& [key, value] : *at005) tables_005 += key.rfind("table ", 0) == 0;
  for (const auto& [key, value] : *at002) tables_002 += key.rfind("table ", 0) == 0;
  EXPECT_EQ(tables_005, 11);
  EXPECT_EQ(tables_002, 2);
  EXPECT_EQ(at005->count("column repositories.project_id"), 0u);
  EXPECT_EQ(at002->at("column repositories.project_id"),
            "#8 character varying(50) NOT NULL DEFAULT 'default'::character varying");
  EXPECT_EQ(at002->at("column code_chunks.project_id"), "#10 character varying(50) NOT NULL");
  EXPECT_EQ(at002->at("index repositories.idx_project_repository"),
            "CREATE INDEX idx_project_repository ON public.repositories USING btree (project_id, id)");
  EXPECT_EQ(at005->at("index vendor_extractors.idx_vendor_name_lower"),
            "CREATE UNIQUE INDEX idx_vendor_name_lower ON public.vendor_extractors USING btree "
            "(lower((name)::text))");
}

}  // namespace
}  // namespace harness::testing
