// The data generator, on both schema shapes at 005: exact counts,
// deterministic for a seed, realistic shapes, refuses anything but 005,
// never deletes, and its data migrates. The production shape also gets
// files, the other kept tables and links into tasks; the CLI builds either
// shape on an empty database and refuses a shape that does not match.
#include <gtest/gtest.h>

#include <pqxx/pqxx>

#include "harness/codesearch/generator.h"
#include "harness/error.h"
#include "harness/inspect/fingerprint.h"
#include "harness/codesearch/shape.h"
#include "harness/pg/connection.h"
#include "scenarios/support/test_env.h"

namespace harness::testing {
namespace {

codesearch::GeneratorReport Generate(const TestDatabase& db, int repos, int chunks,
                                   std::uint64_t seed = 42, bool embeddings = false,
                                   long long bulk_threshold = codesearch::GeneratorOptions{}.bulk_threshold) {
  pg::Connection conn(db.url());
  codesearch::GeneratorOptions o;
  o.repositories = repos;
  o.chunks_per_repo = chunks;
  o.seed = seed;
  o.embeddings = embeddings;
  o.bulk_threshold = bulk_threshold;
  return codesearch::Generate(conn, o);
}

// Production's tables besides repositories, code_files and code_chunks
// that 002 keeps, and the nine it drops.
const std::vector<std::string> kOtherKeptTables = {
    "change_events", "embedding_metadata", "search_queries", "task_branch_links",
    "task_commit_links", "task_planning_references", "task_status_history"};
const std::vector<std::string> kDroppedTables = {
    "tasks", "vendor_extractors", "deployment_events", "project_configuration",
    "future_enhancements", "work_item_dependencies", "vendor_deployment_links",
    "work_item_deployment_links", "archived_work_items"};

std::vector<std::string> Concat(std::vector<std::string> a, const std::vector<std::string>& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

// The tables whose every column the generator sets (no now() defaults):
// the quickstart's tracking tables leave some to the server, production's
// leave none.
std::vector<std::string> DeterministicTables(Shape shape) {
  if (shape == Shape::kQuickstart) return {"repositories", "code_chunks", "tasks"};
  return Concat(Concat({"repositories", "code_files", "code_chunks"}, kOtherKeptTables),
                kDroppedTables);
}

// Production's tables that 002 keeps as they are (it adds project_id to
// repositories and code_chunks).
const std::vector<std::string> kProductionKeptAsTheyAre = Concat({"code_files"}, kOtherKeptTables);

std::string Fingerprints(const TestDatabase& db, const std::vector<std::string>& tables) {
  pg::Connection conn(db.url());
  pqxx::read_transaction tx(conn.raw());
  std::string out;
  for (const auto& table : tables)
    out += table + ": " + inspect::TakeFingerprint(tx, table).ToString() + "\n";
  return out;
}

// The rows in `tables`, each of which must have some.
long long RowsInEach(const TestDatabase& db, const std::vector<std::string>& tables) {
  long long rows = 0;
  for (const auto& table : tables) {
    long long n = std::stoll(db.Scalar("SELECT count(*) FROM " + table));
    EXPECT_GT(n, 0) << table;
    rows += n;
  }
  return rows;
}

class Generator : public ::testing::TestWithParam<Shape> {
 protected:
  Shape shape() const { return GetParam(); }
  bool production() const { return GetParam() == Shape::kProduction; }
  TestDatabase At(const std::string& revision = "005") const {
    return TestDatabase(revision, GetParam());
  }
  // Chunks that reach their repository (production: through their file).
  std::string ReachableChunks(const TestDatabase& db) const {
    return db.Scalar("SELECT count(*) FROM " + codesearch::SqlFor(shape()).chunk_to_repository);
  }
};

INSTANTIATE_TEST_SUITE_P(Shapes, Generator,
                         ::testing::Values(Shape::kQuickstart, Shape::kProduction), ShapeTestName);

TEST_P(Generator, WritesExactlyTheRequestedRows) {
  TestDatabase db = At();
  auto r = Generate(db, 7, 13);
  EXPECT_EQ(r.shape, shape());
  EXPECT_EQ(r.repositories, 7);
  EXPECT_EQ(r.chunks, 91);
  EXPECT_EQ(r.other_rows, 22);
  EXPECT_EQ(db.Scalar("SELECT count(*) FROM repositories"), "7");
  EXPECT_EQ(db.Scalar("SELECT count(*) FROM code_chunks"), "91");
  EXPECT_EQ(ReachableChunks(db), "91");
  if (production()) {
    EXPECT_EQ(db.Scalar("SELECT count(*) FROM code_files"), std::to_string(r.files));
    EXPECT_GT(r.kept_rows, 0);
  } else {
    EXPECT_EQ(r.files, 0);
    EXPECT_EQ(r.kept_rows, 0);
  }
  EXPECT_GT(r.rows_per_second, 0);
  EXPECT_GT(r.chunks_per_second, 0);
}

TEST_P(Generator, SameSeedSameDataOtherSeedOtherData) {
  TestDatabase a = At(), b = At(), c = At();
  Generate(a, 5, 20, 7);
  Generate(b, 5, 20, 7);
  Generate(c, 5, 20, 8);
  EXPECT_EQ(Fingerprints(a, DeterministicTables(shape())),
            Fingerprints(b, DeterministicTables(shape())));
  EXPECT_NE(Fingerprints(a, DeterministicTables(shape())),
            Fingerprints(c, DeterministicTables(shape())));
}

TEST_P(Generator, ChunksLookLikeSource) {
  TestDatabase db = At();
  Generate(db, 10, 50);
  EXPECT_EQ(db.Scalar("SELECT count(*) FROM code_chunks WHERE octet_length(content) NOT BETWEEN "
                      "100 AND 2000 OR start_line < 1 OR end_line < start_line"),
            "0");
  EXPECT_EQ(db.Scalar("SELECT count(*) FROM code_chunks WHERE end_line - start_line + 1 <> "
                      "array_length(string_to_array(rtrim(content, E'\\n'), E'\\n'), 1)"),
            "0");
  // Files in several languages: the chunk's path, or on production its file's.
  const std::string extensions =
      production()
          ? "SELECT count(DISTINCT substring(relative_path from '\\.([a-z]+)$')) FROM code_files"
          : "SELECT count(DISTINCT substring(file_path from '\\.([a-z]+)$')) FROM code_chunks";
  EXPECT_GE(std::stoi(db.Scalar(extensions)), 3);
  EXPECT_EQ(db.Scalar("SELECT count(*) FROM code_chunks WHERE embedding IS NOT NULL"), "0");
}

TEST_P(Generator, ContentSurvivesCopyEscapingByteForByte) {
  TestDatabase db = At();
  Generate(db, 30, 40);
  // Go chunks hold tabs and a literal backslash-n; COPY text format escapes
  // both, and the server must get them back unchanged.
  EXPECT_NE(db.Scalar("SELECT count(*) FROM code_chunks WHERE strpos(content, E'\\tlog.Printf(\"%d "
                      "results\\\\n\", len(results))\\n') > 0"),
            "0");
  EXPECT_EQ(db.Scalar("SELECT count(*) FROM code_chunks WHERE strpos(content, E'\\\\t') > 0 "
                      "OR strpos(content, E'\\r') > 0"),
            "0");
}

// Loads of 50,000 chunks and more drop code_chunks' indexes and keys (on
// the production shape code_files' too, and change_events' key into it)
// for the COPY and build them again (and truncate the tables when they are
// empty): the catalog must come out exactly as it was, and rows already
// there stay.
TEST_P(Generator, ABulkLoadPutsIndexesAndKeysBackExactly) {
  for (bool empty : {true, false}) {
    TestDatabase db = At();
    if (!empty) Generate(db, 3, 4, 1);
    auto before = db.Snapshot();
    // 2,000 chunks, over a threshold lowered to 1,000: the bulk path, at a
    // test's size.
    auto r = Generate(db, 20, 100, 2, false, 1000);
    EXPECT_EQ(r.chunks, 2000);
    EXPECT_EQ(db.Scalar("SELECT count(*) FROM code_chunks"), empty ? "2000" : "2012");
    EXPECT_EQ(ReachableChunks(db), empty ? "2000" : "2012");
    auto diff = inspect::Diff(before, db.Snapshot());
    EXPECT_TRUE(diff.empty()) << JoinLines(diff);
    EXPECT_EQ(db.Scalar("SELECT count(*) FROM pg_constraint WHERE NOT convalidated"), "0");
    EXPECT_EQ(db.Scalar("SELECT count(*) FROM pg_index WHERE indrelid IN "
                        "('code_chunks'::regclass, to_regclass('code_files')) AND NOT indisvalid"),
              "0");
  }
}

TEST_P(Generator, EmbeddingsHave768Values) {
  TestDatabase db = At();
  Generate(db, 2, 3, 42, true);
  EXPECT_EQ(db.Scalar("SELECT count(*) FROM code_chunks WHERE cardinality(embedding) = 768"), "6");
}

TEST_P(Generator, RefusesAnythingBut005AndChangesNothing) {
  // The production shape starts at 005: after it there is only head.
  for (const char* rev : production() ? std::vector<const char*>{"head"}
                                      : std::vector<const char*>{"head", "003"}) {
    TestDatabase db = At(rev);
    const DatabaseState before = CaptureState(db);
    try {
      Generate(db, 1, 1);
      ADD_FAILURE() << "generated into a database at " << rev;
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), ExitCode::kUsage);
      EXPECT_CONTAINS(e.what(), "generate needs a database at revision 005");
    }
    ExpectUnchanged(db, before, rev);
  }
}

TEST_P(Generator, KeepsExistingRows) {
  TestDatabase db = At();
  Generate(db, 3, 4, 1);
  Generate(db, 2, 5, 2);
  EXPECT_EQ(db.Scalar("SELECT count(*) FROM repositories"), "5");
  EXPECT_EQ(db.Scalar("SELECT count(*) FROM code_chunks"), "22");
  EXPECT_EQ(ReachableChunks(db), "22");
  // The same seed again collides on the unique path: a clear error, nothing written.
  try {
    Generate(db, 3, 4, 1);
    ADD_FAILURE() << "the same seed was generated twice";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ExitCode::kUsage);
    EXPECT_CONTAINS(e.hint(), "use another --seed");
  }
  EXPECT_EQ(db.Scalar("SELECT count(*) FROM code_chunks"), "22");
}

