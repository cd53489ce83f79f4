// The private directory the embedded clusters live in (one per user, under
// the cluster parent) and what is checked before anything is kept there or
// removed from it: for cluster.cc (Start) and stale_clusters.cc.
#pragma once

#include <sys/types.h>

#include <filesystem>
#include <optional>
#include <string>

#include "harness/sys/process.h"

namespace harness::pg {

inline constexpr const char* kPrivateDirPrefix = "migration-harness-";  // + our euid
inline constexpr const char* kDirPrefix = "cluster-";                   // + mkdtemp's XXXXXX
inline constexpr const char* kOwnerFile = "owner.pid";
inline constexpr const char* kServerUser = "postgres";

// The first line of a file, or empty.
std::string ReadFirstLine(const std::filesystem::path& p);

// A file mode as 0755.
std::string Octal(mode_t mode);

// The uid our clusters' directories belong to and their servers run as: us,
// or `postgres` when we are root (the server refuses to run as root).
std::optional<uid_t> ClusterUid();

// What is wrong with `parent` as the home of our private directory, or empty.
std::string UnsafeParent(const std::filesystem::path& parent);

// Run as root: the directory on the way to `parent` that the server's user
// cannot enter, or empty.
std::string Unenterable(const std::filesystem::path& parent, const char* server, const sys::UserIds& ids);

// What is wrong with our private directory `dir`, or empty; *missing when it
// does not exist.
std::string UnsafePrivateDir(const std::filesystem::path& dir, bool* missing);

// Creates our private directory under `parent` if need be and checks it;
// throws UsageError when it is not safe to use.
std::filesystem::path PreparePrivateDir(const std::filesystem::path& parent);

}  // namespace harness::pg
