#include "harness/sys/untrusted_text.h"

#include <cstdio>
#include <vector>

namespace harness::sys {

namespace {

constexpr char32_t kBad = 0xFFFFFFFF;

// The next code point at `i` (advancing it), or kBad for a byte that does
// not start a well-formed sequence (overlong forms and surrogates included).
char32_t Next(std::string_view s, std::size_t& i) {
  const auto b = [&](std::size_t k) { return static_cast<unsigned char>(s[k]); };
  const unsigned char c = b(i);
  if (c < 0x80) {
    ++i;
    return c;
  }
  std::size_t len = 0;
  char32_t cp = 0, min = 0;
  if ((c & 0xE0) == 0xC0) {
    len = 2;
    cp = c & 0x1F;
    min = 0x80;
  } else if ((c & 0xF0) == 0xE0) {
    len = 3;
    cp = c & 0x0F;
    min = 0x800;
  } else if ((c & 0xF8) == 0xF0) {
    len = 4;
    cp = c & 0x07;
    min = 0x10000;
  }
  if (len == 0 || i + len > s.size()) {
    ++i;
    return kBad;
  }
  for (std::size_t k = 1; k < len; ++k) {
    if ((b(i + k) & 0xC0) != 0x80) {
      ++i;
      return kBad;
    }
    cp = (cp << 6) | (b(i + k) & 0x3F);
  }
  if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) {
    ++i;
    return kBad;
  }
  i += len;
  return cp;
}

// Characters that move the cursor, end a line, or reorder or hide what
// follows them; and the two that XML 1.0 cannot carry either.
bool Hidden(char32_t cp) {
  return cp < 0x20 || (cp >= 0x7F && cp <= 0x9F) || (cp >= 0x200B && cp <= 0x200F) ||
         (cp >= 0x2028 && cp <= 0x202E) || (cp >= 0x2060 && cp <= 0x2069) || cp == 0xFEFF ||
         cp == 0xFFFE || cp == 0xFFFF;
}

void Append(std::string& out, char32_t cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

// The text as shown, one entry per character the reader sees: a character,
// or an escape standing for one.
std::vector<std::string> Shown(std::string_view text) {
  std::vector<std::string> out;
  for (std::size_t i = 0; i < text.size();) {
    const std::size_t at = i;
    const char32_t cp = Next(text, i);
    char buf[16];
    if (cp == kBad) {
      std::snprintf(buf, sizeof buf, "\\x%02x", static_cast<unsigned char>(text[at]));
      out.push_back(buf);
    } else if (Hidden(cp)) {
      std::snprintf(buf, sizeof buf, cp < 0x100 ? "\\x%02x" : "\\u%04x", static_cast<unsigned>(cp));
      out.push_back(buf);
    } else {
      std::string one;
      Append(one, cp);
      out.push_back(one);
    }
  }
  return out;
}

}  // namespace

std::string Escaped(std::string_view text) {
  std::string out;
  for (const auto& c : Shown(text)) out += c;
  return out;
}

std::string ShowUntrusted(std::string_view text, std::size_t max_chars) {
  const std::vector<std::string> shown = Shown(text);
  const bool cut = shown.size() > max_chars;
  const std::size_t keep = cut ? (max_chars > 3 ? max_chars - 3 : 0) : shown.size();
  std::string out;
  for (std::size_t i = 0; i < keep; ++i) out += shown[i];
  if (cut) out += "...";
  return out;
}

std::string ShowSql(std::string_view sql, std::size_t max_chars) {
  std::string flat;
  for (char c : sql) {
    const bool space = c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
    if (!space) flat += c;
    else if (!flat.empty() && flat.back() != ' ') flat += ' ';
  }
  while (!flat.empty() && flat.back() == ' ') flat.pop_back();
  return ShowUntrusted(flat, max_chars);
}

}  // namespace harness::sys
