// Sentinels: tests that make a check fail through what a user runs, each
// killing a mutant that once survived the whole suite.
//
// - A downgrade that forgets one object: `check rollback --baseline` and
//   `verify` both report the catalog difference, naming the object.
// - A change to any single column of any table of the baseline (one test
//   per column, from the golden catalogs at 005 of both shapes): the
//   rollback suite's data line for that table fails.
// - Repositories that all carry one project_id other than 'default': after
//   the upgrade every chunk carries it (step 4's fast path must copy the
//   repository's value, not a constant).
#include <gtest/gtest.h>

#include <filesystem>
#include <map>
#include <memory>
#include <fstream>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <pqxx/pqxx>

#include "harness/codesearch/generator.h"
#include "harness/codesearch/quickstart_sample.h"
#include "harness/checks/suites.h"
#include "harness/pg/connection.h"
#include "harness/pg/disposable_database.h"
#include "harness/report/suite_report.h"
#include "scenarios/support/test_env.h"

namespace harness::testing {
namespace {

namespace fs = std::filesystem;

// A copy of the chain the tests run, with one line of a revision file
// removed; deleted at scope end.
class MutatedChain {
 public:
  MutatedChain(const std::string& file, const std::string& line) {
    dir_ = fs::temp_directory_path() / pg::UniqueDatabaseName("mh_mutant");
    fs::create_directories(dir_);
    for (const auto& e : fs::directory_iterator(MigrationsDir()))
      if (e.is_regular_file()) fs::copy_file(e.path(), dir_ / e.path().filename());
    std::ifstream in(dir_ / file);
    std::ostringstream out;
    std::string l;
    while (std::getline(in, l)) {
      if (l.find(line) != std::string::npos) {
        ++removed_;
        continue;
      }
      out << l << "\n";
    }
    in.close();
    std::ofstream(dir_ / file) << out.str();
  }
  ~MutatedChain() {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }
  const fs::path& dir() const { return dir_; }
  int removed() const { return removed_; }

