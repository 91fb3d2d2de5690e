#!/usr/bin/env bash
# Lab 02: the eight namespaces, one added per step, each shown from the
# host and from inside, with the syscall that made it. See README.md.
LAB=$(cd "$(dirname "$0")" && pwd)
# shellcheck source-path=SCRIPTDIR source=../lib.sh
. "$LAB/../lib.sh"

lab_begin "Lab 02: namespaces, one at a time" \
  "root; busybox-static; util-linux (ipcmk, ipcrm); iproute2 (ip); bin/mycontainer-runtime (make build); user namespaces enabled" \
  "about 15 seconds"
need_root
need_tool ipcmk util-linux
need_tool ip iproute2
need_runtime
[ -e /proc/self/ns/user ] || refuse "this kernel has no user namespaces (CONFIG_USER_NS)"
[ "$(cat /proc/sys/user/max_user_namespaces 2>/dev/null || echo 1)" != 0 ] || refuse "user namespaces are disabled (/proc/sys/user/max_user_namespaces is 0)"

work=$(mktemp -d /tmp/lab02.XXXXXX)
chmod 755 "$work" # the user namespace's root (uid 100000) must reach its rootfs
STEPS=(uts pid mount network ipc user cgroup time)
shm_id=
lab_cleanup() {
  remove_containers "${STEPS[@]/#/lab02-}" lab02-evidence
  [ -n "$shm_id" ] && ipcrm -m "$shm_id"
  rm -rf "$work"
}
bundle="$work/bundle"
make_rootfs "$bundle/rootfs"
# /proc/PID/ns/ names are shorter than the config's types.
declare -A NSFILE=([uts]=uts [pid]=pid [mount]=mnt [network]=net [ipc]=ipc [user]=user [cgroup]=cgroup [time]=time)
UPTIME_OFFSET=864000 # ten days, for the time namespace

# config.json for the namespaces given, plus what each needs to be seen;
# container CT_ID (default lab02-LAST) runs CT_ARGS (default: print the uptime, then sleep).
write_config() {
  local types='' t extra=''
  local args=${CT_ARGS:-'["sh", "-c", "cat /proc/uptime; exec sleep 600"]'}
  for t in "$@"; do types+="${types:+, }{ \"type\": \"$t\" }"; done
  case " $* " in *" user "*) extra+=',
    "uidMappings": [ { "containerID": 0, "hostID": 100000, "size": 65536 } ],
    "gidMappings": [ { "containerID": 0, "hostID": 100000, "size": 65536 } ]' ;; esac
  case " $* " in *" time "*) extra+=",
    \"timeOffsets\": { \"monotonic\": { \"secs\": $UPTIME_OFFSET }, \"boottime\": { \"secs\": $UPTIME_OFFSET } }" ;; esac
  cat >"$bundle/config.json" <<EOF
{
  "ociVersion": "1.2.0",
  "root": { "path": "rootfs" },
  "hostname": "lab02",
  "process": { "args": $args, "cwd": "/", "user": { "uid": 0, "gid": 0 }, "env": ["PATH=/bin"] },
  "mounts": [ $(case " $* " in *" mount "*) echo '{ "destination": "/proc", "type": "proc", "source": "proc" }' ;; esac) ],
  "linux": {
    "namespaces": [ $types ],
    "cgroupsPath": "/$LAB_CGROUP_PARENT/${CT_ID:-lab02-${!#}}"$extra
  }
}
EOF
}

# Starts the container of one step; sets ID and PID.
start_step() {
  ID=lab02-$1
  if ! rt --debug create --bundle "$bundle" --pid-file "$work/$ID.pid" "$ID" >"$work/$ID.out" 2>"$work/$ID.trace"; then
    grep -v '^debug:' "$work/$ID.trace" >&2
    return 1
  fi
  rt start "$ID"
  PID=$(cat "$work/$ID.pid")
}

# Gone, or a zombie that nobody has reaped yet.
pid_gone() {
  [ ! -e "/proc/$1/stat" ] || grep -q '^[0-9]* ([^)]*) Z' "/proc/$1/stat" 2>/dev/null
}

# kill, then delete; --force because a killed process that nobody has reaped
# yet (its parent is the host's init now) still reads as running.
stop_step() {
  rt kill "$ID" KILL
  wait_for 5 pid_gone "$PID"
  rt delete --force "$ID"
}

# The namespace inodes of this shell and of the container's process.
compare_ns() {
  local f=${NSFILE[$1]}
  HOST_NS=$(readlink "/proc/$$/ns/$f")
  CT_NS=$(readlink "/proc/$PID/ns/$f")
  echo "  /proc/PID/ns/$f: host $HOST_NS, container $CT_NS"
}

