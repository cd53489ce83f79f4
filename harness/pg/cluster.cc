#include "harness/pg/cluster.h"

#include <libpq-fe.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <fstream>
#include <regex>
#include <sstream>
#include <thread>

#include <spdlog/spdlog.h>

#include "harness/error.h"
#include "harness/pg/interrupt.h"
#include "harness/pg/process.h"

namespace fs = std::filesystem;

namespace harness::pg {

namespace {

constexpr const char* kDirPrefix = "migration-harness-cluster-";
constexpr const char* kOwnerFile = "owner.pid";
constexpr const char* kServerUser = "postgres";

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

bool IsPostgresProcess(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/cmdline");
  std::string cmd((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  return cmd.find("postgres") != std::string::npos;
}

void KillPostmaster(pid_t pid) {
  if (!ProcessAlive(pid)) return;
  kill(pid, SIGQUIT);  // immediate shutdown: the directory is thrown away anyway
  if (!WaitForExit(pid, std::chrono::seconds(10))) {
    kill(pid, SIGKILL);
    WaitForExit(pid, std::chrono::seconds(5));
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

Url ClusterAddress::UrlFor(const std::string& dbname) const {
  return Url::Parse("host='" + socket_dir + "' port=" + std::to_string(port) +
                    " user=postgres dbname='" + dbname + "'");
}

fs::path FindServerBinDir(const std::string& preferred) {
  auto usable = [](const fs::path& d) {
    return fs::exists(d / "initdb") && fs::exists(d / "postgres");
  };
  if (!preferred.empty()) {
    if (usable(preferred)) return preferred;
    throw UsageError("no initdb/postgres in " + preferred);
  }
  if (const char* env = std::getenv("HARNESS_PG_BINDIR"); env && *env) {
    if (usable(env)) return env;
    throw UsageError(std::string("HARNESS_PG_BINDIR=") + env + " holds no initdb/postgres");
  }
  fs::path best;
  int best_version = 0;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator("/usr/lib/postgresql", ec)) {
    int v = std::atoi(entry.path().filename().c_str());
    if (v > best_version && usable(entry.path() / "bin")) {
      best_version = v;
      best = entry.path() / "bin";
    }
  }
  if (best.empty())
    throw UsageError("PostgreSQL server programs (initdb, postgres) not found",
                     "install them with: apt-get install postgresql-15 (scripts/test does this), "
                     "or set HARNESS_PG_BINDIR");
  return best;
}

void EmbeddedCluster::ReapStale(const fs::path& parent) {
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(parent, ec)) {
    const std::string name = entry.path().filename().string();
    if (name.rfind(kDirPrefix, 0) != 0 || !entry.is_directory(ec)) continue;
    std::string owner_text = ReadFirstLine(entry.path() / kOwnerFile);
    if (owner_text.empty()) {
      // Being created right now, or unreadable: leave it unless it is old.
      auto age = fs::file_time_type::clock::now() - fs::last_write_time(entry.path(), ec);
      if (ec || age < std::chrono::hours(1)) continue;
    } else if (ProcessAlive(std::atoi(owner_text.c_str()))) {
      continue;
    }
    std::string pm = ReadFirstLine(entry.path() / "data" / "postmaster.pid");
    pid_t pid = std::atoi(pm.c_str());
    if (pid > 0 && IsPostgresProcess(pid)) KillPostmaster(pid);
    fs::remove_all(entry.path(), ec);
    spdlog::info("removed stale embedded cluster {} (its owner process {} is gone)",
                 entry.path().string(), owner_text.empty() ? "?" : owner_text);
  }
}

std::unique_ptr<EmbeddedCluster> EmbeddedCluster::Start(const ClusterOptions& options) {
  auto started = std::chrono::steady_clock::now();
  std::unique_ptr<EmbeddedCluster> c(new EmbeddedCluster());
  c->options_ = options;
  c->bin_dir_ = FindServerBinDir(options.bin_dir);
  fs::path parent = options.parent_dir.empty() ? DefaultClusterParent() : fs::path(options.parent_dir);
  ReapStale(parent);

  std::string pattern = (parent / (std::string(kDirPrefix) + "XXXXXX")).string();
  if (mkdtemp(pattern.data()) == nullptr)
    throw DatabaseError("cannot create a directory in " + parent.string() + ": " +
                        std::strerror(errno));
  c->dir_ = pattern;
  {
    std::ofstream owner(c->dir_ / kOwnerFile);
    owner << getpid() << "\n";
  }
  fs::permissions(c->dir_, fs::perms::owner_all, fs::perm_options::replace);
  if (geteuid() == 0) {
    auto ids = LookupUser(kServerUser);
    if (!ids)
      throw UsageError("running as root, and there is no 'postgres' user to run the server as",
                       "install postgresql-15 (it creates the user) or run as a normal user");
    if (chown(c->dir_.c_str(), ids->uid, ids->gid) != 0)
      throw DatabaseError("cannot chown " + c->dir_.string());
    c->run_as_ = kServerUser;
  }
  c->address_.socket_dir = c->dir_.string();
  c->address_.port = FreePort();

  ProcessOptions po;
  po.run_as_user = c->run_as_;
  po.unset_env = {"PGDATA", "PGHOST", "PGPORT", "PGUSER", "PGDATABASE"};
  po.timeout = std::chrono::seconds(120);
  auto initdb = RunProcess({(c->bin_dir_ / "initdb").string(), "-A", "trust", "-N", "-E", "UTF8",
                            "--locale=C", "-U", "postgres", "-D", (c->dir_ / "data").string()},
                           po);
  if (initdb.exit_code != 0)
    throw DatabaseError("initdb failed (exit " + std::to_string(initdb.exit_code) + "): " +
                        initdb.err + initdb.out);
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
  ProcessOptions po;
  po.run_as_user = run_as_;
  po.stdout_file = (dir_ / "postgres.log").string();
  po.parent_death_signal = SIGQUIT;  // never outlive the harness
  po.new_session = true;             // Ctrl-C goes to the harness, which stops us in order
  postmaster_ = SpawnProcess(argv, po);
}

void EmbeddedCluster::WaitReady(std::chrono::seconds timeout) {
  const std::string conninfo = AdminUrl().text() + " connect_timeout=2";
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (PQping(conninfo.c_str()) != PQPING_OK) {
    int status = 0;
    if (WaitForExit(postmaster_, std::chrono::milliseconds(0), &status)) {
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

double EmbeddedCluster::CopyDatabaseFrom(const Url& source, const std::string& dbname,
                                         int lock_wait_seconds) {
  auto t0 = std::chrono::steady_clock::now();
  const std::string dump = (dir_ / (dbname + ".dump")).string();
  ProcessOptions po;
  po.timeout = std::chrono::hours(6);
  po.unset_env = {"PGDATABASE", "PGHOST", "PGPORT", "PGUSER"};
  po.stop_on_interrupt = true;
  // Uncompressed: the dump is a temporary file here, and compressing a
  // million chunks would take longer than the restore.
  std::vector<std::string> dump_argv = {(bin_dir_ / "pg_dump").string(), "--format=custom",
                                        "--compress=0", "--no-owner", "--no-acl", "--file", dump};
  // pg_dump's shared table locks wait behind an exclusive one forever
  // unless told otherwise: the same limit as the migration's lock_timeout.
  if (lock_wait_seconds > 0)
    dump_argv.push_back("--lock-wait-timeout=" + std::to_string(lock_wait_seconds) + "s");
  // The password stays off the command line, which every user can read in
  // the process list: pg_dump gets it in its own environment only.
  dump_argv.insert(dump_argv.end(), {"--dbname", source.ConnInfo({}, /*with_password=*/false)});
  ProcessOptions dump_po = po;
  if (!source.password().empty()) dump_po.env["PGPASSWORD"] = source.password();
  auto d = RunProcess(dump_argv, dump_po);
  ThrowIfInterrupted("copying " + source.Describe() + " with pg_dump");
  if (d.exit_code != 0)
    throw DatabaseError("pg_dump of " + source.Describe() + " failed: " + Redact(d.err, source),
                        "check that the user may read every table, that no session holds an "
                        "exclusive lock on one, and that the server's major version is not "
                        "newer than the embedded one (" + version_ + ")");
  auto c = RunProcess({(bin_dir_ / "createdb").string(), "--host", address_.socket_dir, "--port",
                       std::to_string(address_.port), "--username", "postgres", "--template",
                       "template0", dbname},
                      po);
  if (c.exit_code != 0) throw DatabaseError("createdb in the embedded cluster failed: " + c.err);
  // One transaction: all or nothing, and with wal_level=minimal the tables
  // it creates are loaded without WAL.
  auto r = RunProcess({(bin_dir_ / "pg_restore").string(), "--no-owner", "--no-acl",
                       "--single-transaction", "--exit-on-error", "--host", address_.socket_dir,
                       "--port", std::to_string(address_.port), "--username", "postgres",
                       "--dbname", dbname, dump},
                      po);
  std::error_code ec;
  fs::remove(dump, ec);
  ThrowIfInterrupted("restoring the copy into the embedded cluster");
  if (r.exit_code != 0)
    throw DatabaseError("pg_restore into the embedded cluster failed: " + r.err,
                        "the copy needs every extension the source uses (e.g. pgvector)");
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

void EmbeddedCluster::CrashAndRestart() {
  if (postmaster_ > 0) {
    kill(postmaster_, SIGQUIT);
    WaitForExit(postmaster_, std::chrono::seconds(30));
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
