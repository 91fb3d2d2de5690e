# shellcheck shell=bash
#   lab_begin TITLE NEEDS TAKES   the opening lines, and the exit trap
#   refuse REASON                 exit 2: the lab's premise does not hold here
#   need_root, need_tool CMD PKG  the usual premises (also need_busybox,
#                                 need_runtime, need_cni_plugins)
#   claim NAME EVIDENCE CMD...    "CLAIM NAME: held (EVIDENCE)" if CMD succeeds, else FAILED
#   step TITLE, show CMD...       a step's heading; "+ CMD" (run_shown: and runs it)
#   make_rootfs DIR               a busybox root from Debian's busybox-static
#   cgroup_layout, cgroup_dir     v1 / v2 / hybrid, and where a controller's files are
#   rt ARGS...                    bin/mycontainer-runtime ($MC is bin/mycontainer)
#   free_port, free_subnet A.B    a free TCP port on 127.0.0.1; a free A.B.N /24
#   umount_under DIR              every mount below DIR, deepest first
# Exit codes: 0 every claim held, 1 a claim failed or the lab broke, 2 refused.
# A lab defines lab_cleanup(); it runs on every exit, also after a failure.

set -eEuo pipefail

LABS_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$LABS_DIR/.." && pwd)
RT="$REPO/bin/mycontainer-runtime"
# shellcheck disable=SC2034 # for the labs that source this
MC="$REPO/bin/mycontainer"
# A lab's containers live under its own cgroup parent (mycontainer-lab01, ...):
# a leftover is easy to find, and removing it races with no other lab.
LAB_CGROUP_PARENT=mycontainer-lab

LAB_NAME=lab
LAB_REFUSED=0
LAB_FAILED=0
LAB_HELD=0

lab_cleanup() { :; }

lab_on_exit() {
  local rc=$?
  set +eE
  trap - ERR
  lab_cleanup >/dev/null 2>&1
  if [ "$LAB_REFUSED" = 1 ]; then exit 2; fi
  if [ "$rc" -ne 0 ]; then
    echo "$LAB_NAME: stopped early (status $rc); cleaned up" >&2
    exit 1
  fi
  echo
  if [ "$LAB_FAILED" -gt 0 ]; then
    echo "$LAB_NAME: $LAB_FAILED claim(s) FAILED, $LAB_HELD held"
    exit 1
  fi
  echo "$LAB_NAME: all $LAB_HELD claims held"
  exit 0
}

lab_begin() {
  LAB_NAME=${1%%:*}
  LAB_NAME=${LAB_NAME,} # "lab 05: all 6 claims held"
  LAB_CGROUP_PARENT=mycontainer-lab${LAB_NAME##* }
  echo "== $1"
  echo "Needs: $2"
  echo "Takes: $3"
  trap lab_on_exit EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM
  trap 'echo "$LAB_NAME: line $LINENO: \"$BASH_COMMAND\" failed" >&2' ERR
}

refuse() {
  echo "$LAB_NAME: cannot run here: $*" >&2
  LAB_REFUSED=1
  exit 2
}

# need_root [WHY]: WHY names what needs root, in this lab.
need_root() {
  [ "$(id -u)" = 0 ] || refuse "it must run as root (${1:-containers, cgroups and chroot} need it): sudo $0"
}

need_tool() {
  command -v "$1" >/dev/null 2>&1 || refuse "$1 is missing (Debian package: $2)"
}

# bin/mycontainer-runtime, and bin/mycontainer which runs containers with it.
need_runtime() {
  if [ ! -d "$REPO/dist" ] || [ ! -x "$REPO/native/build/mycontainer-init" ]; then
    refuse "$RT is not built: run make build and make native in $REPO"
  fi
}

need_busybox() {
  [ -x /bin/busybox ] || refuse "/bin/busybox is missing (Debian package: busybox-static)"
  file_is_static /bin/busybox || refuse "/bin/busybox is not static: a rootfs holds nothing else (install busybox-static, not busybox)"
}

need_cni_plugins() {
  [ -x /usr/lib/cni/bridge ] || refuse "the CNI plugins are missing (Debian package: containernetworking-plugins)"
}

claim() {
  local name=$1 evidence=$2
  shift 2
  if "$@"; then
    echo "CLAIM $name: held ($evidence)"
    LAB_HELD=$((LAB_HELD + 1))
  else
    echo "CLAIM $name: FAILED ($evidence)"
    LAB_FAILED=$((LAB_FAILED + 1))
  fi
}

# Prints a step's heading, and the command it is about to run.
step() { echo; echo "-- $*"; }
show() { echo "+ $*"; }
run_shown() { echo "+ $*"; "$@"; }

rt() { "$RT" "$@"; }

make_rootfs() {
  local dir=$1 applet
  need_busybox
  mkdir -p "$dir"/{bin,proc,sys,dev,etc,tmp,root}
  cp /bin/busybox "$dir/bin/busybox"
  for applet in $(/bin/busybox --list); do
    [ "$applet" = busybox ] || ln -sf busybox "$dir/bin/$applet"
  done
  printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n' >"$dir/etc/passwd"
  printf 'root:x:0:\nnogroup:x:65534:\n' >"$dir/etc/group"
  chmod 1777 "$dir/tmp"
  chmod 755 "$dir"
}

# A dynamic binary names its loader (.interp) in its first bytes; a static one does not.
file_is_static() {
  [ -f "$1" ] && ! head -c 1024 "$1" | LC_ALL=C grep -aq 'ld-linux'
}

# v2 (cgroup2 at /sys/fs/cgroup), hybrid (v1 controllers plus a cgroup2
# mount under it), or v1: the same reading of /proc/self/mountinfo as
# runtime/cgroups/detect.ts.
cgroup_layout() {
  awk '{
    for (i = 7; i <= NF; i++) if ($i == "-") break
    fs = $(i + 1); mp = $5
    if (mp != "/sys/fs/cgroup" && index(mp, "/sys/fs/cgroup/") != 1) next
    if (fs == "cgroup2" && mp == "/sys/fs/cgroup") v2root = 1
    else if (fs == "cgroup2") unified = 1
    else if (fs == "cgroup") v1 = 1
  } END {
    if (v2root) print "v2"; else if (v1 && unified) print "hybrid"; else if (v1) print "v1"; else if (unified) print "v2"; else print "none"
  }' /proc/self/mountinfo
}