trace() {
  grep -E "$1" "$work/$ID.trace" | sed -E 's/^debug: //; s/^time="[^"]*" level=debug msg="(.*)"$/\1/; s/^/  trace: /' || true
}

n=0
done_types=()
for t in "${STEPS[@]}"; do
  n=$((n + 1))
  if [ "$t" = time ] && [ ! -e /proc/self/ns/time ]; then
    step "$n. time: SKIPPED, this kernel has no time namespace (Linux >= 5.6)"
    continue
  fi
  done_types+=("$t")
  if [ "$t" = user ]; then
    # The container's root is uid 100000 on the host: its files must be its own.
    chown -R 100000:100000 "$bundle/rootfs"
  fi
  write_config "${done_types[@]}"
  step "$n. + $t   (config: linux.namespaces[$((${#done_types[@]} - 1))].type = \"$t\"; now: ${done_types[*]})"
  start_step "$t"
  compare_ns "$t"
  case $t in
  uts)
    trace 'unshare\(CLONE_NEW|sethostname'
    host=$(hostname)
    inside=$(rt exec "$ID" hostname)
    echo "  hostname: host \"$host\", container \"$inside\"   (config: hostname)"
    claim uts "own uts namespace, hostname $inside inside, $host on the host" \
      test "$HOST_NS" != "$CT_NS" -a "$inside" = lab02 -a "$host" = "$(hostname)"
    ;;
  pid)
    trace 'unshare\(CLONE_NEW'
    nspid=$(grep NSpid "/proc/$PID/status")
    inside=$(rt exec "$ID" sh -c 'echo $PPID $$')
    echo "  /proc/$PID/status: $nspid   (its pid on the host, then in its namespace)"
    echo "  an exec'd sh inside: parent pid, own pid = $inside   (0: its parent is outside the namespace)"
    claim pid "process $PID on the host is PID ${nspid##*[[:space:]]} in its namespace" \
      test "$HOST_NS" != "$CT_NS" -a "${nspid##*[[:space:]]}" = 1
    ;;
  mount)
    trace 'unshare\(CLONE_NEW|mount\("proc"|pivot_root\(|umount2'
    echo "  host: $(wc -l </proc/$$/mountinfo) mounts in /proc/$$/mountinfo; container: /proc/$PID/mountinfo holds"
    sed 's/^/    /' "/proc/$PID/mountinfo"
    echo "  + mycontainer-runtime exec $ID ps   (its /proc is of its pid namespace)"
    ps_out=$(rt exec "$ID" ps)
    sed 's/^/    /' <<<"$ps_out"
    claim mount "own mount table: / is the rootfs, /proc of its own; ps inside sees $(($(wc -l <<<"$ps_out") - 1)) processes" \
      bash -c "[ '$HOST_NS' != '$CT_NS' ] && head -1 /proc/$PID/mountinfo | grep -q ' $bundle/rootfs / ' && [ \$(grep -c . <<<'$ps_out') -le 3 ]"
    ;;
  network)
    trace 'unshare\(CLONE_NEW'
    echo "  host: $(ip -o link show | awk -F': ' '{printf "%s ", $2}')"
    inside=$(rt exec "$ID" ip -o link show)
    echo "  container: $(awk -F': ' '{printf "%s ", $2}' <<<"$inside")"
    claim network "only a loopback inside, and it is down" \
      bash -c "[ '$HOST_NS' != '$CT_NS' ] && [ \$(grep -c . <<<'$inside') = 1 ] && grep -q '^1: lo: <' <<<'$inside' && ! grep -q '<[^>]*UP' <<<'$inside'"
    ;;
  ipc)
    trace 'unshare\(CLONE_NEW'
    shm_id=$(ipcmk -M 4096 | grep -o '[0-9]*$')
    echo "  host: ipcmk -M 4096 made shared memory segment $shm_id; /proc/sysvipc/shm on the host:"
    awk -v id="$shm_id" '$2 == id {print "    key " $1 " shmid " $2 " size " $4}' /proc/sysvipc/shm
    inside=$(rt exec "$ID" cat /proc/sysvipc/shm)
    echo "  container: /proc/sysvipc/shm holds $(($(wc -l <<<"$inside") - 1)) segments"
    claim ipc "the host's segment $shm_id is not in the container's ipc namespace" \
      bash -c "[ '$HOST_NS' != '$CT_NS' ] && ! awk '{print \$2}' <<<'$inside' | grep -qx '$shm_id'"
    ipcrm -m "$shm_id"
    shm_id=
    ;;
  user)
    trace 'nsexec container setup'
    rt explain --bundle "$bundle" | grep NEWUSER | sed 's/^ */  explain: /'
    echo "  host: /proc/$$/uid_map: $(xargs </proc/$$/uid_map)"
    echo "  container: /proc/$PID/uid_map: $(xargs <"/proc/$PID/uid_map")   (config: linux.uidMappings)"
    inside=$(rt exec "$ID" sh -c 'id; ls -ln / | grep " bin$"')
    owner=$(stat -c %u "/proc/$PID")
    echo "  inside: $(head -1 <<<"$inside"); on the host the process belongs to uid $owner"
    echo "  ls -ln / inside: $(tail -1 <<<"$inside" | awk '{print $3, $4, $NF}'); on the host: $(stat -c '%u %g' "$bundle/rootfs/bin") bin"
    claim user "uid 0 inside is uid $owner on the host (uid_map $(xargs <"/proc/$PID/uid_map"))" \
      test "$HOST_NS" != "$CT_NS" -a "$owner" = 100000 -a "${inside%% *}" = "uid=0(root)"
    ;;
  cgroup)
    trace 'NEWCGROUP'
    inside=$(rt exec "$ID" cat /proc/self/cgroup)
    echo "  host reads /proc/$PID/cgroup: $(grep -E '^0::|pids' "/proc/$PID/cgroup" | xargs)"
    echo "  container reads /proc/self/cgroup: $(grep -E '^0::|pids' <<<"$inside" | xargs)"
    claim cgroup "the container sees its own cgroup as /" \
      bash -c "[ '$HOST_NS' != '$CT_NS' ] && grep -q '^0::/$' <<<'$inside' && grep -q '^0::/$LAB_CGROUP_PARENT/$ID' /proc/$PID/cgroup"
    ;;
  time)
    trace 'NEWTIME|timens_offsets'
    echo "  kernel: /proc/$PID/timens_offsets: $(xargs <"/proc/$PID/timens_offsets")   (config: linux.timeOffsets)"
    host_up=$(cut -d' ' -f1 /proc/uptime)
    ct_up=$(head -1 "$work/$ID.out" | cut -d' ' -f1)
    echo "  uptime: host ${host_up}s, container ${ct_up}s (its own cat /proc/uptime at start)"
    diff=$(awk -v a="$ct_up" -v b="$host_up" 'BEGIN { printf "%d", a - b }')
    claim time "the container's clock runs ${diff}s ahead of the host's (offset $UPTIME_OFFSET)" \
      test "$HOST_NS" != "$CT_NS" -a "$diff" -gt $((UPTIME_OFFSET - 60)) -a "$diff" -le "$UPTIME_OFFSET"
    ;;
  esac
  if [ "$t" = "${STEPS[-1]}" ]; then
    echo "  all namespaces of this last container, host vs container:"
    for f in uts pid mnt net ipc user cgroup time; do
      [ -e "/proc/$PID/ns/$f" ] && printf '    %-7s %-20s %s\n' "$f" "$(readlink "/proc/$$/ns/$f")" "$(readlink "/proc/$PID/ns/$f")"
    done
  fi
  stop_step