// Production: 002 drops tasks, and the four task_* tables' foreign keys
// into it with it; their rows, and every other kept table's, stay.
TEST_P(Generator, GeneratedDataMigrates) {
  TestDatabase db = At();
  auto r = Generate(db, 20, 20);
  const std::string kept_before =
      production() ? Fingerprints(db, kProductionKeptAsTheyAre) : std::string();
  MigrateTo(db.url(), "head");
  EXPECT_EQ(db.Revision(), "002");
  EXPECT_EQ(db.Scalar("SELECT count(*) FROM code_chunks WHERE project_id = 'default'"), "400");
  EXPECT_EQ(ReachableChunks(db), "400");
  if (production()) {
    EXPECT_EQ(Fingerprints(db, kProductionKeptAsTheyAre), kept_before);
    EXPECT_EQ(db.Scalar("SELECT count(*) FROM code_files"), std::to_string(r.files));
    EXPECT_EQ(db.Scalar("SELECT count(*) FROM pg_constraint WHERE conname LIKE 'fk_task_%'"), "0");
  }
}

// --- the production shape's own data ---------------------------------------

TEST(ProductionGenerator, SpreadsEachRepositorysChunksOverItsFiles) {
  TestDatabase db("005", Shape::kProduction);
  auto r = Generate(db, 12, 100);
  // About 8 chunks a file (1 to 15), every file with at least one.
  EXPECT_GE(r.files, 12 * 100 / 15);
  EXPECT_LE(r.files, 12 * 100 / 4);
  EXPECT_EQ(db.Scalar("SELECT count(*) FROM code_files f WHERE NOT EXISTS (SELECT 1 FROM "
                      "code_chunks c WHERE c.code_file_id = f.id)"),
            "0");
  EXPECT_EQ(db.Scalar("SELECT max(n) <= 15 FROM (SELECT count(*) AS n FROM code_chunks "
                      "GROUP BY code_file_id) f"),
            "t");
  // Every repository has exactly its chunks, reached through its files.
  EXPECT_EQ(db.Scalar("SELECT count(*) FROM repositories r WHERE (SELECT count(*) FROM code_chunks "
                      "c JOIN code_files f ON f.id = c.code_file_id WHERE f.repository_id = r.id) "
                      "<> 100"),
            "0");
  // A file's chunks follow one another down the file.
  EXPECT_EQ(db.Scalar("SELECT count(*) FROM (SELECT start_line, lag(end_line) OVER (PARTITION BY "
                      "code_file_id ORDER BY start_line) AS previous_end FROM code_chunks) c "
                      "WHERE start_line <= previous_end"),
            "0");
  // Files look like an indexer's.
  EXPECT_EQ(db.Scalar("SELECT count(*) FROM code_files f JOIN repositories r ON r.id = "
                      "f.repository_id WHERE f.content_hash !~ '^[0-9a-f]{64}$' OR f.size_bytes "
                      "<= 0 OR f.path <> r.path || '/' || f.relative_path OR f.modified_at > "
                      "f.indexed_at OR f.created_at > f.modified_at OR f.indexed_at <> "
                      "r.last_indexed_at OR f.is_deleted <> (f.deleted_at IS NOT NULL)"),
            "0");
  EXPECT_LT(std::stoi(db.Scalar("SELECT count(*) FROM code_files WHERE is_deleted")), r.files / 10);
  EXPECT_EQ(db.Scalar("SELECT count(*) FROM repositories WHERE last_indexed_at < created_at"), "0");
}

