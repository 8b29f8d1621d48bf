#!/usr/bin/env bash
# scripts/build-deb.sh — builds the danerelay Debian package (debian/, dpkg-buildpackage -b) out
# of a clean copy of the repository, then checks it: lintian --fail-on error (warnings printed,
# not fatal) and tests/package/check_contents.sh. ./build is never touched. The .deb ends up in
# ./build-deb/. Run as root on Debian 12 (installs what it needs with scripts/install-deps.sh).
#   scripts/build-deb.sh                               → build, lintian, contents check
#   DEB_BUILD_OPTIONS=nocheck scripts/build-deb.sh     → the same (CI); the package build never
#                                                        runs the suite anyway (debian/rules)
# The copy is the tracked files as they are in the work tree (committed or not; untracked files
# are left out), made with `git stash create` + `git archive`.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
start=$(date +%s)

scripts/install-deps.sh

version=$(dpkg-parsechangelog -S Version)
arch=$(dpkg-architecture -qDEB_HOST_ARCH)
# A fixed place, so that ccache sees the same paths build after build (dpkg-buildflags puts the
# source directory into -ffile-prefix-map); a lock keeps two runs out of each other's way.
work=${TMPDIR:-/tmp}/danerelay-deb
mkdir -p "$work"
exec 9>"$work.lock"
flock -n 9 || { echo "build-deb: another build-deb.sh is running ($work.lock)" >&2; exit 1; }
find "$work" -mindepth 1 -delete
src=$work/danerelay-$version
mkdir -p "$src"
rev=$(git stash create)
git archive "${rev:-HEAD}" | tar -x -C "$src"
echo "build-deb: danerelay $version from ${rev:+the work tree over }$(git rev-parse --short HEAD) in $src"

# ccache (CMakeLists.txt uses it when present): dh sets HOME to a directory of its own (compat 13),
# so name the cache explicitly; relative paths under $work make repeated builds hit.
if command -v ccache >/dev/null; then
  export CCACHE_DIR=${CCACHE_DIR:-$(ccache --get-config cache_dir)}
  export CCACHE_BASEDIR=$work CCACHE_NOHASHDIR=1
fi

log=$work/build.log
echo "build-deb: dpkg-buildpackage -b -uc -us (log: $log)"
if ! (cd "$src" && dpkg-buildpackage -b -uc -us -Jauto) >"$log" 2>&1; then
  tail -n 60 "$log" >&2
  echo "build-deb: dpkg-buildpackage failed; the whole log is $log" >&2
  exit 1
fi
deb=$work/danerelay_${version}_${arch}.deb
[ -f "$deb" ] || { echo "build-deb: no $deb after the build" >&2; exit 1; }

echo "build-deb: lintian --fail-on error"
lintian --fail-on error --tag-display-limit 0 "$deb"

"$repo/tests/package/check_contents.sh" "$deb"

mkdir -p "$repo/build-deb"
cp "$deb" "$repo/build-deb/"
rm -rf "$src"   # the copy and its build tree; the log stays next to it
elapsed=$(( $(date +%s) - start ))
echo "build-deb: $repo/build-deb/$(basename "$deb") ($(du -h "$deb" | cut -f1)) in $((elapsed / 60)) min $((elapsed % 60)) s"
