#include "harness/sys/files.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/magic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#include <vector>

#include "harness/error.h"

namespace harness::sys {

namespace fs = std::filesystem;

namespace {

const char kHint[] = "pass the path of a regular file (new or existing) in an existing folder";

std::string Errno(int err) { return ::strerror(err); }

fs::path FolderOf(const fs::path& path) {
  fs::path folder = path.parent_path();
  return folder.empty() ? fs::path(".") : folder;
}

const char* KindOf(mode_t mode) {
  if (S_ISDIR(mode)) return "a directory";
  if (S_ISCHR(mode)) return "a character device";
  if (S_ISBLK(mode)) return "a block device";
  if (S_ISFIFO(mode)) return "a named pipe";
  if (S_ISSOCK(mode)) return "a socket";
  return "not a regular file";
}

std::string CannotWrite(const fs::path& path, const std::string& reason) {
  return "cannot write " + path.string() + ": " + reason;
}

// mkostemp next to `path`: `.NAME.XXXXXX`. Returns the fd (or -1, errno set).
int CreateTemp(const fs::path& path, fs::path* temp) {
  std::string name = (FolderOf(path) / ("." + path.filename().string() + ".XXXXXX")).string();
  std::vector<char> buf(name.begin(), name.end());
  buf.push_back('\0');
  int fd = ::mkostemp(buf.data(), O_CLOEXEC);
  if (fd >= 0) *temp = fs::path(buf.data());
  return fd;
}

}  // namespace

std::string WhyNotWritable(const fs::path& path) {
  if (path.empty()) return "no file name given";
  if (!path.has_filename() || path.filename() == "." || path.filename() == "..")
    return "it names a folder, not a file";
  const fs::path folder = FolderOf(path);
  struct stat st {};
  if (::stat(folder.c_str(), &st) != 0) {
    int err = errno;
    if (err == ENOENT)
      return "the folder " + folder.string() + " does not exist (" + Errno(err) +
             "); folders are not created";
    return "the folder " + folder.string() + ": " + Errno(err);
  }
  if (!S_ISDIR(st.st_mode)) return folder.string() + " is not a folder";
  struct statfs sfs {};
  if (::statfs(folder.c_str(), &sfs) == 0 &&
      (sfs.f_type == PROC_SUPER_MAGIC || sfs.f_type == SYSFS_MAGIC))
    return folder.string() + " is on the " + (sfs.f_type == PROC_SUPER_MAGIC ? "proc" : "sysfs") +
           " pseudo file system, which holds no ordinary files: refusing to replace anything there";
  if (::lstat(path.c_str(), &st) != 0) {
    int err = errno;
    if (err == ENOENT) return {};  // a new file
    return Errno(err);
  }
  if (S_ISLNK(st.st_mode)) {
    std::error_code ec;
    fs::path target = fs::read_symlink(path, ec);
    return "it is a symbolic link" + (ec ? std::string() : " (to " + target.string() + ")") +
           ": refusing to replace the link; pass the path of the file itself";
  }
  if (!S_ISREG(st.st_mode))
    return std::string("it is ") + KindOf(st.st_mode) +
           ", not a regular file: refusing to replace it";
  return {};
}

void CheckWritable(const fs::path& path) {
  if (std::string why = WhyNotWritable(path); !why.empty())
    throw UsageError(CannotWrite(path, why), kHint);
  fs::path temp;
  int fd = CreateTemp(path, &temp);
  if (fd < 0) {
    int err = errno;
    throw UsageError(
        CannotWrite(path, "cannot create a file in " + FolderOf(path).string() + ": " + Errno(err)),
        kHint);
  }
  ::close(fd);
  ::unlink(temp.c_str());
}

void WriteFileAtomically(const fs::path& path, std::string_view content, mode_t mode) {
  AtomicFile file(path, mode);
  file.Write(content);
  file.Commit();
}

AtomicFile::AtomicFile(fs::path path, mode_t mode) : path_(std::move(path)), mode_(mode) {
  if (std::string why = WhyNotWritable(path_); !why.empty())
    throw DatabaseError(CannotWrite(path_, why), kHint);
  fd_ = CreateTemp(path_, &temp_);
  if (fd_ < 0) {
    int err = errno;
    throw DatabaseError(CannotWrite(path_, "cannot create a temporary file in " +
                                               FolderOf(path_).string() + ": " + Errno(err)),
                        kHint);
  }
}

AtomicFile::~AtomicFile() { Abandon(); }

void AtomicFile::Fail(const std::string& reason) {
  Abandon();
  throw DatabaseError(CannotWrite(path_, reason));
}

void AtomicFile::Write(std::string_view data) {
  if (fd_ < 0) throw DatabaseError(CannotWrite(path_, "the file was abandoned after an error"));
  while (!data.empty()) {
    ssize_t n = ::write(fd_, data.data(), data.size());
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      int err = n < 0 ? errno : EIO;
      Fail("writing " + temp_.string() + ": " + Errno(err));
    }
    data.remove_prefix(static_cast<size_t>(n));
  }
}

void AtomicFile::Commit() {
  if (fd_ < 0) throw DatabaseError(CannotWrite(path_, "the file was abandoned after an error"));
  if (::fsync(fd_) != 0) {
    int err = errno;
    Fail("fsync of " + temp_.string() + ": " + Errno(err));
  }
  // An existing file keeps its permissions; a new one gets mode_.
  mode_t mode = mode_;
  struct stat st {};
  // Never setuid/setgid/sticky bits on a file root writes.
  if (::lstat(path_.c_str(), &st) == 0 && S_ISREG(st.st_mode)) mode = st.st_mode & 0777;
  if (::fchmod(fd_, mode) != 0) {
    int err = errno;
    Fail("chmod of " + temp_.string() + ": " + Errno(err));
  }
  int fd = fd_;
  fd_ = -1;
  if (::close(fd) != 0) {
    int err = errno;
    Fail("closing " + temp_.string() + ": " + Errno(err));
  }
  // Again just before the rename: the destination may have changed since.
  if (std::string why = WhyNotWritable(path_); !why.empty()) Fail(why);
  if (::rename(temp_.c_str(), path_.c_str()) != 0) {
    int err = errno;
    Fail("renaming " + temp_.string() + " to it: " + Errno(err));
  }
  temp_.clear();
  // The rename itself on disk: best effort (the content is in place).
  int dir = ::open(FolderOf(path_).c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir >= 0) {
    ::fsync(dir);
    ::close(dir);
  }
}

void AtomicFile::Abandon() noexcept {
  if (fd_ >= 0) {
    ::close(fd_);
    fd_ = -1;
  }
  if (!temp_.empty()) {
    ::unlink(temp_.c_str());
    temp_.clear();
  }
}

}  // namespace harness::sys
