#include "harness/cli/context.h"

#include <spdlog/sinks/base_sink.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <iostream>
#include <mutex>

#include "harness/cli/status_line.h"
#include "harness/error.h"
#include "harness/sys/files.h"
#include "harness/sys/untrusted_text.h"

namespace harness::cli {

namespace {

// "cannot write PATH: ..." (pg/files) -> "cannot write the WHAT PATH: ...".
std::string Named(const std::string& message, const std::string& what) {
  const std::string prefix = "cannot write ";
  if (what.empty() || message.rfind(prefix, 0) != 0) return message;
  return prefix + "the " + what + " " + message.substr(prefix.size());
}

// Standard output, buffered, written with write(2): the first error is kept
// (errno), and what follows it is dropped, so the command's own work goes on
// and FinishOutput says it.
class CheckedOutput final : public std::streambuf {
 public:
  CheckedOutput() { setp(buffer_, buffer_ + sizeof buffer_); }
  int error() const { return error_; }

 protected:
  int_type overflow(int_type ch) override {
    if (!Drain()) return traits_type::eof();
    if (!traits_type::eq_int_type(ch, traits_type::eof())) {
      *pptr() = traits_type::to_char_type(ch);
      pbump(1);
    }
    return traits_type::not_eof(ch);
  }
  int sync() override { return Drain() ? 0 : -1; }

 private:
  bool Drain() {
    for (const char* p = pbase(); p < pptr() && error_ == 0;) {
      const ssize_t n = ::write(STDOUT_FILENO, p, static_cast<size_t>(pptr() - p));
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) error_ = n < 0 ? errno : EIO;
      else p += n;
    }
    setp(buffer_, buffer_ + sizeof buffer_);
    return error_ == 0;
  }

  char buffer_[1 << 14];
  int error_ = 0;
};

CheckedOutput* g_output = nullptr;
std::string g_outcome;

// Every log message under the rule for untrusted text, then to the sinks
// (the terminal, the log file): a server NOTICE raised by another role's
// code, a statement's text or a name stays one visible line.
class EscapingSink final : public spdlog::sinks::base_sink<std::mutex> {
 public:
  explicit EscapingSink(std::vector<spdlog::sink_ptr> sinks) : sinks_(std::move(sinks)) {}

 protected:
  void sink_it_(const spdlog::details::log_msg& msg) override {
    const std::string text = sys::Escaped(std::string_view(msg.payload.data(), msg.payload.size()));
    const spdlog::details::log_msg shown(msg.time, msg.source, msg.logger_name, msg.level, text);
    for (auto& s : sinks_)
      if (s->should_log(msg.level)) s->log(shown);
  }
  void flush_() override {
    for (auto& s : sinks_) s->flush();
  }

 private:
  std::vector<spdlog::sink_ptr> sinks_;
};

// --log-file: each line goes straight to a sys::AtomicFile; Finish() renames
// it over the destination. The first write error is kept (the file is
// abandoned, the rest of the log goes to the terminal only), said at once on
// stderr, and thrown again by Finish().
class LogFileSink final : public spdlog::sinks::base_sink<std::mutex> {
 public:
  explicit LogFileSink(const std::string& path) : file_(path) {}

  void Finish() {
    std::lock_guard<std::mutex> lock(mutex_);
    if (finished_) return;
    finished_ = true;
    if (!error_.empty()) throw DatabaseError(error_);
    try {
      file_.Commit();
    } catch (const Error& e) {
      error_ = Named(e.what(), "log file");
      throw DatabaseError(error_);
    }
  }

 protected:
  void sink_it_(const spdlog::details::log_msg& msg) override {
    if (finished_ || !error_.empty()) return;
    spdlog::memory_buf_t buf;
    formatter_->format(msg, buf);
    try {
      file_.Write(std::string_view(buf.data(), buf.size()));
    } catch (const Error& e) {
      error_ = Named(e.what(), "log file");
      std::cerr << "warning: " << error_ << " (the log goes on on the terminal only)\n";
    }
  }
  // Every line is written through at once; errors are reported by Finish().
  void flush_() override {}

