// The options that point a command at an Alembic project instead of this
// project's SQL files (verify, check): --alembic PATH and how to run it.
#pragma once

#include <memory>
#include <string>

#include <CLI/CLI.hpp>

#include "harness/alembic/project.h"

namespace harness::cli {

// Declares --alembic, --alembic-python, --alembic-driver, --alembic-url-env
// on `sub`, filling `o`; the last three need the first.
void AddAlembicOptions(CLI::App* sub, alembic::ProjectOptions& o);

// The project, opened (its Python found, its revisions read); exit 2 with
// one line for anything that stops it.
std::unique_ptr<alembic::Project> OpenAlembicProject(const alembic::ProjectOptions& o);

}  // namespace harness::cli
