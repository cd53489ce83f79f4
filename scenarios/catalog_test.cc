// Catalog snapshots and their diff: what "the downgrade is exact" compares;
// and the golden snapshots that pin the schema of both shapes at 005 and at
// 002.
//
// Golden catalogs: scenarios/golden/catalog_005.txt and catalog_002.txt hold
// the public schema of a fresh database of the quickstart's shape at that
// revision, catalog_production_005.txt and catalog_production_002.txt the
// production shape's (harness/codesearch/shape.h), as
// inspect::CatalogSnapshot::Entries() renders it ("key: description", one
// line per table, column, constraint, index, other relation and extension,
// sorted; '#' lines are comments). The quickstart's were reviewed against
// the schema's table descriptions (docs/migrations.md#supported-schemas), production's at 005 against the service's
// dump (harness/codesearch/shapes/production_005.sql; GoldenCatalogContent checks
// every object of the dump is there and nothing else); so a migration edit
// that changes either schema (or a downgrade that does not recreate 005
// exactly) fails here with the diff instead of passing against itself.
// Production's at 002 differs from the service's own 002 by our stricter
// CHECKs only (ServicesOwn002). Taken on PostgreSQL 15 without pgvector
// (code_chunks.embedding is real[]).
//
// To regenerate them after an intended schema change:
//   HARNESS_UPDATE_GOLDEN=1 ctest --test-dir build -R GoldenCatalog
// (or run build/scenarios/catalog_test --gtest_filter='*GoldenCatalog*'
// with the variable set); the cases then write the files and report
// SKIPPED. Run the tests again without it, and review
// `git diff scenarios/golden/` against docs/migrations.md#supported-schemas and the dump before
// committing them.
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <regex>
#include <set>
#include <sstream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include <pqxx/pqxx>

#include "harness/codesearch/shapes.h"
#include "harness/checks/suites.h"
#include "harness/inspect/catalog.h"
#include "harness/pg/connection.h"
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

