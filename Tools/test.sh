#!/usr/bin/env bash
# The test command: installs what is missing (Tools/setup.sh), runs the unit tests in release
# (numeric code is far too slow unoptimized), then the end-to-end command-line check.
set -euo pipefail
cd "$(dirname "$0")/.."
bash Tools/setup.sh
swift test -c release -Xswiftc -enable-testing
bash Tools/cli-check.sh .build/release/precis
