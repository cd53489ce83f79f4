// `verify`, the rehearsal an engineer runs before the maintenance window:
// on the embedded default, and on a "production copy" given by URL, which
// must come out of it unchanged. The tests of what 002 does run on both
// schema shapes (harness/codesearch/shape.h); a schema of neither is refused.
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <regex>
#include <sstream>

#include <signal.h>

#include <thread>

#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <pqxx/pqxx>

#include "harness/codesearch/generator.h"
#include "harness/codesearch/quickstart_sample.h"
#include "harness/error.h"
#include "harness/sys/process.h"
#include "harness/codesearch/rehearsal_data.h"
#include "harness/verify/rehearsal.h"
#include "harness/verify/sql_revisions.h"
#include "harness/pg/connection.h"
#include "scenarios/support/test_env.h"

namespace harness::testing {
namespace {

// Rows for a rehearsal on `shape`, 6 chunks either way: the quickstart's
// sample (3 repositories), or 3 x 2 generated on the production shape, with
// rows in its other tables, the four task link tables included.
void WriteSample(const TestDatabase& db, Shape shape) {
  if (shape == Shape::kQuickstart) return db.Exec(codesearch::kQuickstartSampleSql);
  pg::Connection conn(db.url());
  codesearch::GeneratorOptions go;
  go.repositories = 3;
  go.chunks_per_repo = 2;
  codesearch::Generate(conn, go);
}

// A --report-json file, read and removed (null when missing or malformed).
nlohmann::json TakeJson(const std::string& path) {
  std::ifstream in(path);
  auto json = nlohmann::json::parse(in, nullptr, /*allow_exceptions=*/false);
  std::remove(path.c_str());
  return json.is_discarded() ? nlohmann::json() : json;
}

// The rollback checks that name a foreign key restored NOT VALID, by id,
// each with its status.
std::map<std::string, std::string> NotValidChecks(const nlohmann::json& report) {
  std::map<std::string, std::string> out;
  for (const auto& suite : report["suites"])
    if (suite["suite"] == "rollback")
      for (const auto& c : suite["checks"])
        if (c["id"].get<std::string>().starts_with("rollback.not_valid."))
          out[c["id"]] = c["status"];
  return out;
}

// On the production shape the generated rows of all four task link tables
// reference tasks, which the rollback brings back empty.
const std::map<std::string, std::string> kTaskLinksNotValid = {
    {"rollback.not_valid.fk_task_branch_links_task_id_tasks", "info"},
    {"rollback.not_valid.fk_task_commit_links_task_id_tasks", "info"},
    {"rollback.not_valid.fk_task_planning_references_task_id_tasks", "info"},
    {"rollback.not_valid.fk_task_status_history_task_id_tasks", "info"}};

// Tests of what verify finds and does with 002 on each schema shape.
class VerifyBothShapes : public ::testing::TestWithParam<Shape> {};

INSTANTIATE_TEST_SUITE_P(Shapes, VerifyBothShapes,
                         ::testing::Values(Shape::kQuickstart, Shape::kProduction), ShapeTestName);

TEST_P(VerifyBothShapes, RehearsesOnAScratchCloneAndLeavesTheSourceUnchanged) {
  const Shape shape = GetParam();
  TestDatabase db("005", shape);
  WriteSample(db, shape);
  const DatabaseState before = CaptureState(db);
  std::string junit = ::testing::TempDir() + pg::UniqueDatabaseName("junit") + ".xml";
  std::string json = ::testing::TempDir() + pg::UniqueDatabaseName("report") + ".json";
  auto r = RunCli({"verify", "--junit", junit, "--report-json", json}, db.url().text());
  auto report = TakeJson(json);
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_CONTAINS(r.out, "cloned into mh_verify");
  EXPECT_CONTAINS(r.out, std::string("Schema:  ") + codesearch::ShapeName(shape) + " shape");
  EXPECT_EQ(report["shape"], codesearch::ShapeName(shape));
  EXPECT_CONTAINS(r.out, "READY: 005 -> 002 upgraded in");
  // The rollback is exact on the quickstart's shape; on production's, but
  // for the task links' foreign keys.
  if (shape == Shape::kQuickstart) {
    EXPECT_CONTAINS(r.out, "and rolled back exactly in");
    EXPECT_EQ(NotValidChecks(report), (std::map<std::string, std::string>{}));
  } else {
    EXPECT_CONTAINS(r.out, "rolled back (exactly, but for 4 foreign key(s) restored NOT VALID");
    EXPECT_EQ(NotValidChecks(report), kTaskLinksNotValid);
  }
  // The checks every revision gets, measured on the server: what each step
  // of 002 did, what it discarded, what depended on the tables it drops.
  std::map<std::string, std::string> effect, discarded;
  for (const auto& s : report["suites"])
    for (const auto& c : s["checks"]) {
      if (s["suite"] == "step effects") effect[c["id"]] = c["detail"];
      if (s["suite"] == "discarded rows") discarded[c["id"]] = c["detail"];
    }
  EXPECT_CONTAINS(effect["step.002.up.6"], "Creating performance index: index build + full scan; built "
                                           "idx_project_repository; scanned repositories");
  EXPECT_CONTAINS(effect["step.002.up.8"], "Running validation checks: full scan; scanned code_chunks");
  EXPECT_CONTAINS(effect["step.002.up.1"], "catalog only; AccessExclusiveLock on ");
  EXPECT_CONTAINS(effect["step.002.down.5"], "created tasks");
  // Every dropped table, with its rows counted in words: "1 row" (the
  // production sample has one archived work item), "8 rows".
  int dropped = 0;
  for (const auto& [id, detail] : discarded) {
    if (id.rfind("discarded.table.", 0) != 0) continue;
    ++dropped;
    const std::string table = id.substr(std::string("discarded.table.").size());
    const std::string n = db.Scalar("SELECT count(*) FROM " + table);
    EXPECT_EQ(detail, "table " + table + " dropped: " + n + (n == "1" ? " row" : " rows") + " discarded");
  }
  EXPECT_EQ(dropped, 9);
  EXPECT_CONTAINS(discarded["dependents.vendor_extractors"],
                  "constraint vendor_deployment_links_vendor_id_fkey on table vendor_deployment_links "
                  "depended on it");
  // The rehearsed upgrade and rollback log their steps; the re-run, the
  // final upgrade and the forecast's measurement only with -v.
  EXPECT_CONTAINS(r.err, "Running upgrade 005 -> 002");
  EXPECT_CONTAINS(r.err, "WARNING:  Data in dropped tables NOT restored");
  EXPECT_EQ(r.err.find("Stamped revision"), std::string::npos) << r.err;
  EXPECT_EQ(r.err.find("NOTICE:  Constraint check_repositories_project_id already exists"),
            std::string::npos)
      << r.err;
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

// The copy is plumbing, the same for either shape: the quickstart's only
// (an embedded cluster costs a second or two).
TEST(VerifyCopy, IntoEmbeddedCopiesWithPgDumpAndLeavesTheSourceUnchanged) {
  if (const std::string why = WhyLocalPgDumpCannotDumpTestServer(); !why.empty()) GTEST_SKIP() << why;
  TestDatabase db("005");
  db.Exec(codesearch::kQuickstartSampleSql);
  const DatabaseState before = CaptureState(db);
  auto r = RunCli({"verify", "--into-embedded"}, db.url().text());
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  // Before copying: every extension the source uses (plpgsql, and vector
  // where the server has pgvector) exists on the embedded server.
  const std::string used =
      db.Scalar("SELECT string_agg(extname || ' ' || extversion, ', ' ORDER BY extname) FROM "
                "pg_catalog.pg_extension");
  EXPECT_CONTAINS(used, "plpgsql");
  EXPECT_TRUE(std::regex_search(r.out, std::regex("✓ check the source's extensions +[0-9.]+s  " +
                                                  used + ": available here")))
      << r.out;
  EXPECT_CONTAINS(r.out, "copied into the embedded cluster");
  EXPECT_CONTAINS(r.out, "✓ code_chunks data preserved (6 rows as recorded; not read again: no row written since");
  EXPECT_CONTAINS(r.out, "READY");
  ExpectUnchanged(db, before);
}

TEST(VerifyCopy, CloneRefusedWhileAnotherSessionIsConnectedSaysWhatToDo) {
  TestDatabase db("005");
  const DatabaseState before = CaptureState(db);
  pg::Connection other(db.url());  // an application still connected
  auto r = RunCli({"verify"}, db.url().text());
  EXPECT_EQ(r.exit_code, 3) << r.out << r.err;
  EXPECT_CONTAINS(r.err, "cannot clone");
  // Named before CREATE DATABASE is tried (the server would wait 5 s for
  // them to leave, then fail without naming them).
  EXPECT_CONTAINS(r.err, fmt::format("other sessions are connected to it (pid {} ",
                                     other.backend_pid()));
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

// From a dropped table into a kept one: into repositories, or on the
// production shape into the table only it has, code_files.
TEST_P(VerifyBothShapes, BlockingForeignKeyIsRefusedAndNamed) {
  TestDatabase db("005", GetParam());
  WriteSample(db, GetParam());
  const std::string kept = GetParam() == Shape::kProduction ? "code_files" : "repositories";
  db.Exec("ALTER TABLE deployment_events ADD COLUMN kept_id uuid CONSTRAINT deployment_kept_fk "
          "REFERENCES " + kept + "(id)");
  const DatabaseState before = CaptureState(db);
  auto r = RunCli({"verify"}, db.url().text());
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
  EXPECT_CONTAINS(r.out, "deployment_events.deployment_kept_fk -> " + kept);
  EXPECT_CONTAINS(r.out, "ALTER TABLE public.deployment_events DROP CONSTRAINT deployment_kept_fk;");
  EXPECT_CONTAINS(r.out, "BLOCKED");
  ExpectUnchanged(db, before);
}

// A chunk whose repository (production: whose code file) is gone.
TEST_P(VerifyBothShapes, OrphanedChunksAreRefusedWithCountAndSample) {
  const bool production = GetParam() == Shape::kProduction;
  TestDatabase db("005", GetParam());
  WriteSample(db, GetParam());
  db.Exec(production
              ? "ALTER TABLE code_chunks DROP CONSTRAINT fk_code_chunks_code_file_id_code_files;"
                "INSERT INTO code_chunks (id, code_file_id, content, start_line, end_line, "
                "chunk_type) VALUES ('00000000-0000-0000-0000-0000000000ff', gen_random_uuid(), "
                "'x', 1, 1, 'function')"
              : "ALTER TABLE code_chunks DROP CONSTRAINT code_chunks_repository_id_fkey;"
                "INSERT INTO code_chunks (id, repository_id, file_path, content, start_line, "
                "end_line) VALUES ('00000000-0000-0000-0000-0000000000ff', gen_random_uuid(), "
                "'o.py', 'x', 1, 1)");
  const DatabaseState before = CaptureState(db);
  auto r = RunCli({"verify"}, db.url().text());
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
  const std::string whose = production ? "code file, or whose file's repository," : "repository";
  EXPECT_CONTAINS(r.out, "found 1 chunk(s) whose " + whose +
                             " does not exist (e.g. 00000000-0000-0000-0000-0000000000ff)");
  EXPECT_CONTAINS(r.out, "DELETE FROM public.code_chunks c WHERE NOT EXISTS");
  ExpectUnchanged(db, before);
}

// The service's own schema built from nothing: the rollback checks name each
// task link restored NOT VALID, and the verdict says how many.
TEST(VerifyEmbedded, TheProductionShapeIsReadyAndItsNotValidForeignKeysAreNamed) {
  std::string json = ::testing::TempDir() + pg::UniqueDatabaseName("production") + ".json";
  auto r = RunCli({"verify", "--shape", "production", "--repositories", "10", "--chunks-per-repo",
                   "10", "--report-json", json});
  auto report = TakeJson(json);
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_CONTAINS(r.out, "the production schema at 005 (the service's own chain)");
  EXPECT_CONTAINS(r.out, "Schema:  production shape (code_chunks -> code_files -> repositories)");
  EXPECT_CONTAINS(r.out, "• Restored NOT VALID: task_status_history."
                         "fk_task_status_history_task_id_tasks (");
  // 4 of 002's own, its foreign keys, a data line for each of the 10 kept
  // tables, the catalog; the dropped tables' rows are an information.
  EXPECT_CONTAINS(r.out, "All post-rollback checks passed (16/16)");
  EXPECT_CONTAINS(r.out, "✓ task_status_history data preserved (");
  EXPECT_CONTAINS(r.out, "READY: 005 -> 002 upgraded in");
  EXPECT_CONTAINS(r.out, "; the dropped tables come back empty (archived_work_items ");
  EXPECT_CONTAINS(r.out, "rolled back (exactly, but for 4 foreign key(s) restored NOT VALID: see "
                         "the rollback checks)");
  EXPECT_EQ(NotValidChecks(report), kTaskLinksNotValid);
  EXPECT_EQ(report["shape"], "production");
  EXPECT_EQ(report["counts"]["code_chunks"], 100);
}

// Production's schema with code_chunks.code_file_id gone reaches no
// repository either way: a verdict (exit 2), with the report, and nothing
// rehearsed.
TEST(VerifyCopy, ASchemaOfNeitherShapeIsBlockedWithExitTwoAndTheReport) {
  TestDatabase db("005", Shape::kProduction);
  db.Exec("ALTER TABLE code_chunks DROP COLUMN code_file_id");
  const DatabaseState before = CaptureState(db);
  auto r = RunCli({"verify"}, db.url().text());
  EXPECT_EQ(r.exit_code, 2) << r.out << r.err;
  EXPECT_CONTAINS(r.out, "Migration rehearsal 005 -> 002");
  EXPECT_CONTAINS(r.out, "✗ schema shape");
  EXPECT_CONTAINS(r.out, "BLOCKED: 002 does not know this schema: ");
  EXPECT_CONTAINS(r.out, "code_chunks has neither repository_id nor code_file_id");
  EXPECT_EQ(r.out.find("upgrade 005 -> 002"), std::string::npos) << r.out;
  EXPECT_EQ(r.err.find("Running upgrade"), std::string::npos) << r.err;
  ExpectUnchanged(db, before);
}

// Both servers here are one PostgreSQL build, so no real extension is on
// the source's and missing from the embedded one. The source's pg_extension
// gets a row for one that no server here has (a superuser may write the
// catalog): that row is all a source using such an extension shows before
// pg_dump runs, and pg_dump, which would need its objects, must not run.
TEST(VerifyCopy, IntoEmbeddedRefusesAnExtensionTheEmbeddedServerLacksBeforeCopying) {
  TestDatabase db("005");
  db.Exec("INSERT INTO pg_catalog.pg_extension (oid, extname, extowner, extnamespace, "
          "extrelocatable, extversion) SELECT (SELECT max(oid)::bigint + 1 FROM "
          "pg_catalog.pg_extension)::oid, 'mh_absent_extension', r.oid, "
          "'public'::regnamespace, false, '1.0' FROM pg_catalog.pg_roles r WHERE r.rolname = "
          "current_user");
  const DatabaseState before = CaptureState(db);
  std::string json = ::testing::TempDir() + pg::UniqueDatabaseName("ext") + ".json";
  auto r = RunCli({"verify", "--into-embedded", "--report-json", json}, db.url().text());
  auto report = TakeJson(json);
  EXPECT_EQ(r.exit_code, 2) << r.out << r.err;
  EXPECT_CONTAINS(r.err, "uses the extension(s) mh_absent_extension 1.0, which the embedded "
                         "PostgreSQL");
  EXPECT_CONTAINS(r.err, "leave out --into-embedded");
  EXPECT_CONTAINS(r.err, "nothing was copied");
  EXPECT_CONTAINS(r.out, "✗ check the source's extensions");
  ASSERT_TRUE(report.is_object()) << r.out;
  ASSERT_FALSE(report["phases"].empty());
  EXPECT_EQ(report["phases"].back()["name"], "check the source's extensions");
  EXPECT_EQ(report["phases"].back()["ok"], false);
  EXPECT_EQ(report["exit_code"], 2);
  EXPECT_EQ(r.out.find("copy the database into the embedded cluster"), std::string::npos)
      << r.out;
  ExpectUnchanged(db, before);
}

// Another version of an extension than the embedded server has (a source on
// a newer pgvector, say) is refused alike, naming both versions.
TEST(VerifyCopy, IntoEmbeddedRefusesAnotherVersionOfAnExtension) {
  TestDatabase db("005");
  db.Exec("UPDATE pg_catalog.pg_extension SET extversion = '0.9' WHERE extname = 'plpgsql'");
  const DatabaseState before = CaptureState(db);
  auto r = RunCli({"verify", "--into-embedded"}, db.url().text());
  EXPECT_EQ(r.exit_code, 2) << r.out << r.err;
  EXPECT_CONTAINS(r.err, "uses the extension(s) plpgsql 0.9 (here: 1.0)");
  ExpectUnchanged(db, before);
}

// --shape chooses the schema the embedded run builds; a given database's
// is detected, and the two together are a usage error.
TEST(VerifyCli, ShapeWithADatabaseIsAUsageError) {
  TestDatabase db("005", Shape::kProduction);
  auto r = RunCliUnchanged(db, {"verify", "--shape", "production"}, 2);
  EXPECT_CONTAINS(r.err, "--shape is for the embedded run");
  EXPECT_EQ(r.out.find("Migration rehearsal"), std::string::npos) << r.out;
}

TEST(VerifyCli, AnUnknownShapeIsRefusedByTheParser) {
  auto r = RunCli({"verify", "--shape", "staging"});
  EXPECT_EQ(r.exit_code, 2) << r.out << r.err;
  EXPECT_CONTAINS(r.err, "--shape: staging not in {quickstart,production}");
  EXPECT_EQ(r.out.find("Migration rehearsal"), std::string::npos) << r.out;
}

TEST(VerifyCopy, UnknownRevisionIsRefused) {
  TestDatabase db("005");
  db.Exec("UPDATE alembic_version SET version_num = '9zz'");
  const DatabaseState before = CaptureState(db);
  auto r = RunCli({"verify"}, db.url().text());
  EXPECT_EQ(r.exit_code, 2) << r.out << r.err;
  EXPECT_CONTAINS(r.err, "'9zz'");
  ExpectUnchanged(db, before);
}

TEST(VerifyCopy, AlreadyMigratedIsRefused) {
  TestDatabase db("head");
  auto r = RunCliUnchanged(db, {"verify"}, 2);
  EXPECT_CONTAINS(r.err, "already applied");
}

TEST(VerifyCopy, NoVersionTableIsRefused) {
  TestDatabase db("005");
  db.Exec("DROP TABLE alembic_version");
  const DatabaseState before = CaptureState(db);
  auto r = RunCli({"verify"}, db.url().text());
  EXPECT_EQ(r.exit_code, 2) << r.out << r.err;
  EXPECT_CONTAINS(r.err, "no alembic_version table");
  ExpectUnchanged(db, before);
}

// Bad input or a database error still leaves the reports, with the phase
// that failed and the exit code, so a CI system shows why.
TEST(VerifyCopy, ReportsAreWrittenWhenTheRehearsalStopsOnAnError) {
  TestDatabase db("005");
  db.Exec("UPDATE alembic_version SET version_num = '9zz'");
  std::string base = ::testing::TempDir() + pg::UniqueDatabaseName("failed");
  auto r =
      RunCliUnchanged(db, {"verify", "--junit", base + ".xml", "--report-json", base + ".json"}, 2);
  EXPECT_CONTAINS(r.out, "✗ current revision");
  EXPECT_CONTAINS(r.out, "FAILED: the database is at revision '9zz'");
  std::ifstream xml_in(base + ".xml");
  std::string xml((std::istreambuf_iterator<char>(xml_in)), std::istreambuf_iterator<char>());
  std::ifstream json_in(base + ".json");
  auto json = nlohmann::json::parse(json_in, nullptr, /*allow_exceptions=*/false);
  std::remove((base + ".xml").c_str());
  std::remove((base + ".json").c_str());
  EXPECT_CONTAINS(xml, "name=\"current revision\"");
  EXPECT_CONTAINS(xml, "<failure");
  ASSERT_TRUE(json.is_object());
  EXPECT_EQ(json["exit_code"], 2);
  EXPECT_EQ(json["ready"], false);
}

// The index built CONCURRENTLY beforehand (README, troubleshooting) needs
// repositories.project_id at 005: the rehearsal keeps them through the
// upgrade, says the rollback removes them, and compares the rest exactly.
TEST_P(VerifyBothShapes, AnIndexBuiltBeforehandIsKeptAndTheRollbackSaysItRemovesIt) {
  TestDatabase db("005", GetParam());
  WriteSample(db, GetParam());
  db.Exec("ALTER TABLE repositories ADD COLUMN project_id varchar(50) NOT NULL DEFAULT 'default'");
  db.Exec("CREATE INDEX idx_project_repository ON repositories (project_id, id)");
  const DatabaseState before = CaptureState(db);
  auto r = RunCli({"verify"}, db.url().text());
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_CONTAINS(r.err, "already exists: kept");
  EXPECT_CONTAINS(r.out, "built beforehand, not compared: repositories.project_id, "
                         "repositories.idx_project_repository");
  EXPECT_CONTAINS(r.out, "Built before the upgrade and removed by the rollback");
  // (On the production shape followed by the known NOT VALID task links.)
  EXPECT_CONTAINS(r.out, "✓ Schema equals the pre-upgrade catalog (empty diff");
  EXPECT_CONTAINS(r.out, "READY");
  ExpectUnchanged(db, before);
}

TEST(VerifyCopy, EarlierRevisionIsUpgradedTo005First) {
  TestDatabase db("003a");
  const DatabaseState before = CaptureState(db);
  auto r = RunCli({"verify"}, db.url().text());
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_CONTAINS(r.out, "upgrade to 005 first");
  ExpectUnchanged(db, before);
}

TEST(VerifyCopy, AMissingCoreTableBlocksTheMigration) {
  TestDatabase db("005");
  db.Exec("DROP TABLE code_chunks");
  auto r = RunCliUnchanged(db, {"verify"}, 2);  // not the schema 002 is for: bad input
  EXPECT_CONTAINS(r.out, "✗ Core tables exist: missing {code_chunks}");
  EXPECT_CONTAINS(r.out, "BLOCKED");
  EXPECT_EQ(db.Revision(), "005");
}

// No PostgreSQL older than 14 is packaged here: the refusal is exercised by
// raising the minimum above the running server.
TEST(VerifyCopy, AServerBelowTheMinimumIsRefusedBeforeAnythingRuns) {
  TestDatabase db("005");
  db.Exec(codesearch::kQuickstartSampleSql);
  const DatabaseState before = CaptureState(db);
  verify::VerifyOptions o;
  o.source = db.url();
  o.in_place = true;  // even in place: nothing may change
  o.minimum_server_version = 990000;
  try {
    verify::SqlRevisions revisions(Chain(), {}, MigrationsDir().string());
    codesearch::RehearsalData data({}, Chain());
    verify::Run(o, revisions, data);
    ADD_FAILURE() << "verify ran on a server below its minimum";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ExitCode::kUsage);
    EXPECT_CONTAINS(e.what(), "002 needs 99 or later");
    EXPECT_CONTAINS(e.hint(), "nothing was changed");
  }
  ExpectUnchanged(db, before);
}

// --into-embedded: the version that counts is the source's, read before
// pg_dump runs, not the embedded cluster's; nothing is started or copied.
TEST(VerifyCopy, IntoEmbeddedChecksTheSourceServerVersionFirst) {
  TestDatabase db("005");
  const DatabaseState before = CaptureState(db);
  verify::VerifyOptions o;
  o.source = db.url();
  o.into_embedded = true;
  o.minimum_server_version = 990000;
  report::Rehearsal partial;
  try {
    verify::SqlRevisions revisions(Chain(), {}, MigrationsDir().string());
    codesearch::RehearsalData data({}, Chain());
    verify::Run(o, revisions, data, &partial);
    ADD_FAILURE() << "verify copied from a server below its minimum";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ExitCode::kUsage);
    EXPECT_CONTAINS(e.what(), "002 needs 99 or later");
  }
  ASSERT_EQ(partial.phases.size(), 1u);
  EXPECT_EQ(partial.phases[0].name, "connect");
  EXPECT_FALSE(partial.phases[0].ok);
  EXPECT_EQ(partial.exit_code, 2);
  ExpectUnchanged(db, before);
}

TEST(VerifyCopy, AUserWithoutCreatedbIsToldWhatToDo) {
  TestDatabase db("005");
  db.Exec(codesearch::kQuickstartSampleSql);
  Role reader("NOCREATEDB");
  db.Exec("GRANT SELECT ON ALL TABLES IN SCHEMA public TO " + reader.name());
  const DatabaseState before = CaptureState(db);
  std::string url = db.url().text() + " user=" + reader.name();
  auto r = RunCli({"verify"}, url);
  EXPECT_EQ(r.exit_code, 3) << r.out << r.err;
  EXPECT_CONTAINS(r.err, "cannot clone");
  EXPECT_CONTAINS(r.err, "permission denied to create database");
  EXPECT_CONTAINS(r.err, "--into-embedded");
  // What the hint says works for the same user: pg_dump only reads.
  if (const std::string why = WhyLocalPgDumpCannotDumpTestServer(); !why.empty()) {
    ExpectUnchanged(db, before);
    GTEST_SKIP() << "the copy: " << why;
  }
  auto copy = RunCli({"verify", "--into-embedded"}, url);
  EXPECT_EQ(copy.exit_code, 0) << copy.out << copy.err;
  EXPECT_CONTAINS(copy.out, "READY");
  ExpectUnchanged(db, before);
}

// A live session holds a lock on a core table: in place, the upgrade gives
// up within --lock-timeout and names the table; the copy's pg_dump too.
TEST(VerifyCopy, ALockedCoreTableFailsWithinTheLockTimeoutAndIsNamed) {
  TestDatabase db("005");
  db.Exec(codesearch::kQuickstartSampleSql);
  const DatabaseState before = CaptureState(db);
  {
    pg::Connection blocker(db.url());
    pqxx::work hold(blocker.raw());
    hold.exec("LOCK TABLE code_chunks IN ACCESS SHARE MODE");
    auto t0 = std::chrono::steady_clock::now();
    auto r = RunCli({"--lock-timeout", "0.3", "verify", "--in-place"}, db.url().text());
    double took = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    EXPECT_EQ(r.exit_code, 3) << r.out << r.err;
    EXPECT_CONTAINS(r.err, "table code_chunks is locked");
    EXPECT_CONTAINS(r.err, "by pid " + std::to_string(blocker.backend_pid()));
    EXPECT_LT(took, 30.0);
  }
  ExpectUnchanged(db, before);
  if (const std::string why = WhyLocalPgDumpCannotDumpTestServer(); !why.empty())
    GTEST_SKIP() << "the copy: " << why;
  {
    pg::Connection blocker(db.url());
    pqxx::work hold(blocker.raw());
    hold.exec("LOCK TABLE repositories IN ACCESS EXCLUSIVE MODE");
    auto r = RunCli({"--lock-timeout", "0.3", "verify", "--into-embedded"}, db.url().text());
    EXPECT_EQ(r.exit_code, 3) << r.out << r.err;
    EXPECT_CONTAINS(r.err, "pg_dump");
    EXPECT_CONTAINS(r.err, "repositories");
  }
  ExpectUnchanged(db, before);
}

// A verify in clone mode held on its scratch clone: finds the clone made by
// the process `cli_pid` (the scratch name carries it), takes a lock on its
// repositories table from another session, and waits until the rehearsal
// queues behind it. Empty name on failure.
struct HeldScratch {
  std::string name;
  std::unique_ptr<pg::Connection> blocker;
  std::unique_ptr<pqxx::work> hold;

