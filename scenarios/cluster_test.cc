// The embedded cluster and disposable databases: private, socket-only,
// cleaned up on every exit path, including a crash of the owner.
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <thread>

#include <gtest/gtest.h>
#include <pqxx/pqxx>

#include "harness/pg/cluster.h"
#include "harness/pg/connection.h"
#include "harness/pg/disposable_database.h"
#include "harness/pg/process.h"
#include "scenarios/support/state_file.h"
#include "scenarios/support/test_env.h"

namespace harness::pg {
namespace {

namespace fs = std::filesystem;

std::string Show(const Url& url, const std::string& setting) {
  Connection c(url);
  pqxx::nontransaction tx(c.raw());
  return tx.exec("SHOW " + setting)[0][0].as<std::string>();
}

bool DatabaseExists(const Url& admin, const std::string& name) {
  Connection c(admin);
  pqxx::nontransaction tx(c.raw());
  return tx.exec_params("SELECT 1 FROM pg_database WHERE datname = $1", name).size() == 1;
}

TEST(EmbeddedCluster, IsPrivateSocketOnlyAndUnsynced) {
  auto cluster = EmbeddedCluster::Start();
  RecordProperty("start_seconds", std::to_string(cluster->start_seconds()));
  std::printf("embedded cluster started in %.3f s\n", cluster->start_seconds());
  fs::path dir = cluster->dir();
  struct stat st {};
  ASSERT_EQ(stat(dir.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0700u);
  if (geteuid() == 0) {
    EXPECT_EQ(st.st_uid, LookupUser("postgres")->uid);
  }
  EXPECT_EQ(dir.parent_path(), DefaultClusterParent());
  EXPECT_EQ(Show(cluster->AdminUrl(), "listen_addresses"), "");
  EXPECT_EQ(Show(cluster->AdminUrl(), "fsync"), "off");
  EXPECT_EQ(Show(cluster->AdminUrl(), "unix_socket_directories"), dir.string());
  pid_t pm = cluster->postmaster_pid();
  EXPECT_TRUE(ProcessAlive(pm));
  cluster.reset();
  EXPECT_FALSE(fs::exists(dir));
  EXPECT_FALSE(ProcessAlive(pm));
}

TEST(EmbeddedCluster, ACrashedOwnerLeavesNothingForLong) {
  int fds[2];
  ASSERT_EQ(pipe2(fds, O_CLOEXEC), 0);
  pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    close(fds[0]);
    try {
      auto c = EmbeddedCluster::Start();
      std::string msg = c->dir().string() + "\n" + std::to_string(c->postmaster_pid()) + "\n";
      (void)!write(fds[1], msg.data(), msg.size());
      close(fds[1]);
      pause();
    } catch (...) {
    }
    _exit(1);
  }
  close(fds[1]);
  std::string msg;
  char buf[512];
  ssize_t n;
  while ((n = read(fds[0], buf, sizeof buf)) > 0) msg.append(buf, static_cast<size_t>(n));
  close(fds[0]);
  auto nl = msg.find('\n');
  ASSERT_NE(nl, std::string::npos) << "child could not start a cluster";
  fs::path dir = msg.substr(0, nl);
  pid_t pm = std::atoi(msg.c_str() + nl + 1);
  kill(child, SIGKILL);  // the owner crashes: no destructor runs
  waitpid(child, nullptr, 0);
  // The server follows its owner (parent-death signal).
  for (int i = 0; i < 1000 && ProcessAlive(pm); ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  EXPECT_FALSE(ProcessAlive(pm));
  // The next start reaps the directory (or a concurrent test's start did).
  auto next = EmbeddedCluster::Start();
  EXPECT_FALSE(fs::exists(dir));
}

TEST(DisposableDatabase, IsDroppedAtScopeEndUnlessKept) {
  auto cluster = EmbeddedCluster::Start();
  std::string name;
  std::unique_ptr<Connection> leftover;  // a session a failed test left open
  {
    DisposableDatabase db(cluster->AdminUrl(), "template1");
    name = db.name();
    EXPECT_TRUE(DatabaseExists(cluster->AdminUrl(), name));
    std::printf("cloned a database in %.3f s\n", db.clone_seconds());
    leftover = std::make_unique<Connection>(db.url());
  }
  EXPECT_FALSE(DatabaseExists(cluster->AdminUrl(), name));
  leftover.reset();
  {
    DisposableDatabase db(cluster->AdminUrl(), "template1");
    name = db.name();
    db.set_keep(true);
  }
  EXPECT_TRUE(DatabaseExists(cluster->AdminUrl(), name));
}

TEST(DisposableDatabase, TwoClonesNeverShareAName) {
  auto cluster = EmbeddedCluster::Start();
  DisposableDatabase a(cluster->AdminUrl(), "template1");
  DisposableDatabase b(cluster->AdminUrl(), "template1");
  EXPECT_NE(a.name(), b.name());
}


// --- test-cluster, the keeper of the cluster a ctest run shares -------------

// A private directory (0755: a server running as `postgres` may need to
// read what is in it), removed at scope end.
class TempDir {
 public:
  TempDir() {
    std::string pattern = (fs::temp_directory_path() / "mh-cluster-test-XXXXXX").string();
    if (mkdtemp(pattern.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
    path_ = pattern;
    fs::permissions(path_, fs::perms::owner_all | fs::perms::group_read | fs::perms::group_exec |
                               fs::perms::others_read | fs::perms::others_exec);
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

// test-cluster sits next to this program in the build tree.
fs::path TestClusterBinary() {
  return fs::read_symlink("/proc/self/exe").parent_path() / "test-cluster";
}

ProcessResult TestCluster(const std::string& cmd, const fs::path& state,
                          const std::map<std::string, std::string>& env = {}) {
  ProcessOptions o;
  o.env = env;
  if (!env.count("HARNESS_KEEP_FAILED")) o.unset_env = {"HARNESS_KEEP_FAILED"};
  o.timeout = std::chrono::seconds(120);
  return RunProcess({TestClusterBinary().string(), cmd, "--state", state.string()}, o);
}

struct KeeperState {
  std::string socket_dir;
  int port = 0;
  pid_t keeper = -1;
  pid_t postmaster = -1;
  Url AdminUrl() const { return ClusterAddress{socket_dir, port}.AdminUrl(); }
};

KeeperState ReadKeeperState(const fs::path& state) {
  harness::testing::StateFile f(state.string());
  KeeperState k;
  k.socket_dir = f.Get("socket_dir");
  k.port = static_cast<int>(f.Number("port"));
  k.keeper = static_cast<pid_t>(f.Number("keeper_pid", -1));
  k.postmaster = static_cast<pid_t>(f.Number("postmaster_pid", -1));
  return k;
}

// A stand-in for ctest: a child process that runs `test-cluster start` and
// then waits to be killed (Kill(), or at scope end on every path, so a
// failed assertion never leaves it and its ctest output pipe behind).
// output(): start's exit code on the first line, then what it printed.
class FakeCtest {
 public:
  explicit FakeCtest(const fs::path& state) {
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) != 0) throw std::runtime_error("pipe2 failed");
    pid_ = fork();
    if (pid_ < 0) throw std::runtime_error("fork failed");
    if (pid_ == 0) {
      close(fds[0]);
      std::string msg;
      try {
        auto r = TestCluster("start", state);
        msg = std::to_string(r.exit_code) + "\n" + r.out + r.err;
      } catch (const std::exception& e) {
        msg = std::string("-1\n") + e.what();
      }
      (void)!write(fds[1], msg.data(), msg.size());
      close(fds[1]);
      for (;;) pause();
    }
    close(fds[1]);
    char buf[512];
    ssize_t n;
    while ((n = read(fds[0], buf, sizeof buf)) > 0) output_.append(buf, static_cast<size_t>(n));
    close(fds[0]);
  }
  ~FakeCtest() { Kill(); }
  FakeCtest(const FakeCtest&) = delete;
  FakeCtest& operator=(const FakeCtest&) = delete;
  const std::string& output() const { return output_; }
  bool started() const { return output_.rfind("0\n", 0) == 0; }
  void Kill() {
    if (pid_ <= 0) return;
    kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
    pid_ = -1;
  }

 private:
  pid_t pid_ = -1;
  std::string output_;
};

class TestClusterKeeper : public ::testing::Test {
 protected:
  void SetUp() override {
    // A build dependency of this program (scenarios/CMakeLists.txt).
    ASSERT_TRUE(fs::exists(TestClusterBinary())) << TestClusterBinary() << " is not built";
  }
  // A test that failed half way still stops what it started.
  void TearDown() override {
    if (fs::exists(state_)) TestCluster("stop", state_);
  }
  TempDir dir_;
  fs::path state_ = dir_.path() / "test-cluster.state";
};

TEST_F(TestClusterKeeper, GoesAwayWithTheRunThatStartedIt) {
  FakeCtest ctest(state_);
  ASSERT_TRUE(ctest.started()) << ctest.output();
  KeeperState k = ReadKeeperState(state_);
  ASSERT_TRUE(ProcessAlive(k.keeper)) << ctest.output();
  ASSERT_TRUE(ProcessAlive(k.postmaster));
  ASSERT_TRUE(fs::exists(k.socket_dir));
  EXPECT_NO_THROW(Connection c(k.AdminUrl()));

  ctest.Kill();  // ctest aborted: cluster_stop never runs
  EXPECT_TRUE(
      harness::testing::WaitUntil([&] { return !ProcessAlive(k.keeper); }, std::chrono::seconds(20)));
  EXPECT_FALSE(ProcessAlive(k.postmaster));
  EXPECT_FALSE(fs::exists(k.socket_dir));
  EXPECT_FALSE(fs::exists(state_));
}

TEST_F(TestClusterKeeper, StartStopsTheKeeperAnEarlierRunLeft) {
  auto first = TestCluster("start", state_);
  ASSERT_EQ(first.exit_code, 0) << first.out << first.err;
  KeeperState old = ReadKeeperState(state_);
  ASSERT_TRUE(ProcessAlive(old.keeper));

  auto second = TestCluster("start", state_);
  ASSERT_EQ(second.exit_code, 0) << second.out << second.err;
  EXPECT_NE(second.out.find("stopping the test cluster an earlier run left"), std::string::npos)
      << second.out;
  KeeperState now = ReadKeeperState(state_);
  EXPECT_NE(now.keeper, old.keeper);
  EXPECT_FALSE(ProcessAlive(old.keeper));
  EXPECT_FALSE(ProcessAlive(old.postmaster));
  EXPECT_FALSE(fs::exists(old.socket_dir));
  EXPECT_TRUE(ProcessAlive(now.keeper));
  EXPECT_NO_THROW(Connection c(now.AdminUrl()));

  auto stop = TestCluster("stop", state_);
  EXPECT_EQ(stop.exit_code, 0);
  EXPECT_FALSE(ProcessAlive(now.keeper));
  EXPECT_FALSE(ProcessAlive(now.postmaster));
  EXPECT_FALSE(fs::exists(now.socket_dir));
  EXPECT_FALSE(fs::exists(state_));
}

TEST_F(TestClusterKeeper, KeepFailedLeavesTheClusterRunningUntilStopped) {
  FakeCtest ctest(state_);
  ASSERT_TRUE(ctest.started()) << ctest.output();
  KeeperState k = ReadKeeperState(state_);

  // A database kept by a failed test (TestDatabase records it so):
  {
    Connection c(k.AdminUrl());
    pqxx::nontransaction tx(c.raw());
    tx.exec("CREATE DATABASE mh_kept_for_inspection");
  }
  std::ofstream(state_.string() + ".kept") << "mh_kept_for_inspection\n";
  auto stop = TestCluster("stop", state_, {{"HARNESS_KEEP_FAILED", "1"}});
  EXPECT_EQ(stop.exit_code, 0);
  EXPECT_NE(stop.out.find("stays running"), std::string::npos) << stop.out;
  EXPECT_NE(stop.out.find("psql \"host='" + k.socket_dir + "' port=" + std::to_string(k.port) +
                          " user=postgres dbname='mh_kept_for_inspection'\""),
            std::string::npos)
      << stop.out;
  EXPECT_NE(stop.out.find(TestClusterBinary().string() + " stop --state " + state_.string()),
            std::string::npos)
      << stop.out;

  ctest.Kill();  // the ctest run ends
  std::this_thread::sleep_for(std::chrono::seconds(2));
  EXPECT_TRUE(ProcessAlive(k.keeper));
  EXPECT_TRUE(DatabaseExists(k.AdminUrl(), "mh_kept_for_inspection"));

  // The printed command stops it, even with HARNESS_KEEP_FAILED=1 still set.
  stop = TestCluster("stop", state_, {{"HARNESS_KEEP_FAILED", "1"}});
  EXPECT_EQ(stop.exit_code, 0);
  EXPECT_NE(stop.out.find("stopped the test cluster"), std::string::npos) << stop.out;
  EXPECT_FALSE(ProcessAlive(k.keeper));
  EXPECT_FALSE(ProcessAlive(k.postmaster));
  EXPECT_FALSE(fs::exists(k.socket_dir));
  EXPECT_FALSE(fs::exists(state_));
}

// --- connections and copies ---------------------------------------------------

// A TCP port that completes the handshake (the kernel's backlog) but never
// answers: what a host that drops packets looks like to libpq, once connected.
class SilentServer {
 public:
  SilentServer() {
    fd_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof addr;
    if (fd_ < 0 || bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
        listen(fd_, 16) != 0 || getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len) != 0)
      throw std::runtime_error("cannot listen on loopback");
    port_ = ntohs(addr.sin_port);
  }
  ~SilentServer() { close(fd_); }
  int port() const { return port_; }

 private:
  int fd_ = -1;
  int port_ = 0;
};

double SecondsSince(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

TEST(ConnectTimeout, GivesUpOnAServerThatNeverAnswers) {
  SilentServer silent;
  // Keyword/value form, in-process.
  auto t0 = std::chrono::steady_clock::now();
  Url url = Url::Parse("host=127.0.0.1 port=" + std::to_string(silent.port()) +
                       " user=someone dbname=nothing");
  try {
    Connection c(url);
    ADD_FAILURE() << "connected to a server that never answers";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ExitCode::kDatabase);
    EXPECT_NE(std::string(e.what()).find("127.0.0.1:" + std::to_string(silent.port())),
              std::string::npos)
        << e.what();
    EXPECT_EQ(std::string(e.what()).find("connect_timeout"), std::string::npos) << e.what();
  }
  double seconds = SecondsSince(t0);
  EXPECT_GE(seconds, kDefaultConnectTimeoutSeconds - 1);
  EXPECT_LT(seconds, kDefaultConnectTimeoutSeconds + 10);

  // URL form, through the CLI: exit code 3.
  t0 = std::chrono::steady_clock::now();
  auto r = harness::testing::RunCli(
      {"current"}, "postgresql://someone@127.0.0.1:" + std::to_string(silent.port()) + "/nothing",
      {{"PGCONNECT_TIMEOUT", ""}});
  seconds = SecondsSince(t0);
  EXPECT_EQ(r.exit_code, 3) << r.out << r.err;
  EXPECT_NE(r.err.find("cannot connect to 127.0.0.1:" + std::to_string(silent.port())),
            std::string::npos)
      << r.err;
  EXPECT_EQ(r.err.find("connect_timeout"), std::string::npos) << r.err;
  EXPECT_LT(seconds, kDefaultConnectTimeoutSeconds + 10);
}

TEST(ConnectTimeout, KeepsTheOneTheUrlSets) {
  SilentServer silent;
  auto t0 = std::chrono::steady_clock::now();
  Url url = Url::Parse("postgresql://someone@127.0.0.1:" + std::to_string(silent.port()) +
                       "/nothing?connect_timeout=2");
  EXPECT_THROW(Connection c(url), Error);
  EXPECT_LT(SecondsSince(t0), kDefaultConnectTimeoutSeconds - 2);
}

TEST(EmbeddedCluster, PgDumpGetsThePasswordInItsEnvironmentOnly) {
  // The server programs, with a pg_dump that records what it was given.
  TempDir bin;
  fs::path real = FindServerBinDir();
  for (const auto& entry : fs::directory_iterator(real))
    if (entry.path().filename() != "pg_dump")
      fs::create_symlink(entry.path(), bin.path() / entry.path().filename());
  {
    std::ofstream script(bin.path() / "pg_dump");
    script << "#!/bin/sh\n"
           << "printf '%s\\n' \"$@\" > '" << (bin.path() / "argv").string() << "'\n"
           << "printf '%s' \"$PGPASSWORD\" > '" << (bin.path() / "password").string() << "'\n"
           << "exec '" << (real / "pg_dump").string() << "' \"$@\"\n";
  }
  fs::permissions(bin.path() / "pg_dump", fs::perms::owner_all | fs::perms::group_read |
                                              fs::perms::group_exec | fs::perms::others_read |
                                              fs::perms::others_exec);
  ClusterOptions options;
  options.bin_dir = bin.path().string();
  auto cluster = EmbeddedCluster::Start(options);
  const std::string password = "pw-s3cret-42";
  std::string socket;  // percent-encoded for the URL's query
  for (char c : cluster->address().socket_dir)
    socket += c == '/' ? std::string("%2F") : std::string(1, c);
  Url source = Url::Parse("postgresql://postgres:" + password + "@/postgres?host=" + socket +
                          "&port=" + std::to_string(cluster->address().port));
  ASSERT_EQ(source.password(), password);

  cluster->CopyDatabaseFrom(source, "mh_copy");

  std::ifstream argv_file(bin.path() / "argv");
  std::string argv((std::istreambuf_iterator<char>(argv_file)), std::istreambuf_iterator<char>());
  std::ifstream password_file(bin.path() / "password");
  std::string env((std::istreambuf_iterator<char>(password_file)),
                  std::istreambuf_iterator<char>());
  ASSERT_FALSE(argv.empty()) << "the recording pg_dump did not run";
  EXPECT_EQ(argv.find(password), std::string::npos) << argv;
  EXPECT_NE(argv.find("dbname='postgres'"), std::string::npos) << argv;
  EXPECT_NE(argv.find("host='" + cluster->address().socket_dir + "'"), std::string::npos) << argv;
  EXPECT_EQ(env, password);
  EXPECT_TRUE(DatabaseExists(cluster->AdminUrl(), "mh_copy"));
}

TEST(UrlConnInfo, LeavesThePasswordOutOnRequest) {
  for (const std::string text :
       {"postgresql://u:p%40ss@db.example:5433/app?sslmode=require",
        "host=db.example port=5433 user=u password='p@ss' dbname=app sslmode=require"}) {
    Url url = Url::Parse(text);
    std::string without = url.ConnInfo({}, false);
    EXPECT_EQ(without.find("p@ss"), std::string::npos) << without;
    Url back = Url::Parse(without);
    EXPECT_EQ(back.Describe(), url.Describe());
    EXPECT_TRUE(back.has("sslmode"));
    EXPECT_EQ(Url::Parse(url.ConnInfo()).password(), "p@ss");
    // Defaults fill in only what the URL does not set.
    EXPECT_NE(url.ConnInfo({{"connect_timeout", "10"}}).find("connect_timeout='10'"),
              std::string::npos);
    EXPECT_EQ(url.ConnInfo({{"sslmode", "disable"}}).find("disable"), std::string::npos);
  }
}

}  // namespace
}  // namespace harness::pg
