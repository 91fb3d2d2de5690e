#!/usr/bin/env bash
# Lab 01: a chroot made by hand, the classic escape from it, and the
# pivot_root in a new mount namespace that closes it. See README.md.
LAB=$(cd "$(dirname "$0")" && pwd)
# shellcheck source-path=SCRIPTDIR source=../lib.sh
. "$LAB/../lib.sh"

lab_begin "Lab 01: chroot, its escape, and pivot_root" \
  "root; gcc and a static libc (packages gcc, libc6-dev); busybox-static; bin/mycontainer-runtime (make build)" \
  "about 5 seconds"
need_root
need_tool gcc gcc
need_tool chroot coreutils
[ -f "$(gcc -print-file-name=libc.a)" ] || refuse "gcc cannot link statically: libc.a is missing (Debian package: libc6-dev)"
need_runtime

work=$(mktemp -d /tmp/lab01.XXXXXX)
lab_cleanup() {
  remove_containers lab01-pivot lab01-chroot
  rm -rf "$work"
}
bundle="$work/bundle"
rootfs="$bundle/rootfs"
marker="$work/host-marker"
echo "on the host, outside the rootfs, written by lab 01 ($$)" >"$marker"
make_rootfs "$rootfs"
gcc -static -O2 -o "$rootfs/escape" "$LAB/escape.c"
echo "rootfs: $rootfs (busybox, and /escape built from escape.c with gcc -static)"
echo "marker: $marker (on the host, outside the rootfs)"

step "1. A chroot made by hand: the rootfs becomes /"
show chroot "$rootfs" /bin/sh -c "ls /; cat $marker"
inside=$(chroot "$rootfs" /bin/sh -c "ls / | tr '\n' ' '; echo; cat $marker" 2>&1 || true)
echo "$inside"
claim chroot-hides-host "cat cannot find the marker by its path inside the chroot" \
  grep -q "can't open" <<<"$inside"

step "2. The escape, as root inside the chroot"
show chroot "$rootfs" /escape "$marker"
status=0
out=$(chroot "$rootfs" /escape "$marker") || status=$?
echo "$out"
claim chroot-escape "escape read the host's marker from inside the chroot, exit $status" \
  grep -q 'ESCAPED' <<<"$out"

step "3. The same program as a container's process: mount and pid namespaces, pivot_root"
cat >"$bundle/config.json" <<EOF
{
  "ociVersion": "1.2.0",
  "root": { "path": "rootfs" },
  "process": {
    "args": ["/escape", "$marker"], "cwd": "/", "user": { "uid": 0, "gid": 0 }, "env": ["PATH=/bin"],
    "capabilities": { "bounding": ["CAP_SYS_CHROOT"], "effective": ["CAP_SYS_CHROOT"], "permitted": ["CAP_SYS_CHROOT"] }
  },
  "linux": {
    "namespaces": [ { "type": "mount" }, { "type": "pid" } ],
    "cgroupsPath": "/$LAB_CGROUP_PARENT/lab01-pivot"
  }
}
EOF
echo "config.json: linux.namespaces [mount, pid], root.path rootfs, capabilities [CAP_SYS_CHROOT] (so chroot itself is allowed)"
show mycontainer-runtime --debug run --bundle "$bundle" lab01-pivot
status=0
rt --debug run --bundle "$bundle" lab01-pivot >"$work/out" 2>"$work/trace" || status=$?
cat "$work/out"
claim pivot-root-contains "escape found no marker after pivot_root, exit $status" \
  grep -q 'CONTAINED' "$work/out"

step "4. Why: the runtime's own trace of how / was made (--debug)"
grep -E 'pivot_root|umount2|MS_BIND\|MS_REC' "$work/trace" | sed 's/^debug: /  /'
claim trace-pivot-root "the trace shows pivot_root and the old root detached with umount2(MNT_DETACH)" \
  bash -c "grep -q 'pivot_root(\".\", \".\") = 0' '$work/trace' && grep -q 'umount2(\".\", MNT_DETACH) = 0' '$work/trace'"

step "5. The same container without a mount namespace: the runtime can only chroot"
sed -i 's/{ "type": "mount" }, //; s/lab01-pivot/lab01-chroot/' "$bundle/config.json"
echo "config.json: linux.namespaces [pid]"
show mycontainer-runtime --debug run --bundle "$bundle" lab01-chroot
status=0
rt --debug run --bundle "$bundle" lab01-chroot >"$work/out" 2>"$work/trace" || status=$?
cat "$work/out"
grep -E 'chroot\(' "$work/trace" | sed 's/^debug: /  /'
claim runtime-chroot-escapes "without a mount namespace the runtime chroots, and escape got out, exit $status" \
  bash -c "grep -q 'ESCAPED' '$work/out' && grep -q 'chroot(\".\") = 0' '$work/trace'"
