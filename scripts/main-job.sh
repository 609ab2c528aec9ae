#!/usr/bin/env bash
# The tutorial, end to end, with layerbox (the seeds: 尚硅谷 Docker 镜像分层 / commit):
#   a Debian bookworm minbase image → pushed to a local registry → pulled back layer by layer
#   → vi is missing → vim installed in a container → commit -a -m → two layers, the first
#   shared → the new image runs vim → history → system df -v shows the shared base layer;
#   then the second example: delete a directory in a running container, commit, run both.
# Then the second pass (issue 11): the same tutorial through the real docker CLI
# (/usr/bin/docker) against `layerbox serve` on a private socket over its own store — pull of
# the pushed base, run, commit -a -m, inspect, history, system df, push and pull back, import,
# exec, diff — and the server stopped with SIGTERM. `--layerbox-only` skips that pass.
# Installs what it needs (scripts/setup.sh). Uses its own stores and registry; cleans up.
set -euo pipefail
cd "$(dirname "$0")/.."
DOCKER_PASS=1
for a in "$@"; do
  case $a in
    --layerbox-only) DOCKER_PASS=0 ;;
    *) echo "usage: $0 [--layerbox-only]" >&2; exit 2 ;;
  esac
done
scripts/setup.sh

export LAYERBOX_ROOT=${LAYERBOX_ROOT:-/var/lib/layerbox-tutorial}
unset NODE_EXTRA_CA_CERTS # ~0.12 s per Node start on these machines
CACHE=${LAYERBOX_CACHE:-/var/cache/layerbox}
WORK=$(mktemp -d /tmp/layerbox-tutorial.XXXXXX)
LB="node $PWD/bin/layerbox.js"
REG_PID=
# the second pass: layerbox serve over its own store, the docker CLI on a private socket
SROOT=${LAYERBOX_ROOT}-serve
SOCK=$WORK/docker.sock
DK="/usr/bin/docker -H unix://$SOCK"
export DOCKER_CONFIG=$WORK/docker-config # no ~/.docker: no credentials, no context
SERVE_PID=

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
show() { printf '$ layerbox'; printf ' %q' "$@"; printf '\n'; $LB "$@"; }
dshow() { printf '$ docker'; printf ' %q' "$@"; printf '\n'; $DK "$@"; }
check() { if eval "$1"; then echo "OK: $2"; else echo "FAILED: $2" >&2; exit 1; fi; }
freeport() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
stop_serve() {
  [ -n "$SERVE_PID" ] || return 0
  $DK rm -f web1 web-nodocs web-orig vimctr >/dev/null 2>&1
  kill -TERM "$SERVE_PID" 2>/dev/null
  local rc=0
  wait "$SERVE_PID" 2>/dev/null || rc=$?
  SERVE_PID=
  return $rc
}
cleanup() {
  set +e
  if [ -n "$SERVE_PID" ]; then
    echo "--- layerbox serve log (last lines):" >&2
    tail -20 "$WORK/serve.log" >&2
    stop_serve
  fi
  $LB rm -f web1 web-nodocs web-orig vimctr >/dev/null 2>&1
  [ -d "$SROOT" ] && $LB --root "$SROOT" rm -f web1 web-nodocs web-orig vimctr >/dev/null 2>&1
  [ -n "$REG_PID" ] && kill "$REG_PID" 2>/dev/null && wait "$REG_PID" 2>/dev/null
  rm -rf "$WORK"
}
trap cleanup EXIT

# a fresh store for every run, so the tutorial shows every step
$LB ps -aq 2>/dev/null | xargs -r $LB rm -f >/dev/null 2>&1 || true
rm -rf "$LAYERBOX_ROOT"
if [ -d "$SROOT" ]; then
  $LB --root "$SROOT" ps -aq 2>/dev/null | xargs -r $LB --root "$SROOT" rm -f >/dev/null 2>&1 || true
  rm -rf "$SROOT"
