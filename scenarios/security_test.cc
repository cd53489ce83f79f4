// A role that may only create objects plants them where a superuser's
// statements could resolve to them; the tool, run as a superuser, must
// neither call them nor read them (issue: privilege escalation through
// search_path). Each case is one hostile object and the commands it aims at.
#include <gtest/gtest.h>

#include <pqxx/pqxx>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <regex>

#include "harness/codesearch/quickstart_sample.h"
#include "scenarios/support/test_env.h"

namespace harness::testing {
namespace {

// The body every planted function runs: make its owner a superuser.
std::string Escalate(const Role& r) {
  return "EXECUTE 'ALTER ROLE " + r.name() + " SUPERUSER';";
}

// Reads through raw libpq as the cluster's superuser: a pg::Connection
// refuses a database holding planted objects, which is the point of some
// of these tests.
std::string RawScalar(const TestDatabase& db, const std::string& sql) {
  pqxx::connection conn(db.url().text());
  pqxx::read_transaction tx(conn);
  pqxx::result r = tx.exec(sql);
  return r.empty() || r[0][0].is_null() ? "" : r[0][0].as<std::string>();
}

std::string Revision(const TestDatabase& db) {
  return RawScalar(db, "SELECT version_num FROM public.alembic_version");
}

// `sql` with each %E replaced by Escalate(r).
std::string WithEscalation(const std::string& sql, const Role& r) {
  return std::regex_replace(sql, std::regex("%E"), Escalate(r));
}

// The application's role owns `table` (it ran Alembic, say) and may create
// schemas; `sql` (with %E for the escalating body) runs as that role.
void PlantAsTableOwner(const TestDatabase& db, const Role& app, const std::string& table,
                       const std::string& sql) {
  db.Exec("GRANT CREATE ON DATABASE " + db.name() + " TO " + app.name() + "; ALTER TABLE " +
          table + " OWNER TO " + app.name());
  app.Exec(db, WithEscalation(sql, app));
}

// The schema "$user" would have named: the tool connects as `postgres`.
void PlantInUserSchema(const TestDatabase& db, const Role& evil) {
  db.Exec("GRANT CREATE ON DATABASE " + db.name() + " TO " + evil.name());
  evil.Exec(db, "CREATE SCHEMA postgres; "
                "CREATE FUNCTION postgres.char_length(varchar) RETURNS integer LANGUAGE plpgsql "
                "AS $$BEGIN " + Escalate(evil) + " RETURN 1; END$$; "
                "CREATE FUNCTION postgres.min(varchar) RETURNS varchar LANGUAGE plpgsql "
                "AS $$BEGIN " + Escalate(evil) + " RETURN $1; END$$; "
                "CREATE TABLE postgres.alembic_version (version_num varchar(32) PRIMARY KEY); "
                "INSERT INTO postgres.alembic_version VALUES ('002')");
}

TEST(HostileSchema, ASchemaNamedLikeTheUserIsNeverSearched) {
  TestDatabase db("005");
  db.Exec(codesearch::kQuickstartSampleSql);
  Role evil("NOSUPERUSER");
  PlantInUserSchema(db, evil);

  auto current = RunCli({"current"}, db.url().text());
  EXPECT_EQ(current.exit_code, 0) << current.err;
  EXPECT_CONTAINS(current.out, "005");
  EXPECT_EQ(current.out.find("002"), std::string::npos) << current.out;

  auto pre = RunCli({"check", "pre"}, db.url().text());
  EXPECT_EQ(pre.exit_code, 0) << pre.out << pre.err;
  auto up = RunCli({"upgrade", "head"}, db.url().text());
  EXPECT_EQ(up.exit_code, 0) << up.out << up.err;
  EXPECT_EQ(Revision(db), "002");
  auto post = RunCli({"check", "post"}, db.url().text());
  EXPECT_EQ(post.exit_code, 0) << post.out << post.err;

  EXPECT_FALSE(evil.IsSuperuser());
  // Both CHECKs call pg_catalog's char_length(text) and not the planted one
  // (built-ins have no pg_depend rows: read the stored expression).
  EXPECT_EQ(RawScalar(db, "SELECT count(*) FROM pg_constraint k WHERE k.conname LIKE "
                          "'check\\_%\\_project\\_id' AND k.conbin::text LIKE '%:funcid ' || "
                          "'pg_catalog.char_length(text)'::regprocedure::oid || ' %' AND "
                          "k.conbin::text NOT LIKE '%:funcid ' || "
                          "'postgres.char_length(varchar)'::regprocedure::oid || ' %'"),
            "2");
  // The decoy was neither read nor written.
  EXPECT_EQ(RawScalar(db, "SELECT version_num FROM postgres.alembic_version"), "002");
}

TEST(HostileSchema, VerifyOnACloneIsNotEscalatedEither) {
  TestDatabase db("005");
  db.Exec(codesearch::kQuickstartSampleSql);
  Role evil("NOSUPERUSER");
  PlantInUserSchema(db, evil);
  auto r = RunCli({"verify"}, db.url().text());
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_CONTAINS(r.out, "READY");
  EXPECT_FALSE(evil.IsSuperuser());
  EXPECT_EQ(Revision(db), "005");
}

// Objects in `public` itself (PostgreSQL 14 and older let every role
// create there): an overload closer to the argument's type than
// pg_catalog's wins whatever the search_path's order, so the tool refuses
// to run at all, names the object, and changes nothing.
struct PublicPlant {
  const char* name;
  const char* sql;   // run as the hostile role; %E is the escalating body
  const char* shown; // what the refusal names
};

const PublicPlant kPublicPlants[] = {
    {"Function",
     "CREATE FUNCTION public.char_length(varchar) RETURNS integer LANGUAGE plpgsql "
     "AS $$BEGIN %E RETURN 1; END$$",
     "function public.char_length(character varying)"},
    {"Aggregate",
     "CREATE FUNCTION public.pick(varchar, varchar) RETURNS varchar LANGUAGE plpgsql "
     "AS $$BEGIN %E RETURN $2; END$$; "
     "CREATE AGGREGATE public.min(varchar) (SFUNC = public.pick, STYPE = varchar)",
     "aggregate public.min(character varying)"},
    {"Operator",
     "CREATE FUNCTION public.matches(varchar, text) RETURNS boolean LANGUAGE plpgsql "
     "AS $$BEGIN %E RETURN true; END$$; "
     "CREATE OPERATOR public.~ (LEFTARG = varchar, RIGHTARG = text, FUNCTION = public.matches)",
     "operator public.~(character varying, text)"},
};

class HostilePublic : public ::testing::TestWithParam<PublicPlant> {};

TEST_P(HostilePublic, IsRefusedByEveryCommandAndNothingChanges) {
  TestDatabase db("005");
  db.Exec(codesearch::kQuickstartSampleSql);
  Role evil("NOSUPERUSER");
  db.Exec("GRANT CREATE ON SCHEMA public TO " + evil.name());
  evil.Exec(db, WithEscalation(GetParam().sql, evil));

  for (const std::vector<std::string>& args :
       {std::vector<std::string>{"upgrade", "head"}, {"check", "pre"}, {"verify"}, {"current"},
        {"verify", "--into-embedded"}}) {
    auto r = RunCliUnchanged(db, args, 2);
    EXPECT_CONTAINS(r.err, GetParam().shown);
    EXPECT_CONTAINS(r.err, "nothing was run");
    EXPECT_CONTAINS(r.err, "DROP ");
  }
  EXPECT_FALSE(evil.IsSuperuser());
  EXPECT_EQ(Revision(db), "005");
  EXPECT_EQ(RawScalar(db, "SELECT count(*) FROM pg_attribute WHERE attname = 'project_id' "
                          "AND attrelid IN ('repositories'::regclass, 'code_chunks'::regclass)"),
            "0");
}

INSTANTIATE_TEST_SUITE_P(Plants, HostilePublic, ::testing::ValuesIn(kPublicPlants),
                         [](const auto& p) { return std::string(p.param.name); });

// The owner of a trusted extension may add its own objects to it:
// membership proves nothing, ownership does.
TEST(HostilePublicExtension, AnObjectSlippedIntoATrustedExtensionIsStillRefused) {
  TestDatabase db("005");
  db.Exec(codesearch::kQuickstartSampleSql);
  Role evil("NOSUPERUSER");
  db.Exec("GRANT CREATE ON DATABASE " + db.name() + " TO " + evil.name() +
          "; GRANT CREATE ON SCHEMA public TO " + evil.name());
  evil.Exec(db, "CREATE EXTENSION citext; "
                "CREATE FUNCTION public.pick(varchar, varchar) RETURNS varchar LANGUAGE plpgsql "
                "AS $$BEGIN " + Escalate(evil) + " RETURN $2; END$$; "
                "CREATE AGGREGATE public.min(varchar) (SFUNC = public.pick, STYPE = varchar); "
                "ALTER EXTENSION citext ADD AGGREGATE public.min(varchar)");
  auto r = RunCliUnchanged(db, {"upgrade", "head"}, 2);
  EXPECT_CONTAINS(r.err, "aggregate public.min(character varying)");
  EXPECT_FALSE(evil.IsSuperuser());
  EXPECT_EQ(Revision(db), "005");
}

// A role that owns a table the tool writes hangs a trigger on it: the
// trigger would run as the tool's user. (The application's role owning
// alembic_version is common: it is whoever ran Alembic.)
TEST(HostileTableCode, ATriggerOnATableTheToolWritesIsRefused) {
  TestDatabase db("005");
  db.Exec(codesearch::kQuickstartSampleSql);
  Role app("NOSUPERUSER");
  PlantAsTableOwner(db, app, "alembic_version",
                    "CREATE SCHEMA appfn; "
                    "CREATE FUNCTION appfn.x() RETURNS trigger LANGUAGE plpgsql "
                    "AS $$BEGIN %E RETURN NULL; END$$; "
                    "CREATE TRIGGER t AFTER INSERT OR UPDATE OR DELETE ON public.alembic_version "
                    "FOR EACH STATEMENT EXECUTE FUNCTION appfn.x()");
  for (const std::vector<std::string>& args :
       {std::vector<std::string>{"upgrade", "head"}, {"stamp", "003b"}, {"verify"}}) {
    auto r = RunCliUnchanged(db, args, 2);
    EXPECT_CONTAINS(r.err, "trigger t on table alembic_version runs appfn.x()");
  }
  EXPECT_FALSE(app.IsSuperuser());
  EXPECT_EQ(Revision(db), "005");
}

// `db` filled with the quickstart's sample and dumped (pg_dump -Fc): the
// dump's path, empty when pg_dump failed (said by the test).
std::string SampleBackup(const TestDatabase& db) {
  db.Exec(codesearch::kQuickstartSampleSql);
  const std::string backup = ::testing::TempDir() + pg::UniqueDatabaseName("hostile") + ".dump";
  auto dump = sys::RunProcess({(pg::FindClientBinDir() / "pg_dump").string(), "--format=custom",
                              "--file", backup, "--dbname", db.url().text()});
  EXPECT_EQ(dump.exit_code, 0) << dump.err;
  return dump.exit_code == 0 ? backup : std::string();
}

// A trigger on tasks, owned by `app`, running appfn.FUNCTION() AFTER INSERT
// (names as SQL writes them: quoted where they need it).
void PlantInsertTrigger(const TestDatabase& db, const Role& app, const std::string& function, const std::string& trigger) {
  PlantAsTableOwner(db, app, "tasks",
                    "CREATE SCHEMA appfn; CREATE FUNCTION appfn." + function +
                        " () RETURNS trigger LANGUAGE plpgsql AS $$BEGIN %E RETURN NULL; END$$; CREATE TRIGGER " +
                        trigger + " AFTER INSERT ON public.tasks FOR EACH STATEMENT EXECUTE FUNCTION appfn." +
                        function + "()");
}

// The commands that write other tables than the core ones check those too:
// restore-dropped the nine it fills, generate every table of public.
TEST(HostileTableCode, ATriggerOnATableRestoreDroppedOrGenerateWritesIsRefused) {
  TestDatabase db("005");
  const std::string backup = SampleBackup(db);
  ASSERT_FALSE(backup.empty());
  Role app("NOSUPERUSER");
  PlantInsertTrigger(db, app, "x", "t");
  for (const std::vector<std::string>& args :
       {std::vector<std::string>{"restore-dropped", "--from", backup},
        {"generate", "--any-schema", "--rows-per-table", "5"},
        {"generate", "--repositories", "2", "--chunks-per-repo", "2"}}) {
    auto r = RunCliUnchanged(db, args, 2);
    EXPECT_CONTAINS(r.err, "trigger t on table tasks runs appfn.x()");
  }
  std::remove(backup.c_str());
  EXPECT_FALSE(app.IsSuperuser());
}

// The refusal names the trigger and its function as the catalog has them,
// under the rule for untrusted text: names written to rewrite the screen
// and forge a line are shown escaped.
TEST(HostileTableCode, ATriggerNamedToRewriteTheScreenIsShownEscaped) {
  TestDatabase db("005");
  const std::string backup = SampleBackup(db);
  ASSERT_FALSE(backup.empty());
  Role app("NOSUPERUSER");
  PlantInsertTrigger(db, app, "\"x\x1b[2J\"", "\"t\x1b]0;pwned\x07\nREADY\"");
  auto r = RunCliUnchanged(db, {"restore-dropped", "--from", backup}, 2);
  std::remove(backup.c_str());
  EXPECT_CONTAINS(r.err, "t\\x1b]0;pwned\\x07\\x0aREADY");
  EXPECT_CONTAINS(r.err, "x\\x1b[2J");
  for (const char* raw : {"\x1b", "\x07", "\nREADY"}) EXPECT_EQ(r.err.find(raw), std::string::npos) << r.err;
  EXPECT_FALSE(app.IsSuperuser());
}

// The checks count the rows of the tables 002 drops: one replaced by a view
// that calls its owner's function is never read (reading it would run that
// function with the tool's rights), by check pre nor by verify.
TEST(HostileTableCode, AViewInPlaceOfATable002DropsIsNeverRead) {
  TestDatabase db("005");
  db.Exec(codesearch::kQuickstartSampleSql);
  Role app("NOSUPERUSER");
  db.Exec("GRANT CREATE ON SCHEMA public TO " + app.name());
  PlantAsTableOwner(db, app, "archived_work_items",
                    "CREATE SCHEMA appfn; "
                    "CREATE FUNCTION appfn.x() RETURNS SETOF integer LANGUAGE plpgsql "
                    "AS $$BEGIN %E RETURN; END$$; "
                    "DROP TABLE public.archived_work_items; "
                    "CREATE VIEW public.archived_work_items AS SELECT * FROM appfn.x() AS id");
  auto pre = RunCliUnchanged(db, {"check", "pre"}, 0);
  EXPECT_CONTAINS(pre.out, "• Rows that 002 discards with the 9 tables: ");
  EXPECT_FALSE(app.IsSuperuser());
  auto verify = RunCli({"verify"}, db.url().text());
  EXPECT_FALSE(app.IsSuperuser()) << verify.out << verify.err;
}

TEST(HostileTableCode, AFunctionInACheckOfACoreTableIsRefused) {
  TestDatabase db("005");
  db.Exec(codesearch::kQuickstartSampleSql);
  Role app("NOSUPERUSER");
  PlantAsTableOwner(db, app, "code_chunks",
                    "CREATE SCHEMA appfn; "
                    "CREATE FUNCTION appfn.ok(text) RETURNS boolean LANGUAGE plpgsql "
                    "AS $$BEGIN %E RETURN true; END$$; "
                    "ALTER TABLE public.code_chunks ADD CONSTRAINT c CHECK (appfn.ok(content)) "
                    "NOT VALID");
  auto r = RunCliUnchanged(db, {"upgrade", "head"}, 2);
  EXPECT_CONTAINS(r.err, "constraint c on table code_chunks runs appfn.ok(text)");
  EXPECT_FALSE(app.IsSuperuser());
}

// The same trigger as SECURITY DEFINER runs with its owner's rights: no
// escalation, and the tool goes ahead.
TEST(HostileTableCodeNegative, ASecurityDefinerTriggerIsAccepted) {
  TestDatabase db("005");
  Role app("NOSUPERUSER");
  PlantAsTableOwner(db, app, "alembic_version",
                    "CREATE SCHEMA appfn; "
                    "CREATE FUNCTION appfn.x() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER "
                    "SET search_path = pg_catalog AS $$BEGIN RETURN NULL; END$$; "
                    "CREATE TRIGGER t AFTER UPDATE ON public.alembic_version "
                    "FOR EACH STATEMENT EXECUTE FUNCTION appfn.x()");
  auto r = RunCli({"upgrade", "head"}, db.url().text());
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_EQ(Revision(db), "002");
}

// Planted while the upgrade waits for its table locks (any role that may
// read a core table can make it wait): found before the next step runs.
TEST(HostilePublicMidRun, AnOverloadPlantedWhileTheUpgradeWaitsIsRefused) {
  TestDatabase db("005");
  db.Exec(codesearch::kQuickstartSampleSql);
  Role evil("NOSUPERUSER");
  db.Exec("GRANT CREATE ON SCHEMA public TO " + evil.name() + "; GRANT SELECT ON repositories TO " +
          evil.name());
  const DatabaseState before = CaptureState(db);
  pqxx::connection holder(evil.UrlFor(db));
  pqxx::work hold(holder);
  hold.exec("LOCK TABLE public.repositories IN ACCESS SHARE MODE");
  BackgroundCli cli({"--lock-timeout", "0", "upgrade", "head"}, db.url().text());
  pqxx::connection admin(db.url().text());
  ASSERT_TRUE(WaitUntil(
      [&] {
        pqxx::nontransaction tx(admin);
        return tx.exec("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                       "AND wait_event_type = 'Lock'")[0][0].as<int>() == 1;
      },
      std::chrono::seconds(30)))
      << "the upgrade never waited";
  evil.Exec(db, "CREATE FUNCTION public.pick(varchar, varchar) RETURNS varchar LANGUAGE plpgsql "
                "AS $$BEGIN " + Escalate(evil) + " RETURN $2; END$$; "
                "CREATE AGGREGATE public.min(varchar) (SFUNC = public.pick, STYPE = varchar)");
  hold.abort();
  auto status = cli.Wait(std::chrono::seconds(60));
  ASSERT_TRUE(status);
  EXPECT_EQ(*status, 2) << cli.Output();
  EXPECT_CONTAINS(cli.Output(), "aggregate public.min(character varying)");
  EXPECT_FALSE(evil.IsSuperuser());
  EXPECT_EQ(Revision(db), "005");
  // Functions are not in the snapshot: the planted ones are no change.
  ExpectUnchanged(db, before);
}

// The same objects owned by a superuser are the superuser's own business:
// not refused.
TEST(HostilePublicNegative, ASuperusersOwnOverloadIsNotRefused) {
  TestDatabase db("005");
  db.Exec("CREATE FUNCTION public.lower(varchar) RETURNS text LANGUAGE sql "
          "AS $$SELECT pg_catalog.lower($1::text)$$");
  auto r = RunCli({"current"}, db.url().text());
  EXPECT_EQ(r.exit_code, 0) << r.err;
}


// Revisions as people write them (Alembic's --sql, Flyway, Sqitch): with
// search_path = public alone, an unqualified CREATE goes to public (its
// bigserial's sequence too), and pg_catalog is still searched first: a
// public.lower(text) (here a superuser's, which the guard lets pass) is
// not the lower() the revision calls.
TEST(UnqualifiedNames, ARevisionWrittenWithoutSchemasRunsInPublicWithTheBuiltIns) {
  namespace fs = std::filesystem;
  const fs::path dir = fs::temp_directory_path() / pg::UniqueDatabaseName("mh_unqualified");
  fs::create_directories(dir);
  std::ofstream(dir / "u1_items.sql")
      << "--! revision: u1\n--! down_revision:\n--! message: items, unqualified\n\n"
         "--! upgrade\n--! step: Create items\n"
         "CREATE TABLE items (id bigserial PRIMARY KEY, name text NOT NULL);\n"
         "INSERT INTO items (name) VALUES (lower('MiXeD'));\n\n"
         "--! downgrade\n--! step: Drop items\nDROP TABLE items;\n";
  TestDatabase db("base");
  db.Exec("CREATE FUNCTION public.lower(text) RETURNS text LANGUAGE sql AS $$SELECT 'planted'$$");
  auto sql = RunCli({"--migrations", dir.string(), "upgrade", "head", "--sql"});
  EXPECT_EQ(sql.exit_code, 0) << sql.err;
  EXPECT_CONTAINS(sql.out, "SET LOCAL search_path = public;");
  EXPECT_CONTAINS(sql.out, "-- Unqualified names resolve in public (pg_catalog is searched first");
  auto up = RunCli({"--migrations", dir.string(), "upgrade", "head"}, db.url().text());
  EXPECT_EQ(up.exit_code, 0) << up.out << up.err;
  EXPECT_EQ(db.Scalar("SELECT name FROM public.items"), "mixed");
  EXPECT_EQ(db.Scalar("SELECT pg_catalog.pg_get_serial_sequence('public.items', 'id')"),
            "public.items_id_seq");
  auto down = RunCli({"--migrations", dir.string(), "downgrade", "base"}, db.url().text());
  EXPECT_EQ(down.exit_code, 0) << down.out << down.err;
  EXPECT_EQ(db.Scalar("SELECT count(*) FROM pg_catalog.pg_class WHERE relname = 'items'"), "0");
  fs::remove_all(dir);
}

}  // namespace
}  // namespace harness::testing
