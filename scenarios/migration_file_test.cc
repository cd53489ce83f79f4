// Parsing migration files and building the chain: every malformed input is
// an error that names the file and line; graph defects are named.
#include <gtest/gtest.h>

#include "harness/engine/revision_graph.h"
#include "harness/error.h"

namespace harness::engine {
namespace {

std::string File(const std::string& rev, const std::string& down, const std::string& body = {}) {
  return "--! revision: " + rev + "\n--! down_revision: " + down + "\n--! message: m " + rev +
         "\n\n" +
         (body.empty() ? "--! upgrade\n--! step: up\nSELECT 1;\n--! downgrade\n--! step: down\nSELECT 2;\n"
                       : body);
}

MigrationFile Parse(const std::string& text) { return ParseMigration(text, "x.sql"); }

std::string ErrorOf(const std::string& text) {
  try {
    Parse(text);
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ExitCode::kUsage);
    return e.what();
  }
  ADD_FAILURE() << "no error for:\n" << text;
  return {};
}

// The parser's error for `text` names `needle`.
#define EXPECT_ERROR_SAYS(text, needle) \
  EXPECT_NE(ErrorOf(text).find(needle), std::string::npos) << ErrorOf(text)

TEST(MigrationFile, ParsesHeaderSectionsAndSteps) {
  MigrationFile f = Parse(
      "--! revision: 003a\n--! down_revision: 003\n--! message: Add columns\n"
      "--! upgrade\n--! step: First\n-- a comment is SQL\nALTER TABLE t ADD c int;\n"
      "--! step: Second\nSELECT 1;\nSELECT 2;\n"
      "--! downgrade\n--! step: Undo\nALTER TABLE t DROP c;\n");
  EXPECT_EQ(f.revision, "003a");
  ASSERT_TRUE(f.down_revision);
  EXPECT_EQ(*f.down_revision, "003");
  EXPECT_EQ(f.message, "Add columns");
  ASSERT_EQ(f.upgrade.size(), 2u);
  EXPECT_EQ(f.upgrade[0].name, "First");
  EXPECT_EQ(f.upgrade[0].line, 5);
  EXPECT_EQ(f.upgrade[0].sql, "-- a comment is SQL\nALTER TABLE t ADD c int;\n");
  EXPECT_EQ(f.upgrade[1].sql, "SELECT 1;\nSELECT 2;\n");
  ASSERT_EQ(f.downgrade.size(), 1u);
  EXPECT_EQ(f.downgrade[0].name, "Undo");
}

TEST(MigrationFile, ARecordStepIsTheEnginesOwnStep) {
  MigrationFile f = Parse(
      "--! revision: 002\n--! down_revision: 005\n--! upgrade\n--! step: Work\nSELECT 1;\n"
      "--! record_step: Committing and writing alembic_version\n-- a comment is fine\n"
      "--! downgrade\n--! step: Undo\nSELECT 2;\n");
  ASSERT_EQ(f.upgrade.size(), 2u);
  EXPECT_FALSE(f.upgrade[0].records_revision);
  EXPECT_TRUE(f.upgrade[1].records_revision);
  EXPECT_EQ(f.upgrade[1].name, "Committing and writing alembic_version");
}

TEST(MigrationFile, OnlineStepsAreMarkedAndSkippedByOneTransaction) {
  MigrationFile f = Parse(
      "--! revision: 002\n--! down_revision: 005\n--! upgrade\n--! step: Catalog\nSELECT 1;\n"
      "--! online_step: Validate\nALTER TABLE t VALIDATE CONSTRAINT c;\n--! step: Last\nSELECT 2;\n"
      "--! downgrade\n--! step: Undo\nSELECT 3;\n");
  ASSERT_EQ(f.upgrade.size(), 3u);
  EXPECT_FALSE(f.upgrade[0].online);
  EXPECT_TRUE(f.upgrade[1].online);
  EXPECT_FALSE(f.upgrade[2].online);
  EXPECT_TRUE(f.HasOnlineSteps());
  EXPECT_EQ(f.UpgradeStepsInOneTransaction(), 2u);
  EXPECT_ERROR_SAYS("--! revision: a\n--! down_revision:\n--! upgrade\n--! online_step: V\nSELECT 1;\n"
                          "--! downgrade\n--! step: U\nSELECT 1;\n",
                    "x.sql:4: `--! online_step:` cannot be the first step");
  EXPECT_ERROR_SAYS("--! revision: a\n--! down_revision:\n--! upgrade\n--! step: S\nSELECT 1;\n"
                          "--! downgrade\n--! step: U\nSELECT 1;\n--! online_step: V\nSELECT 1;\n",
                    "x.sql:9: `--! online_step:` belongs to the upgrade section");
}

TEST(MigrationFile, AGuardIsAPreCheckTheGuardStepRuns) {
  MigrationFile f = Parse(
      "--! revision: 002\n--! down_revision: 005\n--! upgrade\n--! step: Lock\nSELECT 1;\n"
      "--! guard_step: Guards\n-- a comment is fine\n--! step: Work\nSELECT 2;\n"
      "--! downgrade\n--! step: Undo\nSELECT 3;\n"
      "--! check pre, guard: g\nSELECT 1 WHERE false;\n--! gate pre, post, guard: h\nSELECT 2 WHERE false;\n");
  ASSERT_EQ(f.upgrade.size(), 3u);
  EXPECT_TRUE(f.upgrade[1].runs_guards);
  EXPECT_TRUE(f.upgrade[1].sql.empty() || f.upgrade[1].sql.find("SELECT") == std::string::npos);
  ASSERT_EQ(f.checks.size(), 3u);
  EXPECT_TRUE(f.checks[0].guard);
  EXPECT_EQ(f.checks[0].when, "pre");
  EXPECT_TRUE(f.checks[1].guard && f.checks[1].gate);
  EXPECT_EQ(f.checks[1].when, "pre");
  EXPECT_FALSE(f.checks[2].guard);  // the post suite's
  const std::string tail = "--! downgrade\n--! step: U\nSELECT 1;\n";
  EXPECT_ERROR_SAYS("--! revision: a\n--! down_revision:\n--! upgrade\n--! step: S\nSELECT 1;\n" + tail +
                    "--! check post, guard: g\nSELECT 1;\n",
                    "a guard is a pre check");
  EXPECT_ERROR_SAYS("--! revision: a\n--! down_revision:\n--! upgrade\n--! step: S\nSELECT 1;\n" + tail +
                    "--! check pre, guard: g\nSELECT 1;\n",
                    "x.sql:9: check 'g' is a guard, but the upgrade has no `--! guard_step:`");
  EXPECT_ERROR_SAYS("--! revision: a\n--! down_revision:\n--! upgrade\n--! guard_step: G\n--! step: S\nSELECT 1;\n" +
                    tail,
                    "x.sql:4: `--! guard_step:` with no check marked `guard`");
  EXPECT_ERROR_SAYS("--! revision: a\n--! down_revision:\n--! upgrade\n--! guard_step: G\nSELECT 1;\n" + tail,
                    "x.sql:5: SQL after `--! guard_step:`");
}

TEST(MigrationFile, ChecksFollowTheDowngradeWithTheirQueries) {
  MigrationFile f = Parse(
      "--! revision: 006\n--! down_revision: 002\n--! upgrade\n--! step: Work\nSELECT 1;\n"
      "--! downgrade\n--! step: Undo\nSELECT 2;\n"
      "--! check pre: nothing negative\nSELECT id FROM t WHERE n < 0;\n"
      "--! check post: all there\n-- a comment\nSELECT 1 WHERE false;\n");
  ASSERT_EQ(f.downgrade.size(), 1u);
  EXPECT_EQ(f.downgrade[0].sql, "SELECT 2;\n");
  ASSERT_EQ(f.checks.size(), 2u);
  EXPECT_EQ(f.checks[0].when, "pre");
  EXPECT_EQ(f.checks[0].name, "nothing negative");
  EXPECT_EQ(f.checks[0].sql, "SELECT id FROM t WHERE n < 0;\n");
  EXPECT_EQ(f.checks[0].line, 9);
  EXPECT_EQ(f.checks[1].when, "post");
  EXPECT_EQ(f.checks[1].sql, "-- a comment\nSELECT 1 WHERE false;\n");
}

TEST(MigrationFile, OneCheckHeaderMayServeSeveralSuitesAndAGateStops) {
  MigrationFile f = Parse(
      "--! revision: 006\n--! down_revision: 002\n"
      "--! prebuilt: column t.c, index t.t_idx\n"
      "--! upgrade\n--! step: Work\nSELECT 1;\n--! downgrade\n--! step: Undo\nSELECT 2;\n"
      "--! gate pre: schema\nSELECT false AS passed, 'no' AS detail;\n"
      "--! check pre, post: both\nSELECT 1 WHERE false;\n");
  EXPECT_EQ(f.prebuilt, (std::vector<std::string>{"column t.c", "index t.t_idx"}));
  ASSERT_EQ(f.checks.size(), 3u);
  EXPECT_TRUE(f.checks[0].gate);
  EXPECT_EQ(f.checks[0].when, "pre");
  for (int i : {1, 2}) {
    EXPECT_FALSE(f.checks[i].gate);
    EXPECT_EQ(f.checks[i].name, "both");
    EXPECT_EQ(f.checks[i].sql, "SELECT 1 WHERE false;\n");
  }
  EXPECT_EQ(f.checks[1].when, "pre");
  EXPECT_EQ(f.checks[2].when, "post");
}

// `--! define NAME: VALUE`: {{NAME}} in steps and checks reads VALUE; a name
// not defined is left as written.
TEST(MigrationFile, DefinesAreExpandedInStepsAndChecks) {
  const MigrationFile f = Parse(
      "--! revision: 001\n--! down_revision:\n--! define TABLES: 'a', 'b'\n--! define P: ^[a-z]+$\n"
      "--! upgrade\n--! step: s\nSELECT {{TABLES}}, '{{P}}', '{{P}}', '{{Q}}', '{{';\n"
      "--! downgrade\n--! step: d\nSELECT 1;\n--! check post: c\nSELECT t FROM unnest(ARRAY[{{TABLES}}]) t;\n");
  EXPECT_EQ(f.upgrade[0].sql, "SELECT 'a', 'b', '^[a-z]+$', '^[a-z]+$', '{{Q}}', '{{';\n");
  EXPECT_EQ(f.checks[0].sql, "SELECT t FROM unnest(ARRAY['a', 'b']) t;\n");
  // Without a define, braces are SQL like any other.
  EXPECT_EQ(Parse(File("001", "", "--! upgrade\n--! step: u\nSELECT '{{X}}';\n--! downgrade\n--! step: d\nSELECT 2;\n"))
                .upgrade[0]
                .sql,
            "SELECT '{{X}}';\n");
}

TEST(MigrationFile, EmptyDownRevisionIsBase) {
  EXPECT_FALSE(Parse(File("001", "")).down_revision.has_value());
}

struct Malformed {
  const char* name;
  std::string text;
  std::string expect;  // part of the message, including the line
};

class MalformedFile : public ::testing::TestWithParam<Malformed> {};

TEST_P(MalformedFile, IsRejectedWithFileAndLine) {
  std::string what = ErrorOf(GetParam().text);
  EXPECT_NE(what.find("x.sql:"), std::string::npos) << what;
  EXPECT_NE(what.find(GetParam().expect), std::string::npos) << what;
}

INSTANTIATE_TEST_SUITE_P(
    Cases, MalformedFile,
    ::testing::Values(
        Malformed{"NoRevision", "--! down_revision:\n--! upgrade\n", "x.sql:2: no `--! revision:`"},
        Malformed{"BadRevisionId", "--! revision: 0 01\n", "x.sql:1: revision id '0 01'"},
        Malformed{"NoDownRevisionLine", "--! revision: 001\n--! upgrade\n", "x.sql:2: no `--! down_revision:`"},
        Malformed{"UnknownDirective", File("001", "", "--! upgrade\n--! stpe: x\n"), "x.sql:6: unknown directive"},
        Malformed{"SqlBeforeUpgrade", "--! revision: 001\n--! down_revision:\nSELECT 1;\n", "x.sql:3: SQL before"},
        Malformed{"SqlBeforeFirstStep", File("001", "", "--! upgrade\nSELECT 1;\n"), "x.sql:6: SQL before the first"},
        Malformed{"NoDowngrade", File("001", "", "--! upgrade\n--! step: a\nSELECT 1;\n"), "no `--! downgrade`"},
        Malformed{"EmptyStep", File("001", "", "--! upgrade\n--! step: a\n-- nothing\n--! downgrade\n--! step: b\nSELECT 1;\n"), "x.sql:6: step 'a' has no SQL"},
        Malformed{"StepWithoutName", File("001", "", "--! upgrade\n--! step:\nSELECT 1;\n"), "x.sql:6: a step needs a name"},
        Malformed{"DowngradeFirst", File("001", "", "--! downgrade\n--! step: a\nSELECT 1;\n"), "x.sql:5: `--! downgrade` must come once, after"},
        Malformed{"TwoRevisions", "--! revision: 001\n--! revision: 002\n", "x.sql:2: a second `revision`"},
        Malformed{"SqlInRecordStep", File("001", "", "--! upgrade\n--! step: a\nSELECT 1;\n--! record_step: r\nSELECT 2;\n"), "x.sql:9: SQL after `--! record_step:`"},
        Malformed{"StepAfterRecordStep", File("001", "", "--! upgrade\n--! record_step: r\n--! step: a\nSELECT 1;\n"), "x.sql:7: `--! record_step:` must be the last step"},
        Malformed{"NoDowngradeSteps", File("001", "", "--! upgrade\n--! step: a\nSELECT 1;\n--! downgrade\n"), "downgrade section has no"},
        Malformed{"CheckBeforeDowngrade", File("001", "", "--! upgrade\n--! step: a\nSELECT 1;\n--! check post: c\nSELECT 1;\n"), "x.sql:8: checks come after the downgrade section"},
        Malformed{"CheckAtAnotherTime", File("001", "", "--! upgrade\n--! step: a\nSELECT 1;\n--! downgrade\n--! step: b\nSELECT 1;\n--! check during: c\nSELECT 1;\n"), "x.sql:11: `--! check during:`: a check runs pre, post or rollback"},
        Malformed{"CheckWithoutQuery", File("001", "", "--! upgrade\n--! step: a\nSELECT 1;\n--! downgrade\n--! step: b\nSELECT 1;\n--! check post: c\n-- nothing\n"), "x.sql:11: check 'c' has no query"},
        Malformed{"SameCheckTwice", File("001", "", "--! upgrade\n--! step: a\nSELECT 1;\n--! downgrade\n--! step: b\nSELECT 1;\n--! check post: c\nSELECT 1;\n--! gate pre, post: c\nSELECT 1;\n"), "x.sql:13: a second post check named 'c' (line 11)"},
        Malformed{"PrebuiltOfAnUnknownKind", "--! revision: 001\n--! down_revision:\n--! prebuilt: view v.x\n", "x.sql:3: prebuilt object 'view v.x' must be"},
        Malformed{"PrebuiltAfterTheHeader", File("001", "", "--! upgrade\n--! prebuilt: index t.i\n"), "x.sql:6: header directive 'prebuilt' after the header"},
        Malformed{"DefineAfterTheHeader", File("001", "", "--! upgrade\n--! define X: 1\n"), "x.sql:6: `--! define` after the header"},
        Malformed{"DefineOfALowerCaseName", "--! revision: 001\n--! down_revision:\n--! define x: 1\n", "x.sql:3: `--! define x:`: a name is an upper-case letter"},
        Malformed{"DefineTwice", "--! revision: 001\n--! down_revision:\n--! define X: 1\n--! define X: 2\n", "x.sql:4: X defined twice"},
        Malformed{"DefineOfNothing", "--! revision: 001\n--! down_revision:\n--! define X:\n", "x.sql:3: `--! define X:` defines nothing"},
        Malformed{"StepAfterChecks", File("001", "", "--! upgrade\n--! step: a\nSELECT 1;\n--! downgrade\n--! step: b\nSELECT 1;\n--! check post: c\nSELECT 1;\n--! step: d\nSELECT 1;\n"), "x.sql:13: `--! step:` after the checks"}),
    [](const auto& p) { return std::string(p.param.name); });

std::vector<MigrationFile> Files(std::vector<std::pair<std::string, std::string>> revs) {
  std::vector<MigrationFile> out;
  for (auto& [rev, down] : revs) out.push_back(ParseMigration(File(rev, down), rev + ".sql"));
  return out;
}

std::string GraphError(std::vector<std::pair<std::string, std::string>> revs) {
  try {
    RevisionGraph::Build(Files(revs));
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ExitCode::kUsage);
    return e.what();
  }
  return "no error";
}

