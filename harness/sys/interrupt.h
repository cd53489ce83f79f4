// Ctrl-C and SIGTERM: the signals are blocked in every thread and taken by a
// watcher thread, which runs what is registered to stop the work in hand
// (pg::CancelOnInterrupt: cancel the statement running on a connection).
// The main thread then sees the cancelled work, rolls back and unwinds
// normally, so every RAII guard (transaction, scratch database, embedded
// cluster) cleans up. A second signal exits at once.
#pragma once

#include <functional>
#include <string>

namespace harness::sys {

// Call once, first thing in main, before any thread starts.
void InstallInterruptHandler();

// The signal received (SIGINT, SIGTERM) or 0.
int InterruptSignal();

// Throws Error(kInterrupted) when a signal arrived; `doing` names the work.
void ThrowIfInterrupted(const std::string& doing);

// While alive, a signal runs `stop` (on the watcher thread; at once when a
// signal arrived before). Guards may nest: each runs its own.
class OnInterrupt {
 public:
  explicit OnInterrupt(std::function<void()> stop);
  ~OnInterrupt();
  OnInterrupt(const OnInterrupt&) = delete;
  OnInterrupt& operator=(const OnInterrupt&) = delete;

 private:
  std::function<void()> stop_;
};

}  // namespace harness::sys
