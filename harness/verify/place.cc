#include "harness/verify/place.h"

#include <signal.h>
#include <unistd.h>

#include <cstdlib>
#include <thread>
#include <utility>
#include <vector>

#include <fmt/format.h>
#include <pqxx/pqxx>

#include "harness/error.h"
#include "harness/pg/connection.h"
#include "harness/sys/untrusted_text.h"
#include "harness/verify/rehearsal.h"

namespace harness::verify {

void Phases::InterruptForTest(const std::string& phase) {
  const char* wanted = std::getenv("HARNESS_TEST_INTERRUPT_PHASE");
  if (!wanted || phase != wanted || sys::InterruptSignal() != 0) return;
  const char* which = std::getenv("HARNESS_TEST_INTERRUPT_SIGNAL");
  kill(getpid(), which && std::string(which) == "TERM" ? SIGTERM : SIGINT);
  // The watcher thread takes it; the phase's work runs after that.
  for (int i = 0; i < 200 && sys::InterruptSignal() == 0; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
}

void Place::StartEmbedded(const std::map<std::string, std::string>& settings) {
  phases_.Run("start embedded PostgreSQL", [&] {
    pg::ClusterOptions co;
    co.bin_dir = options_.pg_bindir;
    co.settings = settings;
    cluster_ = pg::EmbeddedCluster::Start(co);
    r_.server_version = cluster_->server_version();
    return fmt::format("PostgreSQL {} on a private socket", cluster_->server_version());
  });
}

void Place::NewEmbeddedDatabase() {
  db_ = std::make_unique<pg::DisposableDatabase>(cluster_->AdminUrl(), "template0", "mh_verify");
  url_ = db_->url();
}

// The server the database lives on: the source's, before anything is
// cloned or copied (a copy into the embedded cluster would hide it).
void Place::ConnectPhase(const pg::Url& url, const std::string& target) {
  phases_.Run("connect", [&] {
    pg::Connection conn(url);
    pqxx::read_transaction tx(conn.raw());
    int num = tx.exec1("SHOW server_version_num")[0].as<int>();
    r_.server_version = tx.exec1("SHOW server_version")[0].as<std::string>();
    if (num < options_.minimum_server_version)
      throw UsageError(fmt::format("the server runs PostgreSQL {} (server_version_num {}); "
                                   "{} needs {} or later",
                                   r_.server_version, num, target, options_.minimum_server_version / 10000),
                       "upgrade the server first; nothing was changed");
    return "PostgreSQL " + r_.server_version + " at " + url.Describe();
  });
}

void Place::PrepareSource(const pg::Url& source, const std::string& target,
                          const std::map<std::string, std::string>& settings) {
  r_.target = source.Describe();  // until it says more
  ConnectPhase(source, target);
  if (options_.in_place) {
    url_ = source;
    r_.target = source.Describe() + " (in place: this database is migrated)";
    spdlog::warn("verify --in-place: migrating {} itself", source.Describe());
    return;
  }
  if (options_.into_embedded) {
    StartEmbedded(settings);
    phases_.Run("check the source's extensions", [&] { return RequireExtensions(source); });
    phases_.Run("copy the database into the embedded cluster", [&] {
      double s = cluster_->CopyDatabaseFrom(source, "mh_verify_copy", options_.migrator.lock_timeout_seconds);
      url_ = cluster_->UrlFor("mh_verify_copy");
      return fmt::format("pg_dump, then pg_restore, in {:.1f}s; the source was only read", s);
    });
    r_.target = source.Describe() + " copied into the embedded cluster";
    return;
  }
  phases_.Run("clone the database on its server", [&] {
    const pg::Url admin = source.WithDatabase("postgres");
    try {
      pg::Connection probe(admin, "migration-harness verify");
    } catch (const Error& e) {
      if (e.code() != ExitCode::kDatabase) throw;
      throw DatabaseError(
          std::string("verify makes its scratch clone from the database 'postgres' of the "
                      "same server, and ") + e.what(),
          "that database must exist and this user must be allowed to connect to it (GRANT "
          "CONNECT ON DATABASE postgres TO " +
              (source.user().empty() ? std::string("USER") : source.user()) +
              ";); or use --into-embedded (copies the database with pg_dump into a private "
              "PostgreSQL here), or --in-place on a restored copy");
    }
    // A verify killed before its clean-up (SIGKILL) leaves its clone.
    pg::ReapAbandonedDatabases(admin, "mh_verify");
    const std::string hint =
        "CREATE DATABASE ... TEMPLATE needs the CREATEDB right and no other session on the "
        "source database: close them, or use --into-embedded (copies it with pg_dump into "
        "a private PostgreSQL here), or --in-place on a restored copy";
    // The server would wait 5 s for other sessions on the source to
    // leave, then fail without naming them: they are named at once.
    if (std::string sessions = OtherSessions(admin, source.dbname()); !sessions.empty())
      throw DatabaseError("cannot clone " + source.Describe() +
                              " into a scratch database: other sessions are connected to it (" + sessions + ")",
                          hint);
    try {
      db_ = std::make_unique<pg::DisposableDatabase>(admin, source.dbname(), "mh_verify");
    } catch (const Error& e) {
      if (e.code() == ExitCode::kInterrupted) throw;
      throw DatabaseError(std::string("cannot clone ") + source.Describe() + " into a scratch database: " + e.what(),
                          hint);
    }
    url_ = db_->url();
    return fmt::format("scratch database {} (dropped at the end)", db_->name());
  });
  r_.target = source.Describe() + " cloned into " + db_->name();
}

// Sessions on `dbname` other than this one: "pid 123 (psql, user app)".
// A session that has just closed (this run's own first connection, say)
// lingers while its backend exits, longer on a loaded machine: given up
// to 1 s to go before the others are named.
std::string Place::OtherSessions(const pg::Url& admin, const std::string& dbname) {
  pg::Connection conn(admin, "migration-harness verify");
  std::string out;
  for (int attempt = 0; attempt < 20; ++attempt) {
    if (attempt) {
      sys::ThrowIfInterrupted("waiting for closing sessions on " + dbname);
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    out.clear();
    // Its own transaction each time: pg_stat_activity is read once per transaction.
    pqxx::nontransaction tx(conn.raw());
    for (const auto& r : tx.exec_params(
             "SELECT pid, coalesce(nullif(application_name, ''), 'no application name'), "
             "coalesce(usename::text, '?') FROM pg_catalog.pg_stat_activity WHERE datname = $1 "
             "AND pid <> pg_catalog.pg_backend_pid() ORDER BY pid",
             dbname))
      out += fmt::format("{}pid {} ({}, user {})", out.empty() ? "" : ", ", r[0].c_str(),
                         sys::ShowUntrusted(r[1].c_str(), 40), sys::ShowUntrusted(r[2].c_str(), 40));
    if (out.empty()) break;
  }
  return out;
}

// pg_restore of a database that uses an extension the embedded server
// lacks (pgvector, say) fails half way: refused before anything is copied.
std::string Place::RequireExtensions(const pg::Url& source) {
  std::vector<std::pair<std::string, std::string>> used;  // name, version
  {
    pg::Connection conn(source);
    pqxx::read_transaction tx(conn.raw());
    for (const auto& r : tx.exec("SELECT extname, extversion FROM pg_catalog.pg_extension ORDER BY 1"))
      used.emplace_back(r[0].as<std::string>(), r[1].as<std::string>());
  }
  // The same version: pg_restore of another one's objects can fail half way.
  std::string missing;
  {
    pg::Connection conn(cluster_->AdminUrl());
    pqxx::read_transaction tx(conn.raw());
    for (const auto& [name, version] : used) {
      if (!tx.exec_params("SELECT 1 FROM pg_catalog.pg_available_extension_versions WHERE "
                          "name = $1 AND version = $2",
                          name, version)
               .empty())
        continue;
      pqxx::row has = tx.exec_params1(
          "SELECT coalesce(pg_catalog.string_agg(version, ', ' ORDER BY version), '') FROM "
          "pg_catalog.pg_available_extension_versions WHERE name = $1",
          name);
      const std::string here = has[0].as<std::string>();
      missing += fmt::format("{}{} {}{}", missing.empty() ? "" : ", ", name, version,
                             here.empty() ? "" : " (here: " + here + ")");
    }
  }
  if (!missing.empty())
    throw UsageError(fmt::format("{} uses the extension(s) {}, which the embedded PostgreSQL {} does not "
                                 "have; a copy could not be restored there",
                                 source.Describe(), missing, cluster_->server_version()),
                     "rehearse on the source's own server instead: leave out --into-embedded (verify then "
                     "clones the database there; needs CREATEDB), or --in-place on a restored copy; "
                     "nothing was copied");
  std::string names;
  for (const auto& [name, version] : used) names += fmt::format("{}{} {}", names.empty() ? "" : ", ", name, version);
  return fmt::format("{} available here", names.empty() ? "no extensions," : names + ":");
}

std::optional<pg::Url> Place::AdminUrl() const {
  if (cluster_) return cluster_->AdminUrl();
  if (options_.source && !options_.in_place) return options_.source->WithDatabase("postgres");
  return std::nullopt;
}

}  // namespace harness::verify
