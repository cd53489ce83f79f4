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
#include <future>
#include <tuple>
#include <filesystem>
#include <fstream>
#include <map>
#include <thread>

#include <gtest/gtest.h>
#include <pqxx/pqxx>

#include "harness/error.h"
#include "harness/pg/cluster.h"
#include "harness/pg/connection.h"
#include "harness/pg/disposable_database.h"
#include "harness/sys/process.h"
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
    EXPECT_EQ(st.st_uid, sys::LookupUser("postgres")->uid);
  }
  // In our own directory of the parent: ours, writable by us only.
  EXPECT_EQ(dir.parent_path(), PrivateClusterDir(DefaultClusterParent()));
  ASSERT_EQ(lstat(dir.parent_path().c_str(), &st), 0);
  EXPECT_TRUE(S_ISDIR(st.st_mode));
  EXPECT_EQ(st.st_uid, geteuid());
  EXPECT_EQ(st.st_mode & 0777, geteuid() == 0 ? 0711u : 0700u);
  EXPECT_EQ(Show(cluster->AdminUrl(), "listen_addresses"), "");
  EXPECT_EQ(Show(cluster->AdminUrl(), "fsync"), "off");
  EXPECT_EQ(Show(cluster->AdminUrl(), "unix_socket_directories"), dir.string());
  pid_t pm = cluster->postmaster_pid();
  EXPECT_TRUE(sys::ProcessAlive(pm));
  cluster.reset();
  EXPECT_FALSE(fs::exists(dir));
  EXPECT_FALSE(sys::ProcessAlive(pm));
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
  for (int i = 0; i < 1000 && sys::ProcessAlive(pm); ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  EXPECT_FALSE(sys::ProcessAlive(pm));
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

sys::ProcessResult TestCluster(const std::string& cmd, const fs::path& state,
                          const std::map<std::string, std::string>& env = {}) {
  sys::ProcessOptions o;
  o.env = env;
  if (!env.count("HARNESS_KEEP_FAILED")) o.unset_env = {"HARNESS_KEEP_FAILED"};
  o.timeout = std::chrono::seconds(120);
  return sys::RunProcess({TestClusterBinary().string(), cmd, "--state", state.string()}, o);
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
  ASSERT_TRUE(sys::ProcessAlive(k.keeper)) << ctest.output();
  ASSERT_TRUE(sys::ProcessAlive(k.postmaster));
  ASSERT_TRUE(fs::exists(k.socket_dir));
  EXPECT_NO_THROW(Connection c(k.AdminUrl()));

  ctest.Kill();  // ctest aborted: cluster_stop never runs
  EXPECT_TRUE(
      harness::testing::WaitUntil([&] { return !sys::ProcessAlive(k.keeper); }, std::chrono::seconds(20)));
  EXPECT_FALSE(sys::ProcessAlive(k.postmaster));
  EXPECT_FALSE(fs::exists(k.socket_dir));
  EXPECT_FALSE(fs::exists(state_));
}

TEST_F(TestClusterKeeper, StartStopsTheKeeperAnEarlierRunLeft) {
  auto first = TestCluster("start", state_);
  ASSERT_EQ(first.exit_code, 0) << first.out << first.err;
  KeeperState old = ReadKeeperState(state_);
  ASSERT_TRUE(sys::ProcessAlive(old.keeper));

  auto second = TestCluster("start", state_);
  ASSERT_EQ(second.exit_code, 0) << second.out << second.err;
  EXPECT_NE(second.out.find("stopping the test cluster an earlier run left"), std::string::npos)
      << second.out;
  KeeperState now = ReadKeeperState(state_);
  EXPECT_NE(now.keeper, old.keeper);
  EXPECT_FALSE(sys::ProcessAlive(old.keeper));
  EXPECT_FALSE(sys::ProcessAlive(old.postmaster));
  EXPECT_FALSE(fs::exists(old.socket_dir));
  EXPECT_TRUE(sys::ProcessAlive(now.keeper));
  EXPECT_NO_THROW(Connection c(now.AdminUrl()));

  auto stop = TestCluster("stop", state_);
  EXPECT_EQ(stop.exit_code, 0);
  EXPECT_FALSE(sys::ProcessAlive(now.keeper));
  EXPECT_FALSE(sys::ProcessAlive(now.postmaster));
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
  // The keeper looks for its ctest every 200 ms: three looks.
  std::this_thread::sleep_for(std::chrono::milliseconds(600));
  EXPECT_TRUE(sys::ProcessAlive(k.keeper));
  EXPECT_TRUE(DatabaseExists(k.AdminUrl(), "mh_kept_for_inspection"));

  // The printed command stops it, even with HARNESS_KEEP_FAILED=1 still set.
  stop = TestCluster("stop", state_, {{"HARNESS_KEEP_FAILED", "1"}});
  EXPECT_EQ(stop.exit_code, 0);
  EXPECT_NE(stop.out.find("stopped the test cluster"), std::string::npos) << stop.out;
  EXPECT_FALSE(sys::ProcessAlive(k.keeper));
  EXPECT_FALSE(sys::ProcessAlive(k.postmaster));
  EXPECT_FALSE(fs::exists(k.socket_dir));
  EXPECT_FALSE(fs::exists(state_));
}

// --- our private directory, and what ReapStale may touch -------------------

// The ids cluster directories belong to and servers run as: ours, or
// `postgres`'s when root.
sys::UserIds ServerIds() {
  if (geteuid() != 0) return {geteuid(), getegid()};
  return *sys::LookupUser("postgres");
}

struct stat Lstat(const fs::path& p) {
  struct stat st {};
  if (lstat(p.c_str(), &st) != 0) st.st_mode = 0;
  return st;
}

std::string ReadAll(const fs::path& p) {
  std::ifstream in(p);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

// A pid that no process has: a child that exited and was reaped.
pid_t DeadPid() {
  pid_t pid = fork();
  if (pid == 0) _exit(0);
  waitpid(pid, nullptr, 0);
  return pid;
}

// Our directory under `parent`, made as Start() makes it.
fs::path MakePrivateDir(const fs::path& parent) {
  fs::path dir = PrivateClusterDir(parent);
  fs::create_directory(dir);
  chmod(dir.c_str(), geteuid() == 0 ? 0711 : 0700);
  return dir;
}

// A cluster directory as Start() leaves it (0700, owner.pid, data/ with a
// postmaster.pid), owned by `ids` when we are root.
fs::path ForgeCluster(const fs::path& dir, pid_t owner, pid_t postmaster, sys::UserIds ids) {
  fs::create_directories(dir / "data");
  std::ofstream(dir / "owner.pid") << owner << "\n";
  std::ofstream(dir / "data" / "postmaster.pid") << postmaster << "\n" << (dir / "data").string()
                                                 << "\n";
  chmod(dir.c_str(), 0700);
  chmod((dir / "data").c_str(), 0700);
  if (geteuid() == 0)
    for (const fs::path& p :
         {dir, dir / "owner.pid", dir / "data", dir / "data" / "postmaster.pid"})
      if (lchown(p.c_str(), ids.uid, ids.gid) != 0) throw std::runtime_error("lchown failed");
  return dir;
}

// What a forged directory holds, to show it was not touched.
std::string Contents(const fs::path& dir) {
  return ReadAll(dir / "owner.pid") + "|" + ReadAll(dir / "data" / "postmaster.pid");
}

// A live process that says it is postgres (argv[0] "postgres-victim", what
// the old reaper took for a server), working in `cwd`, run as `user` when we
// are root (empty: as us). Killed and reaped at scope end, on every path.
class Victim {
 public:
  explicit Victim(const fs::path& cwd, const std::string& user = {}) {
    sys::ProcessOptions o;
    o.run_as_user = user;
    o.parent_death_signal = SIGKILL;
    pid_ = sys::SpawnProcess({"bash", "-c", "cd \"$1\" && exec -a postgres-victim sleep 60", "victim",
                         cwd.string()},
                        o);
    const fs::path want = fs::canonical(cwd);
    ready_ = harness::testing::WaitUntil(
        [&] {
          return ReadAll("/proc/" + std::to_string(pid_) + "/cmdline").rfind("postgres-victim", 0) ==
                     0 &&
                 sys::ProcessCwd(pid_) == want;
        },
        std::chrono::seconds(10));
  }
  ~Victim() {
    kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
  }
  Victim(const Victim&) = delete;
  Victim& operator=(const Victim&) = delete;
  pid_t pid() const { return pid_; }
  bool ready() const { return ready_; }
  bool Alive() const { return sys::ProcessAlive(pid_); }

 private:
  pid_t pid_ = -1;
  bool ready_ = false;
};

// Start() on `parent` refuses (exit code 2), saying `what`, and tells what to do.
void ExpectStartRefuses(const fs::path& parent, const std::string& what) {
  ClusterOptions options;
  options.parent_dir = parent.string();
  try {
    auto cluster = EmbeddedCluster::Start(options);
    ADD_FAILURE() << "started a cluster in " << cluster->dir();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ExitCode::kUsage) << e.what();
    EXPECT_CONTAINS(e.what(), what);
    EXPECT_CONTAINS(e.hint(), "HARNESS_CLUSTER_PARENT");
  }
}

// The report's attack: as `nobody`, a cluster directory in our directory of
// the parent, whose postmaster.pid names a live process; also one where the
// old reaper looked, right in the parent.
TEST(ReapStale, LeavesAnotherUsersDirectoryAndItsProcessAlone) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root, to give a directory to another user (nobody)";
  auto nobody = sys::LookupUser("nobody");
  ASSERT_TRUE(nobody);
  TempDir parent;
  fs::path mine = MakePrivateDir(parent.path());
  Victim victim("/");
  ASSERT_TRUE(victim.ready());
  fs::path forged = ForgeCluster(mine / "cluster-forged", DeadPid(), victim.pid(), *nobody);
  fs::path old_style =
      ForgeCluster(parent.path() / "migration-harness-cluster-x", 999999, victim.pid(), *nobody);
  const std::string before = Contents(forged), old_before = Contents(old_style);

  EmbeddedCluster::ReapStale(parent.path());

  EXPECT_TRUE(victim.Alive());
  EXPECT_EQ(Contents(forged), before);
  EXPECT_EQ(Lstat(forged).st_uid, nobody->uid);
  EXPECT_EQ(Contents(old_style), old_before);
}