# Where CONTROLLER's hierarchy is mounted: its v1 mount, or the cgroup2 one on v2.
cgroup_mount() {
  awk -v want="$1" -v layout="$(cgroup_layout)" '{
    for (i = 7; i <= NF; i++) if ($i == "-") break
    fs = $(i + 1); mp = $5; n = split($(i + 3), opts, ",")
    if (index(mp, "/sys/fs/cgroup") != 1) next
    if (layout == "v2" && fs == "cgroup2") { print mp; exit }
    if (layout != "v2" && want == "unified" && fs == "cgroup2") { print mp; exit }
    if (fs == "cgroup") for (j = 1; j <= n; j++) if (opts[j] == want) { print mp; exit }
  }' /proc/self/mountinfo
}

# The directory of container ID for CONTROLLER (cgroupsPath /$LAB_CGROUP_PARENT/ID).
cgroup_dir() {
  echo "$(cgroup_mount "$1")/$LAB_CGROUP_PARENT/$2"
}

# Every cgroup mount point (v1 hierarchies and the cgroup2 one).
cgroup_mounts() {
  awk '{ for (i = 7; i <= NF; i++) if ($i == "-") break
         if (($(i + 1) == "cgroup" || $(i + 1) == "cgroup2") && index($5, "/sys/fs/cgroup") == 1) print $5 }' /proc/self/mountinfo
}

# Removes containers IDS... whatever state they are in, their cgroups if the
# runtime left any, and the lab's cgroup parent.
remove_containers() {
  local id mnt
  for id in "$@"; do
    "$RT" delete --force "$id" >/dev/null 2>&1 || true
  done
  for mnt in $(cgroup_mounts); do
    for id in "$@"; do
      [ -d "$mnt/$LAB_CGROUP_PARENT/$id" ] && rmdir "$mnt/$LAB_CGROUP_PARENT/$id" 2>/dev/null
    done
    [ -d "$mnt/$LAB_CGROUP_PARENT" ] && rmdir "$mnt/$LAB_CGROUP_PARENT" 2>/dev/null
  done
  return 0
}

# Waits up to SECONDS for CMD to succeed.
wait_for() {
  local tries=$(($1 * 10))
  shift
  while [ "$tries" -gt 0 ]; do
    if "$@"; then return 0; fi
    sleep 0.1
    tries=$((tries - 1))
  done
  return 1
}

# A TCP port free on 127.0.0.1 now (the kernel picks it).
free_port() {
  node -e 'const s=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})'
}

# The first A.B.N (N = 0..255) whose /24 no route of this host covers yet.
free_subnet() {
  local n routes
  routes=$(ip -4 route show)
  for n in $(seq 0 255); do
    grep -q "^${1//./\\.}\\.$n\\." <<<"$routes" || { echo "$1.$n"; return 0; }
  done
  return 1
}

# Unmounts every mount below DIR (not DIR itself), deepest first.
umount_under() {
  local m
  for m in $(awk -v w="$1/" 'index($5, w) == 1 {print $5}' /proc/self/mountinfo | sort -r); do
    umount -l "$m"
  done
}