done

step "$((n + 1)). The runtime checks itself: explain --evidence on the last bundle (${done_types[*]})"
# The same config, with a process that ends: explain --evidence runs it to the end.
CT_ID=lab02-evidence CT_ARGS='["cat", "/proc/uptime"]' write_config "${done_types[@]}"
show mycontainer-runtime explain --evidence --bundle "$bundle" lab02-evidence
evidence_rc=0
rt explain --evidence --bundle "$bundle" lab02-evidence >"$work/evidence" 2>&1 || evidence_rc=$?
echo "  (its $(grep -c . "$work/evidence") lines are the plan, step by step, each with what the kernel showed after it; the namespaces:)"
sed -n '/^  kernel: the init.s namespaces/,/^$/p' "$work/evidence" | grep -v '^$' | sed 's/^/  /'
ticks=$(grep -c '^ *✓' "$work/evidence" || true)
crosses=$(grep -c '^ *✗' "$work/evidence" || true)
new_ns=$(grep -cE '^ *✓ [a-z]+ \(/proc/[0-9]+/ns/[a-z_]+\): new: ' "$work/evidence" || true)
echo "  findings: $ticks ✓, $crosses ✗; exit status $evidence_rc"
claim evidence "explain --evidence: $new_ns of ${#done_types[@]} namespaces new (inode unlike the host's), $ticks findings ✓, $crosses ✗, exit $evidence_rc" \
  test "$evidence_rc" = 0 -a "$crosses" = 0 -a "$new_ns" = "${#done_types[@]}"
