// Which PostgreSQL programs the harness runs: the server programs of the
// embedded cluster from --pg-bindir (else $HARNESS_PG_BINDIR, else the newest
// /usr/lib/postgresql/*/bin), and the local client programs (pg_dump,
// pg_restore) for verify --into-embedded, which refuses a source server newer
// than them before anything is copied.
#include <unistd.h>

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <string>

#include "harness/error.h"
#include "harness/pg/cluster.h"
#include "harness/pg/connection.h"
#include "scenarios/support/test_env.h"

namespace fs = std::filesystem;

namespace harness::testing {
namespace {

// A directory of its own, readable by the `postgres` user (the server runs as
// it when the tests run as root); removed at scope end.
class BinDir {
 public:
  BinDir() {
    std::string pattern = (fs::temp_directory_path() / "mh-bindir-test-XXXXXX").string();
    if (mkdtemp(pattern.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
    path_ = pattern;
    fs::permissions(path_, fs::perms::owner_all | fs::perms::group_read | fs::perms::group_exec |
                               fs::perms::others_read | fs::perms::others_exec);
  }
  ~BinDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  BinDir(const BinDir&) = delete;
  BinDir& operator=(const BinDir&) = delete;
  const fs::path& path() const { return path_; }
  std::string str() const { return path_.string(); }

  // PROGRAM of `from`, linked in (postgres finds its share/ through the link).
  void Link(const fs::path& from, const std::string& program) const {
    fs::create_symlink(from / program, path_ / program);
  }
  void Script(const std::string& program, const std::string& body) const {
    std::ofstream(path_ / program) << "#!/bin/sh\n" << body;
    fs::permissions(path_ / program, fs::perms::owner_all | fs::perms::group_read |
                                         fs::perms::group_exec | fs::perms::others_read |
                                         fs::perms::others_exec);
  }

 private:
  fs::path path_;
};

// Server programs only, as scripts/pg-matrix unpacks them.
void LinkServerPrograms(const BinDir& dir) {
  const fs::path real = pg::FindServerBinDir();
  for (const char* program : {"initdb", "pg_ctl", "postgres"}) dir.Link(real, program);
}

std::string ServerVersionOf(const pg::Url& url) {
  pg::Connection conn(url);
  const int v = conn.raw().server_version();
  return std::to_string(v / 10000) + "." + std::to_string(v % 10000);
}

TEST(PgBindir, ADirectoryWithoutTheServerProgramsIsRefusedNamingWhatItLacks) {
  BinDir dir;
  dir.Link(pg::FindServerBinDir(), "initdb");
  auto r = RunCli({"--pg-bindir", dir.str(), "verify"});
  EXPECT_EQ(r.exit_code, 2) << r.out << r.err;
  EXPECT_CONTAINS(r.err, "--pg-bindir");
  EXPECT_CONTAINS(r.err, dir.str() + " has no pg_ctl, postgres");
  EXPECT_EQ(r.out.find("start embedded PostgreSQL"), std::string::npos) << r.out;

  auto missing = RunCli({"--pg-bindir", (dir.path() / "nowhere").string(), "verify"});
  EXPECT_EQ(missing.exit_code, 2) << missing.out << missing.err;
  EXPECT_CONTAINS(missing.err, "has no initdb, pg_ctl, postgres");
}

TEST(PgBindir, HarnessPgBindirWithoutTheServerProgramsIsRefusedNamingIt) {
  BinDir dir;
  auto r = RunCli({"verify"}, {}, {{"HARNESS_PG_BINDIR", dir.str()}});
  EXPECT_EQ(r.exit_code, 2) << r.out << r.err;
  EXPECT_CONTAINS(r.err, "HARNESS_PG_BINDIR=" + dir.str() + " has no initdb, pg_ctl, postgres");
}

// --pg-bindir wins over $HARNESS_PG_BINDIR, and a directory of server
// programs alone is enough for the embedded run.
TEST(PgBindir, VerifyStartsItsEmbeddedClusterFromTheGivenDirectory) {
  BinDir dir;
  LinkServerPrograms(dir);
  auto r = RunCli({"--pg-bindir", dir.str(), "verify", "--repositories", "2",
                   "--chunks-per-repo", "3"},
                  {}, {{"HARNESS_PG_BINDIR", "/nonexistent/bin"}});
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_CONTAINS(r.out, "PostgreSQL " + ServerVersionOf(TestServer().AdminUrl()));
  EXPECT_CONTAINS(r.out, "READY");
}

TEST(PgBindir, ClientProgramsComeFromDebiansWhenTheServerDirectoryHasNone) {
  BinDir dir;
  LinkServerPrograms(dir);
  const fs::path client = pg::FindClientBinDir(dir.path());
  EXPECT_NE(client, dir.path());
  for (const char* program : {"pg_dump", "pg_restore", "createdb"})
    EXPECT_TRUE(fs::exists(client / program)) << client;
  EXPECT_EQ(client.string().rfind("/usr/lib/postgresql/", 0), 0u) << client;
}

TEST(PgBindir, ReadsTheVersionAProgramSays) {
  BinDir dir;
  dir.Script("pg_dump", "echo 'pg_dump (PostgreSQL) 13.22 (Debian 13.22-1)'\n");
  auto v = pg::ReadProgramVersion(dir.path() / "pg_dump");
  EXPECT_EQ(v.major, 13);
  EXPECT_EQ(v.text, "13.22");
  auto local = pg::ReadProgramVersion(pg::FindClientBinDir() / "pg_dump");
  EXPECT_GE(local.major, 14) << local.text;
}

// pg_dump cannot dump a server of a later major version: said before
// anything is copied, naming both versions. Here a pg_dump that says it is
// 13 (and records any other call) stands for the local one.
TEST(PgBindir, IntoEmbeddedRefusesASourceNewerThanTheLocalPgDump) {
  TestDatabase db("005");
  BinDir dir;
  LinkServerPrograms(dir);
  const fs::path client = pg::FindClientBinDir();
  dir.Link(client, "pg_restore");
  dir.Link(client, "createdb");
  const fs::path called = dir.path() / "called";
  dir.Script("pg_dump", "if [ \"$1\" = --version ]; then echo 'pg_dump (PostgreSQL) 13.22'; "
                        "exit 0; fi\necho \"$@\" >> '" + called.string() + "'\nexit 1\n");
  auto r = RunCliUnchanged(db, {"--pg-bindir", dir.str(), "verify", "--into-embedded"}, 2);
  EXPECT_CONTAINS(r.err, "the source server runs PostgreSQL " + ServerVersionOf(db.url()) +
                             ", newer than the local pg_dump 13.22 (" +
                             (dir.path() / "pg_dump").string() + ")");
  EXPECT_CONTAINS(r.err, "leave out --into-embedded");
  EXPECT_FALSE(fs::exists(called)) << "pg_dump ran to copy";
}

}  // namespace
}  // namespace harness::testing
