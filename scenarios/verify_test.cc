// `verify`, the rehearsal an engineer runs before the maintenance window:
// on the embedded default, and on a "production copy" given by URL, which
// must come out of it unchanged.
#include <gtest/gtest.h>

#include <fstream>
#include <regex>

#include "fixtures/quickstart_sample.h"
#include "harness/inspect/fingerprint.h"
#include "harness/pg/connection.h"
#include "scenarios/support/test_env.h"

namespace harness::testing {
namespace {

#define EXPECT_CONTAINS(haystack, needle) \
  EXPECT_NE(std::string(haystack).find(needle), std::string::npos) << (haystack)

struct State {
  inspect::CatalogSnapshot catalog;
  inspect::Fingerprint repositories, chunks;
  std::string revision;
};

State Capture(const TestDatabase& db) {
  State s;
  s.catalog = db.Snapshot();
  pg::Connection conn(db.url());
  pqxx::read_transaction tx(conn.raw());
  s.repositories = inspect::TakeFingerprint(tx, "repositories");
  s.chunks = inspect::TakeFingerprint(tx, "code_chunks");
  s.revision = db.Scalar("SELECT coalesce((SELECT string_agg(version_num, ',') FROM alembic_version), '<none>')");
  return s;
}

void ExpectUnchanged(const TestDatabase& db, const State& before) {
  State after = Capture(db);
  EXPECT_TRUE(inspect::Diff(before.catalog, after.catalog).empty())
      << JoinLines(inspect::Diff(before.catalog, after.catalog));
  EXPECT_EQ(after.repositories, before.repositories);
  EXPECT_EQ(after.chunks, before.chunks);
  EXPECT_EQ(after.revision, before.revision);
}

TEST(VerifyCopy, RehearsesOnAScratchCloneAndLeavesTheSourceUnchanged) {
  TestDatabase db("005");
  db.Exec(fixtures::kQuickstartSampleSql);
  State before = Capture(db);
  std::string junit = ::testing::TempDir() + pg::UniqueDatabaseName("junit") + ".xml";
  auto r = RunCli({"verify", "--junit", junit}, db.url().text());
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_CONTAINS(r.out, "cloned into mh_verify");
  EXPECT_CONTAINS(r.out, "READY");
  std::ifstream in(junit);
  std::string xml((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::remove(junit.c_str());
  EXPECT_CONTAINS(xml, "<testcase classname=\"migration-harness.post\" name=\"post.data_integrity\"");
  EXPECT_EQ(xml.find("<failure"), std::string::npos) << xml;
  ExpectUnchanged(db, before);
  // The scratch database is gone (by name: other tests clone in parallel).
  std::smatch m;
  ASSERT_TRUE(std::regex_search(r.out, m, std::regex("cloned into (mh_verify_[0-9a-z_]+)"))) << r.out;
  EXPECT_EQ(db.Scalar("SELECT count(*) FROM pg_database WHERE datname = '" + m[1].str() + "'"), "0");
}

TEST(VerifyCopy, IntoEmbeddedCopiesWithPgDumpAndLeavesTheSourceUnchanged) {
  TestDatabase db("005");
  db.Exec(fixtures::kQuickstartSampleSql);
  State before = Capture(db);
  auto r = RunCli({"verify", "--into-embedded"}, db.url().text());
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_CONTAINS(r.out, "copied into the embedded cluster");
  EXPECT_CONTAINS(r.out, "✓ code_chunks data preserved (6 rows, fingerprint matches baseline)");
  EXPECT_CONTAINS(r.out, "READY");
  ExpectUnchanged(db, before);
}

TEST(VerifyCopy, CloneRefusedWhileAnotherSessionIsConnectedSaysWhatToDo) {
  TestDatabase db("005");
  State before = Capture(db);
  pg::Connection other(db.url());  // an application still connected
  auto r = RunCli({"verify"}, db.url().text());
  EXPECT_EQ(r.exit_code, 3) << r.out << r.err;
  EXPECT_CONTAINS(r.err, "cannot clone");
  EXPECT_CONTAINS(r.err, "--into-embedded");
  ExpectUnchanged(db, before);
}

TEST(VerifyCopy, PasswordNeverAppearsInOutputOrReports) {
  TestDatabase db("005");
  std::string url = db.url().text() + " password=Sup3rS3cretValue";
  std::string json = ::testing::TempDir() + pg::UniqueDatabaseName("pw") + ".json";
  auto r = RunCli({"verify", "--report-json", json}, url);
  std::ifstream in(json);
  std::string report((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::remove(json.c_str());
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_EQ((r.out + r.err + report).find("Sup3rS3cretValue"), std::string::npos);
}

TEST(VerifyCopy, BlockingForeignKeyIsRefusedAndNamed) {
  TestDatabase db("005");
  db.Exec(fixtures::kQuickstartSampleSql);
  db.Exec("ALTER TABLE deployment_events ADD COLUMN repo uuid CONSTRAINT deployment_repo_fk "
          "REFERENCES repositories(id)");
  State before = Capture(db);
  auto r = RunCli({"verify"}, db.url().text());
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
  EXPECT_CONTAINS(r.out, "deployment_events.deployment_repo_fk -> repositories");
  EXPECT_CONTAINS(r.out, "DROP CONSTRAINT");
  EXPECT_CONTAINS(r.out, "BLOCKED");
  ExpectUnchanged(db, before);
}

TEST(VerifyCopy, OrphanedChunksAreRefusedWithCountAndSample) {
  TestDatabase db("005");
  db.Exec(fixtures::kQuickstartSampleSql);
  db.Exec("ALTER TABLE code_chunks DROP CONSTRAINT code_chunks_repository_id_fkey;"
          "INSERT INTO code_chunks (id, repository_id, file_path, content, start_line, end_line) "
          "VALUES ('00000000-0000-0000-0000-0000000000ff', gen_random_uuid(), 'o.py', 'x', 1, 1)");
  State before = Capture(db);
  auto r = RunCli({"verify"}, db.url().text());
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
  EXPECT_CONTAINS(r.out, "found 1 chunk(s) whose repository does not exist (e.g. 00000000-0000-0000-0000-0000000000ff)");
  ExpectUnchanged(db, before);
}

TEST(VerifyCopy, UnknownRevisionIsRefused) {
  TestDatabase db("005");
  db.Exec("UPDATE alembic_version SET version_num = '9zz'");
  State before = Capture(db);
  auto r = RunCli({"verify"}, db.url().text());
  EXPECT_EQ(r.exit_code, 2) << r.out << r.err;
  EXPECT_CONTAINS(r.err, "'9zz'");
  ExpectUnchanged(db, before);
}

TEST(VerifyCopy, AlreadyMigratedIsRefused) {
  TestDatabase db("head");
  auto r = RunCli({"verify"}, db.url().text());
  EXPECT_EQ(r.exit_code, 2) << r.out << r.err;
  EXPECT_CONTAINS(r.err, "already applied");
}

TEST(VerifyCopy, NoVersionTableIsRefused) {
  TestDatabase db("005");
  db.Exec("DROP TABLE alembic_version");
  auto r = RunCli({"verify"}, db.url().text());
  EXPECT_EQ(r.exit_code, 2) << r.out << r.err;
  EXPECT_CONTAINS(r.err, "no alembic_version table");
}

TEST(VerifyCopy, EarlierRevisionIsUpgradedTo005First) {
  TestDatabase db("003a");
  State before = Capture(db);
  auto r = RunCli({"verify"}, db.url().text());
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_CONTAINS(r.out, "upgrade to 005 first");
  ExpectUnchanged(db, before);
}

}  // namespace
}  // namespace harness::testing