// A directory that is ours and whose owner is dead, but whose postmaster.pid
// names a live process of the server's user that works elsewhere: not its
// server. The directory goes; the process stays.
TEST(ReapStale, SparesAProcessThatIsNotTheClustersServer) {
  TempDir parent;
  fs::path mine = MakePrivateDir(parent.path());
  Victim victim("/", geteuid() == 0 ? "postgres" : "");
  ASSERT_TRUE(victim.ready());
  ASSERT_EQ(sys::ProcessUid(victim.pid()), ServerIds().uid);
  fs::path forged = ForgeCluster(mine / "cluster-ours", DeadPid(), victim.pid(), ServerIds());

  EmbeddedCluster::ReapStale(parent.path());

  EXPECT_TRUE(victim.Alive());
  EXPECT_FALSE(fs::exists(forged));  // ours, its owner dead: removed
}

// The same, with a process that does work in the cluster's data directory
// but as another user (root) than the server's.
TEST(ReapStale, SparesAProcessOfAnotherUserInTheDataDirectory) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root, to run a process as a user other than the server's";
  TempDir parent;
  fs::path mine = MakePrivateDir(parent.path());
  fs::path forged = ForgeCluster(mine / "cluster-ours", DeadPid(), 0, ServerIds());
  Victim victim(forged / "data");  // as root
  ASSERT_TRUE(victim.ready());
  std::ofstream(forged / "data" / "postmaster.pid") << victim.pid() << "\n";

  EmbeddedCluster::ReapStale(parent.path());

  EXPECT_TRUE(victim.Alive());
  EXPECT_FALSE(fs::exists(forged));
}

