// The service's own migration 002 (its Alembic revision, as handed over with
// its production_002.schema.sql, scenarios/golden/), which the benchmarks
// run beside ours on the production shape: one transaction; a nullable
// chunk column filled by an UPDATE through code_files, then SET NOT NULL;
// its weaker CHECKs added validated (each scans its table); the index; the
// nine tables dropped with CASCADE, which silently takes the four task_*
// foreign keys along. migration_bench runs the steps, bench-report names
// them.
#pragma once

#include <array>

namespace harness::bench {

struct ServiceStep {
  const char* name;
  const char* sql;
};

// The last step's time includes the commit, as 002's last step does.
inline constexpr std::array<ServiceStep, 8> kServiceUpgrade002 = {{
    {"Adding project_id to repositories",
     "ALTER TABLE repositories ADD COLUMN project_id varchar(50) NOT NULL DEFAULT 'default'"},
    {"Adding nullable project_id to code_chunks",
     "ALTER TABLE code_chunks ADD COLUMN project_id varchar(50)"},
    {"Copying project_id through code_files",
     "UPDATE code_chunks c SET project_id = r.project_id "
     "FROM code_files f JOIN repositories r ON r.id = f.repository_id "
     "WHERE f.id = c.code_file_id"},
    {"Setting code_chunks.project_id NOT NULL",
     "ALTER TABLE code_chunks ALTER COLUMN project_id SET NOT NULL"},
    {"Adding CHECK constraints (validated)",
     "ALTER TABLE repositories ADD CONSTRAINT check_repositories_project_id "
     "CHECK (project_id ~ '^[a-z0-9-]{1,50}$'); "
     "ALTER TABLE code_chunks ADD CONSTRAINT check_code_chunks_project_id "
     "CHECK (project_id ~ '^[a-z0-9-]{1,50}$')"},
    {"Creating performance index",
     "CREATE INDEX idx_project_repository ON repositories (project_id, id)"},
    {"Dropping the nine tables with CASCADE",
     "DROP TABLE tasks, vendor_extractors, deployment_events, project_configuration, "
     "future_enhancements, work_item_dependencies, vendor_deployment_links, "
     "work_item_deployment_links, archived_work_items CASCADE"},
    {"Committing and writing alembic_version", "UPDATE alembic_version SET version_num = '002'"},
}};

}  // namespace harness::bench
