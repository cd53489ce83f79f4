#include "harness/verify/chain_checks.h"

#include <map>
#include <set>

#include <fmt/format.h>
#include <pqxx/pqxx>

#include "harness/error.h"
#include "harness/inspect/catalog.h"
#include "harness/join.h"
#include "harness/pg/connection.h"
#include "harness/pg/interrupt.h"
#include "harness/sys/untrusted_text.h"
#include "harness/verify/effects.h"

namespace harness::verify {

namespace {

using checks::Status;

Contents Read(pg::Connection& conn) {
  pqxx::read_transaction tx(conn.raw());
  return ReadContents(tx);
}

}  // namespace

checks::SuiteResult CheckChain(const std::vector<ChainRevision>& chain, RevisionSource* linear,
                               const pg::Url& empty_db) {
  checks::SuiteResult s{"chain", {}};
  std::set<std::string> ids, parents;
  for (const auto& r : chain) ids.insert(r.id);
  for (const auto& r : chain) parents.insert(r.parents.begin(), r.parents.end());
  std::vector<std::string> heads;
  for (const auto& r : chain)
    if (!parents.count(r.id)) heads.push_back(r.id);
  s.checks.push_back({"chain.single_head", heads.size() == 1 ? Status::kPass : Status::kFail,
                      heads.size() == 1 ? "One head: " + heads.front()
                                        : fmt::format("One head: {} heads ({})", heads.size(), Join(heads))});
  // Reachable: from base, through the revisions whose parents are all reached.
  std::set<std::string> reached;
  for (bool grew = true; grew;) {
    grew = false;
    for (const auto& r : chain) {
      if (reached.count(r.id)) continue;
      bool ready = true;
      for (const auto& p : r.parents) ready &= reached.count(p) > 0;
      if (ready) grew = reached.insert(r.id).second || grew;
    }
  }
  std::vector<std::string> unreached;
  for (const auto& r : chain)
    if (!reached.count(r.id)) {
      std::vector<std::string> missing;
      for (const auto& p : r.parents)
        if (!ids.count(p)) missing.push_back(p);
      unreached.push_back(missing.empty() ? r.id + " (in a cycle)"
                                          : r.id + " (its down_revision " + Join(missing) + " is no revision)");
    }
  s.checks.push_back({"chain.reachable", unreached.empty() ? Status::kPass : Status::kFail,
                      unreached.empty() ? fmt::format("Every revision is reachable from base ({})", chain.size())
                                        : "Every revision is reachable from base: not " + Join(unreached)});
  for (const auto& r : chain) {
    const bool ok = r.downgrade_code == "body";
    const std::string why = r.downgrade_code == "pass"     ? "its body does nothing (pass)"
                            : r.downgrade_code == "raises" ? "it only raises"
                            : r.downgrade_code == "missing" ? "there is none"
                                                            : "it cannot be read";
    s.checks.push_back({"chain.downgrade_code." + r.id, ok ? Status::kPass : Status::kFail,
                        ok ? fmt::format("{}: downgrade written ({})", r.id, r.file)
                           : fmt::format("{}: downgrade written: {} ({})", r.id, why, r.file)});
  }
  if (!linear) {
    s.checks.push_back({"chain.stairway", Status::kSkipped,
                        "Stairway (up, down, up of each revision): not run, the chain has no single path to a head"});
    return s;
  }
  // The stairway, on an empty database: each revision up, down, up.
  pg::Connection conn(empty_db);
  pg::CancelOnInterrupt cancel(conn);
  const engine::RevisionGraph& g = linear->graph();
  std::string stopped;
  for (engine::Position p = 1; p <= g.head_position(); ++p) {
    const std::string id = g.at(p).revision;
    const std::string stair = "chain.stairway." + id, effect = "chain.downgrade_effect." + id;
    if (!stopped.empty()) {
      s.checks.push_back({stair, Status::kSkipped, fmt::format("{}: stairway not reached ({})", id, stopped)});
      continue;
    }
    sys::ThrowIfInterrupted("the stairway of " + id);
    const Contents before = Read(conn);
    auto attempt = [&](engine::Direction d, engine::Position to, const char* what) -> bool {
      try {
        linear->Run(conn, d, to, RunMode::kQuiet);
        return true;
      } catch (const engine::RevisionError& e) {
        s.checks.push_back({stair, Status::kFail, fmt::format("{}: up, down, up: the {} failed: {}", id, what,
                                                              sys::ShowUntrusted(e.what(), 300))});
        stopped = id + "'s " + what + " failed";
        return false;
      }
    };
    if (!attempt(engine::Direction::kUpgrade, p, "upgrade")) continue;
    const Contents up = Read(conn);
    if (!attempt(engine::Direction::kDowngrade, p - 1, "downgrade")) continue;
    const Contents down = Read(conn);
    const std::string changed_by_up = Changes(before, up), left_by_down = Changes(before, down);
    if (!changed_by_up.empty() && Changes(up, down).empty())
      s.checks.push_back({effect, Status::kFail,
                          fmt::format("{}: downgrade undoes something: its upgrade changed {}, and it changed nothing",
                                      id, changed_by_up)});
    else
      s.checks.push_back({effect, Status::kPass,
                          changed_by_up.empty() ? fmt::format("{}: downgrade undoes something: its upgrade changed "
                                                              "nothing on an empty database either",
                                                              id)
                                                : fmt::format("{}: downgrade undoes something", id)});
    if (!attempt(engine::Direction::kUpgrade, p, "second upgrade")) continue;
    const std::string second = Changes(up, Read(conn));
    std::vector<std::string> wrong;
    if (!left_by_down.empty()) wrong.push_back("the downgrade left " + left_by_down);
    if (!second.empty()) wrong.push_back("the second upgrade differs from the first by " + second);
    s.checks.push_back({stair, wrong.empty() ? Status::kPass : Status::kFail,
                        wrong.empty() ? fmt::format("{}: up, down, up: the down gave back exactly what was there", id)
                                      : fmt::format("{}: up, down, up: {}", id, Join(wrong))});
  }
  return s;
}

}  // namespace harness::verify
