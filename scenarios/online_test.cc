// `upgrade --online`: 002 in phases (a catalog-only transaction, the index
// built CONCURRENTLY, each VALIDATE and the batched backfill outside it, a
// last transaction that
// records the revision), on both shapes. It ends where the upgrade in one
// transaction ends; a fault at every phase boundary, and inside the
// backfill, leaves a state that `current` names, that the next
// `upgrade --online` completes and that `downgrade 005` undoes.
#include <gtest/gtest.h>

#include <signal.h>

#include <chrono>
#include <memory>
#include <optional>
#include <utility>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <pqxx/pqxx>

#include "harness/codesearch/generator.h"
#include "harness/codesearch/live_traffic.h"
#include "harness/codesearch/quickstart_sample.h"
#include "harness/engine/migrator.h"
#include "harness/engine/version_table.h"
#include "harness/error.h"
#include "harness/pg/connection.h"
#include "scenarios/support/test_env.h"

namespace harness::testing {
namespace {

struct Injected : std::runtime_error {
  Injected() : std::runtime_error("fault injected by the test") {}
};

engine::MigratorOptions OnlineOptions(bool backfill) {
  engine::MigratorOptions o;
  o.online = true;
  o.log_steps = false;
  if (backfill) {
    // Every repository agrees on 'default': only forced does 002 take the
    // backfill, in batches of 2 chunks here.
    o.settings["migration_harness.force_update_path"] = "on";
    o.settings["migration_harness.backfill_batch"] = "2";
  }
  return o;
}

engine::RunReport Migrate(const TestDatabase& db, engine::MigratorOptions o, bool up = true,
                      const std::string& target = "head") {
  pg::Connection conn(db.url());
  engine::Migrator m(conn, Chain(), std::move(o));
  return up ? m.Upgrade(target) : m.Downgrade(target);
}

std::optional<engine::OnlineProgress> Progress(const TestDatabase& db) {
  pg::Connection conn(db.url());
  pqxx::read_transaction tx(conn.raw());
  return engine::ReadProgress(tx);
}

// What 002 leaves behind while in progress, and must not leave after it.
std::string Leftovers(const TestDatabase& db) {
  return db.Scalar(
      "SELECT concat_ws(',', "
      "CASE WHEN to_regclass('public.migration_harness_progress') IS NOT NULL THEN 'progress table' END, "
      "CASE WHEN to_regprocedure('public.migration_harness_002_fill_project_id()') IS NOT NULL THEN 'fill function' END, "
      "CASE WHEN EXISTS (SELECT 1 FROM pg_trigger WHERE tgname = 'migration_harness_002_fill_project_id') "
      "THEN 'fill trigger' END, "
      "CASE WHEN EXISTS (SELECT 1 FROM pg_constraint WHERE conname = 'check_code_chunks_project_id_not_null') "
      "THEN 'not-null check' END)");
}

class OnlineUpgrade : public ::testing::TestWithParam<Shape> {
 protected:
  // The shape's sample: 3 repositories, 6 chunks.
  void Sample(const TestDatabase& db) const {
    if (GetParam() == Shape::kQuickstart) {
      db.Exec(codesearch::kQuickstartSampleSql);
    } else {
      pg::Connection conn(db.url());
      codesearch::GeneratorOptions o;
      o.repositories = 3;
      o.chunks_per_repo = 2;
      codesearch::Generate(conn, o);
    }
  }
  // 002 online and back: the states at both ends. 005 as a downgrade
  // leaves it: the rows of the nine tables dropped (the production sample
  // has some) do not come back.
  std::pair<DatabaseState, DatabaseState> UpAndDown(const TestDatabase& db) const {
    Migrate(db, OnlineOptions(true));
    DatabaseState at_002 = CaptureState(db);
    Migrate(db, OnlineOptions(false), false, "005");
    return {std::move(at_002), CaptureState(db)};
  }
};

INSTANTIATE_TEST_SUITE_P(BothShapes, OnlineUpgrade, ::testing::Values(Shape::kQuickstart, Shape::kProduction),
                         ShapeTestName);

// Online, by constant default and by backfill, ends exactly where one
// transaction ends: the same catalog, the same rows, nothing of its own left.
TEST_P(OnlineUpgrade, EndsWhereOneTransactionEnds) {
  TestDatabase db("005", GetParam());
  Sample(db);
  for (bool backfill : {false, true}) {
    SCOPED_TRACE(backfill ? "backfill" : "constant default");
    LogCapture log;
    engine::MigratorOptions o = OnlineOptions(backfill);
    o.log_steps = true;
    engine::RunReport online = Migrate(db, o);
    EXPECT_EQ(online.to, "002");
    // 7 steps in phase 1, 5 online steps, then validation, time, record.
    ASSERT_EQ(online.steps.size(), 15u) << log.Text();
    EXPECT_EQ(online.steps[7].name, "Creating performance index concurrently");
    EXPECT_EQ(online.steps[8].name, "Backfilling code_chunks.project_id in batches");
    EXPECT_CONTAINS(log.Text(), "Phase 1 of 7 committed");
    EXPECT_CONTAINS(log.Text(), "Index idx_project_repository: built concurrently after this phase");
    EXPECT_CONTAINS(log.Text(), backfill ? "Backfilled 6 chunks in 3 batches of at most 2"
                                         : "Nothing to backfill: code_chunks.project_id was added with its value");
    EXPECT_CONTAINS(log.Text(), "transactions and the online steps between them");
    EXPECT_EQ(db.Revision(), "002");
    EXPECT_EQ(Leftovers(db), "");
    EXPECT_EQ(db.Scalar("SELECT count(*) FROM code_chunks WHERE project_id = 'default'"), "6");
    const DatabaseState after_online = CaptureState(db);

    engine::MigratorOptions plain;
    plain.log_steps = false;
    Migrate(db, plain, false, "005");
    Migrate(db, plain);
    ExpectUnchanged(db, after_online, "online against one transaction");
    Migrate(db, plain, false, "005");
  }
}

// A fault at each phase boundary, and before the last phase's commit:
// what committed stays, `current` says where it stands, an upgrade in one
// transaction is refused, then `upgrade --online` completes it (one run)
// or `downgrade 005` undoes it (the other), each exactly.
TEST_P(OnlineUpgrade, AFaultAtEveryPhaseBoundaryResumesOrUndoes) {
  TestDatabase db("005", GetParam());
  Sample(db);
  const auto [at_002, at_005] = UpAndDown(db);

  // The step the fault comes before (1-based, of 15), and the phases done then.
  const std::vector<std::pair<int, int>> faults = {{7, 0},  {8, 1},  {9, 2},  {10, 3},
                                                   {11, 4}, {12, 5}, {13, 6}, {15, 6}};
  for (const auto& [before, done] : faults) {
    for (bool resume : {true, false}) {
      SCOPED_TRACE(fmt::format("fault before step {}, then {}", before, resume ? "resume" : "undo"));
      engine::MigratorOptions o = OnlineOptions(true);
      o.before_step = [before = before](const engine::StepTiming& s, pqxx::transaction_base&) {
        if (s.revision == "002" && s.index == before) throw Injected();
      };
      EXPECT_THROW(Migrate(db, o), Injected);
      EXPECT_EQ(db.Revision(), "005");
      auto progress = Progress(db);
      if (done == 0) {
        EXPECT_FALSE(progress);
        ExpectUnchanged(db, at_005, "a fault inside phase 1");
        continue;
      }
      ASSERT_TRUE(progress);
      EXPECT_EQ(progress->revision, "002");
      EXPECT_EQ(progress->parent, "005");
      EXPECT_EQ(progress->phases_done, done);
      EXPECT_EQ(progress->phases, 7);
      sys::ProcessResult current = RunCli({"current"}, db.url().text());
      EXPECT_EQ(current.exit_code, 0) << current.out + current.err;
      EXPECT_CONTAINS(current.out + current.err, fmt::format("002 in progress: phase {} of 7 done", done));
      sys::ProcessResult plain = RunCliUnchanged(db, {"upgrade"}, 2);
      EXPECT_CONTAINS(plain.err, "complete it with `migration-harness upgrade --online`");
      if (resume) {
        LogCapture log;
        engine::MigratorOptions again = OnlineOptions(true);
        again.log_steps = true;
        engine::RunReport r = Migrate(db, again);
        EXPECT_CONTAINS(log.Text(), fmt::format("Resuming at phase {} of 7", done + 1));
        // Only the steps of the phases left ran.
        EXPECT_EQ(r.steps.front().index, done == 6 ? 13 : 7 + done);
        ExpectUnchanged(db, at_002, "resumed");
        Migrate(db, OnlineOptions(false), false, "005");
      } else {
        sys::ProcessResult undo = RunCli({"downgrade", "005"}, db.url().text());
        EXPECT_EQ(undo.exit_code, 0) << undo.out + undo.err;
        EXPECT_CONTAINS(undo.out + undo.err, "Undoing 002 (left in progress");
      }
      ExpectUnchanged(db, at_005, "back at 005");
      EXPECT_EQ(Leftovers(db), "");
    }
  }
}

// A concurrent build stopped half way leaves an invalid index (made here by
// a unique build that fails on the sample's duplicate project ids): the
// next `upgrade --online` drops it and builds it again, valid.
TEST_P(OnlineUpgrade, AnInvalidIndexFromAStoppedBuildIsRebuilt) {
  TestDatabase db("005", GetParam());
  Sample(db);
  const DatabaseState at_002 = UpAndDown(db).first;
  engine::MigratorOptions o = OnlineOptions(false);
  o.before_step = [](const engine::StepTiming& s, pqxx::transaction_base&) {
    if (s.revision == "002" && s.index == 8) throw Injected();
  };
  EXPECT_THROW(Migrate(db, o), Injected);
  {
    pg::Connection conn(db.url());
    pqxx::nontransaction tx(conn.raw());
    EXPECT_THROW(tx.exec("CREATE UNIQUE INDEX CONCURRENTLY idx_project_repository ON repositories (project_id)"),
                 pqxx::unique_violation);
  }
  EXPECT_EQ(db.Scalar("SELECT indisvalid FROM pg_index WHERE indexrelid = 'public.idx_project_repository'::regclass"),
            "f");
  LogCapture log;
  engine::MigratorOptions again = OnlineOptions(false);
  again.log_steps = true;
  Migrate(db, again);
  EXPECT_CONTAINS(log.Text(), "Dropped the invalid index idx_project_repository left by a stopped build");
  ExpectUnchanged(db, at_002, "rebuilt");
}

// A lock timeout in an online phase (another session holds SHARE UPDATE
// EXCLUSIVE on code_chunks, which VALIDATE needs): the phases before stay
// committed, and --lock-retries tries again from the phase that gave up,
// not from the start.
TEST_P(OnlineUpgrade, ALockTimeoutInAPhaseIsRetriedFromThatPhase) {
  TestDatabase db("005", GetParam());
  Sample(db);
  std::unique_ptr<pqxx::connection> holder;
  std::unique_ptr<pqxx::work> held;
  int attempts_at_step_12 = 0;
  engine::MigratorOptions o = OnlineOptions(true);
  o.log_steps = true;
  o.lock_timeout_seconds = 0.3;
  o.lock_retries = 1;
  o.lock_retry_delay_seconds = 0.05;
  o.before_step = [&](const engine::StepTiming& s, pqxx::transaction_base&) {
    if (s.revision != "002" || s.index != 12) return;
    if (++attempts_at_step_12 == 1) {
      holder = std::make_unique<pqxx::connection>(pg::ConnectString(db.url()));
      held = std::make_unique<pqxx::work>(*holder);
      held->exec("LOCK TABLE public.code_chunks IN SHARE UPDATE EXCLUSIVE MODE");
    } else {
      held.reset();  // rolled back: the lock goes
    }
  };
  LogCapture log;
  engine::RunReport r = Migrate(db, o);
  EXPECT_EQ(attempts_at_step_12, 2);
  EXPECT_CONTAINS(log.Text(), "002 in progress: phase 5 of 7 done");
  EXPECT_CONTAINS(log.Text(), "the phase that gave up changed nothing, trying again from phase 6");
  EXPECT_CONTAINS(log.Text(), "Resuming at phase 6 of 7");
  EXPECT_EQ(r.steps.front().index, 12);
  EXPECT_EQ(db.Revision(), "002");
  EXPECT_EQ(Leftovers(db), "");
}

// The progress table is the tool's: one another role made first (to plant
// a trigger, or a forged "phase 5 of 7 done") is refused, and nothing runs.
TEST(OnlineProgressTable, OneMadeByAnotherRoleIsRefused) {
  TestDatabase db("005");
  db.Exec(codesearch::kQuickstartSampleSql);
  Role intruder("");
  db.Exec("GRANT CREATE ON SCHEMA public TO " + intruder.name());
  intruder.Exec(db, "CREATE TABLE public.migration_harness_progress (revision varchar(32) PRIMARY KEY, "
                    "parent varchar(32) NOT NULL, phases_done integer NOT NULL, phases integer NOT NULL, "
                    "step text NOT NULL, updated_at timestamptz NOT NULL DEFAULT now());"
                    "INSERT INTO public.migration_harness_progress VALUES ('002', '005', 5, 7, 'forged', now())");
  for (const std::vector<std::string>& args :
       {std::vector<std::string>{"upgrade", "--online"}, {"upgrade"}, {"current"}}) {
    sys::ProcessResult r = RunCliUnchanged(db, args, 2);
    EXPECT_CONTAINS(r.err, "public.migration_harness_progress is not the tool's table (owned by " + intruder.name());
  }
}

// A fault inside the backfill (a trigger that fails the third chunk it
// sees updated, in batches of 2): the first batch stays committed, the
// second rolled back; the next run fills the rest.
TEST_P(OnlineUpgrade, AFaultInsideTheBackfillKeepsTheCommittedBatches) {
  TestDatabase db("005", GetParam());
  Sample(db);
  const DatabaseState at_002 = UpAndDown(db).first;

  db.Exec(
      "CREATE SEQUENCE public.fault_count;"
      "CREATE FUNCTION public.fault() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
      "IF NEW.project_id IS NOT NULL AND nextval('public.fault_count') > 2 THEN "
      "RAISE EXCEPTION 'fault inside the backfill'; END IF; RETURN NEW; END $$;");
  engine::MigratorOptions o = OnlineOptions(true);
  o.before_step = [&](const engine::StepTiming& s, pqxx::transaction_base& tx) {
    if (s.revision == "002" && s.index == 9)
      tx.exec("CREATE TRIGGER fault BEFORE UPDATE ON public.code_chunks FOR EACH ROW EXECUTE FUNCTION public.fault()");
  };
  try {
    Migrate(db, o);
    ADD_FAILURE() << "the backfill went through its fault";
  } catch (const Error& e) {
    EXPECT_CONTAINS(e.what(), "fault inside the backfill");
  }
  EXPECT_EQ(db.Scalar("SELECT count(*) FROM code_chunks WHERE project_id IS NOT NULL"), "2");
  auto progress = Progress(db);
  ASSERT_TRUE(progress);
  EXPECT_EQ(progress->phases_done, 2);
  db.Exec("DROP TRIGGER fault ON public.code_chunks; DROP FUNCTION public.fault(); DROP SEQUENCE public.fault_count");
  Migrate(db, OnlineOptions(true));
  ExpectUnchanged(db, at_002, "resumed after the backfill's fault");
}

// Ctrl-C in the backfill (repositories that disagree on project_id, and a
// trigger that makes each chunk's update take 50 ms): the command stops
// within seconds (exit 130), phases 1 and 2 stay committed and `current` names
// it; the next `upgrade --online` completes 002.
TEST_P(OnlineUpgrade, CtrlCInTheBackfillLeavesPhaseOneForTheNextRun) {
  TestDatabase db("005", GetParam());
  Sample(db);
  db.Exec(
      "ALTER TABLE repositories ADD COLUMN project_id varchar(50) NOT NULL DEFAULT 'default';"
      "UPDATE repositories SET project_id = 'project-' || substr(md5(id::text), 1, 6);"
      "CREATE FUNCTION public.slow() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
      "PERFORM pg_sleep(0.05); RETURN NEW; END $$;"
      "CREATE TRIGGER slow BEFORE UPDATE ON public.code_chunks FOR EACH ROW EXECUTE FUNCTION public.slow();");
  db.Exec(GetParam() == Shape::kQuickstart
              ? "INSERT INTO code_chunks (repository_id, file_path, content, start_line, end_line) "
                "SELECT r.id, 'more.py', 'more ' || g, 1, 1 FROM repositories r, generate_series(1, 100) g"
              : "INSERT INTO code_chunks (id, code_file_id, content, start_line, end_line, chunk_type) "
                "SELECT gen_random_uuid(), f.id, 'more ' || g, 1, 1, 'function' FROM code_files f, "
                "generate_series(1, 100) g");
  BackgroundCli cli({"upgrade", "--online"}, db.url().text());
  ASSERT_TRUE(WaitUntil([&] { return cli.Output().find("Backfilling code_chunks.project_id") != std::string::npos; },
                        std::chrono::seconds(30)))
      << cli.Output();
  cli.Signal(SIGINT);
  auto status = cli.Wait(std::chrono::seconds(10));
  ASSERT_TRUE(status) << cli.Output();
  EXPECT_EQ(*status, 130) << cli.Output();
  EXPECT_CONTAINS(cli.Output(), "002 in progress: phase 2 of 7 done");
  EXPECT_EQ(db.Revision(), "005");
  sys::ProcessResult current = RunCli({"current"}, db.url().text());
  EXPECT_CONTAINS(current.out, "002 in progress: phase 2 of 7 done (Creating performance index concurrently)");
  EXPECT_NE(db.Scalar("SELECT count(*) FROM code_chunks WHERE project_id IS NULL"), "0");

  db.Exec("DROP TRIGGER slow ON public.code_chunks; DROP FUNCTION public.slow()");
  sys::ProcessResult again = RunCli({"upgrade", "--online"}, db.url().text());
  EXPECT_EQ(again.exit_code, 0) << again.err;
  EXPECT_CONTAINS(again.err, "Resuming at phase 3 of 7");
  EXPECT_EQ(db.Revision(), "002");
  EXPECT_EQ(db.Scalar("SELECT count(*) FROM code_chunks c JOIN repositories r ON " +
                      std::string(GetParam() == Shape::kQuickstart
                                      ? "r.id = c.repository_id"
                                      : "r.id = (SELECT f.repository_id FROM code_files f WHERE f.id = c.code_file_id)") +
                      " WHERE c.project_id = r.project_id"),
            db.Scalar("SELECT count(*) FROM code_chunks"));
  EXPECT_EQ(Leftovers(db), "");
}

// verify --online rehearses it on a copy: READY, the upgrade in phases, each
// lock judged to the end of its phase (phase 1's catalog-only work alone
// under ACCESS EXCLUSIVE), the copy's source untouched.
TEST_P(OnlineUpgrade, VerifyOnlineRehearsesThePhases) {
  TestDatabase db("005", GetParam());
  Sample(db);
  const DatabaseState before = CaptureState(db);
  sys::ProcessResult r = RunCli({"verify", "--online"}, db.url().text());
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_CONTAINS(r.out, "READY: 005 -> 002 upgraded in");
  EXPECT_CONTAINS(r.out, "online, in phases");
  EXPECT_CONTAINS(r.out, "a lock is held to the end of its phase");
  EXPECT_CONTAINS(r.out, "Validating check_code_chunks_project_id: ");
  EXPECT_CONTAINS(r.out, "outside any transaction (upgrade --online)");
  // The index built CONCURRENTLY is the safer form, not a finding of it.
  EXPECT_EQ(r.out.find("[index-not-concurrent]"), std::string::npos) << r.out;
  ExpectUnchanged(db, before, "verify --online works on a copy");
}

// Traffic goes on through the online backfill: the rows the writer
// updates and the rows inserted meanwhile get their project_id, and no
// reader or writer fails on the NOT VALID not-null CHECK.
TEST_P(OnlineUpgrade, ReadersAndWritersGoOnThroughTheBackfill) {
  TestDatabase db("005", GetParam());
  Sample(db);
  engine::MigratorOptions o = OnlineOptions(true);
  o.before_step = [&](const engine::StepTiming& s, pqxx::transaction_base&) {
    // A chunk added while the column is empty, as the service would add one
    // (its repository's or file's id, no project_id).
    if (s.revision == "002" && s.index == 8) {
      db.Exec(GetParam() == Shape::kQuickstart
                  ? "INSERT INTO code_chunks (repository_id, file_path, content, start_line, end_line) "
                    "SELECT id, 'new.py', 'new', 1, 1 FROM repositories LIMIT 1"
                  : "INSERT INTO code_chunks (id, code_file_id, content, start_line, end_line, chunk_type) "
                    "SELECT gen_random_uuid(), id, 'new', 1, 1, 'function' FROM code_files LIMIT 1");
    }
  };
  codesearch::UpgradeUnderTraffic u = codesearch::RunUpgradeUnderTraffic(db.url(), Chain(), o, 20);
  EXPECT_EQ(u.reader.failures, 0) << u.reader.first_error;
  EXPECT_EQ(u.writer.failures, 0) << u.writer.first_error;
  EXPECT_EQ(db.Revision(), "002");
  EXPECT_EQ(db.Scalar("SELECT count(*) FROM code_chunks WHERE project_id IS NULL"), "0");
  EXPECT_EQ(db.Scalar("SELECT count(*) FROM code_chunks WHERE content = 'new' AND project_id = 'default'"), "1");
  EXPECT_EQ(Leftovers(db), "");
}

}  // namespace
}  // namespace harness::testing
