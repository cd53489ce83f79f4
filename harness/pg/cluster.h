// A throwaway PostgreSQL server: initdb into a private 0700 directory, postgres
// on a unix socket only (in that directory), fsync off, a free port; stopped
// and removed when the object dies, and reaped by the next start when its
// owner crashed.
//
// Where it lives: PARENT/migration-harness-EUID/cluster-XXXXXX (mkdtemp),
// PARENT being DefaultClusterParent() or ClusterOptions::parent_dir. The
// parent is shared (/dev/shm, /tmp): every directory on its path must belong
// to root or to us and be writable by no one else unless sticky. The
// migration-harness-EUID directory is ours alone: made with mkdir (0700; 0711
// as root, so that the server, run as `postgres`, can pass through), and
// before each use checked with lstat to be a directory, not a symlink, owned
// by us and writable by no one else; Start refuses (harness::UsageError)
// otherwise. Each cluster directory in it is 0700 and, as root, owned by
// `postgres`; it holds owner.pid (the pid of the process that started it) and
// the data directory data/.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <filesystem>
#include <map>
#include <memory>
#include <string>

#include "harness/pg/url.h"

namespace harness::pg {

struct ClusterOptions {
  // The server programs (initdb, pg_ctl, postgres); empty: FindServerBinDir's
  // default. The client programs CopyDatabaseFrom runs come from
  // FindClientBinDir(bin_dir).
  std::string bin_dir;
  std::string parent_dir;   // empty: DefaultClusterParent(); see the top of this file
  std::chrono::seconds start_timeout{60};
  std::map<std::string, std::string> settings;  // extra postgresql.conf settings
};

// Where a running cluster listens; enough to connect from any process.
struct ClusterAddress {
  std::string socket_dir;
  int port = 0;
  Url AdminUrl() const { return UrlFor("postgres"); }
  Url UrlFor(const std::string& dbname) const;
};

class EmbeddedCluster {
 public:
  // Throws harness::Error with the server log's tail when anything fails,
  // and harness::UsageError when the parent or our directory in it is not
  // safe to use (see the top of this file).
  static std::unique_ptr<EmbeddedCluster> Start(const ClusterOptions& options = {});
  ~EmbeddedCluster();
  EmbeddedCluster(const EmbeddedCluster&) = delete;
  EmbeddedCluster& operator=(const EmbeddedCluster&) = delete;

  const ClusterAddress& address() const { return address_; }
  Url AdminUrl() const { return address_.AdminUrl(); }
  Url UrlFor(const std::string& dbname) const { return address_.UrlFor(dbname); }
  const std::filesystem::path& dir() const { return dir_; }
  pid_t postmaster_pid() const { return postmaster_; }
  std::string server_version() const { return version_; }
  // The server's log (its stderr): what log_min_duration_statement and
  // log_statement write, for the one server whose log the tool can read.
  std::filesystem::path server_log() const { return dir_ / "postgres.log"; }
  // Seconds from the call to Start() until the server accepted connections.
  double start_seconds() const { return start_seconds_; }
  // Of start_seconds(): the time initdb took (making the data directory).
  double initdb_seconds() const { return initdb_seconds_; }

  // Copies database `source` (any server) into a new database `dbname` of
  // this cluster with pg_dump and pg_restore; the source is only read.
  // These are the local client programs (FindClientBinDir): a source
  // server of a newer major version than them is refused (UsageError,
  // naming both versions) before anything is copied, since pg_dump cannot
  // dump it.
  // pg_dump waits at most `lock_wait_seconds` for a table lock (0: forever).
  // Returns the seconds it took.
  double CopyDatabaseFrom(const Url& source, const std::string& dbname,
                          double lock_wait_seconds = 0);

  // Immediate shutdown (like a crash: no checkpoint), then start again on the
  // same data directory; used to prove a migration is all-or-nothing. Call
  // it (like Start) from a thread that outlives the server: the server gets
  // SIGQUIT when the thread that started it ends (PR_SET_PDEATHSIG).
  void CrashAndRestart();
  // Stops the server and removes the directory; idempotent, never throws.
  void Stop() noexcept;

  // Removes clusters whose owning process is gone. Called by Start(); never
  // throws. Looks only in PrivateClusterDir(parent_dir), and only when the
  // parent and that directory pass the checks above. A cluster directory in
  // it is touched only when it is a real directory (not a symlink), mode
  // 0700, owned by the user clusters are made as (us; `postgres` as root).
  // The pid in its data/postmaster.pid gets SIGQUIT only when that process
  // is provably the cluster's server: it runs as the server user, and its
  // working directory (a postmaster's is its data directory) is that
  // cluster's data/. Anything else is left alone, with a debug line saying
  // why. The directory is then removed (std::filesystem::remove_all, which
  // follows no symlink).
  static void ReapStale(const std::filesystem::path& parent_dir);

 private:
  EmbeddedCluster() = default;
  static void ReapStaleIn(const std::filesystem::path& parent_dir);  // ReapStale, may throw
  void Launch();
  void WaitReady(std::chrono::seconds timeout);
  std::string LogTail() const;
  static bool OutOfSpace(const std::string& child_stderr);
  std::string OutOfSpaceHint() const;

  ClusterOptions options_;
  std::filesystem::path bin_dir_;
  std::filesystem::path dir_;
  std::string run_as_;
  ClusterAddress address_;
  pid_t postmaster_ = -1;
  std::string version_;
  double start_seconds_ = 0;
  double initdb_seconds_ = 0;
};

// The parent of our cluster directory: $HARNESS_CLUSTER_PARENT, else
// /dev/shm (tmpfs) when it has 8 GiB free, else $TMPDIR (not as root) or /tmp.
std::filesystem::path DefaultClusterParent();

// Our own directory under `parent`, which holds our clusters:
// canonical(parent)/migration-harness-EUID (the parent as given when it
// cannot be resolved). Only names it; Start() creates and checks it.
std::filesystem::path PrivateClusterDir(const std::filesystem::path& parent);

// The directory holding the server programs initdb, pg_ctl and postgres:
// `preferred` (the CLI's --pg-bindir) when given, else $HARNESS_PG_BINDIR,
// else the newest /usr/lib/postgresql/*/bin. Throws UsageError naming the
// directory and the programs it lacks, or saying what to install.
std::filesystem::path FindServerBinDir(const std::string& preferred = {});

// The directory holding the client programs pg_dump, pg_restore and
// createdb: `server_bin_dir` when it holds them (Debian's do), else
// $HARNESS_PG_BINDIR when it does, else the newest /usr/lib/postgresql/*/bin
// that does (a server-only directory, such as scripts/pg-matrix's, holds
// none). Throws UsageError when none does.
std::filesystem::path FindClientBinDir(const std::filesystem::path& server_bin_dir = {});

// What `PROGRAM --version` says: "pg_dump (PostgreSQL) 15.18 (Debian ...)"
// gives {15, "15.18"}.
struct ProgramVersion {
  int major = 0;
  std::string text;
};
ProgramVersion ReadProgramVersion(const std::filesystem::path& program);

}  // namespace harness::pg
