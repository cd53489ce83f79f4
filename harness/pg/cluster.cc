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

namespace fs = std::filesystem;

namespace harness::pg {

namespace {

constexpr const char* kPrivateDirPrefix = "migration-harness-";  // + our euid
constexpr const char* kDirPrefix = "cluster-";                   // + mkdtemp's XXXXXX
constexpr const char* kOwnerFile = "owner.pid";
constexpr const char* kServerUser = "postgres";
// The longest name postgres gives its socket: ".s.PGSQL.65535", after a '/'.
constexpr size_t kSocketNameMax = 15;
// sockaddr_un.sun_path holds 108 bytes with the terminating NUL.
constexpr size_t kSocketPathMax = 107;

std::string ReadFirstLine(const fs::path& p) {
  std::ifstream in(p);
  std::string line;
  std::getline(in, line);
  return line;
}

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

std::string Octal(mode_t mode) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "0%o", static_cast<unsigned>(mode & 07777));
  return buf;
}

// The uid our clusters' directories belong to and their servers run as: us,
// or `postgres` when we are root (the server refuses to run as root).
std::optional<uid_t> ClusterUid() {
  if (geteuid() != 0) return geteuid();
  auto ids = sys::LookupUser(kServerUser);
  if (!ids) return std::nullopt;
  return ids->uid;
}

// What is wrong with `parent` as the home of our private directory, or empty
// when nothing is: every directory from / down to it must belong to root or
// to us, and be writable by nobody else unless it is sticky (like /tmp), or
// someone else could swap our directory for theirs after we checked it.
std::string UnsafeParent(const fs::path& parent) {
  std::error_code ec;
  fs::path canonical = fs::canonical(parent, ec);
  if (ec) return "the cluster parent " + parent.string() + " cannot be used: " + ec.message();
  fs::path walked;
  auto where = [&] {
    return walked == canonical ? "the cluster parent " + walked.string()
                               : "the cluster parent " + parent.string() + " lies in " +
                                     walked.string() + ", which";
  };
  for (const auto& part : canonical) {
    walked /= part;
    struct stat st {};
    if (stat(walked.c_str(), &st) != 0)
      return "cannot examine " + walked.string() + ": " + std::strerror(errno);
    if (!S_ISDIR(st.st_mode)) return walked.string() + " is not a directory";
    if (st.st_uid != 0 && st.st_uid != geteuid())
      return where() + " belongs to uid " + std::to_string(st.st_uid) +
             ", who could replace what the harness keeps there";
    if ((st.st_mode & (S_IWGRP | S_IWOTH)) != 0 && (st.st_mode & S_ISVTX) == 0)
      return where() + " is writable by other users (mode " +
             Octal(st.st_mode) + ", not sticky), who could replace what the harness keeps there";
  }
  return {};
}

// Run as root, the server runs as `server` and must pass through every
// directory from / down to `parent` to reach its own: which one it cannot
// enter, or empty when it can enter them all. A directory's search bit for
// its owner, its group (the user's supplementary groups count) or everyone
// decides; an ACL that grants more is not read.
std::string Unenterable(const fs::path& parent, const char* server, const sys::UserIds& ids) {
  std::error_code ec;
  fs::path canonical = fs::canonical(parent, ec);
  if (ec) return {};  // UnsafeParent says why
  std::vector<gid_t> groups(64);
  int count = static_cast<int>(groups.size());
  if (getgrouplist(server, ids.gid, groups.data(), &count) < 0) {
    groups.resize(static_cast<std::size_t>(count));
    if (getgrouplist(server, ids.gid, groups.data(), &count) < 0) count = 0;
  }
  groups.resize(static_cast<std::size_t>(std::max(count, 0)));
  groups.push_back(ids.gid);
  fs::path walked;
  for (const auto& part : canonical) {
    walked /= part;
    struct stat st {};
    if (stat(walked.c_str(), &st) != 0) return {};  // UnsafeParent says why
    const bool in_group = std::find(groups.begin(), groups.end(), st.st_gid) != groups.end();
    const mode_t bit = st.st_uid == ids.uid ? S_IXUSR : in_group ? S_IXGRP : S_IXOTH;
    if ((st.st_mode & bit) == 0)
      return fmt::format("the server's user '{}' cannot enter {} (mode {}, uid {}, gid {}){}; as root, the harness "
                         "runs the embedded server as that user",
                         server, walked == canonical ? "the cluster parent " + walked.string() : walked.string(),
                         Octal(st.st_mode), st.st_uid, st.st_gid,
                         walked == canonical ? "" : ", on the way to the cluster parent " + parent.string());
  }
  return {};
}