TEST(ProductionGenerator, FillsTheKeptTablesAndLinksTasksThatExist) {
  TestDatabase db("005", Shape::kProduction);
  auto r = Generate(db, 10, 80);
  EXPECT_EQ(RowsInEach(db, kOtherKeptTables), r.kept_rows);
  for (const char* t : {"task_branch_links", "task_commit_links", "task_planning_references",
                        "task_status_history"})
    EXPECT_EQ(db.Scalar(std::string("SELECT count(*) FROM ") + t +
                        " x WHERE NOT EXISTS (SELECT 1 FROM tasks t WHERE t.id = x.task_id)"),
              "0")
        << t;
  // A task's history ends in its status.
  EXPECT_EQ(db.Scalar("SELECT count(*) FROM tasks t WHERE t.status <> (SELECT h.to_status FROM "
                      "task_status_history h WHERE h.task_id = t.id ORDER BY h.changed_at DESC "
                      "LIMIT 1)"),
            "0");
  EXPECT_EQ(db.Scalar("SELECT count(*) FROM task_commit_links WHERE commit_hash !~ "
                      "'^[0-9a-f]{40}$'"),
            "0");
  // Rows in each of the nine tables, their CHECKs held (else the INSERT
  // would have failed), the singleton configuration among them.
  EXPECT_EQ(RowsInEach(db, kDroppedTables), r.other_rows);
  EXPECT_EQ(db.Scalar("SELECT id FROM project_configuration"), "1");
}

