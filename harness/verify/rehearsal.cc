#include "harness/verify/rehearsal.h"

#include <algorithm>
#include <csignal>
#include <memory>
#include <string_view>

#include <fmt/format.h>
#include <pqxx/pqxx>
#include <spdlog/spdlog.h>

#include "harness/checks/revision_checks.h"
#include "harness/checks/suites.h"
#include "harness/error.h"
#include "harness/inspect/catalog.h"
#include "harness/join.h"
#include "harness/pg/connection.h"
#include "harness/pg/disposable_database.h"
#include "harness/pg/interrupt.h"
#include "harness/sys/untrusted_text.h"
#include "harness/verify/effects.h"
#include "harness/verify/forecast.h"
#include "harness/verify/lock_review.h"
#include "harness/verify/phases.h"
#include "harness/verify/place.h"
#include "harness/verify/table_marks.h"
#include "harness/verify/traffic.h"

namespace harness::verify {

namespace {

using checks::Status;
using checks::SuiteResult;

// What the second run of an idempotent range changed ("3 catalog entries
// (first: ...) and the rows of t"; empty: nothing): the catalog, and the
// rows of each table the second run may have written (`written`), read
// now and compared with the table as the first run left it: read then
// (`read_upgraded`), or recorded before the upgrade and not written since.
// `reads` says which tables it read.
std::string SecondRunChanges(pqxx::transaction_base& tx, const std::map<std::string, std::string>& catalog_first,
                             const MayHaveChanged& written, const Recorded& recorded, const Marks& marks_recorded,
                             const Marks& marks_first, const Marks& marks_now, const MayHaveChanged& since_recorded,
                             const std::map<long long, inspect::TableReading>& read_upgraded, std::string* reads) {
  const auto diff = inspect::DiffEntries(catalog_first, inspect::TakeSnapshotOfUserSchemas(tx).Entries());
  std::vector<std::string> changed;
  // A column dropped and added again (its number changes; the catalog's
  // entries may not), or retyped: a change, written or not.
  for (const auto& [oid, now] : marks_now)
    if (auto was = marks_first.find(oid); was != marks_first.end() && was->second.columns != now.columns)
      changed.push_back("the columns of " + now.id.Key());
  std::vector<std::pair<std::string, std::string>> reread;
  for (const auto& [oid, why] : written) {
    const auto now = marks_now.find(oid);
    const auto was = marks_first.find(oid);
    // New (a catalog entry), or its columns changed (said above).
    if (now == marks_now.end() || was == marks_first.end() || was->second.columns != now->second.columns) continue;
    const std::string key = now->second.id.Key();
    inspect::Fingerprint first;
    std::vector<std::string> columns;
    const auto rec = std::find_if(recorded.tables.begin(), recorded.tables.end(),
                                  [&](const inspect::TableReading& t) { return t.oid == oid; });
    const auto at_recording = marks_recorded.find(oid);
    // Either reading is over every column then, in their order: the same
    // columns now (a rename aside: read by their names now).
    for (const auto& c : inspect::LiveColumns(tx, oid)) columns.push_back(c.name);
    if (auto r = read_upgraded.find(oid); r != read_upgraded.end()) {
      first = r->second.fingerprint;
    } else if (rec != recorded.tables.end() && !since_recorded.count(oid) && at_recording != marks_recorded.end() &&
               at_recording->second.columns == was->second.columns) {
      first = rec->fingerprint;
    } else {
      changed.push_back(fmt::format("the rows of {} (written by the second run, and not read as the first run left "
                                    "it: {})",
                                    key, why));
      continue;
    }
    reread.emplace_back(key, why);
    if (inspect::TakeFingerprint(tx, now->second.id, columns) != first) changed.push_back("the rows of " + key);
  }
  *reads = ReReadText(reread, marks_now.size() - written.size());
  std::string out;
  if (!diff.empty()) out = fmt::format("{} catalog entries (first: {})", diff.size(), diff.front());
  if (!changed.empty()) out += (out.empty() ? "" : " and ") + Join(changed);
  return out;
}

// A connection whose running statement a SIGINT or SIGTERM cancels.
struct Watched {
  explicit Watched(const pg::Url& url) : conn(url), cancel(conn) {}
  pg::Connection conn;
  pg::CancelOnInterrupt cancel;
};

class Pipeline {
 public:
  Pipeline(const VerifyOptions& o, RevisionSource& revisions, DataSource& data)
      : options_(o),
        revisions_(revisions),
        data_(data),
        graph_(revisions.graph()),
        phases_(r_, o.on_phase_start, o.on_phase_end),
        place_(o, phases_, r_) {}

