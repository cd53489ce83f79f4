// The one place that writes the files a user asked for (baselines, reports,
// the log): never in place. The content goes to a temporary file
// `.NAME.XXXXXX` in the destination's folder, is flushed to disk (fsync) with
// every write and close checked, and is renamed over the destination only
// when complete. On any failure the temporary file is removed, the previous
// file (if any) stays as it was, and an Error names the path and the reason.
//
// A destination is refused when its folder does not exist (folders are never
// created), when it is a symbolic link, or when it exists and is not a
// regular file (/dev/full, a directory): renaming over those would replace
// the link, the device node or fail half way.
#pragma once

#include <sys/types.h>

#include <filesystem>
#include <string>
#include <string_view>

namespace harness::sys {

// Permission bits of a new file (an existing file keeps its own).
inline constexpr mode_t kReadableFile = 0644;

// Why `path` cannot be written by WriteFileAtomically / AtomicFile, or ""
// when nothing speaks against it. Only looks (lstat, stat, statfs).
std::string WhyNotWritable(const std::filesystem::path& path);

// Before any work: refuses (Error kUsage, "cannot write PATH: REASON") a
// destination that cannot be written, and proves its folder takes a new file
// by creating a temporary file there and removing it again.
void CheckWritable(const std::filesystem::path& path);

// Writes `content` to `path` atomically (see above). Throws Error(kDatabase)
// "cannot write PATH: REASON" (exit 3, an I/O error); the caller of a check
// made before any work maps it to kUsage.
void WriteFileAtomically(const std::filesystem::path& path, std::string_view content,
                         mode_t mode = kReadableFile);

// A file written over time (the log): created as a temporary file next to
// `path` at once, renamed over `path` by Commit(). Destroyed without Commit,
// or after a failed Write, the temporary file is removed; a killed process
// leaves it behind (`.NAME.XXXXXX` in the same folder). Not thread-safe.
class AtomicFile {
 public:
  // Checks the destination and creates the temporary file (0600 until
  // Commit). Throws Error(kDatabase) "cannot write PATH: REASON".
  explicit AtomicFile(std::filesystem::path path, mode_t mode = kReadableFile);
  ~AtomicFile();
  AtomicFile(const AtomicFile&) = delete;
  AtomicFile& operator=(const AtomicFile&) = delete;

  // Appends `data` (straight to the kernel, no buffering here). Throws on
  // failure, after which the file is abandoned.
  void Write(std::string_view data);
  // fsync, chmod, close, rename over the destination. Throws on failure,
  // after which the file is abandoned (the destination untouched).
  void Commit();
  // Closes and removes the temporary file; the destination stays as it was.
  void Abandon() noexcept;

  bool open() const { return fd_ >= 0; }
  const std::filesystem::path& path() const { return path_; }
  const std::filesystem::path& temp_path() const { return temp_; }

 private:
  [[noreturn]] void Fail(const std::string& reason);

  std::filesystem::path path_;
  std::filesystem::path temp_;
  mode_t mode_;
  int fd_ = -1;
};

}  // namespace harness::sys
