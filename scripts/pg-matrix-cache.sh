# The server programs scripts/pg-matrix runs are a cache it must prove is
# its own before it runs a byte of it (as root, on a shared machine): the
# package is the one pinned by its npm integrity; its symlinks point inside
# it; and a cached copy is reused only when it is a real directory that
# nobody but this user can have written (every file and folder owned by
# it, none writable by group or others), holding the pinned version and
# exactly the files recorded when it was unpacked. Sourced by pg-matrix and
# by its test (scenarios/pg_matrix_cache_test.sh); needs node.

# The npm integrity string (sha512-BASE64) of a file.
pkg_integrity() {
  node -e '
const data = require("fs").readFileSync(process.argv[1]);
process.stdout.write("sha512-" + require("crypto").createHash("sha512").update(data).digest("base64"));' "$1"
}

# Makes the package's library symlinks from native/pg-symlinks.json (npm
# leaves them out; the package's postinstall makes them), relative to their
# folder. A link or a target outside ROOT/native is refused, nothing made.
link_package() {
  node - "$1" <<'JS'
const fs = require('fs'), path = require('path');
const root = path.resolve(process.argv[2]);
const native = path.join(root, 'native');
const inside = (p) => p.startsWith(native + path.sep);
const links = JSON.parse(fs.readFileSync(path.join(native, 'pg-symlinks.json')));
for (const { source, target } of links) {
  const from = path.resolve(root, String(target)), to = path.resolve(root, String(source));
  if (!inside(from) || !inside(to)) {
    console.error(`pg-symlinks.json: ${JSON.stringify(target)} -> ${JSON.stringify(source)} leaves the package`);
    process.exit(1);
  }
  const real = fs.realpathSync(to);  // the target exists, and what it resolves to stays inside
  if (!inside(real) || !fs.statSync(real).isFile()) {
    console.error(`pg-symlinks.json: ${JSON.stringify(source)} is not a file of the package`);
    process.exit(1);
  }
}
for (const { source, target } of links) {
  const link = path.resolve(root, target);
  fs.rmSync(link, { force: true });
  fs.symlinkSync(path.relative(path.dirname(link), path.resolve(root, source)), link);
}
JS
}

# What DIR holds: every regular file's sha256 and every link's target.
pkg_manifest() {
  (
    cd "$1" || exit 1
    find . -type f ! -name '.manifest*' -print0 | LC_ALL=C sort -z | xargs -0 -r sha256sum
    find . -type l -printf '%p -> %l\n' | LC_ALL=C sort
  )
}

# Records DIR's manifest in DIR/.manifest.
pkg_seal() {
  pkg_manifest "$1" >"$1/.manifest.tmp" && mv "$1/.manifest.tmp" "$1/.manifest"
}

# True when DIR may be run as the cached VERSION; otherwise says why (on
# stderr) and is false, and the caller fetches it again.
pkg_cache_is_ours() {
  local dir=$1 version=$2 uid foreign
  uid="$(id -u)"
  if [ -L "$dir" ] || [ ! -d "$dir" ]; then
    [ ! -e "$dir" ] && [ ! -L "$dir" ] || echo "$dir is not a directory of its own (a symlink?)" >&2
    return 1
  fi
  foreign="$(find "$dir" "$(dirname "$dir")" -maxdepth 0 \( ! -user "$uid" -o -perm /022 \) -print -quit)"
  [ -z "$foreign" ] && foreign="$(find "$dir" \( ! -user "$uid" -o \( ! -type l -perm /022 \) \) -print -quit)"
  if [ -n "$foreign" ]; then
    echo "$foreign is owned by another user or writable by others: not reused" >&2
    return 1
  fi
  if [ "$(cat "$dir/.npm-version" 2>/dev/null)" != "$version" ]; then
    echo "$dir holds another version than $version" >&2
    return 1
  fi
  local escaped
  escaped="$(find "$dir" -type l -print0 | while IFS= read -r -d '' l; do
    case "$(realpath -m "$l")" in "$(realpath "$dir")"/*) ;; *) echo "$l" ;; esac
  done)"
  if [ -n "$escaped" ]; then
    echo "$dir has links that leave it: $escaped" >&2
    return 1
  fi
  if [ ! -f "$dir/.manifest" ] || ! cmp -s "$dir/.manifest" <(pkg_manifest "$dir"); then
    echo "$dir no longer holds the files it was unpacked with" >&2
    return 1
  fi
  [ -x "$dir/bin/postgres" ]
}