  Rehearsal Go(Rehearsal* partial) {
    try {
      Prepare();
      Rehearse();
    } catch (const engine::RevisionError& e) {
      if (sys::InterruptSignal() != 0) Broke(Interrupted(), partial);
      // The revision cannot run on this database as written: what the
      // rehearsal is for. A verdict, not a breakdown.
      phases_.Fail(phases_.Running(), e.what());
      std::string detail = e.what();
      // A driver's statement starts with a line break as often as not:
      // shown from its first character.
      const std::string_view ws = " \t\r\n";
      std::string_view statement = e.statement();
      statement.remove_prefix(std::min(statement.size(), statement.find_first_not_of(ws)));
      statement = statement.substr(0, statement.find_last_not_of(ws) + 1);
      if (!statement.empty()) detail += "; statement: " + sys::ShowUntrusted(std::string(statement), 200);
      if (!e.details().empty()) detail += "; " + e.details();
      Verdict(false, 1,
              fmt::format("NOT READY: revision {} failed during {}{}: {}", e.revision(), phases_.Running(),
                          FailedChecks().empty() ? "" : " (and " + FailedChecks() + ")", detail));
    } catch (const Error& e) {
      if (e.code() != ExitCode::kInterrupted && sys::InterruptSignal() != 0) Broke(Interrupted(), partial);
      Broke(e, partial);
    } catch (const pqxx::sql_error& e) {
      // A query of the rehearsal's own (readings, checks), or one that
      // Ctrl-C cancelled.
      if (sys::InterruptSignal() != 0) Broke(Interrupted(), partial);
      Broke(pg::FromSqlError(e, "verify: " + phases_.Running()), partial);
    } catch (const pqxx::broken_connection& e) {
      if (sys::InterruptSignal() != 0) Broke(Interrupted(), partial);
      Broke(DatabaseError("verify: lost the connection while " + phases_.Running() + ": " +
                           (url_ ? pg::Redact(e.what(), *url_) : std::string(e.what()))),
             partial);
    }
    return std::move(r_);
  }

 private:
  Error Interrupted() const {
    return Error(ExitCode::kInterrupted,
                 std::string("interrupted by ") + (sys::InterruptSignal() == SIGINT ? "SIGINT" : "SIGTERM") +
                     " while " + phases_.Running(),
                 "nothing was committed to the source database");
  }

  // The phase under way failed: the report says so. Once a check has
  // failed, a later phase that cannot complete does not hide it: NOT READY
  // naming both (the error is still thrown, for its message). Otherwise
  // the verdict carries the error's code. Throws the error.
  [[noreturn]] void Broke(const Error& e, Rehearsal* partial) {
    phases_.Fail(phases_.Running(), e.what());
    const std::string failed = FailedChecks();
    if (e.code() == ExitCode::kInterrupted)
      Verdict(false, static_cast<int>(e.code()), std::string("INTERRUPTED: ") + e.what());
    else if (!failed.empty())
      Verdict(false, 1, fmt::format("NOT READY: {}; then {} could not complete: {}", failed, phases_.Running(),
                                    e.what()));
    else
      Verdict(false, static_cast<int>(e.code()), std::string("FAILED: ") + e.what());
    if (partial) *partial = r_;
    if (e.code() != ExitCode::kInterrupted && !failed.empty()) {
      // The verdict stands on what was found: exit 1, the error said on stderr.
      throw Error(ExitCode::kCheckFailed, e.what(), e.hint());
    }
    throw e;
  }

  void Verdict(bool ready, int code, const std::string& line) {
    r_.ready = ready;
    r_.exit_code = code;
    r_.verdict = line;
  }

  // "post check X failed; rollback check Y failed", from the suites so far.
  std::string FailedChecks() const {
    std::vector<std::string> out;
    for (const auto& s : r_.suites)
      for (const auto& c : s.checks)
        if (c.status == Status::kFail) out.push_back(s.suite + " check " + c.id + " failed");
    return Join(out, "; ");
  }

  std::string RangeName() const { return graph_.Name(from_) + " -> " + graph_.Name(to_); }
  checks::Range Range() const { return {&graph_, from_, to_}; }

