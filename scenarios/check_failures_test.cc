// Every check of every suite (pre, post, rollback) made to fail through what
// a user runs: `check SUITE` on a database broken for that check, its ✗ line
// in the text output, its own id "fail" in the --json output (so that another
// line failing cannot pass for it), and the exit code (1; 2 for a gate, which
// stops its suite). Cases() is the one place that maps a check to the state
// that fails it; TheTableCoversEveryCheckTheSuitesDefine fails naming any
// check the suites define (the revisions' `--! check` and `--! gate`, the
// lines of checks/suites.cc) that has neither a case nor a reasoned exclusion.
#include <gtest/gtest.h>

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iterator>
#include <optional>
#include <ostream>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "harness/codesearch/quickstart_sample.h"
#include "harness/checks/suites.h"
#include "harness/pg/disposable_database.h"
#include "scenarios/support/test_env.h"

namespace harness::testing {
namespace {

constexpr const char* kFailMark = "✗ ";

// Production rows whose rollback leaves a foreign key NOT VALID: a task link
// whose task comes back empty (the rollback's information line not_valid).
constexpr const char* kProductionTaskLinkSql = R"SQL(
INSERT INTO tasks (id, title, version) VALUES ('00000000-0000-4000-8000-0000000000a1', 'one', 1);
INSERT INTO task_branch_links (id, task_id, branch_name) VALUES
  ('00000000-0000-4000-8000-0000000000b1', '00000000-0000-4000-8000-0000000000a1', 'main');
)SQL";

// One check, and a database state that fails it. Where the database stands
// comes from the suite and the revision whose checks run (`target`, 002 for
// head): pre at its parent, 005; post upgraded to it; rollback upgraded to it
// and downgraded again. Rows are loaded at the parent first (`data`; by
// default the quickstart's sample on its shape, none on production's).
struct FailureCase {
  const char* id;     // as `check SUITE --json` prints it
  const char* suite;  // pre, post, rollback
  Shape shape = Shape::kQuickstart;
  const char* target = "head";  // `check --target`: the revision whose own checks run
  const char* data = nullptr;
  // Rollback: `check pre --save-baseline FILE` before the upgrade, and
  // `check rollback --baseline FILE`. Without it the rollback suite skips its
  // data and catalog lines, and a revision's own rollback check is the only
  // line that can fail.
  bool baseline = false;
  const char* breaks = "";  // SQL run there, as the cluster's superuser
  // The check then runs as a role that may read every table of public but
  // this one (a query that fails is its check's failure).
  const char* unreadable = nullptr;
  const char* line = "";  // the start of the ✗ line it prints
  int exit_code = 1;
  // Other lines the same state fails, where no state fails this one alone.
  std::vector<std::string> also_fail = {};
  // A second way to fail the same check: its name's suffix.
  const char* variant = nullptr;
};

void PrintTo(const FailureCase& c, std::ostream* os) { *os << c.id; }

// Two ids are of the failures form, WHEN.REVISION.NAME, that of a check whose
// query failed: every row of rows_to_discard and not_valid is an information
// (passed NULL), so a query that cannot run is the only way they fail.
const std::vector<FailureCase>& Cases() {
  static const std::vector<FailureCase> cases = {
      // ---- pre: at 005 ----
      {.id = "pre.core_tables",
       .suite = "pre",
       .breaks = "ALTER TABLE code_chunks RENAME COLUMN repository_id TO repo_id",
       .line = "✗ Core tables exist: code_chunks has neither repository_id nor code_file_id",
       .exit_code = 2},
      {.id = "pre.no_blocking_foreign_keys",
       .suite = "pre",
       .breaks = "ALTER TABLE tasks ADD COLUMN repository_id uuid REFERENCES repositories (id)",
       .line = "✗ Foreign keys from dropped tables block 002: tasks.tasks_repository_id_fkey -> repositories"},
      {.id = "pre.dependent_objects",
       .suite = "pre",
       .breaks = "CREATE VIEW public.open_tasks AS SELECT id, title FROM public.tasks WHERE status <> 'complete'",
       .line = "✗ Objects outside the 9 tables depend on them and block 002: view open_tasks"},
      {.id = "pre.no_orphaned_chunks",
       .suite = "pre",
       // The foreign key's trigger off: a chunk whose repository is gone.
       .breaks = "SET LOCAL session_replication_role = replica;"
                 "INSERT INTO code_chunks (repository_id, file_path, content, start_line, end_line) "
                 "VALUES ('00000000-0000-0000-0000-0000000000ff', 'lost.py', 'pass', 1, 1)",
       .line = "✗ No orphaned code_chunks: found 1 chunk(s) whose repository does not exist "
               "(e.g. "},
      {.id = "pre.project_id_definitions",
       .suite = "pre",
       .breaks = "ALTER TABLE repositories ADD COLUMN project_id text",
       .line = "✗ Objects of 002 built beforehand are not what 002 builds: repositories.project_id "
               "is text, NULL, no default, not character varying(50)",
       .exit_code = 2},
      {.id = "pre.project_id_values",
       .suite = "pre",
       .breaks = "ALTER TABLE repositories ADD COLUMN project_id varchar(50) NOT NULL DEFAULT 'default';"
                 "UPDATE repositories SET project_id = 'Bad' WHERE path = '/test/repo1'",
       .line = "✗ 1 row(s) of repositories have a project_id that the CHECK rejects (e.g. 'Bad')"},
      {.id = "pre.project_id_alignment",
       .suite = "pre",
       .breaks = "ALTER TABLE repositories ADD COLUMN project_id varchar(50) NOT NULL DEFAULT 'default';"
                 "ALTER TABLE code_chunks ADD COLUMN project_id varchar(50) NOT NULL DEFAULT 'other';"
                 "ALTER TABLE code_chunks ALTER COLUMN project_id DROP DEFAULT",
       .line = "✗ 6 code_chunks have a project_id other than their repository's (check post would fail)"},
      {.id = "pre.002.rows_to_discard",
       .suite = "pre",
       .unreadable = "tasks",
       .line = "✗ rows_to_discard (002): the query failed: ERROR:  permission denied for table tasks"},
      {.id = "pre.revision",
       .suite = "pre",
       // Recorded as upgraded while the schema is 005's.
       .breaks = "UPDATE alembic_version SET version_num = '002'",
       .line = "✗ Current revision is 005 or earlier: found 002"},

      // ---- post: upgraded to head ----
      {.id = "post.core_tables",
       .suite = "post",
       .breaks = "DROP TABLE code_chunks",
       .line = "✗ Core tables exist: missing code_chunks",
       .exit_code = 2},
      {.id = "post.repositories_project_id",
       .suite = "post",
       .breaks = "ALTER TABLE repositories ALTER COLUMN project_id DROP DEFAULT",
       .line = "✗ project_id column exists in repositories (VARCHAR(50), NOT NULL, DEFAULT 'default'): "
               "found character varying(50), NOT NULL, no default"},
      {.id = "post.code_chunks_project_id",
       .suite = "post",
       .breaks = "ALTER TABLE code_chunks ALTER COLUMN project_id DROP NOT NULL",
       .line = "✗ project_id column exists in code_chunks (VARCHAR(50), NOT NULL): "
               "found character varying(50), NULL, no default"},
      {.id = "post.check_constraints",
       .suite = "post",
       .breaks = "ALTER TABLE code_chunks DROP CONSTRAINT check_code_chunks_project_id",
       .line = "✗ CHECK constraints exist and are validated: 1 found (check_code_chunks_project_id missing)"},
      {.id = "post.performance_index",
       .suite = "post",
       .breaks = "DROP INDEX idx_project_repository",
       .line = "✗ Performance index exists (idx_project_repository): not found"},
      {.id = "post.performance_index",
       .suite = "post",
       .breaks = "DROP INDEX idx_project_repository; CREATE INDEX idx_project_repository ON repositories (project_id)",
       .line = "✗ Performance index exists (idx_project_repository): found CREATE INDEX idx_project_repository "
               "ON public.repositories USING btree (project_id)",
       .variant = "on_other_columns"},
      {.id = "post.unused_tables_dropped",
       .suite = "post",
       .breaks = "CREATE TABLE public.tasks (id uuid PRIMARY KEY)",
       .line = "✗ Unused tables dropped: 1 of 9 tables still exist ({tasks})"},
      {.id = "post.data_integrity",
       .suite = "post",
       .breaks = "UPDATE code_chunks SET project_id = 'elsewhere' WHERE file_path = 'main.py'",
       .line = "✗ Data integrity check: 1 code_chunks differ from their repository's project_id"},
      {.id = "post.pattern_validation",
       .suite = "post",
       // A validated CHECK admits no such row: the constraint comes back NOT
       // VALID over it, which check_constraints reports too. A repository
       // without chunks, so that data_integrity still holds.
       .breaks = "ALTER TABLE repositories DROP CONSTRAINT check_repositories_project_id;"
                 "INSERT INTO repositories (path, project_id, indexed_at) VALUES ('/test/bad', 'Bad_Project', now());"
                 "ALTER TABLE repositories ADD CONSTRAINT check_repositories_project_id CHECK "
                 "(project_id ~ '^[a-z0-9]+(-[a-z0-9]+)*$' AND char_length(project_id) <= 50) NOT VALID",
       .line = "✗ Pattern validation: 1 repositories and 0 code_chunks have a project_id outside "
               "^[a-z0-9]+(-[a-z0-9]+)*$",
       .also_fail = {"post.check_constraints"}},
      {.id = "post.no_orphaned_chunks",
       .suite = "post",
       .breaks = "SET LOCAL session_replication_role = replica;"
                 "INSERT INTO code_chunks (repository_id, file_path, content, start_line, end_line, project_id) "
                 "VALUES ('00000000-0000-0000-0000-0000000000ff', 'lost.py', 'pass', 1, 1, 'default')",
       .line = "✗ No orphaned code_chunks: found 1 chunk(s) whose repository does not exist (e.g. "},

      // ---- rollback: upgraded, then downgraded ----
      {.id = "rollback.columns_removed",
       .suite = "rollback",
       .breaks = "ALTER TABLE code_chunks ADD COLUMN project_id varchar(50)",
       .line = "✗ project_id columns removed: 1 still present"},
      {.id = "rollback.constraints_removed",
       .suite = "rollback",
       .breaks = "ALTER TABLE repositories ADD CONSTRAINT check_repositories_project_id CHECK (path <> '')",
       .line = "✗ CHECK constraints removed: 1 still present"},
      {.id = "rollback.index_removed",
       .suite = "rollback",
       .breaks = "CREATE INDEX idx_project_repository ON public.repositories (id)",
       .line = "✗ Performance index removed: idx_project_repository still exists"},
      {.id = "rollback.tables_restored",
       .suite = "rollback",
       .breaks = "DROP TABLE archived_work_items",
       .line = "✗ Dropped tables restored: 8 of 9 found"},
      // The task links into tasks are the production shape's alone.
      {.id = "rollback.foreign_keys_restored",
       .suite = "rollback",
       .shape = Shape::kProduction,
       .breaks = "ALTER TABLE task_branch_links DROP CONSTRAINT fk_task_branch_links_task_id_tasks",
       .line = "✗ Foreign keys into tasks that 002 dropped are restored: 1 missing "
               "(task_branch_links.fk_task_branch_links_task_id_tasks)"},
      {.id = "rollback.002.not_valid",
       .suite = "rollback",
       .shape = Shape::kProduction,
       .data = kProductionTaskLinkSql,
       .unreadable = "task_branch_links",
       .line = "✗ not_valid (002): the query failed: ERROR:  permission denied for table task_branch_links"},
      {.id = "rollback.catalog_diff",
       .suite = "rollback",
       .baseline = true,
       .breaks = "CREATE INDEX idx_repositories_indexed_at ON public.repositories (indexed_at)",
       .line = "✗ Schema equals the pre-upgrade catalog: 1 difference(s): + index "
               "repositories.idx_repositories_indexed_at"},
      {.id = "rollback.repositories_data",
       .suite = "rollback",
       .baseline = true,
       .breaks = "UPDATE repositories SET path = '/test/moved' WHERE path = '/test/repo1'",
       .line = "✗ repositories data preserved: baseline 3 rows"},
      {.id = "rollback.code_chunks_data",
       .suite = "rollback",
       .baseline = true,
       .breaks = "DELETE FROM code_chunks WHERE file_path = 'lib.py'",
       .line = "✗ code_chunks data preserved: baseline 6 rows"},
      // The nine tables come back empty, as they were in the baseline: a row
      // there that the baseline does not have.
      {.id = checks::kDroppedRowsId,
       .suite = "rollback",
       .baseline = true,
       .breaks = "INSERT INTO vendor_extractors (version, name, status, extractor_version) "
                 "VALUES (1, 'acme', 'operational', '1.0')",
       .line = "✗ Dropped tables' rows differ from the baseline: vendor_extractors: baseline 0 rows; now 1 rows"},
  };
  return cases;
}

std::string CaseName(const ::testing::TestParamInfo<FailureCase>& info) {
  std::string name = info.param.id;
  if (info.param.variant) name += std::string("_") + info.param.variant;
  for (char& ch : name)
    if (!std::isalnum(static_cast<unsigned char>(ch))) ch = '_';
  return name;
}

// A baseline file of the test's own, removed at scope end.
class TempFile {
 public:
  TempFile() : path_(::testing::TempDir() + pg::UniqueDatabaseName("mh_baseline") + ".json") {}
  ~TempFile() { std::remove(path_.c_str()); }
  TempFile(const TempFile&) = delete;
  TempFile& operator=(const TempFile&) = delete;
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

bool HasLineStartingWith(const std::string& out, const std::string& start) {
  std::istringstream in(out);
  for (std::string line; std::getline(in, line);)
    if (line.starts_with(start)) return true;
  return false;
}

// The ids of the lines `check --json` printed with status "fail".
std::set<std::string> FailedIds(const nlohmann::json& suite) {
  std::set<std::string> out;
  for (const auto& c : suite.at("checks"))
    if (c.at("status") == "fail") out.insert(c.at("id").get<std::string>());
  return out;
}

std::vector<std::string> With(std::vector<std::string> args, const std::string& more) {
  args.push_back(more);
  return args;
}

class CheckFailure : public ::testing::TestWithParam<FailureCase> {};
// Named after the file, so that `ctest -R check_failures` runs them all.
INSTANTIATE_TEST_SUITE_P(check_failures, CheckFailure, ::testing::ValuesIn(Cases()), CaseName);

TEST_P(CheckFailure, PrintsItsLineAndExitCode) {
  const FailureCase& c = GetParam();
  const std::string suite = c.suite;
  ASSERT_TRUE(suite == "pre" || suite == "post" || suite == "rollback") << suite;
  ASSERT_TRUE(std::string(c.line).starts_with(kFailMark)) << c.line;

  const engine::Position to = Chain().ResolveRevision(c.target);
  ASSERT_GT(to, 0) << c.target;
  const std::string parent = to == 1 ? "base" : Chain().at(to - 1).revision;
  TestDatabase db(parent, c.shape);
  if (const char* data = c.data ? c.data : c.shape == Shape::kQuickstart ? codesearch::kQuickstartSampleSql : nullptr)
    db.Exec(data);
  const std::string url = db.url().text();
  std::vector<std::string> args = {"check", suite};
  if (std::string(c.target) != "head") args.insert(args.end(), {"--target", c.target});
  TempFile baseline;
  if (c.baseline) {
    ASSERT_EQ(suite, "rollback") << "a baseline is what `check rollback` compares with";
    auto saved = RunCli({"check", "pre", "--save-baseline", baseline.path()}, url);
    ASSERT_EQ(saved.exit_code, 0) << saved.out << saved.err;
    args.insert(args.end(), {"--baseline", baseline.path()});
  }
  {
    LogCapture quiet;  // the downgrade's warnings are no news here
    if (suite != "pre") MigrateTo(db.url(), c.target);
    if (suite == "rollback") MigrateTo(db.url(), parent);
  }

  // Before the break nothing fails: what fails below is the break's doing.
  auto clean = RunCli(With(args, "--json"), url);
  const auto before = nlohmann::json::parse(clean.out, nullptr, false);
  ASSERT_FALSE(before.is_discarded()) << clean.out << clean.err;
  ASSERT_EQ(FailedIds(before), std::set<std::string>{})
      << "the database fails before it is broken:\n" << clean.out << clean.err;

  if (*c.breaks) db.Exec(c.breaks);
  std::optional<Role> reader;
  std::string as = url;
  if (c.unreadable) {
    reader.emplace("NOSUPERUSER");
    db.Exec(fmt::format(
        "GRANT SELECT ON ALL TABLES IN SCHEMA public TO \"{0}\"; REVOKE SELECT ON public.{1} FROM \"{0}\"",
        reader->name(), c.unreadable));
    as = reader->UrlFor(db);
  }

  auto text = RunCli(args, as);
  EXPECT_EQ(text.exit_code, c.exit_code) << text.out << text.err;
  EXPECT_TRUE(HasLineStartingWith(text.out, c.line))
      << "no line starting with\n  " << c.line << "\nin\n" << text.out << text.err;

  // The line is this check's own, and the lines that fail are the ones expected.
  auto json = RunCli(With(args, "--json"), as);
  EXPECT_EQ(json.exit_code, c.exit_code) << json.out << json.err;
  const auto result = nlohmann::json::parse(json.out, nullptr, false);
  ASSERT_FALSE(result.is_discarded()) << json.out << json.err;
  std::set<std::string> expected(c.also_fail.begin(), c.also_fail.end());
  expected.insert(c.id);
  EXPECT_EQ(FailedIds(result), expected) << json.out;
  const std::string detail = std::string(c.line).substr(std::strlen(kFailMark));
  int own = 0;
  for (const auto& check : result.at("checks")) {
    if (check.at("id") != c.id) continue;
    ++own;
    EXPECT_EQ(check.at("status"), "fail") << check.dump();
    EXPECT_TRUE(check.at("detail").get<std::string>().starts_with(detail)) << check.dump();
  }
  EXPECT_EQ(own, 1) << c.id << " is not one line of\n" << json.out;
}

// ---- the table covers every check ----------------------------------------

// A check the suites define, and the ids its lines carry.
struct DefinedCheck {
  std::string what;              // for the failure message
  std::vector<std::string> ids;  // exact ids
  std::string key_prefix;        // "WHEN.NAME.": the verdict form's keyed lines; empty: none
  bool NamedBy(const std::string& id) const {
    return std::find(ids.begin(), ids.end(), id) != ids.end() ||
           (!key_prefix.empty() && id.starts_with(key_prefix));
  }
};

// The ids checks/suites.{h,cc} write as string literals ("pre.revision",
// "rollback.{}_data"), `{}` standing for each table in `tables`.
std::vector<DefinedCheck> SuiteLines(const std::set<std::string>& tables) {
  static const std::regex kId("\"((pre|post|rollback)\\.[a-z_{}]+)\"");
  std::set<std::string> ids;
  for (const char* file : {"harness/checks/suites.h", "harness/checks/suites.cc"}) {
    std::ifstream in(SourceDir() / file);
    EXPECT_TRUE(in) << "cannot read " << (SourceDir() / file);
    const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    for (std::sregex_iterator m(text.begin(), text.end(), kId), end; m != end; ++m) {
      const std::string id = (*m)[1];
      if (id.find("{}") == std::string::npos) {
        ids.insert(id);
        continue;
      }
      for (const auto& each : tables) ids.insert(std::string(id).replace(id.find("{}"), 2, each));
    }
  }
  std::vector<DefinedCheck> out;
  for (const auto& id : ids) out.push_back({id + " (checks/suites.{h,cc})", {id}, ""});
  return out;
}

TEST(check_failures, TheTableCoversEveryCheckTheSuitesDefine) {
  // Lines no database state makes fail, each with the reason. Keep it short:
  // a line that can fail gets a case in Cases() instead.
  struct Exclusion {
    const char* id;
    const char* why;
  };
  static const Exclusion kNeverFail[] = {
      {"pre.functions_naming_dropped_tables",
       "every row is an information (passed NULL), and its query reads only pg_trigger, pg_class, "
       "pg_namespace and pg_proc, which every role may read: neither its verdict nor its query can fail"},
      {"pre.autovacuum",
       "every row is an information (passed NULL), and its query reads only statistics views and "
       "catalogs every role may read: neither its verdict nor its query can fail"},
      {"rollback.data",
       "only ever skipped (no --baseline, which exits 1 as not a full pass); with a baseline the "
       "per-table lines and rollback.dropped_tables_data judge the rows, and fail above"},
      {"rollback.other_database",
       "an information: the baseline was recorded on another database, so tables are compared by rows"},
      {"rollback.prebuilt_removed",
       "an information: the objects 002 found built beforehand, which the rollback removed"},
  };

  std::vector<DefinedCheck> defined;
  for (const auto& file : Chain().chain())
    for (const auto& c : file.checks)
      defined.push_back({fmt::format("{}.{} (`--! {} {}: {}` in {}:{})", c.when, c.name, c.gate ? "gate" : "check",
                                     c.when, c.name, file.path.filename().string(), c.line),
                         {c.when + "." + c.name, c.when + "." + file.revision + "." + c.name},
                         c.when + "." + c.name + "."});
  // One data line per table the rollback keeps: those of the quickstart at
  // head (the production shape's eight more are the same line, and
  // sentinel_test fails each of them through every column).
  std::set<std::string> kept;
  {
    TestDatabase head("head");
    for (const auto& [name, table] : head.Snapshot().tables) kept.insert(name);
  }
  ASSERT_FALSE(kept.empty());
  const std::vector<DefinedCheck> generic = SuiteLines(kept);
  // Guards the reading of suites.cc itself: it must find the lines it knows.
  for (const char* id : {"pre.revision", checks::kDroppedRowsId})
    EXPECT_TRUE(std::any_of(generic.begin(), generic.end(), [&](const auto& d) { return d.NamedBy(id); }))
        << id << " not found in checks/suites.{h,cc}";
  defined.insert(defined.end(), generic.begin(), generic.end());

  // Of the cases (a check may have several: `variant`) and the exclusions.
  const std::set<std::string> case_ids = [] {
    std::set<std::string> out;
    for (const auto& c : Cases()) out.insert(c.id);
    return out;
  }();
  std::vector<std::string> ids(case_ids.begin(), case_ids.end());
  for (const auto& e : kNeverFail) ids.push_back(e.id);

  std::string uncovered;
  for (const auto& d : defined)
    if (std::none_of(ids.begin(), ids.end(), [&](const auto& id) { return d.NamedBy(id); }))
      uncovered += "  " + d.what + "\n";
  EXPECT_TRUE(uncovered.empty())
      << "checks without a case in Cases() (add one that fails it) or an exclusion:\n" << uncovered;

  // And no case or exclusion names a check that no longer exists.
  std::string stale;
  for (const auto& id : ids)
    if (std::none_of(defined.begin(), defined.end(), [&](const auto& d) { return d.NamedBy(id); }))
      stale += "  " + id + "\n";
  EXPECT_TRUE(stale.empty()) << "cases or exclusions naming no check the suites define:\n" << stale;

  // One entry per check: a case and an exclusion for the same one contradict.
  for (const auto& d : defined) {
    int entries = 0;
    for (const auto& id : ids) entries += d.NamedBy(id);
    EXPECT_LE(entries, 1) << d.what << " has more than one entry";
  }
}

}  // namespace
}  // namespace harness::testing
