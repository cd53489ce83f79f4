#include "harness/cli/status_line.h"

#include <unistd.h>

#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <mutex>
#include <thread>

#include <fmt/format.h>
#include <spdlog/sinks/base_sink.h>

#include "harness/sys/untrusted_text.h"

namespace harness::cli {

struct StatusLine::State {
  std::mutex mutex;
  std::condition_variable wake;
  std::string text;  // empty: no line
  std::chrono::steady_clock::time_point since;
  bool drawn = false;
  std::thread ticker;
  bool stop = false;

  // Callers hold `mutex`.
  void Clear() {
    if (!drawn) return;
    std::fputs("\r\033[K", stderr);
    std::fflush(stderr);
    drawn = false;
  }
  void Draw() {
    if (text.empty()) return;
    double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - since).count();
    std::fputs(fmt::format("\r\033[K\u2026 {}  {:.1f}s", sys::Escaped(text), s).c_str(), stderr);
    std::fflush(stderr);
    drawn = true;
  }
};

namespace {

class StatusAwareSink : public spdlog::sinks::base_sink<std::mutex> {
 public:
  StatusAwareSink(std::shared_ptr<spdlog::sinks::sink> inner,
                  std::shared_ptr<StatusLine::State> state)
      : inner_(std::move(inner)), state_(std::move(state)) {}

 protected:
  void sink_it_(const spdlog::details::log_msg& msg) override {
    std::lock_guard<std::mutex> lock(state_->mutex);
    state_->Clear();
    inner_->log(msg);
    inner_->flush();
    state_->Draw();
  }
  void flush_() override { inner_->flush(); }
  void set_pattern_(const std::string& pattern) override { inner_->set_pattern(pattern); }
  void set_formatter_(std::unique_ptr<spdlog::formatter> f) override {
    inner_->set_formatter(std::move(f));
  }

 private:
  std::shared_ptr<spdlog::sinks::sink> inner_;
  std::shared_ptr<StatusLine::State> state_;
};

}  // namespace

StatusLine::StatusLine() : active_(isatty(2) == 1), state_(std::make_shared<State>()) {}

StatusLine& StatusLine::Get() {
  // Never destroyed: the ticker may run until the process exits.
  static StatusLine* line = new StatusLine();
  return *line;
}

void StatusLine::Start(const std::string& text) {
  if (!active_) return;
  std::lock_guard<std::mutex> lock(state_->mutex);
  state_->text = text;
  state_->since = std::chrono::steady_clock::now();
  if (!state_->ticker.joinable()) {
    state_->ticker = std::thread([s = state_] {
      std::unique_lock<std::mutex> l(s->mutex);
      while (!s->stop) {
        s->wake.wait_for(l, std::chrono::milliseconds(500));
        if (!s->text.empty()) s->Draw();
      }
    });
    state_->ticker.detach();
  }
}

void StatusLine::Stop() {
  if (!active_) return;
  std::lock_guard<std::mutex> lock(state_->mutex);
  state_->Clear();
  state_->text.clear();
}

std::shared_ptr<spdlog::sinks::sink> StatusLine::WrapSink(
    std::shared_ptr<spdlog::sinks::sink> inner) {
  StatusLine& line = Get();
  if (!line.active_) return inner;
  return std::make_shared<StatusAwareSink>(std::move(inner), line.state_);
}

}  // namespace harness::cli