 private:
  fs::path dir_;
  int removed_ = 0;
};

TEST(Sentinel, ADowngradeThatForgetsAnIndexIsNamedByCheckRollbackAndByVerify) {
  MutatedChain chain("002_remove_non_search_tables.sql", "CREATE INDEX IF NOT EXISTS idx_tasks_path ON tasks (path);");
  ASSERT_EQ(chain.removed(), 1) << "the mutant no longer applies: update this test";
  const std::string dir = chain.dir().string();
  TestDatabase db("005");
  db.Exec(codesearch::kQuickstartSampleSql);
  const std::string url = db.url().text();
  const std::string file = ::testing::TempDir() + pg::UniqueDatabaseName("baseline") + ".json";
  ASSERT_EQ(RunCli({"--migrations", dir, "check", "pre", "--save-baseline", file}, url).exit_code, 0);

  // verify on a scratch clone: the rollback's schema is not the one before.
  auto v = RunCli({"--migrations", dir, "verify"}, url);
  EXPECT_EQ(v.exit_code, 1) << v.out << v.err;
  EXPECT_CONTAINS(v.out, "NOT READY");
  EXPECT_CONTAINS(v.out, "✗ Schema equals the pre-upgrade catalog: 1 difference(s)");
  EXPECT_CONTAINS(v.out, "idx_tasks_path");

  ASSERT_EQ(RunCli({"--migrations", dir, "upgrade", "head"}, url).exit_code, 0);
  ASSERT_EQ(RunCli({"--migrations", dir, "downgrade", "-1"}, url).exit_code, 0);
  auto r = RunCli({"--migrations", dir, "check", "rollback", "--baseline", file}, url);
  std::remove(file.c_str());
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
  EXPECT_CONTAINS(r.out, "✗ Schema equals the pre-upgrade catalog: 1 difference(s)");
  EXPECT_CONTAINS(r.out, "idx_tasks_path");
}

// ---- every column of every table, from the golden catalogs -----------------

struct ColumnCase {
  Shape shape;
  std::string table, column, type;
};

// "column code_chunks.content: #4 text NOT NULL"
std::vector<ColumnCase> ColumnsAt005(Shape shape) {
  const fs::path golden = SourceDir() / "scenarios" / "golden" /
                          (shape == Shape::kProduction ? "catalog_production_005.txt" : "catalog_005.txt");
  std::ifstream in(golden);
  std::vector<ColumnCase> out;
  std::string line;
  while (std::getline(in, line)) {
    if (!line.starts_with("column ")) continue;
    const auto dot = line.find('.'), colon = line.find(": #");
    const auto type_at = line.find(' ', colon + 3) + 1;
    std::string type = line.substr(type_at);
    for (const char* cut : {" NOT NULL", " DEFAULT "})
      if (auto at = type.find(cut); at != std::string::npos) type.resize(at);
    out.push_back({shape, line.substr(7, dot - 7), line.substr(dot + 1, colon - dot - 1), type});
  }
  return out;
}

std::vector<ColumnCase> AllColumns() {
  std::vector<ColumnCase> all = ColumnsAt005(Shape::kQuickstart);
  for (auto& c : ColumnsAt005(Shape::kProduction)) all.push_back(c);
  return all;
}

std::string ColumnCaseName(const ::testing::TestParamInfo<ColumnCase>& info) {
  return (info.param.shape == Shape::kProduction ? "Production_" : "Quickstart_") + info.param.table + "_" +
         info.param.column;
}

// A new value for column `q` of `type` in one row, whatever it held (NULL
// included).
std::string ChangedValue(const std::string& q, const std::string& type) {
  if (type == "uuid") return "gen_random_uuid()";
  if (type == "boolean") return fmt::format("NOT coalesce({}, false)", q);
  if (type == "integer" || type == "bigint" || type == "smallint")
    return fmt::format("coalesce({}, 0) + 1000003", q);
  if (type.starts_with("numeric") || type == "real" || type == "double precision")
    return fmt::format("coalesce({}, 0) + 1", q);
  if (type.starts_with("timestamp") || type == "date") return fmt::format("coalesce({}, now()) + interval '1 day'", q);
  if (type == "jsonb" || type == "json")
    return fmt::format("(coalesce({}::jsonb, '{{}}'::jsonb) || '{{\"mutated\": 1}}'::jsonb)::{}", q, type);
  if (type.ends_with("[]")) return fmt::format("array_append(coalesce({0}, '{{}}'), {0}[1])", q);
  if (auto open = type.find("varying("); open != std::string::npos) {
    const int n = std::stoi(type.substr(open + 8));
    return fmt::format("'z' || left(coalesce({}, ''), {})", q, n - 1);
  }
  return fmt::format("'z' || coalesce({}::text, '')", q);
}

// A template at 005 of `shape` with a little generated data in every
// table, built once per cluster and chain (as TemplateAt builds its own).
std::string GeneratedTemplate(Shape shape) {
  const std::string base = TemplateAt("005", shape);
  const std::string name = "mh_gen_" + base.substr(std::string("mh_").size());
  pg::Url admin = TestServer().AdminUrl();
  pg::Connection conn(admin);
  pqxx::nontransaction tx(conn.raw());
  tx.exec("SELECT pg_advisory_lock(hashtext(" + tx.quote(name) + "))");
  if (tx.exec_params("SELECT 1 FROM pg_database WHERE datname = $1", name).empty()) {
    const std::string building = pg::UniqueDatabaseName("mh_building");
    tx.exec("CREATE DATABASE " + tx.quote_name(building) + " TEMPLATE " + tx.quote_name(base));
    try {
      pg::Connection gen(admin.WithDatabase(building));
      codesearch::GeneratorOptions go;
      go.repositories = 2;
      go.chunks_per_repo = 2;
      codesearch::Generate(gen, go);
    } catch (...) {
      pg::DropDatabase(admin, building);
      tx.exec("SELECT pg_advisory_unlock(hashtext(" + tx.quote(name) + "))");
      throw;
    }
    tx.exec("ALTER DATABASE " + tx.quote_name(building) + " RENAME TO " + tx.quote_name(name));
  }
  tx.exec("SELECT pg_advisory_unlock(hashtext(" + tx.quote(name) + "))");
  return name;
}


// The database the cases of a shape share (one process runs them all: ctest
// test Sentinel.EveryColumn), and its baseline. Each case changes its column
// in a transaction it rolls back, and runs the rollback suite inside it.
struct Shared {
  std::unique_ptr<pg::DisposableDatabase> db;
  checks::Baseline baseline;
};
std::map<Shape, Shared>& SharedMap() {
  static std::map<Shape, Shared> shared;
  return shared;
}
Shared& SharedFor(Shape shape) {
  Shared& s = SharedMap()[shape];
  if (!s.db) {
    s.db = std::make_unique<pg::DisposableDatabase>(TestServer().AdminUrl(), GeneratedTemplate(shape),
                                                    "mh_sentinel");
    pg::Connection conn(s.db->url());
    pqxx::read_transaction tx(conn.raw());
    s.baseline = checks::TakeBaseline(tx, checks::RangeTo(Chain(), "head"));
  }
  return s;
}

class EveryColumn : public ::testing::TestWithParam<ColumnCase> {
 protected:
  // Dropped while the server is still there (a test program run by hand
  // stops its own cluster at exit).
  static void TearDownTestSuite() { SharedMap().clear(); }
};
INSTANTIATE_TEST_SUITE_P(Sentinel, EveryColumn, ::testing::ValuesIn(AllColumns()), ColumnCaseName);

TEST_P(EveryColumn, AChangeToItIsCaughtByTheRollbackSuite) {
  const ColumnCase& c = GetParam();
  Shared& shared = SharedFor(c.shape);
  ASSERT_TRUE(shared.baseline.tables.count(c.table)) << c.table << " is not in the baseline";
  pg::Connection conn(shared.db->url());
  pqxx::work tx(conn.raw());
  ASSERT_NE(tx.exec("SELECT count(*) FROM " + tx.quote_name(c.table))[0][0].as<long long>(), 0)
      << c.table << " has no rows to change: the generator left it empty";
  const std::string q = tx.quote_name(c.column);
  // One row; the foreign keys' triggers off (a changed key is still a
  // change), and the table's CHECKs out of the way of a changed value.
  tx.exec("SET LOCAL session_replication_role = replica");
  for (const auto& row :
       tx.exec_params("SELECT conname FROM pg_constraint WHERE conrelid = $1::regclass AND contype = 'c'", c.table))
    tx.exec(fmt::format("ALTER TABLE {} DROP CONSTRAINT {}", tx.quote_name(c.table),
                        tx.quote_name(row[0].as<std::string>())));
  auto r = tx.exec(fmt::format("UPDATE {0} SET {1} = {2} WHERE ctid = (SELECT ctid FROM {0} LIMIT 1)",
                               tx.quote_name(c.table), q, ChangedValue(q, c.type)));
  ASSERT_EQ(r.affected_rows(), 1);
  const checks::SuiteResult s = checks::RunRollbackSuite(tx, checks::RangeTo(Chain(), "head"), shared.baseline);
  tx.abort();  // the shared database as it was, for the next column
  bool failed = false;
  for (const auto& check : s.checks)
    if (check.id == "rollback." + c.table + "_data") failed = check.status == checks::Status::kFail;
  EXPECT_TRUE(failed) << c.table << "." << c.column << " (" << c.type << ") changed in one row:\n"
                      << report::SuiteText(s);
}

// ---- step 4 copies each repository's project_id ----------------------------

class NonDefaultProject : public ::testing::TestWithParam<Shape> {};
INSTANTIATE_TEST_SUITE_P(Sentinel, NonDefaultProject, ::testing::Values(Shape::kQuickstart, Shape::kProduction),
                         ShapeTestName);

TEST_P(NonDefaultProject, EveryChunkTakesItsRepositorysValue) {
  TestDatabase db("005", GetParam());
  {
    pg::Connection conn(db.url());
    codesearch::GeneratorOptions go;
    go.repositories = 3;
    go.chunks_per_repo = 4;
    codesearch::Generate(conn, go);
  }
  // Built beforehand, as an operator may: every repository in one project.
  db.Exec("ALTER TABLE repositories ADD COLUMN project_id varchar(50) NOT NULL DEFAULT 'default'");
  db.Exec("UPDATE repositories SET project_id = 'acme-search'");
  ASSERT_EQ(RunCli({"upgrade", "head"}, db.url().text()).exit_code, 0);
  EXPECT_EQ(db.Scalar("SELECT count(*) FROM code_chunks WHERE project_id IS DISTINCT FROM 'acme-search'"), "0");
  EXPECT_NE(db.Scalar("SELECT count(*) FROM code_chunks"), "0");
}

}  // namespace
}  // namespace harness::testing