fi

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
PORT=$(freeport)
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
P1=$(freeport)
show run -d --name web1 -p "$P1:80" tutorial/web:1.0
sleep 0.5
echo "web1 /docs/: HTTP $(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$P1/docs/")"
show exec web1 rm -rf /www/docs
echo "web1 /docs/ after rm -rf: HTTP $(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$P1/docs/")"
show diff web1
show commit -a "layerbox tutorial" -m "del docs" web1 tutorial/web:nodocs
P2=$(freeport)
P3=$(freeport)
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

echo "layerbox CLI pass: OK (${SECONDS}s)"
CLI_SECONDS=$SECONDS

if [ "$DOCKER_PASS" = 0 ]; then
  step "done (--layerbox-only: no docker CLI pass)"
  echo "main job: OK"
  exit 0
fi

# ---------------------------------------------------------------------------------------------
# The second pass: the same tutorial with the real docker CLI against layerbox serve
# (the Docker Engine API v1.41) on a private socket, over its own store.

step "D1. layerbox serve on unix://$SOCK (store $SROOT); the docker CLI talks to it"
mkdir -p "$DOCKER_CONFIG"
$LB --root "$SROOT" serve -H "unix://$SOCK" >"$WORK/serve.log" 2>&1 &
SERVE_PID=$!
for _ in $(seq 100); do
  $DK version >/dev/null 2>&1 && break
  kill -0 "$SERVE_PID" 2>/dev/null || { cat "$WORK/serve.log" >&2; SERVE_PID=; echo "FAILED: layerbox serve exited" >&2; exit 1; }
  sleep 0.1
done
dshow version --format 'client {{.Client.Version}} (API {{.Client.APIVersion}}), server {{.Server.Version}} (API {{.Server.APIVersion}})'
check '[ "$($DK version --format "{{.Server.APIVersion}}")" = 1.41 ]' 'the docker CLI speaks API 1.41 to layerbox serve'

step "D2. docker pull the base image from the local registry, layer by layer"
dshow pull "$BASE"
dshow images
D_BASE_L=$($DK image inspect --format '{{json .RootFS.Layers}}' "$BASE" | tr -d '[]"')
check '[ "$D_BASE_L" = "$BASE_L" ]' "the pulled base has the layer the CLI pushed ($D_BASE_L)"

step "D3. docker run it: vi is not there"
dshow run --rm "$BASE" sh -c 'vi --version 2>&1 || echo "vi: command not found (exit $?)"'
check '! $DK run --rm "$BASE" sh -c "command -v vi"' 'vi is missing from the base image (docker run)'

step "D4. install vim in a container"
dshow run --name vimctr "$BASE" sh -c 'apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends vim >/dev/null && echo "vim installed"'
echo '$ docker diff vimctr | head -5'
$DK diff vimctr >"$WORK/vimctr.diff" # whole: a Go CLI cut off by head dies of SIGPIPE
head -5 "$WORK/vimctr.diff"
echo "… $(wc -l <"$WORK/vimctr.diff") changes in the container's writable layer"

step "D5. docker commit -a -m: the new image is the old layers plus one"
dshow commit -a "layerbox tutorial <tutorial@example.com>" -m "add vim" vimctr tutorial/debian:vim
dshow image inspect --format '{{json .RootFS.Layers}}' tutorial/debian:vim
D_VIM_LAYERS=$($DK image inspect --format '{{json .RootFS.Layers}}' tutorial/debian:vim)
D_VIM_L0=$(echo "$D_VIM_LAYERS" | tr -d '[]"' | cut -d, -f1)
D_NLAYERS=$(echo "$D_VIM_LAYERS" | tr ',' '\n' | wc -l)
check '[ "$D_NLAYERS" = 2 ] && [ "$D_VIM_L0" = "$BASE_L" ]' "2 layers, the first is the base image's layer (docker image inspect)"
dshow image inspect --format 'Author: {{.Author}}  Comment: {{.Comment}}' tutorial/debian:vim
check '[ "$($DK image inspect --format "{{.Author}}|{{.Comment}}" tutorial/debian:vim)" = "layerbox tutorial <tutorial@example.com>|add vim" ]' 'the commit has the author and the message'