 private:
  sys::AtomicFile file_;
  bool finished_ = false;
  std::string error_;
};

std::shared_ptr<LogFileSink> g_log_file;

}  // namespace

void SetupLogging(const GlobalOptions& g) {
  std::vector<spdlog::sink_ptr> sinks;
  auto console = std::make_shared<spdlog::sinks::stderr_color_sink_mt>();
  console->set_pattern("%^%-7l%$ %v");
  sinks.push_back(StatusLine::WrapSink(console));
  if (!g.log_file.empty()) {
    try {
      auto file = std::make_shared<LogFileSink>(g.log_file);
      file->set_pattern("%Y-%m-%d %H:%M:%S.%e %-7l %v");
      sinks.push_back(file);
      g_log_file = file;
    } catch (const Error& e) {
      // Before any work: bad input, exit 2.
      throw UsageError(Named(e.what(), "log file"),
                       "pass a regular file (new or existing) in an existing folder to --log-file");
    }
  }
  auto logger = std::make_shared<spdlog::logger>("harness", std::make_shared<EscapingSink>(sinks));
  logger->set_level(g.verbosity > 0 ? spdlog::level::debug : spdlog::level::info);
  logger->flush_on(spdlog::level::info);
  spdlog::set_default_logger(logger);
}

void PrintError(const std::string& message, const std::string& hint) {
  std::cerr << "error: " << sys::Escaped(message) << "\n";
  if (!hint.empty()) std::cerr << "hint: " << sys::Escaped(hint) << "\n";
}

void InstallCheckedOutput() {
  // Never destroyed: std::cout is flushed once more at exit, after every
  // static of this file is gone.
  static CheckedOutput* const output = new CheckedOutput();
  g_output = output;
  std::cout.rdbuf(output);
  // A terminal sees each line as it is written.
  if (isatty(STDOUT_FILENO)) std::cout << std::unitbuf;
}

void SayIfOutputFails(std::string outcome) { g_outcome = std::move(outcome); }

int FinishOutput(int rc) noexcept {
  try {
    std::cout.flush();
    const int out_error = g_output ? g_output->error() : (std::cout.good() ? 0 : EIO);
    std::cerr.flush();
    if (out_error != 0) {
      PrintError(std::string("cannot write standard output: ") + std::strerror(out_error) +
                     (g_outcome.empty() ? "" : "; " + g_outcome),
                 {});
      return ExitCodeAfterWrites(rc, false);
    }
    // Nothing can say that standard error failed; the exit code does.
    if (std::fflush(stderr) != 0 || std::ferror(stderr)) return ExitCodeAfterWrites(rc, false);
    return rc;
  } catch (...) {
    return ExitCodeAfterWrites(rc, false);
  }
}

int FinishLogging(int rc) noexcept {
  if (!g_log_file) return rc;
  try {
    g_log_file->Finish();
    return rc;
  } catch (const std::exception& e) {
    try {
      PrintError(e.what(), {});
    } catch (...) {
    }
    return ExitCodeAfterWrites(rc, false);
  }
}

void CheckOutputFiles(std::initializer_list<std::pair<std::string, std::string>> files) {
  for (const auto& [what, path] : files) {
    if (path.empty()) continue;
    try {
      sys::CheckWritable(path);
    } catch (const Error& e) {
      throw Error(e.code(), Named(e.what(), what), e.hint());
    }
  }
}

bool WriteOutput(const std::string& what, const std::function<void()>& write) {
  try {
    write();
    return true;
  } catch (const Error& e) {
    PrintError(Named(e.what(), what), e.hint());
    return false;
  } catch (const std::exception& e) {
    PrintError("cannot write the " + what + ": " + e.what(), {});
    return false;
  }
}

