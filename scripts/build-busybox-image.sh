#!/bin/bash
# Builds a busybox OCI image from Debian's busybox-static, with no network:
# /bin/busybox, a symlink per applet, /etc/passwd and /etc/group. The result is
# an OCI image layout that skopeo can push to a registry:
#
#   scripts/build-busybox-image.sh /tmp/bb [TAG]
#   skopeo copy --dest-tls-verify=false oci:/tmp/bb:latest docker://127.0.0.1:5000/busybox:latest
#
# Needs busybox-static and umoci (both in scripts/setup.sh).
set -euo pipefail

out=${1:?usage: build-busybox-image.sh OCI_LAYOUT_DIR [TAG]}
tag=${2:-latest}
busybox=${BUSYBOX:-/bin/busybox}

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
root=$work/rootfs
mkdir -p "$root"/{bin,etc,proc,sys,dev,tmp,root,var,run,home/app}
install -m 0755 "$busybox" "$root/bin/busybox"
for applet in $("$busybox" --list); do
  [ "$applet" = busybox ] || ln -sf busybox "$root/bin/$applet"
done
cat >"$root/etc/passwd" <<'PASSWD'
root:x:0:0:root:/root:/bin/sh
app:x:1000:1000:app:/home/app:/bin/sh
nobody:x:65534:65534:nobody:/nonexistent:/bin/false
PASSWD
cat >"$root/etc/group" <<'GROUP'
root:x:0:
app:x:1000:
staff:x:50:app
nogroup:x:65534:
GROUP
chmod 1777 "$root/tmp"
chown 1000:1000 "$root/home/app"
# Fixed times, so that two builds give the same layer.
find "$root" -exec touch -h -d '2024-01-01T00:00:00Z' {} +

[ -f "$out/index.json" ] || umoci init --layout "$out"
umoci new --image "$out:$tag"
umoci insert --image "$out:$tag" --history.created '2024-01-01T00:00:00Z' --history.created_by 'build-busybox-image.sh: busybox-static' "$root" /
umoci config --image "$out:$tag" --created '2024-01-01T00:00:00Z' --history.created '2024-01-01T00:00:00Z' \
  --config.cmd sh --config.env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
  --config.workingdir / --config.label org.opencontainers.image.title=busybox
umoci gc --layout "$out"
