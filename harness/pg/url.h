// Database URLs: validated with libpq's own parser, described without the
// password, and rewritten to point at another database on the same server.
#pragma once

#include <map>
#include <string>

namespace harness::pg {

class Url {
 public:
  // Throws UsageError when `text` is empty or libpq cannot parse it.
  static Url Parse(const std::string& text);

  const std::string& text() const { return text_; }
  // "host:port/dbname as user", never the password.
  std::string Describe() const;
  std::string host() const;  // socket directory or host name; "localhost" when unset
  std::string port() const;  // "5432" when unset
  std::string dbname() const;
  std::string user() const;
  std::string password() const { return Get("password"); }
  // Whether the URL sets `key` (a libpq keyword such as "connect_timeout").
  bool has(const std::string& key) const { return options_.count(key) != 0; }
  // The same settings as a keyword/value connection string (libpq takes it
  // wherever a URL goes), with `defaults` added for keys the URL does not
  // set. Without the password when `with_password` is false: for a child
  // process's command line, which any user can read (hand the password over
  // in the child's PGPASSWORD instead).
  std::string ConnInfo(const std::map<std::string, std::string>& defaults = {},
                       bool with_password = true) const;
  // The same connection settings with another database name.
  Url WithDatabase(const std::string& dbname) const;

 private:
  std::string Get(const std::string& key) const;
  std::string text_;
  std::map<std::string, std::string> options_;
};

// Removes any password from a libpq error message or URL-bearing text.
std::string Redact(const std::string& text, const Url& url);

}  // namespace harness::pg