  void Prepare() {
    to_ = graph_.ResolveRevision(options_.target);
    if (to_ == 0)
      throw UsageError("verify --target base: there is nothing to rehearse below the first revision");
    // Checks that could write, before anything is started or cloned.
    checks::RefuseChecksThatAreNotOneQuery(graph_, 0, to_);
    if (!options_.source) {
      from_ = to_ - 1;
      place_.StartEmbedded(revisions_.ClusterSettings());
      revisions_.UseServerLog(place_.cluster()->server_log());
      phases_.Run("build a database at " + graph_.Name(from_), [&] {
        place_.NewEmbeddedDatabase();
        url_ = place_.url();
        return data_.Build(*url_, revisions_, from_);
      });
      phases_.Run(
          data_.FillPhase(),
          [&] {
            Watched db(*url_);
            return data_.Fill(db.conn, options_.progress);
          },
          /*status_line=*/!(options_.progress && data_.DrawsProgress()));  // it draws its own
      r_.target = data_.EmbeddedTarget(from_, graph_);
      place_.ConnectPhase(*url_, graph_.Name(to_));
      return;
    }
    place_.PrepareSource(*options_.source, graph_.Name(to_), revisions_.ClusterSettings());
    if (place_.cluster()) revisions_.UseServerLog(place_.cluster()->server_log());
    url_ = place_.url();
  }

  // A check suite, read-only, timed as a phase of its own.
  SuiteResult Suite(const std::string& name, const std::function<SuiteResult(pqxx::transaction_base&)>& fn) {
    SuiteResult s;
    phases_.Run(name, [&] {
      Watched db(*url_);
      pqxx::read_transaction tx(db.conn.raw());
      pg::RefuseUntrustedCode(tx, *url_);
      s = fn(tx);
      return s.Total() ? fmt::format("{} of {} passed", s.Count(Status::kPass), s.Total())
                       : std::string("none in the range (`--! check` in a revision's file)");
    });
    r_.phases.back().ok = s.ok();
    return s;
  }

