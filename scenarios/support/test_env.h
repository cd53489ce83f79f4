// What every scenario test stands on: one PostgreSQL cluster per ctest run
// (started by the `cluster_start` fixture test and found through
// $HARNESS_TEST_CLUSTER; a test program run by hand starts its own),
// template databases at each revision keyed by the migration files' hash,
// and a disposable database per test.
#pragma once

#include <chrono>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <spdlog/logger.h>

#include <nlohmann/json.hpp>

#include "harness/engine/revision_graph.h"
#include "harness/inspect/catalog.h"
#include "harness/inspect/fingerprint.h"
#include "harness/codesearch/shape.h"
#include "harness/pg/cluster.h"
#include "harness/pg/disposable_database.h"
#include "harness/sys/process.h"

// A string contains a substring; on failure the whole string is shown.
#define EXPECT_CONTAINS(haystack, needle) \
  EXPECT_NE(std::string(haystack).find(needle), std::string::npos) << (haystack)

namespace harness::testing {

// The cluster for this process.
const pg::ClusterAddress& TestServer();

// Empty when the local pg_dump (pg::FindClientBinDir) can dump the test
// server; else why not, for GTEST_SKIP: the server's major version is newer,
// as when scripts/pg-matrix runs the tests on PostgreSQL 16 to 18 with
// Debian's 15 client programs. verify --into-embedded then refuses before
// copying (pg_bindir_test.cc tests that refusal on every version).
std::string WhyLocalPgDumpCannotDumpTestServer();

// The chain the tests run: the source tree's migrations/, or the directory
// in HARNESS_TEST_MIGRATIONS (scripts/mutants runs the tests on a mutated
// copy that way, without rebuilding them). Every test and every CLI run of
// a test takes its migrations from here.
const engine::RevisionGraph& Chain();
std::filesystem::path MigrationsDir();
// The source tree (README.md, scenarios/golden, the test chains).
std::filesystem::path SourceDir();

using codesearch::Shape;

// The name of a template database upgraded to `revision` ("base" for an
// empty one), built once per migration-file hash and shared by all tests.
// The production shape starts at 005 (codesearch::BuildAt005): earlier
// revisions do not exist in it.
std::string TemplateAt(const std::string& revision, Shape shape = Shape::kQuickstart);

// For tests parameterised over both shapes: "Quickstart", "Production".
std::string ShapeTestName(const ::testing::TestParamInfo<Shape>& info);

// A database for one test, cloned from the template at `revision`. Dropped
// at scope end; kept (and its URL printed) when HARNESS_KEEP_FAILED=1 and
// the current test failed. On the shared cluster, the name then goes into
// STATE.kept, and cluster_stop leaves the cluster running (test-cluster).
class TestDatabase {
 public:
  explicit TestDatabase(const std::string& revision = "005", Shape shape = Shape::kQuickstart);
  ~TestDatabase();
  const pg::Url& url() const { return db_->url(); }
  const std::string& name() const { return db_->name(); }
  double clone_seconds() const { return db_->clone_seconds(); }

  // Runs SQL in its own transaction (a test's setup, or a probe).
  void Exec(const std::string& sql) const;
  // First column of the first row, as text ("" for NULL).
  std::string Scalar(const std::string& sql) const;
  inspect::CatalogSnapshot Snapshot() const;
  // The revision recorded in alembic_version ("<base>" when none).
  std::string Revision() const;

 private:
  std::unique_ptr<pg::DisposableDatabase> db_;
};

// Runs the migration-harness binary with `args`; DATABASE_URL is set to
// `url` when given, and HARNESS_MIGRATIONS to the source tree's chain.
sys::ProcessResult RunCli(const std::vector<std::string>& args, const std::string& url = {},
                         const std::map<std::string, std::string>& env = {});
// The same, started through `wrapper` (a program and its arguments that end
// by running the binary and its arguments, e.g. a shell redirecting its
// standard output).
sys::ProcessResult RunCliThrough(const std::vector<std::string>& wrapper, const std::vector<std::string>& args,
                                const std::string& url = {}, const std::map<std::string, std::string>& env = {});

// What "the database as it was" compares: the catalog of `public`
// (inspect::TakeSnapshot), the rows of alembic_version, and a fingerprint of
// the rows of every table in every schema (a table added anywhere is a line
// more). Read in one repeatable-read transaction through raw libpq with
// search_path pg_catalog alone: a pg::Connection refuses a database holding
// planted objects, and an overload planted in public must not run in the
// test's own reads either. A lock held on a table makes it fail after 30 s.
struct DatabaseState {
  inspect::CatalogSnapshot catalog;
  std::string rows;      // "schema.table: N rows, hash H", one line per table
  std::string revision;  // alembic_version's rows, sorted; "<none>", "<no table>"
};
DatabaseState CaptureState(const pg::Url& url);
DatabaseState CaptureState(const TestDatabase& db);

// EXPECTs the database at `url` (or `db`) as it was in `before`: an empty
// catalog diff, the same rows in every table, the same alembic_version.
// `what` (the command, say) heads each failure.
void ExpectUnchanged(const pg::Url& url, const DatabaseState& before, const std::string& what = {});
void ExpectUnchanged(const TestDatabase& db, const DatabaseState& before,
                     const std::string& what = {});

// RunCli on `db`, expecting `exit_code` and the database as it was
// (ExpectUnchanged): what a refusal, a --sql run or a no-op promises. The
// command connects with `url` when given (another role's, say), else with
// db.url(); `env` as for RunCli. Returns the result for the test's own
// checks of the output.
sys::ProcessResult RunCliUnchanged(const TestDatabase& db, const std::vector<std::string>& args,
                                  int exit_code, const std::string& url = {},
                                  const std::map<std::string, std::string>& env = {});

// The migration-harness binary started in the background, with the
// environment RunCli gives it; stdout and stderr go to a temporary file.
// With a `wrapper` (e.g. {"/usr/bin/timeout", "-s", "TERM", "600"}), that
// command is started with the binary and its arguments after it, and pid()
// is the wrapper's.
class BackgroundCli {
 public:
  BackgroundCli(const std::vector<std::string>& args, const std::string& url,
                const std::vector<std::string>& wrapper = {});
  // Kills it if it still runs (its whole process group when it leads one of
  // its own, as timeout does: the binary under it too); removes the file.
  ~BackgroundCli();
  BackgroundCli(const BackgroundCli&) = delete;
  BackgroundCli& operator=(const BackgroundCli&) = delete;
  pid_t pid() const { return pid_; }
  bool Running() const;
  void Signal(int sig) const;
  // The exit code, or nullopt when it has not exited within `timeout`.
  std::optional<int> Wait(std::chrono::seconds timeout);
  std::string Output() const;