// What is wrong with our private directory `dir` (lstat: never through a
// symlink), or empty when nothing is. *missing tells whether it does not
// exist, which is not wrong.
std::string UnsafePrivateDir(const fs::path& dir, bool* missing) {
  *missing = false;
  struct stat st {};
  if (lstat(dir.c_str(), &st) != 0) {
    if (errno == ENOENT) {
      *missing = true;
      return {};
    }
    return "cannot examine " + dir.string() + ": " + std::strerror(errno);
  }
  if (S_ISLNK(st.st_mode)) return dir.string() + " is a symbolic link, not a directory";
  if (!S_ISDIR(st.st_mode)) return dir.string() + " is not a directory";
  if (st.st_uid != geteuid())
    return dir.string() + " belongs to uid " + std::to_string(st.st_uid) + ", not to uid " +
           std::to_string(geteuid()) + " (this user)";
  if ((st.st_mode & (S_IWGRP | S_IWOTH)) != 0)
    return dir.string() + " is writable by other users (mode " + Octal(st.st_mode) + ")";
  return {};
}

std::string PrivateDirHint(const fs::path& dir) {
  return "the harness keeps its embedded clusters in " + dir.string() +
         ", a directory of this user that no one else may write to (it makes it itself): "
         "remove it (rm -rf " + dir.string() +
         ") if nothing of yours is in it, or set HARNESS_CLUSTER_PARENT to another directory";
}

// Creates our private directory under `parent` if need be and checks it;
// throws UsageError when it is not safe to use.
fs::path PreparePrivateDir(const fs::path& parent) {
  if (std::string why = UnsafeParent(parent); !why.empty())
    throw UsageError(why, "set HARNESS_CLUSTER_PARENT to a directory that only you (or root) "
                          "may write to, or to a sticky one such as /tmp");
  const fs::path dir = PrivateClusterDir(parent);
  // As root the server runs as `postgres`, which must pass through to its
  // own directory inside; it may not list ours.
  const mode_t mode = geteuid() == 0 ? 0711 : 0700;
  bool missing = false;
  std::string why = UnsafePrivateDir(dir, &missing);
  if (missing) {
    if (mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST)
      throw DatabaseError("cannot create " + dir.string() + ": " + std::strerror(errno));
    why = UnsafePrivateDir(dir, &missing);  // ours, or a concurrent start's (also ours)
    if (missing) why = dir.string() + " vanished while it was being created";
  }
  if (!why.empty()) throw UsageError(why, PrivateDirHint(dir));
  struct stat st {};
  if (lstat(dir.c_str(), &st) == 0 && (st.st_mode & 07777) != mode &&
      chmod(dir.c_str(), mode) != 0)
    throw DatabaseError("cannot chmod " + dir.string() + ": " + std::strerror(errno));
  return dir;
}