  void Rehearse() {
    Watched db(*url_);
    pg::Connection& conn = db.conn;
    r_.title = "Migration rehearsal";
    engine::Position current = 0;
    phases_.Run("current revision", [&] {
      auto pos = revisions_.Current(conn);
      if (!pos) {
        // No alembic_version: an empty schema is at base; tables there
        // were built some other way (stamp them first).
        pqxx::read_transaction tx(conn.raw());
        engine::RefuseUnrecordedSchema(tx, false);
      }
      current = pos.value_or(0);
      if (current >= to_)
        throw UsageError(fmt::format("the database is at {}, not below --target {}: it is already applied, "
                                     "there is nothing to rehearse",
                                     graph_.Name(current), graph_.Name(to_)),
                         "pass a --target above the database's revision");
      return graph_.Name(current);
    });
    if (options_.source) from_ = data_.From(current, to_);
    r_.title = "Migration rehearsal " + RangeName();
    if (current < from_)
      phases_.Run("upgrade to " + graph_.Name(from_) + " first", [&] {
        auto run = revisions_.Run(conn, engine::Direction::kUpgrade, from_, RunMode::kQuiet);
        return fmt::format("{} -> {} in {:.3f}s", graph_.Name(current), graph_.Name(from_), run.report.seconds);
      });
    {
      pqxx::read_transaction tx(conn.raw());
      try {
        data_.Describe(tx, r_);
      } catch (const Error& e) {
        if (e.code() != ExitCode::kUsage) throw;
        // A schema the data does not know is bad input (2), said in the verdict.
        phases_.Fail("schema shape", e.what());
        Verdict(false, 2, fmt::format("BLOCKED: {} does not know this schema: {}", graph_.Name(to_), e.what()));
        return;
      }
    }
    SuiteResult pre = Suite("pre-migration checks", [&](auto& tx) { return checks::RunPreSuite(tx, Range()); });
    r_.suites.push_back(pre);
    if (!pre.ok()) {
      // A gate that failed (a missing core table) means this is not the
      // schema the revision knows: bad input (2), not data that blocks it (1).
      Verdict(false, pre.stopped ? 2 : 1,
              pre.stopped ? fmt::format("BLOCKED: this is not the schema {} knows (see the failed pre check); "
                                        "nothing was migrated",
                                        RangeName())
                          : fmt::format("BLOCKED: a pre check of {} failed (see above); nothing was migrated",
                                        RangeName()));
      return;
    }
    Recorded recorded;
    checks::Baseline baseline;
    Marks marks_recorded;
    phases_.Run("record the schema and the rows", [&] {
      pqxx::read_transaction tx(conn.raw());
      recorded = verify::ReadBeforeUpgrade(tx);
      marks_recorded = ReadMarks(tx);
      Read("reads.recorded", fmt::format("before the upgrade: read every table once ({} tables, {} rows)",
                                         recorded.tables.size(), recorded.Rows()));
      baseline = checks::BaselineFromReadings(tx, Range(), recorded.tables);
      if (r_.data_line.empty())
        r_.data_line = fmt::format("{} rows in {} tables", recorded.Rows(), recorded.tables.size());
      return fmt::format("{} rows in {} tables{}", recorded.Rows(), recorded.tables.size(),
                         baseline.prebuilt.empty() ? ""
                                                   : "; built beforehand, not compared: " + Join(baseline.prebuilt, ", "));
    });
    for (const auto& [table, rows] : options_.table_rows)
      if (std::none_of(recorded.tables.begin(), recorded.tables.end(),
                       [&](const auto& t) { return t.table.Key() == table; })) {
        std::vector<std::string> names;
        for (const auto& t : recorded.tables) names.push_back(t.table.Key());
        throw UsageError(fmt::format("--table-rows names {}, which is not a table here at {}", sys::Escaped(table),
                                     graph_.Name(from_)),
                         names.empty() ? std::string("there is no table here")
                                       : "its tables: " + sys::Escaped(Join(names, ", ")));
      }
    RevisionRun up, down;
    std::unique_ptr<Traffic> traffic;
    if (options_.with_traffic)
      phases_.Run("start traffic (--with-traffic)", [&] {
        traffic = std::make_unique<Traffic>(*url_, recorded.tables, options_.traffic_hold_seconds);
        return "a long reader, a reader and a writer on " + traffic->Tables();
      });
    // The traffic's suite, once the upgrade is over.
    auto traffic_suite = [&](const std::string& upgrade) {
      traffic->Stop();
      r_.suites.push_back(traffic->Suite(upgrade));
    };
    const std::string up_name = "upgrade " + RangeName();
    try {
      phases_.Run(up_name, [&] {
        if (traffic) traffic->UpgradeStarts();
        up = revisions_.Run(conn, engine::Direction::kUpgrade, to_, RunMode::kMeasured);
        if (traffic) {
          const auto waits = report::SummarizeLockWaits(up.report.steps);
          traffic_suite(waits.unknown_steps ? "the upgrade's lock waits were not all watched: " + waits.Text()
                                            : fmt::format("the upgrade waited {:.3f}s for its locks, then ran "
                                                          "{:.3f}s",
                                                          waits.seconds, up.report.seconds - waits.seconds));
        }
        ChargeHolds(up.effects, revisions_.Deploy().rehearsed_in_one_transaction);
        r_.upgrade_seconds = up.report.seconds;
        r_.upgrade_steps = up.report.steps;
        return fmt::format("{:.3f}s {}", up.report.seconds, revisions_.TransactionNote(engine::Direction::kUpgrade));
      });
    } catch (const engine::RevisionError&) {
      throw;
    } catch (const engine::LockTimeoutError& e) {
      if (!traffic) throw;
      // What the rehearsal is for: the deploy gives up behind a long query.
      const std::string gave_up = fmt::format("the upgrade gave up waiting for its locks after --lock-timeout {}s "
                                              "(nothing was changed)",
                                              options_.migrator.lock_timeout_seconds);
      traffic_suite(gave_up);
      phases_.Fail(up_name, e.what());
      Verdict(false, 1,
              fmt::format("NOT READY: behind a reader that keeps its locks {:.3f}s into the upgrade, {}; traffic "
                          "waited at most {:.3f}s meanwhile: deploy with --lock-retries, or when no long query runs",
                          traffic->Hold(), gave_up, traffic->Longest()));
      return;
    } catch (const Error& e) {
      if (e.code() != ExitCode::kCheckFailed) throw;
      phases_.Fail(up_name, e.what());
      Verdict(false, 1, fmt::format("BLOCKED: {} refused the data: {}", graph_.Name(to_), e.what()));
      return;
    }
    Discarded discarded;
    // What the server shows of the tables after each run, and which of them
    // may differ from their reading before the upgrade: each table is read
    // once per state, again only when it may have changed (table_marks.h).
    Marks marks_upgraded;
    MayHaveChanged since_recorded;
    std::map<long long, inspect::TableReading> read_upgraded;  // oid -> as the upgrade left it
    phases_.Run("count what the upgrade discarded", [&] {
      pqxx::read_transaction tx(conn.raw());
      marks_upgraded = ReadMarks(tx);
      since_recorded = ChangedBy("the upgrade", up.effects, WritesCounted(up.effects, up.report.steps.size()),
                                 marks_recorded, marks_upgraded);
      discarded = CountDiscarded(tx, recorded, &since_recorded, &read_upgraded);
      // A table the upgrade made: as it left it, should its second run write it.
      for (const auto& [oid, mark] : marks_upgraded)
        if (!marks_recorded.count(oid)) read_upgraded[oid] = inspect::ReadTable(tx, mark.id);
      std::vector<std::pair<std::string, std::string>> reread;
      for (const auto& [oid, reading] : read_upgraded) reread.emplace_back(reading.table.Key(), since_recorded[oid]);
      size_t kept = 0;
      for (const auto& t : recorded.tables) kept += marks_upgraded.count(t.oid) && !read_upgraded.count(t.oid);
      const std::string reads = ReReadText(reread, kept);
      Read("reads.upgraded", "after the upgrade: " + reads);
      return fmt::format("{} table(s) and {} column(s) dropped; {}", discarded.tables.size(), discarded.columns,
                         reads);
    });
    SuiteResult post = Suite("post-migration checks", [&](auto& tx) { return checks::RunPostSuite(tx, Range()); });
    if (!post.checks.empty()) r_.suites.push_back(post);
    r_.suites.push_back(discarded.suite);
    // Where every revision of the range says it is idempotent: run again
    // on its own result, it must change nothing.
    bool idempotent_range = true;
    for (engine::Position p = from_ + 1; p <= to_; ++p) idempotent_range &= revisions_.DeclaresIdempotent(p);
    std::string second_run_changed;
    Marks marks_before_downgrade = marks_upgraded;
    if (idempotent_range) {
      phases_.Run(fmt::format("idempotent re-run (stamp {}, upgrade again)", graph_.Name(from_)), [&] {
        std::map<std::string, std::string> catalog_first;
        {
          pqxx::read_transaction tx(conn.raw());
          catalog_first = inspect::TakeSnapshotOfUserSchemas(tx).Entries();
        }
        revisions_.Stamp(conn, from_);
        const RevisionRun second = revisions_.Run(conn, engine::Direction::kUpgrade, to_, RunMode::kProbed);
        pqxx::read_transaction tx(conn.raw());
        const Marks marks_second = ReadMarks(tx);
        const MayHaveChanged written =
            ChangedBy("the second run", second.effects, WritesCounted(second.effects, second.report.steps.size()),
                      marks_upgraded, marks_second);
        std::string reads;
        second_run_changed = SecondRunChanges(tx, catalog_first, written, recorded, marks_recorded, marks_upgraded,
                                              marks_second, since_recorded, read_upgraded, &reads);
        Merge(since_recorded, written);
        marks_before_downgrade = marks_second;
        Read("reads.second_run", "after the second run: " + reads);
        return (second_run_changed.empty() ? std::string("second run changed nothing")
                                           : "second run changed " + second_run_changed) +
               "; " + reads;
      });
      r_.phases.back().ok = second_run_changed.empty();
    }
    phases_.Run("downgrade " + graph_.Name(to_) + " -> " + graph_.Name(from_), [&] {
      down = revisions_.Run(conn, engine::Direction::kDowngrade, from_, RunMode::kMeasured);
      r_.downgrade_seconds = down.report.seconds;
      r_.downgrade_steps = down.report.steps;
      return fmt::format("{:.3f}s {}", down.report.seconds, revisions_.TransactionNote(engine::Direction::kDowngrade));
    });
    std::vector<std::string> known_not_valid;
    checks::DroppedRows dropped_rows;
    SuiteResult rollback = Suite("rollback checks", [&](auto& tx) {
      const Marks marks_now = ReadMarks(tx);
      Merge(since_recorded, ChangedBy("the downgrade", down.effects,
                                      WritesCounted(down.effects, down.report.steps.size()), marks_before_downgrade,
                                      marks_now));
      // And against the recording itself: storage or columns not as they were.
      Merge(since_recorded, ChangedBy("the round trip", {}, true, marks_recorded, marks_now));
      std::map<std::string, std::string> unchanged;
      std::vector<std::pair<std::string, std::string>> reread;
      for (const auto& t : recorded.tables) {
        const auto now = marks_now.find(t.oid);
        if (now == marks_now.end()) continue;  // gone, or recreated: read as such
        // The columns the baseline compares, each still there.
        std::vector<std::string> gone;
        if (auto b = baseline.tables.find(t.table.Key()); b != baseline.tables.end())
          for (const auto& c : t.columns)
            if (std::count(b->second.columns.begin(), b->second.columns.end(), c.name) &&
                !now->second.columns.count(c.attnum))
              gone.push_back(c.name);
        if (auto why = since_recorded.find(t.oid); why != since_recorded.end())
          reread.emplace_back(t.table.Key(), why->second);
        else if (!gone.empty())
          reread.emplace_back(t.table.Key(), "column(s) gone since: " + Join(gone));
        else
          unchanged[t.table.Key()] = "no row written since, same storage and column types";
      }
      Read("reads.rolled_back", "after the downgrade: " + ReReadText(reread, unchanged.size()));
      return checks::RunRollbackSuite(tx, Range(), baseline, &known_not_valid, &unchanged, &dropped_rows);
    });
    r_.suites.push_back(rollback);
    r_.suites.push_back(StepEffectsSuite(up.effects, down.effects));
    for (const auto* effects : {&up.effects, &down.effects})
      for (const auto& e : *effects)
        if (e.statements_known) {
          std::vector<report::Rehearsal::Statement> list;
          for (const auto& st : e.statements) list.push_back({st.sql, st.seconds});
          r_.statements.emplace_back(StepId(e), std::move(list));
        }
    engine::RunReport again;
    phases_.Run("final upgrade " + RangeName(), [&] {
      again = revisions_.Run(conn, engine::Direction::kUpgrade, to_, RunMode::kQuiet).report;
      return fmt::format("{:.3f}s", again.seconds);
    });
    const auto empty = Forecast(up, again, recorded);
    const LockReview locks = ReviewLocks(up.effects, again.steps, empty, Sizes(recorded), revisions_.Deploy(),
                                         options_.max_lock_hold);
    r_.suites.push_back(locks.suite);
    r_.max_lock_hold = options_.max_lock_hold;
    if (!locks.holds.empty()) {
      const LockHold& h = locks.holds.front();
      r_.longest_hold = {h.table, h.mode, h.taken_by, Sizes(recorded).basis, h.rows, h.forecast, h.measured,
                         h.blocks_reads};
    }
    r_.notes = revisions_.Notes();
    r_.suites.push_back(reads_);

    std::vector<std::string> reasons;
    for (const auto& c : post.checks)
      if (c.status == Status::kFail) reasons.push_back("post check " + c.detail);
    if (!second_run_changed.empty())
      reasons.push_back(fmt::format("{} says it is idempotent, but its second run changed {}", RangeName(),
                                    second_run_changed));
    for (const auto& over : locks.over) reasons.push_back(over);
    if (!rollback.ok()) {
      std::vector<std::string> why;
      for (const auto& c : rollback.checks)
        if (c.status == Status::kFail) why.push_back(c.detail);
      reasons.push_back(fmt::format("the rollback of {} is not exact: {}", RangeName(), Join(why, "; ")));
    }
    const bool in_budget = r_.upgrade_seconds < report::kBudgetSeconds;
    if (!reasons.empty()) {
      Verdict(false, 1, "NOT READY: " + Join(reasons, "; "));
    } else if (!in_budget) {
      Verdict(false, 1,
              fmt::format("NOT READY: the upgrade took {:.1f}s, over the {:.0f}s budget", r_.upgrade_seconds,
                          report::kBudgetSeconds));
    } else {
      const size_t not_valid = known_not_valid.size();
      Verdict(true, 0,
              fmt::format("READY: {} upgraded in {:.3f}s and rolled back {}in {:.3f}s{}{}", RangeName(),
                          r_.upgrade_seconds,
                          not_valid ? fmt::format("(exactly, but for {} foreign key(s) restored NOT VALID: see the "
                                                  "rollback checks) ",
                                                  not_valid)
                                    : std::string("exactly "),
                          r_.downgrade_seconds, data_.VerdictDetail(r_),
                          dropped_rows.only_in_backup.empty()
                              ? std::string()
                              : "; the dropped tables come back empty (" + dropped_rows.OnlyInBackupText() + ")"));
    }
  }

