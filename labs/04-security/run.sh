#!/usr/bin/env bash
# Lab 04: capabilities, no_new_privs and seccomp: a call refused, and the
# rule that refused it, read back from /proc/self/status. See README.md.
LAB=$(cd "$(dirname "$0")" && pwd)
# shellcheck source-path=SCRIPTDIR source=../lib.sh
. "$LAB/../lib.sh"

lab_begin "Lab 04: capabilities, no_new_privs, seccomp" \
  "root; gcc and a static libc (packages gcc, libc6-dev); busybox-static; capsh (libcap2-bin) optional; a kernel with seccomp filters; bin/mycontainer-runtime (make build)" \
  "about 10 seconds"
need_root
need_tool gcc gcc
[ -f "$(gcc -print-file-name=libc.a)" ] || refuse "gcc cannot link statically: libc.a is missing (Debian package: libc6-dev)"
grep -q '^Seccomp:' /proc/self/status || refuse "this kernel has no seccomp (no Seccomp: line in /proc/self/status)"
need_runtime

work=$(mktemp -d /tmp/lab04.XXXXXX)
chmod 755 "$work" # uid 1000 in step 2 must reach its rootfs
IDS=(lab04-caps lab04-sysadmin lab04-suid lab04-nnp lab04-seccomp)
lab_cleanup() {
  remove_containers "${IDS[@]}"
  rm -rf "$work"
}
bundle="$work/bundle"
make_rootfs "$bundle/rootfs"
gcc -static -O2 -o "$bundle/rootfs/suid-probe" "$LAB/suid-probe.c"
chmod 4755 "$bundle/rootfs/suid-probe" # setuid root

# The capability names of a CapEff/CapBnd mask: capsh's, or ours (capability.h order).
CAPS=(chown dac_override dac_read_search fowner fsetid kill setgid setuid setpcap linux_immutable
  net_bind_service net_broadcast net_admin net_raw ipc_lock ipc_owner sys_module sys_rawio sys_chroot
  sys_ptrace sys_pacct sys_admin sys_boot sys_nice sys_resource sys_time sys_tty_config mknod lease
  audit_write audit_control setfcap mac_override mac_admin syslog wake_alarm block_suspend audit_read
  perfmon bpf checkpoint_restore)
decode_caps() {
  local mask=$((16#$1)) i out=
  if command -v capsh >/dev/null; then
    out=$(capsh --decode="$1" | cut -d= -f2)
    echo "${out:-(none)}"
    return
  fi
  for i in "${!CAPS[@]}"; do
    (((mask >> i) & 1)) && out+="${out:+,}cap_${CAPS[$i]}"
  done
  echo "${out:-(none)}"
}

# Prints the lines of /proc/self/status the process printed, decoding the masks.
show_status() {
  local key val
  { grep -E '^(CapEff|CapBnd|NoNewPrivs|Seccomp|Seccomp_filters):' "$1" || true; } | while read -r key val; do
    case $key in
    Cap*) echo "  $key $val = $(decode_caps "$val")" ;;
    *) echo "  $key $val" ;;
    esac
  done
}

STATUS="grep -E '^(CapEff|CapBnd|NoNewPrivs|Seccomp|Seccomp_filters):' /proc/self/status"

# config.json: process ARGS, USER, CAPS (a JSON array of names), NNP, then extra linux fields.
write_config() {
  cat >"$bundle/config.json" <<EOF
{
  "ociVersion": "1.2.0",
  "root": { "path": "rootfs" },
  "hostname": "lab04",
  "process": {
    "args": $1, "cwd": "/", "user": $2, "env": ["PATH=/bin"],
    "capabilities": { "bounding": $3, "effective": $3, "permitted": $3 },
    "noNewPrivileges": $4
  },
  "mounts": [ { "destination": "/proc", "type": "proc", "source": "proc" } ],
  "linux": {
    "namespaces": [ { "type": "pid" }, { "type": "mount" }, { "type": "uts" } ],
    "cgroupsPath": "/$LAB_CGROUP_PARENT/$6"$5
  }
}
EOF
}

# Runs container ID in the foreground: its output in $work/ID.out, the trace in $work/ID.trace.
run() {
  show mycontainer-runtime --debug run "$1"
  rt --debug run --bundle "$bundle" "$1" >"$work/$1.out" 2>"$work/$1.trace" || true
  grep -v '^debug:\|level=debug' "$work/$1.trace" >>"$work/$1.out" || true
}

RUNC_CAPS='["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]'
ROOT='{ "uid": 0, "gid": 0 }'

