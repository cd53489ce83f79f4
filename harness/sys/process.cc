#include "harness/sys/process.h"

#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>

#include "harness/error.h"
#include "harness/sys/interrupt.h"

namespace harness::sys {

namespace {

std::string Errno(const std::string& what) { return what + ": " + std::strerror(errno); }

// Everything the child needs, prepared before fork: after fork only
// async-signal-safe calls are made.
struct ChildPlan {
  std::vector<std::string> argv_storage;
  std::vector<char*> argv;
  std::vector<std::string> env_storage;
  std::vector<char*> envp;
  std::optional<UserIds> ids;
  std::string user;
  int out_fd = -1;
  int err_fd = -1;
  int in_fd = -1;
  int death_signal = 0;
  pid_t parent = 0;
  bool new_session = false;
  std::string working_dir;
};

ChildPlan Prepare(const std::vector<std::string>& argv, const ProcessOptions& o) {
  if (argv.empty()) throw std::invalid_argument("RunProcess: empty argv");
  ChildPlan p;
  p.argv_storage = argv;
  for (auto& a : p.argv_storage) p.argv.push_back(a.data());
  p.argv.push_back(nullptr);
  std::map<std::string, std::string> env;
  for (char** e = environ; *e; ++e) {
    std::string kv = *e;
    auto eq = kv.find('=');
    if (eq != std::string::npos) env[kv.substr(0, eq)] = kv.substr(eq + 1);
  }
  for (const auto& k : o.unset_env) env.erase(k);
  for (const auto& [k, v] : o.env) env[k] = v;
  if (!o.run_as_user.empty() && geteuid() == 0) {
    p.ids = LookupUser(o.run_as_user);
    if (!p.ids)
      throw Error(ExitCode::kDatabase, "user '" + o.run_as_user + "' does not exist",
                  "install the postgresql package, which creates it");
    p.user = o.run_as_user;
    env["HOME"] = "/tmp";
    env["USER"] = o.run_as_user;
  }
  for (const auto& [k, v] : env) p.env_storage.push_back(k + "=" + v);
  for (auto& e : p.env_storage) p.envp.push_back(e.data());
  p.envp.push_back(nullptr);
  p.death_signal = o.parent_death_signal;
  p.parent = getpid();
  p.new_session = o.new_session;
  p.working_dir = o.working_dir;
  return p;
}

[[noreturn]] void ExecChild(ChildPlan& p) {
  if (p.new_session) setsid();
  if (p.in_fd >= 0) dup2(p.in_fd, 0);
  else {
    int devnull = open("/dev/null", O_RDONLY);
    if (devnull >= 0) dup2(devnull, 0);
  }
  if (p.out_fd >= 0) dup2(p.out_fd, 1);
  if (p.err_fd >= 0) dup2(p.err_fd, 2);
  // Only stdin/stdout/stderr cross into the child: an inherited pipe would
  // keep a reader waiting for end-of-file as long as the child lives.
  close_range(3, ~0U, 0);
  sigset_t all;
  sigemptyset(&all);
  sigprocmask(SIG_SETMASK, &all, nullptr);  // the harness blocks SIGINT/SIGTERM; children must not
  signal(SIGPIPE, SIG_DFL);
  if (p.ids) {
    if (initgroups(p.user.c_str(), p.ids->gid) != 0 || setgid(p.ids->gid) != 0 ||
        setuid(p.ids->uid) != 0)
      _exit(126);
  }
  // After setuid: a credential change clears the parent-death signal.
  if (p.death_signal != 0) {
    prctl(PR_SET_PDEATHSIG, p.death_signal);
    if (getppid() != p.parent) _exit(125);
  }
  if (!p.working_dir.empty() && chdir(p.working_dir.c_str()) != 0) _exit(124);
  if (p.argv_storage[0].find('/') == std::string::npos)
    execvpe(p.argv[0], p.argv.data(), p.envp.data());
  else
    execve(p.argv[0], p.argv.data(), p.envp.data());
  _exit(127);
}

int DecodeStatus(int status) {
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return -1;
}

}  // namespace

std::optional<UserIds> LookupUser(const std::string& user) {
  struct passwd pw;
  struct passwd* found = nullptr;
  char buf[4096];
  if (getpwnam_r(user.c_str(), &pw, buf, sizeof buf, &found) != 0 || found == nullptr)
    return std::nullopt;
  return UserIds{pw.pw_uid, pw.pw_gid};
}

unsigned long long ProcessStartTime(pid_t pid) {
  if (pid <= 0) return 0;
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string stat((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  auto paren = stat.rfind(')');  // the command name may hold spaces and parentheses
  if (paren == std::string::npos) return 0;
  std::istringstream fields(stat.substr(paren + 1));
  std::string state;
  fields >> state;  // field 3
  if (state.empty() || state == "Z" || state == "X") return 0;
  std::string skip;
  for (int field = 4; field < 22; ++field) fields >> skip;
  unsigned long long start = 0;
  fields >> start;
  return start;
}

bool ProcessAlive(pid_t pid) { return ProcessStartTime(pid) != 0; }

std::optional<uid_t> ProcessUid(pid_t pid) {
  if (pid <= 0) return std::nullopt;
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("Uid:", 0) != 0) continue;
    std::istringstream fields(line.substr(4));
    long long real = -1;  // Uid: real effective saved filesystem
    if (fields >> real && real >= 0) return static_cast<uid_t>(real);
    return std::nullopt;
  }
  return std::nullopt;
}

std::optional<std::filesystem::path> ProcessCwd(pid_t pid) {
  if (pid <= 0) return std::nullopt;
  std::error_code ec;
  auto cwd = std::filesystem::read_symlink("/proc/" + std::to_string(pid) + "/cwd", ec);
  if (ec || cwd.empty()) return std::nullopt;
  return cwd;
}

PinnedProcess::PinnedProcess(pid_t pid) : pid_(pid) {
  if (pid <= 0) return;
#if defined(SYS_pidfd_open) && defined(SYS_pidfd_send_signal)
  fd_ = static_cast<int>(syscall(SYS_pidfd_open, pid, 0));
  if (fd_ < 0 && errno == ESRCH) return;  // gone; any other failure: pin by start time
#endif
  start_ = ProcessStartTime(pid);
#if defined(SYS_pidfd_open) && defined(SYS_pidfd_send_signal)
  // The start time read after the pidfd was opened is the pinned process's
  // only if that process still exists now: until it is reaped, no other
  // process can have its pid.
  if (fd_ >= 0 && syscall(SYS_pidfd_send_signal, fd_, 0, nullptr, 0) != 0 && errno == ESRCH)
    start_ = 0;
#endif
}

PinnedProcess::~PinnedProcess() {
  if (fd_ >= 0) close(fd_);
}

bool PinnedProcess::Alive() const {
  return start_ != 0 && ProcessStartTime(pid_) == start_;
}

bool PinnedProcess::Signal(int sig) const {
  if (!Alive()) return false;
#if defined(SYS_pidfd_open) && defined(SYS_pidfd_send_signal)
  if (fd_ >= 0) return syscall(SYS_pidfd_send_signal, fd_, sig, nullptr, 0) == 0;
#endif
  return kill(pid_, sig) == 0;  // no pidfd: the start time just matched
}

bool PinnedProcess::WaitGone(std::chrono::milliseconds timeout) const {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    if (!Alive()) return true;
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
}

ProcessResult RunProcess(const std::vector<std::string>& argv, const ProcessOptions& o) {
  ChildPlan plan = Prepare(argv, o);
  int out[2], err[2], in[2] = {-1, -1};
  int file_fd = -1;
  if (!o.stdout_file.empty()) {
    file_fd = open(o.stdout_file.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (file_fd < 0) throw DatabaseError(Errno("cannot open " + o.stdout_file));
  }
  if (pipe2(out, O_CLOEXEC) != 0 || pipe2(err, O_CLOEXEC) != 0) throw DatabaseError(Errno("pipe"));
  if (o.stdin_text && pipe2(in, O_CLOEXEC) != 0) throw DatabaseError(Errno("pipe"));
  plan.out_fd = file_fd >= 0 ? file_fd : out[1];
  plan.err_fd = file_fd >= 0 ? file_fd : err[1];
  plan.in_fd = in[0];
  pid_t pid = fork();
  if (pid < 0) throw DatabaseError(Errno("fork"));
  if (pid == 0) ExecChild(plan);
  close(out[1]);
  close(err[1]);
  if (file_fd >= 0) close(file_fd);
  if (in[0] >= 0) close(in[0]);
  if (in[1] >= 0) {
    // Small inputs only (SQL scripts); a large one would need polling.
    std::thread writer([fd = in[1], text = *o.stdin_text] {
      size_t done = 0;
      while (done < text.size()) {
        ssize_t n = write(fd, text.data() + done, text.size() - done);
        if (n <= 0) break;
        done += static_cast<size_t>(n);
      }
      close(fd);
    });
    writer.detach();
  }
  ProcessResult result;
  auto deadline = std::chrono::steady_clock::now() + o.timeout;
  struct pollfd fds[2] = {{out[0], POLLIN, 0}, {err[0], POLLIN, 0}};
  std::string* sinks[2] = {&result.out, &result.err};
  int open_fds = 2;
  char buf[65536];
  bool stopped = false;
  while (open_fds > 0) {
    int wait_ms = o.stop_on_interrupt ? 200 : -1;
    if (o.stop_on_interrupt && !stopped && InterruptSignal() != 0) {
      kill(pid, SIGTERM);
      stopped = true;
    }
    if (o.timeout.count() > 0) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0) {
        result.timed_out = true;
        kill(pid, SIGKILL);
        break;
      }
      wait_ms = wait_ms < 0 ? static_cast<int>(left.count())
                            : std::min(wait_ms, static_cast<int>(left.count()));
    }
    int n = poll(fds, 2, wait_ms);
    if (n < 0 && errno == EINTR) continue;
    for (int i = 0; i < 2; ++i) {
      if (fds[i].fd < 0 || fds[i].revents == 0) continue;
      ssize_t got = read(fds[i].fd, buf, sizeof buf);
      if (got > 0) {
        sinks[i]->append(buf, static_cast<size_t>(got));
      } else {
        close(fds[i].fd);
        fds[i].fd = -1;
        --open_fds;
      }
    }
  }
  for (auto& f : fds)
    if (f.fd >= 0) close(f.fd);
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  result.exit_code = DecodeStatus(status);
  return result;
}

