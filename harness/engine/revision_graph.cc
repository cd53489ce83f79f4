#include "harness/engine/revision_graph.h"

#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <map>
#include <set>

#include "harness/error.h"

namespace fs = std::filesystem;

namespace harness::engine {

namespace {
std::string Fnv1a(const std::vector<MigrationFile>& files, size_t count) {
  std::uint64_t h = 1469598103934665603ULL;
  auto mix = [&](const std::string& s) {
    for (unsigned char c : s) {
      h ^= c;
      h *= 1099511628211ULL;
    }
    h ^= 0xff;
    h *= 1099511628211ULL;
  };
  for (size_t i = 0; i < count && i < files.size(); ++i) {
    mix(files[i].revision);
    char content[17];
    std::snprintf(content, sizeof content, "%016llx", static_cast<unsigned long long>(files[i].content_hash));
    mix(content);
  }
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(h));
  return buf;
}

bool ParseCount(const std::string& s, int* n) {
  if (s.size() < 2 || s.size() > 6) return false;
  for (size_t i = 1; i < s.size(); ++i)
    if (s[i] < '0' || s[i] > '9') return false;
  *n = std::stoi(s.substr(1));
  return *n > 0;
}
}  // namespace

RevisionGraph RevisionGraph::LoadDirectory(const fs::path& dir) {
  std::error_code ec;
  if (!fs::is_directory(dir, ec))
    throw UsageError("migrations directory " + dir.string() +
                         (ec ? " cannot be read: " + ec.message() : std::string(" does not exist")),
                     "pass --migrations DIR or set HARNESS_MIGRATIONS");
  std::vector<fs::path> paths;
  fs::directory_iterator it(dir, ec), end;
  for (; !ec && it != end; it.increment(ec)) {
    if (it->path().extension() != ".sql") continue;
    // A dangling link or a link loop named *.sql is a broken chain, not a
    // file to skip: say which.
    bool regular = it->is_regular_file(ec);
    if (ec)
      throw UsageError("migration file " + it->path().string() + " cannot be read: " +
                           ec.message(),
                       "fix or remove it");
    if (regular) paths.push_back(it->path());
  }
  if (ec)
    throw UsageError("migrations directory " + dir.string() + " cannot be read: " + ec.message(),
                     "pass --migrations DIR or set HARNESS_MIGRATIONS");
  std::sort(paths.begin(), paths.end());
  std::vector<MigrationFile> files;
  files.reserve(paths.size());
  for (const auto& p : paths) files.push_back(ReadMigrationFile(p));
  if (files.empty()) throw UsageError("no *.sql migration files in " + dir.string());
  return Build(std::move(files));
}

RevisionGraph RevisionGraph::Build(std::vector<MigrationFile> files) {
  std::map<std::string, const MigrationFile*> by_id;
  for (const auto& f : files) {
    auto [it, inserted] = by_id.emplace(f.revision, &f);
    if (!inserted)
      throw UsageError("duplicate revision id '" + f.revision + "' in " + it->second->path.string() +
                       " and " + f.path.string());
  }
  std::map<std::string, std::vector<const MigrationFile*>> children;
  std::vector<const MigrationFile*> roots;
  for (const auto& f : files) {
    if (!f.down_revision) {
      roots.push_back(&f);
    } else if (!by_id.count(*f.down_revision)) {
      throw UsageError("revision " + f.revision + " (" + f.path.string() +
                       ") names down_revision '" + *f.down_revision + "', which no file defines");
    } else {
      children[*f.down_revision].push_back(&f);
    }
  }
  for (const auto& [parent, kids] : children)
    if (kids.size() > 1) {
      std::string names;
      for (auto* k : kids) names += (names.empty() ? "" : ", ") + k->revision;
      throw UsageError("several heads: revisions " + names + " all follow " + parent +
                       "; the chain must be a single line");
    }
  if (roots.size() > 1) {
    std::string names;
    for (auto* r : roots) names += (names.empty() ? "" : ", ") + r->revision;
    throw UsageError("several heads: revisions " + names + " all start from <base>");
  }
  if (roots.empty())
    throw UsageError("cycle: every revision has a down_revision, so none starts from <base>");
  RevisionGraph g;
  std::set<std::string> seen;
  for (const MigrationFile* f = roots.front();;) {
    g.chain_.push_back(*f);
    seen.insert(f->revision);
    auto it = children.find(f->revision);
    if (it == children.end()) break;
    f = it->second.front();
  }
  if (g.chain_.size() != files.size()) {
    std::string names;
    for (const auto& f : files)
      if (!seen.count(f.revision)) names += (names.empty() ? "" : ", ") + f.revision;
    throw UsageError("cycle: revisions " + names + " are not reachable from <base>");
  }
  return g;
}

