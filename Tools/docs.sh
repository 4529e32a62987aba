#!/usr/bin/env bash
# Builds the documentation: the symbol graph of PrecisCore, then its DocC catalog
# Sources/PrecisCore/PrecisCore.docc with the toolchain's docc, into .build/docs.
# Fails on any warning: a broken link, an unknown symbol, a malformed article.
set -euo pipefail
cd "$(dirname "$0")/.."
# dump-symbol-graph also tries the package's test modules, fails on them and exits non-zero after
# writing the library graphs; the check that follows is whether PrecisCore's graph is there.
mkdir -p .build
rm -rf .build/*/symbolgraph .build/docs .build/symbol-graphs
swift package dump-symbol-graph --minimum-access-level public > .build/docs-symbols.log 2>&1 || true
all=$(sed -n 's/^Files written to //p' .build/docs-symbols.log)
if [ -z "$all" ] || [ ! -s "$all/PrecisCore.symbols.json" ]; then
  cat .build/docs-symbols.log
  echo "docs: no symbol graph for PrecisCore" >&2
  exit 1
fi
graphs=.build/symbol-graphs
mkdir -p "$graphs"
cp "$all"/PrecisCore*.symbols.json "$graphs"/
docc="$(command -v docc || echo "$(dirname "$(command -v swift)")/docc")"
"$docc" convert Sources/PrecisCore/PrecisCore.docc \
  --fallback-display-name PrecisCore --fallback-bundle-identifier org.precis.PrecisCore \
  --additional-symbol-graph-dir "$graphs" --output-path .build/docs --warnings-as-errors
echo "docs: built .build/docs"
