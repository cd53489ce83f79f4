// harness/sys/files: every file the tool writes appears whole or not at all.
// These tests run as root on this machine, so permission-based failures do
// not happen: /dev/full, /proc, missing folders, directories, symbolic links,
// RLIMIT_FSIZE (EFBIG) and, where mount works, a full tmpfs stand for them.
#include <signal.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "harness/error.h"
#include "harness/sys/files.h"
#include "harness/sys/process.h"
#include "scenarios/support/test_env.h"

namespace harness::testing {
namespace {

namespace fs = std::filesystem;

std::string ReadAll(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

void WriteAll(const fs::path& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << text;
  ASSERT_TRUE(out.flush()) << path;
}

mode_t ModeOf(const fs::path& path) {
  struct stat st {};
  EXPECT_EQ(::lstat(path.c_str(), &st), 0) << path;
  return st.st_mode & 07777;
}

// A fresh folder per test, removed at the end.
class Files : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / pg::UniqueDatabaseName("mh_files");
    fs::create_directories(dir_);
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }
  // What is in the folder besides `keep` (temporary files left behind).
  std::vector<std::string> Others(const std::vector<std::string>& keep) const {
    std::vector<std::string> out;
    for (const auto& e : fs::directory_iterator(dir_)) {
      std::string name = e.path().filename().string();
      if (std::find(keep.begin(), keep.end(), name) == keep.end()) out.push_back(name);
    }
    return out;
  }
  // The message of the Error that `f` throws, with its exit code.
  template <typename F>
  std::string ErrorOf(F f, ExitCode expected = ExitCode::kDatabase) {
    try {
      f();
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), expected) << e.what();
      return e.what();
    }
    ADD_FAILURE() << "no error thrown";
    return {};
  }
  fs::path dir_;
};

TEST_F(Files, WritesANewFileReadableByAllAndLeavesNoTemporaryFile) {
  fs::path file = dir_ / "report.json";
  sys::WriteFileAtomically(file, "{\"ok\": true}\n");
  EXPECT_EQ(ReadAll(file), "{\"ok\": true}\n");
  EXPECT_EQ(ModeOf(file), 0644u);
  EXPECT_TRUE(Others({"report.json"}).empty()) << JoinLines(Others({"report.json"}));
}

TEST_F(Files, ReplacesAnExistingFileAndKeepsItsPermissions) {
  fs::path file = dir_ / "baseline.json";
  WriteAll(file, "old content, longer than the new one\n");
  ASSERT_EQ(::chmod(file.c_str(), 0600), 0);
  sys::WriteFileAtomically(file, "new\n");
  EXPECT_EQ(ReadAll(file), "new\n");
  EXPECT_EQ(ModeOf(file), 0600u);
  sys::WriteFileAtomically(file, "");  // empty content is a valid file
  EXPECT_EQ(ReadAll(file), "");
  EXPECT_TRUE(Others({"baseline.json"}).empty());
}

TEST_F(Files, ADestinationInAMissingFolderFailsAndCreatesNothing) {
  fs::path file = dir_ / "missing" / "sub" / "x.json";
  std::string what = ErrorOf([&] { sys::WriteFileAtomically(file, "x"); });
  EXPECT_CONTAINS(what, "cannot write " + file.string());
  EXPECT_CONTAINS(what, "the folder " + (dir_ / "missing" / "sub").string() + " does not exist");
  EXPECT_CONTAINS(what, "No such file or directory");
  EXPECT_FALSE(fs::exists(dir_ / "missing"));
  EXPECT_THROW(sys::AtomicFile{file}, Error);
  EXPECT_FALSE(fs::exists(dir_ / "missing"));
  std::string usage = ErrorOf([&] { sys::CheckWritable(file); }, ExitCode::kUsage);
  EXPECT_CONTAINS(usage, "does not exist");
  EXPECT_FALSE(fs::exists(dir_ / "missing"));
  EXPECT_TRUE(Others({}).empty());
  // A "folder" that is a file.
  WriteAll(dir_ / "plain", "x");
  EXPECT_CONTAINS(ErrorOf([&] { sys::WriteFileAtomically(dir_ / "plain" / "x", "x"); }),
                  (dir_ / "plain").string() + " is not a folder");
  EXPECT_EQ(ReadAll(dir_ / "plain"), "x");
}

