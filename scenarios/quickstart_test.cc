// The quickstart's six scenarios, automated: a green run means migration
// 002 is ready to deploy. Every test runs on its own disposable database.
#include <gtest/gtest.h>

#include <chrono>
#include <set>

#include <pqxx/pqxx>

#include "fixtures/generator.h"
#include "fixtures/project_id_cases.h"
#include "fixtures/quickstart_sample.h"
#include "harness/checks/suites.h"
#include "harness/inspect/fingerprint.h"
#include "harness/pg/connection.h"
#include "harness/report/suite_report.h"
#include "scenarios/support/test_env.h"

namespace harness::testing {
namespace {

checks::SuiteResult RunSuite(const TestDatabase& db, const std::string& suite,
                             const std::optional<checks::Baseline>& baseline = std::nullopt) {
  pg::Connection conn(db.url());
  pqxx::read_transaction tx(conn.raw());
  if (suite == "pre") return checks::RunPreChecks(tx);
  if (suite == "post") return checks::RunPostChecks(tx);
  return checks::RunRollbackChecks(tx, baseline);
}

void ExpectAllPass(const checks::SuiteResult& s, int expected_checks) {
  EXPECT_TRUE(s.ok()) << report::SuiteText(s);
  EXPECT_EQ(s.Count(checks::Status::kPass), expected_checks) << report::SuiteText(s);
  EXPECT_EQ(s.Count(checks::Status::kSkipped), 0) << report::SuiteText(s);
}

checks::Baseline Baseline(const TestDatabase& db) {
  pg::Connection conn(db.url());
  pqxx::read_transaction tx(conn.raw());
  return checks::TakeBaseline(tx);
}

inspect::Fingerprint Fingerprint(const TestDatabase& db, const std::string& table,
                                 const std::vector<std::string>& columns = {}) {
  pg::Connection conn(db.url());
  pqxx::read_transaction tx(conn.raw());
  return inspect::TakeFingerprint(tx, table, columns);
}

std::set<std::string> Tables(const TestDatabase& db) {
  std::set<std::string> out;
  for (const auto& [name, t] : db.Snapshot().tables) out.insert(name);
  return out;
}

// Scenario 1: fresh database.
TEST(Scenario1Fresh, UpgradesAnEmptyDatabaseAt005) {
  TestDatabase db("005");
  ExpectAllPass(RunSuite(db, "pre"), 4);
  auto up = RunCli({"upgrade", "head"}, db.url().text());
  ASSERT_EQ(up.exit_code, 0) << up.err;
  EXPECT_EQ(RunCli({"current"}, db.url().text()).out, "002 (head)\n");
  ExpectAllPass(RunSuite(db, "post"), 8);
  EXPECT_EQ(Tables(db), (std::set<std::string>{"code_chunks", "repositories"}));
}

TEST(Scenario1Fresh, CheckCommandPrintsTheQuickstartLines) {
  TestDatabase db("head");
  auto r = RunCli({"check", "post"}, db.url().text());
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_CONTAINS(r.out, "✓ project_id column exists in repositories (VARCHAR(50), NOT NULL, DEFAULT 'default')");
  EXPECT_CONTAINS(r.out, "✓ Unused tables dropped (0 of 9 tables found)");
  EXPECT_CONTAINS(r.out, "All post-migration checks passed (8/8)");
  auto json = RunCli({"check", "post", "--json"}, db.url().text());
  EXPECT_EQ(json.exit_code, 0);
  auto parsed = nlohmann::json::parse(json.out);
  EXPECT_EQ(parsed["suite"], "post");
  EXPECT_EQ(parsed["counts"]["pass"], 8);
  // The same checks fail, with what was found, on a database at 005.
  TestDatabase old("005");
  auto bad = RunCli({"check", "post"}, old.url().text());
  EXPECT_EQ(bad.exit_code, 1);
  EXPECT_CONTAINS(bad.out, "✗ project_id column exists in repositories (VARCHAR(50), NOT NULL, DEFAULT 'default'): no such column");
  EXPECT_CONTAINS(bad.out, "✗ Unused tables dropped: 9 of 9 tables still exist");
}

// Scenario 2: existing data.
TEST(Scenario2ExistingData, PreservesEveryRowAndAssignsProjectIds) {
  TestDatabase db("005");
  db.Exec(fixtures::kQuickstartSampleSql);
  std::vector<std::string> repo_cols, chunk_cols;
  {
    pg::Connection conn(db.url());
    pqxx::read_transaction tx(conn.raw());
    repo_cols = inspect::ColumnsOf(tx, "repositories");
    chunk_cols = inspect::ColumnsOf(tx, "code_chunks");
  }
  auto repos_before = Fingerprint(db, "repositories", repo_cols);
  auto chunks_before = Fingerprint(db, "code_chunks", chunk_cols);
  ASSERT_EQ(RunCli({"upgrade", "head"}, db.url().text()).exit_code, 0);
  EXPECT_EQ(db.Scalar("SELECT count(*) FROM repositories"), "3");
  EXPECT_EQ(db.Scalar("SELECT count(*) FROM code_chunks"), "6");
  EXPECT_EQ(db.Scalar("SELECT count(*) FROM repositories WHERE project_id = 'default'"), "3");
  EXPECT_EQ(db.Scalar("SELECT count(*) FROM code_chunks cc JOIN repositories r ON cc.repository_id "
                      "= r.id WHERE cc.project_id = r.project_id AND cc.project_id = 'default'"),
            "6");
  // Every pre-existing column of every row is byte-identical.
  EXPECT_EQ(Fingerprint(db, "repositories", repo_cols), repos_before);
  EXPECT_EQ(Fingerprint(db, "code_chunks", chunk_cols), chunks_before);
  ExpectAllPass(RunSuite(db, "post"), 8);
}

// Scenario 3: idempotency.
TEST(Scenario3Idempotency, SecondUpgradeIsANoOp) {
  TestDatabase db("005");
  db.Exec(fixtures::kQuickstartSampleSql);
  ASSERT_EQ(RunCli({"upgrade", "head"}, db.url().text()).exit_code, 0);
  auto catalog = db.Snapshot();
  auto repos = Fingerprint(db, "repositories");
  auto rows = Fingerprint(db, "code_chunks");
  ASSERT_EQ(repos.rows, 3);
  ASSERT_EQ(rows.rows, 6);
  auto second = RunCli({"upgrade", "head"}, db.url().text());
  EXPECT_EQ(second.exit_code, 0);
  EXPECT_CONTAINS(second.out, "Already at 002: nothing to do");
  EXPECT_EQ(second.err.find("Running upgrade"), std::string::npos) << second.err;
  EXPECT_TRUE(inspect::Diff(catalog, db.Snapshot()).empty());
  // Every row of both tables, all columns (project_id included), unchanged.
  EXPECT_EQ(Fingerprint(db, "repositories"), repos)
      << repos.ToString() << " -> " << Fingerprint(db, "repositories").ToString();
  EXPECT_EQ(Fingerprint(db, "code_chunks"), rows)
      << rows.ToString() << " -> " << Fingerprint(db, "code_chunks").ToString();
  EXPECT_EQ(db.Revision(), "002");
  ExpectAllPass(RunSuite(db, "post"), 8);
}

TEST(Scenario3Idempotency, EveryStatementOf002IsIdempotent) {
  TestDatabase db("005");
  db.Exec(fixtures::kQuickstartSampleSql);
  ASSERT_EQ(RunCli({"upgrade", "head"}, db.url().text()).exit_code, 0);
  auto catalog = db.Snapshot();
  auto repos = Fingerprint(db, "repositories");
  auto rows = Fingerprint(db, "code_chunks");
  ASSERT_EQ(RunCli({"stamp", "005"}, db.url().text()).exit_code, 0);
  auto rerun = RunCli({"upgrade", "head"}, db.url().text());
  EXPECT_EQ(rerun.exit_code, 0) << rerun.err;
  EXPECT_CONTAINS(rerun.err, "Running upgrade 005 -> 002");
  EXPECT_TRUE(inspect::Diff(catalog, db.Snapshot()).empty())
      << JoinLines(inspect::Diff(catalog, db.Snapshot()));
  EXPECT_EQ(Fingerprint(db, "repositories"), repos);
  EXPECT_EQ(Fingerprint(db, "code_chunks"), rows);
  EXPECT_EQ(db.Revision(), "002");
}

// Scenario 4: rollback, with both forms of the target.
class Scenario4Rollback : public ::testing::TestWithParam<std::string> {};

TEST_P(Scenario4Rollback, RestoresTheSchemaExactlyAndKeepsTheData) {
  TestDatabase db("005");
  db.Exec(fixtures::kQuickstartSampleSql);
  auto at005 = db.Snapshot();
  checks::Baseline baseline = Baseline(db);
  ASSERT_EQ(RunCli({"upgrade", "head"}, db.url().text()).exit_code, 0);
  auto down = RunCli({"downgrade", GetParam()}, db.url().text());
  ASSERT_EQ(down.exit_code, 0) << down.err;
  EXPECT_CONTAINS(down.err, "WARNING:  Data in dropped tables NOT restored");
  EXPECT_EQ(db.Revision(), "005");
  ExpectAllPass(RunSuite(db, "rollback", baseline), 7);
  auto diff = inspect::Diff(at005, db.Snapshot());
  EXPECT_TRUE(diff.empty()) << JoinLines(diff);
  // Up, down, up.
  auto again = RunCli({"upgrade", "head"}, db.url().text());
  EXPECT_EQ(again.exit_code, 0) << again.err;
  ExpectAllPass(RunSuite(db, "post"), 8);
}

INSTANTIATE_TEST_SUITE_P(Targets, Scenario4Rollback, ::testing::Values("-1", "005"),
                         [](const auto& p) { return p.param == "-1" ? "MinusOne" : "Revision005"; });

TEST(Scenario4RollbackChecks, WithoutABaselineTheDataChecksAreSkippedNotPassed) {
  TestDatabase db("005");
  auto s = RunSuite(db, "rollback");
  EXPECT_EQ(s.Count(checks::Status::kSkipped), 3);
  auto r = RunCli({"check", "rollback"}, db.url().text());
  EXPECT_CONTAINS(r.out, "not a full pass");
  EXPECT_EQ(r.exit_code, 1) << "a skipped check is not a pass";
}

TEST(Scenario4RollbackChecks, ABaselineFileCatchesChangedData) {
  TestDatabase db("005");
  db.Exec(fixtures::kQuickstartSampleSql);
  std::string file = ::testing::TempDir() + pg::UniqueDatabaseName("baseline") + ".json";
  ASSERT_EQ(RunCli({"check", "pre", "--save-baseline", file}, db.url().text()).exit_code, 0);
  ASSERT_EQ(RunCli({"upgrade", "head"}, db.url().text()).exit_code, 0);
  db.Exec("UPDATE code_chunks SET content = content || ' ' WHERE file_path = 'lib.py'");
  ASSERT_EQ(RunCli({"downgrade", "-1"}, db.url().text()).exit_code, 0);
  auto r = RunCli({"check", "rollback", "--baseline", file}, db.url().text());
  std::remove(file.c_str());
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_CONTAINS(r.out, "✓ repositories data preserved (3 rows, fingerprint matches baseline)");
  EXPECT_CONTAINS(r.out, "✗ code_chunks data preserved: baseline 6 rows");
}

// Scenario 5: performance, 100 repositories x 100 chunks, under 5 minutes.
TEST(Scenario5Performance, UpgradesTenThousandChunksWithinTheBudget) {
  TestDatabase db("005");
  {
    pg::Connection conn(db.url());
    fixtures::GeneratorOptions go;
    go.repositories = 100;
    go.chunks_per_repo = 100;
    fixtures::Generate(conn, go);
  }
  ASSERT_EQ(db.Scalar("SELECT count(*) FROM code_chunks"), "10000");
  auto t0 = std::chrono::steady_clock::now();
  auto up = RunCli({"upgrade", "head"}, db.url().text());
  double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  ASSERT_EQ(up.exit_code, 0) << up.err;
  // The per-step timings, as the migration logged them.
  std::istringstream log(up.err);
  for (std::string line; std::getline(log, line);)
    if (line.find("Complete (") != std::string::npos) std::printf("%s\n", line.c_str());
  std::printf("upgrade of 100 x 100 chunks: %.3f s (budget 300 s)\n", seconds);
  RecordProperty("upgrade_seconds", std::to_string(seconds));
  EXPECT_LT(seconds, 300.0) << "FR-031: migration 002 must finish within 5 minutes";
  ExpectAllPass(RunSuite(db, "post"), 8);
}

// Scenario 6: every project_id case against both tables, by SQLSTATE.
struct ValidationCase {
  fixtures::ProjectIdCase c;
  std::string table;
};

class Scenario6Validation : public ::testing::TestWithParam<ValidationCase> {
 protected:
  static void SetUpTestSuite() { db_ = new TestDatabase("head"); }
  static void TearDownTestSuite() {
    delete db_;
    db_ = nullptr;
  }
  static TestDatabase* db_;
};
TestDatabase* Scenario6Validation::db_ = nullptr;

TEST_P(Scenario6Validation, AnswersWithTheExpectedSqlstate) {
  const auto& [c, table] = GetParam();
  pg::Connection conn(db_->url());
  pqxx::work tx(conn.raw());
  tx.exec("INSERT INTO repositories (id, path, indexed_at) VALUES "
          "('00000000-0000-0000-0000-0000000000aa', '/parent', now()) ON CONFLICT DO NOTHING");
  std::string value = c.value ? tx.quote(*c.value) : "NULL";
  std::string sql =
      table == "repositories"
          ? "INSERT INTO repositories (path, project_id, indexed_at) VALUES (" +
                tx.quote(std::string("/case/") + c.label) + ", " + value + ", NOW())"
          : "INSERT INTO code_chunks (repository_id, file_path, content, start_line, end_line, "
            "project_id) VALUES ('00000000-0000-0000-0000-0000000000aa', 'f.py', 'x', 1, 1, " +
                value + ")";
  std::string got;
  try {
    tx.exec(sql);
  } catch (const pqxx::sql_error& e) {
    got = e.sqlstate();
  }
  EXPECT_EQ(got, c.sqlstate) << c.why << " (value " << (c.value ? "'" + *c.value + "'" : "NULL")
                             << ")";
  // tx is rolled back: the shared database stays clean between cases.
}

std::vector<ValidationCase> AllValidationCases() {
  std::vector<ValidationCase> out;
  for (const auto& c : fixtures::ProjectIdCases())
    for (const char* t : {"repositories", "code_chunks"}) out.push_back({c, t});
  return out;
}

INSTANTIATE_TEST_SUITE_P(Cases, Scenario6Validation, ::testing::ValuesIn(AllValidationCases()),
                         [](const auto& p) {
                           return std::string(p.param.c.label) + "_" +
                                  (p.param.table == "repositories" ? "Repositories" : "CodeChunks");
                         });

// The quickstart's pattern accepts its own leading- and trailing-hyphen
// "invalid" cases; ours must not. This pins the difference.
TEST(Scenario6Pattern, QuickstartRegexWouldAcceptLeadingAndTrailingHyphens) {
  TestDatabase db("head");
  EXPECT_EQ(db.Scalar("SELECT '-my-project' ~ '^[a-z0-9-]{1,50}$' AND 'my-project-' ~ '^[a-z0-9-]{1,50}$'"), "t");
  std::string def = db.Scalar("SELECT pg_get_constraintdef(oid) FROM pg_constraint WHERE conname = 'check_repositories_project_id'");
  EXPECT_EQ(def.find("[a-z0-9-]{1,50}"), std::string::npos) << def;
  EXPECT_CONTAINS(def, checks::kProjectIdPattern);
}

}  // namespace
}  // namespace harness::testing