step "D6. docker run the new image: vim works"
dshow run --rm tutorial/debian:vim sh -c 'vim --version | head -1'
check '$DK run --rm tutorial/debian:vim sh -c "command -v vi" >/dev/null' 'vim (and vi) work in the committed image (docker run)'

step "D7. docker history, docker system df -v"
dshow history tutorial/debian:vim
check '$DK history tutorial/debian:vim | grep -q "add vim"' 'docker history shows the commit message'
dshow system df -v | sed -n '1,6p'
check '$DK system df -v | grep -E "^tutorial/debian +vim" | grep -qE " [0-9.]+MB +[0-9.]+MB +[0-9.]+MB"' 'the vim image shares its base layer (docker system df -v)'

step "D8. docker push the committed image, remove it, pull it back"
dshow tag tutorial/debian:vim "$REG/tutorial/debian:vim"
dshow push "$REG/tutorial/debian:vim"
D_VIM_ID=$($DK image inspect --format '{{.Id}}' tutorial/debian:vim)
$DK rm -f vimctr >/dev/null
dshow rmi tutorial/debian:vim "$REG/tutorial/debian:vim"
check '! $DK image inspect tutorial/debian:vim >/dev/null 2>&1' 'the committed image is gone'
dshow pull "$REG/tutorial/debian:vim"
check '[ "$($DK image inspect --format "{{.Id}}" "$REG/tutorial/debian:vim")" = "$D_VIM_ID" ] && [ "$($DK image inspect --format "{{json .RootFS.Layers}}" "$REG/tutorial/debian:vim")" = "$D_VIM_LAYERS" ]' 'pulled back: the same image ID and the same two layers'
check '$DK run --rm "$REG/tutorial/debian:vim" sh -c "command -v vim" >/dev/null' 'the pulled-back image runs vim'

step "D9. the second example: docker import, run -d -p, exec rm -rf, diff, commit, run both"
dshow import -c 'CMD ["httpd","-f","-p","80","-h","/www"]' -c 'EXPOSE 80' - tutorial/web:1.0 <"$WORK/web.tar"
P1=$(freeport)
dshow run -d --name web1 -p "$P1:80" tutorial/web:1.0
sleep 0.5
echo "web1 /docs/: HTTP $(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$P1/docs/")"
dshow exec web1 rm -rf /www/docs
echo "web1 /docs/ after rm -rf: HTTP $(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$P1/docs/")"
dshow diff web1
check '[ "$($DK diff web1 | tr "\n" " ")" = "C /www D /www/docs " ]' 'docker diff shows the deleted directory'
dshow commit -a "layerbox tutorial" -m "del docs" web1 tutorial/web:nodocs
P2=$(freeport)
P3=$(freeport)
dshow run -d --name web-nodocs -p "$P2:80" tutorial/web:nodocs
dshow run -d --name web-orig -p "$P3:80" tutorial/web:1.0
sleep 0.5
dshow ps
N=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$P2/docs/")
O=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$P3/docs/")
echo "new image  (tutorial/web:nodocs) /docs/: HTTP $N"
echo "old image  (tutorial/web:1.0)    /docs/: HTTP $O"
check '[ "$N" = 404 ] && [ "$O" = 200 ]' "the deletion lives only in the committed layer (docker)"
dshow history tutorial/web:nodocs

step "D10. docker rm -f, then stop layerbox serve with SIGTERM"
dshow rm -f web1 web-nodocs web-orig
check '[ -z "$($DK ps -aq)" ]' 'no containers left in the serve store'
RC=0
stop_serve || RC=$?
tail -1 "$WORK/serve.log"
check '[ "$RC" = 0 ] && [ ! -e "$SOCK" ]' 'layerbox serve stopped on SIGTERM (exit 0) and removed its socket'
echo "docker CLI pass: OK ($((SECONDS - CLI_SECONDS))s)"

step "done"
echo "main job: OK"
