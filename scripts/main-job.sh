#!/usr/bin/env bash
# The tutorial, end to end, with layerbox (the seeds: 尚硅谷 Docker 镜像分层 / commit):
#   a Debian bookworm minbase image → pushed to a local registry → pulled back layer by layer
#   → vi is missing → vim installed in a container → commit -a -m → two layers, the first
#   shared → the new image runs vim → history → system df -v shows the shared base layer;
#   then the second example: delete a directory in a running container, commit, run both.
# Installs what it needs (scripts/setup.sh). Uses its own store and registry; cleans up.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh

export LAYERBOX_ROOT=${LAYERBOX_ROOT:-/var/lib/layerbox-tutorial}
unset NODE_EXTRA_CA_CERTS # ~0.12 s per Node start on these machines
CACHE=${LAYERBOX_CACHE:-/var/cache/layerbox}
WORK=$(mktemp -d /tmp/layerbox-tutorial.XXXXXX)
LB="node $PWD/bin/layerbox.js"
REG_PID=

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
show() { printf '$ layerbox'; printf ' %q' "$@"; printf '\n'; $LB "$@"; }
check() { if eval "$1"; then echo "OK: $2"; else echo "FAILED: $2" >&2; exit 1; fi; }
cleanup() {
  set +e
  $LB rm -f web1 web-nodocs web-orig vimctr >/dev/null 2>&1
  [ -n "$REG_PID" ] && kill "$REG_PID" 2>/dev/null && wait "$REG_PID" 2>/dev/null
  rm -rf "$WORK"
}
trap cleanup EXIT

# a fresh store for every run, so the tutorial shows every step
$LB ps -aq 2>/dev/null | xargs -r $LB rm -f >/dev/null 2>&1 || true
rm -rf "$LAYERBOX_ROOT"

step "1. A Debian bookworm minbase root file system (debootstrap; cached in $CACHE)"
ROOTFS=$CACHE/bookworm-minbase
if [ ! -f "$ROOTFS/etc/debian_version" ]; then
  mkdir -p "$CACHE"
  rm -rf "$ROOTFS.tmp"
  debootstrap --variant=minbase bookworm "$ROOTFS.tmp" http://deb.debian.org/debian
  mv "$ROOTFS.tmp" "$ROOTFS"
fi
tar --numeric-owner -C "$ROOTFS" -cf "$WORK/rootfs.tar" .
echo "rootfs: $(du -sh "$ROOTFS" | cut -f1), $(tar -tf "$WORK/rootfs.tar" | wc -l) entries"

step "2. import it as the base image"
show import -m "debootstrap --variant=minbase bookworm" "$WORK/rootfs.tar" tutorial/debian:bookworm
show images

step "3. a local registry (Debian's docker-registry) on 127.0.0.1"
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
mkdir -p "$WORK/registry"
cat > "$WORK/registry.yml" <<EOF
version: 0.1
log: { level: error }
storage: { filesystem: { rootdirectory: $WORK/registry }, delete: { enabled: true } }
http: { addr: 127.0.0.1:$PORT }
EOF
/usr/bin/docker-registry serve "$WORK/registry.yml" >"$WORK/registry.log" 2>&1 &
REG_PID=$!
for _ in $(seq 50); do curl -fs "http://127.0.0.1:$PORT/v2/" >/dev/null && break; sleep 0.1; done
REG=127.0.0.1:$PORT
echo "registry at $REG"

step "4. push it, remove it, pull it back — layer by layer"
show tag tutorial/debian:bookworm "$REG/tutorial/debian:bookworm"
show push "$REG/tutorial/debian:bookworm"
show rmi tutorial/debian:bookworm "$REG/tutorial/debian:bookworm"
show pull "$REG/tutorial/debian:bookworm"
BASE=$REG/tutorial/debian:bookworm

step "5. run it: vi is not there"
show run --rm "$BASE" sh -c 'vi --version 2>&1 || echo "vi: command not found (exit $?)"'
check '! $LB run --rm "$BASE" sh -c "command -v vi"' 'vi is missing from the base image'

