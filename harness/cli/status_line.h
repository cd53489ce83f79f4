// A status line at the bottom of a terminal while a long phase runs
// ("… upgrade t1 -> t2  12.4s"), ticking twice a second; log lines are
// written above it. Used by `verify` when stderr is a terminal.
#pragma once

#include <memory>
#include <string>

#include <spdlog/sinks/sink.h>

namespace harness::cli {

class StatusLine {
 public:
  // The process's status line; inactive unless stderr is a terminal.
  static StatusLine& Get();
  bool active() const { return active_; }
  void Start(const std::string& text);
  void Stop();

  // A log sink that clears the status line, writes through `inner`, and
  // draws the line again.
  static std::shared_ptr<spdlog::sinks::sink> WrapSink(std::shared_ptr<spdlog::sinks::sink> inner);

  struct State;  // shared with the sink and the ticker thread

 private:
  StatusLine();
  bool active_ = false;
  std::shared_ptr<State> state_;
};

}  // namespace harness::cli
