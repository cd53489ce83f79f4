// migration-harness generate: realistic, deterministic data at 005, in the
// database's own schema shape, or in the one --shape builds on an empty
// database.
#include <unistd.h>

#include <iostream>

#include <fmt/format.h>
#include <pqxx/pqxx>

#include "fixtures/generator.h"
#include "fixtures/shapes.h"
#include "harness/cli/context.h"
#include "harness/engine/version_table.h"
#include "harness/error.h"
#include "harness/inspect/shape.h"

namespace harness::cli {

namespace {

struct GenerateOptions {
  int repositories = 100;
  int chunks_per_repo = 100;
  std::uint64_t seed = 42;
  bool embeddings = false;
  std::string shape;  // empty: fill the database in the shape it has
};

// Tables, views and the like in public (BuildAt005's "empty" too), and
// those of them besides alembic_version.
constexpr const char* kTablesInPublic =
    "SELECT count(*), count(*) FILTER (WHERE relname <> 'alembic_version') "
    "FROM pg_catalog.pg_class WHERE relnamespace = 'public'::regnamespace "
    "AND relkind IN ('r', 'p', 'v', 'm')";

const char* HowChunksReachRepositories(inspect::Shape shape) {
  return shape == inspect::Shape::kProduction
             ? "code_chunks.code_file_id -> code_files.repository_id"
             : "code_chunks.repository_id";
}

// --shape on an empty database builds the schema at 005 in that shape (and
// says so); on a database at 005 it must name the shape it has. Anything
// else is left to the generator's own refusal.
void PrepareShape(pg::Connection& conn, const GlobalOptions& g, inspect::Shape shape) {
  std::optional<inspect::Shape> found;
  std::string revision = "no revision";
  {
    pqxx::read_transaction tx(conn.raw());
    if (tx.exec1(kTablesInPublic)[0].as<long long>() == 0) {
      tx.commit();
      fixtures::BuildAt005(conn.url(), shape, LoadGraph(g));
      pqxx::read_transaction after(conn.raw());
      std::cout << fmt::format(
          "Built the {} schema at revision 005 in {}: {} tables and alembic_version; chunks "
          "reach their repository through {}\n",
          inspect::ShapeName(shape), conn.url().Describe(),
          after.exec1(kTablesInPublic)[1].as<long long>(), HowChunksReachRepositories(shape));
      return;
    }
    found = inspect::DetectShape(tx);
    if (auto rows = engine::ReadVersionRows(tx); rows && rows->size() == 1)
      revision = "revision " + rows->front();
  }
  if (found && *found != shape)
    throw UsageError(
        fmt::format("generate --shape {}: {} already holds the {} shape at {} (chunks reach "
                    "their repository through {}); generate fills a database in the shape it "
                    "has, and builds a schema only on an empty database",
                    inspect::ShapeName(shape), conn.url().Describe(), inspect::ShapeName(*found),
                    revision, HowChunksReachRepositories(*found)),
        fmt::format("leave out --shape to fill this database as a {} one, or point "
                    "--database-url at an empty database (createdb NAME) to build the {} shape "
                    "there; nothing was changed",
                    inspect::ShapeName(*found), inspect::ShapeName(shape)));
}

}  // namespace

Command setup_generate(CLI::App& app, const GlobalOptions& g) {
  auto opts = std::make_shared<GenerateOptions>();
  CLI::App* sub = app.add_subcommand(
      "generate",
      "Fill a database at 005 with realistic, deterministic data (COPY, one transaction; "
      "existing rows are kept). With --shape on an empty database, build the schema at 005 "
      "first");
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
                  "The schema: quickstart (migrations/001..005) or production (the service's "
                  "own chain: code_chunks -> code_files -> repositories). On a database with no "
                  "tables, build it at 005 first; on a database at 005, it must be the shape "
                  "found there. Without it: the database's own shape")
      ->check(CLI::IsMember({"quickstart", "production"}))
      ->type_name("SHAPE");
  return {sub, [opts, &g] {
            auto conn = Connect(g);
            if (!opts->shape.empty()) PrepareShape(*conn, g, inspect::ParseShape(opts->shape));
            fixtures::GeneratorOptions go;
            go.repositories = opts->repositories;
            go.chunks_per_repo = opts->chunks_per_repo;
            go.seed = opts->seed;
            go.embeddings = opts->embeddings;
            go.progress = isatty(2);
            auto r = fixtures::Generate(*conn, go);
            // The production shape also has files and the other tables 002 keeps.
            const std::string chunks =
                r.shape == inspect::Shape::kProduction
                    ? fmt::format("{} chunks in {} files, {} rows in the other tables 002 keeps",
                                  r.chunks, r.files, r.kept_rows)
                    : fmt::format("{} chunks", r.chunks);
            std::cout << fmt::format(
                "Generated {} repositories, {}, {} rows in the tables 002 drops ({} shape) in "
                "{:.2f}s ({:.0f} rows/s, {:.0f} chunks/s)\n",
                r.repositories, chunks, r.other_rows, inspect::ShapeName(r.shape), r.seconds,
                r.rows_per_second, r.chunks_per_second);
            return 0;
          }};
}

}  // namespace harness::cli
