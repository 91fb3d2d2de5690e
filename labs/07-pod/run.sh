#!/usr/bin/env bash
# Lab 07: a pod is a set of containers that share a network namespace.
# Starts the project's CRI server, makes a pod of two busybox containers
# with crictl, and compares their namespaces from /proc. See README.md.
LAB=$(cd "$(dirname "$0")" && pwd)
# shellcheck source-path=SCRIPTDIR source=../lib.sh
. "$LAB/../lib.sh"

lab_begin "Lab 07: a pod: two containers, one network namespace" \
  "root; crictl (cri-tools); ip (iproute2); busybox-static, umoci; the CNI plugins (containernetworking-plugins); bin/mycontainer (make build)" \
  "about 20 seconds"
need_root "the CRI server's namespaces, mounts and cgroups"
# crictl from PATH, else the project's test kit (beside a development checkout, not in a user's clone)
CRICTL=$(command -v crictl || true)
for kit in "$REPO/../shared/tools/critest/bin/crictl" /work/wt/shared/tools/critest/bin/crictl; do
  if [ -z "$CRICTL" ] && [ -x "$kit" ]; then CRICTL=$kit; fi
done
[ -n "$CRICTL" ] || refuse "crictl is not installed (it comes from kubernetes-sigs/cri-tools releases, not from Debian 12: put it on PATH)"
need_tool ip iproute2
need_tool umoci umoci
need_tool node nodejs
need_busybox
need_cni_plugins
need_runtime
ip link show lab07br >/dev/null 2>&1 && refuse "a link lab07br exists already (another run of this lab?)"
subnet=$(free_subnet 10.207) || refuse "no free 10.207.N.0/24 subnet"

work=$(mktemp -d /tmp/lab07.XXXX)
root=$work/store runroot=$work/run sock=$work/run/cri.sock
cgparent=/$LAB_CGROUP_PARENT
forward_before=$(cat /proc/sys/net/ipv4/ip_forward)
crictl() { "$CRICTL" --runtime-endpoint "unix://$sock" --image-endpoint "unix://$sock" --timeout 30s "$@"; }
server_pid=
stop_server() {
  [ -n "$server_pid" ] || return 0
  kill "$server_pid" 2>/dev/null || true
  wait "$server_pid" 2>/dev/null || true
  server_pid=
}
lab_cleanup() {
  if [ -n "$server_pid" ]; then
    for p in $(crictl pods -q); do crictl stopp "$p"; crictl rmp -f "$p"; done
    stop_server
  fi
  # whatever is left in the pods' cgroups (pause, containers), then the cgroups
  # shellcheck disable=SC2038 # xargs reads pids, not file names
  find /sys/fs/cgroup -path "*$cgparent*" -name cgroup.procs -exec cat {} + | xargs -r kill -9
  sleep 0.2
  find /sys/fs/cgroup -depth -type d -path "*$cgparent*" -exec rmdir {} +
  umount_under "$work"
  ip link del lab07br
  echo "$forward_before" >/proc/sys/net/ipv4/ip_forward
  rm -rf "$work"
}
cx() { echo "+ crictl exec -s ${1:0:13} ${*:2}"; crictl exec -s "$@" | grep -v '^$' || true; } # crictl adds blank lines
cd "$work"

step "1. The CRI server, on a socket and a store of its own"
"$REPO/scripts/build-busybox-image.sh" "$work/oci" latest >/dev/null
echo "+ mycontainer --root $root load -i $work/oci --name localhost/busybox:latest    (busybox-static, as scripts/build-busybox-image.sh builds it)"
"$MC" --root "$root" --runroot "$runroot" load -i "$work/oci" --name localhost/busybox:latest
mkdir net.d
cat >net.d/10-lab07.conflist <<JSON
{"cniVersion": "0.4.0", "name": "lab07", "plugins": [
  {"type": "bridge", "bridge": "lab07br", "isGateway": true,
   "ipam": {"type": "host-local", "dataDir": "$work/ipam", "ranges": [[{"subnet": "$subnet.0/24"}]]}}]}
JSON
echo "+ mycontainer --root $root --runroot $runroot cri --socket $sock --cni-conf-dir $work/net.d --default-cgroup-parent $cgparent &"
"$MC" --root "$root" --runroot "$runroot" cri --socket "$sock" --cni-conf-dir "$work/net.d" --default-cgroup-parent "$cgparent" >server.log 2>&1 & server_pid=$!
up=no
for _ in $(seq 150); do [ -S "$sock" ] && crictl version >/dev/null 2>&1 && { up=yes; break; }; sleep 0.1; done
[ "$up" = yes ] || { echo "$LAB_NAME: the CRI server did not answer on $sock; its log:" >&2; cat server.log >&2; exit 1; }
run_shown crictl version