// Whether `pid` is provably the server of the cluster in `cluster` (a
// checked directory of ours): it runs as the server's user and its working
// directory, which a postmaster sets to its data directory, is the
// cluster's data/. When not, `why` says so.
bool IsClustersPostmaster(const sys::PinnedProcess& pm, const fs::path& cluster, uid_t server_uid,
                          std::string* why) {
  const pid_t pid = pm.pid();
  if (!pm.Alive()) {
    *why = "process " + std::to_string(pid) + " is not running";
    return false;
  }
  auto uid = sys::ProcessUid(pid);
  if (!uid || *uid != server_uid) {
    *why = "process " + std::to_string(pid) + " runs as uid " +
           (uid ? std::to_string(*uid) : std::string("?")) + ", not as the server's uid " +
           std::to_string(server_uid);
    return false;
  }
  const fs::path data = cluster / "data";
  struct stat st {};
  std::error_code ec;
  fs::path want;
  if (lstat(data.c_str(), &st) == 0 && S_ISDIR(st.st_mode)) want = fs::canonical(data, ec);
  if (want.empty() || ec) {
    *why = data.string() + " is not a directory";
    return false;
  }
  auto cwd = sys::ProcessCwd(pid);
  if (!cwd || *cwd != want) {
    *why = "process " + std::to_string(pid) + " works in " +
           (cwd ? cwd->string() : std::string("(unreadable)")) + ", not in " + want.string();
    return false;
  }
  // The checks above read the pinned process only if it still runs now.
  if (!pm.Alive()) {
    *why = "process " + std::to_string(pid) + " ended while it was being checked";
    return false;
  }
  return true;
}

// Ends a stale cluster's server, which is not our child.
void KillPinned(const sys::PinnedProcess& pm) {
  pm.Signal(SIGQUIT);  // immediate shutdown: the directory is thrown away anyway
  if (!pm.WaitGone(std::chrono::seconds(10))) {
    pm.Signal(SIGKILL);
    pm.WaitGone(std::chrono::seconds(5));
  }
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

fs::path DefaultClusterParent() {
  if (const char* env = std::getenv("HARNESS_CLUSTER_PARENT"); env && *env) return env;
  // tmpfs when there is room: CREATE DATABASE from a template takes 10-20 ms
  // there against 250+ ms on the disk of the machines this runs on.
  std::error_code ec;
  auto space = fs::space("/dev/shm", ec);
  if (!ec && space.available > (std::uintmax_t{8} << 30) && access("/dev/shm", W_OK) == 0)
    return "/dev/shm";
  if (const char* t = std::getenv("TMPDIR"); t && *t && geteuid() != 0) return t;
  return "/tmp";
}

fs::path PrivateClusterDir(const fs::path& parent) {
  std::error_code ec;
  fs::path canonical = fs::canonical(parent, ec);
  return (ec ? parent : canonical) / (kPrivateDirPrefix + std::to_string(geteuid()));
}

Url ClusterAddress::UrlFor(const std::string& dbname) const {
  return Url::Parse("host='" + socket_dir + "' port=" + std::to_string(port) +
                    " user=postgres dbname='" + dbname + "'");
}

namespace {

constexpr const char* kServerPrograms[] = {"initdb", "pg_ctl", "postgres"};
constexpr const char* kClientPrograms[] = {"pg_dump", "pg_restore", "createdb"};

// The programs of `names` that `dir` lacks (executable regular files or
// symlinks to them), comma-separated; empty when it has them all.
template <size_t N>
std::string MissingPrograms(const fs::path& dir, const char* const (&names)[N]) {
  std::string missing;
  for (const char* name : names) {
    const fs::path p = dir / name;
    std::error_code ec;
    if (!fs::is_regular_file(p, ec) || access(p.c_str(), X_OK) != 0)
      missing += (missing.empty() ? "" : ", ") + std::string(name);
  }
  return missing;
}

// The newest /usr/lib/postgresql/N/bin that holds every program of `names`.
template <size_t N>
fs::path NewestDebianBinDir(const char* const (&names)[N]) {
  fs::path best;
  int best_version = 0;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator("/usr/lib/postgresql", ec)) {
    int v = std::atoi(entry.path().filename().c_str());
    if (v > best_version && MissingPrograms(entry.path() / "bin", names).empty()) {
      best_version = v;
      best = entry.path() / "bin";
    }
  }
  return best;
}

}  // namespace

