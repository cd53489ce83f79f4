// The embedded cluster and disposable databases: private, socket-only,
// cleaned up on every exit path, including a crash of the owner.
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <thread>

#include <gtest/gtest.h>
#include <pqxx/pqxx>

#include "harness/pg/cluster.h"
#include "harness/pg/connection.h"
#include "harness/pg/disposable_database.h"
#include "harness/pg/process.h"

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

}  // namespace
}  // namespace harness::pg