TEST_F(Files, DevFullIsRefusedAndLeftADevice) {
  struct stat before {};
  ASSERT_EQ(::lstat("/dev/full", &before), 0);
  ASSERT_TRUE(S_ISCHR(before.st_mode));
  std::string what = ErrorOf([] { sys::WriteFileAtomically("/dev/full", "data"); });
  EXPECT_CONTAINS(what, "cannot write /dev/full: it is a character device, not a regular file");
  EXPECT_CONTAINS(ErrorOf([] { sys::CheckWritable("/dev/full"); }, ExitCode::kUsage),
                  "character device");
  EXPECT_THROW(sys::AtomicFile{"/dev/full"}, Error);
  struct stat after {};
  ASSERT_EQ(::lstat("/dev/full", &after), 0);
  EXPECT_TRUE(S_ISCHR(after.st_mode));
  EXPECT_EQ(after.st_rdev, before.st_rdev);
  EXPECT_EQ(after.st_ino, before.st_ino);
  // Nothing left in /dev either.
  for (const auto& e : fs::directory_iterator("/dev"))
    EXPECT_NE(e.path().filename().string().rfind(".full.", 0), 0u) << e.path();
}

TEST_F(Files, ProcVersionIsRefusedAndUnchanged) {
  std::string before = ReadAll("/proc/version");
  ASSERT_FALSE(before.empty());
  std::string what = ErrorOf([] { sys::WriteFileAtomically("/proc/version", "data"); });
  EXPECT_CONTAINS(what, "cannot write /proc/version: /proc is on the proc pseudo file system");
  EXPECT_CONTAINS(ErrorOf([] { sys::CheckWritable("/proc/version"); }, ExitCode::kUsage),
                  "/proc/version");
  EXPECT_EQ(ReadAll("/proc/version"), before);
}

TEST_F(Files, ASymbolicLinkIsRefusedAndNeitherItNorItsTargetChange) {
  WriteAll(dir_ / "target.json", "previous\n");
  fs::create_symlink(dir_ / "target.json", dir_ / "link.json");
  std::string what = ErrorOf([&] { sys::WriteFileAtomically(dir_ / "link.json", "new"); });
  EXPECT_CONTAINS(what, "cannot write " + (dir_ / "link.json").string() + ": it is a symbolic link");
  EXPECT_CONTAINS(what, "pass the path of the file itself");
  EXPECT_TRUE(fs::is_symlink(dir_ / "link.json"));
  EXPECT_EQ(ReadAll(dir_ / "target.json"), "previous\n");
  // A dangling link too: writing "through" it would create a file elsewhere.
  fs::create_symlink(dir_ / "nowhere.json", dir_ / "dangling.json");
  EXPECT_CONTAINS(ErrorOf([&] { sys::WriteFileAtomically(dir_ / "dangling.json", "new"); }),
                  "symbolic link");
  EXPECT_FALSE(fs::exists(dir_ / "nowhere.json"));
  EXPECT_TRUE(Others({"target.json", "link.json", "dangling.json"}).empty());
}

TEST_F(Files, ADirectoryIsRefusedAndKept) {
  fs::create_directories(dir_ / "out" / "inner");
  std::string what = ErrorOf([&] { sys::WriteFileAtomically(dir_ / "out", "x"); });
  EXPECT_CONTAINS(what, "cannot write " + (dir_ / "out").string() + ": it is a directory");
  EXPECT_TRUE(fs::is_directory(dir_ / "out" / "inner"));
  EXPECT_CONTAINS(ErrorOf([&] { sys::WriteFileAtomically(dir_.string() + "/out/", "x"); }),
                  "names a folder");
  EXPECT_TRUE(Others({"out"}).empty());
}

// Writes past RLIMIT_FSIZE fail with EFBIG (SIGXFSZ ignored): a write error
// in the middle of the content, as a full disk gives, without one.
class FileSizeLimit {
 public:
  explicit FileSizeLimit(rlim_t bytes) {
    ::getrlimit(RLIMIT_FSIZE, &saved_);
    old_handler_ = ::signal(SIGXFSZ, SIG_IGN);
    rlimit lim = saved_;
    lim.rlim_cur = bytes;
    ::setrlimit(RLIMIT_FSIZE, &lim);
  }
  ~FileSizeLimit() {
    ::setrlimit(RLIMIT_FSIZE, &saved_);
    ::signal(SIGXFSZ, old_handler_);
  }