TEST(RevisionGraph, OrdersTheChainFromBase) {
  auto g = RevisionGraph::Build(Files({{"002", "005"}, {"001", ""}, {"005", "003"}, {"003", "001"}}));
  ASSERT_EQ(g.chain().size(), 4u);
  EXPECT_EQ(g.chain()[0].revision, "001");
  EXPECT_EQ(g.chain()[1].revision, "003");
  EXPECT_EQ(g.chain()[2].revision, "005");
  EXPECT_EQ(g.head().revision, "002");
}

TEST(RevisionGraph, DuplicateIdIsNamed) {
  EXPECT_NE(GraphError({{"001", ""}, {"001", ""}}).find("duplicate revision id '001'"), std::string::npos);
}

TEST(RevisionGraph, MissingParentIsNamed) {
  EXPECT_NE(GraphError({{"001", ""}, {"003", "002"}}).find("names down_revision '002', which no file defines"),
            std::string::npos);
}

TEST(RevisionGraph, SeveralHeadsAreAnError) {
  EXPECT_NE(GraphError({{"001", ""}, {"002", "001"}, {"003", "001"}}).find("several heads: revisions 002, 003"),
            std::string::npos);
  EXPECT_NE(GraphError({{"001", ""}, {"002", ""}}).find("several heads"), std::string::npos);
}

