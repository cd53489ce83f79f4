// Finding PostgreSQL's server and client programs, and their versions.
#include "harness/pg/cluster.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "harness/error.h"
#include "harness/sys/process.h"

namespace fs = std::filesystem;

namespace harness::pg {

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

}  // namespace harness::pg
