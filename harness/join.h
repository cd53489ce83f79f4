// A list in a message: "a, b, c" (or another separator). Everyone's, as
// error.h is.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace harness {

inline std::string Join(const std::vector<std::string>& items, std::string_view sep = ", ") {
  std::string out;
  for (const auto& item : items) {
    if (!out.empty()) out += sep;
    out += item;
  }
  return out;
}

}  // namespace harness
