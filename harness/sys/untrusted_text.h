// Text the tool does not control is shown to the operator, never
// interpreted: any role that can connect may write a query or a name, any
// row a value, so it may try to rewrite the line it is shown in (a
// terminal's escape sequences, a newline that forges a log line or a
// verdict, Unicode bidirectional overrides) or make a report unwritable
// (bytes that are not UTF-8).
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace harness::sys {

// The one rule for text that is not the tool's own (data values, object
// and role names, other sessions' queries, server messages raised by other
// roles' code, what a project's Python prints): on a terminal and in a log
// it is shown with every character that moves the cursor, ends a line, or
// reorders or hides what follows (C0 and C1 controls, DEL, line and
// paragraph separators, bidirectional and zero-width formatting, the BOM)
// escaped in one visible form, `\x1b` (below U+0100) or `\u202e`, and every
// byte that is not UTF-8 as `\xff`. Always valid UTF-8 on one line; the
// text is otherwise as it was. XML gets the same (XML 1.0 cannot carry ESC,
// even as a character reference); JSON carries the exact text.
std::string Escaped(std::string_view text);
// Escaped(text) cut to `max_chars` code points (never inside an escape),
// the cut marked with "...".
std::string ShowUntrusted(std::string_view text, std::size_t max_chars = 80);
// For a statement's text: its runs of white space (line breaks included)
// as one space first, as SQL reads them; then ShowUntrusted.
std::string ShowSql(std::string_view sql, std::size_t max_chars = 160);

}  // namespace harness::sys
