#include "harness/pg/cluster.h"

#include <grp.h>
#include <libpq-fe.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <optional>
#include <sstream>
#include <thread>
#include <vector>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "harness/error.h"
#include "harness/pg/connection.h"
#include "harness/sys/files.h"
#include "harness/pg/interrupt.h"
#include "harness/sys/process.h"
#include "harness/pg/private_dir.h"

namespace fs = std::filesystem;

namespace harness::pg {

namespace {

// The longest name postgres gives its socket: ".s.PGSQL.65535", after a '/'.
constexpr size_t kSocketNameMax = 15;
// sockaddr_un.sun_path holds 108 bytes with the terminating NUL.
constexpr size_t kSocketPathMax = 107;

int FreePort() {
  // The socket lives in a private directory, so any port works; a port that
  // is also free on loopback keeps the socket name unsurprising.
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return 54321;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  socklen_t len = sizeof addr;
  int port = 54321;
  if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0 &&
      getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0)
    port = ntohs(addr.sin_port);
  close(fd);
  return port;
}

void KillPostmaster(pid_t pid) {
  if (!sys::ProcessAlive(pid)) return;
  kill(pid, SIGQUIT);  // immediate shutdown: the directory is thrown away anyway
  if (!sys::WaitForExit(pid, std::chrono::seconds(10))) {
    kill(pid, SIGKILL);
    sys::WaitForExit(pid, std::chrono::seconds(5));
  }
}

}  // namespace

Url ClusterAddress::UrlFor(const std::string& dbname) const {
  return Url::Parse("host='" + socket_dir + "' port=" + std::to_string(port) +
                    " user=postgres dbname='" + dbname + "'");
}

std::unique_ptr<EmbeddedCluster> EmbeddedCluster::Start(const ClusterOptions& options) {
  auto started = std::chrono::steady_clock::now();
  std::unique_ptr<EmbeddedCluster> c(new EmbeddedCluster());
  c->options_ = options;
  c->bin_dir_ = FindServerBinDir(options.bin_dir);
  fs::path parent = options.parent_dir.empty() ? DefaultClusterParent() : fs::path(options.parent_dir);
  std::optional<sys::UserIds> server_ids;
  if (geteuid() == 0) {
    server_ids = sys::LookupUser(kServerUser);
    if (!server_ids)
      throw UsageError("running as root, and there is no 'postgres' user to run the server as",
                       "install postgresql-15 (it creates the user) or run as a normal user");
    c->run_as_ = kServerUser;
    // Before anything is made there: initdb would fail on it later with a
    // bare "Permission denied".
    if (std::string why = Unenterable(parent, kServerUser, *server_ids); !why.empty())
      throw UsageError(why, "set HARNESS_CLUSTER_PARENT to a directory that user can reach, such as "
                            "/tmp, or give the one named the search bit (chmod o+x)");
  }
  const fs::path home = PreparePrivateDir(parent);
  ReapStale(parent);

  std::string pattern = (home / (std::string(kDirPrefix) + "XXXXXX")).string();
  if (pattern.size() + 1 + kSocketNameMax > kSocketPathMax)
    throw UsageError("the embedded server's socket would be " + pattern + "/.s.PGSQL.NNNNN, " +
                         std::to_string(pattern.size() + 1 + kSocketNameMax) +
                         " bytes long; a unix socket's path may have at most " +
                         std::to_string(kSocketPathMax),
                     "set HARNESS_CLUSTER_PARENT to a directory with a shorter path, e.g. /tmp");
  if (mkdtemp(pattern.data()) == nullptr)
    throw DatabaseError("cannot create a directory in " + home.string() + ": " +
                        std::strerror(errno));
  c->dir_ = pattern;
  // Checked: an empty owner file would let the next start reap this
  // cluster while it runs.
  sys::WriteFileAtomically(c->dir_ / kOwnerFile, std::to_string(getpid()) + "\n");
  if (chmod(c->dir_.c_str(), 0700) != 0)
    throw DatabaseError("cannot chmod " + c->dir_.string() + ": " + std::strerror(errno));
  if (server_ids && chown(c->dir_.c_str(), server_ids->uid, server_ids->gid) != 0)
    throw DatabaseError("cannot chown " + c->dir_.string() + ": " + std::strerror(errno));
  c->address_.socket_dir = c->dir_.string();
  c->address_.port = FreePort();

  sys::ProcessOptions po;
  po.run_as_user = c->run_as_;
  po.unset_env = {"PGDATA", "PGHOST", "PGPORT", "PGUSER", "PGDATABASE"};
  po.timeout = std::chrono::seconds(120);
  const auto initdb_started = std::chrono::steady_clock::now();
  auto initdb = sys::RunProcess({(c->bin_dir_ / "initdb").string(), "-A", "trust", "-N", "-E", "UTF8",
                            "--locale=C", "-U", "postgres", "-D", (c->dir_ / "data").string()},
                           po);
  if (initdb.exit_code != 0)
    throw DatabaseError("initdb failed (exit " + std::to_string(initdb.exit_code) + "): " +
                        initdb.err + initdb.out);
  c->initdb_seconds_ =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - initdb_started).count();
  c->Launch();
  c->WaitReady(options.start_timeout);
  c->start_seconds_ =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  spdlog::debug("embedded PostgreSQL {} ready in {:.2f}s at {}", c->version_, c->start_seconds_,
                c->dir_.string());
  return c;
}

