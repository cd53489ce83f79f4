#include "harness/verify/traffic.h"

#include <algorithm>
#include <mutex>

#include <fmt/format.h>
#include <pqxx/pqxx>

#include "harness/error.h"
#include "harness/join.h"
#include "harness/pg/connection.h"

namespace harness::verify {

namespace {

using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

constexpr size_t kTables = 8;
constexpr size_t kKeysPerTable = 200;
constexpr double kSlow = 0.100;  // an operation that waited past this is counted

double Since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

}  // namespace

Traffic::Traffic(const pg::Url& url, const std::vector<inspect::TableReading>& tables, double hold_seconds)
    : url_(url), hold_(hold_seconds) {
  std::vector<const inspect::TableReading*> candidates;
  for (const auto& t : tables)
    if (t.key.size() == 1 && t.rows() > 0) candidates.push_back(&t);
  std::stable_sort(candidates.begin(), candidates.end(),
                   [](const auto* a, const auto* b) { return a->rows() > b->rows(); });
  if (candidates.size() > kTables) candidates.resize(kTables);
  {
    pg::Connection conn(url_, "migration-harness traffic");
    pqxx::read_transaction tx(conn.raw());
    for (const auto* t : candidates) {
      Target target;
      target.name = t->table.Key();
      target.quoted = tx.quote_name(t->table.schema) + "." + tx.quote_name(t->table.name);
      target.key = tx.quote_name(t->key.front());
      // A key of a built-in type only: its output, input and = are the
      // server's own, never a function another role wrote (a cast or an
      // operator of its type would run with the tool's rights).
      const bool builtin = tx.exec_params1(
                                 "SELECT coalesce((SELECT y.typnamespace OPERATOR(pg_catalog.=) "
                                 "'pg_catalog'::pg_catalog.regnamespace FROM pg_catalog.pg_attribute a JOIN "
                                 "pg_catalog.pg_type y ON y.oid OPERATOR(pg_catalog.=) a.atttypid WHERE a.attrelid "
                                 "OPERATOR(pg_catalog.=) $1::pg_catalog.oid AND a.attname OPERATOR(pg_catalog.=) $2), "
                                 "false)",
                                 t->oid, t->key.front())[0]
                                 .as<bool>();
      if (!builtin) continue;
      for (const auto& r : tx.exec(fmt::format("SELECT {} FROM {} LIMIT {}", target.key, target.quoted, kKeysPerTable)))
        if (!r[0].is_null()) target.keys.push_back(r[0].as<std::string>());
      if (!target.keys.empty()) targets_.push_back(std::move(target));
    }
  }
  if (targets_.empty())
    throw UsageError("--with-traffic needs a table with rows and a one-column primary key of a built-in type: there "
                     "is none here");
  long_reader_ = std::thread([this] { LongReader(); });
  const auto started = Clock::now();
  while (!locked_ && Since(started) < 30) std::this_thread::sleep_for(5ms);
  try {
    reader_ = std::thread([this] { Client(false); });
    writer_ = std::thread([this] { Client(true); });
  } catch (...) {
    Stop();
    throw;
  }
  // A few operations each: the clients are connected and running.
  while (ready_ < 2 && Since(started) < 30) std::this_thread::sleep_for(5ms);
}

Traffic::~Traffic() {
  try {
    Stop();
  } catch (...) {
  }
}

void Traffic::UpgradeStarts() {
  upgrade_start_ = Clock::now();
  upgrade_started_ = true;
}

void Traffic::Stop() {
  stop_ = true;
  upgrade_started_ = true;  // a long reader still waiting for the start lets go
  {
    // A client still waiting on a lock is cancelled: it never outlives this.
    std::lock_guard<std::mutex> lock(connections_mutex_);
    for (auto* c : connections_) c->Cancel();
  }
  for (auto* t : {&long_reader_, &reader_, &writer_})
    if (t->joinable()) t->join();
}

void Traffic::Register(pg::Connection* conn, bool add) {
  std::lock_guard<std::mutex> lock(connections_mutex_);
  if (add) connections_.push_back(conn);
  else connections_.erase(std::remove(connections_.begin(), connections_.end(), conn), connections_.end());
}

void Traffic::LongReader() {
  try {
    pg::Connection conn(url_, "migration-harness traffic: a long reader");
    pqxx::work tx(conn.raw());
    for (const auto& t : targets_) tx.exec(fmt::format("SELECT 1 FROM {} LIMIT 1", t.quoted));
    locked_ = true;
    while (!upgrade_started_ && !stop_) std::this_thread::sleep_for(2ms);
    const auto from = upgrade_start_;
    while (!stop_ && Since(from) < hold_) std::this_thread::sleep_for(2ms);
    held_ = stop_ ? Since(from) : hold_;
    tx.commit();
  } catch (const std::exception& e) {
    long_reader_error_ = e.what();
    locked_ = true;
  }
}

void Traffic::Client(bool writer) {
  auto& ops = writer ? writes_ : reads_;
  auto& error = writer ? write_error_ : read_error_;
  try {
    pg::Connection conn(url_, writer ? "migration-harness traffic: a writer" : "migration-harness traffic: a reader");
    Register(&conn, true);
    struct Unregister {
      Traffic* traffic;
      pg::Connection* conn;
      ~Unregister() { traffic->Register(conn, false); }
    } unregister{this, &conn};
    size_t n = 0;
    while (!stop_) {
      const size_t target = n % targets_.size();
      const Target& t = targets_[target];
      const std::string& key = t.keys[(n / targets_.size()) % t.keys.size()];
      const auto start = Clock::now();
      bool ok = true;
      try {
        pqxx::work tx(conn.raw());
        // What an UPDATE takes, without running a trigger or changing a row.
        if (writer) tx.exec("LOCK TABLE " + t.quoted + " IN ROW EXCLUSIVE MODE");
        tx.exec_params(fmt::format("SELECT 1 FROM {} WHERE {} OPERATOR(pg_catalog.=) $1{}", t.quoted, t.key,
                                   writer ? " FOR UPDATE" : ""),
                       key);
        tx.commit();
      } catch (const pqxx::sql_error& e) {
        // The table rewritten or dropped under it: counted, and it goes on.
        ok = false;
        if (error.empty()) error = e.what();
      }
      ops.push_back({target, Since(start), ok});
      if (++n == 3) ++ready_;
      std::this_thread::sleep_for(std::chrono::milliseconds(5 + static_cast<int>(n % 6)));
    }
  } catch (const std::exception& e) {
    if (error.empty()) error = e.what();
    ++ready_;
  }
}

double Traffic::Longest() const {
  double longest = 0;
  for (const auto* ops : {&reads_, &writes_})
    for (const auto& op : *ops) longest = std::max(longest, op.seconds);
  return longest;
}

std::string Traffic::Tables() const {
  std::vector<std::string> names;
  for (const auto& t : targets_) names.push_back(t.name);
  return fmt::format("{} table(s): {}", targets_.size(), Join(names));
}

std::string Traffic::HoldText() const {
  return fmt::format("a reader holding AccessShareLock on {} from before the upgrade until {:.3f}s into it{}, as a "
                     "long query would",
                     Tables(), held_,
                     held_ < hold_ - 0.001 ? fmt::format(" (of the {:.3f}s it would have: the upgrade was over)", hold_)
                                           : std::string());
}

checks::SuiteResult Traffic::Suite(const std::string& upgrade) const {
  checks::SuiteResult s{"traffic", {}};
  using checks::Status;
  s.checks.push_back({"traffic.long-reader", Status::kInfo,
                      long_reader_error_.empty() ? HoldText() : "the long reader failed: " + long_reader_error_});
  s.checks.push_back({"traffic.upgrade", Status::kInfo, upgrade});
  for (const bool writer : {false, true}) {
    const auto& ops = writer ? writes_ : reads_;
    const std::string& error = writer ? write_error_ : read_error_;
    double longest = 0;
    size_t longest_at = 0;
    int slow = 0, failed = 0;
    for (const auto& op : ops) {
      if (op.seconds > longest) {
        longest = op.seconds;
        longest_at = op.target;
      }
      slow += op.seconds > kSlow;
      failed += !op.ok;
    }
    s.checks.push_back(
        {writer ? "traffic.writer" : "traffic.reader", Status::kInfo,
         fmt::format("{}: {} {} on {} table(s) every 5-10 ms, the longest {:.3f}s{}; {} waited over {:.0f} ms{}",
                     writer ? "a writer" : "a reader", ops.size(),
                     writer ? "row locks (ROW EXCLUSIVE, as an UPDATE takes)" : "primary-key lookups",
                     targets_.size(), longest, ops.empty() ? "" : " (" + targets_[longest_at].name + ")", slow,
                     kSlow * 1000,
                     failed ? fmt::format("; {} failed, the first: {}", failed, error)
                            : error.empty() ? std::string() : "; stopped: " + error)});
  }
  return s;
}

}  // namespace harness::verify