  explicit HeldScratch(const BackgroundCli& cli) : HeldScratch(cli.pid()) {}
  explicit HeldScratch(pid_t cli_pid) {
    pg::Connection admin(TestServer().AdminUrl());
    auto scalar = [&](const std::string& sql) {
      pqxx::nontransaction tx(admin.raw());
      auto rows = tx.exec(sql);
      return rows.empty() ? std::string() : rows[0][0].as<std::string>();
    };
    const std::string like = "'mh\\_verify\\_%\\_" + std::to_string(cli_pid) + "\\_%'";
    std::string found;
    if (!WaitUntil([&] { return !(found = scalar("SELECT datname FROM pg_database WHERE datname "
                                                 "LIKE " + like)).empty(); },
                   std::chrono::seconds(30)))
      return;
    if (!WaitUntil(
            [&] {
              try {  // it may still be being created
                blocker = std::make_unique<pg::Connection>(TestServer().UrlFor(found));
              } catch (const Error&) {
              }
              return blocker != nullptr;
            },
            std::chrono::seconds(30)))
      return;
    hold = std::make_unique<pqxx::work>(blocker->raw());
    hold->exec("LOCK TABLE repositories IN ACCESS SHARE MODE");
    if (WaitUntil([&] { return scalar("SELECT count(*) FROM pg_stat_activity WHERE datname = '" +
                                      found + "' AND wait_event_type = 'Lock'") == "1"; },
                  std::chrono::seconds(30)))
      name = found;
  }
};

// A verify killed with SIGKILL cannot drop its clone; the next verify on
// the same server does, and says so.
TEST(VerifyCopy, ASigkilledRunsScratchDatabaseIsDroppedByTheNextVerify) {
  TestDatabase db("005");
  db.Exec(codesearch::kQuickstartSampleSql);
  pg::Connection admin(TestServer().AdminUrl());
  auto count = [&](const std::string& where) {
    pqxx::nontransaction tx(admin.raw());
    return tx.exec("SELECT count(*) FROM " + where)[0][0].as<int>();
  };
  std::string scratch;
  {
    BackgroundCli cli({"--lock-timeout", "0", "verify"}, db.url().text());
    HeldScratch held(cli);
    ASSERT_FALSE(held.name.empty()) << "the rehearsal never waited on its scratch clone";
    scratch = held.name;
    cli.Signal(SIGKILL);
    ASSERT_TRUE(cli.Wait(std::chrono::seconds(30)));
    held.hold->abort();  // the orphaned session then finds its client gone
  }
  ASSERT_EQ(count("pg_database WHERE datname = '" + scratch + "'"), 1) << "nothing was left";
  ASSERT_TRUE(WaitUntil([&] { return count("pg_stat_activity WHERE datname = '" + scratch + "'") == 0; },
                        std::chrono::seconds(30)));
  auto r = RunCli({"verify"}, db.url().text());
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  // (A verify of a test running beside this one may have dropped it first.)
  EXPECT_EQ(count("pg_database WHERE datname = '" + scratch + "'"), 0) << r.err;
}

// Only this role's, made on this host, by a process that is gone. A prefix
// of its own: verify runs of other tests clean up mh_verify_* meanwhile.
TEST(ScratchDatabases, TheCleanUpLeavesOtherRolesHostsAndLiveProcessesAlone) {
  Role other("NOSUPERUSER");
  pid_t dead = fork();
  if (dead == 0) _exit(0);
  waitpid(dead, nullptr, 0);
  pid_t live = fork();
  if (live == 0) {
    pause();
    _exit(0);
  }
  const std::string prefix = "mh_rt" + std::to_string(getpid());
  const std::string host = pg::ScratchHostTag(), d = std::to_string(dead),
                    l = std::to_string(live),
                    l_start = std::to_string(sys::ProcessStartTime(live));
  const std::string gone = prefix + "_" + host + "_" + d + "_1_0_0000000a";
  const std::string gone_empty = prefix + "_empty_" + host + "_" + d + "_1_1_0000000e";
  // The live child's pid, but another process's start time: the pid was reused.
  const std::string reused = prefix + "_" + host + "_" + l + "_1_2_0000000f";
  const std::map<std::string, std::string> kept = {
      {prefix + "_" + host + "_" + d + "_1_3_0000000b", " OWNER " + other.name()},
      {prefix + "_0badc0de_" + d + "_1_4_0000000c", ""},
      {prefix + "_" + host + "_" + l + "_" + l_start + "_5_0000000d", ""},
      {prefix + "_" + host + "_" + d + "_notmine", ""}};
  pg::Connection admin(TestServer().AdminUrl());
  pqxx::nontransaction tx(admin.raw());
  for (const auto& name : {gone, gone_empty, reused}) tx.exec("CREATE DATABASE " + name);
  for (const auto& [name, owner] : kept) tx.exec("CREATE DATABASE " + name + owner);
  auto dropped = pg::ReapAbandonedDatabases(TestServer().AdminUrl(), prefix);
  kill(live, SIGKILL);
  waitpid(live, nullptr, 0);
  std::sort(dropped.begin(), dropped.end());
  std::vector<std::string> expected = {gone, gone_empty, reused};
  std::sort(expected.begin(), expected.end());
  EXPECT_EQ(dropped, expected);
  auto exists = [&](const std::string& name) {
    return tx.exec("SELECT count(*) FROM pg_database WHERE datname = " + tx.quote(name))[0][0]
               .as<int>() == 1;
  };
  for (const auto& name : expected) EXPECT_FALSE(exists(name)) << name;
  for (const auto& [name, owner] : kept) {
    EXPECT_TRUE(exists(name)) << name;
    tx.exec("DROP DATABASE IF EXISTS " + name);
  }
}

// Ctrl-C while the rehearsal waits on the scratch clone: exit 130, and the
// scratch database is dropped on the way out.
TEST(VerifyCopy, AnInterruptDropsTheScratchDatabase) {
  TestDatabase db("005");
  db.Exec(codesearch::kQuickstartSampleSql);
  const DatabaseState before = CaptureState(db);
  pg::Connection admin(TestServer().AdminUrl());
  BackgroundCli cli({"--lock-timeout", "0", "verify"}, db.url().text());
  // Find the scratch clone and hold a lock on it, so the upgrade waits.
  HeldScratch held(cli);
  ASSERT_FALSE(held.name.empty()) << "the rehearsal never waited on its scratch clone";
  const std::string scratch = held.name;
  cli.Signal(SIGINT);
  auto status = cli.Wait(std::chrono::seconds(60));
  ASSERT_TRUE(status);
  std::string out = cli.Output();
  EXPECT_EQ(*status, 130) << out;
  EXPECT_CONTAINS(out, "interrupted by SIGINT");
  pqxx::nontransaction tx(admin.raw());
  EXPECT_EQ(tx.exec("SELECT count(*) FROM pg_database WHERE datname = " + tx.quote(scratch))[0][0]
                .as<std::string>(),
            "0");
  ExpectUnchanged(db, before);
}

// A child of `parent` (/proc/PID/stat field 4), or 0 when it has none.
pid_t ChildOf(pid_t parent) {
  std::error_code ec;
  for (std::filesystem::directory_iterator it("/proc", ec), end; !ec && it != end;
       it.increment(ec)) {
    const std::string name = it->path().filename().string();
    if (name.find_first_not_of("0123456789") != std::string::npos) continue;
    std::ifstream in(it->path() / "stat");
    std::string stat((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    auto paren = stat.rfind(')');  // the command name may hold spaces and parentheses
    if (paren == std::string::npos) continue;
    std::istringstream fields(stat.substr(paren + 1));
    std::string state;
    long ppid = 0;
    if (fields >> state >> ppid && ppid == parent) return static_cast<pid_t>(std::stol(name));
  }
  return 0;
}

// How a CI system stops a job: `timeout -s TERM` sends SIGTERM to the tool,
// then to its whole process group, so the tool gets it twice within a
// moment (or once, when the second comes before the first is taken). That
// is one interrupt: the scratch clone is dropped on the way out. timeout,
// signalled itself (not at the end of its own time, which makes it exit
// 124), exits with the tool's status: 130.
TEST(VerifyCopy, StoppedByTimeoutItDropsTheScratchDatabase) {
  TestDatabase db("005");
  db.Exec(codesearch::kQuickstartSampleSql);
  const DatabaseState before = CaptureState(db);
  pg::Connection admin(TestServer().AdminUrl());
  BackgroundCli cli({"--lock-timeout", "0", "verify"}, db.url().text(),
                    {"/usr/bin/timeout", "-s", "TERM", "600"});
  // The scratch name carries the pid of the tool, timeout's child.
  pid_t tool = 0;
  ASSERT_TRUE(WaitUntil([&] { return (tool = ChildOf(cli.pid())) != 0; },
                        std::chrono::seconds(30)))
      << "timeout never started the tool";
  HeldScratch held(tool);
  ASSERT_FALSE(held.name.empty()) << "the rehearsal never waited on its scratch clone";
  const std::string scratch = held.name;
  // timeout leads a process group of its own, the tool in it: the group
  // signal reaches the tool, not this test.
  ASSERT_EQ(getpgid(cli.pid()), cli.pid());
  ASSERT_EQ(getpgid(tool), cli.pid());
  cli.Signal(SIGTERM);
  auto status = cli.Wait(std::chrono::seconds(60));
  ASSERT_TRUE(status);
  std::string out = cli.Output();
  EXPECT_EQ(*status, 130) << out;
  EXPECT_CONTAINS(out, "INTERRUPTED: interrupted by SIGTERM");
  EXPECT_EQ(out.find("without clean-up"), std::string::npos) << out;
  pqxx::nontransaction tx(admin.raw());
  EXPECT_EQ(tx.exec("SELECT count(*) FROM pg_database WHERE datname = " + tx.quote(scratch))[0][0]
                .as<std::string>(),
            "0");
  ExpectUnchanged(db, before);
}

TEST(VerifyReport, ForecastsTheUpgradeAtALargerSize) {
  TestDatabase db("005");
  db.Exec(codesearch::kQuickstartSampleSql);
  std::string json_path = ::testing::TempDir() + pg::UniqueDatabaseName("forecast") + ".json";
  auto r = RunCli({"verify", "--forecast-rows", "5000000", "--report-json", json_path},
                  db.url().text());
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_CONTAINS(r.out, "Forecast: upgrade of 5000000 chunks about");
  EXPECT_CONTAINS(r.out, "fitted through 0 and 6 chunks");
  std::ifstream in(json_path);
  auto report = nlohmann::json::parse(in);
  std::remove(json_path.c_str());
  EXPECT_EQ(report["forecast"]["rows"], 5000000);
  // Never below what the upgrade's work took here (the forecast's promise),
  // and the sum of its steps' forecasts, as the report lists them ("002 8:
  // 0.140s (scan-...)"): a total that dropped a step, or a fit read at the
  // wrong size, fails one of them.
  const double forecast = report["forecast"]["upgrade_seconds"].get<double>();
  const double work = report["upgrade"]["seconds"].get<double>() -
                      report["upgrade"]["lock_wait_seconds"].get<double>();
  EXPECT_GE(forecast, work - 0.001) << report["forecast"].dump();
  const std::string fit = report["forecast"]["fit"].get<std::string>();
  static const std::regex kStep(R"(\b002 (\d+): ([0-9.]+)s \()");
  double steps = 0;
  int count = 0;
  for (std::sregex_iterator m(fit.begin(), fit.end(), kStep), end; m != end; ++m, ++count)
    steps += std::stod((*m)[2]);
  EXPECT_EQ(count, 10) << fit;
  EXPECT_NEAR(steps, forecast, 0.001 * count) << fit;
  RunCliUnchanged(db, {"verify", "--forecast-rows", "0"}, 2);
}

}  // namespace
}  // namespace harness::testing
