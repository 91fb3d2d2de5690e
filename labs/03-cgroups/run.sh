#!/usr/bin/env bash
# Lab 03: cgroups, read back from their files: a 50% CPU quota, a memory
# limit and its OOM kill, a pids limit against a fork bomb, the freezer.
# See README.md.
LAB=$(cd "$(dirname "$0")" && pwd)
# shellcheck source-path=SCRIPTDIR source=../lib.sh
. "$LAB/../lib.sh"

lab_begin "Lab 03: cgroups" \
  "root; busybox-static; cgroup v1, v2 or hybrid with the cpu, cpuacct (v1), memory, pids and freezer controllers; bin/mycontainer-runtime (make build)" \
  "about 20 seconds"
need_root
need_runtime
LAYOUT=$(cgroup_layout)
[ "$LAYOUT" != none ] || refuse "no cgroup filesystem is mounted under /sys/fs/cgroup"
if [ "$LAYOUT" = v2 ]; then
  ctrls=$(cat "$(cgroup_mount unified)/cgroup.subtree_control")
  for c in cpu memory pids; do
    grep -qw "$c" <<<"$ctrls" || refuse "the $c controller is not enabled for children of the root cgroup (cgroup.subtree_control: $ctrls)"
  done
else
  for c in cpu cpuacct memory pids freezer; do
    [ -n "$(cgroup_mount "$c")" ] || refuse "no v1 hierarchy has the $c controller"
  done
fi

work=$(mktemp -d /tmp/lab03.XXXXXX)
lab_cleanup() {
  remove_containers lab03-cpu lab03-memory lab03-pids lab03-evidence
  rm -rf "$work"
}
bundle="$work/bundle"
make_rootfs "$bundle/rootfs"

echo
echo "cgroup layout: $LAYOUT"
case $LAYOUT in
v1) echo "  one hierarchy per controller: /sys/fs/cgroup/cpu, /sys/fs/cgroup/memory, ..." ;;
hybrid) echo "  v1 hierarchies hold every controller; the cgroup2 tree at $(cgroup_mount unified) only tracks processes" ;;
v2) echo "  one tree at /sys/fs/cgroup; a cgroup's files are named after their controller (cpu.max, memory.max, ...)" ;;
esac
cat <<'EOF'
  what              v1 and hybrid                           v2
  cpu quota         cpu/cpu.cfs_quota_us, cpu.cfs_period_us cpu.max ("50000 100000")
  cpu used          cpuacct/cpuacct.usage (ns)              cpu.stat usage_usec
  throttled         cpu/cpu.stat nr_throttled               cpu.stat nr_throttled
  memory limit      memory/memory.limit_in_bytes            memory.max
  oom kills         memory/memory.oom_control oom_kill      memory.events oom_kill
  pids              pids/pids.max, pids.current             pids.max, pids.current
  freeze            freezer/freezer.state (FROZEN)          cgroup.freeze (1), cgroup.events frozen 1
EOF

# The file that holds WHAT for container ID, on this host's layout.
cg() {
  local what=$1 id=$2
  if [ "$LAYOUT" = v2 ]; then
    case $what in
    quota) echo "$(cgroup_dir unified "$id")/cpu.max" ;;
    usage | cpustat) echo "$(cgroup_dir unified "$id")/cpu.stat" ;;
    memlimit) echo "$(cgroup_dir unified "$id")/memory.max" ;;
    oom) echo "$(cgroup_dir unified "$id")/memory.events" ;;
    pids.*) echo "$(cgroup_dir unified "$id")/$what" ;;
    freeze) echo "$(cgroup_dir unified "$id")/cgroup.events" ;;
    esac
  else
    case $what in
    quota) echo "$(cgroup_dir cpu "$id")/cpu.cfs_quota_us" ;;
    usage) echo "$(cgroup_dir cpuacct "$id")/cpuacct.usage" ;;
    cpustat) echo "$(cgroup_dir cpu "$id")/cpu.stat" ;;
    memlimit) echo "$(cgroup_dir memory "$id")/memory.limit_in_bytes" ;;
    oom) echo "$(cgroup_dir memory "$id")/memory.oom_control" ;;
    pids.*) echo "$(cgroup_dir pids "$id")/$what" ;;
    freeze) echo "$(cgroup_dir freezer "$id")/freezer.state" ;;
    esac
  fi
}

# CPU time used by container ID so far, in microseconds.
usage_us() {
  local f
  f=$(cg usage "$1")
  if [ "$LAYOUT" = v2 ]; then awk '$1 == "usage_usec" { print $2 }' "$f"; else echo $(($(cat "$f") / 1000)); fi
}