std::map<std::string, long long> ParseTableRows(const std::vector<std::string>& values) {
  std::map<std::string, long long> rows;
  for (const auto& tr : values) {
    const auto eq = tr.find('=');
    long long n = -1;
    size_t used = 0;
    try {
      if (eq != std::string::npos) n = std::stoll(tr.substr(eq + 1), &used);
    } catch (const std::exception&) {
    }
    if (eq == std::string::npos || eq == 0 || n < 0 || used == 0 || eq + 1 + used != tr.size())
      throw UsageError("--table-rows takes TABLE=N (N >= 0), not " + tr);
    rows[tr.substr(0, eq)] = n;
  }
  return rows;
}

int ExitCodeAfterWrites(int rc, bool written) {
  return rc != 0 || written ? rc : static_cast<int>(ExitCode::kDatabase);
}

engine::RevisionGraph LoadGraph(const GlobalOptions& g) {
  return engine::RevisionGraph::LoadDirectory(engine::DefaultMigrationsDir(g.migrations_dir));
}

std::unique_ptr<pg::Connection> Connect(const GlobalOptions& g) {
  pg::Url url = pg::Url::Parse(g.database_url);
  spdlog::debug("connecting to {}", url.Describe());
  return std::make_unique<pg::Connection>(url);
}

engine::MigratorOptions MigratorOptionsFrom(const GlobalOptions& g) {
  engine::MigratorOptions o;
  o.lock_timeout_seconds = g.lock_timeout_seconds;
  o.wait_for_migration_lock = !g.no_wait;
  return o;
}

void AddLockRetriesOption(CLI::App* sub, int& lock_retries) {
  sub->add_option("--lock-retries", lock_retries,
                  "When a lock is not granted within --lock-timeout: run the whole transaction again from "
                  "the start, up to N more times, after a pause of 1s, then 2s, 4s... (each attempt logged; "
                  "the one that gave up changed nothing)")
      ->type_name("N")
      ->check(CLI::Range(0, 100))
      ->excludes("--sql");
}

int RunMigrationCommand(const GlobalOptions& g, engine::Direction direction,
                        const std::string& target, bool sql_only, int lock_retries, bool online) {
  const bool up = direction == engine::Direction::kUpgrade;
  engine::RevisionGraph graph = LoadGraph(g);
  if (sql_only) {
    engine::Position from = 0;
    std::unique_ptr<pg::Connection> conn;
    if (!g.database_url.empty()) {
      conn = Connect(g);
      engine::Migrator reader(*conn, graph, MigratorOptionsFrom(g));
      from = reader.Current();
    } else if (!up) {
      throw UsageError("downgrade --sql needs to know the current revision",
                       "pass --database-url (it is only read) or set DATABASE_URL");
    }
    engine::Position to = up ? graph.ResolveUpgradeTarget(target, from)
                             : graph.ResolveDowngradeTarget(target, from);
    std::cout << engine::RenderSql(graph, direction, from, to, g.lock_timeout_seconds);
    return 0;
  }
  auto conn = Connect(g);
  engine::MigratorOptions options = MigratorOptionsFrom(g);
  options.lock_retries = lock_retries;
  options.online = online;
  engine::Migrator migrator(*conn, graph, options);
  engine::RunReport report = up ? migrator.Upgrade(target) : migrator.Downgrade(target);
  // Committed: whatever happens to the output now, that is where it is.
  SayIfOutputFails(report.noop ? fmt::format("nothing was changed: the database is at {}", report.to)
                               : fmt::format("the {} committed: the database is at {}",
                                             up ? "upgrade" : "downgrade", report.to));
  if (report.noop)
    std::cout << "Already at " << report.to << ": nothing to do\n";
  else
    std::cout << (up ? "Upgraded " : "Downgraded ") << report.from << " -> " << report.to
              << " in " << fmt::format("{:.3f}", report.seconds) << "s\n";
  return 0;
}

}  // namespace harness::cli
