#!/usr/bin/env bash
# Installs, idempotently, everything layerbox and its tests need on Debian 12 (as root):
# the Debian packages of the real components, the npm dependencies, the native module,
# and the TypeScript build. Safe to run again: it only does what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

PKGS=(crun runc conmon containernetworking-plugins iptables iproute2 busybox-static debootstrap
      docker-registry skopeo umoci zstd pigz tmux apache2-utils openssl ca-certificates
      python3 make g++ procps psmisc util-linux tini zsh chromium docker.io docker-compose python3-docker)
# docker.io: the docker CLI (/usr/bin/docker) of the main job's second pass against
# `layerbox serve`, and the dockerd the tests and benchmarks compare with (on private sockets);
# docker-compose (1.29) and python3-docker (docker-py 5.0.3): the API's other clients in the tests

missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing Debian packages: ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
# docker-registry's package enables a system service on :5000; layerbox's tests start their own.
if command -v systemctl >/dev/null 2>&1 && systemctl is-active -q docker-registry 2>/dev/null; then
  systemctl disable --now docker-registry >/dev/null 2>&1 || true
fi
# docker.io's enables dockerd on /var/run/docker.sock: stopped again only when installed here
# (a dockerd the machine already ran is left alone); layerbox's scripts start private ones.
if [[ " ${missing[*]} " == *" docker.io "* ]] && command -v systemctl >/dev/null 2>&1; then
  systemctl disable --now docker.service docker.socket >/dev/null 2>&1 || true
fi

if ! command -v node >/dev/null 2>&1; then
  echo "setup: Node.js 20 is required; installing Debian's nodejs" >&2
  apt-get install -y -qq nodejs npm >/dev/null
fi
major=$(node -p 'process.versions.node.split(".")[0]')
if [ "$major" -lt 20 ]; then
  echo "setup: Node.js >= 20 is required, found $(node -v). Install Node 20 (e.g. from NodeSource) and run again." >&2
  exit 1
fi

# npm dependencies (and the native module, built by node-gyp in the install script) — only
# when package-lock.json changed since the last install.
stamp=node_modules/.layerbox-lock-sha
want=$(sha256sum package-lock.json binding.gyp native/sys.c | sha256sum | cut -d' ' -f1)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ] || [ ! -f build/Release/layerbox_sys.node ]; then
  echo "setup: installing npm dependencies" >&2
  npm ci --no-audit --no-fund --loglevel=error
  echo "$want" > "$stamp"
fi

npx --no-install tsc -p tsconfig.json
node scripts/bundle.mjs