// --- the CLI -----------------------------------------------------------------

TEST(GeneratorCli, PrintsASummaryAndRejectsBadValues) {
  TestDatabase db("005");
  auto r = RunCli({"generate", "--repositories", "3", "--chunks-per-repo", "4", "--seed", "7"},
                  db.url().text());
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_CONTAINS(r.out, "Generated 3 repositories, 12 chunks, 22 rows in the tables 002 drops "
                         "(quickstart shape)");
  RunCliUnchanged(db, {"generate", "--repositories", "0"}, 2);
  EXPECT_CONTAINS(RunCliUnchanged(db, {"generate", "--shape", "staging"}, 2).err, "--shape");
  TestDatabase head("head");
  auto refused = RunCliUnchanged(head, {"generate"}, 2);
  EXPECT_CONTAINS(refused.err, "found revision 002");
}

class GeneratorCliShapes : public ::testing::TestWithParam<Shape> {};

INSTANTIATE_TEST_SUITE_P(Shapes, GeneratorCliShapes,
                         ::testing::Values(Shape::kQuickstart, Shape::kProduction), ShapeTestName);

TEST_P(GeneratorCliShapes, ShapeOnAnEmptyDatabaseBuildsTheSchemaAt005AndFillsIt) {
  const std::string name = codesearch::ShapeName(GetParam());
  TestDatabase db("base");
  auto r = RunCli({"generate", "--shape", name, "--repositories", "3", "--chunks-per-repo", "20"},
                  db.url().text());
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_CONTAINS(r.out, "Built the " + name + " schema at revision 005");
  EXPECT_CONTAINS(r.out, "Generated 3 repositories, 60 chunks");
  EXPECT_CONTAINS(r.out, "(" + name + " shape)");
  EXPECT_EQ(db.Revision(), "005");
  {
    pg::Connection conn(db.url());
    pqxx::read_transaction tx(conn.raw());
    EXPECT_EQ(codesearch::DetectShape(tx), GetParam());
  }
  EXPECT_EQ(db.Scalar("SELECT count(*) FROM " + codesearch::SqlFor(GetParam()).chunk_to_repository),
            "60");
  // The catalog is the one the tests' own template at 005 has.
  TestDatabase reference("005", GetParam());
  auto diff = inspect::Diff(reference.Snapshot(), db.Snapshot());
  EXPECT_TRUE(diff.empty()) << JoinLines(diff);

  // Again with the same shape: the database is at 005 now, and is filled.
  auto again = RunCli({"generate", "--shape", name, "--seed", "8"}, db.url().text());
  EXPECT_EQ(again.exit_code, 0) << again.err;
  EXPECT_EQ(again.out.find("Built"), std::string::npos) << again.out;
  EXPECT_EQ(db.Scalar("SELECT count(*) FROM repositories"), "103");
}

