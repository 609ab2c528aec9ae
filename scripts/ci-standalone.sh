#!/usr/bin/env bash
# The repository stands alone: a clone with nothing beside it (no ../shared) installs,
# builds and passes the tests that read specifications and fixtures, so nothing at run
# time reaches outside the repository.
set -euo pipefail
cd "$(dirname "$0")/.."
tmp=$(mktemp -d /tmp/lb-standalone-XXXXXX)
trap 'rm -rf "$tmp"' EXIT
git clone -q . "$tmp/layerbox"
[ ! -e "$tmp/shared" ] || { echo "standalone: $tmp/shared exists" >&2; exit 1; }
cd "$tmp/layerbox"
scripts/test.sh 'runtime/spec|engine/layering|cli/grammar|image/load|oci/|archive/security'
