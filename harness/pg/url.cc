#include "harness/pg/url.h"

#include <libpq-fe.h>
#include <pqxx/pqxx>

#include <memory>

#include "harness/error.h"

namespace harness::pg {

Url Url::Parse(const std::string& text) {
  if (text.empty())
    throw UsageError("no database URL given",
                     "pass --database-url postgresql://USER@HOST:PORT/DB or set DATABASE_URL");
  char* err = nullptr;
  PQconninfoOption* opts = PQconninfoParse(text.c_str(), &err);
  if (opts == nullptr) {
    std::string msg = err ? err : "out of memory";
    if (err) PQfreemem(err);
    while (!msg.empty() && (msg.back() == '\n' || msg.back() == ' ')) msg.pop_back();
    throw UsageError("malformed database URL: " + msg,
                     "use the form postgresql://USER[:PASSWORD]@HOST[:PORT]/DBNAME");
  }
  std::unique_ptr<PQconninfoOption, decltype(&PQconninfoFree)> guard(opts, &PQconninfoFree);
  Url url;
  url.text_ = text;
  for (PQconninfoOption* o = opts; o->keyword != nullptr; ++o)
    if (o->val != nullptr && *o->val != '\0') url.options_[o->keyword] = o->val;
  // libpq checks the port only when connecting; a typo there is bad input.
  const std::string port = url.Get("port");
  if (port.find_first_not_of("0123456789,") != std::string::npos)
    throw UsageError("malformed database URL: port '" + port + "' is not a number",
                     "use the form postgresql://USER[:PASSWORD]@HOST[:PORT]/DBNAME");
  return url;
}

std::string Url::Get(const std::string& key) const {
  auto it = options_.find(key);
  return it == options_.end() ? std::string() : it->second;
}

std::string Url::host() const {
  std::string h = Get("host");
  if (h.empty()) h = Get("hostaddr");
  return h.empty() ? "localhost" : h;
}
std::string Url::port() const {
  std::string p = Get("port");
  return p.empty() ? "5432" : p;
}
std::string Url::user() const { return Get("user"); }
std::string Url::dbname() const {
  std::string d = Get("dbname");
  return d.empty() ? user() : d;
}

std::string Url::Describe() const {
  std::string out = host() + ":" + port() + "/" + dbname();
  if (!user().empty()) out += " as " + user();
  return out;
}

namespace {
void AddSetting(std::string& conninfo, const std::string& key, const std::string& value) {
  std::string quoted;
  for (char c : value) {
    if (c == '\\' || c == '\'') quoted += '\\';
    quoted += c;
  }
  if (!conninfo.empty()) conninfo += ' ';
  conninfo += key + "='" + quoted + "'";
}
}  // namespace

std::string Url::ConnInfo(const std::map<std::string, std::string>& defaults,
                          bool with_password) const {
  std::string conninfo;
  for (const auto& [k, v] : options_)
    if (with_password || k != "password") AddSetting(conninfo, k, v);
  for (const auto& [k, v] : defaults)
    if (!has(k) && (with_password || k != "password")) AddSetting(conninfo, k, v);
  return conninfo;
}

Url Url::WithDatabase(const std::string& dbname) const {
  // Rebuild as a keyword/value string: libpq accepts it everywhere a URL goes.
  std::string conninfo;
  for (const auto& [k, v] : options_)
    if (k != "dbname") AddSetting(conninfo, k, v);
  AddSetting(conninfo, "dbname", dbname);
  return Parse(conninfo);
}

std::string Redact(const std::string& text, const Url& url) {
  std::string out = text;
  std::string password = url.password();
  if (password.empty()) return out;
  for (size_t pos; (pos = out.find(password)) != std::string::npos;)
    out.replace(pos, password.size(), "****");
  return out;
}

}  // namespace harness::pg
