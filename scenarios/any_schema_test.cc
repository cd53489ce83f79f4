// generate --any-schema: rows for every table of any schema, read from its
// catalog: types, foreign keys (parents first), unique keys and CHECKs;
// deterministic by seed; a column it cannot fill is refused before any row
// is written.
#include <gtest/gtest.h>

#include <map>

#include "fixtures/any_schema.h"
#include "harness/inspect/fingerprint.h"
#include "harness/pg/connection.h"
#include "harness/pg/disposable_database.h"
#include "scenarios/support/test_env.h"

namespace harness::testing {
namespace {

// Serial and identity keys, a generated column, an enum, an array, jsonb,
// bytea, a bounded smallint, a pattern CHECK, a list CHECK, a nullable
// self-reference, a composite unique key made of a foreign key and a
// bounded column, and a link table whose key is two foreign keys.
// (The tool's connections put pg_catalog first on the search path: names
// are qualified.)
constexpr const char* kSchema = R"SQL(
CREATE TYPE public.mood AS ENUM ('calm', 'busy');
CREATE TABLE public.projects (
  id serial PRIMARY KEY,
  slug varchar(20) NOT NULL UNIQUE CHECK (slug ~ '^[a-z0-9]+(-[a-z0-9]+)*$'),
  budget numeric(8,2) NOT NULL CHECK (budget >= 0),
  state text NOT NULL CHECK (state IN ('open', 'closed')),
  commit_hash varchar(40) CHECK (commit_hash ~ '^[a-f0-9]{40}$'),
  mood public.mood NOT NULL, tags text[], meta jsonb,
  created timestamptz NOT NULL DEFAULT now(), uid uuid NOT NULL DEFAULT gen_random_uuid());
CREATE TABLE public.jobs (
  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  project_id int NOT NULL REFERENCES public.projects (id),
  parent_id bigint REFERENCES public.jobs (id),
  attempts smallint NOT NULL CHECK (attempts BETWEEN 0 AND 5),
  payload bytea, ok boolean, started date,
  label text GENERATED ALWAYS AS ('attempt ' || attempts) STORED,
  UNIQUE (project_id, attempts));
CREATE TABLE public.job_links (a bigint REFERENCES public.jobs (id), b bigint REFERENCES public.jobs (id),
                        note varchar(5), PRIMARY KEY (a, b));
)SQL";

struct Filled {
  fixtures::AnySchemaReport report;
  std::map<std::string, inspect::Fingerprint> fingerprints;
};

Filled FillFresh(std::uint64_t seed) {
  pg::DisposableDatabase db(TestServer().AdminUrl(), "template0", "mh_any");
  pg::Connection conn(db.url());
  {
    pqxx::work tx(conn.raw());
    tx.exec(kSchema);
    tx.commit();
  }
  fixtures::AnySchemaOptions o;
  o.rows_per_table = 60;
  o.rows["job_links"] = 40;
  o.seed = seed;
  Filled f{fixtures::GenerateAnySchema(conn, o), {}};
  pqxx::read_transaction tx(conn.raw());
  for (const char* t : {"projects", "jobs", "job_links"}) f.fingerprints[t] = inspect::TakeFingerprint(tx, t);
  return f;
}

TEST(AnySchema, FillsEveryTableOfASchemaItWasNeverToldAboutTheSameWayForTheSameSeed) {
  Filled a = FillFresh(5), b = FillFresh(5), other = FillFresh(6);
  std::vector<std::string> order;
  for (const auto& t : a.report.tables) {
    order.push_back(t.name);
    EXPECT_GT(t.inserted, t.requested / 2) << t.name << ": most rows are accepted";
    EXPECT_EQ(t.inserted + t.rejected_by_check + t.rejected_by_unique, t.requested) << t.name;
  }
  EXPECT_EQ(order, (std::vector<std::string>{"projects", "jobs", "job_links"})) << "parents first";
  EXPECT_EQ(a.report.tables[0].inserted, 60) << "slug unique by row, budget, state and hash within their CHECKs";
  EXPECT_EQ(a.report.tables[0].left_to_default, std::vector<std::string>{"id"});
  EXPECT_EQ(a.fingerprints, b.fingerprints) << "the same seed gives the same rows";
  EXPECT_NE(a.fingerprints.at("projects"), other.fingerprints.at("projects"));
}

// The service's production schema at 005, filled from its catalog alone:
// every table gets rows, and migration 002 then runs on them.
TEST(AnySchema, FillsTheProductionShapeAndMigration002RunsOnIt) {
  TestDatabase db("005", Shape::kProduction);
  auto r = RunCli({"generate", "--any-schema", "--rows-per-table", "50"}, db.url().text());
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_CONTAINS(r.out, "in 19 tables from the catalog");
  pg::Connection conn(db.url());
  pqxx::read_transaction tx(conn.raw());
  for (const auto& row : tx.exec("SELECT relname FROM pg_class WHERE relnamespace = 'public'::regnamespace "
                                 "AND relkind = 'r' AND relname <> 'alembic_version'"))
    EXPECT_GT(tx.exec("SELECT count(*) FROM public." + tx.quote_name(row[0].c_str()))[0][0].as<long long>(), 0)
        << row[0].c_str();
  tx.commit();
  auto up = RunCli({"upgrade", "head"}, db.url().text());
  EXPECT_EQ(up.exit_code, 0) << up.err;
}

TEST(AnySchema, AColumnOfATypeItCannotFillIsRefusedBeforeAnyRow) {
  TestDatabase db("005");
  db.Exec("CREATE TABLE public.odd (p point NOT NULL)");
  auto r = RunCliUnchanged(db, {"generate", "--any-schema"}, 2);
  EXPECT_CONTAINS(r.err, "cannot fill odd.p: the generator does not know its type point");
  EXPECT_EQ(db.Scalar("SELECT count(*) FROM repositories"), "0");
}

// A quote in a column's own name is not the start of a CHECK's list of
// values: the column gets the listed values, and the table its rows.
TEST(AnySchema, AQuoteInAColumnNameIsNotALiteral) {
  pg::DisposableDatabase db(TestServer().AdminUrl(), "template0", "mh_any");
  pg::Connection conn(db.url());
  {
    pqxx::work tx(conn.raw());
    tx.exec("CREATE TABLE public.quoted (id int PRIMARY KEY, \"a'b\" varchar(3) NOT NULL "
            "CHECK (\"a'b\" IN ('aaa', 'bbb')))");
    tx.commit();
  }
  auto r = RunCli({"generate", "--any-schema", "--rows-per-table", "20"}, db.url().text());
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  pqxx::read_transaction tx(conn.raw());
  EXPECT_EQ(tx.exec1("SELECT count(*) FROM public.quoted")[0].as<int>(), 20);
  EXPECT_EQ(tx.exec1("SELECT string_agg(DISTINCT \"a'b\", ',' ORDER BY \"a'b\") FROM public.quoted")[0]
                .as<std::string>(),
            "aaa,bbb");
}

}  // namespace
}  // namespace harness::testing
