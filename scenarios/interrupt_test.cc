// The interrupt watcher (harness/pg/interrupt.h) in a child process of its
// own: the same request delivered twice within a second (`timeout -s TERM`
// signals the tool, then its process group) is one interrupt, so the
// clean-up runs; a second request a second or more later exits at once.
// The verify test under real `timeout` cannot pin this: the two signals
// often merge in the kernel before the first is taken.
#include <gtest/gtest.h>

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness/pg/interrupt.h"

namespace harness::testing {
namespace {

// Forks; the child installs the watcher, sends itself SIGTERM, then again
// after `gap_ms`, waits a moment and exits 0 when it is still running with
// the interrupt recorded. Returns the child's wait status.
int TwoSignals(int gap_ms) {
  pid_t child = fork();
  if (child == 0) {
    sys::InstallInterruptHandler();
    kill(getpid(), SIGTERM);
    usleep(static_cast<useconds_t>(gap_ms) * 1000);
    kill(getpid(), SIGTERM);
    usleep(300 * 1000);
    _exit(sys::InterruptSignal() == SIGTERM ? 0 : 1);
  }
  int status = 0;
  waitpid(child, &status, 0);
  return status;
}

TEST(Interrupt, TheSameRequestTwiceWithinASecondIsOneInterrupt) {
  int status = TwoSignals(200);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0) << "the second SIGTERM, 0.2 s later, ended the process";
}

TEST(Interrupt, ASecondRequestASecondLaterExitsAtOnce) {
  int status = TwoSignals(1200);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 128 + SIGTERM) << "the second SIGTERM, 1.2 s later, was ignored";
}

}  // namespace
}  // namespace harness::testing
