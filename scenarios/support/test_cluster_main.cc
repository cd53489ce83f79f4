// test-cluster: the CTest fixture that gives one PostgreSQL cluster to a
// whole ctest run. `start` forks a keeper that owns the cluster (its
// postgres dies with the keeper), writes the state file and returns once the
// server accepts connections; `stop` ends the keeper, which removes it all.
#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <string>
#include <thread>

#include "harness/pg/cluster.h"
#include "harness/pg/process.h"

namespace {

int Usage() {
  std::fprintf(stderr, "usage: test-cluster start|stop --state FILE [--max-hours H]\n");
  return 2;
}

pid_t ReadKeeper(const std::string& state) {
  std::ifstream in(state);
  std::string line;
  while (std::getline(in, line))
    if (line.rfind("keeper_pid=", 0) == 0) return std::atoi(line.c_str() + 11);
  return -1;
}

int Start(const std::string& state, int max_hours) {
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0) return 3;
  pid_t pid = fork();
  if (pid < 0) return 3;
  if (pid > 0) {
    close(fds[1]);
    std::string msg;
    char buf[512];
    ssize_t n;
    while ((n = read(fds[0], buf, sizeof buf)) > 0) msg.append(buf, static_cast<size_t>(n));
    std::fputs(msg.c_str(), stdout);
    return msg.rfind("ready", 0) == 0 ? 0 : 1;
  }
  // The keeper.
  close(fds[0]);
  setsid();
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGHUP);
  sigprocmask(SIG_BLOCK, &set, nullptr);
  std::unique_ptr<harness::pg::EmbeddedCluster> cluster;
  try {
    cluster = harness::pg::EmbeddedCluster::Start();
    std::string tmp = state + ".tmp";
    {
      std::ofstream out(tmp);
      out << "socket_dir=" << cluster->address().socket_dir << "\n"
          << "port=" << cluster->address().port << "\n"
          << "keeper_pid=" << getpid() << "\n"
          << "postmaster_pid=" << cluster->postmaster_pid() << "\n";
    }
    std::rename(tmp.c_str(), state.c_str());
    std::string msg = "ready: PostgreSQL " + cluster->server_version() + " in " +
                      cluster->dir().string() + ", started in " +
                      std::to_string(cluster->start_seconds()) + "s\n";
    (void)!write(fds[1], msg.data(), msg.size());
  } catch (const std::exception& e) {
    std::string msg = std::string("error: cannot start the test cluster: ") + e.what() + "\n";
    (void)!write(fds[1], msg.data(), msg.size());
    _exit(1);
  }
  close(fds[1]);
  int devnull = open("/dev/null", O_RDWR);
  dup2(devnull, 0);
  dup2(devnull, 1);
  dup2(devnull, 2);
  // Wait for `stop`, or give up after max_hours so an aborted ctest run
  // never leaves a server behind for long.
  timespec limit{static_cast<time_t>(max_hours) * 3600, 0};
  sigtimedwait(&set, nullptr, &limit);
  cluster.reset();
  std::remove(state.c_str());
  _exit(0);
}

int Stop(const std::string& state) {
  pid_t keeper = ReadKeeper(state);
  if (keeper <= 0) {
    std::printf("no test cluster recorded in %s\n", state.c_str());
    return 0;
  }
  kill(keeper, SIGTERM);
  for (int i = 0; i < 3000 && harness::pg::ProcessAlive(keeper); ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  if (harness::pg::ProcessAlive(keeper)) {
    std::fprintf(stderr, "test cluster keeper %d did not stop; killing it\n", keeper);
    kill(keeper, SIGKILL);
  }
  std::remove(state.c_str());
  std::printf("stopped the test cluster\n");
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 4 || std::strcmp(argv[2], "--state") != 0) return Usage();
  std::string cmd = argv[1], state = argv[3];
  int max_hours = 3;
  if (argc >= 6 && std::strcmp(argv[4], "--max-hours") == 0) max_hours = std::atoi(argv[5]);
  if (cmd == "start") return Start(state, max_hours);
  if (cmd == "stop") return Stop(state);
  return Usage();
}