TEST(RevisionGraph, CycleIsAnError) {
  EXPECT_NE(GraphError({{"001", "003"}, {"003", "001"}}).find("cycle"), std::string::npos);
  EXPECT_NE(GraphError({{"001", ""}, {"002", "001"}, {"003", "004"}, {"004", "003"}}).find("cycle: revisions 003, 004"),
            std::string::npos);
}

class Targets : public ::testing::Test {
 protected:
  RevisionGraph g = RevisionGraph::Build(Files({{"001", ""}, {"003", "001"}, {"005", "003"}, {"002", "005"}}));
};

TEST_F(Targets, ResolveNamedAndRelativeTargets) {
  EXPECT_EQ(g.ResolveUpgradeTarget("head", 0), 4);
  EXPECT_EQ(g.ResolveUpgradeTarget("005", 1), 3);
  EXPECT_EQ(g.ResolveUpgradeTarget("+1", 3), 4);
  EXPECT_EQ(g.ResolveUpgradeTarget("+2", 0), 2);
  EXPECT_EQ(g.ResolveDowngradeTarget("-1", 4), 3);
  EXPECT_EQ(g.ResolveDowngradeTarget("base", 4), 0);
  EXPECT_EQ(g.ResolveDowngradeTarget("003", 4), 2);
  EXPECT_EQ(g.ResolveUpgradeTarget("head", 4), 4);
}

