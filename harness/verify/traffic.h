// `verify --with-traffic`: the queue behind a migration's lock, rehearsed.
// On the copy the rehearsal works on (never the database itself), while the
// measured upgrade runs:
//   - a long reader: a session that took ACCESS SHARE on the tables (the 8
//     biggest with rows and a one-column primary key of a built-in type)
//     before the upgrade began, and keeps it `hold` seconds into it, as a
//     report query would; the upgrade's ACCESS EXCLUSIVE
//     request waits behind it, and every later query on the table waits
//     behind that request;
//   - steady traffic: a reader (a primary-key lookup) and a writer (ROW
//     EXCLUSIVE, as an UPDATE takes, then the row FOR UPDATE: no trigger,
//     no change) each on its own connection, one table after another,
//     every 5 to 10 ms. Each operation's time is kept.
#pragma once

#include <atomic>
#include <chrono>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "harness/checks/check_result.h"
#include "harness/inspect/table_reading.h"
#include "harness/pg/connection.h"
#include "harness/pg/url.h"

namespace harness::verify {

class Traffic {
 public:
  // Picks the tables (the 8 biggest of `tables`), samples their keys, takes
  // the long reader's locks and starts the steady clients; returns once
  // each has run a few operations. Throws harness::Error when there is no
  // table to work on.
  Traffic(const pg::Url& url, const std::vector<inspect::TableReading>& tables, double hold_seconds);
  ~Traffic();
  Traffic(const Traffic&) = delete;
  Traffic& operator=(const Traffic&) = delete;

  // The upgrade starts now: the long reader lets go `hold` seconds later.
  void UpgradeStarts();
  // The upgrade is over (done or failed): the clients stop.
  void Stop();

  // The suite "traffic": the long reader, what the upgrade did behind it
  // (`upgrade`: "the upgrade waited 1.990s for its locks"), each client's
  // count and longest operation, how many waited past 100 ms.
  checks::SuiteResult Suite(const std::string& upgrade) const;
  // The longest single operation of either client, seconds.
  double Longest() const;
  std::string HoldText() const;  // "a reader held AccessShareLock on 3 table(s) (...) ... 2.000s into it"
  std::string Tables() const;    // "3 table(s): events, accounts, audit.entries"
  double Hold() const { return hold_; }

 private:
  struct Target {
    std::string name;    // TableId key, for the report
    std::string quoted;  // schema.table, quoted
    std::string key;     // the primary key column, quoted
    std::vector<std::string> keys;
  };
  struct Op {
    size_t target = 0;
    double seconds = 0;
    bool ok = true;
  };
  void Client(bool writer);
  void LongReader();
  // The clients' connections, which Stop() cancels.
  void Register(pg::Connection* conn, bool add);

  pg::Url url_;
  double hold_;
  std::vector<Target> targets_;
  std::vector<Op> reads_, writes_;  // each written by its client's thread alone
  std::string read_error_, write_error_;
  std::atomic<int> ready_{0};
  std::atomic<bool> locked_{false}, upgrade_started_{false}, stop_{false};
  std::chrono::steady_clock::time_point upgrade_start_;
  double held_ = 0;  // how long the long reader held its locks after the upgrade began
  std::string long_reader_error_;
  std::mutex connections_mutex_;
  std::vector<pg::Connection*> connections_;
  std::thread long_reader_, reader_, writer_;  // last: started once the members above exist
};

}  // namespace harness::verify