TEST_P(GeneratorCliShapes, TheOtherShapeOnADatabaseAt005IsExit2AndChangesNothing) {
  const Shape other = GetParam() == Shape::kProduction ? Shape::kQuickstart : Shape::kProduction;
  TestDatabase db("005", GetParam());
  auto r = RunCliUnchanged(db, {"generate", "--shape", codesearch::ShapeName(other)}, 2);
  EXPECT_CONTAINS(r.err, std::string("already holds the ") + codesearch::ShapeName(GetParam()) +
                             " shape at revision 005");
  EXPECT_CONTAINS(r.err, "leave out --shape");
  EXPECT_EQ(db.Scalar("SELECT count(*) FROM repositories"), "0");
}

TEST(GeneratorCli, WithoutShapeAnEmptyDatabaseIsRefusedWithAHint) {
  TestDatabase db("base");
  auto r = RunCliUnchanged(db, {"generate"}, 2);
  EXPECT_CONTAINS(r.err, "generate needs a database at revision 005");
  EXPECT_CONTAINS(r.err, "--shape quickstart|production");
}

// HARNESS_SLOW_TESTS: a million chunks in each shape, with the rates.
class SlowGenerator : public ::testing::TestWithParam<Shape> {};

INSTANTIATE_TEST_SUITE_P(Shapes, SlowGenerator,
                         ::testing::Values(Shape::kQuickstart, Shape::kProduction), ShapeTestName);

TEST_P(SlowGenerator, FillsAMillionChunks) {
  TestDatabase db("005", GetParam());
  auto r = Generate(db, 1000, 1000);
  std::printf("%s shape: %lld chunks, %lld files, %lld other rows in %.2f s: %.0f rows/s, %.0f "
              "chunks/s\n",
              codesearch::ShapeName(GetParam()), r.chunks, r.files, r.kept_rows + r.other_rows,
              r.seconds, r.rows_per_second, r.chunks_per_second);
  ::testing::Test::RecordProperty("rows_per_second", std::to_string(r.rows_per_second));
  ::testing::Test::RecordProperty("chunks_per_second", std::to_string(r.chunks_per_second));
  EXPECT_EQ(db.Scalar("SELECT count(*) FROM " + codesearch::SqlFor(GetParam()).chunk_to_repository),
            "1000000");
}

}  // namespace
}  // namespace harness::testing
