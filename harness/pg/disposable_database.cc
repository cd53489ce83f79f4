#include "harness/pg/disposable_database.h"

#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <random>

#include <pqxx/pqxx>

#include "harness/error.h"
#include "harness/pg/connection.h"
#include "harness/pg/interrupt.h"

namespace harness::pg {

std::string UniqueDatabaseName(const std::string& prefix) {
  static std::atomic<int> counter{0};
  static thread_local std::mt19937_64 rng{std::random_device{}()};
  char suffix[9];
  std::snprintf(suffix, sizeof suffix, "%08x", static_cast<unsigned>(rng()));
  return prefix + "_" + std::to_string(getpid()) + "_" + std::to_string(counter++) + "_" + suffix;
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
    ThrowIfInterrupted("creating database " + name_ + " from template " + template_name);
    throw FromSqlError(e, "creating database " + name_ + " from template " + template_name);
  }
  clone_seconds_ = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  url_ = admin_.WithDatabase(name_);
}

DisposableDatabase::~DisposableDatabase() {
  if (keep_) {
    std::fprintf(stderr, "kept database for inspection: %s\n  psql \"%s\"\n", name_.c_str(),
                 url_.text().c_str());
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