step "1. Capabilities: root in the container, without CAP_SYS_ADMIN"
write_config "[\"sh\", \"-c\", \"exec 2>&1; $STATUS; hostname changed; echo hostname: exit status \$?\"]" "$ROOT" "$RUNC_CAPS" true "" lab04-caps
echo "config.json: process.user uid 0, process.capabilities $RUNC_CAPS (runc spec's), a uts namespace"
run lab04-caps
show_status "$work/lab04-caps.out"
grep -v '^[A-Z][A-Za-z_]*:' "$work/lab04-caps.out" | sed 's/^/  /'
claim cap-refused "uid 0 without CAP_SYS_ADMIN: sethostname failed with EPERM" \
  grep -q 'sethostname: Operation not permitted' "$work/lab04-caps.out"

step "2. The same, with CAP_SYS_ADMIN added"
write_config "[\"sh\", \"-c\", \"exec 2>&1; $STATUS; hostname changed; echo hostname: exit status \$?; hostname\"]" "$ROOT" \
  '["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE", "CAP_SYS_ADMIN"]' true "" lab04-sysadmin
run lab04-sysadmin
show_status "$work/lab04-sysadmin.out"
grep -v '^[A-Z][A-Za-z_]*:' "$work/lab04-sysadmin.out" | sed 's/^/  /'
claim cap-allows "with CAP_SYS_ADMIN the same call worked (in the container's own uts namespace; the host is still $(hostname))" \
  grep -qx 'changed' "$work/lab04-sysadmin.out"

step "3. no_new_privs: uid 1000 runs a setuid-root program"
ls -l "$bundle/rootfs/suid-probe" | awk '{print "  " $1, $3, $NF}' | sed "s|$bundle/rootfs||"
USER1000='{ "uid": 1000, "gid": 1000 }'
write_config '["/suid-probe"]' "$USER1000" "$RUNC_CAPS" false "" lab04-suid
echo "config.json: process.user uid 1000, process.noNewPrivileges false"
run lab04-suid
sed 's/^/  /' "$work/lab04-suid.out"
eff=$(grep -o 'CapEff: [0-9a-f]*' "$work/lab04-suid.out" | cut -d' ' -f2 || true)
[ -n "$eff" ] && echo "  CapEff $eff = $(decode_caps "$eff")   (execve of a setuid-root file: the bounding set)"
claim suid-gains-root "without no_new_privs the setuid bit made uid 1000 euid 0" \
  grep -q 'euid=0 ' "$work/lab04-suid.out"
write_config '["/suid-probe"]' "$USER1000" "$RUNC_CAPS" true "" lab04-nnp
echo "config.json: process.noNewPrivileges true"
run lab04-nnp
sed 's/^/  /' "$work/lab04-nnp.out"
grep 'PR_SET_NO_NEW_PRIVS' "$work/lab04-nnp.trace" | sed 's/^debug: /  trace: /'
claim nnp-blocks-suid "with no_new_privs the same execve left euid 1000, NoNewPrivs 1" \
  grep -q 'euid=1000 .*NoNewPrivs: 1' "$work/lab04-nnp.out"

step "4. seccomp: a rule that answers mkdir with an errno of its choosing"
ERRNO=122 # EDQUOT, "Disk quota exceeded": no real mkdir in /tmp would say that
SECCOMP=",
    \"seccomp\": {
      \"defaultAction\": \"SCMP_ACT_ALLOW\",
      \"syscalls\": [ { \"names\": [\"mkdir\", \"mkdirat\"], \"action\": \"SCMP_ACT_ERRNO\", \"errnoRet\": $ERRNO } ]
    }"
write_config "[\"sh\", \"-c\", \"exec 2>&1; $STATUS; touch /tmp/file && echo touch: ok; mkdir /tmp/dir; echo mkdir: exit status \$?\"]" "$ROOT" "$RUNC_CAPS" true "$SECCOMP" lab04-seccomp
echo "config.json: linux.seccomp:"
sed -n '/"seccomp"/,/^    }/p' "$bundle/config.json" | sed 's/^  //'
run lab04-seccomp
show_status "$work/lab04-seccomp.out"
grep -v '^[A-Z][A-Za-z_]*:' "$work/lab04-seccomp.out" | sed 's/^/  /'
grep 'seccomp(' "$work/lab04-seccomp.trace" | sed 's/^debug: /  trace: /'
claim seccomp-errno "mkdir failed with errno $ERRNO (\"Disk quota exceeded\"), the rule's errnoRet; touch still worked" \
  bash -c "grep -q \"can't create directory '/tmp/dir': Disk quota exceeded\" '$work/lab04-seccomp.out' && grep -q 'touch: ok' '$work/lab04-seccomp.out'"
claim seccomp-status "the kernel reports the filter: Seccomp 2 (filter mode), Seccomp_filters 1" \
  bash -c "grep -qP '^Seccomp:\s+2$' '$work/lab04-seccomp.out' && grep -qP '^Seccomp_filters:\s+1$' '$work/lab04-seccomp.out'"