 private:
  rlimit saved_{};
  sighandler_t old_handler_;
};

TEST_F(Files, AFailedWriteKeepsThePreviousFileAndLeavesNoTemporaryFile) {
  fs::path file = dir_ / "baseline.json";
  WriteAll(file, "previous\n");
  std::string what;
  {
    FileSizeLimit limit(4096);
    what = ErrorOf([&] { sys::WriteFileAtomically(file, std::string(64 * 1024, 'x')); });
  }
  EXPECT_CONTAINS(what, "cannot write " + file.string() + ": writing " + (dir_ / ".baseline.json.").string());
  EXPECT_CONTAINS(what, "File too large");
  EXPECT_EQ(ReadAll(file), "previous\n");
  EXPECT_TRUE(Others({"baseline.json"}).empty()) << JoinLines(Others({"baseline.json"}));
  // And a new file is not created at all.
  {
    FileSizeLimit limit(4096);
    EXPECT_THROW(sys::WriteFileAtomically(dir_ / "new.json", std::string(64 * 1024, 'x')), Error);
  }
  EXPECT_FALSE(fs::exists(dir_ / "new.json"));
  EXPECT_TRUE(Others({"baseline.json"}).empty());
}

TEST_F(Files, AnAtomicFileAppearsOnlyWhenCommitted) {
  fs::path file = dir_ / "run.log";
  WriteAll(file, "the previous run\n");
  {
    sys::AtomicFile log(file);
    EXPECT_EQ(log.temp_path().parent_path(), dir_);
    EXPECT_EQ(log.temp_path().filename().string().rfind(".run.log.", 0), 0u) << log.temp_path();
    EXPECT_EQ(ModeOf(log.temp_path()), 0600u);
    log.Write("line 1\n");
    log.Write("line 2\n");
    EXPECT_EQ(ReadAll(file), "the previous run\n");
    EXPECT_EQ(ReadAll(log.temp_path()), "line 1\nline 2\n");
    log.Commit();
    EXPECT_FALSE(log.open());
    EXPECT_THROW(log.Write("too late\n"), Error);
  }
  EXPECT_EQ(ReadAll(file), "line 1\nline 2\n");
  EXPECT_EQ(ModeOf(file), 0644u);
  {
    sys::AtomicFile abandoned(file);
    abandoned.Write("never seen\n");
  }  // destroyed without Commit
  EXPECT_EQ(ReadAll(file), "line 1\nline 2\n");
  EXPECT_TRUE(Others({"run.log"}).empty()) << JoinLines(Others({"run.log"}));
}

TEST_F(Files, AnAtomicFileWhoseDestinationBecameADirectoryIsNotRenamed) {
  fs::path file = dir_ / "run.log";
  sys::AtomicFile log(file);
  log.Write("x\n");
  fs::create_directories(file / "inner");
  EXPECT_CONTAINS(ErrorOf([&] { log.Commit(); }), "it is a directory");
  EXPECT_TRUE(fs::is_directory(file / "inner"));
  EXPECT_TRUE(Others({"run.log"}).empty());
}

// A really full file system, where mount works here (root, not in a
// restricted container): skipped otherwise.
TEST_F(Files, AFullFileSystemKeepsThePreviousFile) {
  fs::path mnt = dir_ / "small";
  fs::create_directories(mnt);
  if (::mount("tmpfs", mnt.c_str(), "tmpfs", 0, "size=64k") != 0)
    GTEST_SKIP() << "cannot mount a tmpfs here: " << std::strerror(errno);
  struct Unmount {
    fs::path p;
    ~Unmount() { ::umount2(p.c_str(), MNT_DETACH); }
  } unmount{mnt};
  WriteAll(mnt / "report.json", "previous\n");
  std::string what = ErrorOf([&] { sys::WriteFileAtomically(mnt / "report.json", std::string(1 << 20, 'x')); });
  EXPECT_CONTAINS(what, "cannot write " + (mnt / "report.json").string());
  EXPECT_CONTAINS(what, "No space left on device");
  EXPECT_EQ(ReadAll(mnt / "report.json"), "previous\n");
  std::vector<std::string> left;
  for (const auto& e : fs::directory_iterator(mnt)) left.push_back(e.path().filename().string());
  EXPECT_EQ(left, std::vector<std::string>{"report.json"});
}

}  // namespace
}  // namespace harness::testing
