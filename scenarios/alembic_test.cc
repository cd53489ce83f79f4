// verify --alembic on a small Alembic project written as the code-search
// service writes its own (scenarios/alembic/async_project: an async env.py
// reading DATABASE_URL, asyncpg, date-prefixed files, an id in the
// autogenerate form), on both places a rehearsal runs: a scratch clone of
// a database, and the embedded cluster. What each revision did is compared
// with what it is known to do. The full set of Alembic tests (the sync
// project, bad input, branches, interrupts) is alembic_full_test.cc, under
// the label `alembic` (scripts/test-alembic).
#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>
#include <map>

#include <nlohmann/json.hpp>
#include <pqxx/pqxx>

#include "fixtures/any_schema.h"
#include "harness/pg/connection.h"
#include "harness/pg/disposable_database.h"
#include "scenarios/support/test_env.h"

namespace harness::testing {
namespace {

// What each revision of the async project does, as the rehearsal measures it.
const std::map<std::string, std::string> kAsyncUpgrade = {
    {"a1", "catalog only"},
    {"a2", "row update + full scan"},
    {"a3", "index build + full scan"},
    {"0365901259f8", "catalog only"},
};

nlohmann::json Verify(const std::vector<std::string>& args, const std::string& url, int* code, std::string* out) {
  const std::string json = ::testing::TempDir() + pg::UniqueDatabaseName("alembic") + ".json";
  std::vector<std::string> all = {"verify", "--alembic", AlembicProject("async_project").string(),
                                  "--alembic-driver", "asyncpg", "--report-json", json};
  all.insert(all.end(), args.begin(), args.end());
  auto r = RunCli(all, url);
  *code = r.exit_code;
  *out = r.out + r.err;
  std::ifstream in(json);
  nlohmann::json j = in ? nlohmann::json::parse(in, nullptr, false) : nlohmann::json();
  std::remove(json.c_str());
  return j;
}

std::map<std::string, std::string> StepEffects(const nlohmann::json& report) {
  return SuiteDetails(report, "step effects");
}

// From a copy at a1 with rows, every later revision is rehearsed in one
// run on a scratch clone, each measured on its own; the copy is unchanged.
TEST(AlembicAsync, OnAScratchCloneEachRevisionIsMeasuredAsWhatItDoes) {
  pg::DisposableDatabase db(TestServer().AdminUrl(), "template0", "mh_alembic");
  RunAlembic(AlembicProject("async_project"), db.url(), "asyncpg", "upgrade", "a1");
  {
    pg::Connection conn(db.url());
    fixtures::AnySchemaOptions o;
    o.rows_per_table = 300;
    fixtures::GenerateAnySchema(conn, o);
  }
  const DatabaseState before = CaptureState(db.url());
  int code = 0;
  std::string out;
  auto report = Verify({}, db.url().text(), &code, &out);
  EXPECT_EQ(code, 0) << out;
  ExpectUnchanged(db.url(), before);
  ASSERT_TRUE(report.is_object()) << out;
  EXPECT_CONTAINS(report["verdict"].get<std::string>(), "READY: a1 -> 0365901259f8 upgraded in");
  const auto steps = StepEffects(report);
  for (const auto& [rev, kinds] : kAsyncUpgrade) {
    if (rev == "a1") continue;  // below the rehearsed range
    const std::string detail = steps.count("step." + rev + ".up.1") ? steps.at("step." + rev + ".up.1") : "";
    EXPECT_NE(detail.find(": " + kinds + ";"), std::string::npos) << rev << " expected " << kinds << ": " << detail;
  }
  EXPECT_CONTAINS(steps.at("step.a2.up.1"), "updated 300 rows of items");
  EXPECT_CONTAINS(steps.at("step.a3.up.1"), "built ix_items_name");
  // On a clone of a server the tool did not start: per revision, and said so.
  EXPECT_CONTAINS(out, "Statements: not measured one by one");
  EXPECT_CONTAINS(out, "it holds AccessExclusiveLock on items from a2 to its commit");
}

// Without a database: the embedded cluster, brought to the target's parent
// by the project's own chain and filled from the catalog; per statement.
TEST(AlembicAsync, OnTheEmbeddedClusterTheBackfillIsARowUpdateStatementByStatement) {
  int code = 0;
  std::string out;
  auto report = Verify({"--target", "a2", "--rows-per-table", "200"}, "", &code, &out);
  EXPECT_EQ(code, 0) << out;
  ASSERT_TRUE(report.is_object()) << out;
  EXPECT_CONTAINS(report["verdict"].get<std::string>(), "READY: a1 -> a2 upgraded in");
  const std::string detail = StepEffects(report)["step.a2.up.1"];
  EXPECT_EQ(detail.rfind("a2 up 1/1 add items status: row update + full scan; updated 200 rows of items", 0), 0u)
      << detail;
  EXPECT_CONTAINS(detail, "statement(s) logged by the server, the slowest: ");
  // Every statement is in the report (the step's line names the slowest
  // three: at 200 rows the backfill is not always one of them).
  std::string statements;
  for (const auto& st : report["statements"].value("step.a2.up.1", nlohmann::json::array()))
    statements += st["sql"].get<std::string>() + "\n";
  EXPECT_CONTAINS(statements, "UPDATE items SET status = CASE WHEN id % 2 = 0 THEN 'done' ELSE 'new' END");
  EXPECT_CONTAINS(out, "Revisions run by the project's own Alembic 1.8");
  EXPECT_CONTAINS(out, "Statements and their times: from the server's own statement log");
  // Judged at production size: the backfill, and the project's connection
  // without a lock_timeout (read before the revision's commit).
  const auto locks = SuiteDetails(report, "locks at production size");
  ASSERT_TRUE(locks.count("lock.backfill.a2.1.items")) << out;
  EXPECT_CONTAINS(locks.at("lock.backfill.a2.1.items"), "every row of items (2000 rows) updated in one transaction");
  ASSERT_TRUE(locks.count("lock.no-lock-timeout")) << out;
  EXPECT_CONTAINS(locks.at("lock.no-lock-timeout"), "(lock_timeout 0, the connection the project's env.py makes");
}

}  // namespace
}  // namespace harness::testing
