// A libpqxx connection that forwards server NOTICE/WARNING lines to the log,
// maps connection failures to errors that name the server (never the
// password), and can be cancelled from another thread.
#pragma once

#include <pqxx/pqxx>

#include <memory>
#include <string>
#include <vector>

#include "harness/error.h"
#include "harness/pg/url.h"

namespace harness::pg {

// Seconds a connection attempt may take (per host) when neither the URL's
// connect_timeout nor $PGCONNECT_TIMEOUT says otherwise.
inline constexpr int kDefaultConnectTimeoutSeconds = 10;

// What libpq is given: the URL as written, plus connect_timeout when neither
// the URL nor $PGCONNECT_TIMEOUT sets one (libpq's default is to wait
// forever on a host that drops packets). Holds the password: never shown
// (messages describe the URL).
std::string ConnectString(const Url& url);

class Connection {
 public:
  // Throws DatabaseError (exit 3) naming host and port when the server
  // cannot be reached, also when it does not answer within
  // kDefaultConnectTimeoutSeconds.
  explicit Connection(const Url& url, const std::string& application_name = "migration-harness");
  ~Connection();
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  pqxx::connection& raw() { return *conn_; }
  const Url& url() const { return url_; }
  int backend_pid() const { return conn_->backendpid(); }
  // Asks the server to cancel the running statement; safe from another thread.
  void Cancel() noexcept;
  // The server's NOTICE and INFO lines go to the log at info level, or at
  // debug level while quiet (work the user is not watching); WARNING
  // lines always at warning level.
  void set_quiet_notices(bool quiet) noexcept;

 private:
  class NoticeForwarder;
  Url url_;
  std::unique_ptr<pqxx::connection> conn_;
  std::unique_ptr<NoticeForwarder> notices_;
};

// The search_path of every connection of the tool: the schema the
// migrations build in, and never "$user" (a schema any role with CREATE on
// the database can make under the tool user's name). pg_catalog is searched
// before it all the same (PostgreSQL puts it first when the path does not
// name it: current_schemas(true) is {pg_catalog,public}), so a
// public.lower(text) is never called for pg_catalog's, while an unqualified
// CREATE TABLE items (id bigserial ...) goes to public, as it does in a
// Flyway, Sqitch or `alembic --sql` file. An overload of another argument
// type (public.lower(varchar)) would win under any path:
// RefuseUntrustedCode refuses it.
inline constexpr const char* kSearchPath = "SET search_path = public";

// Refuses (UsageError, exit 2) code that a role other than a superuser
// could have the tool run with its rights: a function, aggregate or
// operator on the search path named like one of pg_catalog's (an overload
// with a closer argument type would win), and a SECURITY INVOKER function
// such a role owns that runs when the tool writes public.alembic_version or
// one of `written` (tables of public; a trigger, rule, CHECK, default or
// index expression). Run by every Connection on connect (alembic_version
// alone), and by the migrator before every step (with the tables the
// revision says it writes: `--! writes:`).
void RefuseUntrustedCode(pqxx::transaction_base& tx, const Url& url,
                         const std::vector<std::string>& written = {});
// The second half alone, for `tables` of public (empty: every table of
// every user schema, for generate).
void RefuseUntrustedTableCode(pqxx::transaction_base& tx, const Url& url,
                              const std::vector<std::string>& tables);

// Turns a server error into a harness error: SQLSTATE class MHR (the
// migration refused the data) and MHV (its own validation failed) are exit
// 1, MHP (a prerequisite is missing) is exit 2, anything else exit 3.
// `where` says what was running.
Error FromSqlError(const pqxx::sql_error& e, const std::string& where);

// A timeout in seconds as a PostgreSQL duration in whole milliseconds
// ("1500ms"), for lock_timeout and pg_dump's --lock-wait-timeout; a positive
// timeout never rounds down to 0 (which means wait forever).
std::string PgDuration(double seconds);

// Runs a query that must return exactly one row; a wrong shape fails loudly.
pqxx::row ExecOne(pqxx::transaction_base& tx, const std::string& sql, const std::string& what);

}  // namespace harness::pg
