#!/usr/bin/env bash
# All benchmarks (slow: the pull and load ones let the disk settle between runs).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
unset NODE_EXTRA_CA_CERTS
for b in load pull run commit analyze api; do node bench/$b.mjs; done