void EmbeddedCluster::Launch() {
  std::vector<std::string> argv = {(bin_dir_ / "postgres").string(),
                                   "-D", (dir_ / "data").string(),
                                   "-k", dir_.string(),
                                   "-p", std::to_string(address_.port),
                                   "-c", "listen_addresses=",
                                   // No fsync: the server's files live as long as
                                   // the operating system does. Commits still write
                                   // their WAL before they return, so a crash of the
                                   // server (not of the machine) loses nothing
                                   // committed: the crash tests rely on it.
                                   "-c", "fsync=off",
                                   "-c", "full_page_writes=off",
                                   // Bulk loads into tables and indexes made in the same
                                   // transaction skip the WAL (the generator's index
                                   // rebuilds, pg_restore --single-transaction); a
                                   // throwaway server has no replicas to feed.
                                   "-c", "wal_level=minimal",
                                   "-c", "max_wal_senders=0",
                                   "-c", "max_wal_size=8GB",
                                   "-c", "shared_buffers=256MB",
                                   "-c", "maintenance_work_mem=256MB",
                                   "-c", "max_connections=60",
                                   "-c", "log_min_messages=warning"};
  for (const auto& [k, v] : options_.settings) {
    argv.push_back("-c");
    argv.push_back(k + "=" + v);
  }
  sys::ProcessOptions po;
  po.run_as_user = run_as_;
  po.stdout_file = (dir_ / "postgres.log").string();
  po.parent_death_signal = SIGQUIT;  // never outlive the harness
  po.new_session = true;             // Ctrl-C goes to the harness, which stops us in order
  postmaster_ = sys::SpawnProcess(argv, po);
}

void EmbeddedCluster::WaitReady(std::chrono::seconds timeout) {
  const std::string conninfo = AdminUrl().text() + " connect_timeout=2";
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (PQping(conninfo.c_str()) != PQPING_OK) {
    int status = 0;
    if (sys::WaitForExit(postmaster_, std::chrono::milliseconds(0), &status)) {
      postmaster_ = -1;
      throw DatabaseError("the embedded PostgreSQL server exited during start-up (status " +
                          std::to_string(status) + "): " + LogTail());
    }
    if (std::chrono::steady_clock::now() > deadline)
      throw DatabaseError("the embedded PostgreSQL server did not accept connections within " +
                          std::to_string(timeout.count()) + "s: " + LogTail());
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  PGconn* conn = PQconnectdb(conninfo.c_str());
  if (PQstatus(conn) == CONNECTION_OK) version_ = PQparameterStatus(conn, "server_version");
  PQfinish(conn);
}

std::string EmbeddedCluster::LogTail() const {
  std::ifstream in(dir_ / "postgres.log");
  std::string all((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (all.size() > 2000) all = all.substr(all.size() - 2000);
  return all.empty() ? "(empty server log)" : all;
}

void EmbeddedCluster::CrashAndRestart() {
  if (postmaster_ > 0) {
    kill(postmaster_, SIGQUIT);
    sys::WaitForExit(postmaster_, std::chrono::seconds(30));
    postmaster_ = -1;
  }
  Launch();
  WaitReady(options_.start_timeout);
}

void EmbeddedCluster::Stop() noexcept {
  try {
    if (postmaster_ > 0) {
      KillPostmaster(postmaster_);
      postmaster_ = -1;
    }
    if (!dir_.empty()) {
      std::error_code ec;
      fs::remove_all(dir_, ec);
      dir_.clear();
    }
  } catch (...) {
  }
}

EmbeddedCluster::~EmbeddedCluster() { Stop(); }

}  // namespace harness::pg
