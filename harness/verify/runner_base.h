// What both rehearsals (rehearsal.h: 002 on the code-search data; range.h:
// any revision) share: timed phases, a failure recorded into the partial
// report, the server a source lives on, and the place they rehearse on (an
// embedded cluster, a scratch clone of the source on its own server, a
// copy into the embedded cluster, or the source itself when asked).
#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <string>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "harness/engine/migrator.h"
#include "harness/engine/revision_graph.h"
#include "harness/error.h"
#include "harness/pg/cluster.h"
#include "harness/pg/connection.h"
#include "harness/pg/disposable_database.h"
#include "harness/pg/interrupt.h"
#include "harness/verify/rehearsal.h"

namespace harness::verify {

class RunnerBase {
 public:
  virtual ~RunnerBase() = default;

  // PrepareTarget, then Rehearse. Throws harness::Error for bad input (2),
  // database errors (3) and interrupts (130); `partial` (if given) then
  // receives the rehearsal so far, with the failed phase and a verdict
  // carrying the error's code.
  Rehearsal Go(Rehearsal* partial);

 protected:
  RunnerBase(const VerifyOptions& o, const engine::RevisionGraph& g) : options_(o), graph_(g) {}

  virtual void PrepareTarget() = 0;
  virtual void Rehearse() = 0;

  // Times `fn`, records the phase; `fn` returns its detail line.
  template <typename Fn>
  void Phase(const std::string& name, Fn&& fn, bool status_line = true) {
    pg::ThrowIfInterrupted(name);
    spdlog::info("verify: {}...", name);
    struct StatusGuard {
      const VerifyOptions& o;
      bool on;
      ~StatusGuard() {
        if (on && o.on_phase_end) o.on_phase_end();
      }
    } guard{options_, status_line && options_.on_phase_start != nullptr};
    if (guard.on) options_.on_phase_start(name);
    running_ = name;
    auto t0 = std::chrono::steady_clock::now();
    std::string detail = fn();
    running_.clear();
    double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    r_.phases.push_back({name, s, true, detail});
    spdlog::info("verify: {}: {} ({:.3f}s)", name, detail, s);
  }
  void FailPhase(const std::string& name, const std::string& detail);
  std::string Running() const { return running_.empty() ? "the rehearsal" : running_; }
  void Verdict(bool ready, int code, const std::string& line);

  // Starts the embedded cluster (--pg-bindir), as a phase.
  void StartEmbedded();
  // The server `url` lives on, read before anything is cloned or copied;
  // older than options_.minimum_server_version is refused (`target` names
  // what needs it).
  void ConnectPhase(const pg::Url& url, const std::string& target);
  // Where the rehearsal runs for a source database: in place, a copy into
  // the embedded cluster, or a scratch clone on its own server (url_,
  // r_.target).
  void PrepareSource(const pg::Url& source, const std::string& target);
  // Where an empty database can be made next to the rehearsal's: the
  // embedded cluster, or the source's server where a scratch clone was
  // made already (needs CREATEDB). Never in place: that server is not ours
  // to add databases to.
  std::optional<pg::Url> AdminUrl() const;

  engine::Migrator MakeMigrator(pg::Connection& conn);
  // For runs the report sums up in a line (setup, the idempotent re-run,
  // the final upgrade, the forecast's measurement): their steps and the
  // server's notices go to the debug log (-v), not the terminal.
  engine::Migrator QuietMigrator(pg::Connection& conn);
  engine::MigratorOptions QuietOptions() const;

  const VerifyOptions& options_;
  const engine::RevisionGraph& graph_;
  Rehearsal r_;
  std::unique_ptr<pg::EmbeddedCluster> cluster_;
  std::unique_ptr<pg::DisposableDatabase> db_;  // declared after cluster_: dropped first
  std::optional<pg::Url> url_;

 private:
  void Record(const Error& e, Rehearsal* partial);
  static std::string OtherSessions(const pg::Url& admin, const std::string& dbname);
  std::string RequireExtensions(const pg::Url& source);

  std::string running_;  // the phase under way, for the report of a failure
};

}  // namespace harness::verify
