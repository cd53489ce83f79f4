// Database URLs: validated with libpq's own parser, described without the
// password, and rewritten to point at another database on the same server.
// No message built here shows a password, also for a malformed URL: the
// text is shown with "****" for anything that may be one, never libpq's
// parse error (which quotes the input).
#pragma once

#include <map>
#include <string>

namespace harness::pg {

class Url {
 public:
  // Throws UsageError when `text` is empty or libpq cannot parse it, and
  // for a URL libpq accepts but misreads: an '@' after the user information
  // (a password holding a raw '@' or '/') or a port that is not a number.
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
  // Every setting the URL makes, as libpq keywords (the password too).
  const std::map<std::string, std::string>& Options() const { return options_; }
  // The same settings as a keyword/value connection string (libpq takes it
  // wherever a URL goes), with `defaults` added for keys the URL does not
  // set. Without password and sslpassword when `with_password` is false:
  // for a child process's command line, which any user can read (hand the
  // password over in the child's PGPASSWORD instead; libpq has no
  // environment variable for sslpassword).
  std::string ConnInfo(const std::map<std::string, std::string>& defaults = {},
                       bool with_password = true) const;
  // The same connection settings with another database name.
  Url WithDatabase(const std::string& dbname) const;

 private:
  friend std::string Redact(const std::string& text, const Url& url);
  std::string Get(const std::string& key) const;
  std::string text_;
  std::map<std::string, std::string> options_;
};

// Replaces the URL's password and sslpassword (as libpq uses them, and as
// written in the URL, percent-encoded) with "****" in a libpq error message
// or other text from a connection attempt.
std::string Redact(const std::string& text, const Url& url);

}  // namespace harness::pg
