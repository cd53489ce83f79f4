// Pointers to nothing: every document the source tree cites (a path ending
// in .md, in code, scripts, SQL and the documents themselves), and every
// heading cited with it (`docs/cli.md#cli-reference`, the anchor GitHub
// makes of the heading), exists. A moved or renamed section fails here,
// naming the file and line that cite it.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <regex>
#include <set>
#include <sstream>
#include <string>

#include "scenarios/support/test_env.h"

namespace harness::testing {
namespace {

namespace fs = std::filesystem;

// GitHub's anchor of a heading: lower case, punctuation other than `-` and
// `_` dropped, each space a `-`.
std::string Anchor(const std::string& heading) {
  std::string out;
  for (unsigned char c : heading) {
    if (std::isalnum(c) || c == '-' || c == '_') out += static_cast<char>(std::tolower(c));
    else if (c == ' ') out += '-';
  }
  return out;
}

std::set<std::string> AnchorsOf(const fs::path& md) {
  std::set<std::string> out;
  std::ifstream in(md);
  std::string line;
  bool fenced = false;
  while (std::getline(in, line)) {
    if (line.starts_with("```")) fenced = !fenced;
    if (fenced || !line.starts_with("#")) continue;
    const size_t text = line.find_first_not_of('#');
    if (text == std::string::npos || line[text] != ' ') continue;
    out.insert(Anchor(line.substr(text + 1)));
  }
  return out;
}

bool Scanned(const fs::path& p) {
  static const std::set<std::string> kExtensions = {".cc", ".h", ".md", ".sql", ".cmake", ".txt", ".sh", ".py"};
  const std::string name = p.filename().string();
  return kExtensions.count(p.extension().string()) || p.parent_path().filename() == "scripts" ||
         name == "run" || name == "CMakeLists.txt";
}

TEST(Docs, EveryCitedDocumentAndHeadingExists) {
  const fs::path root = SourceDir();
  // A path ending in .md, with its anchor if any (not a URL's).
  static const std::regex kCitation(R"(([A-Za-z0-9_./-]*[A-Za-z0-9_-]\.md)(#[A-Za-z0-9_-]+)?)");
  std::string broken;
  size_t citations = 0;
  for (auto it = fs::recursive_directory_iterator(root); it != fs::recursive_directory_iterator(); ++it) {
    const fs::path& p = it->path();
    const std::string name = p.filename().string();
    if (it->is_directory()) {
      // Build trees, the repository's own folders, fetched packages.
      if (name.starts_with(".") && name != ".ci") it.disable_recursion_pending();
      if (name.starts_with("build") || name == "node_modules") it.disable_recursion_pending();
      continue;
    }
    if (!it->is_regular_file() || !Scanned(p)) continue;
    std::ifstream in(p);
    std::string line;
    int number = 0;
    while (std::getline(in, line)) {
      ++number;
      for (std::sregex_iterator m(line.begin(), line.end(), kCitation), end; m != end; ++m) {
        const std::string target = (*m)[1];
        const std::string anchor = (*m)[2].matched ? (*m)[2].str().substr(1) : "";
        const size_t at = static_cast<size_t>(m->position(0));
        // A URL's path is not ours; `..` links in the documents are resolved.
        if (line.rfind("://", at) != std::string::npos && line.rfind(' ', at) < line.rfind("://", at)) continue;
        ++citations;
        std::error_code ec;
        fs::path file;
        for (const fs::path& base : {p.parent_path(), root})
          if (fs::is_regular_file(base / target, ec)) {
            file = base / target;
            break;
          }
        const std::string where = fs::relative(p, root).string() + ":" + std::to_string(number);
        if (file.empty()) {
          broken += "\n  " + where + ": " + target + " does not exist";
        } else if (!anchor.empty() && !AnchorsOf(file).count(anchor)) {
          broken += "\n  " + where + ": " + target + " has no heading #" + anchor;
        }
      }
    }
  }
  EXPECT_GT(citations, 20u) << "the scan found too few citations to be looking at the tree";
  EXPECT_TRUE(broken.empty()) << "citations of documents or headings that do not exist:" << broken;
}

TEST(Docs, AnchorsAreGitHubs) {
  EXPECT_EQ(Anchor("Deployment checklist (migration 002)"), "deployment-checklist-migration-002");
  EXPECT_EQ(Anchor("Your next migration, as SQL"), "your-next-migration-as-sql");
  EXPECT_EQ(Anchor("`verify` and its --online"), "verify-and-its---online");
}

}  // namespace
}  // namespace harness::testing
