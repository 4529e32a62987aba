#!/usr/bin/env bash
# The README's tour, run as written: every line of its code block, top to bottom, in a scratch
# folder holding a copy of Weights/, with the built precis first on PATH. Fails when a command
# fails, when the shipped weight files change, or when the clone's `git status` changes.
# Usage: Tools/tour-check.sh [path/to/precis]
set -euo pipefail
cd "$(dirname "$0")/.."
precis=$(cd "$(dirname "${1:-.build/release/precis}")" && pwd)/$(basename "${1:-.build/release/precis}")
fail() { echo "tour-check: FAIL: $*" >&2; exit 1; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
status=$(git status --porcelain 2> /dev/null || true)
sums=$(sha256sum Weights/*.h5)
# The block after "## A tour": from its opening fence to the closing one.
awk '/^## A tour/ {tour = 1} tour && /^```/ {if (inside) exit; inside = 1; next} inside' README.md > "$work/tour.sh"
[ "$(grep -c '^precis ' "$work/tour.sh")" -ge 10 ] || fail "the README's tour has fewer than 10 commands"
cp -r Weights "$work/Weights"
mkdir "$work/bin"
ln -s "$precis" "$work/bin/precis"
(cd "$work" && PATH="$work/bin:$PATH" bash -euo pipefail tour.sh > tour.log 2>&1) \
  || fail "a command of the tour failed: $(tail -n 3 "$work/tour.log")"
[ "$(cd "$work" && sha256sum Weights/*.h5)" = "$sums" ] || fail "the tour changed a shipped weight file"
[ "$sums" = "$(sha256sum Weights/*.h5)" ] || fail "the tour changed the clone's weight files"
[ "$(git status --porcelain 2> /dev/null || true)" = "$status" ] || fail "the tour changed git status"
for f in tour.json tour.onnx report/index.html simple.h5 lenet.h5 dir.h5 s.h5 ck.h5; do
  [ -s "$work/$f" ] || fail "the tour wrote no $f"
done
echo "tour-check: passed ($(grep -c '^precis ' "$work/tour.sh") commands)"
