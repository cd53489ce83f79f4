// The revision chain: files linked by down_revision into one line from base
// to head. Duplicate ids, missing parents, cycles and several heads are
// errors that name the files involved.
#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "harness/engine/migration_file.h"

namespace harness::engine {

// A position in the chain: 0 is base (no revision), i is chain()[i - 1].
using Position = int;

class RevisionGraph {
 public:
  // Reads every *.sql file of `dir`.
  static RevisionGraph LoadDirectory(const std::filesystem::path& dir);
  static RevisionGraph Build(std::vector<MigrationFile> files);

  const std::vector<MigrationFile>& chain() const { return chain_; }
  const MigrationFile& head() const { return chain_.back(); }
  const MigrationFile& at(Position p) const { return chain_.at(static_cast<size_t>(p - 1)); }
  Position head_position() const { return static_cast<Position>(chain_.size()); }
  // Position of a revision id; nullopt when unknown.
  std::optional<Position> Find(const std::string& revision) const;
  // "<base>" for 0, else the revision id.
  std::string Name(Position p) const;
  // "001, 003, 003a, ..." for messages that list what is known.
  std::string KnownRevisions() const;
  // The revisions that are heads once the chain is applied up to `p`: one
  // for a chain, several on a path through an Alembic branch (a revision
  // is a head until one applied after it names it as a parent). Sorted.
  std::vector<std::string> HeadsAt(Position p) const;
  // The position whose heads are `heads` (alembic_version's rows), or
  // nullopt when no position of the chain has them.
  std::optional<Position> FindHeads(const std::vector<std::string>& heads) const;
  // Content hash of every file, stable across runs (FNV-1a, hex).
  std::string Hash() const;
  // The same hash over the files up to and including position p.
  std::string HashUpTo(Position p) const;

  // Resolves head, base, an id, +N (upgrade) or -N (downgrade) against the
  // current position. Throws UsageError naming the known revisions.
  Position ResolveUpgradeTarget(const std::string& target, Position current) const;
  Position ResolveDowngradeTarget(const std::string& target, Position current) const;
  Position ResolveRevision(const std::string& target) const;  // head, base or an id

 private:
  std::vector<MigrationFile> chain_;
};

// Where migration files are read from: --migrations, else $HARNESS_MIGRATIONS,
// else the installed chain (PREFIX/share/migration-harness/migrations beside
// PREFIX/bin), else migrations/ in a directory above the binary (a build
// tree inside the source tree), else the source tree it was built from.
std::filesystem::path DefaultMigrationsDir(const std::string& explicit_dir);

}  // namespace harness::engine
