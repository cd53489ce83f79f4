#include "harness/engine/lock_wait_monitor.h"

#include <algorithm>
#include <memory>

#include <fmt/format.h>
#include <pqxx/pqxx>
#include <spdlog/spdlog.h>

#include "harness/pg/connection.h"
#include "harness/sys/untrusted_text.h"

namespace harness::engine {

namespace {

constexpr auto kPollInterval = std::chrono::milliseconds(10);
// The first poll of a step: most steps are over by then (a millisecond or
// two of catalog work), and are never polled; a wait shorter than this is
// below the monitor's resolution anyway.
constexpr auto kFirstPoll = std::chrono::milliseconds(5);
// The monitor's own connect timeout when the URL sets none: a server that
// took the migration's connection answers a second one at once, and a
// monitor that cannot connect must not hold up the end of a short run.
constexpr const char* kConnectTimeout = "2";
// How long the first step waits for the monitor to be connected.
constexpr auto kReadyWait = std::chrono::milliseconds(2500);
// How long the end of a step waits for a poll in flight (one round trip).
constexpr auto kPollWait = std::chrono::milliseconds(500);
// A poll is one read of pg_stat_activity; never allowed to hang.
constexpr const char* kStatementTimeout = "SET statement_timeout = '2s'";

// The migration's backend, whether it waits for a heavyweight lock, and, only
// then (pg_blocking_pids takes the lock manager's locks briefly), who holds
// it: one row per blocker, or one row with a NULL blocker. The query text is
// cut on the server (by characters, so never inside one) and again, made
// safe, on this side. Each poll is a transaction of its own: a session's
// view of pg_stat_activity is fixed for its transaction.
constexpr const char* kLockWaitQuery = R"SQL(
SELECT a.wait_event_type OPERATOR(pg_catalog.=) 'Lock' AS waiting, k.pid AS blocker,
       b.backend_type, b.application_name, b.usename::pg_catalog.text AS usename, b.state,
       pg_catalog.left(b.query, 200) AS query
FROM pg_catalog.pg_stat_activity a
LEFT JOIN LATERAL pg_catalog.unnest(
         CASE WHEN a.wait_event_type OPERATOR(pg_catalog.=) 'Lock'
              THEN pg_catalog.pg_blocking_pids(a.pid) END) AS k(pid)
       ON true
LEFT JOIN pg_catalog.pg_stat_activity b ON b.pid OPERATOR(pg_catalog.=) k.pid
WHERE a.pid OPERATOR(pg_catalog.=) $1
)SQL";

pg::Url MonitorUrl(const pg::Url& url) {
  if (url.has("connect_timeout")) return url;
  try {
    return pg::Url::Parse(url.ConnInfo({{"connect_timeout", kConnectTimeout}}));
  } catch (const std::exception&) {
    return url;
  }
}

std::string Text(const pqxx::field& f, std::size_t max_chars) {
  return f.is_null() ? std::string() : sys::ShowUntrusted(f.c_str(), max_chars);
}

// "autovacuum worker pid 1234: autovacuum: VACUUM public.code_chunks";
// "client backend pid 77 (psql, user alice, idle in transaction): LOCK ...".
std::string DescribeBlocker(const pqxx::row& r) {
  std::string type = Text(r["backend_type"], 40);
  std::string out = fmt::format("{} pid {}", type.empty() ? "session" : type, r["blocker"].c_str());
  if (r["backend_type"].is_null()) return out + " (gone, or not visible to this role)";
  std::string about;
  auto add = [&](const std::string& s) {
    if (!s.empty()) about += (about.empty() ? "" : ", ") + s;
  };
  add(Text(r["application_name"], 40));
  if (std::string user = Text(r["usename"], 40); !user.empty()) add("user " + user);
  add(Text(r["state"], 40));
  if (!about.empty()) out += " (" + about + ")";
  if (std::string query = Text(r["query"], 80); !query.empty()) out += ": " + query;
  return out;
}

}  // namespace

LockWaitMonitor::LockWaitMonitor(const pg::Url& url, int pid, bool quiet)
    : pid_(pid), quiet_(quiet) {
  try {
    thread_ = std::thread(&LockWaitMonitor::Watch, this, MonitorUrl(url));
  } catch (const std::exception& e) {
    Fail(std::string("no thread to watch from: ") + e.what());
  }
}

LockWaitMonitor::~LockWaitMonitor() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void LockWaitMonitor::Fail(const std::string& why) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    failed_ = true;
  }
  cv_.notify_all();
  spdlog::log(quiet_ ? spdlog::level::debug : spdlog::level::warn,
              "Lock waits are not measured ({}): step times include any wait for a lock, "
              "reported as unknown",
              why);
}