// An index a failed CREATE INDEX CONCURRENTLY left behind is INVALID: the
// same definition, but not the same index (the planner ignores it, and a
// rollback that leaves one has not restored the schema).
TEST(CatalogDiff, AnInvalidIndexIsADifference) {
  TestDatabase a("base"), b("base");
  for (const TestDatabase* db : {&a, &b}) db->Exec("CREATE TABLE public.t (id int); INSERT INTO t VALUES (1), (1)");
  a.Exec("DELETE FROM t; CREATE UNIQUE INDEX t_id ON t (id)");
  {
    pg::Connection conn(b.url());
    pqxx::nontransaction tx(conn.raw());
    EXPECT_THROW(tx.exec("CREATE UNIQUE INDEX CONCURRENTLY t_id ON t (id)"), pqxx::sql_error);
  }
  auto diff = inspect::Diff(a.Snapshot(), b.Snapshot());
  ASSERT_EQ(diff.size(), 1u) << JoinLines(diff);
  EXPECT_NE(diff[0].find("~ index t.t_id"), std::string::npos) << diff[0];
  EXPECT_NE(diff[0].find("(INVALID)"), std::string::npos) << diff[0];
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
std::filesystem::path GoldenDir() { return SourceDir() / "scenarios" / "golden"; }

// catalog_<name>.txt; `name` is the revision, prefixed with "production_"
// for that shape.
std::filesystem::path GoldenFile(const std::string& name) {
  return GoldenDir() / ("catalog_" + name + ".txt");
}

bool UpdateGolden() {
  const char* v = std::getenv("HARNESS_UPDATE_GOLDEN");
  return v && std::string(v) == "1";
}

void WriteGolden(const std::filesystem::path& file, const std::string& revision, Shape shape,
                 const std::map<std::string, std::string>& entries) {
  std::filesystem::create_directories(file.parent_path());
  std::ofstream out(file, std::ios::trunc);
  out << "# Public schema of a fresh database"
      << (shape == Shape::kProduction ? " of the production shape" : "") << " at revision "
      << revision << " (inspect::CatalogSnapshot::Entries()).\n"
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

constexpr const char* kPgvectorSkip =
    "pgvector is installed (code_chunks.embedding is vector(768), and production has an HNSW "
    "index on it); the golden files describe the real[] variant";

struct GoldenCase {
  std::string name;
  Shape shape;
  std::string golden;     // catalog_<golden>.txt, of a database at `revision`
  std::string revision;
  std::string start;      // a fresh database at this revision ...
  std::string downgrade;  // ... then downgraded to this one ("" for none)
};

class GoldenCatalog : public ::testing::TestWithParam<GoldenCase> {};

TEST_P(GoldenCatalog, MatchesTheCheckedInSnapshot) {
  const GoldenCase& c = GetParam();
  TestDatabase db(c.start, c.shape);
  if (!c.downgrade.empty()) MigrateTo(db.url(), c.downgrade);
  ASSERT_EQ(db.Revision(), c.revision);
  const auto snapshot = db.Snapshot();
  if (snapshot.extensions.count("vector")) GTEST_SKIP() << kPgvectorSkip;
  const auto entries = snapshot.Entries();
  const auto file = GoldenFile(c.golden);
  if (UpdateGolden() && c.downgrade.empty()) {
    WriteGolden(file, c.revision, c.shape, entries);
    GTEST_SKIP() << "HARNESS_UPDATE_GOLDEN=1: wrote " << file << " (" << entries.size()
                 << " entries); review it against docs/migrations.md#supported-schemas"
                 << (c.shape == Shape::kProduction ? " and harness/codesearch/shapes/production_005.sql" : "");
  }
  auto golden = ReadGolden(file);
  ASSERT_TRUE(golden) << file << " is missing; create it with HARNESS_UPDATE_GOLDEN=1";
  auto diff = inspect::DiffEntries(*golden, entries);
  EXPECT_TRUE(diff.empty()) << "the schema at " << c.revision
                            << (c.downgrade.empty() ? "" : " (after downgrading from " + c.start + ")")
                            << " differs from " << file << " (- golden, + database, ~ changed):\n"
                            << JoinLines(diff)
                            << "\nif the change is intended, regenerate with HARNESS_UPDATE_GOLDEN=1 "
                               "(see the top of catalog_test.cc) and review it";
}

// Production's rollback is exact here because the template has no rows in
// the task link tables (with rows, its foreign keys into tasks come back NOT
// VALID: scenarios/production_test.cc).
INSTANTIATE_TEST_SUITE_P(
    Revisions, GoldenCatalog,
    ::testing::Values(
        GoldenCase{"At005", Shape::kQuickstart, "005", "005", "005", ""},
        GoldenCase{"At002", Shape::kQuickstart, "002", "002", "head", ""},
        GoldenCase{"At005AfterDowngradeFrom002", Shape::kQuickstart, "005", "005", "head", "005"},
        GoldenCase{"ProductionAt005", Shape::kProduction, "production_005", "005", "005", ""},
        GoldenCase{"ProductionAt002", Shape::kProduction, "production_002", "002", "head", ""},
        GoldenCase{"ProductionAt005AfterDowngradeFrom002", Shape::kProduction, "production_005",
                   "005", "head", "005"}),
    [](const auto& p) { return p.param.name; });

int CountTables(const std::map<std::string, std::string>& entries) {
  int n = 0;
  for (const auto& [key, value] : entries) n += key.starts_with("table ");
  return n;
}

// The golden files themselves say what docs/migrations.md#supported-schemas says (a regeneration that
// silently accepted a wrong schema fails here).
TEST(GoldenCatalogContent, StatesDesignFacts) {
  if (UpdateGolden()) GTEST_SKIP() << "HARNESS_UPDATE_GOLDEN=1: the files are being rewritten";
  auto at005 = ReadGolden(GoldenFile("005"));
  auto at002 = ReadGolden(GoldenFile("002"));
  ASSERT_TRUE(at005 && at002);
  EXPECT_EQ(CountTables(*at005), 11);
  EXPECT_EQ(CountTables(*at002), 2);
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

// What the production goldens must say: the service's 19 tables at 005
// (alembic_version, which snapshots leave out, is the 20th), the 10 that
// remain at 002 with 002's columns and CHECKs, and the task links' foreign
// keys into tasks gone with it.
TEST(GoldenCatalogContent, StatesProductionFacts) {
  if (UpdateGolden()) GTEST_SKIP() << "HARNESS_UPDATE_GOLDEN=1: the files are being rewritten";
  auto at005 = ReadGolden(GoldenFile("production_005"));
  auto at002 = ReadGolden(GoldenFile("production_002"));
  ASSERT_TRUE(at005 && at002);
  EXPECT_EQ(CountTables(*at005), 19);
  EXPECT_EQ(CountTables(*at002), 10);
  EXPECT_EQ(at005->count("column repositories.project_id"), 0u);
  EXPECT_EQ(at005->count("column code_chunks.project_id"), 0u);
  EXPECT_EQ(at005->at("column code_chunks.code_file_id"), "#2 uuid NOT NULL");
  EXPECT_EQ(at005->at("constraint code_files.fk_code_files_repository_id_repositories"),
            "foreign key FOREIGN KEY (repository_id) REFERENCES repositories(id)");
  for (const char* link : {"task_branch_links", "task_commit_links", "task_planning_references",
                           "task_status_history"}) {
    const std::string key = std::string("constraint ") + link + ".fk_" + link + "_task_id_tasks";
    EXPECT_EQ(at005->at(key), "foreign key FOREIGN KEY (task_id) REFERENCES tasks(id)") << key;
    EXPECT_EQ(at002->count(key), 0u) << key;
    EXPECT_EQ(at002->count(std::string("table ") + link), 1u) << link;
  }
  EXPECT_EQ(at002->at("column repositories.project_id"),
            "#7 character varying(50) NOT NULL DEFAULT 'default'::character varying");
  EXPECT_EQ(at002->at("column code_chunks.project_id"), "#9 character varying(50) NOT NULL");
  EXPECT_EQ(at002->at("index repositories.idx_project_repository"),
            "CREATE INDEX idx_project_repository ON public.repositories USING btree "
            "(project_id, id)");
  for (const char* check : {"constraint repositories.check_repositories_project_id",
                            "constraint code_chunks.check_code_chunks_project_id"})
    EXPECT_CONTAINS(at002->at(check), "^[a-z0-9]+(-[a-z0-9]+)*$");
}

// What a pg_dump --schema-only file creates in public, as the golden
// files' lines: catalog key -> description. Tables named in `skip` are
// left out. Reads pg_dump's own layout (one column or inline CONSTRAINT per
// line of a CREATE TABLE; ALTER TABLE ONLY, then ADD CONSTRAINT on the next
// line; one CREATE INDEX or ALTER COLUMN ... SET DEFAULT per line). A CHECK
// is described by its kind alone ("check"): the golden holds the planner's
// folded form of its expression, which only the server can compute.
std::map<std::string, std::string> DumpedObjects(const std::string& dump,
                                                 const std::set<std::string>& skip) {
  static const std::regex create_table(R"(^CREATE TABLE public\.(\w+) \($)");
  static const std::regex column(R"(^    (\w+) (.*?)( DEFAULT (.*?))?( NOT NULL)?,?$)");
  static const std::regex inline_check(R"(^    CONSTRAINT (\w+) CHECK )");
  static const std::regex alter_table(R"(^ALTER TABLE ONLY public\.(\w+)$)");
  static const std::regex add_constraint(
      R"(^    ADD CONSTRAINT (\w+) ((PRIMARY KEY|UNIQUE|FOREIGN KEY|CHECK).*);$)");
  static const std::regex set_default(
      R"(^ALTER TABLE ONLY public\.(\w+) ALTER COLUMN (\w+) SET DEFAULT (.*);$)");
  static const std::regex create_index(
      R"(^(CREATE (?:UNIQUE )?INDEX (\w+) ON public\.(\w+) .*);$)");
  static const std::regex create_sequence(R"(^CREATE SEQUENCE public\.(\w+)$)");
  static const std::map<std::string, std::string> kinds = {
      {"PRIMARY KEY", "primary key"}, {"UNIQUE", "unique"}, {"FOREIGN KEY", "foreign key"}};
  std::map<std::string, std::string> out;
  std::map<std::string, std::map<std::string, std::string>> defaults;  // table -> column -> expr
  std::istringstream in(dump);
  std::string line, table, altered;
  int position = 0;
  std::smatch m;
  while (std::getline(in, line)) {
    if (!table.empty()) {
      if (line == ");") {
        out["table " + table] = std::to_string(position) + " columns";
        table.clear();
      } else if (std::regex_search(line, m, inline_check)) {
        out["constraint " + table + "." + m[1].str()] = "check";
      } else if (std::regex_match(line, m, column)) {
        out["column " + table + "." + m[1].str()] =
            "#" + std::to_string(++position) + " " + m[2].str() +
            (m[5].matched ? " NOT NULL" : "") + (m[3].matched ? " DEFAULT " + m[4].str() : "");
      } else {
        ADD_FAILURE() << "unexpected line in CREATE TABLE " << table << ": " << line;
      }
      continue;
    }
    if (!altered.empty()) {
      if (std::regex_match(line, m, add_constraint)) {
        const std::string kind = m[3].str();
        // The dump qualifies the referenced table (its search_path is '').
        static const std::regex qualified(" REFERENCES public\\.");
        out["constraint " + altered + "." + m[1].str()] =
            kind == "CHECK" ? "check"
                            : kinds.at(kind) + " " +
                                  std::regex_replace(m[2].str(), qualified, " REFERENCES ");
      } else {
        ADD_FAILURE() << "unexpected line after ALTER TABLE ONLY " << altered << ": " << line;
      }
      altered.clear();
      continue;
    }
    if (std::regex_match(line, m, create_table)) {
      if (!skip.count(m[1].str())) table = m[1].str();
      position = 0;
    } else if (std::regex_match(line, m, alter_table)) {
      if (!skip.count(m[1].str())) altered = m[1].str();
    } else if (std::regex_match(line, m, set_default)) {
      // nextval('public.s'::regclass): the catalog prints the sequence
      // unqualified where public is on the search_path.
      static const std::regex qualified("'public\\.");
      defaults[m[1].str()][m[2].str()] = std::regex_replace(m[3].str(), qualified, "'");
    } else if (std::regex_match(line, m, create_index) && !skip.count(m[3].str())) {
      out["index " + m[3].str() + "." + m[2].str()] = m[1].str();
    } else if (std::regex_match(line, m, create_sequence)) {
      out["relation " + m[1].str()] = "sequence";
    }
  }
  for (const auto& [t, columns] : defaults)
    for (const auto& [c, expr] : columns) out["column " + t + "." + c] += " DEFAULT " + expr;
  return out;
}

// Every table, column, constraint, index and sequence of the service's
// dump is in the golden at 005 as the dump describes it, and the golden has
// nothing else but plpgsql and the indexes behind the dump's primary keys
// and UNIQUE constraints.
TEST(GoldenCatalogContent, ProductionAt005IsTheServicesDump) {
  if (UpdateGolden()) GTEST_SKIP() << "HARNESS_UPDATE_GOLDEN=1: the files are being rewritten";
  auto golden = ReadGolden(GoldenFile("production_005"));
  ASSERT_TRUE(golden);
  const auto dumped = DumpedObjects(codesearch::Production005Sql(), {"alembic_version"});
  // 19 tables, 142 columns, 45 constraints, 28 indexes, 1 sequence.
  ASSERT_EQ(dumped.size(), 19u + 142u + 45u + 28u + 1u)
      << "the dump's layout changed; see DumpedObjects";
  std::vector<std::string> differ, extra;
  for (const auto& [key, want] : dumped) {
    auto it = golden->find(key);
    if (it == golden->end())
      differ.push_back("- " + key + ": " + want);
    else if (want == "check" ? !it->second.starts_with("check CHECK (") : it->second != want)
      differ.push_back("~ " + key + ": " + want + " -> " + it->second);
  }
  for (const auto& [key, value] : *golden) {
    if (dumped.count(key) || key == "extension plpgsql") continue;
    // The index behind a primary key or UNIQUE constraint, of the same name.
    const bool backing =
        key.starts_with("index ") &&
        dumped.count("constraint " + key.substr(std::string_view("index ").size()));
    if (!backing) extra.push_back(key + ": " + value);
  }
  EXPECT_TRUE(differ.empty()) << "the golden does not say what the dump says (- dump only, ~ dump "
                                 "-> golden):\n"
                              << JoinLines(differ);
  EXPECT_TRUE(extra.empty()) << "in the golden, not in the dump:\n" << JoinLines(extra);
}

std::string ReadFile(const std::filesystem::path& file) {
  std::ifstream in(file);
  if (!in) throw std::runtime_error("cannot read " + file.string());
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

// The service's own 002 (scenarios/golden/production_002.schema.sql, its
// pg_dump) and ours leave the same schema on the production shape but for
// the CHECK: theirs accepts leading, trailing and double hyphens, ours does
// not. Its DROP TABLE ... CASCADE also removed the task links' foreign keys,
// as our step 7 does by name.
TEST(ServicesOwn002, DiffersFromOursByTheTwoChecksOnly) {
  TestDatabase theirs("base"), ours("head", Shape::kProduction);
  if (ours.Snapshot().extensions.count("vector")) GTEST_SKIP() << kPgvectorSkip;
  {
    // A connection of its own: the dump sets search_path to '' for its
    // session.
    pqxx::connection conn(theirs.url().text());
    pqxx::work tx(conn);
    tx.exec(ReadFile(GoldenDir() / "production_002.schema.sql"));
    tx.commit();
  }
  auto diff = inspect::Diff(theirs.Snapshot(), ours.Snapshot());
  const std::string change =
      ": check CHECK (((project_id)::text ~ '^[a-z0-9-]{1,50}$'::text)) -> check CHECK "
      "((((project_id)::text ~ '^[a-z0-9]+(-[a-z0-9]+)*$'::text) AND "
      "(char_length((project_id)::text) <= 50)))";
  EXPECT_EQ(diff, (std::vector<std::string>{
                      "~ constraint code_chunks.check_code_chunks_project_id" + change,
                      "~ constraint repositories.check_repositories_project_id" + change}))
      << JoinLines(diff);
}

}  // namespace
}  // namespace harness::testing
