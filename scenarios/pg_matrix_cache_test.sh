#!/usr/bin/env bash
# scripts/pg-matrix-cache.sh on a package of its own making: links that
# leave the package are refused before any is made; a cached copy is reused
# only when it is a real directory of this user's, not writable by others,
# of the pinned version and with the files it was unpacked with. Run by
# scripts/pg-matrix before it fetches anything (it needs node, as that
# does). Prints one line per case; exits 1 on the first that fails.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../scripts/pg-matrix-cache.sh"

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
umask 022
failed=0
pass() { echo "ok   $1"; }
fail() { echo "FAIL $1"; failed=1; }
expect_true() { if "${@:2}" 2>/dev/null; then pass "$1"; else fail "$1"; fi; }
expect_false() { if "${@:2}" 2>/dev/null; then fail "$1"; else pass "$1"; fi; }

# A package as npm unpacks it: native/ with a server and a library, and
# the list of links its postinstall would make.
make_package() {
  local root=$1 links=$2
  mkdir -p "$root/native/bin" "$root/native/lib"
  printf '#!/bin/sh\necho "postgres (PostgreSQL) 17.10"\n' >"$root/native/bin/postgres"
  chmod 755 "$root/native/bin/postgres"
  echo library >"$root/native/lib/libpq.so.5.17"
  echo "$links" >"$root/native/pg-symlinks.json"
}

good='[{"source": "native/lib/libpq.so.5.17", "target": "native/lib/libpq.so.5"}]'
make_package "$work/good/package" "$good"
expect_true "the package's own links are made" link_package "$work/good/package"
[ "$(readlink "$work/good/package/native/lib/libpq.so.5")" = "libpq.so.5.17" ] && pass "a link is relative to its folder" ||
  fail "a link is relative to its folder"

for bad in '[{"source": "native/lib/libpq.so.5.17", "target": "../../outside"}]' \
           '[{"source": "native/../../../../etc/passwd", "target": "native/lib/libpq.so.5"}]' \
           '[{"source": "native/lib/missing", "target": "native/lib/libpq.so.5"}]' \
           '[{"source": "native/lib/libpq.so.5.17", "target": "native/lib/a"}, {"source": "native/lib/libpq.so.5.17", "target": "native/../x"}]'; do
  rm -rf "$work/bad"
  make_package "$work/bad/package" "$bad"
  expect_false "refused: $bad" link_package "$work/bad/package"
  [ -z "$(find "$work/bad" -type l)" ] && pass "no link made for: $bad" || fail "no link made for: $bad"
done

# The cache: a copy as fetch() leaves it, then each way it stops being ours.
fresh() {
  rm -rf "$work/cache"
  mkdir -p "$work/cache"
  cp -a "$work/good/package/native" "$work/cache/17"
  echo 17.10.0-beta.17 >"$work/cache/17/.npm-version"
  pkg_seal "$work/cache/17"
}
fresh
expect_true "a sealed copy of the pinned version is reused" pkg_cache_is_ours "$work/cache/17" 17.10.0-beta.17
expect_false "another version is not" pkg_cache_is_ours "$work/cache/17" 17.11.0-beta.1
fresh; echo 'echo planted' >>"$work/cache/17/bin/postgres"
expect_false "a changed file is not" pkg_cache_is_ours "$work/cache/17" 17.10.0-beta.17
fresh; echo planted >"$work/cache/17/lib/extra.so"
expect_false "an added file is not" pkg_cache_is_ours "$work/cache/17" 17.10.0-beta.17
fresh; chmod g+w "$work/cache/17/lib/libpq.so.5.17"
expect_false "a file others may write is not" pkg_cache_is_ours "$work/cache/17" 17.10.0-beta.17
fresh; chmod o+w "$work/cache"
expect_false "a cache folder others may write is not" pkg_cache_is_ours "$work/cache/17" 17.10.0-beta.17
chmod o-w "$work/cache"
fresh; ln -sfn /etc/passwd "$work/cache/17/lib/libpq.so.5"; pkg_seal "$work/cache/17"
expect_false "a link that leaves it is not, sealed or not" pkg_cache_is_ours "$work/cache/17" 17.10.0-beta.17
fresh; mv "$work/cache/17" "$work/elsewhere"; ln -s "$work/elsewhere" "$work/cache/17"
expect_false "a symlink in its place is not" pkg_cache_is_ours "$work/cache/17" 17.10.0-beta.17
rm -rf "$work/elsewhere" "$work/cache/17"
expect_false "nothing there is not" pkg_cache_is_ours "$work/cache/17" 17.10.0-beta.17
if [ "$(id -u)" -eq 0 ] && id nobody >/dev/null 2>&1; then
  fresh; chown nobody "$work/cache/17/bin/postgres"
  expect_false "a file of another user is not" pkg_cache_is_ours "$work/cache/17" 17.10.0-beta.17
fi
exit "$failed"