pid_t SpawnProcess(const std::vector<std::string>& argv, const ProcessOptions& o) {
  ChildPlan plan = Prepare(argv, o);
  int fd = -1;
  if (!o.stdout_file.empty()) {
    fd = open(o.stdout_file.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (fd < 0) throw DatabaseError(Errno("cannot open " + o.stdout_file));
    if (plan.ids && fchown(fd, plan.ids->uid, plan.ids->gid) != 0)
      throw DatabaseError(Errno("cannot chown " + o.stdout_file));
  }
  plan.out_fd = fd;
  plan.err_fd = fd;
  pid_t pid = fork();
  if (pid < 0) throw DatabaseError(Errno("fork"));
  if (pid == 0) ExecChild(plan);
  if (fd >= 0) close(fd);
  return pid;
}

LineChild::LineChild(const std::vector<std::string>& argv, ProcessOptions o) {
  o.new_session = true;
  ChildPlan plan = Prepare(argv, o);
  int in[2], out[2], err[2];
  if (pipe2(in, O_CLOEXEC) != 0) throw DatabaseError(Errno("pipe"));
  if (pipe2(out, O_CLOEXEC) != 0 || pipe2(err, O_CLOEXEC) != 0) {
    close(in[0]);
    close(in[1]);
    throw DatabaseError(Errno("pipe"));
  }
  plan.in_fd = in[0];
  plan.out_fd = out[1];
  plan.err_fd = err[1];
  pid_ = fork();
  if (pid_ < 0) throw DatabaseError(Errno("fork"));
  if (pid_ == 0) ExecChild(plan);
  close(in[0]);
  close(out[1]);
  close(err[1]);
  in_ = in[1];
  out_ = out[0];
  err_ = err[0];
}

LineChild::~LineChild() {
  try {
    Stop();
  } catch (...) {
  }
}

bool LineChild::Send(const std::string& line) {
  if (in_ < 0) return false;
  // A child that is gone makes the write fail with EPIPE, not kill us:
  // SIGPIPE is blocked in this thread for the write, and taken if raised.
  sigset_t pipe_set, old;
  sigemptyset(&pipe_set);
  sigaddset(&pipe_set, SIGPIPE);
  pthread_sigmask(SIG_BLOCK, &pipe_set, &old);
  const std::string text = line + "\n";
  size_t done = 0;
  bool ok = true;
  while (done < text.size()) {
    ssize_t n = write(in_, text.data() + done, text.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      ok = false;
      break;
    }
    done += static_cast<size_t>(n);
  }
  if (!ok) {
    struct timespec zero = {0, 0};
    sigtimedwait(&pipe_set, nullptr, &zero);
  }
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
  return ok;
}

void LineChild::Drain(int fd, std::string& into, bool& open, size_t keep) {
  char buf[65536];
  ssize_t got = read(fd, buf, sizeof buf);
  if (got > 0) {
    into.append(buf, static_cast<size_t>(got));
    if (keep && into.size() > keep) into.erase(0, into.size() - keep);
  } else if (got == 0 || (errno != EINTR && errno != EAGAIN)) {
    open = false;
  }
}

std::optional<std::string> LineChild::ReadLine(const std::function<void()>& tick, std::chrono::milliseconds every) {
  for (;;) {
    if (auto nl = out_buf_.find('\n'); nl != std::string::npos) {
      std::string line = out_buf_.substr(0, nl);
      out_buf_.erase(0, nl + 1);
      return line;
    }
    if (!out_open_) return std::nullopt;
    struct pollfd fds[2] = {{out_, POLLIN, 0}, {err_open_ ? err_ : -1, POLLIN, 0}};
    int n = poll(fds, 2, static_cast<int>(every.count()));
    if (n < 0 && errno != EINTR) throw DatabaseError(Errno("poll"));
    if (n > 0) {
      if (fds[1].fd >= 0 && fds[1].revents) Drain(err_, err_buf_, err_open_, 65536);
      if (fds[0].revents) Drain(out_, out_buf_, out_open_, 0);
    }
    if (tick) tick();
  }
}

std::string LineChild::TakeErr() {
  // What is there now, without waiting.
  while (err_open_) {
    struct pollfd fd = {err_, POLLIN, 0};
    if (poll(&fd, 1, 0) <= 0 || !fd.revents) break;
    Drain(err_, err_buf_, err_open_, 65536);
  }
  std::string out;
  out.swap(err_buf_);
  return out;
}

int LineChild::Stop(std::chrono::milliseconds grace) {
  if (in_ >= 0) {
    close(in_);  // a child that reads its requests ends at end of input
    in_ = -1;
  }
  if (pid_ > 0) {
    int status = 0;
    if (!WaitForExit(pid_, std::chrono::milliseconds(50), &status)) {
      kill(pid_, SIGTERM);
      if (!WaitForExit(pid_, grace, &status)) {
        kill(pid_, SIGKILL);
        WaitForExit(pid_, std::chrono::milliseconds(5000), &status);
      }
    }
    exit_code_ = status;
    pid_ = -1;
  }
  for (int* fd : {&out_, &err_})
    if (*fd >= 0) {
      close(*fd);
      *fd = -1;
    }
  return exit_code_;
}

bool WaitForExit(pid_t pid, std::chrono::milliseconds timeout, int* status_out) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    int status = 0;
    pid_t r = waitpid(pid, &status, WNOHANG);
    if (r == pid) {
      if (status_out) *status_out = DecodeStatus(status);
      return true;
    }
    if (r < 0 && errno == ECHILD) return !ProcessAlive(pid);  // not our child
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
}

}  // namespace harness::sys
