// migration-harness generate: realistic, deterministic data at 005.
#include <unistd.h>

#include <iostream>

#include <fmt/format.h>

#include "fixtures/generator.h"
#include "harness/cli/context.h"

namespace harness::cli {

namespace {
struct GenerateOptions {
  int repositories = 100;
  int chunks_per_repo = 100;
  std::uint64_t seed = 42;
  bool embeddings = false;
};
}  // namespace

Command setup_generate(CLI::App& app, const GlobalOptions& g) {
  auto opts = std::make_shared<GenerateOptions>();
  CLI::App* sub = app.add_subcommand(
      "generate",
      "Fill a database at 005 with realistic, deterministic data (COPY, one transaction; "
      "existing rows are kept)");
  sub->add_option("--repositories", opts->repositories, "Repositories to create")
      ->check(CLI::Range(1, 10'000'000))
      ->capture_default_str();
  sub->add_option("--chunks-per-repo", opts->chunks_per_repo, "Code chunks per repository")
      ->check(CLI::Range(0, 10'000'000))
      ->capture_default_str();
  sub->add_option("--seed", opts->seed, "Same seed, same data")->capture_default_str();
  sub->add_flag("--embeddings", opts->embeddings, "Also fill the 768-value embeddings");
  return {sub, [opts, &g] {
            auto conn = Connect(g);
            fixtures::GeneratorOptions go;
            go.repositories = opts->repositories;
            go.chunks_per_repo = opts->chunks_per_repo;
            go.seed = opts->seed;
            go.embeddings = opts->embeddings;
            go.progress = isatty(2);
            auto r = fixtures::Generate(*conn, go);
            std::cout << fmt::format(
                "Generated {} repositories, {} chunks, {} rows in the tables 002 drops in "
                "{:.2f}s ({:.0f} rows/s)\n",
                r.repositories, r.chunks, r.other_rows, r.seconds, r.rows_per_second);
            return 0;
          }};
}

}  // namespace harness::cli