std::optional<Position> RevisionGraph::Find(const std::string& revision) const {
  for (size_t i = 0; i < chain_.size(); ++i)
    if (chain_[i].revision == revision) return static_cast<Position>(i + 1);
  return std::nullopt;
}

std::string RevisionGraph::Name(Position p) const { return p == 0 ? "<base>" : at(p).revision; }

std::vector<std::string> RevisionGraph::HeadsAt(Position p) const {
  std::set<std::string> parents;
  for (Position i = 1; i <= p; ++i) {
    const MigrationFile& f = at(i);
    if (!f.parents.empty())
      parents.insert(f.parents.begin(), f.parents.end());
    else if (f.down_revision)
      parents.insert(*f.down_revision);
  }
  std::vector<std::string> heads;
  for (Position i = 1; i <= p; ++i)
    if (!parents.count(at(i).revision)) heads.push_back(at(i).revision);
  std::sort(heads.begin(), heads.end());
  return heads;
}

std::optional<Position> RevisionGraph::FindHeads(const std::vector<std::string>& heads) const {
  std::vector<std::string> sorted = heads;
  std::sort(sorted.begin(), sorted.end());
  for (Position p = 0; p <= head_position(); ++p)
    if (HeadsAt(p) == sorted) return p;
  return std::nullopt;
}

std::string RevisionGraph::KnownRevisions() const {
  std::string out = "base";
  for (const auto& f : chain_) out += ", " + f.revision;
  return out + ", head";
}

std::string RevisionGraph::Hash() const { return Fnv1a(chain_, chain_.size()); }
std::string RevisionGraph::HashUpTo(Position p) const {
  return Fnv1a(chain_, static_cast<size_t>(p));
}

Position RevisionGraph::ResolveRevision(const std::string& target) const {
  if (target == "head" || target == "heads") return head_position();
  if (target == "base") return 0;
  if (auto p = Find(target)) return *p;
  throw UsageError("unknown revision '" + target + "'", "known revisions: " + KnownRevisions());
}

Position RevisionGraph::ResolveUpgradeTarget(const std::string& target, Position current) const {
  int n = 0;
  if (!target.empty() && target[0] == '-')
    throw UsageError("upgrade target '" + target + "' goes backwards", "use downgrade " + target);
  if (!target.empty() && target[0] == '+') {
    if (!ParseCount(target, &n)) throw UsageError("bad relative target '" + target + "'", "use +N, e.g. +1");
    if (current + n > head_position())
      throw UsageError("cannot upgrade " + target + " from " + Name(current) + ": only " +
                       std::to_string(head_position() - current) + " revision(s) above it");
    return current + n;
  }
  Position p = ResolveRevision(target);
  if (p < current)
    throw UsageError("upgrade target " + Name(p) + " is below the current revision " + Name(current),
                     "use downgrade " + target);
  return p;
}

Position RevisionGraph::ResolveDowngradeTarget(const std::string& target, Position current) const {
  int n = 0;
  if (!target.empty() && target[0] == '+')
    throw UsageError("downgrade target '" + target + "' goes forwards", "use upgrade " + target);
  if (!target.empty() && target[0] == '-') {
    if (!ParseCount(target, &n)) throw UsageError("bad relative target '" + target + "'", "use -N, e.g. -1");
    if (current - n < 0)
      throw UsageError("cannot downgrade " + target + " from " + Name(current) + ": only " +
                       std::to_string(current) + " revision(s) below it");
    return current - n;
  }
  Position p = ResolveRevision(target);
  if (p > current)
    throw UsageError("downgrade target " + Name(p) + " is above the current revision " + Name(current),
                     "use upgrade " + target);
  return p;
}

fs::path DefaultMigrationsDir(const std::string& explicit_dir) {
  if (!explicit_dir.empty()) return explicit_dir;
  if (const char* env = std::getenv("HARNESS_MIGRATIONS"); env && *env) return env;
  std::error_code ec;
  fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  if (!ec) {
    // Installed (cmake --install): PREFIX/bin/migration-harness beside
    // PREFIX/share/migration-harness/migrations.
    const fs::path installed = exe.parent_path().parent_path() / "share" / "migration-harness" / "migrations";
    if (fs::exists(installed / "README.md", ec)) return installed;
    // In a build tree: the source tree's, above it.
    for (fs::path d = exe.parent_path(); !d.empty() && d != d.root_path(); d = d.parent_path()) {
      if (fs::exists(d / "migrations" / "README.md", ec)) return d / "migrations";
    }
  }
#ifdef HARNESS_SOURCE_MIGRATIONS_DIR
  return HARNESS_SOURCE_MIGRATIONS_DIR;
#else
  return "migrations";
#endif
}

}  // namespace harness::engine
