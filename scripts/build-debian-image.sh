#!/bin/bash
# Builds an OCI image from Debian's packages, with no network at build time:
# busybox (sh, httpd, wget) as in build-busybox-image.sh, the packages'
# files (from the .deb files scripts/setup.sh keeps in DEBS), and the
# host's shared libraries their binaries load (found with ldd). For the
# orchestrator's tests: redis (the guestbook) and nginx (a two-container pod).
#
#   scripts/build-debian-image.sh OCI_LAYOUT_DIR TAG "PACKAGES" "BINARIES" CMD
#   scripts/build-debian-image.sh /tmp/redis 7 "redis-tools libjemalloc2 liblzf1 liblua5.1-0" "/usr/bin/redis-check-rdb /usr/bin/redis-cli" redis-server
set -euo pipefail

out=${1:?usage: build-debian-image.sh OCI_LAYOUT_DIR TAG PACKAGES BINARIES CMD}
tag=${2:?tag}
packages=${3:?packages}
binaries=${4:?binaries}
cmd=${5:?cmd}
debs=${DEBS:-/usr/local/lib/mycontainer/debs}

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
root=$work/rootfs
mkdir -p "$root"/{bin,etc,proc,sys,dev,tmp,root,var,run,data,www}
install -m 0755 /bin/busybox "$root/bin/busybox"
for applet in $(/bin/busybox --list); do
  [ "$applet" = busybox ] || ln -sf busybox "$root/bin/$applet"
done
printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' >"$root/etc/passwd"
printf 'root:x:0:\nnogroup:x:65534:\n' >"$root/etc/group"
chmod 1777 "$root/tmp"

for pkg in $packages; do
  deb=$(ls "$debs"/"${pkg}"_*.deb 2>/dev/null | head -1)
  [ -n "$deb" ] || { echo "build-debian-image.sh: no $pkg package in $debs (scripts/setup.sh downloads it)" >&2; exit 1; }
  dpkg -x "$deb" "$root"
done
# Debian's redis-server is redis-check-rdb under another name (a link from the redis-server package).
[ ! -e "$root/usr/bin/redis-check-rdb" ] || ln -sf redis-check-rdb "$root/usr/bin/redis-server"
# The host's libraries the binaries load, at the same paths.
export LD_LIBRARY_PATH="$root/usr/lib/x86_64-linux-gnu:$root/lib/x86_64-linux-gnu"
for bin in $binaries; do
  ldd "$root$bin" | awk '/=> \//{print $3} /^\s*\/lib/{print $1}' | while read -r lib; do
    case "$lib" in "$root"/*) continue ;; esac
    mkdir -p "$root$(dirname "$lib")"
    cp -L "$lib" "$root$lib"
  done
  if ldd "$root$bin" | grep -q 'not found'; then
    echo "build-debian-image.sh: libraries of $bin missing:" >&2
    ldd "$root$bin" | grep 'not found' >&2
    exit 1
  fi
done
find "$root" -exec touch -h -d '2024-01-01T00:00:00Z' {} +

[ -f "$out/index.json" ] || umoci init --layout "$out"
umoci new --image "$out:$tag"
umoci insert --image "$out:$tag" --history.created '2024-01-01T00:00:00Z' --history.created_by "build-debian-image.sh: $packages, busybox-static" "$root" /
umoci config --image "$out:$tag" --created '2024-01-01T00:00:00Z' --history.created '2024-01-01T00:00:00Z' \
  --config.cmd "$cmd" --config.env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
  --config.workingdir / --config.label "org.opencontainers.image.title=$cmd"
umoci gc --layout "$out"