nr_throttled() { awk '$1 == "nr_throttled" { print $2 }' "$(cg cpustat "$1")"; }

# Prints a cgroup file, its path shortened and its content on one line.
showfile() { echo "  $1: $(tr '\n' ' ' <"$1")"; }

# config.json: process ARGS (a JSON array) and linux.resources RESOURCES.
write_config() {
  cat >"$bundle/config.json" <<EOF
{
  "ociVersion": "1.2.0",
  "root": { "path": "rootfs" },
  "process": { "args": $1, "cwd": "/", "user": { "uid": 0, "gid": 0 }, "env": ["PATH=/bin"] },
  "mounts": [ { "destination": "/proc", "type": "proc", "source": "proc" } ],
  "linux": {
    "namespaces": [ { "type": "pid" }, { "type": "mount" } ],
    "cgroupsPath": "/$LAB_CGROUP_PARENT/$3",
    "resources": $2
  }
}
EOF
  echo "config.json: linux.resources = $2"
}

start() {
  show mycontainer-runtime create "$1"\; mycontainer-runtime start "$1"
  if ! rt create --bundle "$bundle" --pid-file "$work/$1.pid" "$1" >"$work/$1.out" 2>"$work/$1.err"; then
    cat "$work/$1.err" >&2
    return 1
  fi
  rt start "$1"
}

step "1. CPU: a quota of 50% (50 ms of CPU time per 100 ms period)"
write_config '["sh", "-c", "while :; do :; done & while :; do :; done"]' \
  '{ "cpu": { "quota": 50000, "period": 100000 } }' lab03-cpu
echo "process: two busy loops, which could use two whole cores"
start lab03-cpu
showfile "$(cg quota lab03-cpu)"
[ "$LAYOUT" = v2 ] || showfile "$(dirname "$(cg quota lab03-cpu)")/cpu.cfs_period_us"
if [ "$LAYOUT" = hybrid ]; then
  [ -e "$(cgroup_dir unified lab03-cpu)/cpu.max" ] || echo "  $(cgroup_dir unified lab03-cpu)/ has no cpu.max: on hybrid the limits live in the v1 hierarchies"
fi
sleep 0.5
measure_cpu() {
  u0=$(usage_us lab03-cpu) t0=$(date +%s%N) th0=$(nr_throttled lab03-cpu)
  sleep 3
  u1=$(usage_us lab03-cpu) t1=$(date +%s%N) th1=$(nr_throttled lab03-cpu)
  cores=$(awk -v u=$((u1 - u0)) -v t=$(((t1 - t0) / 1000)) 'BEGIN { printf "%.2f", u / t }')
  echo "  $(cg usage lab03-cpu): +$((u1 - u0)) us of CPU in $(((t1 - t0) / 1000000)) ms of wall time = $cores cores"
  echo "  $(cg cpustat lab03-cpu): nr_throttled +$((th1 - th0)) (periods in which the quota ran out)"
}
measure_cpu
if awk -v c="$cores" 'BEGIN { exit !(c < 0.3) }'; then
  echo "  (less than the quota: other work on this host took the CPU, load average $(cut -d' ' -f1 /proc/loadavg); measuring once more)"
  measure_cpu
fi
claim cpu-quota "$cores cores used under a 50% quota, throttled in $((th1 - th0)) periods" \
  awk -v c="$cores" 'BEGIN { exit !(c >= 0.3 && c <= 0.65) }'

step "2. The freezer: mycontainer-runtime pause / resume"
show mycontainer-runtime pause lab03-cpu
rt pause lab03-cpu
showfile "$(cg freeze lab03-cpu)"
[ "$LAYOUT" = v2 ] && showfile "$(dirname "$(cg freeze lab03-cpu)")/cgroup.freeze"
status=$(rt state lab03-cpu | sed -n 's/.*"status": *"\([a-z]*\)".*/\1/p')
echo "  state: $status; a busy loop's state in /proc/PID/stat: $(awk '{print $3}' "/proc/$(cat "$work/lab03-cpu.pid")/stat")"
u0=$(usage_us lab03-cpu)
sleep 1
u1=$(usage_us lab03-cpu)
echo "  CPU used while frozen, over 1 s: +$((u1 - u0)) us"
frozen=no
if [ "$LAYOUT" = v2 ]; then grep -q '^frozen 1' "$(cg freeze lab03-cpu)" && frozen=yes; else [ "$(cat "$(cg freeze lab03-cpu)")" = FROZEN ] && frozen=yes; fi
claim freezer-froze "the cgroup froze ($(tr '\n' ' ' <"$(cg freeze lab03-cpu)" | xargs)), state $status, +$((u1 - u0)) us of CPU in 1 s" \
  test "$frozen" = yes -a "$status" = paused -a $((u1 - u0)) -lt 10000
