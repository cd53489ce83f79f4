#include "harness/verify/runner_base.h"

#include <thread>
#include <utility>
#include <vector>

#include <pqxx/pqxx>

namespace harness::verify {

Rehearsal RunnerBase::Go(Rehearsal* partial) {
  try {
    PrepareTarget();
    Rehearse();
  } catch (const Error& e) {
    Record(e, partial);
    throw;
  } catch (const pqxx::sql_error& e) {
    // A query of the rehearsal's own (counts, snapshots, checks), or one
    // that Ctrl-C cancelled.
    try {
      pg::ThrowIfInterrupted(Running());
    } catch (const Error& interrupted) {
      Record(interrupted, partial);
      throw;
    }
    Error converted = pg::FromSqlError(e, "verify: " + Running());
    Record(converted, partial);
    throw converted;
  } catch (const pqxx::broken_connection& e) {
    Error converted =
        DatabaseError("verify: lost the connection while " + Running() + ": " +
                      (url_ ? pg::Redact(e.what(), *url_) : std::string(e.what())));
    Record(converted, partial);
    throw converted;
  }
  return std::move(r_);
}

void RunnerBase::FailPhase(const std::string& name, const std::string& detail) {
  r_.phases.push_back({name, 0, false, detail});
}

// The phase that was running failed: the report says so, and the verdict
// carries the error's exit code.
void RunnerBase::Record(const Error& e, Rehearsal* partial) {
  if (!partial) return;
  FailPhase(Running(), e.what());
  Verdict(false, static_cast<int>(e.code()),
          fmt::format("{}: {}", e.code() == ExitCode::kInterrupted ? "INTERRUPTED" : "FAILED",
                      e.what()));
  *partial = r_;
}

void RunnerBase::Verdict(bool ready, int code, const std::string& line) {
  r_.ready = ready;
  r_.exit_code = code;
  r_.verdict = line;
}

void RunnerBase::StartEmbedded() {
  Phase("start embedded PostgreSQL", [&] {
    pg::ClusterOptions co;
    co.bin_dir = options_.pg_bindir;
    cluster_ = pg::EmbeddedCluster::Start(co);
    r_.server_version = cluster_->server_version();
    return fmt::format("PostgreSQL {} on a private socket", cluster_->server_version());
  });
}

// The server the database lives on: the source's, before anything is
// cloned or copied (a copy into the embedded cluster would hide it).
void RunnerBase::ConnectPhase(const pg::Url& url, const std::string& target) {
  Phase("connect", [&] {
    pg::Connection conn(url);
    pqxx::read_transaction tx(conn.raw());
    int num = tx.exec1("SHOW server_version_num")[0].as<int>();
    r_.server_version = tx.exec1("SHOW server_version")[0].as<std::string>();
    if (num < options_.minimum_server_version)
      throw UsageError(fmt::format("the server runs PostgreSQL {} (server_version_num {}); "
                                   "migration {} needs {} or later",
                                   r_.server_version, num, target,
                                   options_.minimum_server_version / 10000),
                       "upgrade the server first; nothing was changed");
    return "PostgreSQL " + r_.server_version + " at " + url.Describe();
  });
}

void RunnerBase::PrepareSource(const pg::Url& source, const std::string& target) {
  r_.target = source.Describe();  // until it says more
  ConnectPhase(source, target);
  if (options_.in_place) {
    url_ = source;
    r_.target = source.Describe() + " (in place: this database is migrated)";
    spdlog::warn("verify --in-place: migrating {} itself", source.Describe());
    return;
  }
  if (options_.into_embedded) {
    Phase("start embedded PostgreSQL", [&] {
      pg::ClusterOptions co;
      co.bin_dir = options_.pg_bindir;
      cluster_ = pg::EmbeddedCluster::Start(co);
      return fmt::format("PostgreSQL {} on a private socket", cluster_->server_version());
    });
    Phase("check the source's extensions", [&] { return RequireExtensions(source); });
    Phase("copy the database into the embedded cluster", [&] {
      double s = cluster_->CopyDatabaseFrom(source, "mh_verify_copy",
                                            options_.migrator.lock_timeout_seconds);
      url_ = cluster_->UrlFor("mh_verify_copy");
      return fmt::format("pg_dump, then pg_restore, in {:.1f}s; the source was only read", s);
    });
    r_.target = source.Describe() + " copied into the embedded cluster";
    return;
  }
  Phase("clone the database on its server", [&] {
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
                              " into a scratch database: other sessions are connected to it (" +
                              sessions + ")",
                          hint);
    try {
      db_ = std::make_unique<pg::DisposableDatabase>(admin, source.dbname(), "mh_verify");
    } catch (const Error& e) {
      if (e.code() == ExitCode::kInterrupted) throw;
      throw DatabaseError(
          std::string("cannot clone ") + source.Describe() + " into a scratch database: " +
              e.what(),
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
std::string RunnerBase::OtherSessions(const pg::Url& admin, const std::string& dbname) {
  pg::Connection conn(admin, "migration-harness verify");
  std::string out;
  for (int attempt = 0; attempt < 20; ++attempt) {
    if (attempt) {
      pg::ThrowIfInterrupted("waiting for closing sessions on " + dbname);
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
                         r[1].c_str(), r[2].c_str());
    if (out.empty()) break;
  }
  return out;
}

// pg_restore of a database that uses an extension the embedded server
// lacks (pgvector, say) fails half way: refused before anything is copied.
std::string RunnerBase::RequireExtensions(const pg::Url& source) {
  std::vector<std::pair<std::string, std::string>> used;  // name, version
  {
    pg::Connection conn(source);
    pqxx::read_transaction tx(conn.raw());
    for (const auto& r :
         tx.exec("SELECT extname, extversion FROM pg_catalog.pg_extension ORDER BY 1"))
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
    throw UsageError(
        fmt::format("{} uses the extension(s) {}, which the embedded PostgreSQL {} does not "
                    "have; a copy could not be restored there",
                    source.Describe(), missing, cluster_->server_version()),
        "rehearse on the source's own server instead: leave out --into-embedded (verify then "
        "clones the database there; needs CREATEDB), or --in-place on a restored copy; "
        "nothing was copied");
  std::string names;
  for (const auto& [name, version] : used)
    names += fmt::format("{}{} {}", names.empty() ? "" : ", ", name, version);
  return fmt::format("{} available here", names.empty() ? "no extensions," : names + ":");
}

engine::Migrator RunnerBase::MakeMigrator(pg::Connection& conn) {
  return engine::Migrator(conn, graph_, options_.migrator);
}

// For runs the report sums up in a line (setup, the idempotent re-run,
// the final upgrade, the forecast's measurement): their steps and the
// server's notices go to the debug log (-v), not the terminal.
engine::Migrator RunnerBase::QuietMigrator(pg::Connection& conn) {
  engine::MigratorOptions quiet = options_.migrator;
  quiet.log_steps = false;
  return engine::Migrator(conn, graph_, quiet);
}

engine::MigratorOptions RunnerBase::QuietOptions() const {
  engine::MigratorOptions quiet = options_.migrator;
  quiet.log_steps = false;
  return quiet;
}

// Where an empty database can be made next to the rehearsal's: the
// embedded cluster, or the source's server where a scratch clone was
// made already (needs CREATEDB). Never in place: that server is not ours
// to add databases to.
std::optional<pg::Url> RunnerBase::AdminUrl() const {
  if (cluster_) return cluster_->AdminUrl();
  if (options_.source && !options_.in_place) return options_.source->WithDatabase("postgres");
  return std::nullopt;
}

}  // namespace harness::verify