fs::path FindServerBinDir(const std::string& preferred) {
  const std::string hint =
      "a PostgreSQL server's bin directory holds initdb, pg_ctl and postgres: e.g. "
      "/usr/lib/postgresql/15/bin (apt-get install postgresql-15), or build/pg-matrix/MAJOR/bin "
      "as scripts/pg-matrix makes it";
  if (!preferred.empty()) {
    if (std::string missing = MissingPrograms(preferred, kServerPrograms); !missing.empty())
      throw UsageError("the PostgreSQL server directory " + preferred + " has no " + missing, hint);
    return preferred;
  }
  if (const char* env = std::getenv("HARNESS_PG_BINDIR"); env && *env) {
    if (std::string missing = MissingPrograms(env, kServerPrograms); !missing.empty())
      throw UsageError(std::string("HARNESS_PG_BINDIR=") + env + " has no " + missing, hint);
    return env;
  }
  fs::path best = NewestDebianBinDir(kServerPrograms);
  if (best.empty())
    throw UsageError("PostgreSQL server programs (initdb, pg_ctl, postgres) not found",
                     "install them with: apt-get install postgresql-15 (scripts/test does this), "
                     "or pass --pg-bindir DIR or set HARNESS_PG_BINDIR");
  return best;
}

fs::path FindClientBinDir(const fs::path& server_bin_dir) {
  if (!server_bin_dir.empty() && MissingPrograms(server_bin_dir, kClientPrograms).empty())
    return server_bin_dir;
  if (const char* env = std::getenv("HARNESS_PG_BINDIR");
      env && *env && MissingPrograms(env, kClientPrograms).empty())
    return env;
  fs::path best = NewestDebianBinDir(kClientPrograms);
  if (best.empty())
    throw UsageError("PostgreSQL client programs (pg_dump, pg_restore, createdb) not found" +
                         (server_bin_dir.empty() ? std::string()
                                                 : " in " + server_bin_dir.string() +
                                                       " nor in /usr/lib/postgresql/*/bin"),
                     "install them with: apt-get install postgresql-client-15");
  return best;
}

ProgramVersion ReadProgramVersion(const fs::path& program) {
  sys::ProcessOptions po;
  po.timeout = std::chrono::seconds(30);
  po.env["LC_MESSAGES"] = "C";
  po.unset_env = {"LC_ALL"};
  auto r = sys::RunProcess({program.string(), "--version"}, po);
  // "pg_dump (PostgreSQL) 15.18 (Debian 15.18-0+deb12u1)"
  const std::string marker = "(PostgreSQL) ";
  const size_t at = r.out.find(marker);
  if (r.exit_code != 0 || at == std::string::npos)
    throw DatabaseError(program.string() + " --version did not say its version (exit " +
                        std::to_string(r.exit_code) + "): " + r.err + r.out);
  ProgramVersion v;
  v.text = r.out.substr(at + marker.size());
  v.text = v.text.substr(0, v.text.find_first_of(" \n"));
  v.major = std::atoi(v.text.c_str());
  return v;
}

void EmbeddedCluster::ReapStale(const fs::path& parent) {
  try {
    ReapStaleIn(parent);
  } catch (const std::exception& e) {  // e.g. the directory changed while it was being read
    spdlog::debug("looking for stale clusters under {} stopped: {}", parent.string(), e.what());
  }
}

