#!/bin/bash
# Builds a Redis OCI image from Debian's packages, with no network at build
# time: busybox (sh, httpd, wget) as in build-busybox-image.sh, Debian's
# redis-server and redis-cli (redis-tools, with libjemalloc2, liblzf1 and
# liblua5.1-0 from the .deb files scripts/setup.sh keeps in DEBS), and the
# host's shared libraries they load (found with ldd). For the orchestrator's
# guestbook test: redis for the master and the replicas, and redis-cli for
# a busybox-httpd CGI frontend.
#
#   scripts/build-redis-image.sh /tmp/redis [TAG]
set -euo pipefail

out=${1:?usage: build-redis-image.sh OCI_LAYOUT_DIR [TAG]}
tag=${2:-latest}
debs=${DEBS:-/usr/local/lib/mycontainer/debs}


work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
root=$work/rootfs
mkdir -p "$root"/{bin,etc,proc,sys,dev,tmp,root,var,run,data,www}
install -m 0755 /bin/busybox "$root/bin/busybox"
for applet in $(/bin/busybox --list); do
  [ "$applet" = busybox ] || ln -sf busybox "$root/bin/$applet"
done
printf 'root:x:0:0:root:/root:/bin/sh\nredis:x:999:999:redis:/data:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' >"$root/etc/passwd"
printf 'root:x:0:\nredis:x:999:\nnogroup:x:65534:\n' >"$root/etc/group"
chmod 1777 "$root/tmp"

for pkg in redis-tools libjemalloc2 liblzf1 liblua5.1-0; do
  deb=$(ls "$debs"/${pkg}_*.deb 2>/dev/null | head -1)
  [ -n "$deb" ] || { echo "build-redis-image.sh: no $pkg package in $debs (scripts/setup.sh downloads it)" >&2; exit 1; }
  dpkg -x "$deb" "$root"
done
ln -sf redis-check-rdb "$root/usr/bin/redis-server"
# The host's libraries the binaries load, at the same paths.
export LD_LIBRARY_PATH="$root/usr/lib/x86_64-linux-gnu:$root/lib/x86_64-linux-gnu"
for bin in "$root/usr/bin/redis-check-rdb" "$root/usr/bin/redis-cli"; do
  ldd "$bin" | awk '/=> \//{print $3} /^\s*\/lib/{print $1}' | while read -r lib; do
    case "$lib" in "$root"/*) continue ;; esac
    mkdir -p "$root$(dirname "$lib")"
    cp -L "$lib" "$root$lib"
  done
done
if ldd "$root/usr/bin/redis-check-rdb" | grep -q 'not found'; then
  echo "build-redis-image.sh: libraries missing:" >&2
  ldd "$root/usr/bin/redis-check-rdb" | grep 'not found' >&2
  exit 1
fi
find "$root" -exec touch -h -d '2024-01-01T00:00:00Z' {} +

[ -f "$out/index.json" ] || umoci init --layout "$out"
umoci new --image "$out:$tag"
umoci insert --image "$out:$tag" --history.created '2024-01-01T00:00:00Z' --history.created_by 'build-redis-image.sh: Debian redis-tools, busybox-static' "$root" /
umoci config --image "$out:$tag" --created '2024-01-01T00:00:00Z' --history.created '2024-01-01T00:00:00Z' \
  --config.cmd redis-server --config.env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
  --config.workingdir /data --config.label org.opencontainers.image.title=redis
umoci gc --layout "$out"

