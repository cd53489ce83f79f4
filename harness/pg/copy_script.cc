#include "harness/pg/copy_script.h"

#include <regex>

#include <fmt/format.h>

#include "harness/error.h"

namespace harness::pg {

namespace {

std::string ReadIdentifier(std::string_view s, size_t& pos) {
  std::string out;
  if (pos < s.size() && s[pos] == '"') {
    for (++pos; pos < s.size(); ++pos) {
      if (s[pos] == '"') {
        if (pos + 1 < s.size() && s[pos + 1] == '"') {
          out += '"';
          ++pos;
        } else {
          ++pos;
          return out;
        }
      } else {
        out += s[pos];
      }
    }
    throw UsageError("unterminated quoted name in the backup's COPY line");
  }
  while (pos < s.size() && s[pos] != '.' && s[pos] != ',' && s[pos] != ' ' && s[pos] != ')' &&
         s[pos] != '(')
    out += s[pos++];
  if (out.empty()) throw UsageError("a name was expected in the backup's COPY line");
  return out;
}

CopyBlock ParseCopyHeader(std::string_view line) {
  // COPY schema.table (a, b, "C") FROM stdin;
  CopyBlock b;
  size_t pos = std::string_view("COPY ").size();
  b.schema = ReadIdentifier(line, pos);
  if (pos >= line.size() || line[pos] != '.')
    throw UsageError("unexpected COPY line in the backup: " + std::string(line.substr(0, 120)));
  ++pos;
  b.table = ReadIdentifier(line, pos);
  if (line.substr(pos, 2) == " (") {
    pos += 2;
    while (true) {
      b.columns.push_back(ReadIdentifier(line, pos));
      if (line.substr(pos, 2) == ", ") {
        pos += 2;
        continue;
      }
      if (line.substr(pos, 1) == ")") {
        ++pos;
        break;
      }
      throw UsageError("unexpected COPY line in the backup: " + std::string(line.substr(0, 120)));
    }
  }
  if (line.substr(pos) != " FROM stdin;")
    throw UsageError("unexpected COPY line in the backup: " + std::string(line.substr(0, 120)));
  return b;
}

}  // namespace

std::vector<std::optional<std::string>> SplitCopyLine(std::string_view line) {
  std::vector<std::optional<std::string>> out;
  std::string field;
  size_t start = 0;  // where the field began in `line`, to spot a bare \N
  auto finish = [&](size_t end) {
    if (line.substr(start, end - start) == "\\N")
      out.emplace_back(std::nullopt);
    else
      out.emplace_back(std::move(field));
    field.clear();
  };
  auto hex = [](char c) {
    return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c - 'A' + 10;
  };
  for (size_t i = 0; i < line.size(); ++i) {
    char c = line[i];
    if (c == '\t') {
      finish(i);
      start = i + 1;
      continue;
    }
    if (c != '\\' || i + 1 == line.size()) {
      field += c;
      continue;
    }
    char e = line[++i];
    switch (e) {
      case 'b': field += '\b'; break;
      case 'f': field += '\f'; break;
      case 'n': field += '\n'; break;
      case 'r': field += '\r'; break;
      case 't': field += '\t'; break;
      case 'v': field += '\v'; break;
      case 'x':
        if (i + 1 < line.size() && std::isxdigit(static_cast<unsigned char>(line[i + 1]))) {
          int v = hex(line[++i]);
          if (i + 1 < line.size() && std::isxdigit(static_cast<unsigned char>(line[i + 1])))
            v = v * 16 + hex(line[++i]);
          field += static_cast<char>(v);
        } else {
          field += 'x';
        }
        break;
      default:
        if (e >= '0' && e <= '7') {
          int v = e - '0';
          for (int k = 0; k < 2 && i + 1 < line.size() && line[i + 1] >= '0' && line[i + 1] <= '7'; ++k)
            v = v * 8 + (line[++i] - '0');
          field += static_cast<char>(v & 0xff);
        } else {
          field += e;  // \\ and any other escaped character stand for themselves
        }
    }
  }
  finish(line.size());
  return out;
}

DataScript ParseDataScript(std::string_view text) {
  static const std::regex kSetval(R"(^SELECT pg_catalog\.setval\('((?:[^']|'')+)', (-?[0-9]+), (true|false)\);$)");
  static const std::regex kEncoding(R"(^SET client_encoding = '([A-Za-z0-9_]+)';$)");
  DataScript script;
  size_t pos = 0;
  auto next_line = [&](std::string_view& line) {
    if (pos >= text.size()) return false;
    size_t end = text.find('\n', pos);
    if (end == std::string_view::npos) end = text.size();
    line = text.substr(pos, end - pos);
    pos = end + 1;
    return true;
  };
  std::string_view line;
  while (next_line(line)) {
    if (line.empty() || line.starts_with("--")) continue;
    // psql's \restrict / \unrestrict (pg_dump since 17.6, 16.10, 15.14).
    if (line.starts_with("\\restrict ") || line.starts_with("\\unrestrict ")) continue;
    std::string l(line);
    std::smatch m;
    if (line.starts_with("COPY ")) {
      CopyBlock b = ParseCopyHeader(line);
      bool ended = false;
      while (next_line(line)) {
        if (line == "\\.") {
          ended = true;
          break;
        }
        b.lines.emplace_back(line);
      }
      if (!ended) throw UsageError("the backup's data for " + b.table + " ends without \\.");
      script.tables.push_back(std::move(b));
    } else if (std::regex_match(l, m, kEncoding)) {
      script.client_encoding = m[1];
    } else if (line.starts_with("SET ") ||
               line == "SELECT pg_catalog.set_config('search_path', '', false);") {
      continue;  // the session settings of pg_restore's script: ours are our own
    } else if (std::regex_match(l, m, kSetval)) {
      std::string name = m[1];
      for (size_t i = name.find("''"); i != std::string::npos; i = name.find("''", i + 1))
        name.erase(i, 1);
      script.sequences.push_back({name, std::stoll(m[2]), m[3] == "true"});
    } else {
      throw UsageError("unexpected statement in the backup's data: " + l.substr(0, 120),
                       "restore-dropped loads only table data and sequence values");
    }
  }
  return script;
}

}  // namespace harness::pg
