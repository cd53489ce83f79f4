// Text that another session controls (its query, application_name, role
// name), read from pg_stat_activity to say who holds a lock: shown to the
// operator, never interpreted. Any role that can connect may write it, so
// it may try to rewrite the line it is shown in (a terminal's escape
// sequences, a newline that forges a log line, Unicode bidirectional
// overrides) or make the JSON report unwritable (bytes that are not UTF-8).
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace harness::pg {

// `text` made safe to print: control characters (C0, DEL, C1), line and
// paragraph separators, zero-width and bidirectional formatting characters
// become spaces, bytes that are not UTF-8 become '?', runs of white space
// one space, no space at either end; cut to `max_chars` code points, the
// cut marked with "...". Always valid UTF-8.
std::string ShowUntrusted(std::string_view text, std::size_t max_chars = 80);

}  // namespace harness::pg
