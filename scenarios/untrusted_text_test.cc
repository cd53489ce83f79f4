// harness/sys/untrusted_text: text that is not the tool's own, shown
// escaped (the commands that print it: promises_test.cc).
#include <gtest/gtest.h>

#include <string>

#include "harness/sys/untrusted_text.h"

namespace harness {
namespace {

TEST(UntrustedText, IsShortSingleLineValidUtf8AndInert) {
  // A terminal escape, a forged log line, a right-to-left override, a
  // byte that is not UTF-8, a zero-width space, DEL and a C1 control: each
  // shown escaped, in one visible form; the rest as it was.
  const std::string hostile =
      "SELECT 1;\x1b[2J\r\n[info] Now at 002\xe2\x80\xae gnp.\xff\xe2\x80\x8bok\x7f\xc2\x9b";
  const std::string shown = sys::ShowUntrusted(hostile, 80);
  EXPECT_EQ(shown, R"(SELECT 1;\x1b[2J\x0d\x0a[info] Now at 002\u202e gnp.\xff\u200bok\x7f\x9b)");
  EXPECT_EQ(sys::Escaped(hostile), shown);
  for (unsigned char c : shown) EXPECT_TRUE(c >= 0x20 && c != 0x7f) << shown;
  // Cut by what is shown, never inside a character or an escape, the cut marked.
  EXPECT_EQ(sys::ShowUntrusted("ääääääääää", 8), "äääää...");
  EXPECT_EQ(sys::ShowUntrusted("\x1b\x1b\x1b\x1b\x1b", 4), R"(\x1b...)");
  EXPECT_EQ(sys::ShowUntrusted("  spaced   out  ", 80), "  spaced   out  ");
  EXPECT_EQ(sys::ShowUntrusted("short", 5), "short");
  // Overlong encodings and surrogates are not UTF-8: their bytes, escaped.
  EXPECT_EQ(sys::ShowUntrusted("\xc0\xaf\xed\xa0\x80", 80), R"(\xc0\xaf\xed\xa0\x80)");
  // A statement's white space is one space; the rest of the rule holds.
  EXPECT_EQ(sys::ShowSql("SELECT 1\n  FROM t\t-- \x1b[31m\n", 80), R"(SELECT 1 FROM t -- \x1b[31m)");
}

}  // namespace
}  // namespace harness