void EmbeddedCluster::ReapStaleIn(const fs::path& parent) {
  const fs::path dir = PrivateClusterDir(parent);
  bool missing = false;
  std::string why = UnsafeParent(parent);
  if (why.empty()) why = UnsafePrivateDir(dir, &missing);
  if (missing) return;
  if (!why.empty()) {
    spdlog::debug("not looking for stale clusters in {}: {}", dir.string(), why);
    return;
  }
  const auto cluster_uid = ClusterUid();
  if (!cluster_uid) return;  // root without a `postgres` user: no cluster can be ours
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(dir, ec)) {
    const fs::path path = entry.path();
    const std::string name = path.filename().string();
    if (name.rfind(kDirPrefix, 0) != 0) continue;
    struct stat st {};
    if (lstat(path.c_str(), &st) != 0) continue;  // gone meanwhile
    if (!S_ISDIR(st.st_mode) || (st.st_mode & 07777) != 0700 || st.st_uid != *cluster_uid) {
      spdlog::debug("left {} alone: {} of uid {}, mode {}; a cluster's is a directory of uid {}, "
                    "mode 0700",
                    path.string(),
                    S_ISLNK(st.st_mode) ? "a symlink"
                    : S_ISDIR(st.st_mode) ? "a directory"
                                          : "not a directory",
                    st.st_uid, Octal(st.st_mode), *cluster_uid);
      continue;
    }
    std::string owner_text = ReadFirstLine(path / kOwnerFile);
    if (owner_text.empty()) {
      // Being created right now, or unreadable: leave it unless it is old.
      auto age = std::chrono::system_clock::now() -
                 std::chrono::system_clock::from_time_t(st.st_mtim.tv_sec);
      if (age < std::chrono::hours(1)) continue;
    } else if (sys::ProcessAlive(std::atoi(owner_text.c_str()))) {
      continue;
    }
    const pid_t pid = std::atoi(ReadFirstLine(path / "data" / "postmaster.pid").c_str());
    if (pid > 0) {
      sys::PinnedProcess pm(pid);
      std::string not_ours;
      if (IsClustersPostmaster(pm, path, *cluster_uid, &not_ours))
        KillPinned(pm);
      else
        spdlog::debug("stale cluster {}: did not signal the pid in its postmaster.pid: {}",
                      path.string(), not_ours);
    }
    std::error_code rm;
    fs::remove_all(path, rm);
    if (rm)
      spdlog::debug("cannot remove stale cluster {}: {}", path.string(), rm.message());
    else
      spdlog::info("removed stale embedded cluster {} (its owner process {} is gone)",
                   path.string(), owner_text.empty() ? "?" : owner_text);
  }
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

// pg_dump and pg_restore say so only in words: ENOSPC's own.
bool EmbeddedCluster::OutOfSpace(const std::string& child_stderr) {
  return child_stderr.find(std::strerror(ENOSPC)) != std::string::npos;
}

std::string EmbeddedCluster::OutOfSpaceHint() const {
  std::error_code ec;
  auto space = fs::space(dir_, ec);
  return "the file system of " + dir_.parent_path().string() + " is full" +
         (ec ? std::string() : " (" + std::to_string(space.available >> 20) + " MiB free now)") +
         ": the copy needs about twice the database's size there; point HARNESS_CLUSTER_PARENT "
         "at a larger file system, or use verify's clone mode (no --into-embedded)";
}