  // The upgrade on an empty database at the range's start, made next to
  // this one (the embedded cluster, or the source's server where a scratch
  // clone was made; never in place): each step's fixed cost.
  std::optional<std::vector<engine::StepTiming>> EmptyUpgradeSteps() {
    const std::optional<pg::Url> admin = place_.AdminUrl();
    if (!admin) return std::nullopt;
    try {
      pg::DisposableDatabase empty(*admin, "template0", "mh_verify_empty");
      data_.BuildEmpty(empty.url(), revisions_, from_);
      Watched db(empty.url());
      return revisions_.Run(db.conn, engine::Direction::kUpgrade, to_, RunMode::kQuiet).report.steps;
    } catch (const Error& e) {
      if (e.code() == ExitCode::kInterrupted || sys::InterruptSignal() != 0) throw;
      spdlog::warn("verify: no empty database for the forecast ({}); every step is scaled from here", e.what());
      return std::nullopt;
    }
  }

  // Each table's rows here and at production size: on a copy its own,
  // unless told (--forecast-rows, --table-rows); on generated data scaled
  // as the forecast is.
  TableSizes Sizes(const Recorded& recorded) const {
    TableSizes sizes;
    for (const auto& t : recorded.tables) sizes.here[t.table.Key()] = t.rows();
    // Generated data is scaled (10x unless --forecast-rows says); a copy
    // keeps its own rows unless --forecast-rows says; --table-rows sets the
    // tables it names either way.
    const double here = std::max(1.0, data_.Size(recorded.tables));
    const double factor = options_.forecast_rows > 0 ? static_cast<double>(options_.forecast_rows) / here
                          : options_.source          ? 1.0
                                                     : 10.0;
    sizes.scaled = factor != 1.0 || !options_.table_rows.empty();
    for (const auto& [table, rows] : sizes.here) sizes.then[table] = std::llround(static_cast<double>(rows) * factor);
    for (const auto& [table, rows] : options_.table_rows) sizes.then[table] = rows;
    const std::string named = options_.table_rows.empty() ? "" : "; the tables named by --table-rows at their rows";
    if (factor == 1.0 && options_.source)
      sizes.basis = "this copy's own rows (its figures are production's when it is a copy of production)" + named;
    else
      sizes.basis = fmt::format("{:.4g}x the rehearsed rows ({} {}, {}){}", factor, std::llround(here * factor),
                                data_.Unit(), options_.forecast_rows > 0 ? "--forecast-rows" : "the default", named);
    return sizes;
  }

