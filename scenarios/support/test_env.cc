#include "scenarios/support/test_env.h"

#include <signal.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <mutex>
#include <thread>

#include <fmt/format.h>
#include <pqxx/pqxx>
#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>

#include "harness/codesearch/shapes.h"
#include "harness/checks/suites.h"
#include "harness/engine/migrator.h"
#include "harness/pg/connection.h"
#include "harness/codesearch/restore_dropped.h"
#include "scenarios/support/state_file.h"

namespace harness::testing {

namespace {

std::unique_ptr<pg::EmbeddedCluster>& OwnCluster() {
  static std::unique_ptr<pg::EmbeddedCluster> cluster;
  return cluster;
}

// The state file of the shared cluster (test-cluster start), when this
// process uses one; empty when it started its own.
std::string& SharedClusterState() {
  static std::string state;
  return state;
}

std::optional<pg::ClusterAddress> ReadStateFile(const std::string& path) {
  StateFile f(path);
  pg::ClusterAddress a;
  a.socket_dir = f.Get("socket_dir");
  a.port = static_cast<int>(f.Number("port"));
  if (a.socket_dir.empty() || a.port == 0) return std::nullopt;
  return a;
}

}  // namespace

const pg::ClusterAddress& TestServer() {
  static std::once_flag once;
  static pg::ClusterAddress address;
  std::call_once(once, [] {
    spdlog::set_level(spdlog::level::warn);
    if (const char* state = std::getenv("HARNESS_TEST_CLUSTER"); state && *state) {
      if (auto a = ReadStateFile(state)) {
        address = *a;
        SharedClusterState() = state;
        return;
      }
    }
    OwnCluster() = pg::EmbeddedCluster::Start();
    address = OwnCluster()->address();
  });
  return address;
}

std::filesystem::path MigrationsDir() {
  if (const char* dir = std::getenv("HARNESS_TEST_MIGRATIONS"); dir && *dir) return dir;
  return HARNESS_TEST_MIGRATIONS_DIR;
}

std::filesystem::path SourceDir() {
  return std::filesystem::path(HARNESS_TEST_MIGRATIONS_DIR).parent_path();
}

const engine::RevisionGraph& Chain() {
  static const engine::RevisionGraph graph = engine::RevisionGraph::LoadDirectory(MigrationsDir());
  return graph;
}

void MigrateTo(const pg::Url& url, const std::string& revision) {
  pg::Connection conn(url);
  engine::Migrator m(conn, Chain());
  engine::Position target = Chain().ResolveRevision(revision);
  engine::Position current = m.Current();
  if (target > current) m.Upgrade(revision);
  if (target < current) m.Downgrade(revision);
}

std::string ShapeTestName(const ::testing::TestParamInfo<Shape>& info) {
  return info.param == Shape::kProduction ? "Production" : "Quickstart";
}

std::string TemplateAt(const std::string& revision, Shape shape) {
  const auto& chain = Chain();
  engine::Position p = chain.ResolveRevision(revision);
  const bool production = shape == Shape::kProduction;
  auto p005 = chain.Find("005");
  if (production && (!p005 || p < *p005))
    throw std::invalid_argument("the production shape starts at 005, not at " + revision);
  // The production template also depends on the compiled-in schema.
  std::string hash = chain.HashUpTo(p).substr(0, 12);
  if (production)
    hash += fmt::format("_{:08x}", static_cast<std::uint32_t>(
                                       std::hash<std::string>{}(codesearch::Production005Sql())));
  std::string name = std::string(production ? "mh_tpl_prod_" : "mh_tpl_") +
                     (p == 0 ? std::string("base") : chain.at(p).revision) + "_" + hash;
  pg::Url admin = TestServer().AdminUrl();
  pg::Connection conn(admin);
  pqxx::nontransaction tx(conn.raw());
  // Serialises template builds across test processes (ctest -j).
  tx.exec("SELECT pg_advisory_lock(hashtext(" + tx.quote(name) + "))");
  bool exists =
      tx.exec_params("SELECT 1 FROM pg_database WHERE datname = $1", name).size() == 1;
  if (!exists) {
    std::string building = pg::UniqueDatabaseName("mh_building");
    tx.exec("CREATE DATABASE " + tx.quote_name(building) + " TEMPLATE template0");
    try {
      if (production) codesearch::BuildAt005(admin.WithDatabase(building), shape, chain);
      if (p > 0) MigrateTo(admin.WithDatabase(building), revision);
      tx.exec("ALTER DATABASE " + tx.quote_name(building) + " RENAME TO " + tx.quote_name(name));
    } catch (...) {
      pg::DropDatabase(admin, building);
      tx.exec("SELECT pg_advisory_unlock(hashtext(" + tx.quote(name) + "))");
      throw;
    }
  }
  tx.exec("SELECT pg_advisory_unlock(hashtext(" + tx.quote(name) + "))");
  return name;
}

TestDatabase::TestDatabase(const std::string& revision, Shape shape) {
  db_ = std::make_unique<pg::DisposableDatabase>(TestServer().AdminUrl(),
                                                 TemplateAt(revision, shape));
}

TestDatabase::~TestDatabase() {
  const char* keep = std::getenv("HARNESS_KEEP_FAILED");
  if (!keep || std::string(keep) != "1" || !::testing::Test::HasFailure()) return;
  try {
    db_->set_keep(true);
    const std::string name = db_->name();
    db_.reset();  // prints the database's psql command
    const std::string& state = SharedClusterState();
    if (state.empty()) {
      std::fprintf(stderr,
                   "note: this program started its own cluster, which goes away when it exits, "
                   "kept database included; to inspect it, run the test under ctest, or start "
                   "a cluster from an interactive shell with `test-cluster start --state FILE` (it "
                   "stops when that shell exits) and set HARNESS_TEST_CLUSTER=FILE\n");
      return;
    }
    // cluster_stop reads this list: with a kept database, it leaves the
    // cluster running instead of removing it.
    std::ofstream(state + ".kept", std::ios::app) << name << "\n";
    std::string stop = StateFile(state).Get("stop_command");
    std::fprintf(stderr,
                 "the shared test cluster stays running after the run (HARNESS_KEEP_FAILED=1); "
                 "stop it with:\n  %s\n",
                 stop.empty() ? ("test-cluster stop --state " + state).c_str() : stop.c_str());
  } catch (const std::exception& e) {
    std::fprintf(stderr, "warning: keeping the failed test's database: %s\n", e.what());
  }
}

void TestDatabase::Exec(const std::string& sql) const {
  pg::Connection conn(url());
  pqxx::work tx(conn.raw());
  tx.exec(sql);
  tx.commit();
}

Role::Role(const std::string& attributes) : name_(pg::UniqueDatabaseName("mh_role")) {
  pg::Connection conn(TestServer().AdminUrl());
  pqxx::nontransaction tx(conn.raw());
  tx.exec("CREATE ROLE " + tx.quote_name(name_) + " LOGIN " + attributes);
}

Role::~Role() {
  try {
    // Raw libpq: objects the role planted must not stop its own removal.
    pqxx::connection conn(TestServer().AdminUrl().text());
    pqxx::nontransaction tx(conn);
    // Only where it owns something or holds a grant (other tests' databases
    // come and go meanwhile).
    for (const auto& db : tx.exec("SELECT datname FROM pg_database WHERE datallowconn")) {
      try {
        pqxx::connection each(TestServer().UrlFor(db[0].c_str()).text());
        pqxx::nontransaction t(each);
        t.exec("DROP OWNED BY " + t.quote_name(name_) + " CASCADE");
      } catch (const std::exception&) {
      }
    }
    tx.exec("DROP ROLE " + tx.quote_name(name_));
  } catch (const std::exception& e) {
    std::fprintf(stderr, "warning: could not drop role %s: %s\n", name_.c_str(), e.what());
  }
}

std::string Role::UrlFor(const TestDatabase& db) const {
  return db.url().text() + " user=" + name_;
}

void Role::Exec(const TestDatabase& db, const std::string& sql) const {
  // Raw libpq, not pg::Connection: a hostile role's session is no tool's.
  pqxx::connection conn(UrlFor(db));
  pqxx::work tx(conn);
  tx.exec(sql);
  tx.commit();
}

bool Role::IsSuperuser() const {
  pqxx::connection conn(TestServer().AdminUrl().text());
  pqxx::read_transaction tx(conn);
  return tx.exec_params1("SELECT rolsuper FROM pg_roles WHERE rolname = $1", name_)[0].as<bool>();
}

std::string TestDatabase::Scalar(const std::string& sql) const {
  pg::Connection conn(url());
  pqxx::read_transaction tx(conn.raw());
  pqxx::result r = tx.exec(sql);
  if (r.empty() || r[0].empty()) throw std::runtime_error("no result for: " + sql);
  return r[0][0].is_null() ? "" : r[0][0].as<std::string>();
}

inspect::CatalogSnapshot TestDatabase::Snapshot() const {
  pg::Connection conn(url());
  pqxx::read_transaction tx(conn.raw());
  return inspect::TakeSnapshot(tx);
}

std::string TestDatabase::Revision() const {
  pg::Connection conn(url());
  engine::Migrator m(conn, Chain());
  return Chain().Name(m.Current());
}

sys::ProcessResult RunCli(const std::vector<std::string>& args, const std::string& url,
                         const std::map<std::string, std::string>& env) {
  return RunCliThrough({}, args, url, env);
}

sys::ProcessResult RunCliThrough(const std::vector<std::string>& wrapper, const std::vector<std::string>& args,
                                const std::string& url, const std::map<std::string, std::string>& env) {
  std::vector<std::string> argv = wrapper;
  argv.push_back(HARNESS_CLI_PATH);
  argv.insert(argv.end(), args.begin(), args.end());
  sys::ProcessOptions o;
  o.env = env;
  if (!o.env.count("HARNESS_MIGRATIONS")) o.env["HARNESS_MIGRATIONS"] = MigrationsDir().string();
  if (!url.empty()) o.env["DATABASE_URL"] = url;
  else o.unset_env.push_back("DATABASE_URL");
  o.timeout = std::chrono::seconds(600);
  return sys::RunProcess(argv, o);
}

namespace {

DatabaseState ReadState(pqxx::connection& conn) {
  pqxx::read_transaction tx(conn);
  tx.exec("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ");  // one snapshot for all of it
  tx.exec("SET LOCAL search_path = pg_catalog");
  tx.exec("SET LOCAL lock_timeout = '30s'");
  DatabaseState s;
  s.catalog = inspect::TakeSnapshot(tx);
  for (const auto& t : tx.exec(
           "SELECT n.nspname, c.relname FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n "
           "ON n.oid = c.relnamespace WHERE c.relkind IN ('r', 'p') AND n.nspname NOT IN "
           "('pg_catalog', 'information_schema') AND n.nspname !~ '^pg_(toast|temp_)' "
           "ORDER BY n.nspname COLLATE \"C\", c.relname COLLATE \"C\"")) {
    const std::string name = tx.quote_name(t[0].c_str()) + "." + tx.quote_name(t[1].c_str());
    auto f = tx.exec1("SELECT count(*), coalesce(sum(hashtextextended(t::text, 0)::numeric), "
                      "0)::text FROM " + name + " t");
    s.rows += name + ": " + f[0].c_str() + " rows, hash " + f[1].c_str() + "\n";
  }
  const bool has_table =
      tx.exec1("SELECT count(*) FROM pg_catalog.pg_class WHERE relname = 'alembic_version' AND "
               "relkind IN ('r', 'p') AND relnamespace = 'public'::regnamespace")[0]
          .as<int>() == 1;
  s.revision = !has_table ? "<no table>"
                          : tx.exec1("SELECT coalesce(string_agg(v, ',' ORDER BY v COLLATE \"C\"), "
                                     "'<none>') FROM (SELECT coalesce(version_num::text, 'NULL') "
                                     "AS v FROM public.alembic_version) a")[0]
                                .as<std::string>();
  return s;
}

}  // namespace

DatabaseState CaptureState(const pg::Url& url) {
  DatabaseState s;
  int pid = 0;
  {
    pqxx::connection conn(pg::ConnectString(url));
    pid = conn.backendpid();
    s = ReadState(conn);
  }
  // The server ends the session a moment after the client leaves: waited
  // for (from another database), so that a command run next (verify's
  // clone) finds no other session on this one.
  pqxx::connection other(pg::ConnectString(url.WithDatabase("postgres")));
  const bool gone = WaitUntil(
      [&] {
        pqxx::nontransaction tx(other);
        return tx.exec_params1("SELECT count(*) FROM pg_catalog.pg_stat_activity WHERE pid = $1",
                               pid)[0]
                   .as<int>() == 0;
      },
      std::chrono::seconds(10));
  EXPECT_TRUE(gone) << "the session that read the database's state did not end";
  return s;
}

DatabaseState CaptureState(const TestDatabase& db) { return CaptureState(db.url()); }

void ExpectUnchanged(const pg::Url& url, const DatabaseState& before, const std::string& what) {
  const std::string head = what.empty() ? std::string() : what + ": ";
  DatabaseState after = CaptureState(url);
  auto diff = inspect::Diff(before.catalog, after.catalog);
  EXPECT_TRUE(diff.empty()) << head << "the catalog changed:\n" << JoinLines(diff);
  EXPECT_EQ(after.revision, before.revision) << head << "alembic_version changed";
  EXPECT_EQ(after.rows, before.rows) << head << "the rows changed";
}

void ExpectUnchanged(const TestDatabase& db, const DatabaseState& before, const std::string& what) {
  ExpectUnchanged(db.url(), before, what);
}

sys::ProcessResult RunCliUnchanged(const TestDatabase& db, const std::vector<std::string>& args,
                                  int exit_code, const std::string& url,
                                  const std::map<std::string, std::string>& env) {
  std::string command;
  for (const auto& a : args) command += (command.empty() ? "" : " ") + a;
  const DatabaseState before = CaptureState(db);
  auto r = RunCli(args, url.empty() ? db.url().text() : url, env);
  EXPECT_EQ(r.exit_code, exit_code) << command << "\n" << r.out << r.err;
  ExpectUnchanged(db, before, command);
  return r;
}

BackgroundCli::BackgroundCli(const std::vector<std::string>& args, const std::string& url,
                             const std::vector<std::string>& wrapper) {
  std::vector<std::string> argv = wrapper;
  argv.push_back(HARNESS_CLI_PATH);
  argv.insert(argv.end(), args.begin(), args.end());
  sys::ProcessOptions o;
  o.env = {{"DATABASE_URL", url}, {"HARNESS_MIGRATIONS", MigrationsDir().string()}};
  log_ = std::filesystem::temp_directory_path() / (pg::UniqueDatabaseName("mh_cli") + ".log");
  o.stdout_file = log_.string();
  pid_ = sys::SpawnProcess(argv, o);
}

BackgroundCli::~BackgroundCli() {
  if (!exited_ && sys::ProcessAlive(pid_)) {
    kill(getpgid(pid_) == pid_ ? -pid_ : pid_, SIGKILL);
    sys::WaitForExit(pid_, std::chrono::seconds(10));
  }
  std::error_code ec;
  std::filesystem::remove(log_, ec);
}

bool BackgroundCli::Running() const { return !exited_ && sys::ProcessAlive(pid_); }

void BackgroundCli::Signal(int sig) const { kill(pid_, sig); }

std::optional<int> BackgroundCli::Wait(std::chrono::seconds timeout) {
  int status = -1;
  if (!sys::WaitForExit(pid_, timeout, &status)) return std::nullopt;
  exited_ = true;
  return status;
}

std::string BackgroundCli::Output() const {
  std::ifstream in(log_);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

bool WaitUntil(const std::function<bool()>& condition, std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!condition()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return true;
}

LogCapture::LogCapture() : previous_(spdlog::default_logger()) {
  auto logger = std::make_shared<spdlog::logger>(
      "capture", std::make_shared<spdlog::sinks::ostream_sink_mt>(out_));
  logger->set_level(spdlog::level::info);
  spdlog::set_default_logger(logger);
}

LogCapture::~LogCapture() { spdlog::set_default_logger(previous_); }

std::string WhyLocalPgDumpCannotDumpTestServer() {
  static const std::string why = [] {
    const auto pg_dump = pg::FindClientBinDir() / "pg_dump";
    const pg::ProgramVersion client = pg::ReadProgramVersion(pg_dump);
    pg::Connection conn(TestServer().AdminUrl());
    const int server = conn.raw().server_version();
    if (server / 10000 <= client.major) return std::string();
    return fmt::format("the test server runs PostgreSQL {}.{}, newer than the local pg_dump {} "
                       "({}), which cannot dump it",
                       server / 10000, server % 10000, client.text, pg_dump.string());
  }();
  return why;
}

std::string JoinLines(const std::vector<std::string>& lines) {
  std::string out;
  for (const auto& l : lines) out += l + "\n";
  return out;
}

std::map<std::string, inspect::Fingerprint> DroppedFingerprints(const TestDatabase& db) {
  pg::Connection conn(db.url());
  pqxx::read_transaction tx(conn.raw());
  std::map<std::string, inspect::Fingerprint> out;
  for (const auto& t : codesearch::TablesDroppedBy002())
    out[t] = inspect::TakeFingerprint(tx, t, inspect::ColumnsOf(tx, t));
  return out;
}


std::map<std::string, std::string> SuiteDetails(const nlohmann::json& report, const std::string& suite) {
  std::map<std::string, std::string> out;
  if (!report.is_object() || !report.contains("suites")) return out;
  for (const auto& s : report["suites"])
    if (s["suite"] == suite)
      for (const auto& c : s["checks"]) out[c["id"].get<std::string>()] = c["detail"].get<std::string>();
  return out;
}

TempChain::TempChain(const std::map<std::string, std::string>& files)
    : dir_(std::filesystem::path(::testing::TempDir()) / pg::UniqueDatabaseName("mh_chain")) {
  std::filesystem::create_directories(dir_);
  for (const auto& [name, text] : files) std::ofstream(dir_ / name) << text;
}

TempChain::~TempChain() {
  std::error_code ec;
  std::filesystem::remove_all(dir_, ec);
}

std::filesystem::path AlembicProject(const std::string& name) { return SourceDir() / "scenarios" / "alembic" / name; }

AlembicProjectCopy::AlembicProjectCopy(const std::string& name)
    : dir_(std::filesystem::path(::testing::TempDir()) / pg::UniqueDatabaseName("mh_alembic")) {
  std::filesystem::create_directories(dir_);
  std::filesystem::copy(AlembicProject(name), dir_, std::filesystem::copy_options::recursive);
}

AlembicProjectCopy::~AlembicProjectCopy() {
  std::error_code ec;
  std::filesystem::remove_all(dir_, ec);
}

void AlembicProjectCopy::Write(const std::string& relative, const std::string& text) const {
  std::filesystem::create_directories((dir_ / relative).parent_path());
  std::ofstream(dir_ / relative) << text;
}

void RunAlembic(const std::filesystem::path& project, const pg::Url& url, const std::string& driver,
                const std::string& command, const std::string& revision) {
  // The URL in SQLAlchemy's form over the test cluster's socket (no password).
  const std::string sqlalchemy = "postgresql+" + driver + "://" + url.user() + "@/" + url.dbname() +
                                 "?host=" + url.host() + "&port=" + url.port();
  sys::ProcessOptions o;
  o.working_dir = project.string();
  o.env = {{"DATABASE_URL", sqlalchemy}, {"MH_TEST_URL", sqlalchemy}, {"PYTHONDONTWRITEBYTECODE", "1"}};
  o.timeout = std::chrono::seconds(120);
  auto r = sys::RunProcess({"/usr/bin/python3", "-c",
                           "import os, sys\n"
                           "from alembic.config import Config\n"
                           "from alembic import command\n"
                           "c = Config('alembic.ini')\n"
                           "c.set_main_option('sqlalchemy.url', os.environ['MH_TEST_URL'])\n"
                           "getattr(command, sys.argv[1])(c, sys.argv[2])\n",
                           command, revision},
                          o);
  ASSERT_EQ(r.exit_code, 0) << "alembic " << command << " " << revision << " in " << project << ":\n" << r.err;
}

}  // namespace harness::testing
