// Reaping the clusters a killed harness left behind: only a directory of
// ours whose owner is gone, and only a server provably its own.
#include "harness/pg/cluster.h"

#include <sys/stat.h>
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "harness/error.h"
#include "harness/sys/process.h"
#include "harness/pg/private_dir.h"

namespace fs = std::filesystem;

namespace harness::pg {

namespace {

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

}  // namespace

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

}  // namespace harness::pg