// What the checks let through: the server's user, working in the cluster's
// data directory, whose owner is dead. It is stopped, and the directory goes.
TEST(ReapStale, StopsTheServerOfACrashedOwnersCluster) {
  TempDir parent;
  fs::path mine = MakePrivateDir(parent.path());
  fs::path cluster = ForgeCluster(mine / "cluster-crashed", DeadPid(), 0, ServerIds());
  Victim server(cluster / "data", geteuid() == 0 ? "postgres" : "");
  ASSERT_TRUE(server.ready());
  std::ofstream(cluster / "data" / "postmaster.pid") << server.pid() << "\n";

  EmbeddedCluster::ReapStale(parent.path());

  EXPECT_FALSE(server.Alive());
  EXPECT_FALSE(fs::exists(cluster));
}

// A symlink named like a cluster directory, to a directory that would pass
// every check (and a process that would): neither followed nor removed.
TEST(ReapStale, FollowsNoSymlink) {
  TempDir parent, elsewhere;
  fs::path mine = MakePrivateDir(parent.path());
  fs::path target = ForgeCluster(elsewhere.path() / "cluster-target", DeadPid(), 0, ServerIds());
  Victim victim(target / "data", geteuid() == 0 ? "postgres" : "");
  ASSERT_TRUE(victim.ready());
  std::ofstream(target / "data" / "postmaster.pid") << victim.pid() << "\n";
  if (geteuid() == 0) {
    ASSERT_EQ(lchown((target / "data" / "postmaster.pid").c_str(), ServerIds().uid,
                     ServerIds().gid),
              0);
  }
  fs::create_directory_symlink(target, mine / "cluster-link");
  const std::string before = Contents(target);

  EmbeddedCluster::ReapStale(parent.path());

  EXPECT_TRUE(victim.Alive());
  EXPECT_TRUE(fs::is_symlink(mine / "cluster-link"));
  EXPECT_EQ(Contents(target), before);
}