 private:
  pid_t pid_ = -1;
  bool exited_ = false;
  std::filesystem::path log_;
};

// A role of its own for one test (LOGIN plus `attributes`), on the test
// cluster; dropped with what it owns at scope end.
class Role {
 public:
  explicit Role(const std::string& attributes);
  ~Role();
  Role(const Role&) = delete;
  Role& operator=(const Role&) = delete;
  const std::string& name() const { return name_; }
  // `url` as this role (the test cluster trusts its socket).
  std::string UrlFor(const TestDatabase& db) const;
  // Runs SQL as this role on `db`, in its own transaction.
  void Exec(const TestDatabase& db, const std::string& sql) const;
  bool IsSuperuser() const;

 private:
  std::string name_;
};

// Polls `condition` every 10 ms until it holds (true) or `timeout` passes.
bool WaitUntil(const std::function<bool()>& condition, std::chrono::milliseconds timeout);

// Upgrades/downgrades in-process (quiet log), for setting a state up.
void MigrateTo(const pg::Url& url, const std::string& revision);

// Everything logged (server NOTICEs included) while it is in scope; the
// test environment's logger is put back at scope end.
class LogCapture {
 public:
  LogCapture();
  ~LogCapture();
  LogCapture(const LogCapture&) = delete;
  LogCapture& operator=(const LogCapture&) = delete;
  std::string Text() const { return out_.str(); }

 private:
  std::ostringstream out_;
  std::shared_ptr<spdlog::logger> previous_;
};

// gtest printer for diffs: one line each.
std::string JoinLines(const std::vector<std::string>& lines);

// The Alembic test projects (scenarios/alembic/NAME), and a copy of one in
// a temporary folder (removed at scope end) for a test to change.
std::filesystem::path AlembicProject(const std::string& name);
class AlembicProjectCopy {
 public:
  explicit AlembicProjectCopy(const std::string& name);
  ~AlembicProjectCopy();
  AlembicProjectCopy(const AlembicProjectCopy&) = delete;
  AlembicProjectCopy& operator=(const AlembicProjectCopy&) = delete;
  const std::filesystem::path& dir() const { return dir_; }
  // Writes `text` to the file at `relative` (a revision, env.py, the ini).
  void Write(const std::string& relative, const std::string& text) const;

 private:
  std::filesystem::path dir_;
};
// A report's suite (RehearsalJson, SuiteJson): each line's id -> its detail.
std::map<std::string, std::string> SuiteDetails(const nlohmann::json& report, const std::string& suite);

// A chain of SQL revision files of a test's own, in a temporary folder
// (removed at scope end): file name -> text.
class TempChain {
 public:
  explicit TempChain(const std::map<std::string, std::string>& files);
  ~TempChain();
  TempChain(const TempChain&) = delete;
  TempChain& operator=(const TempChain&) = delete;
  std::string dir() const { return dir_.string(); }

 private:
  std::filesystem::path dir_;
};

// Runs Debian's Alembic (/usr/bin/python3) in `project` against `url`:
// `command` upgrade or downgrade to `revision`. Fails the test on an error.
void RunAlembic(const std::filesystem::path& project, const pg::Url& url, const std::string& driver,
                const std::string& command, const std::string& revision);

// Fingerprints of the nine tables 002 drops (every column), by name.
std::map<std::string, inspect::Fingerprint> DroppedFingerprints(const TestDatabase& db);

}  // namespace harness::testing
