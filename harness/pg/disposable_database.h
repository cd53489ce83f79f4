// A database that exists for one test or one rehearsal: cloned from a
// template with CREATE DATABASE ... TEMPLATE, dropped when the object dies,
// unless asked to keep it (then its URL is printed so a person can look).
#pragma once

#include <string>
#include <vector>

#include "harness/pg/url.h"

namespace harness::pg {

class DisposableDatabase {
 public:
  // `admin` is a URL on the same server with the right to create databases.
  // An empty template clones template0's default (an empty database).
  DisposableDatabase(const Url& admin, const std::string& template_name,
                     const std::string& name_prefix = "mh_test");
  ~DisposableDatabase();
  DisposableDatabase(const DisposableDatabase&) = delete;
  DisposableDatabase& operator=(const DisposableDatabase&) = delete;

  const Url& url() const { return url_; }
  const std::string& name() const { return name_; }
  // Seconds CREATE DATABASE took.
  double clone_seconds() const { return clone_seconds_; }
  void set_keep(bool keep) { keep_ = keep; }

 private:
  Url admin_;
  Url url_;
  std::string name_;
  bool keep_ = false;
  double clone_seconds_ = 0;
};

// Drops a database, first ending any sessions left on it. Never throws when
// `quiet`; returns false when the drop failed.
bool DropDatabase(const Url& admin, const std::string& name, bool quiet = true);

// This host as UniqueDatabaseName writes it: 8 hex digits of a hash of
// its name.
std::string ScratchHostTag();

// A name no other process will pick, which also says who made it:
// prefix, host, pid, the process's start time (clock ticks since boot),
// counter, random suffix (mh_verify_5be2a1c0_4242_918273_0_9f3a0c1e).
std::string UniqueDatabaseName(const std::string& prefix);

// Drops the databases named by UniqueDatabaseName(prefix) or
// UniqueDatabaseName(prefix + "_word") that this role owns, that were made
// on this host, and whose process is gone (killed before it could drop
// them); logs each and returns their names. Leaves alone any other
// user's, another host's, and one with a session on it.
std::vector<std::string> ReapAbandonedDatabases(const Url& admin, const std::string& prefix);

}  // namespace harness::pg
