#!/usr/bin/env bash
# The README's first command, with no network: build a busybox image from
# Debian's busybox-static, serve it from a local registry (Debian's
# docker-registry on 127.0.0.1), pull it like any other image, and run
# containers from it: one in the foreground, a web server on a published
# port, and one through the OCI runtime alone.
set -euo pipefail
cd "$(dirname "$0")/.."
MC="$PWD/bin/mycontainer"
RT="$PWD/bin/mycontainer-runtime"

work=$(mktemp -d /tmp/mycontainer-demo.XXXXXX)
registry_pid=
cleanup() {
  "$RT" delete --force demo >/dev/null 2>&1 || true
  "$MC" rm -f demo-web >/dev/null 2>&1 || true
  [ -d "$work/bundle" ] && "$MC" unbundle "$work/bundle" >/dev/null 2>&1 || true
  [ -n "${image:-}" ] && "$MC" rmi "$image" >/dev/null 2>&1 || true
  [ -n "$registry_pid" ] && kill "$registry_pid" 2>/dev/null && wait "$registry_pid" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

echo "+ scripts/build-busybox-image.sh (an OCI image from busybox-static)"
scripts/build-busybox-image.sh "$work/oci" latest >/dev/null

freeport() { node -e 'const s=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})'; }
port=$(freeport)
webport=$(freeport)
cat >"$work/registry.yml" <<YML
version: 0.1
log:
  level: error
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: $work/registry
http:
  addr: 127.0.0.1:$port
YML
docker-registry serve "$work/registry.yml" 2>"$work/registry.log" & registry_pid=$!
node -e '(async()=>{for(let i=0;i<200;i++){try{await fetch(process.argv[1]);return}catch{await new Promise(r=>setTimeout(r,50))}}process.exit(1)})()' "http://127.0.0.1:$port/v2/"
image="127.0.0.1:$port/busybox:latest"
echo '{"auths":{}}' >"$work/auth.json"
REGISTRY_AUTH_FILE="$work/auth.json" skopeo copy --quiet --dest-tls-verify=false "oci:$work/oci:latest" "docker://$image"

echo "+ mycontainer pull $image"
"$MC" pull "$image"
# a local name, so that `mycontainer run busybox` finds it afterwards (podman's short names)
"$MC" tag "$image" localhost/busybox:latest >/dev/null
"$MC" rmi "$image" >/dev/null
image=

echo "+ mycontainer run --rm busybox sh -c ..."
"$MC" run --rm busybox sh -c \
  'echo "hello from $(hostname): pid $$, uid $(id -u), $(ip -4 -o addr show eth0 | cut -d" " -f7)"; grep -E "^(CapEff|NoNewPrivs)" /proc/self/status'

echo "+ mycontainer run -d --name demo-web -p 127.0.0.1:$webport:80 busybox httpd -f -p 80 -h /etc"
"$MC" run -d --name demo-web -p "127.0.0.1:$webport:80" busybox httpd -f -p 80 -h /etc >/dev/null
"$MC" ps
node -e '(async()=>{for(let i=0;i<50;i++){try{const r=await fetch(process.argv[1]);console.log("GET /hostname:", (await r.text()).trim());return}catch{await new Promise(r=>setTimeout(r,100))}}process.exit(1)})()' "http://127.0.0.1:$webport/hostname"
"$MC" rm -f demo-web >/dev/null

echo "+ mycontainer-runtime (the OCI runtime alone): bundle + run"
"$MC" bundle --read-only localhost/busybox "$work/bundle" -- sh -c 'echo "hello from the runtime: $(ls / | wc -l) entries in /"' >/dev/null
"$RT" run --bundle "$work/bundle" demo
echo "busybox stays in the store: try mycontainer run -it --rm busybox sh"
