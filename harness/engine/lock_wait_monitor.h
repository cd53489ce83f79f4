// How long a migration step waited for a lock, and for whom. A step's time
// on the clock includes any wait for a lock another session holds (a step
// that locks a table waits for autovacuum until deadlock_timeout cancels
// it, or for a user's session); counted as work, that wait would be scaled to millions
// of rows by a forecast. A background thread with a connection of its own
// watches the migration's backend in pg_stat_activity about every 10 ms
// while a step runs, and names the sessions pg_blocking_pids() reports.
//
// Best effort: it never makes a run fail. When it cannot connect or a poll
// fails it says so once in the log and stops, and the steps it could not
// watch report their wait as unknown, never as 0.
#pragma once

#include <chrono>
#include <condition_variable>
#include <set>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "harness/pg/url.h"

namespace harness::engine {

struct LockWait {
  bool known = false;  // the monitor watched the whole interval
  double seconds = 0;
  // "autovacuum worker pid 1234: autovacuum: VACUUM public.code_chunks",
  // "client backend pid 77 (psql, user alice, idle in transaction): LOCK ..."
  std::vector<std::string> blockers;
};

class LockWaitMonitor {
 public:
  // Starts watching backend `pid` (the migration connection's
  // pg_backend_pid()) from a connection of its own to `url`, made in the
  // background with the tool's usual session settings. Its one log line
  // (when it cannot watch) is a warning, or a debug line when `quiet`.
  LockWaitMonitor(const pg::Url& url, int pid, bool quiet = false);
  // Stops the thread and closes its connection (joins: no poll outlives it).
  ~LockWaitMonitor();
  LockWaitMonitor(const LockWaitMonitor&) = delete;
  LockWaitMonitor& operator=(const LockWaitMonitor&) = delete;

  // An interval of a step starts: waits seen from now on are the step's.
  // The first call waits (a bounded time) for the connection to be made,
  // so that a wait at the very start of step 1 is seen.
  void Begin();
  // The interval ends: the wait seen in it. Waits for a poll in flight
  // (about a millisecond), so a wait seen just before the end counts.
  LockWait End();

  // At most this many blockers are named per interval; more are counted.
  static constexpr std::size_t kMaxBlockers = 5;

 private:
  using Clock = std::chrono::steady_clock;
  void Watch(pg::Url url);
  void Fail(const std::string& why);

  const int pid_;
  const bool quiet_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  bool ready_ = false;   // connected, polling
  bool failed_ = false;  // gave up: every wait from now on is unknown
  bool active_ = false;  // inside Begin() .. End()
  bool in_flight_ = false;
  unsigned long generation_ = 0;  // one per Begin(): a late poll of an old interval is dropped
  bool asked_ready_ = false;  // the first Begin() waited for the connection
  bool watched_from_start_ = false;
  Clock::time_point begin_;
  Clock::time_point last_poll_;
  double seconds_ = 0;
  std::vector<std::string> blockers_;
  std::set<int> blocker_pids_;
  int more_blockers_ = 0;
  std::thread thread_;  // last: started once the members above exist
};

}  // namespace harness::engine
