#include "harness/pg/connection.h"

#include <cstdlib>

#include <spdlog/spdlog.h>

namespace harness::pg {

namespace {
// What libpq is given: the URL as written, plus connect_timeout when neither
// the URL nor $PGCONNECT_TIMEOUT sets one (libpq's default is to wait
// forever on a host that drops packets). Never shown: messages describe
// the URL.
std::string ConnectString(const Url& url) {
  const char* env = std::getenv("PGCONNECT_TIMEOUT");
  if (url.has("connect_timeout") || (env && *env)) return url.text();
  return url.ConnInfo({{"connect_timeout", std::to_string(kDefaultConnectTimeoutSeconds)}});
}

std::string Trim(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s;
}
}  // namespace

class Connection::NoticeForwarder : public pqxx::errorhandler {
 public:
  explicit NoticeForwarder(pqxx::connection_base& c) : pqxx::errorhandler(c) {}
  bool quiet = false;
  bool operator()(const char msg[]) noexcept override {
    try {
      std::string text = Trim(msg);
      if (text.rfind("WARNING:", 0) == 0)
        spdlog::warn("{}", text);
      else if (text.rfind("NOTICE:", 0) == 0 || text.rfind("INFO:", 0) == 0)
        spdlog::log(quiet ? spdlog::level::debug : spdlog::level::info, "{}", text);
      else
        spdlog::debug("{}", text);
    } catch (...) {
    }
    return false;  // handled: do not print to stderr as well
  }
};

void Connection::set_quiet_notices(bool quiet) noexcept { notices_->quiet = quiet; }

Connection::Connection(const Url& url, const std::string& application_name) : url_(url) {
  try {
    conn_ = std::make_unique<pqxx::connection>(ConnectString(url));
  } catch (const pqxx::broken_connection& e) {
    throw DatabaseError(
        "cannot connect to " + url.Describe() + ": " + Trim(Redact(e.what(), url)),
        "check that the server is running and reachable and that the URL (host, port, "
        "database, user, password) is right");
  } catch (const pqxx::sql_error& e) {
    throw DatabaseError("cannot connect to " + url.Describe() + ": " + Trim(Redact(e.what(), url)),
                        "check the database name and the user's rights");
  }
  notices_ = std::make_unique<NoticeForwarder>(*conn_);
  pqxx::nontransaction tx(*conn_);
  tx.exec("SET application_name = " + tx.quote(application_name));
}

Connection::~Connection() {
  notices_.reset();
  conn_.reset();
}

void Connection::Cancel() noexcept {
  try {
    conn_->cancel_query();
  } catch (...) {
  }
}

Error FromSqlError(const pqxx::sql_error& e, const std::string& where) {
  const std::string state = e.sqlstate();
  std::string what = Trim(e.what());
  // libpq prefixes "ERROR:  "; the detail and hint follow on their own lines.
  if (what.rfind("ERROR:", 0) == 0) what = Trim(what.substr(6));
  while (!what.empty() && what.front() == ' ') what.erase(0, 1);
  std::string hint;
  if (auto pos = what.find("\nHINT:"); pos != std::string::npos) {
    hint = Trim(what.substr(pos + 6));
    while (!hint.empty() && hint.front() == ' ') hint.erase(0, 1);
    what = what.substr(0, pos);
  }
  for (auto& c : what)
    if (c == '\n') c = ' ';
  std::string message = where + ": " + what + " (SQLSTATE " + state + ")";
  if (state.rfind("MHR", 0) == 0) return RefusedError(message, hint);
  if (state.rfind("MHP", 0) == 0) return UsageError(message, hint);
  // The migration's own validation found the result wrong: a check failed.
  if (state.rfind("MHV", 0) == 0) return RefusedError(message, hint);
  if (state == "55P03" && hint.empty())
    hint = "another session holds a lock; retry when it is gone, or raise --lock-timeout";
  return DatabaseError(message, hint);
}

pqxx::row ExecOne(pqxx::transaction_base& tx, const std::string& sql, const std::string& what) {
  pqxx::result r = tx.exec(sql, what);
  if (r.size() != 1)
    throw DatabaseError(what + ": expected one row, got " + std::to_string(r.size()));
  return r[0];
}

}  // namespace harness::pg
