// One exception type for everything the harness reports to a user: what
// failed, where, and what to do next, with the exit code it maps to.
#pragma once

#include <stdexcept>
#include <string>

namespace harness {

// Exit codes of migration-harness (README.md#verdicts-and-exit-codes).
enum class ExitCode : int {
  kOk = 0,
  kCheckFailed = 1,  // a check failed, or the migration refused the data
  kUsage = 2,        // bad usage or input: URL, revision, migration file
  kDatabase = 3,     // unreachable, lock timeout, SQL error
  kInterrupted = 130,
};

class Error : public std::runtime_error {
 public:
  Error(ExitCode code, std::string what, std::string hint = {})
      : std::runtime_error(std::move(what)), code_(code), hint_(std::move(hint)) {}

  ExitCode code() const noexcept { return code_; }
  // What the user should do next; may be empty.
  const std::string& hint() const noexcept { return hint_; }

 private:
  ExitCode code_;
  std::string hint_;
};

inline Error UsageError(std::string what, std::string hint = {}) {
  return Error(ExitCode::kUsage, std::move(what), std::move(hint));
}
inline Error DatabaseError(std::string what, std::string hint = {}) {
  return Error(ExitCode::kDatabase, std::move(what), std::move(hint));
}
inline Error RefusedError(std::string what, std::string hint = {}) {
  return Error(ExitCode::kCheckFailed, std::move(what), std::move(hint));
}

}  // namespace harness