// Our directory in the parent must be ours alone, or Start refuses before it
// looks inside: a cluster in it that would be reaped is left alone.
TEST(EmbeddedCluster, StartRefusesAPrivateDirectoryOfAnotherUser) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root, to give a directory to another user (nobody)";
  auto nobody = sys::LookupUser("nobody");
  ASSERT_TRUE(nobody);
  TempDir parent;
  fs::path theirs = MakePrivateDir(parent.path());
  ASSERT_EQ(chown(theirs.c_str(), nobody->uid, nobody->gid), 0);
  fs::path cluster = ForgeCluster(theirs / "cluster-bait", DeadPid(), 0, ServerIds());
  Victim victim(cluster / "data", "postgres");
  ASSERT_TRUE(victim.ready());
  std::ofstream(cluster / "data" / "postmaster.pid") << victim.pid() << "\n";

  ExpectStartRefuses(parent.path(), theirs.string() + " belongs to uid " +
                                        std::to_string(nobody->uid));
  EXPECT_TRUE(victim.Alive());
  EXPECT_TRUE(fs::exists(cluster / "owner.pid"));
}

TEST(EmbeddedCluster, StartRefusesAPrivateDirectoryThatIsASymlink) {
  TempDir parent, elsewhere;
  fs::path link = PrivateClusterDir(parent.path());
  chmod(elsewhere.path().c_str(), 0700);
  fs::create_directory_symlink(elsewhere.path(), link);

  ExpectStartRefuses(parent.path(), link.string() + " is a symbolic link");
  EXPECT_TRUE(fs::is_symlink(link));
  EXPECT_TRUE(fs::is_empty(elsewhere.path()));
}

TEST(EmbeddedCluster, StartRefusesAPrivateDirectoryOthersMayWriteTo) {
  TempDir parent;
  fs::path dir = MakePrivateDir(parent.path());
  ASSERT_EQ(chmod(dir.c_str(), 0770), 0);
  ExpectStartRefuses(parent.path(), dir.string() + " is writable by other users (mode 0770)");
  ASSERT_EQ(chmod(dir.c_str(), 0703), 0);
  ExpectStartRefuses(parent.path(), dir.string() + " is writable by other users (mode 0703)");
  EXPECT_TRUE(fs::is_empty(dir));
}

TEST(EmbeddedCluster, StartRefusesAPrivateDirectoryThatIsAFile) {
  TempDir parent;
  fs::path file = PrivateClusterDir(parent.path());
  std::ofstream(file) << "not a directory\n";
  ExpectStartRefuses(parent.path(), file.string() + " is not a directory");
}

