#!/usr/bin/env bash
# The README's first command, with no network: build a busybox image from
# Debian's busybox-static, serve it from a local registry (Debian's
# docker-registry on 127.0.0.1), pull it like any other image, and run a
# container in it.
set -euo pipefail
cd "$(dirname "$0")/.."
MC="$PWD/bin/mycontainer"
RT="$PWD/bin/mycontainer-runtime"

work=$(mktemp -d /tmp/mycontainer-demo.XXXXXX)
registry_pid=
cleanup() {
  "$RT" delete --force demo >/dev/null 2>&1 || true
  [ -d "$work/bundle" ] && "$MC" unbundle "$work/bundle" >/dev/null 2>&1 || true
  [ -n "${image:-}" ] && "$MC" rmi "$image" >/dev/null 2>&1 || true
  [ -n "$registry_pid" ] && kill "$registry_pid" 2>/dev/null && wait "$registry_pid" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

echo "+ scripts/build-busybox-image.sh (an OCI image from busybox-static)"
scripts/build-busybox-image.sh "$work/oci" latest >/dev/null

port=$(node -e 'const s=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})')
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
echo "+ mycontainer bundle $image (overlay rootfs + config.json)"
"$MC" bundle --read-only "$image" "$work/bundle" -- sh -c \
  'echo "hello from $(hostname): pid $$, uid $(id -u)"; grep -E "^(CapEff|NoNewPrivs)" /proc/self/status; ls /'
echo "+ mycontainer-runtime run --bundle $work/bundle demo"
"$RT" run --bundle "$work/bundle" demo