void LockWaitMonitor::Watch(pg::Url url) {
  std::unique_ptr<pg::Connection> conn;
  try {
    // Made as every connection of the tool is (search_path pg_catalog
    // first, the look for planted code); its one query also names the
    // schema of every function and operator it uses.
    conn = std::make_unique<pg::Connection>(url, "migration-harness lock monitor");
    pqxx::nontransaction tx(conn->raw());
    tx.exec(kStatementTimeout);
    conn->raw().prepare("lock_wait", kLockWaitQuery);
  } catch (const std::exception& e) {
    bool stopping;
    {
      std::lock_guard<std::mutex> lock(mu_);
      stopping = stop_;
    }
    // A run that ended before the connection was made lost nothing.
    if (!stopping) Fail(std::string("no second connection: ") + pg::Redact(e.what(), url));
    return;
  } catch (...) {
    Fail("no second connection");
    return;
  }
  try {
    std::unique_lock<std::mutex> lock(mu_);
    ready_ = true;
    last_poll_ = Clock::now();
    cv_.notify_all();
    for (;;) {
      cv_.wait(lock, [&] { return stop_ || active_; });
      if (stop_) return;
      const unsigned long generation = generation_;
      if (last_poll_ < begin_) {
        cv_.wait_until(lock, begin_ + kFirstPoll,
                       [&] { return stop_ || !active_ || generation_ != generation; });
        if (stop_) return;
        if (!active_ || generation_ != generation) continue;
      }
      const Clock::time_point from = std::max(last_poll_, begin_);
      const Clock::time_point at = Clock::now();
      last_poll_ = at;
      in_flight_ = true;
      lock.unlock();
      pqxx::result r;
      std::string error;
      try {
        pqxx::nontransaction tx(conn->raw());
        r = tx.exec_prepared("lock_wait", pid_);
      } catch (const std::exception& e) {
        error = e.what();
      } catch (...) {
        error = "unknown error";
      }
      lock.lock();
      in_flight_ = false;
      if (!error.empty()) {
        lock.unlock();
        Fail("a poll of pg_stat_activity failed: " + sys::ShowUntrusted(error, 200));
        return;
      }
      // No row: the backend is gone; the run sees that itself.
      if (generation == generation_ && !r.empty() && !r[0]["waiting"].is_null() &&
          r[0]["waiting"].as<bool>()) {
        // A wait seen now has lasted, as far as this poll can tell, since
        // the one before: unbiased, to within one interval.
        seconds_ += std::chrono::duration<double>(at - from).count();
        for (const auto& row : r) {
          if (row["blocker"].is_null()) continue;
          int pid = row["blocker"].as<int>();
          if (!blocker_pids_.insert(pid).second) continue;
          if (blockers_.size() < kMaxBlockers)
            blockers_.push_back(DescribeBlocker(row));
          else
            ++more_blockers_;
        }
      }
      cv_.notify_all();
      cv_.wait_for(lock, kPollInterval, [&] { return stop_; });
    }
  } catch (const std::exception& e) {
    // Nothing here may end the process: a thread's exception would.
    Fail(sys::ShowUntrusted(e.what(), 200));
  } catch (...) {
    Fail("unknown error");
  }
}

void LockWaitMonitor::Begin() {
  std::unique_lock<std::mutex> lock(mu_);
  if (!asked_ready_) {
    asked_ready_ = true;
    cv_.wait_for(lock, kReadyWait, [&] { return ready_ || failed_; });
  }
  ++generation_;
  active_ = true;
  watched_from_start_ = ready_ && !failed_;
  begin_ = Clock::now();
  seconds_ = 0;
  blockers_.clear();
  blocker_pids_.clear();
  more_blockers_ = 0;
  cv_.notify_all();
}

LockWait LockWaitMonitor::End() {
  std::unique_lock<std::mutex> lock(mu_);
  const Clock::time_point end = Clock::now();
  active_ = false;
  cv_.notify_all();
  const bool settled = cv_.wait_for(lock, kPollWait, [&] { return !in_flight_ || failed_; });
  LockWait w;
  w.known = watched_from_start_ && !failed_ && settled;
  w.seconds = std::min(seconds_, std::chrono::duration<double>(end - begin_).count());
  w.blockers = blockers_;
  if (more_blockers_ > 0)
    w.blockers.push_back(fmt::format("and {} other session(s)", more_blockers_));
  ++generation_;  // a poll still in flight belongs to no interval
  return w;
}

}  // namespace harness::engine