double EmbeddedCluster::CopyDatabaseFrom(const Url& source, const std::string& dbname,
                                         double lock_wait_seconds) {
  auto t0 = std::chrono::steady_clock::now();
  const fs::path client = FindClientBinDir(bin_dir_);
  const ProgramVersion pg_dump = ReadProgramVersion(client / "pg_dump");
  int source_version = 0;  // server_version_num: 180004
  {
    Connection conn(source, "migration-harness copy");
    source_version = conn.raw().server_version();
  }
  const std::string source_text =
      std::to_string(source_version / 10000) + "." + std::to_string(source_version % 10000);
  if (source_version / 10000 > pg_dump.major)
    throw UsageError(
        "the source server runs PostgreSQL " + source_text + ", newer than the local pg_dump " +
            pg_dump.text + " (" + (client / "pg_dump").string() +
            "), which cannot dump a server of a later major version; nothing was copied",
        "install the client programs of PostgreSQL " + std::to_string(source_version / 10000) +
            " or later on this machine (Debian: postgresql-client-" +
            std::to_string(source_version / 10000) +
            ", into /usr/lib/postgresql/" + std::to_string(source_version / 10000) +
            "/bin, where the harness looks), or leave out "
            "--into-embedded (verify then clones the database on its own server)");
  if (const int embedded = std::atoi(version_.c_str()); embedded < source_version / 10000)
    spdlog::warn("the embedded PostgreSQL {} is older than the source's {}: the copy may use "
                 "what the older server lacks (pick a newer one with --pg-bindir)",
                 version_, source_text);
  spdlog::info("copying with the local client programs in {} (pg_dump {}; source server {})",
               client.string(), pg_dump.text, source_text);
  const std::string dump = (dir_ / (dbname + ".dump")).string();
  sys::ProcessOptions po;
  po.timeout = std::chrono::hours(6);
  po.unset_env = {"PGDATABASE", "PGHOST", "PGPORT", "PGUSER"};
  po.stop_on_interrupt = true;
  // Untranslated messages: OutOfSpace reads them.
  po.env["LC_MESSAGES"] = "C";
  po.unset_env.push_back("LC_ALL");
  // Uncompressed: the dump is a temporary file here, and compressing a
  // million chunks would take longer than the restore.
  std::vector<std::string> dump_argv = {(client / "pg_dump").string(), "--format=custom",
                                        "--compress=0", "--no-owner", "--no-acl", "--file", dump};
  // pg_dump's shared table locks wait behind an exclusive one forever
  // unless told otherwise: the same limit as the migration's lock_timeout.
  if (lock_wait_seconds > 0)
    dump_argv.push_back("--lock-wait-timeout=" + PgDuration(lock_wait_seconds));
  // The password stays off the command line, which every user can read in
  // the process list: pg_dump gets it in its own environment only.
  dump_argv.insert(dump_argv.end(), {"--dbname", source.ConnInfo({}, /*with_password=*/false)});
  sys::ProcessOptions dump_po = po;
  if (!source.password().empty()) dump_po.env["PGPASSWORD"] = source.password();
  auto d = sys::RunProcess(dump_argv, dump_po);
  sys::ThrowIfInterrupted("copying " + source.Describe() + " with pg_dump");
  if (d.exit_code != 0)
    throw DatabaseError("pg_dump of " + source.Describe() + " failed: " + Redact(d.err, source),
                        OutOfSpace(d.err) ? OutOfSpaceHint()
                                          : "check that the user may read every table and that "
                                            "no session holds an exclusive lock on one");
  auto c = sys::RunProcess({(client / "createdb").string(), "--host", address_.socket_dir, "--port",
                       std::to_string(address_.port), "--username", "postgres", "--template",
                       "template0", dbname},
                      po);
  if (c.exit_code != 0) throw DatabaseError("createdb in the embedded cluster failed: " + c.err);
  // One transaction: all or nothing, and with wal_level=minimal the tables
  // it creates are loaded without WAL.
  auto r = sys::RunProcess({(client / "pg_restore").string(), "--no-owner", "--no-acl",
                       "--single-transaction", "--exit-on-error", "--host", address_.socket_dir,
                       "--port", std::to_string(address_.port), "--username", "postgres",
                       "--dbname", dbname, dump},
                      po);
  std::error_code ec;
  fs::remove(dump, ec);
  sys::ThrowIfInterrupted("restoring the copy into the embedded cluster");
  if (r.exit_code != 0)
    throw DatabaseError("pg_restore into the embedded cluster failed: " + r.err,
                        OutOfSpace(r.err)
                            ? OutOfSpaceHint()
                            : "the copy needs every extension the source uses (e.g. pgvector) "
                              "installed for the embedded server; without them, use verify's "
                              "clone mode (no --into-embedded)");
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
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
