// A role that may only create objects plants them where a superuser's
// statements could resolve to them; the tool, run as a superuser, must
// neither call them nor read them (issue: privilege escalation through
// search_path). Each case is one hostile object and the commands it aims at.
#include <gtest/gtest.h>

#include <pqxx/pqxx>

#include <regex>

#include "fixtures/quickstart_sample.h"
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
  db.Exec(fixtures::kQuickstartSampleSql);
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
  db.Exec(fixtures::kQuickstartSampleSql);
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
  db.Exec(fixtures::kQuickstartSampleSql);
  Role evil("NOSUPERUSER");
  db.Exec("GRANT CREATE ON SCHEMA public TO " + evil.name());
  std::string sql = GetParam().sql;
  sql = std::regex_replace(sql, std::regex("%E"), Escalate(evil));
  evil.Exec(db, sql);

  for (const std::vector<std::string>& args :
       {std::vector<std::string>{"upgrade", "head"}, {"check", "pre"}, {"verify"}, {"current"},
        {"verify", "--into-embedded"}}) {
    auto r = RunCli(args, db.url().text());
    EXPECT_EQ(r.exit_code, 2) << args[0] << ": " << r.out << r.err;
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

// The same objects owned by a superuser are the superuser's own business,
// and an extension's objects are the extension's: neither is refused.
TEST(HostilePublicNegative, ASuperusersOwnOverloadIsNotRefused) {
  TestDatabase db("005");
  db.Exec("CREATE FUNCTION public.lower(varchar) RETURNS text LANGUAGE sql "
          "AS $$SELECT pg_catalog.lower($1::text)$$");
  auto r = RunCli({"current"}, db.url().text());
  EXPECT_EQ(r.exit_code, 0) << r.err;
}

}  // namespace
}  // namespace harness::testing
