#include "harness/pg/connection.h"

#include <cmath>
#include <cstdlib>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

namespace harness::pg {

std::string ConnectString(const Url& url) {
  const char* env = std::getenv("PGCONNECT_TIMEOUT");
  if (url.has("connect_timeout") || (env && *env)) return url.text();
  return url.ConnInfo({{"connect_timeout", std::to_string(kDefaultConnectTimeoutSeconds)}});
}

namespace {

// Objects in a schema on the tool's search_path (other than pg_catalog)
// that carry the name of a pg_catalog function, aggregate or operator and
// belong to a role that is not a superuser. An overload with a closer
// argument type wins over pg_catalog's, whatever the order of the path
// (char_length(varchar) over char_length(text), say), so such an object
// would run its owner's code with the tool's rights, usually a superuser's.
// Membership in an extension proves nothing (the owner of a trusted
// extension may add its own objects to it); an extension installed by a
// superuser owns its objects through a superuser, and is not counted.
constexpr const char* kShadowingObjects = R"SQL(
WITH candidates AS (
  SELECT p.pronamespace AS nsp, p.proowner AS owner,
         'pg_catalog.pg_proc'::pg_catalog.regclass AS classid, p.oid AS objid,
         CASE p.prokind WHEN 'a' THEN 'aggregate' WHEN 'p' THEN 'procedure' ELSE 'function' END
           AS kind,
         pg_catalog.format('%I.%I(%s)', n.nspname, p.proname,
                           pg_catalog.pg_get_function_identity_arguments(p.oid)) AS what
  FROM pg_catalog.pg_proc p
  JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace
  WHERE EXISTS (SELECT 1 FROM pg_catalog.pg_proc q
                WHERE q.pronamespace = 'pg_catalog'::pg_catalog.regnamespace
                  AND q.proname = p.proname)
  UNION ALL
  SELECT o.oprnamespace, o.oprowner, 'pg_catalog.pg_operator'::pg_catalog.regclass, o.oid,
         'operator',
         pg_catalog.format('%I.%s(%s, %s)', n.nspname, o.oprname,
                           coalesce(pg_catalog.format_type(o.oprleft, NULL), 'NONE'),
                           coalesce(pg_catalog.format_type(o.oprright, NULL), 'NONE'))
  FROM pg_catalog.pg_operator o
  JOIN pg_catalog.pg_namespace n ON n.oid = o.oprnamespace
  WHERE EXISTS (SELECT 1 FROM pg_catalog.pg_operator q
                WHERE q.oprnamespace = 'pg_catalog'::pg_catalog.regnamespace
                  AND q.oprname = o.oprname)
)
SELECT c.kind, c.what, r.rolname AS owner,
       pg_catalog.format('DROP %s %s;', pg_catalog.upper(c.kind), c.what) AS fix
FROM candidates c
JOIN pg_catalog.pg_namespace n ON n.oid = c.nsp
JOIN pg_catalog.pg_roles r ON r.oid = c.owner
WHERE c.nsp <> 'pg_catalog'::pg_catalog.regnamespace
  AND n.nspname = ANY (pg_catalog.current_schemas(false))
  AND NOT r.rolsuper
ORDER BY c.what
)SQL";

// Code that runs when the tool writes a table: trigger and rule functions,
// and functions in CHECKs, defaults and index expressions of the tables the
// tool writes (alembic_version, the core tables its migrations update). A
// SECURITY INVOKER function owned by a role that is not a superuser runs
// that role's code with the tool's rights. (A SECURITY DEFINER function
// runs as its owner: no escalation.)
constexpr const char* kUntrustedTableCode = R"SQL(
WITH written AS (
  SELECT c.oid FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
  WHERE CASE WHEN pg_catalog.cardinality($1::pg_catalog.text[]) = 0
             -- every table of every user schema
             THEN n.nspname <> 'information_schema' AND pg_catalog.left(n.nspname, 3) <> 'pg_'
             ELSE n.nspname = 'public' AND c.relname = ANY ($1::pg_catalog.text[]) END
), parts AS (
  SELECT 'pg_catalog.pg_trigger'::pg_catalog.regclass AS classid, t.oid AS objid
    FROM pg_catalog.pg_trigger t WHERE t.tgrelid IN (SELECT oid FROM written)
  UNION ALL SELECT 'pg_catalog.pg_rewrite'::pg_catalog.regclass, w.oid
    FROM pg_catalog.pg_rewrite w WHERE w.ev_class IN (SELECT oid FROM written)
  UNION ALL SELECT 'pg_catalog.pg_constraint'::pg_catalog.regclass, k.oid
    FROM pg_catalog.pg_constraint k WHERE k.conrelid IN (SELECT oid FROM written)
  UNION ALL SELECT 'pg_catalog.pg_attrdef'::pg_catalog.regclass, a.oid
    FROM pg_catalog.pg_attrdef a WHERE a.adrelid IN (SELECT oid FROM written)
  UNION ALL SELECT 'pg_catalog.pg_class'::pg_catalog.regclass, x.indexrelid
    FROM pg_catalog.pg_index x WHERE x.indrelid IN (SELECT oid FROM written)
  UNION ALL SELECT 'pg_catalog.pg_policy'::pg_catalog.regclass, y.oid
    FROM pg_catalog.pg_policy y WHERE y.polrelid IN (SELECT oid FROM written)
)
SELECT pg_catalog.pg_describe_object(d.classid, d.objid, d.objsubid) AS used_by,
       p.oid::pg_catalog.regprocedure::text AS what, r.rolname AS owner
FROM parts o
JOIN pg_catalog.pg_depend d ON d.classid = o.classid AND d.objid = o.objid
JOIN pg_catalog.pg_proc p ON d.refclassid = 'pg_catalog.pg_proc'::pg_catalog.regclass
                         AND p.oid = d.refobjid
JOIN pg_catalog.pg_roles r ON r.oid = p.proowner
WHERE NOT r.rolsuper AND NOT p.prosecdef
ORDER BY 1, 2
)SQL";

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
  // Names resolve in pg_catalog first (implicitly), then in the schema the
  // migrations own; never in "$user", a schema any role with CREATE on the
  // database can make under the name of the tool's user (CVE-2018-1058's
  // pattern).
  tx.exec(kSearchPath);
  RefuseUntrustedCode(tx, url);
}