TEST_F(Targets, BadTargetsSayWhy) {
  auto msg = [](auto&& f) {
    try {
      f();
    } catch (const Error& e) {
      return std::string(e.what()) + " | " + e.hint();
    }
    return std::string("no error");
  };
  EXPECT_NE(msg([&] { g.ResolveUpgradeTarget("004", 0); }).find("unknown revision '004' | known revisions: base, 001, 003, 005, 002, head"),
            std::string::npos);
  EXPECT_NE(msg([&] { g.ResolveUpgradeTarget("+2", 3); }).find("only 1 revision(s) above"), std::string::npos);
  EXPECT_NE(msg([&] { g.ResolveDowngradeTarget("-5", 4); }).find("only 4 revision(s) below"), std::string::npos);
  EXPECT_NE(msg([&] { g.ResolveUpgradeTarget("001", 3); }).find("is below the current revision"), std::string::npos);
  EXPECT_NE(msg([&] { g.ResolveDowngradeTarget("head", 2); }).find("is above the current revision"), std::string::npos);
  EXPECT_NE(msg([&] { g.ResolveUpgradeTarget("-1", 2); }).find("goes backwards"), std::string::npos);
  EXPECT_NE(msg([&] { g.ResolveDowngradeTarget("-x", 2); }).find("bad relative target"), std::string::npos);
}

TEST_F(Targets, HashChangesWhenAFileChanges) {
  auto files = Files({{"001", ""}, {"003", "001"}, {"005", "003"}, {"002", "005"}});
  std::string before = RevisionGraph::Build(files).Hash();
  std::string prefix_before = RevisionGraph::Build(files).HashUpTo(2);
  files[3].content_hash ^= 1;  // the file edited
  EXPECT_NE(RevisionGraph::Build(files).Hash(), before);
  EXPECT_EQ(RevisionGraph::Build(files).HashUpTo(2), prefix_before);  // earlier templates stay valid
}

}  // namespace
}  // namespace harness::engine
