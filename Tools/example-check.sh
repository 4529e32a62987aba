#!/usr/bin/env bash
# Precis as a dependency: copies this working tree into a scratch git repository tagged with the
# version Precis reports, builds Tests/ExamplePackage against it by version through a file:// URL
# (so SwiftPM applies its rules for packages depended on by version, such as no unsafe flags), and
# runs the example on a shipped weight file, checking that it prints a float16 row.
#
#     bash Tools/example-check.sh
set -euo pipefail
cd "$(dirname "$0")/.."
version=$(sed -n 's/^public let precisVersion = "\(.*\)"$/\1/p' Sources/PrecisCore/Version.swift)
[ -n "$version" ] || { echo "example-check: no precisVersion in Sources/PrecisCore/Version.swift" >&2; exit 1; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir "$work/precis"
git ls-files -z --cached --others --exclude-standard | while IFS= read -r -d '' f; do
  [ -e "$f" ] && cp --parents -- "$f" "$work/precis/"
done
git -C "$work/precis" init --quiet
git -C "$work/precis" add --all
git -C "$work/precis" -c user.name=precis -c user.email=precis@localhost commit --quiet -m "Precis $version"
git -C "$work/precis" tag "$version"
export PRECIS_URL="file://$work/precis"
swift build --package-path Tests/ExamplePackage --scratch-path "$work/build" --quiet
out=$(swift run --package-path Tests/ExamplePackage --scratch-path "$work/build" --skip-build precis-example \
  Weights/simple-mnist5k.h5 200)
echo "$out"
grep -q "^float16 " <<< "$out" || { echo "example-check: no float16 row in the example's report" >&2; exit 1; }
echo "example-check: a package depending on Precis $version by version builds and runs"