step "6. install vim in a container"
show run --name vimctr "$BASE" sh -c 'apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends vim >/dev/null && echo "vim installed"'
show diff vimctr | head -5
echo "… $($LB diff vimctr | wc -l) changes in the container's writable layer"

step "7. commit it: the new image is the old layers plus one"
show commit -a "layerbox tutorial <tutorial@example.com>" -m "add vim" vimctr tutorial/debian:vim
show image inspect --format '{{json .RootFS.Layers}}' "$BASE"
show image inspect --format '{{json .RootFS.Layers}}' tutorial/debian:vim
BASE_L=$($LB image inspect --format '{{json .RootFS.Layers}}' "$BASE" | tr -d '[]"')
VIM_L0=$($LB image inspect --format '{{json .RootFS.Layers}}' tutorial/debian:vim | tr -d '[]"' | cut -d, -f1)
NLAYERS=$($LB image inspect --format '{{json .RootFS.Layers}}' tutorial/debian:vim | tr ',' '\n' | wc -l)
check '[ "$NLAYERS" = 2 ] && [ "$BASE_L" = "$VIM_L0" ]' "2 layers, the first is the base image's layer"

step "8. run the new image: vim works"
show run --rm tutorial/debian:vim sh -c 'vim --version | head -1'
check '$LB run --rm tutorial/debian:vim sh -c "command -v vi" >/dev/null' 'vim (and vi) work in the committed image'

step "9. history shows the author and the message"
show history tutorial/debian:vim
show image inspect --format 'Author: {{.Author}}  Comment: {{.Comment}}' tutorial/debian:vim
check '$LB history tutorial/debian:vim | grep -q "add vim"' 'history shows the commit message'

step "10. system df -v: the base layer is stored once, shared by both images"
show system df -v | sed -n '1,6p'
check '$LB system df -v | grep -E "^tutorial/debian +vim" | grep -qE " [0-9.]+MB +[0-9.]+MB +[0-9.]+MB"' 'the vim image shares its base layer'

step "11. the second example: delete a directory in a running container, commit, run both"
# a small web image (busybox httpd) with a docs directory
WEB=$WORK/web
mkdir -p "$WEB"/{bin,etc,tmp,www/docs}
cp /bin/busybox "$WEB/bin/busybox"
for a in sh ls cat rm httpd wget; do ln -s busybox "$WEB/bin/$a"; done
echo '<h1>home</h1>' > "$WEB/www/index.html"
echo '<h1>the docs</h1>' > "$WEB/www/docs/index.html"
printf 'root:x:0:0:root:/root:/bin/sh\n' > "$WEB/etc/passwd"
tar --numeric-owner -C "$WEB" -cf "$WORK/web.tar" .
show import -c 'CMD ["httpd","-f","-p","80","-h","/www"]' -c 'EXPOSE 80' "$WORK/web.tar" tutorial/web:1.0
P1=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
show run -d --name web1 -p "$P1:80" tutorial/web:1.0
sleep 0.5
echo "web1 /docs/: HTTP $(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$P1/docs/")"
show exec web1 rm -rf /www/docs
echo "web1 /docs/ after rm -rf: HTTP $(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$P1/docs/")"
show diff web1
show commit -a "layerbox tutorial" -m "del docs" web1 tutorial/web:nodocs
P2=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
P3=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
show run -d --name web-nodocs -p "$P2:80" tutorial/web:nodocs
show run -d --name web-orig -p "$P3:80" tutorial/web:1.0
sleep 0.5
show ps
N=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$P2/docs/")
O=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$P3/docs/")
echo "new image  (tutorial/web:nodocs) /docs/: HTTP $N"
echo "old image  (tutorial/web:1.0)    /docs/: HTTP $O"
check '[ "$N" = 404 ] && [ "$O" = 200 ]' "the deletion lives only in the committed layer"
show history tutorial/web:nodocs

step "done"
echo "main job: OK"
