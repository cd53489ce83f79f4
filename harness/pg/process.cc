#include "harness/pg/process.h"

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
#include "harness/pg/interrupt.h"

namespace harness::pg {

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

}  // namespace harness::pg
