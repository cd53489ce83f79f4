#include "harness/engine/migration_file.h"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <map>
#include <regex>
#include <sstream>
#include <string_view>

#include "harness/error.h"

namespace harness::engine {

namespace {

std::string Trim(std::string_view s) {
  size_t b = s.find_first_not_of(" \t\r");
  if (b == std::string::npos) return {};
  size_t e = s.find_last_not_of(" \t\r");
  return std::string(s.substr(b, e - b + 1));
}

// The lines of `text` as views into it, without their '\n' (as getline
// reads them: no empty line after a last '\n'). A file is read once, not
// copied line by line into a stream.
class Lines {
 public:
  explicit Lines(std::string_view text) : text_(text) {}
  bool Next(std::string_view& line) {
    if (at_ >= text_.size()) return false;
    const size_t nl = text_.find('\n', at_);
    const size_t end = nl == std::string_view::npos ? text_.size() : nl;
    line = text_.substr(at_, end - at_);
    at_ = end + 1;
    return true;
  }

 private:
  std::string_view text_;
  size_t at_ = 0;
};

bool OnlyCommentsOrBlank(std::string_view sql) {
  Lines lines(sql);
  for (std::string_view line; lines.Next(line);) {
    std::string t = Trim(line);
    if (!t.empty() && t.rfind("--", 0) != 0) return false;
  }
  return true;
}

std::uint64_t Fnv1a(std::string_view text) {
  std::uint64_t h = 1469598103934665603ULL;
  for (unsigned char c : text) {
    h ^= c;
    h *= 1099511628211ULL;
  }
  return h;
}

}  // namespace

MigrationFile ParseMigration(const std::string& text, const std::filesystem::path& path) {
  static const std::regex kRevision("^[A-Za-z0-9_]{1,32}$");
  static const std::regex kPrebuilt("^(column|constraint|index) [a-z_][a-z0-9_]*\\.[a-z_][a-z0-9_]*$");
  MigrationFile file;
  file.path = path;
  file.content_hash = Fnv1a(text);
  auto fail = [&](int line, const std::string& what) -> Error {
    return UsageError("malformed migration file " + path.string() + ":" + std::to_string(line) +
                          ": " + what,
                      "fix the file (format: migrations/README.md) or point --migrations at "
                      "another directory");
  };
  enum class Section { kHeader, kUpgrade, kDowngrade, kChecks } section = Section::kHeader;
  // `--! define NAME: VALUE`: each {{NAME}} in the SQL below is VALUE.
  std::map<std::string, std::string> defines;
  static const std::regex kDefineName("^[A-Z][A-Z0-9_]{0,62}$");
  auto expanded = [&](std::string_view sql_line) {
    std::string out(sql_line);
    if (defines.empty()) return out;
    for (size_t at = out.find("{{"); at != std::string::npos; at = out.find("{{", at)) {
      const size_t end = out.find("}}", at + 2);
      if (end == std::string::npos) break;
      auto it = defines.find(out.substr(at + 2, end - at - 2));
      if (it == defines.end()) {
        at += 2;  // not a name defined here: left as written
        continue;
      }
      out.replace(at, end + 2 - at, it->second);
      at += it->second.size();
    }
    return out;
  };
  bool saw_revision = false, saw_down = false, saw_message = false;
  std::vector<Step>* steps = nullptr;
  Lines in(text);
  std::string_view line;
  int number = 0;
  auto close_step = [&] {
    if (steps && !steps->empty() && !steps->back().records_revision && !steps->back().runs_guards &&
        OnlyCommentsOrBlank(steps->back().sql))
      throw fail(steps->back().line, "step '" + steps->back().name + "' has no SQL");
  };
  while (in.Next(line)) {
    ++number;
    if (line.rfind("--!", 0) != 0) {
      if (section == Section::kChecks) {
        // One header may name several suites: each gets the query.
        for (auto it = file.checks.rbegin(); it != file.checks.rend() && it->line == file.checks.back().line; ++it)
          it->sql.append(expanded(line)).append("\n");
        continue;
      }
      if (steps && !steps->empty() && (steps->back().records_revision || steps->back().runs_guards)) {
        if (!Trim(line).empty() && Trim(line).rfind("--", 0) != 0)
          throw fail(number, std::string("SQL after `--! ") +
                                 (steps->back().runs_guards ? "guard_step" : "record_step") +
                                 ":` (the engine's own step has no SQL)");
      } else if (steps && !steps->empty()) {
        steps->back().sql.append(expanded(line)).append("\n");
      } else if (!Trim(line).empty() && Trim(line).rfind("--", 0) != 0) {
        throw fail(number, section == Section::kHeader
                               ? "SQL before the `--! upgrade` section"
                               : "SQL before the first `--! step:` of the section");
      }
      continue;
    }
    std::string directive = Trim(line.substr(3));
    std::string key = directive, value;
    if (auto colon = directive.find(':'); colon != std::string::npos) {
      key = Trim(directive.substr(0, colon));
      value = Trim(directive.substr(colon + 1));
    }
    if (key == "revision" || key == "down_revision" || key == "message") {
      if (section != Section::kHeader) throw fail(number, "header directive '" + key + "' after the header");
      if (key == "revision") {
        if (saw_revision) throw fail(number, "a second `revision`");
        if (!std::regex_match(value, kRevision))
          throw fail(number, "revision id '" + value + "' must be 1 to 32 of [A-Za-z0-9_]");
        file.revision = value;
        saw_revision = true;
      } else if (key == "down_revision") {
        if (saw_down) throw fail(number, "a second `down_revision`");
        if (!value.empty() && !std::regex_match(value, kRevision))
          throw fail(number, "down_revision '" + value + "' must be empty or 1 to 32 of [A-Za-z0-9_]");
        if (!value.empty()) file.down_revision = value;
        saw_down = true;
      } else {
        if (saw_message) throw fail(number, "a second `message`");
        file.message = value;
        saw_message = true;
      }
    } else if (key == "idempotent") {
      if (section != Section::kHeader) throw fail(number, "header directive 'idempotent' after the header");
      if (!value.empty()) throw fail(number, "`--! idempotent` takes no value");
      file.idempotent = true;
    } else if (key == "prebuilt") {
      if (section != Section::kHeader) throw fail(number, "header directive 'prebuilt' after the header");
      std::istringstream items(value);
      std::string item;
      while (std::getline(items, item, ',')) {
        item = Trim(item);
        if (!std::regex_match(item, kPrebuilt))
          throw fail(number, "prebuilt object '" + item +
                                 "' must be `column|constraint|index TABLE.NAME`");
        file.prebuilt.push_back(item);
      }
      if (file.prebuilt.empty()) throw fail(number, "`--! prebuilt:` names no object");
    } else if (key == "writes") {
      if (section != Section::kHeader) throw fail(number, "header directive 'writes' after the header");
      std::istringstream items(value);
      std::string item;
      while (std::getline(items, item, ',')) {
        item = Trim(item);
        if (item.empty()) throw fail(number, "`--! writes:` names an empty table");
        file.writes.push_back(item);
      }
      if (file.writes.empty()) throw fail(number, "`--! writes:` names no table");
    } else if (key == "restore_hint") {
      if (section != Section::kHeader) throw fail(number, "header directive 'restore_hint' after the header");
      if (value.empty()) throw fail(number, "`--! restore_hint:` says nothing");
      file.restore_hint = value;
    } else if (key.rfind("define ", 0) == 0) {
      if (section != Section::kHeader) throw fail(number, "`--! define` after the header");
      const std::string name = Trim(key.substr(7));
      if (!std::regex_match(name, kDefineName))
        throw fail(number, "`--! define " + name + ":`: a name is an upper-case letter, then A-Z, 0-9 or _");
      if (value.empty()) throw fail(number, "`--! define " + name + ":` defines nothing");
      if (!defines.emplace(name, value).second) throw fail(number, name + " defined twice");
    } else if (key == "upgrade") {
      if (section != Section::kHeader) throw fail(number, "`--! upgrade` must come once, before `--! downgrade`");
      if (!saw_revision) throw fail(number, "no `--! revision:` in the header");
      if (!saw_down) throw fail(number, "no `--! down_revision:` in the header (leave it empty for the first revision)");
      section = Section::kUpgrade;
      steps = &file.upgrade;
    } else if (key == "downgrade") {
      if (section != Section::kUpgrade) throw fail(number, "`--! downgrade` must come once, after `--! upgrade`");
      close_step();
      if (file.upgrade.empty()) throw fail(number, "the upgrade section has no `--! step:`");
      section = Section::kDowngrade;
      steps = &file.downgrade;
    } else if (key.rfind("check ", 0) == 0 || key.rfind("gate ", 0) == 0) {
      const bool gate = key.rfind("gate ", 0) == 0;
      const std::string kind = gate ? "gate" : "check";
      std::vector<std::string> whens;
      std::istringstream list(key.substr(kind.size() + 1));
      bool guard = false;
      for (std::string when; std::getline(list, when, ',');) {
        when = Trim(when);
        if (when == "guard" && !guard) {
          guard = true;
          continue;
        }
        if (when != "pre" && when != "post" && when != "rollback")
          throw fail(number, "`--! " + kind + " " + when + ":`: a check runs pre, post or rollback");
        if (std::find(whens.begin(), whens.end(), when) != whens.end())
          throw fail(number, "`--! " + kind + "`: " + when + " named twice");
        whens.push_back(when);
      }
      if (section != Section::kDowngrade && section != Section::kChecks)
        throw fail(number, "checks come after the downgrade section");
      if (value.empty()) throw fail(number, "a check needs a name: `--! " + kind + " " + whens[0] + ": NAME`");
      if (section == Section::kDowngrade) {
        close_step();
        if (file.downgrade.empty()) throw fail(number, "the downgrade section has no `--! step:`");
      } else if (OnlyCommentsOrBlank(file.checks.back().sql)) {
        throw fail(file.checks.back().line, "check '" + file.checks.back().name + "' has no query");
      }
      for (const auto& when : whens)
        for (const auto& c : file.checks)
          if (c.when == when && c.name == value)
            throw fail(number, "a second " + when + " check named '" + value + "' (line " +
                                   std::to_string(c.line) + ")");
      if (guard && std::find(whens.begin(), whens.end(), "pre") == whens.end())
        throw fail(number, "`--! " + kind + " ... guard:`: a guard is a pre check the upgrade also runs; name pre too");
      section = Section::kChecks;
      for (const auto& when : whens) file.checks.push_back({when, value, {}, number, gate, guard && when == "pre"});
    } else if (key == "step" || key == "record_step" || key == "online_step" || key == "guard_step") {
      if (section == Section::kHeader) throw fail(number, "`--! " + key + ":` before `--! upgrade`");
      if (section == Section::kChecks) throw fail(number, "`--! " + key + ":` after the checks");
      if (value.empty()) throw fail(number, "a step needs a name: `--! " + key + ": NAME`");
      if (!steps->empty() && steps->back().records_revision)
        throw fail(number, "`--! record_step:` must be the last step of its section");
      if (key == "online_step" && section != Section::kUpgrade)
        throw fail(number, "`--! online_step:` belongs to the upgrade section (a downgrade runs in one "
                           "transaction)");
      if (key == "guard_step" && section != Section::kUpgrade)
        throw fail(number, "`--! guard_step:` belongs to the upgrade section");
      if (key == "guard_step")
        for (const auto& s : *steps)
          if (s.runs_guards) throw fail(number, "a second `--! guard_step:` (line " + std::to_string(s.line) + ")");
      if (key == "online_step" && steps->empty())
        throw fail(number, "`--! online_step:` cannot be the first step: phase 1 is a transaction of "
                           "`--! step:`s");
      close_step();
      Step step{value, {}, number, key == "record_step"};
      step.online = key == "online_step";
      step.runs_guards = key == "guard_step";
      steps->push_back(std::move(step));
    } else {
      throw fail(number, "unknown directive `--! " + key + "`");
    }
  }
  if (!saw_revision) throw fail(number, "no `--! revision:` header");
  if (section != Section::kDowngrade && section != Section::kChecks)
    throw fail(number, "no `--! downgrade` section");
  if (section == Section::kChecks) {
    if (OnlyCommentsOrBlank(file.checks.back().sql))
      throw fail(file.checks.back().line, "check '" + file.checks.back().name + "' has no query");
  } else {
    close_step();
  }
  if (file.downgrade.empty()) throw fail(number, "the downgrade section has no `--! step:`");
  // A guard is run at the guard step, and a guard step runs guards.
  const auto guard_step = std::find_if(file.upgrade.begin(), file.upgrade.end(),
                                       [](const Step& s) { return s.runs_guards; });
  const auto guard = std::find_if(file.checks.begin(), file.checks.end(),
                                  [](const RevisionCheck& c) { return c.guard; });
  if (guard != file.checks.end() && guard_step == file.upgrade.end())
    throw fail(guard->line, "check '" + guard->name + "' is a guard, but the upgrade has no `--! guard_step:` to run it");
  if (guard_step != file.upgrade.end() && guard == file.checks.end())
    throw fail(guard_step->line, "`--! guard_step:` with no check marked `guard` to run");
  return file;
}

MigrationFile ReadMigrationFile(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in)
    throw UsageError("cannot read migration file " + path.string() + ": " +
                     std::strerror(errno));
  // One read into a string of the file's size.
  std::string text;
  in.seekg(0, std::ios::end);
  const std::streamoff size = in.tellg();
  in.seekg(0, std::ios::beg);
  if (size > 0) {
    text.resize(static_cast<size_t>(size));
    in.read(text.data(), size);
    text.resize(static_cast<size_t>(in.gcount()));
  }
  if (in.bad())
    throw UsageError("cannot read migration file " + path.string() + ": " + std::strerror(errno));
  return ParseMigration(text, path);
}

}  // namespace harness::engine
