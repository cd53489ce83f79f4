// The one place that starts processes (initdb, postgres, pg_dump, the CLI
// under test). fork/exec, never system() or popen().
#pragma once

#include <sys/types.h>

#include <chrono>
#include <filesystem>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace harness::sys {

struct ProcessOptions {
  // When running as root, switch to this user before exec (initdb and
  // postgres refuse to run as root). Ignored when not root.
  std::string run_as_user;
  std::map<std::string, std::string> env;  // added to / overriding the environment
  std::vector<std::string> unset_env;
  std::string stdout_file;  // append stdout and stderr here instead of capturing
  std::optional<std::string> stdin_text;
  std::chrono::seconds timeout{0};  // 0: no limit; on expiry the child is killed
  // The child gets this signal when the parent dies (Linux PR_SET_PDEATHSIG).
  int parent_death_signal = 0;
  // Start a new session so the child does not get the terminal's Ctrl-C.
  bool new_session = false;
  // RunProcess: when the harness is interrupted (SIGINT/SIGTERM), end the
  // child with SIGTERM instead of waiting for it.
  bool stop_on_interrupt = false;
  // The child's working directory; empty: the harness's.
  std::string working_dir;
};

struct ProcessResult {
  int exit_code = -1;  // 128+N when killed by signal N
  std::string out;
  std::string err;
  bool timed_out = false;
};

// Runs argv[0] (looked up in PATH when it has no slash) to completion.
ProcessResult RunProcess(const std::vector<std::string>& argv, const ProcessOptions& options = {});

// Starts argv[0] in the background; output goes to options.stdout_file.
pid_t SpawnProcess(const std::vector<std::string>& argv, const ProcessOptions& options);

// A child spoken to line by line: requests written to its stdin, answers
// read from its stdout a line at a time, its stderr kept (the last 64 KiB)
// for what it says when something fails. Started in a session of its own,
// so that the terminal's Ctrl-C reaches the harness alone, which ends the
// child; ended (SIGTERM, then SIGKILL a second later) and reaped when the
// object dies. The child is ours: its pid cannot be reused before we reap it.
class LineChild {
 public:
  LineChild(const std::vector<std::string>& argv, ProcessOptions options);
  ~LineChild();
  LineChild(const LineChild&) = delete;
  LineChild& operator=(const LineChild&) = delete;

  pid_t pid() const { return pid_; }
  // Writes `line` and a newline; false when the child no longer reads.
  bool Send(const std::string& line);
  // The next line of its stdout (without the newline); nullopt when it
  // closed its stdout (it exited). While it waits, `tick` runs about every
  // `every`: it may throw (an interrupt), which ends the wait.
  std::optional<std::string> ReadLine(const std::function<void()>& tick,
                                      std::chrono::milliseconds every);
  // What it wrote to stderr since the last call.
  std::string TakeErr();
  // Ends it: SIGTERM, SIGKILL after `grace`, reaped. Its exit code.
  int Stop(std::chrono::milliseconds grace = std::chrono::milliseconds(1000));

 private:
  void Drain(int fd, std::string& into, bool& open, size_t keep);
  pid_t pid_ = -1;
  int in_ = -1, out_ = -1, err_ = -1;
  bool out_open_ = true, err_open_ = true;
  std::string out_buf_, err_buf_;
  int exit_code_ = -1;
};

// Waits up to `timeout` for pid (a child) to exit; true when it did.
bool WaitForExit(pid_t pid, std::chrono::milliseconds timeout, int* status = nullptr);

// Whether pid runs: a zombie (exited, not yet reaped, as an orphan's may
// stay where PID 1 does not reap) counts as gone.
bool ProcessAlive(pid_t pid);

// The process's start time (clock ticks since boot, /proc/PID/stat field
// 22): with the pid it names one process whatever pid reuse happens. 0 when
// the process is gone or a zombie.
unsigned long long ProcessStartTime(pid_t pid);

// The real uid of pid (/proc/PID/status "Uid:"), or nullopt when the
// process is gone.
std::optional<uid_t> ProcessUid(pid_t pid);

// The working directory of pid (readlink /proc/PID/cwd), or nullopt when the
// process is gone, a zombie, or not ours to look into. A postmaster's is its
// data directory. A directory removed since reads "... (deleted)".
std::optional<std::filesystem::path> ProcessCwd(pid_t pid);

// One process held by a pidfd (by its start time where the kernel has no
// pidfd): a signal sent through it reaches the process that had the pid
// when it was pinned, never a later one that reuses the number. Pin, check
// the process (ProcessUid, ProcessCwd), then Alive() (the checks read that
// same process only when it still runs after them), then Signal().
class PinnedProcess {
 public:
  explicit PinnedProcess(pid_t pid);
  ~PinnedProcess();
  PinnedProcess(const PinnedProcess&) = delete;
  PinnedProcess& operator=(const PinnedProcess&) = delete;

  pid_t pid() const { return pid_; }
  // Whether the pinned process still runs (a zombie counts as gone).
  bool Alive() const;
  // Sends sig to the pinned process; false when it is gone.
  bool Signal(int sig) const;
  // Waits up to `timeout` for the pinned process to end; true when it did.
  bool WaitGone(std::chrono::milliseconds timeout) const;

 private:
  pid_t pid_;
  int fd_ = -1;
  unsigned long long start_ = 0;  // 0: gone when pinned
};

// Uid/gid of `user`, or nullopt.
struct UserIds {
  uid_t uid;
  gid_t gid;
};
std::optional<UserIds> LookupUser(const std::string& user);

}  // namespace harness::sys
