# Shared by scripts/test and scripts/quickstart: install what is missing,
# configure and build. Safe and fast to run again.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD_DIR="${BUILD_DIR:-$ROOT/build}"

PACKAGES=(
  postgresql-15 postgresql-client-15
  libpqxx-dev libpq-dev libcli11-dev libfmt-dev nlohmann-json3-dev libspdlog-dev
  libgtest-dev libbenchmark-dev libpg-query-dev
  cmake ninja-build g++ pkg-config
  # Alembic projects are rehearsed with Debian's Alembic (verify --alembic)
  alembic python3-alembic python3-sqlalchemy python3-psycopg2 python3-asyncpg
)

# The tests' labels (scenarios/CMakeLists.txt, bench/CMakeLists.txt): the
# quick ones run by scripts/test, in under a minute; the scenarios' by
# scripts/test-scenarios. `alembic` and `slow` have scripts of their own.
QUICK_LABELS='unit|help|chain|cli|generator|quickstart|production|restore|budget'
SCENARIO_LABELS='cluster|verify|reliability|security|sentinel|bench'

log() { printf '==> %s\n' "$*" >&2; }

install_packages() {
  local missing=()
  for p in "${PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  if [ ${#missing[@]} -eq 0 ]; then
    return 0
  fi
  if [ "$(id -u)" -ne 0 ]; then
    log "missing Debian packages: ${missing[*]}"
    log "install them as root: apt-get install ${missing[*]}"
    exit 2
  fi
  log "installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

build() {
  local generator=()
  command -v ninja >/dev/null && generator=(-G Ninja)
  if [ ! -f "$BUILD_DIR/CMakeCache.txt" ]; then
    log "configuring in $BUILD_DIR"
    # -O1 without debug information: the tool and the tests spend their time
    # in PostgreSQL, the build in the compiler (a test file took 22 s so
    # against 47 s with -O2 -g, the default of a plain cmake).
    cmake -S "$ROOT" -B "$BUILD_DIR" "${generator[@]}" -DCMAKE_BUILD_TYPE=Release \
      -DCMAKE_CXX_FLAGS_RELEASE="-O1 -DNDEBUG" "$@" >/dev/null
  elif [ $# -gt 0 ]; then
    cmake -S "$ROOT" -B "$BUILD_DIR" "$@" >/dev/null
  fi
  # BUILD_TARGET: the targets to build, separated by spaces (the tool alone,
  # for scripts/quickstart); unset: everything, the tests and benchmarks
  # included.
  log "building ${BUILD_TARGET:-everything} (this takes a few minutes the first time)"
  # shellcheck disable=SC2086  # one word per target
  cmake --build "$BUILD_DIR" --parallel "$(nproc)" ${BUILD_TARGET:+--target $BUILD_TARGET}
}
