// test-cluster: the CTest fixture that gives one PostgreSQL cluster to a
// whole ctest run.
//
// `start` first stops a keeper that an earlier run left in the state file,
// then forks a keeper that owns the cluster (its postgres dies with the
// keeper), writes the state file and returns once the server accepts
// connections. The keeper watches the process that ran `start` (ctest): when
// that process is gone (ctest killed, Ctrl-C) the keeper stops and removes
// the cluster by itself, so an aborted run leaves nothing behind.
//
// `stop` ends the keeper, which removes it all. With HARNESS_KEEP_FAILED=1
// and a database kept by a failed test (listed in STATE.kept), it instead
// tells the keeper to stop watching ctest and leaves the cluster running for
// inspection, printing how to connect and how to stop it. A later `stop`
// (the kept list is then consumed), the next `start` or --max-hours end it.
#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "harness/pg/cluster.h"
#include "harness/sys/process.h"
#include "scenarios/support/state_file.h"

namespace fs = std::filesystem;

namespace {

int Usage() {
  std::fprintf(stderr, "usage: test-cluster start|stop --state FILE [--max-hours H]\n");
  return 2;
}

std::string Quote(const std::string& s) {
  if (!s.empty() && s.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                        "0123456789/._-+=:,@") == std::string::npos)
    return s;
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

struct State {
  std::string socket_dir;
  int port = 0;
  pid_t keeper_pid = -1;
  unsigned long long keeper_start = 0;  // 0: a state file from before it was recorded
  pid_t postmaster_pid = -1;
  int max_hours = 0;
  std::string stop_command;
};

State ReadState(const std::string& path) {
  harness::testing::StateFile f(path);
  State s;
  s.socket_dir = f.Get("socket_dir");
  s.port = static_cast<int>(f.Number("port"));
  s.keeper_pid = static_cast<pid_t>(f.Number("keeper_pid", -1));
  s.keeper_start = static_cast<unsigned long long>(f.Number("keeper_start"));
  s.postmaster_pid = static_cast<pid_t>(f.Number("postmaster_pid", -1));
  s.max_hours = static_cast<int>(f.Number("max_hours"));
  s.stop_command = f.Get("stop_command");
  return s;
}

// The parent the cluster was made in: its socket directory is the cluster
// directory, PARENT/migration-harness-EUID/cluster-XXXXXX.
fs::path ClusterParent(const State& s) {
  return fs::path(s.socket_dir).parent_path().parent_path();
}

std::string KeptFile(const std::string& state) { return state + ".kept"; }

std::vector<std::string> ReadKept(const std::string& state) {
  std::vector<std::string> names;
  std::ifstream in(KeptFile(state));
  std::string line;
  while (std::getline(in, line))
    if (!line.empty()) names.push_back(line);
  return names;
}

// Whether the keeper recorded in `s` still runs (and is that keeper, not a
// process that reused its pid).
bool KeeperAlive(const State& s) {
  unsigned long long start = harness::sys::ProcessStartTime(s.keeper_pid);
  if (start == 0) return false;
  if (s.keeper_start != 0) return start == s.keeper_start;
  std::ifstream in("/proc/" + std::to_string(s.keeper_pid) + "/cmdline");
  std::string cmd((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  return cmd.find("test-cluster") != std::string::npos;
}

// Ends the keeper (it stops and removes its cluster) and waits for it.
void StopKeeper(const State& s) {
  kill(s.keeper_pid, SIGTERM);
  for (int i = 0; i < 3000 && KeeperAlive(s); ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  if (KeeperAlive(s)) {
    std::fprintf(stderr, "test cluster keeper %d did not stop; killing it\n", s.keeper_pid);
    kill(s.keeper_pid, SIGKILL);
    for (int i = 0; i < 500 && KeeperAlive(s); ++i)
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    // Its postgres gets SIGQUIT (parent-death signal); remove the directory.
    if (!s.socket_dir.empty()) harness::pg::EmbeddedCluster::ReapStale(ClusterParent(s));
  }
}

void RemoveStateFiles(const std::string& state) {
  std::remove(state.c_str());
  std::remove(KeptFile(state).c_str());
}

// The keeper: runs in its own session, owns the cluster, and ends with
// SIGTERM/SIGINT/SIGHUP, with the death of `owner` (unless told to stay by
// SIGUSR1), or after max_hours.
[[noreturn]] void Keeper(const std::string& state, int max_hours, int ready_fd, pid_t owner,
                         unsigned long long owner_start) {
  setsid();
  signal(SIGPIPE, SIG_IGN);  // `start` may be gone before "ready" is written
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGHUP);
  sigaddset(&set, SIGUSR1);
  sigprocmask(SIG_BLOCK, &set, nullptr);
  std::unique_ptr<harness::pg::EmbeddedCluster> cluster;
  try {
    cluster = harness::pg::EmbeddedCluster::Start();
    std::error_code ec;
    fs::path self = fs::read_symlink("/proc/self/exe", ec);
    std::string tmp = state + ".tmp";
    {
      std::ofstream out(tmp);
      out << "socket_dir=" << cluster->address().socket_dir << "\n"
          << "port=" << cluster->address().port << "\n"
          << "keeper_pid=" << getpid() << "\n"
          << "keeper_start=" << harness::sys::ProcessStartTime(getpid()) << "\n"
          << "postmaster_pid=" << cluster->postmaster_pid() << "\n"
          << "max_hours=" << max_hours << "\n"
          << "stop_command=" << Quote(ec ? "test-cluster" : self.string()) << " stop --state "
          << Quote(fs::absolute(state, ec).string()) << "\n";
    }
    std::rename(tmp.c_str(), state.c_str());
    std::string msg = "ready: PostgreSQL " + cluster->server_version() + " in " +
                      cluster->dir().string() + ", started in " +
                      std::to_string(cluster->start_seconds()) + "s\n";
    (void)!write(ready_fd, msg.data(), msg.size());
  } catch (const std::exception& e) {
    std::string msg = std::string("error: cannot start the test cluster: ") + e.what() + "\n";
    (void)!write(ready_fd, msg.data(), msg.size());
    _exit(1);
  }
  close(ready_fd);
  int devnull = open("/dev/null", O_RDWR);
  dup2(devnull, 0);
  dup2(devnull, 1);
  dup2(devnull, 2);
  if (devnull > 2) close(devnull);

  auto limit = std::chrono::hours(max_hours);
  auto deadline = std::chrono::steady_clock::now() + limit;
  bool watching = true;
  for (;;) {
    timespec tick{0, 200'000'000};
    int sig = sigtimedwait(&set, nullptr, &tick);
    if (sig == SIGUSR1) {  // `stop` with kept databases: outlive ctest
      watching = false;
      deadline = std::chrono::steady_clock::now() + limit;
      continue;
    }
    if (sig > 0) break;
    if (std::chrono::steady_clock::now() >= deadline) break;
    if (watching && harness::sys::ProcessStartTime(owner) != owner_start) {
      // `stop` signals before it exits, and ctest exits after it: a SIGUSR1
      // sent before the owner died is pending now.
      timespec now{0, 0};
      sig = sigtimedwait(&set, nullptr, &now);
      if (sig == SIGUSR1) {
        watching = false;
        deadline = std::chrono::steady_clock::now() + limit;
        continue;
      }
      break;
    }
  }
  cluster.reset();
  if (ReadState(state).keeper_pid == getpid()) RemoveStateFiles(state);
  _exit(0);
}

int Start(const std::string& state, int max_hours) {
  // The process that ran us (ctest): the cluster lives as long as it does.
  pid_t owner = getppid();
  unsigned long long owner_start = harness::sys::ProcessStartTime(owner);

  State old = ReadState(state);
  if (old.keeper_pid > 0 && KeeperAlive(old)) {
    std::printf("stopping the test cluster an earlier run left (keeper %d, %s)\n",
                old.keeper_pid, old.socket_dir.c_str());
    StopKeeper(old);
  }
  RemoveStateFiles(state);

  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0) return 3;
  std::fflush(stdout);
  pid_t pid = fork();
  if (pid < 0) return 3;
  if (pid == 0) {
    close(fds[0]);
    Keeper(state, max_hours, fds[1], owner, owner_start);
  }
  close(fds[1]);
  std::string msg;
  char buf[512];
  ssize_t n;
  while ((n = read(fds[0], buf, sizeof buf)) > 0) msg.append(buf, static_cast<size_t>(n));
  std::fputs(msg.c_str(), stdout);
  return msg.rfind("ready", 0) == 0 ? 0 : 1;
}

bool KeepFailed() {
  const char* keep = std::getenv("HARNESS_KEEP_FAILED");
  return keep && std::string(keep) == "1";
}

int Stop(const std::string& state) {
  State s = ReadState(state);
  if (s.keeper_pid <= 0) {
    std::printf("no test cluster recorded in %s\n", state.c_str());
    RemoveStateFiles(state);
    return 0;
  }
  if (!KeeperAlive(s)) {
    std::printf("the test cluster keeper %d is already gone\n", s.keeper_pid);
    if (!s.socket_dir.empty()) harness::pg::EmbeddedCluster::ReapStale(ClusterParent(s));
    RemoveStateFiles(state);
    return 0;
  }
  if (KeepFailed()) {
    std::vector<std::string> kept = ReadKept(state);
    if (!kept.empty()) {
      // Signalled before we exit, so before ctest does: see Keeper().
      kill(s.keeper_pid, SIGUSR1);
      // Consumed: the next `stop` stops, even with HARNESS_KEEP_FAILED=1 still set.
      std::remove(KeptFile(state).c_str());
      std::printf("HARNESS_KEEP_FAILED=1: the test cluster stays running for inspection\n"
                  "(PostgreSQL on socket %s, port %d, user postgres). Kept databases:\n",
                  s.socket_dir.c_str(), s.port);
      for (const auto& name : kept)
        std::printf("  psql \"host='%s' port=%d user=postgres dbname='%s'\"\n",
                    s.socket_dir.c_str(), s.port, name.c_str());
      std::printf("Stop it with:\n  %s\n"
                  "(the next ctest run stops it too; it stops by itself after %d hours)\n",
                  s.stop_command.empty() ? ("test-cluster stop --state " + Quote(state)).c_str()
                                         : s.stop_command.c_str(),
                  s.max_hours > 0 ? s.max_hours : 3);
      return 0;
    }
    std::printf("HARNESS_KEEP_FAILED=1, but no test kept a database since the last stop: "
                "stopping the cluster\n");
  }
  StopKeeper(s);
  RemoveStateFiles(state);
  std::printf("stopped the test cluster\n");
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 4 || std::strcmp(argv[2], "--state") != 0) return Usage();
  std::string cmd = argv[1], state = argv[3];
  int max_hours = 3;
  if (argc >= 6 && std::strcmp(argv[4], "--max-hours") == 0) max_hours = std::atoi(argv[5]);
  if (max_hours <= 0) return Usage();
  if (cmd == "start") return Start(state, max_hours);
  if (cmd == "stop") return Stop(state);
  return Usage();
}