void RefuseUntrustedCode(pqxx::transaction_base& tx, const Url& url, const std::vector<std::string>& written) {
  pqxx::result r = tx.exec(kShadowingObjects, "looking for objects that shadow pg_catalog");
  if (!r.empty()) {
    std::string found, fix;
    for (const auto& row : r) {
      found += fmt::format("{}{} {} (owner {})", found.empty() ? "" : ", ", row["kind"].c_str(),
                           row["what"].c_str(), row["owner"].c_str());
      fix += fmt::format("{}{}", fix.empty() ? "" : " ", row["fix"].c_str());
    }
    throw UsageError(
        fmt::format("{} has {} object(s) named like a built-in of pg_catalog, owned by a role "
                    "that is not a superuser: {}; a statement of the tool or of a migration "
                    "could call it with the tool's rights, so nothing was run",
                    url.Describe(), r.size(), found),
        "if you did not create them, treat this as an attack on the database: drop them (" +
            fix + ") and revoke CREATE on the schema from roles that should not have it; if "
                  "they are yours and safe, make a superuser their owner");
  }
  std::vector<std::string> tables = {"alembic_version", "migration_harness_progress"};
  tables.insert(tables.end(), written.begin(), written.end());
  RefuseUntrustedTableCode(tx, url, tables);
}

void RefuseUntrustedTableCode(pqxx::transaction_base& tx, const Url& url,
                              const std::vector<std::string>& tables) {
  std::string names = "{";
  for (const auto& t : tables) {  // an array literal: each name quoted, \ and " escaped
    names += names.size() > 1 ? ",\"" : "\"";
    for (char c : t) {
      if (c == '"' || c == '\\') names += '\\';
      names += c;
    }
    names += '"';
  }
  names += "}";
  pqxx::result r = tx.exec_params(kUntrustedTableCode, names);
  if (!r.empty()) {
    std::string found;
    for (const auto& row : r)
      found += fmt::format("{}{} runs {} (owner {})", found.empty() ? "" : ", ",
                           row["used_by"].c_str(), row["what"].c_str(), row["owner"].c_str());
    throw UsageError(
        fmt::format("{}: tables the tool writes run functions owned by a role that is not a "
                    "superuser, which would run with the tool's rights: {}; nothing was run",
                    url.Describe(), found),
        "if you did not create them, treat this as an attack on the database and drop them; if "
        "they are yours, make each function SECURITY DEFINER (it then runs with its owner's "
        "rights) or give it a superuser owner");
  }
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

std::string PgDuration(double seconds) {
  long long ms = std::llround(seconds * 1000.0);
  if (seconds > 0 && ms == 0) ms = 1;
  return fmt::format("{}ms", ms);
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
  // The server's own lines (DETAIL, CONTEXT, the statement's LINE and its
  // caret) joined into one; a line break inside a value it quotes stays, for
  // the rule for untrusted text to show.
  for (const char* field : {"\nDETAIL:", "\nCONTEXT:", "\nLINE ", "\nQUERY:", "\nSTATEMENT:", "\n"}) {
    const std::string f = field;
    const bool caret_line = f == "\n";
    for (size_t at = what.find(f); at != std::string::npos; at = what.find(f, at + 1)) {
      // The line under LINE n: that holds only spaces and a caret.
      if (caret_line) {
        const size_t end = what.find('\n', at + 1);
        const std::string line = what.substr(at + 1, end == std::string::npos ? std::string::npos : end - at - 1);
        if (line.find_first_not_of(" ^") != std::string::npos || line.find('^') == std::string::npos) continue;
      }
      what[at] = ' ';
    }
  }
  std::string message = where + ": " + what + (state.empty() ? "" : " (SQLSTATE " + state + ")");
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
