// The data generator: exact counts, deterministic for a seed, realistic
// shapes, refuses anything but 005, never deletes, and its data migrates.
#include <gtest/gtest.h>

#include <pqxx/pqxx>

#include "fixtures/generator.h"
#include "harness/error.h"
#include "harness/inspect/fingerprint.h"
#include "harness/pg/connection.h"
#include "scenarios/support/test_env.h"

namespace harness::testing {
namespace {

fixtures::GeneratorReport Generate(const TestDatabase& db, int repos, int chunks,
                                   std::uint64_t seed = 42, bool embeddings = false) {
  pg::Connection conn(db.url());
  fixtures::GeneratorOptions o;
  o.repositories = repos;
  o.chunks_per_repo = chunks;
  o.seed = seed;
  o.embeddings = embeddings;
  return fixtures::Generate(conn, o);
}

std::string Fingerprints(const TestDatabase& db) {
  pg::Connection conn(db.url());
  pqxx::read_transaction tx(conn.raw());
  return inspect::TakeFingerprint(tx, "repositories").ToString() + " | " +
         inspect::TakeFingerprint(tx, "code_chunks").ToString() + " | " +
         inspect::TakeFingerprint(tx, "tasks").ToString();
}

TEST(Generator, WritesExactlyTheRequestedRows) {
  TestDatabase db("005");
  auto r = Generate(db, 7, 13);
  EXPECT_EQ(r.repositories, 7);
  EXPECT_EQ(r.chunks, 91);
  EXPECT_GT(r.other_rows, 0);
  EXPECT_EQ(db.Scalar("SELECT count(*) FROM repositories"), "7");
  EXPECT_EQ(db.Scalar("SELECT count(*) FROM code_chunks"), "91");
  EXPECT_EQ(db.Scalar("SELECT count(*) FROM code_chunks c WHERE NOT EXISTS (SELECT 1 FROM "
                      "repositories r WHERE r.id = c.repository_id)"),
            "0");
}

TEST(Generator, SameSeedSameDataOtherSeedOtherData) {
  TestDatabase a("005"), b("005"), c("005");
  Generate(a, 5, 20, 7);
  Generate(b, 5, 20, 7);
  Generate(c, 5, 20, 8);
  EXPECT_EQ(Fingerprints(a), Fingerprints(b));
  EXPECT_NE(Fingerprints(a), Fingerprints(c));
}

TEST(Generator, ChunksLookLikeSource) {
  TestDatabase db("005");
  Generate(db, 10, 50);
  EXPECT_EQ(db.Scalar("SELECT count(*) FROM code_chunks WHERE octet_length(content) NOT BETWEEN "
                      "100 AND 2000 OR start_line < 1 OR end_line < start_line"),
            "0");
  EXPECT_EQ(db.Scalar("SELECT count(*) FROM code_chunks WHERE end_line - start_line + 1 <> "
                      "array_length(string_to_array(rtrim(content, E'\\n'), E'\\n'), 1)"),
            "0");
  EXPECT_GE(std::stoi(db.Scalar("SELECT count(DISTINCT substring(file_path from '\\.([a-z]+)$')) "
                                "FROM code_chunks")),
            3);
  EXPECT_EQ(db.Scalar("SELECT count(*) FROM code_chunks WHERE embedding IS NOT NULL"), "0");
}

TEST(Generator, ContentSurvivesCopyEscapingByteForByte) {
  TestDatabase db("005");
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

// Loads of 50,000 chunks and more drop code_chunks' indexes and keys for the
// COPY and build them again (and truncate the table when it is empty): the
// catalog must come out exactly as it was, and rows already there stay.
TEST(Generator, ABulkLoadPutsIndexesAndKeysBackExactly) {
  for (bool empty : {true, false}) {
    TestDatabase db("005");
    if (!empty) Generate(db, 3, 4, 1);
    auto before = db.Snapshot();
    auto r = Generate(db, 50, 1000, 2);
    EXPECT_EQ(r.chunks, 50000);
    EXPECT_EQ(db.Scalar("SELECT count(*) FROM code_chunks"), empty ? "50000" : "50012");
    auto diff = inspect::Diff(before, db.Snapshot());
    EXPECT_TRUE(diff.empty()) << JoinLines(diff);
    EXPECT_EQ(db.Scalar("SELECT count(*) FROM pg_constraint WHERE conrelid = "
                        "'code_chunks'::regclass AND NOT convalidated"),
              "0");
    EXPECT_EQ(db.Scalar("SELECT count(*) FROM pg_index WHERE indrelid = 'code_chunks'::regclass "
                        "AND NOT indisvalid"),
              "0");
  }
}

TEST(Generator, EmbeddingsHave768Values) {
  TestDatabase db("005");
  Generate(db, 2, 3, 42, true);
  EXPECT_EQ(db.Scalar("SELECT count(*) FROM code_chunks WHERE cardinality(embedding) = 768"), "6");
}

TEST(Generator, RefusesAnythingBut005AndChangesNothing) {
  for (const char* rev : {"head", "003"}) {
    TestDatabase db(rev);
    auto before = db.Snapshot();
    try {
      Generate(db, 1, 1);
      ADD_FAILURE() << "generated into a database at " << rev;
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), ExitCode::kUsage);
      EXPECT_CONTAINS(e.what(), "generate needs a database at revision 005");
    }
    EXPECT_TRUE(inspect::Diff(before, db.Snapshot()).empty());
  }
}

TEST(Generator, KeepsExistingRows) {
  TestDatabase db("005");
  Generate(db, 3, 4, 1);
  Generate(db, 2, 5, 2);
  EXPECT_EQ(db.Scalar("SELECT count(*) FROM repositories"), "5");
  EXPECT_EQ(db.Scalar("SELECT count(*) FROM code_chunks"), "22");
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

TEST(Generator, GeneratedDataMigrates) {
  TestDatabase db("005");
  Generate(db, 20, 20);
  MigrateTo(db.url(), "head");
  EXPECT_EQ(db.Revision(), "002");
  EXPECT_EQ(db.Scalar("SELECT count(*) FROM code_chunks WHERE project_id = 'default'"), "400");
}

TEST(GeneratorCli, PrintsASummaryAndRejectsBadValues) {
  TestDatabase db("005");
  auto r = RunCli({"generate", "--repositories", "3", "--chunks-per-repo", "4", "--seed", "7"},
                  db.url().text());
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_CONTAINS(r.out, "Generated 3 repositories, 12 chunks");
  EXPECT_EQ(RunCli({"generate", "--repositories", "0"}, db.url().text()).exit_code, 2);
  TestDatabase head("head");
  auto refused = RunCli({"generate"}, head.url().text());
  EXPECT_EQ(refused.exit_code, 2);
  EXPECT_CONTAINS(refused.err, "found revision 002");
}

}  // namespace
}  // namespace harness::testing
