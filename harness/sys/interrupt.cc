#include "harness/sys/interrupt.h"

#include <signal.h>
#include <string.h>
#include <unistd.h>

#include <algorithm>
#include <functional>
#include <iterator>
#include <chrono>
#include <atomic>
#include <mutex>
#include <thread>
#include <vector>

#include "harness/error.h"

namespace harness::sys {

namespace {
std::atomic<int> g_signal{0};
std::mutex g_mutex;
std::vector<const std::function<void()>*> g_stops;  // the live guards', in the order made

void Watch(sigset_t set) {
  std::chrono::steady_clock::time_point first;
  for (;;) {
    int sig = 0;
    if (sigwait(&set, &sig) != 0) continue;
    const auto now = std::chrono::steady_clock::now();
    if (g_signal.load() == 0) first = now;
    // `timeout -s TERM`, a CI runner or a terminal's process group may
    // deliver the same request more than once: within a second it is one.
    if (g_signal.load() != 0 && now - first < std::chrono::seconds(1)) continue;
    if (g_signal.exchange(sig) != 0) {
      // Nothing is committed half way (the server rolls back the open
      // transaction), but no clean-up runs either.
      const char msg[] =
          "second interrupt (a second or more after the first): exiting now, without clean-up (the running transaction is rolled "
          "back by the server; a scratch database mh_verify_* may be left behind, and the next "
          "verify on that server drops it; an embedded cluster is removed by the next start)\n";
      (void)!write(2, msg, sizeof msg - 1);
      _exit(128 + sig);
    }
    std::lock_guard<std::mutex> lock(g_mutex);
    for (const auto* stop : g_stops) (*stop)();
  }
}
}  // namespace

void InstallInterruptHandler() {
  static std::once_flag once;
  std::call_once(once, [] {
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &set, nullptr);
    std::thread(Watch, set).detach();
  });
}

int InterruptSignal() { return g_signal.load(); }

void ThrowIfInterrupted(const std::string& doing) {
  int sig = g_signal.load();
  if (sig == 0) return;
  throw Error(ExitCode::kInterrupted,
              std::string("interrupted by ") + (sig == SIGINT ? "SIGINT" : "SIGTERM") +
                  " while " + doing,
              "nothing was committed: the database is as it was before this command");
}

OnInterrupt::OnInterrupt(std::function<void()> stop) : stop_(std::move(stop)) {
  std::lock_guard<std::mutex> lock(g_mutex);
  g_stops.push_back(&stop_);
  if (g_signal.load() != 0) stop_();
}

OnInterrupt::~OnInterrupt() {
  std::lock_guard<std::mutex> lock(g_mutex);
  auto it = std::find(g_stops.rbegin(), g_stops.rend(), &stop_);
  if (it != g_stops.rend()) g_stops.erase(std::next(it).base());
}

}  // namespace harness::sys