show mycontainer-runtime resume lab03-cpu
rt resume lab03-cpu
u0=$(usage_us lab03-cpu)
sleep 0.5
u1=$(usage_us lab03-cpu)
showfile "$(cg freeze lab03-cpu)"
echo "  CPU used over 0.5 s after resume: +$((u1 - u0)) us"
claim freezer-thawed "running again: +$((u1 - u0)) us of CPU in 0.5 s" test $((u1 - u0)) -gt 10000
rt delete --force lab03-cpu

step "3. Memory: a 32 MiB limit, and a process that wants 64 MiB"
write_config '["sh", "-c", "dd if=/dev/zero of=/dev/null bs=64M count=1; echo \"dd: exit status $?\"; exec sleep 600"]' \
  '{ "memory": { "limit": 33554432, "swap": 33554432 } }' lab03-memory
echo "process: sh runs dd with a 64 MiB buffer, then reports dd's exit status"
start lab03-memory
showfile "$(cg memlimit lab03-memory)"
wait_for 10 grep -q 'exit status' "$work/lab03-memory.out" || true
cat "$work/lab03-memory.out"
showfile "$(cg oom lab03-memory)"
kills=$(awk '$1 == "oom_kill" { print $2 }' "$(cg oom lab03-memory)")
claim oom-kill "dd was killed by SIGKILL (exit status 137 = 128 + 9) and the cgroup counts oom_kill $kills" \
  bash -c "grep -q 'exit status 137' '$work/lab03-memory.out' && [ '$kills' -ge 1 ]"
rt delete --force lab03-memory

step "4. pids: a limit of 16, and a (bounded) fork bomb"
write_config '["sleep", "600"]' '{ "pids": { "limit": 16 } }' lab03-pids
start lab03-pids
showfile "$(cg pids.max lab03-pids)"
bomb='n=0; while [ $n -lt 100 ]; do sleep 600 & n=$((n + 1)); echo $n >/tmp/forks; done'
show mycontainer-runtime exec lab03-pids sh -c "'$bomb'"
status=0
rt exec lab03-pids sh -c "$bomb" >"$work/bomb.out" 2>&1 || status=$?
cat "$work/bomb.out"
echo "  exec's exit status: $status; sleeps started: $(cat "$bundle/rootfs/tmp/forks")"
showfile "$(cg pids.current lab03-pids)"
[ -e "$(cg pids.events lab03-pids)" ] && showfile "$(cg pids.events lab03-pids)"
forks=$(cat "$bundle/rootfs/tmp/forks")
echo "  at the limit: 1 (PID 1, sleep) + 1 (the exec'd sh) + $forks sleeps = $((forks + 2)); then sh died, so one fewer now"
events=$(awk '$1 == "max" { print $2 }' "$(cg pids.events lab03-pids)" 2>/dev/null || echo 1)
claim pids-limit "fork failed with \"$(grep -o "can't fork.*" "$work/bomb.out" | head -1)\" once $((forks + 2)) of pids.max 16 were in use, pids.events max $events" \
  bash -c "grep -q \"can't fork\" '$work/bomb.out' && [ $((forks + 2)) = 16 ] && [ '$events' -ge 1 ]"
show mycontainer-runtime kill --all lab03-pids KILL\; mycontainer-runtime delete lab03-pids
rt kill --all lab03-pids KILL
rt delete --force lab03-pids

step "5. The runtime checks itself: explain --evidence, the three limits in one bundle"
write_config '["true"]' \
  '{ "cpu": { "quota": 50000, "period": 100000 }, "memory": { "limit": 33554432, "swap": 33554432 }, "pids": { "limit": 16 } }' lab03-evidence
show mycontainer-runtime explain --evidence --bundle "$bundle" lab03-evidence
evidence_rc=0
rt explain --evidence --bundle "$bundle" lab03-evidence >"$work/evidence" 2>&1 || evidence_rc=$?
echo "  (the plan, each step with what the kernel showed after it; its cgroup writes, each file read back:)"
grep -A1 '^  write ' "$work/evidence" | grep -v '^--$' | sed 's/^/  /'
read_back=$(grep -cE '^ *✓ [^ ]+ reads ' "$work/evidence" || true)
crosses=$(grep -c '^ *✗' "$work/evidence" || true)
claim evidence "explain --evidence read $read_back cgroup files back as written, $crosses ✗, exit $evidence_rc" \
  test "$evidence_rc" = 0 -a "$crosses" = 0 -a "$read_back" -ge 3