// Whoever may rename entries in the parent (its owner; anyone, when it is
// writable and not sticky) could swap our directory for theirs after we
// checked it: Start refuses such a parent, and reaps nothing there.
TEST(EmbeddedCluster, StartRefusesAParentOthersMayRearrange) {
  TempDir open_parent;
  ASSERT_EQ(chmod(open_parent.path().c_str(), 0777), 0);
  ExpectStartRefuses(open_parent.path(), "the cluster parent " + open_parent.path().string() +
                                             " is writable by other users (mode 0777, not sticky)");
  // The same for a directory further up.
  fs::create_directory(open_parent.path() / "mine");
  ExpectStartRefuses(open_parent.path() / "mine",
                     "lies in " + open_parent.path().string() +
                         ", which is writable by other users (mode 0777, not sticky)");
  EXPECT_FALSE(fs::exists(PrivateClusterDir(open_parent.path())));

  if (geteuid() != 0) return;  // the rest needs another user
  // The report's reproduction: a parent made by nobody, with a bait directory
  // where the old reaper looked and a second one in "our" directory.
  auto nobody = sys::LookupUser("nobody");
  ASSERT_TRUE(nobody);
  TempDir theirs;
  ASSERT_EQ(chown(theirs.path().c_str(), nobody->uid, nobody->gid), 0);
  Victim victim("/");
  ASSERT_TRUE(victim.ready());
  fs::path old_style =
      ForgeCluster(theirs.path() / "migration-harness-cluster-x", 999999, victim.pid(), *nobody);
  ExpectStartRefuses(theirs.path(), "the cluster parent " + theirs.path().string() +
                                        " belongs to uid " + std::to_string(nobody->uid));
  EmbeddedCluster::ReapStale(theirs.path());
  EXPECT_TRUE(victim.Alive());
  EXPECT_TRUE(fs::exists(old_style / "data" / "postmaster.pid"));
}

// Run as root, the server runs as `postgres`, which must pass through every
// directory down to the parent: one it cannot enter (root's, 0700) is refused
// up front, naming it, and nothing is made there; before, initdb failed on it
// with a bare "Permission denied".
TEST(EmbeddedCluster, StartRefusesAParentTheServersUserCannotEnter) {
  if (geteuid() != 0) GTEST_SKIP() << "the server runs as this user, who owns the directories it makes";
  TempDir closed;
  ASSERT_EQ(chmod(closed.path().c_str(), 0700), 0);
  ExpectStartRefuses(closed.path(), "the server's user 'postgres' cannot enter the cluster parent " +
                                        closed.path().string() + " (mode 0700, uid 0, gid 0)");
  EXPECT_FALSE(fs::exists(PrivateClusterDir(closed.path())));
  // Further up: the parent itself is open, the directory above it is not.
  fs::create_directory(closed.path() / "open");
  ASSERT_EQ(chmod((closed.path() / "open").c_str(), 0755), 0);
  ExpectStartRefuses(closed.path() / "open",
                     "the server's user 'postgres' cannot enter " + closed.path().string() +
                         " (mode 0700, uid 0, gid 0), on the way to the cluster parent " +
                         (closed.path() / "open").string());
  EXPECT_FALSE(fs::exists(PrivateClusterDir(closed.path() / "open")));
  // Its group's search bit is enough when postgres is in the group.
  auto server = sys::LookupUser("postgres");
  ASSERT_TRUE(server);
  ASSERT_EQ(chown(closed.path().c_str(), 0, server->gid), 0);
  ASSERT_EQ(chmod(closed.path().c_str(), 0710), 0);
  ClusterOptions options;
  options.parent_dir = (closed.path() / "open").string();
  auto cluster = EmbeddedCluster::Start(options);
  EXPECT_TRUE(fs::exists(cluster->dir()));
}

// A shared parent such as /tmp (root's, 1777) is fine; bait left in it where
// the old reaper looked is neither signalled nor removed.
TEST(EmbeddedCluster, StartsInASharedParentAndIgnoresBaitThere) {
  TempDir parent;
  ASSERT_EQ(chmod(parent.path().c_str(), 01777), 0);
  Victim victim("/");
  ASSERT_TRUE(victim.ready());
  auto bait_owner = geteuid() == 0 ? *sys::LookupUser("nobody") : ServerIds();
  fs::path bait = ForgeCluster(parent.path() / "migration-harness-cluster-x", DeadPid(),
                               victim.pid(), bait_owner);
  const std::string before = Contents(bait);
  ClusterOptions options;
  options.parent_dir = parent.path().string();
  {
    auto cluster = EmbeddedCluster::Start(options);
    EXPECT_EQ(cluster->dir().parent_path(), PrivateClusterDir(parent.path()));
    EXPECT_NO_THROW(Connection c(cluster->AdminUrl()));
  }
  EXPECT_TRUE(victim.Alive());
  EXPECT_EQ(Contents(bait), before);
}

