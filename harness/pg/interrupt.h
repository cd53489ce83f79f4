// Ctrl-C and SIGTERM: the signals are blocked in every thread and taken by a
// watcher thread, which cancels the statement running on each registered
// connection. The main thread then sees the cancelled statement, rolls back
// and unwinds normally, so every RAII guard (transaction, scratch database,
// embedded cluster) cleans up. A second signal exits at once.
#pragma once

#include <string>

#include "harness/pg/connection.h"

namespace harness::pg {

// Call once, first thing in main, before any thread starts.
void InstallInterruptHandler();

// The signal received (SIGINT, SIGTERM) or 0.
int InterruptSignal();

// Throws Error(kInterrupted) when a signal arrived; `doing` names the work.
void ThrowIfInterrupted(const std::string& doing);

// While alive, a signal cancels the statement running on `conn`.
class CancelOnInterrupt {
 public:
  explicit CancelOnInterrupt(Connection& conn);
  ~CancelOnInterrupt();
  CancelOnInterrupt(const CancelOnInterrupt&) = delete;
  CancelOnInterrupt& operator=(const CancelOnInterrupt&) = delete;

 private:
  Connection* conn_;
};

}  // namespace harness::pg
