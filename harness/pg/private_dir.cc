// The private directory the embedded clusters live in: where it is, and
// whether it is safe to use (harness/pg/private_dir.h).
#include "harness/pg/private_dir.h"

#include <grp.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "harness/error.h"
#include "harness/pg/cluster.h"
#include "harness/sys/process.h"

namespace fs = std::filesystem;

namespace harness::pg {

std::string ReadFirstLine(const fs::path& p) {
  std::ifstream in(p);
  std::string line;
  std::getline(in, line);
  return line;
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

namespace {

std::string PrivateDirHint(const fs::path& dir) {
  return "the harness keeps its embedded clusters in " + dir.string() +
         ", a directory of this user that no one else may write to (it makes it itself): "
         "remove it (rm -rf " + dir.string() +
         ") if nothing of yours is in it, or set HARNESS_CLUSTER_PARENT to another directory";
}

}  // namespace

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

}  // namespace harness::pg
