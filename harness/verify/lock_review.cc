#include "harness/verify/lock_review.h"

#include <algorithm>
#include <cmath>
#include <set>

#include <fmt/format.h>

#include "harness/engine/sql_statements.h"
#include "harness/inspect/step_probe.h"
#include "harness/join.h"
#include "harness/stats/model_fit.h"

namespace harness::verify {

namespace {

using checks::Status;

constexpr int kShare = 4;            // inspect::LockRank("ShareLock"): writes wait
constexpr int kAccessExclusive = 7;  // reads wait too

// "t5 up 1/1 Widen events.weight"
std::string StepName(const StepEffect& e) {
  return fmt::format("{} up {}/{} {}", e.step.revision, e.step.index, e.step.count, e.step.name);
}

// The steps of each transaction of the deploy, in order.
std::vector<std::vector<size_t>> Transactions(const std::vector<StepEffect>& up, bool one_transaction) {
  std::vector<std::vector<size_t>> groups;
  for (size_t i = 0; i < up.size(); ++i) {
    // A new transaction: another revision (a deploy that commits each), or
    // another phase of an online run (the engine numbers them).
    if (groups.empty() || (!one_transaction && up[i].step.revision != up[i - 1].step.revision) ||
        up[i].step.transaction != up[i - 1].step.transaction)
      groups.emplace_back();
    groups.back().push_back(i);
  }
  return groups;
}

struct Taken {
  std::string mode;
  size_t at = 0;  // the step that took it
};

// A table as a statement names it ("public.events", "events") against a
// TableId key ("events" in public, "audit.entries" elsewhere).
bool SameTable(const std::string& written, const std::string& key) {
  std::string w = written;
  if (w.rfind("public.", 0) == 0) w = w.substr(7);
  return w == key || (w.find('.') == std::string::npos && key.size() > w.size() &&
                      key.compare(key.size() - w.size() - 1, std::string::npos, "." + w) == 0);
}

bool Has(const std::vector<engine::SchemaChange>& changes, const std::string& form, const std::string& table) {
  for (const auto& c : changes)
    if (c.form == form && (table.empty() || SameTable(c.table, table))) return true;
  return false;
}

// "a, b, c, d and 7 more": the first `shown` of them.
std::string Some(const std::vector<std::string>& items, size_t shown = 4) {
  if (items.size() <= shown + 1) return Join(items);
  std::vector<std::string> first(items.begin(), items.begin() + static_cast<long>(shown));
  return fmt::format("{} and {} more", Join(first), items.size() - shown);
}

// The locks in `held` (those that block writes at least, on tables not
// created in the transaction), by mode and the step that took them:
// "AccessExclusiveLock on code_chunks, repositories (since 002 up 1/10 ...)".
std::vector<std::string> LocksHeld(const std::map<std::string, Taken>& held, const std::set<std::string>& created,
                                   const std::vector<StepEffect>& up, int min_rank) {
  std::map<std::pair<std::string, size_t>, std::vector<std::string>> by;
  for (const auto& [table, taken] : held)
    if (inspect::LockRank(taken.mode) >= min_rank && !created.count(table)) by[{taken.mode, taken.at}].push_back(table);
  std::vector<std::string> out;
  for (const auto& [key, tables] : by)
    out.push_back(fmt::format("{} on {} (since {})", key.first, Some(tables), StepName(up[key.second])));
  return out;
}

std::string Rows(long long n) { return fmt::format("{} row{}", n, n == 1 ? "" : "s"); }

// The step's tables its model is sized by (Label()'s): the rewritten, the
// indexed, the updated or the scanned ones.
std::vector<std::string> SizedBy(const inspect::StepActivity& a) {
  if (!a.rewritten.empty()) return a.rewritten;
  if (!a.indexes.empty()) return a.indexed_tables;
  if (!a.updated.empty()) return a.updated;
  return a.scanned;
}

// The step's work time at production size, fitted through its time on an
// empty database (when known) and its times here (`again`: a second run's).
double TimeThen(const StepEffect& e, const std::optional<double>& empty_seconds, const std::optional<double>& again,
                const TableSizes& sizes) {
  const double here = e.step.work_seconds();
  if (!sizes.scaled) return here;
  const auto model = stats::ModelOf(e.activity.Label());
  if (model == stats::StepModel::kConstant) return here;
  double then = here;
  for (const auto& t : SizedBy(e.activity)) {
    const long long rows_here = sizes.Here(t);
    if (rows_here <= 0) continue;
    std::vector<stats::Sample> points;
    if (empty_seconds) points.push_back({0, *empty_seconds});
    points.push_back({static_cast<double>(rows_here), here});
    if (again) points.push_back({static_cast<double>(rows_here), *again});
    const stats::StepFit fit = stats::FitStep(points, model);
    then = std::max(then, stats::ForecastAt(fit, points, static_cast<double>(sizes.Then(t))));
  }
  return then;
}

std::string WhoWaits(const std::string& mode, const std::string& table) {
  return inspect::LockRank(mode) >= kAccessExclusive ? "reads and writes of " + table + " wait for it"
                                                     : "writes to " + table + " wait for it";
}

}  // namespace

long long TableSizes::Here(const std::string& table) const {
  auto it = here.find(table);
  return it == here.end() ? 0 : it->second;
}

long long TableSizes::Then(const std::string& table) const {
  auto it = then.find(table);
  return it == then.end() ? Here(table) : it->second;
}

void ChargeHolds(std::vector<StepEffect>& up, bool one_transaction) {
  for (const auto& group : Transactions(up, one_transaction)) {
    std::map<std::string, Taken> held;
    std::set<std::string> created;
    for (size_t g = 0; g < group.size(); ++g) {
      StepEffect& e = up[group[g]];
      // What earlier steps took and this one works under.
      e.under = Join(LocksHeld(held, created, up, kShare), "; ");
      for (const auto& t : e.activity.created) created.insert(t);
      for (const auto& [table, mode] : e.activity.held)
        if (!held.count(table) || inspect::LockRank(mode) > inspect::LockRank(held[table].mode))
          held[table] = {mode, group[g]};
      // The hold of the lock this step took: its own time, then the later
      // steps', the longest of them named.
      if (e.activity.lock_mode.empty() || g + 1 == group.size()) continue;
      size_t longest = group[g];
      double longest_seconds = e.step.work_seconds();  // from the grant
      for (size_t k = g + 1; k < group.size(); ++k)
        if (up[group[k]].step.seconds > longest_seconds) {
          longest = group[k];
          longest_seconds = up[longest].step.seconds;
        }
      e.hold_parts = longest == group[g]
                         ? fmt::format("{:.3f}s of it this step's own", longest_seconds)
                         : fmt::format("{:.3f}s of it in {}", longest_seconds, StepName(up[longest]));
    }
  }
}

LockReview ReviewLocks(const std::vector<StepEffect>& up, const std::vector<engine::StepTiming>& again,
                       const std::optional<std::vector<engine::StepTiming>>& empty, const TableSizes& sizes,
                       const DeployFacts& deploy, double max_hold) {
  LockReview review;
  auto& lines = review.suite.checks;
  lines.push_back({"lock.sizes", Status::kInfo,
                   fmt::format("Sized at {}; {}", sizes.basis,
                               deploy.online ? "the deploy runs upgrade --online: a lock is held to the end of its "
                                               "phase, each online step's to the end of its statement"
                               : deploy.one_transaction ? "the deploy runs the range in one transaction"
                                                      : "the deploy commits each revision on its own")});
  // Each step's time here and at production size.
  std::vector<double> then(up.size());
  for (size_t i = 0; i < up.size(); ++i) {
    auto time_in = [&](const std::vector<engine::StepTiming>& steps) -> std::optional<double> {
      for (const auto& s : steps)
        if (s.revision == up[i].step.revision && s.index == up[i].step.index) return s.work_seconds();
      return std::nullopt;
    };
    then[i] = TimeThen(up[i], empty ? time_in(*empty) : std::nullopt, time_in(again), sizes);
  }
  std::vector<std::pair<std::string, std::string>> findings;  // id, text
  auto find = [&](const std::string& rule, const StepEffect& e, const std::string& table, const std::string& text) {
    findings.emplace_back(fmt::format("lock.{}.{}.{}{}", rule, e.step.revision, e.step.index,
                                      table.empty() ? "" : "." + table),
                          fmt::format("{}: {} [{}]", StepName(e), text, rule));
  };
  bool sets_timeout = false, blocking_seen = false;
  std::string timeout_set;
  for (const auto& group : Transactions(up, deploy.one_transaction)) {
    std::map<std::string, Taken> held;
    std::set<std::string> created;
    // The hold from step `from` (a position in the group) to the commit.
    // The taking step counts from the grant: its own wait came before it;
    // a later step's wait for another lock extends this one's hold.
    auto hold_from = [&](size_t from, bool forecast) {
      double s = 0;
      for (size_t k = from; k < group.size(); ++k) {
        const auto& st = up[group[k]].step;
        s += forecast ? then[group[k]] : k == from ? st.work_seconds() : st.seconds;
      }
      return s;
    };
    // table -> the position in the group of the step that took its strongest
    // lock, and of the first step whose lock blocked writes (SHARE or more).
    std::map<std::string, size_t> position, blocks_writes_from;
    for (size_t g = 0; g < group.size(); ++g) {
      const StepEffect& e = up[group[g]];
      const auto& a = e.activity;
      const auto changes = engine::SchemaChanges(e.sql);
      // A lock_timeout the revision sets itself counts when it is not 0 and
      // comes no later than the step of the first lock that blocks traffic.
      for (const auto& c : changes)
        if (c.form == "lock-timeout" && !blocking_seen) {
          const bool none = c.value.empty() || c.value == "DEFAULT" || c.value.find_first_not_of("0msh ") == std::string::npos;
          sets_timeout = !none;
          timeout_set = fmt::format("{} sets lock_timeout to {}", StepName(e), c.value);
        }
      const std::map<std::string, Taken> before = held;
      for (const auto& t : a.created) created.insert(t);
      for (const auto& [table, mode] : a.held) {
        if (!held.count(table) || inspect::LockRank(mode) > inspect::LockRank(held[table].mode)) {
          held[table] = {mode, group[g]};
          position[table] = g;
        }
        if (inspect::LockRank(mode) >= kShare && !blocks_writes_from.count(table) && !created.count(table)) {
          blocks_writes_from[table] = g;
          blocking_seen = true;
        }
      }
      auto existing = [&](const std::string& t) { return !created.count(t); };
      auto mode_on = [&](const std::string& t) { return held.count(t) ? held.at(t).mode : std::string(); };
      // "events (200000 rows) under AccessExclusiveLock, held about 0.450s at that size (0.045s here at
      // 20000 rows): reads and writes of events wait for it"
      auto sized = [&](const std::string& t) {
        const std::string mode = mode_on(t);
        const size_t from = blocks_writes_from.count(t) ? blocks_writes_from[t] : held.count(t) ? position[t] : g;
        return fmt::format("{} ({}) under {}, held about {:.3f}s at that size ({:.3f}s here at {}): {}", t,
                           Rows(sizes.Then(t)), mode.empty() ? "no table lock" : mode, hold_from(from, true),
                           hold_from(from, false), Rows(sizes.Here(t)), WhoWaits(mode, t));
      };
      for (const auto& t : a.rewritten) {
        if (!existing(t)) continue;
        std::string cause = "a rewrite";
        std::string safer = "run it in a maintenance window, or rebuild the table online (pg_repack)";
        if (Has(changes, "type-change", t)) {
          cause = "a column type change";
          safer = "add a column of the new type, fill it in batches, switch to it, then drop the old one "
                  "(widening a varchar or dropping its limit needs no rewrite)";
        } else if (Has(changes, "add-column-generated", t)) {
          cause = "a stored generated column";
          safer = "add a plain column filled by a trigger and backfilled in batches, or compute it in a view";
        } else if (Has(changes, "add-column-default", t)) {
          cause = "a column added with a volatile default";
          safer = "add the column without a default (or with a constant one: catalog only), set the default, "
                  "then fill the rows in batches";
        }
        find("rewrite", e, t, fmt::format("{} rewrites {}; safer: {}", cause, sized(t), safer));
      }
      for (const auto& t : a.indexed_tables) {
        if (!existing(t) || std::find(a.rewritten.begin(), a.rewritten.end(), t) != a.rewritten.end()) continue;
        // Built CONCURRENTLY (an online step's): already the safer form.
        if (Has(changes, "create-index-concurrently", t) && !Has(changes, "create-index", t)) continue;
        const bool constraint = Has(changes, "add-unique", t) || Has(changes, "add-primary-key", t) ||
                                (!Has(changes, "create-index", t) && a.lock_mode == "AccessExclusiveLock" &&
                                 a.held.count(t) && a.held.at(t) == "AccessExclusiveLock" &&
                                 (!before.count(t) || before.at(t).mode != "AccessExclusiveLock"));
        if (constraint)
          find("unique-in-place", e, t,
               fmt::format("a unique or primary key built in place on {}; safer: CREATE UNIQUE INDEX CONCURRENTLY "
                           "outside the transaction, then ADD CONSTRAINT ... USING INDEX (catalog only)",
                           sized(t)));
        else
          find("index-not-concurrent", e, t,
               fmt::format("an index built without CONCURRENTLY on {}; safer: CREATE INDEX CONCURRENTLY outside "
                           "the transaction (reads and writes go on)",
                           sized(t)));
      }
      for (const auto& t : a.scanned) {
        // An index build reads its table: said above.
        if (!existing(t) || inspect::LockRank(mode_on(t)) < kShare ||
            std::find(a.indexed_tables.begin(), a.indexed_tables.end(), t) != a.indexed_tables.end())
          continue;
        if (Has(changes, "add-check", t))
          find("validated-check", e, t,
               fmt::format("a CHECK added validated scans {}; safer: ADD CONSTRAINT ... NOT VALID, then VALIDATE "
                           "CONSTRAINT in a transaction of its own (SHARE UPDATE EXCLUSIVE: reads and writes go on)",
                           sized(t)));
        else if (Has(changes, "add-foreign-key", t))
          find("validated-foreign-key", e, t,
               fmt::format("a foreign key added validated scans {}; safer: ADD CONSTRAINT ... NOT VALID, then "
                           "VALIDATE CONSTRAINT in a transaction of its own",
                           sized(t)));
        else if (Has(changes, "set-not-null", t))
          find("set-not-null", e, t,
               fmt::format("SET NOT NULL scans {}; safer: ADD CONSTRAINT ... CHECK (col IS NOT NULL) NOT VALID, "
                           "VALIDATE it in a transaction of its own, then SET NOT NULL (no scan: PostgreSQL 12 "
                           "uses the CHECK) and drop the CHECK",
                           sized(t)));
        else if (!before.count(t) || inspect::LockRank(before.at(t).mode) < kShare)
          find("scan-under-lock", e, t,
               fmt::format("a full scan of {}; if it validates a constraint, add it NOT VALID and VALIDATE it "
                           "apart; if it sets NOT NULL, prove it first with a validated CHECK (col IS NOT NULL)",
                           sized(t)));
      }
      for (const auto& t : a.updated) {
        if (!existing(t)) continue;
        find("backfill", e, t,
             fmt::format("every row of {} ({}) updated in one transaction: writers of those rows wait about "
                         "{:.3f}s at that size, to the commit ({:.3f}s here); safer: update in batches of a few "
                         "thousand rows, each batch its own transaction",
                         t, Rows(sizes.Then(t)), hold_from(g, true), hold_from(g, false)));
      }
      // More work after ACCESS EXCLUSIVE taken by an earlier step.
      const bool works = !a.rewritten.empty() || !a.indexes.empty() || !a.updated.empty() || !a.scanned.empty();
      if (works) {
        const std::vector<std::string> locked = LocksHeld(before, created, up, kAccessExclusive);
        if (!locked.empty())
          find("work-after-lock", e, "",
               fmt::format("{} ({:.3f}s at production size, {:.3f}s here) runs while the transaction holds {}: "
                           "reads and writes of those tables wait for it too; safer: do this work before taking "
                           "the lock, or in a transaction of its own",
                           a.Kinds().front(), then[group[g]], up[group[g]].step.seconds, Join(locked, "; ")));
      }
    }
    for (const auto& [table, taken] : held) {
      if (created.count(table) || !blocks_writes_from.count(table)) continue;
      const size_t from = blocks_writes_from[table];
      LockHold h;
      h.table = table;
      h.mode = taken.mode;
      h.taken_by = StepName(up[group[from]]);
      if (position[table] != from)
        h.stronger_from = fmt::format("{} from {} ({:.3f}s at production size)", taken.mode, StepName(up[taken.at]),
                                      hold_from(position[table], true));
      h.rows = sizes.Then(table);
      h.measured = hold_from(from, false);
      h.forecast = hold_from(from, true);
      h.blocks_reads = inspect::LockRank(taken.mode) >= kAccessExclusive;
      size_t longest = group[from];
      for (size_t k = from; k < group.size(); ++k)
        if (then[group[k]] > then[longest]) longest = group[k];
      h.longest_part = longest == group[from] && group.size() - from == 1
                           ? std::string()
                           : fmt::format("{} ({:.3f}s)", StepName(up[longest]), then[longest]);
      review.holds.push_back(h);
    }
  }
  // Longest first; of equal holds, the biggest table first.
  std::stable_sort(review.holds.begin(), review.holds.end(), [](const LockHold& a, const LockHold& b) {
    return a.forecast != b.forecast ? a.forecast > b.forecast : a.rows > b.rows;
  });
  // One line per hold: the tables one step locked in one mode together.
  std::vector<std::pair<const LockHold*, std::vector<const LockHold*>>> lines_of;
  for (const auto& h : review.holds) {
    auto same = std::find_if(lines_of.begin(), lines_of.end(), [&](const auto& l) {
      return l.first->mode == h.mode && l.first->taken_by == h.taken_by && l.first->forecast == h.forecast &&
             l.first->stronger_from == h.stronger_from;
    });
    if (same == lines_of.end()) lines_of.push_back({&h, {&h}});
    else same->second.push_back(&h);
  }
  for (const auto& [h, all] : lines_of) {
    const bool over = max_hold > 0 && h->forecast > max_hold;
    std::vector<std::string> tables;
    for (const auto* t : all) tables.push_back(fmt::format("{} ({})", t->table, Rows(t->rows)));
    const std::string on = all.size() == 1 ? tables.front() : fmt::format("{} tables: {}", all.size(), Some(tables));
    const std::string part = h->longest_part.empty() ? std::string() : ", most of it " + h->longest_part;
    const std::string who = !h->stronger_from.empty() ? "writes wait from there, reads too from " + h->stronger_from
                            : h->blocks_reads         ? std::string("reads and writes wait for it")
                                                      : std::string("writes wait for it");
    const std::string text =
        fmt::format("{} on {}: held about {:.3f}s at production size ({:.3f}s here), from {} to the commit{}; {}{}",
                    h->mode, on, h->forecast, h->measured, h->taken_by, part, who,
                    over ? fmt::format(": over --max-lock-hold {}s", max_hold) : "");
    lines.push_back({"lock.hold." + h->table, over ? Status::kFail : Status::kInfo, text});
    if (over)
      review.over.push_back(fmt::format("{} on {} would be held about {:.3f}s at production size, over "
                                        "--max-lock-hold {}s",
                                        h->mode, on, h->forecast, max_hold));
  }
  for (const auto& [id, text] : findings) lines.push_back({id, Status::kInfo, text});
  // The deploy's lock_timeout: without one, a lock it waits for queues every
  // later query on that table behind it.
  if (!review.holds.empty()) {
    const std::string tables = [&] {
      std::vector<std::string> t;
      for (const auto& h : review.holds) t.push_back(h.table);
      return Some(t);
    }();
    if (sets_timeout) {
      lines.push_back({"lock.timeout", Status::kInfo, timeout_set});
    } else if (deploy.lock_timeout.empty()) {
      lines.push_back({"lock.timeout", Status::kInfo,
                       "the deploy's lock_timeout is not known here: set one, or a wait for the locks on " + tables +
                           " queues every later query on them"});
    } else if (deploy.lock_timeout == "0") {
      lines.push_back({"lock.no-lock-timeout", Status::kInfo,
                       fmt::format("the deploy waits for its locks on {} without a limit (lock_timeout 0, {}): "
                                   "while it waits behind a long query, every later query on them queues behind "
                                   "it; safer: a lock_timeout of a few seconds and a retry [no-lock-timeout]",
                                   tables, deploy.lock_timeout_from)});
    } else {
      lines.push_back({"lock.timeout", Status::kInfo,
                       fmt::format("the deploy gives up a lock wait after {} ({})", deploy.lock_timeout,
                                   deploy.lock_timeout_from)});
    }
  }
  if (review.holds.empty())
    lines.push_back({"lock.hold", Status::kInfo, "no lock that blocks reads or writes of an existing table"});
  return review;
}

}  // namespace harness::verify