// The server's socket lives in the cluster directory: a parent too deep for
// a unix socket's path is refused up front, saying what to do.
TEST(EmbeddedCluster, StartRefusesAParentTooDeepForTheSocket) {
  TempDir parent;
  fs::path deep = parent.path() / std::string(60, 'd') / std::string(60, 'e');
  fs::create_directories(deep);
  ExpectStartRefuses(deep, "a unix socket's path may have at most 107");
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

// Without a timeout of its own, a connection gets the default one (libpq
// would wait forever on a host that drops packets); one the URL or
// $PGCONNECT_TIMEOUT sets is left alone.
TEST(ConnectTimeout, TheDefaultIsAddedUnlessTheUrlOrTheEnvironmentSetsOne) {
  ::unsetenv("PGCONNECT_TIMEOUT");
  const std::string with_default =
      ConnectString(Url::Parse("postgresql://someone@127.0.0.1:5/nothing"));
  EXPECT_NE(with_default.find("connect_timeout='" + std::to_string(kDefaultConnectTimeoutSeconds) + "'"),
            std::string::npos)
      << with_default;
  EXPECT_EQ(ConnectString(Url::Parse("postgresql://someone@127.0.0.1:5/nothing?connect_timeout=3")),
            "postgresql://someone@127.0.0.1:5/nothing?connect_timeout=3");
  ::setenv("PGCONNECT_TIMEOUT", "4", 1);
  EXPECT_EQ(ConnectString(Url::Parse("postgresql://someone@127.0.0.1:5/nothing")),
            "postgresql://someone@127.0.0.1:5/nothing");
  ::unsetenv("PGCONNECT_TIMEOUT");
}

// --lock-timeout takes fractions of a second; a positive one never becomes
// 0 (which PostgreSQL reads as "wait forever").
TEST(ConnectTimeout, LockTimeoutsAreWholeMillisecondsAndNeverZero) {
  EXPECT_EQ(harness::pg::PgDuration(10), "10000ms");
  EXPECT_EQ(harness::pg::PgDuration(0.3), "300ms");
  EXPECT_EQ(harness::pg::PgDuration(0.0004), "1ms");
  EXPECT_EQ(harness::pg::PgDuration(0), "0ms");
}

// A server that never answers: both forms give up after the timeout (1 s
// here; the default is proven above) with the server named, side by side.
TEST(ConnectTimeout, GivesUpOnAServerThatNeverAnswers) {
  SilentServer silent;
  // Keyword/value form, in-process, on a thread of its own.
  auto in_process = std::async(std::launch::async, [&] {
    auto t0 = std::chrono::steady_clock::now();
    Url url = Url::Parse("host=127.0.0.1 port=" + std::to_string(silent.port()) +
                         " user=someone dbname=nothing connect_timeout=1");
    std::string what = "connected to a server that never answers";
    ExitCode code = ExitCode::kOk;
    try {
      Connection c(url);
    } catch (const Error& e) {
      what = e.what();
      code = e.code();
    }
    return std::tuple{SecondsSince(t0), what, code};
  });
  // URL form, through the CLI: exit code 3.
  auto t0 = std::chrono::steady_clock::now();
  auto r = harness::testing::RunCli(
      {"current"}, "postgresql://someone@127.0.0.1:" + std::to_string(silent.port()) + "/nothing",
      {{"PGCONNECT_TIMEOUT", "1"}});
  double seconds = SecondsSince(t0);
  EXPECT_EQ(r.exit_code, 3) << r.out << r.err;
  EXPECT_NE(r.err.find("cannot connect to 127.0.0.1:" + std::to_string(silent.port())),
            std::string::npos)
      << r.err;
  EXPECT_EQ(r.err.find("connect_timeout"), std::string::npos) << r.err;
  EXPECT_LT(seconds, 10);

  auto [in_process_seconds, what, code] = in_process.get();
  EXPECT_EQ(code, ExitCode::kDatabase) << what;
  EXPECT_NE(what.find("127.0.0.1:" + std::to_string(silent.port())), std::string::npos) << what;
  EXPECT_GE(in_process_seconds, 0.9);
  EXPECT_LT(in_process_seconds, 10);
}

TEST(EmbeddedCluster, PgDumpGetsThePasswordInItsEnvironmentOnly) {
  // The server programs and the client programs the copy uses (a server
  // build without them, as pg-matrix's, takes Debian's), with a pg_dump
  // that records what it was given.
  TempDir bin;
  const fs::path server = FindServerBinDir();
  const fs::path real = FindClientBinDir(server);
  for (const fs::path& dir : {server, real})
    for (const auto& entry : fs::directory_iterator(dir))
      if (entry.path().filename() != "pg_dump" && !fs::exists(bin.path() / entry.path().filename()))
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
