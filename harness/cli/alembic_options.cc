#include "harness/cli/alembic_options.h"

#include <spdlog/spdlog.h>

namespace harness::cli {

void AddAlembicOptions(CLI::App* sub, alembic::ProjectOptions& o) {
  auto* path = sub->add_option("--alembic", o.path,
                               "An Alembic project to use instead of this project's SQL files: its "
                               "alembic.ini, or the folder holding it. Its own Alembic runs its revisions "
                               "as they are, from that folder")
                   ->type_name("PATH");
  sub->add_option("--alembic-python", o.python,
                  "The Python that runs the project's Alembic (its virtualenv's); default: the one the "
                  "`alembic` command runs with, else the python3 on PATH or /usr/bin/python3 that imports "
                  "alembic")
      ->type_name("PATH")
      ->needs(path);
  sub->add_option("--alembic-driver", o.driver,
                  "The database driver the project's env.py uses; default: the one its alembic.ini's "
                  "sqlalchemy.url names, else psycopg2")
      ->check(CLI::IsMember({"asyncpg", "psycopg2"}))
      ->needs(path);
  sub->add_option("--alembic-url-env", o.url_env,
                  "The environment variable the project's env.py reads its URL from (it also gets "
                  "sqlalchemy.url), set to the rehearsal's database in SQLAlchemy's form")
      ->capture_default_str()
      ->type_name("NAME")
      ->needs(path);
}

std::unique_ptr<alembic::Project> OpenAlembicProject(const alembic::ProjectOptions& o) {
  spdlog::info("reading the Alembic project {}", o.path);
  auto project = alembic::Project::Open(o);
  std::string heads;
  for (const auto& h : project->heads()) heads += (heads.empty() ? "" : ", ") + h;
  spdlog::info("{} revisions, head{} {}; Python {}, driver {}", project->revisions().size(),
               project->heads().size() == 1 ? "" : "s", heads, project->python().string(), project->driver_module());
  return project;
}

}  // namespace harness::cli