step "2. A pod sandbox, then two containers in it"
cat >pod.json <<JSON
{"metadata": {"name": "lab07", "namespace": "default", "uid": "lab07-uid"}, "hostname": "lab07", "log_directory": "$work/logs"}
JSON
# pid namespace mode 1 = CONTAINER, what kubelet asks for unless shareProcessNamespace is set
cat >web.json <<'JSON'
{"metadata": {"name": "web"}, "image": {"image": "localhost/busybox"}, "log_path": "web.log",
 "command": ["sh", "-c", "mkdir /tmp/www && hostname > /tmp/www/index.html && exec httpd -f -p 8080 -h /tmp/www"],
 "linux": {"security_context": {"namespace_options": {"pid": 1}}}}
JSON
cat >client.json <<'JSON'
{"metadata": {"name": "client"}, "image": {"image": "localhost/busybox"}, "log_path": "client.log",
 "command": ["sleep", "3600"],
 "linux": {"security_context": {"namespace_options": {"pid": 1}}}}
JSON
echo "+ crictl runp pod.json"
pod=$(crictl runp pod.json); echo "$pod"
echo "+ crictl create ${pod:0:13} web.json pod.json"
web=$(crictl create "$pod" web.json pod.json); echo "$web"
run_shown crictl start "$web"
echo "+ crictl create ${pod:0:13} client.json pod.json"
client=$(crictl create "$pod" client.json pod.json); echo "$client"
run_shown crictl start "$client"
run_shown crictl ps

step "3. client reaches web's httpd on 127.0.0.1: one loopback, one network namespace"
answer=
# no -T: busybox 1.35's wget crashes with it; crictl's --timeout bounds the wait
for _ in $(seq 30); do answer=$(crictl exec -s "$client" wget -q -O- http://127.0.0.1:8080/ 2>/dev/null) && break; sleep 0.2; done
echo "+ crictl exec -s ${client:0:13} wget -qO- http://127.0.0.1:8080/"
echo "$answer"
claim pod-localhost-reaches-sibling "client got \"$answer\" from web on 127.0.0.1:8080" test "$answer" = lab07
cx "$web" ip -o -4 addr show eth0
cx "$client" ip -o -4 addr show eth0
echo "The network is shared, the files are not: web's /tmp/www is not in client's mount namespace"
echo "+ crictl exec -s ${client:0:13} sh -c 'ls /tmp/www 2>&1'"
crictl exec -s "$client" sh -c 'ls /tmp/www 2>&1 || true' | grep -v '^$' || true

step "4. The kernel's view: /proc/PID/ns of the pause process and of both containers"
pause_pid=$(crictl inspectp -o go-template --template '{{.info.pid}}' "$pod")
web_pid=$(crictl inspect -o go-template --template '{{.info.pid}}' "$web")
client_pid=$(crictl inspect -o go-template --template '{{.info.pid}}' "$client")
ns() { stat -L -c %i "/proc/$1/ns/$2"; }
echo "+ stat -L -c %i /proc/PID/ns/{net,uts,ipc,pid,mnt}"
printf '%-7s %-7s %-11s %-11s %-11s %-11s %-11s\n' process pid net uts ipc pid mnt
for who in pause web client; do
  eval "p=\$${who}_pid"
  printf '%-7s %-7s %-11s %-11s %-11s %-11s %-11s\n' "$who" "$p" "$(ns "$p" net)" "$(ns "$p" uts)" "$(ns "$p" ipc)" "$(ns "$p" pid)" "$(ns "$p" mnt)"
done
echo "+ readlink /proc/$web_pid/ns/net /proc/$client_pid/ns/net"
readlink "/proc/$web_pid/ns/net" "/proc/$client_pid/ns/net"
claim pod-shares-net-ns "web, client and pause all have net:[$(ns "$web_pid" net)]" \
  test "$(ns "$web_pid" net)" = "$(ns "$client_pid" net)" -a "$(ns "$web_pid" net)" = "$(ns "$pause_pid" net)"
claim pod-separate-pid-mnt-ns "web and client differ in pid ($(ns "$web_pid" pid) vs $(ns "$client_pid" pid)) and mnt ($(ns "$web_pid" mnt) vs $(ns "$client_pid" mnt))" \
  test "$(ns "$web_pid" pid)" != "$(ns "$client_pid" pid)" -a "$(ns "$web_pid" mnt)" != "$(ns "$client_pid" mnt)"
claim pod-not-host-net "the pod's net namespace is not this shell's ($(ns $$ net))" test "$(ns "$web_pid" net)" != "$(ns $$ net)"

step "5. Stop and remove the pod, stop the server, remove its state"
run_shown crictl stopp "$pod"
run_shown crictl rmp "$pod"
left=$(crictl pods -q)
echo "+ kill $server_pid    (the CRI server)"
stop_server
run_shown ip link del lab07br
umount_under "$work"
run_shown rm -rf "$root" "$runroot"
claim pod-removed "no pod is listed, and pids $pause_pid $web_pid $client_pid are gone" \
  sh -c "[ -z '$left' ] && [ ! -d /proc/$pause_pid ] && [ ! -d /proc/$web_pid ] && [ ! -d /proc/$client_pid ]"

