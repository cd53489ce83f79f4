// migration-harness current: the revision recorded in alembic_version.
#include <iostream>

#include <spdlog/spdlog.h>

#include "harness/cli/context.h"
#include "harness/engine/version_table.h"
#include "harness/error.h"
#include "harness/codesearch/shape.h"

namespace harness::cli {

namespace {
// How code_chunks.embedding is stored: pgvector when available, else real[].
constexpr const char* kEmbeddingTypeQuery = R"SQL(
SELECT format_type(a.atttypid, a.atttypmod)
FROM pg_catalog.pg_attribute a
WHERE a.attrelid = to_regclass('code_chunks') AND a.attname = 'embedding' AND NOT a.attisdropped
)SQL";
}  // namespace

Command setup_current(CLI::App& app, const GlobalOptions& g) {
  CLI::App* sub = app.add_subcommand("current", "Show the revision the database is at");
  return {sub, [&g] {
            engine::RevisionGraph graph = LoadGraph(g);
            auto conn = Connect(g);
            engine::Migrator migrator(*conn, graph, MigratorOptionsFrom(g));
            engine::Position p = migrator.Current();
            if (p == 0) {
              // Tables without a recorded revision: upgrade refuses to run
              // 001 over them, and current does not call it <base>.
              pqxx::read_transaction tx(conn->raw());
              engine::RefuseUnrecordedSchema(tx, engine::ReadVersionRows(tx).has_value());
            }
            if (p == 0)
              std::cout << "<base> (no revision recorded)\n";
            else
              std::cout << graph.Name(p) << (p == graph.head_position() ? " (head)" : "") << "\n";
            pqxx::read_transaction tx(conn->raw());
            // `upgrade --online` part way: alembic_version names the parent.
            if (auto progress = engine::ReadProgress(tx))
              std::cout << progress->Describe() << "; `migration-harness upgrade --online` completes it, "
                        << "`migration-harness downgrade " << graph.Name(p) << "` undoes it\n";
            // Which code-search schema shape it has (docs/migrations.md#supported-schemas); a
            // schema of neither shape is said here, refused by the others.
            try {
              if (auto shape = codesearch::DetectShape(tx))
                spdlog::info("schema shape: {} ({})", codesearch::ShapeName(*shape),
                             *shape == codesearch::Shape::kProduction
                                 ? "code_chunks -> code_files -> repositories"
                                 : "code_chunks -> repositories");
            } catch (const Error& e) {
              spdlog::warn("schema shape: unknown: {}", e.what());
            }
            pqxx::result r = tx.exec(kEmbeddingTypeQuery);
            if (r.size() == 1)
              spdlog::info("code_chunks.embedding is stored as {}{}", r[0][0].c_str(),
                           std::string(r[0][0].c_str()) == "vector(768)"
                               ? " (pgvector)"
                               : " (pgvector is not installed on this server)");
            return 0;
          }};
}

}  // namespace harness::cli
