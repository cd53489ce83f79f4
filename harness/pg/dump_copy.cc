// Copying a database into the embedded cluster with the local pg_dump and
// pg_restore (verify --into-embedded).
#include "harness/pg/cluster.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <chrono>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "harness/error.h"
#include "harness/sys/process.h"
#include "harness/sys/interrupt.h"
#include "harness/pg/connection.h"

namespace fs = std::filesystem;

namespace harness::pg {

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

}  // namespace harness::pg