  std::optional<std::vector<engine::StepTiming>> Forecast(const RevisionRun& up, const engine::RunReport& again,
                                                          const Recorded& recorded) {
    const double here = std::max(1.0, data_.Size(recorded.tables));
    const long long rows =
        options_.forecast_rows > 0 ? options_.forecast_rows : static_cast<long long>(here) * 10;
    std::optional<std::vector<engine::StepTiming>> empty;
    phases_.Run("forecast: upgrade an empty database", [&] {
      empty = EmptyUpgradeSteps();
      return empty ? fmt::format("{} steps timed", empty->size())
                   : std::string("no empty database here: the forecast scales every step");
    });
    r_.forecast = ForecastUpgrade(empty, {&up.report, &again}, up.effects, here, rows, data_.Unit());
    return empty;
  }

  // A line of the "table reads" suite: what a state's reading read.
  void Read(const std::string& id, const std::string& line) {
    for (auto& c : reads_.checks)
      if (c.id == id) {
        c.detail = line;
        return;
      }
    reads_.checks.push_back({id, Status::kInfo, line});
  }

  const VerifyOptions& options_;
  RevisionSource& revisions_;
  SuiteResult reads_{"table reads", {}};
  DataSource& data_;
  const engine::RevisionGraph& graph_;
  Rehearsal r_;
  Phases phases_;
  Place place_;
  std::optional<pg::Url> url_;
  engine::Position from_ = 0, to_ = 0;
};

}  // namespace

Rehearsal Run(const VerifyOptions& options, RevisionSource& revisions, DataSource& data, Rehearsal* partial) {
  return Pipeline(options, revisions, data).Go(partial);
}

}  // namespace harness::verify
