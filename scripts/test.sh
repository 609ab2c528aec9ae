#!/usr/bin/env bash
# The whole test suite: installs what is missing, builds, and runs every *.test.js under dist/.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
# Node start-up: this machine sets NODE_EXTRA_CA_CERTS, which costs ~0.12 s per process.
unset NODE_EXTRA_CA_CERTS
mapfile -t files < <(find dist -name '*.test.js' | sort)
if [ "$#" -gt 0 ]; then mapfile -t files < <(printf '%s\n' "${files[@]}" | grep -E "$1"); fi
exec node --test --test-reporter=spec --test-timeout=900000 "${files[@]}"
