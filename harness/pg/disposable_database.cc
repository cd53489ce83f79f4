#include "harness/pg/disposable_database.h"

#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cctype>
#include <cstdint>
#include <random>
#include <regex>

#include <pqxx/pqxx>
#include <spdlog/spdlog.h>

#include "harness/error.h"
#include "harness/pg/connection.h"
#include "harness/pg/interrupt.h"
#include "harness/sys/process.h"

namespace harness::pg {

std::string ScratchHostTag() {
  // A hash of the whole name: two hosts whose names share a long prefix
  // (ci-runner-eu-1, ci-runner-eu-2) must not take each other's for theirs.
  char host[256] = {};
  gethostname(host, sizeof host - 1);
  std::uint32_t h = 2166136261u;  // FNV-1a
  for (const char* c = host; *c; ++c) h = (h ^ static_cast<unsigned char>(*c)) * 16777619u;
  char tag[9];
  std::snprintf(tag, sizeof tag, "%08x", h);
  return tag;
}

std::string UniqueDatabaseName(const std::string& prefix) {
  static std::atomic<int> counter{0};
  static thread_local std::mt19937_64 rng{std::random_device{}()};
  char suffix[9];
  std::snprintf(suffix, sizeof suffix, "%08x", static_cast<unsigned>(rng()));
  // The start time tells this process from a later one with the same pid.
  return prefix + "_" + ScratchHostTag() + "_" + std::to_string(getpid()) + "_" +
         std::to_string(sys::ProcessStartTime(getpid())) + "_" + std::to_string(counter++) + "_" +
         suffix;
}

std::vector<std::string> ReapAbandonedDatabases(const Url& admin, const std::string& prefix) {
  std::vector<std::string> dropped;
  const std::regex name_re("^" + prefix +
                           "(_[a-z]+)?_([0-9a-f]{8})_([0-9]+)_([0-9]+)_[0-9]+_[0-9a-f]{8}$");
  const std::string host = ScratchHostTag();
  Connection conn(admin);
  pqxx::nontransaction tx(conn.raw());
  // Only databases this role owns: another user's scratch database is
  // theirs to drop, whatever its name says.
  pqxx::result r = tx.exec_params(
      "SELECT d.datname FROM pg_catalog.pg_database d "
      "WHERE d.datdba = (SELECT oid FROM pg_catalog.pg_roles WHERE rolname = current_user) "
      "  AND pg_catalog.starts_with(d.datname, $1) ORDER BY 1",
      prefix + "_");
  for (const auto& row : r) {
    const std::string name = row[0].c_str();
    std::smatch m;
    if (!std::regex_match(name, m, name_re)) continue;
    if (m[2].str() != host) {
      spdlog::debug("scratch database {} was made on host {}, not here: left alone", name,
                    m[2].str());
      continue;
    }
    const pid_t pid = static_cast<pid_t>(std::stol(m[3].str()));
    const unsigned long long started = std::stoull(m[4].str());
    // Alive only if the same process: a reused pid starts later.
    if (sys::ProcessAlive(pid) && sys::ProcessStartTime(pid) == started) continue;
    try {
      // No FORCE: a session on it means somebody uses it after all.
      tx.exec("DROP DATABASE IF EXISTS " + tx.quote_name(name));
      spdlog::info("dropped scratch database {}, left behind by process {} (gone)", name, pid);
      dropped.push_back(name);
    } catch (const pqxx::sql_error& e) {
      spdlog::debug("scratch database {} of the gone process {} not dropped: {}", name, pid,
                    e.what());
    }
  }
  return dropped;
}

DisposableDatabase::DisposableDatabase(const Url& admin, const std::string& template_name,
                                       const std::string& name_prefix)
    : admin_(admin), url_(admin), name_(UniqueDatabaseName(name_prefix)) {
  Connection conn(admin_);
  pqxx::nontransaction tx(conn.raw());
  std::string sql = "CREATE DATABASE " + tx.quote_name(name_);
  if (!template_name.empty()) sql += " TEMPLATE " + tx.quote_name(template_name);
  // PostgreSQL 15 copies a template block by block through the WAL by
  // default; copying the files is several times faster for small databases.
  if (conn.raw().server_version() >= 150000) sql += " STRATEGY = FILE_COPY";
  auto t0 = std::chrono::steady_clock::now();
  // Ctrl-C cancels a long copy (a large production clone); the server
  // removes what it had copied.
  CancelOnInterrupt cancel(conn);
  try {
    tx.exec(sql);
  } catch (const pqxx::sql_error& e) {
    sys::ThrowIfInterrupted("creating database " + name_ + " from template " + template_name);
    throw FromSqlError(e, "creating database " + name_ + " from template " + template_name);
  }
  clone_seconds_ = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  url_ = admin_.WithDatabase(name_);
}

DisposableDatabase::~DisposableDatabase() {
  if (keep_) {
    std::fprintf(stderr, "kept database for inspection: %s\n  psql \"%s\"\n", name_.c_str(),
                 Redact(url_.text(), url_).c_str());
    return;
  }
  DropDatabase(admin_, name_);
}

bool DropDatabase(const Url& admin, const std::string& name, bool quiet) {
  try {
    Connection conn(admin);
    pqxx::nontransaction tx(conn.raw());
    // FORCE ends sessions a failed test may have left behind (PostgreSQL 13+).
    tx.exec("DROP DATABASE IF EXISTS " + tx.quote_name(name) + " WITH (FORCE)");
    return true;
  } catch (const std::exception& e) {
    if (!quiet) throw;
    std::fprintf(stderr, "warning: could not drop database %s: %s\n", name.c_str(), e.what());
    return false;
  }
}

}  // namespace harness::pg
