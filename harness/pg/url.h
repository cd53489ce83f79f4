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
