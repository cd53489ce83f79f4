// migration-harness generate: realistic, deterministic code-search data at
// its base revision (harness/codesearch/), in the database's own schema
// shape or in the one --shape builds on an empty database; or, with
// --any-schema, data for any schema from its catalog.
#include <unistd.h>

#include <iostream>

#include <fmt/format.h>
#include <pqxx/pqxx>

#include "fixtures/any_schema.h"
#include "harness/cli/context.h"
#include "harness/codesearch/generator.h"
#include "harness/codesearch/shape.h"
#include "harness/codesearch/shapes.h"
#include "harness/engine/version_table.h"
#include "harness/error.h"
#include "harness/sys/untrusted_text.h"

namespace harness::cli {

namespace {

struct GenerateOptions {
  int repositories = 100;
  int chunks_per_repo = 100;
  std::uint64_t seed = 42;
  bool embeddings = false;
  std::string shape;  // empty: fill the database in the shape it has
  bool any_schema = false;
  long long rows_per_table = 100;
  std::vector<std::string> table_rows;  // TABLE=N
};

// Tables, views and the like in public (BuildAt005's "empty" too), and
// those of them besides alembic_version.
constexpr const char* kTablesInPublic =
    "SELECT count(*), count(*) FILTER (WHERE relname <> 'alembic_version') "
    "FROM pg_catalog.pg_class WHERE relnamespace = 'public'::regnamespace "
    "AND relkind IN ('r', 'p', 'v', 'm')";

const char* HowChunksReachRepositories(codesearch::Shape shape) {
  return shape == codesearch::Shape::kProduction
             ? "code_chunks.code_file_id -> code_files.repository_id"
             : "code_chunks.repository_id";
}

// --shape on an empty database builds the code-search schema at its base
// revision in that shape (and says so); on a database at that revision it
// must name the shape it has. Anything else is left to the generator's own
// refusal.
void PrepareShape(pg::Connection& conn, const GlobalOptions& g, codesearch::Shape shape) {
  std::optional<codesearch::Shape> found;
  std::string revision = "no revision";
  {
    pqxx::read_transaction tx(conn.raw());
    if (tx.exec1(kTablesInPublic)[0].as<long long>() == 0) {
      tx.commit();
      codesearch::BuildAt005(conn.url(), shape, LoadGraph(g));
      pqxx::read_transaction after(conn.raw());
      std::cout << fmt::format(
          "Built the {} schema at revision {} in {}: {} tables and alembic_version; chunks "
          "reach their repository through {}\n",
          codesearch::ShapeName(shape), codesearch::kCodeSearchRevision, conn.url().Describe(),
          after.exec1(kTablesInPublic)[1].as<long long>(), HowChunksReachRepositories(shape));
      return;
    }
    found = codesearch::DetectShape(tx);
    if (auto rows = engine::ReadVersionRows(tx); rows && rows->size() == 1)
      revision = "revision " + rows->front();
  }
  if (found && *found != shape)
    throw UsageError(
        fmt::format("generate --shape {}: {} already holds the {} shape at {} (chunks reach "
                    "their repository through {}); generate fills a database in the shape it "
                    "has, and builds a schema only on an empty database",
                    codesearch::ShapeName(shape), conn.url().Describe(), codesearch::ShapeName(*found),
                    revision, HowChunksReachRepositories(*found)),
        fmt::format("leave out --shape to fill this database as a {} one, or point "
                    "--database-url at an empty database (createdb NAME) to build the {} shape "
                    "there; nothing was changed",
                    codesearch::ShapeName(*found), codesearch::ShapeName(shape)));
}

}  // namespace

Command setup_generate(CLI::App& app, const GlobalOptions& g) {
  auto opts = std::make_shared<GenerateOptions>();
  CLI::App* sub = app.add_subcommand(
      "generate",
      fmt::format("Fill a code-search database at {0} with realistic, deterministic data (COPY, one "
                  "transaction; existing rows are kept). With --shape on an empty database, build the "
                  "schema at {0} first. With --any-schema, fill any schema from its catalog",
                  codesearch::kCodeSearchRevision));
  sub->add_option("--repositories", opts->repositories, "Repositories to create")
      ->check(CLI::Range(1, 10'000'000))
      ->capture_default_str();
  sub->add_option("--chunks-per-repo", opts->chunks_per_repo,
                  "Code chunks per repository (production shape: spread over files of about "
                  "8 chunks)")
      ->check(CLI::Range(0, 10'000'000))
      ->capture_default_str();
  sub->add_option("--seed", opts->seed, "Same seed, same data")->capture_default_str();
  sub->add_flag("--embeddings", opts->embeddings, "Also fill the 768-value embeddings");
  sub->add_option("--shape", opts->shape,
                  fmt::format("The schema: quickstart (this project's migrations up to {0}) or "
                              "production (the service's own chain: code_chunks -> code_files -> "
                              "repositories). On a database with no tables, build it at {0} first; on "
                              "a database at {0}, it must be the shape found there. Without it: the "
                              "database's own shape",
                              codesearch::kCodeSearchRevision))
      ->check(CLI::IsMember({"quickstart", "production"}))
      ->type_name("SHAPE");
  auto any = sub->add_flag("--any-schema", opts->any_schema,
                           "Fill every table of public from the catalog instead, whatever the "
                           "schema (any revision): values fit each column's type, foreign keys "
                           "(parents first), unique keys and CHECKs; rows a CHECK or key refuses "
                           "are left out and counted");
  sub->add_option("--rows-per-table", opts->rows_per_table, "With --any-schema: rows per table")
      ->check(CLI::Range(0LL, 100'000'000LL))
      ->capture_default_str()
      ->needs(any);
  sub->add_option("--table-rows", opts->table_rows,
                  "With --any-schema: TABLE=N, rows for one table (repeatable)")
      ->type_name("TABLE=N")
      ->needs(any);
  return {sub, [opts, &g, sub] {
            if (opts->any_schema) {
              for (const char* o : {"--repositories", "--chunks-per-repo", "--embeddings", "--shape"})
                if (sub->count(o))
                  throw UsageError(std::string(o) + " is for the code-search data; --any-schema "
                                   "takes --rows-per-table and --table-rows");
              fixtures::AnySchemaOptions ao;
              ao.rows_per_table = opts->rows_per_table;
              ao.seed = opts->seed;
              ao.rows = ParseTableRows(opts->table_rows);
              auto conn = Connect(g);
              auto r = fixtures::GenerateAnySchema(*conn, ao);
              std::cout << fmt::format("Generated {} rows in {} tables from the catalog in {:.2f}s "
                                       "(seed {}), parents first:\n",
                                       r.Rows(), r.tables.size(), r.seconds, opts->seed);
              for (const auto& t : r.tables) {
                std::string notes;
                if (t.rejected_by_check)
                  notes += fmt::format("; {} refused by a CHECK, NOT NULL or foreign key", t.rejected_by_check);
                if (t.rejected_by_unique)
                  notes += fmt::format("; {} already taken by a unique key", t.rejected_by_unique);
                if (!t.left_to_default.empty()) {
                  std::string cols;
                  for (const auto& c : t.left_to_default) cols += (cols.empty() ? "" : ", ") + sys::Escaped(c);
                  notes += "; left to the server: " + cols;
                }
                std::cout << fmt::format("  {:<28} {:>8} rows{}\n", sys::Escaped(t.name), t.inserted, notes);
              }
              return 0;
            }
            auto conn = Connect(g);
            if (!opts->shape.empty()) PrepareShape(*conn, g, codesearch::ParseShape(opts->shape));
            codesearch::GeneratorOptions go;
            go.repositories = opts->repositories;
            go.chunks_per_repo = opts->chunks_per_repo;
            go.seed = opts->seed;
            go.embeddings = opts->embeddings;
            go.progress = isatty(2);
            auto r = codesearch::Generate(*conn, go);
            // The production shape also has files and the other tables the migration keeps.
            const std::string chunks =
                r.shape == codesearch::Shape::kProduction
                    ? fmt::format("{} chunks in {} files, {} rows in the other tables {} keeps", r.chunks,
                                  r.files, r.kept_rows, codesearch::kMigration)
                    : fmt::format("{} chunks", r.chunks);
            std::cout << fmt::format(
                "Generated {} repositories, {}, {} rows in the tables {} drops ({} shape) in "
                "{:.2f}s ({:.0f} rows/s, {:.0f} chunks/s)\n",
                r.repositories, chunks, r.other_rows, codesearch::kMigration, codesearch::ShapeName(r.shape),
                r.seconds,
                r.rows_per_second, r.chunks_per_second);
            return 0;
          }};
}

}  // namespace harness::cli
