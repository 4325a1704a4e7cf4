#!/bin/sh
# Builds the Debian packages (debian/: dpkg-buildpackage with debhelper and
# CMake) into OUT and checks them with lintian: no error, no warning.
# The build runs in a copy of the sources, OUT/importance-VERSION, so that
# neither the tree nor its parent gets dpkg's and debhelper's files; the
# packages, .buildinfo and .changes are written to OUT.
# Usage: build-deb.sh OUT [SOURCE]
set -eu
out=${1:?usage: build-deb.sh OUT [SOURCE]}
src=${2:-$(cd "$(dirname "$0")/.." && pwd)}
mkdir -p "$out"
out=$(cd "$out" && pwd)

# the changelog's version is the project's
version=$(dpkg-parsechangelog -l "$src/debian/changelog" -S Version)
project=$(sed -n 's/^project(importance VERSION \([^ ]*\) .*/\1/p' "$src/CMakeLists.txt")
if [ "$version" != "$project" ]; then
	echo "build-deb: debian/changelog says $version, CMakeLists.txt $project" >&2
	exit 1
fi

tree=$out/importance-$version
rm -rf "$tree" "$out"/*.deb "$out"/*.changes "$out"/*.buildinfo
mkdir -p "$tree"
if git -C "$src" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
	# what git has or would add, as it is in the working tree
	(cd "$src" && git ls-files -z --cached --others --exclude-standard |
		xargs -0 sh -c 'for f; do [ -e "$f" ] && printf "%s\n" "$f"; done' sh |
		tar -cf - -T -) | tar -xf - -C "$tree"
else
	(cd "$src" && tar -cf - --exclude='./build*' --exclude=./debian/tmp .) | tar -xf - -C "$tree"
fi

log=$out/build.log
echo "build-deb: dpkg-buildpackage in $tree (log: $log)"
if ! (cd "$tree" && DEB_BUILD_OPTIONS="nocheck parallel=${JOBS:-$(nproc)}" \
	dpkg-buildpackage -us -uc -b) >"$log" 2>&1; then
	tail -n 60 "$log" >&2
	echo "build-deb: dpkg-buildpackage failed (whole log: $log)" >&2
	exit 1
fi
rm -rf "$tree"
changes=$(ls "$out"/importance_"$version"_*.changes)
echo "build-deb: lintian $changes"
lintian --fail-on error,warning --display-level '>=warning' "$changes"
ls "$out"/*.deb
