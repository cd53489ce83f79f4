// Where a rehearsal runs: a database of an embedded cluster it starts, a
// scratch clone of the source on the source's own server (dropped at the
// end, also after a failure or Ctrl-C), a copy of the source into an
// embedded cluster, or the source itself when asked (--in-place). Each
// step of getting there is a phase of the rehearsal.
#pragma once

#include <map>
#include <memory>
#include <optional>
#include <string>

#include "harness/pg/cluster.h"
#include "harness/pg/disposable_database.h"
#include "harness/pg/url.h"
#include "harness/verify/phases.h"

namespace harness::verify {

struct VerifyOptions;

class Place {
 public:
  Place(const VerifyOptions& options, Phases& phases, report::Rehearsal& r)
      : options_(options), phases_(phases), r_(r) {}

  // Starts the embedded cluster (--pg-bindir, with `settings`), as a phase.
  void StartEmbedded(const std::map<std::string, std::string>& settings);
  // A new empty database on the embedded cluster (from template0).
  void NewEmbeddedDatabase();
  // The server `url` lives on, read before anything is cloned or copied;
  // older than options.minimum_server_version is refused (`target` names
  // what needs it).
  void ConnectPhase(const pg::Url& url, const std::string& target);
  // Where the rehearsal runs for a source database: in place, a copy into
  // the embedded cluster (started with `settings`), or a scratch clone on
  // its own server.
  void PrepareSource(const pg::Url& source, const std::string& target,
                     const std::map<std::string, std::string>& settings);
  // Where an empty database can be made next to the rehearsal's: the
  // embedded cluster, or the source's server where a scratch clone was
  // made already (needs CREATEDB). Never in place: that server is not ours
  // to add databases to.
  std::optional<pg::Url> AdminUrl() const;

  const pg::Url& url() const { return *url_; }
  const pg::EmbeddedCluster* cluster() const { return cluster_.get(); }

 private:
  static std::string OtherSessions(const pg::Url& admin, const std::string& dbname);
  std::string RequireExtensions(const pg::Url& source);

  const VerifyOptions& options_;
  Phases& phases_;
  report::Rehearsal& r_;
  std::unique_ptr<pg::EmbeddedCluster> cluster_;
  std::unique_ptr<pg::DisposableDatabase> db_;  // declared after cluster_: dropped first
  std::optional<pg::Url> url_;
};

}  // namespace harness::verify
