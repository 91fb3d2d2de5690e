#!/usr/bin/env bash
# Lab 06: a container's network is a netns, a veth pair, a bridge and a few
# nat rules. Makes them by hand with ip and iptables, removes them, then
# looks at the same things made by CNI for `mycontainer run -p`. See README.md.
LAB=$(cd "$(dirname "$0")" && pwd)
# shellcheck source-path=SCRIPTDIR source=../lib.sh
. "$LAB/../lib.sh"

lab_begin "Lab 06: a veth, a bridge and NAT, by hand and by CNI" \
  "root; ip (iproute2), iptables, jq, wget; busybox-static, umoci; the CNI plugins (containernetworking-plugins); bin/mycontainer (make build)" \
  "about 20 seconds"
need_root "network namespaces, links, iptables"
need_tool ip iproute2
need_tool iptables iptables
need_tool iptables-save iptables
need_tool sysctl procps
need_tool umoci umoci
need_tool jq jq
need_tool wget wget
need_tool node nodejs
need_busybox
need_cni_plugins
need_runtime
ip netns list | grep -qw lab06 && refuse "a netns lab06 exists already (another run of this lab?)"
ip link show lab06br >/dev/null 2>&1 && refuse "a link lab06br exists already (another run of this lab?)"
subnet=$(free_subnet 10.206) || refuse "no free 10.206.N.0/24 subnet"

work=$(mktemp -d /tmp/lab06.XXXX)
mc() { "$MC" --root "$work/store" --runroot "$work/run" "$@"; }
forward_before=$(cat /proc/sys/net/ipv4/ip_forward)
chains_before=$(iptables-save -t nat | grep '^:' | cut -d' ' -f1)
rules=()       # the hand-made iptables rules, as added (-A/-I), to delete with -D
httpd_pid=
rule() { echo "+ iptables $*"; iptables "$@"; rules+=("$*"); }
unrule_all() {
  local r
  for r in "${rules[@]}"; do
    # shellcheck disable=SC2086 # the rules have no quoted words
    set -- $r
    local table=$2 op=$3 chain=$4; shift 4
    [ "$op" = -I ] && shift # the rule number
    echo "+ iptables -t $table -D $chain $*"
    iptables -t "$table" -D "$chain" "$@" || true
  done
  rules=()
}
lab_cleanup() {
  [ -n "$httpd_pid" ] && kill "$httpd_pid"
  unrule_all
  ip netns del lab06
  ip link del lab06br
  # what the engine made: the container, its store's bridge, the CNI chains this run made
  if [ -d "$work/store" ]; then
    mc rm -f lab06-web
    for f in "$work"/store/networks/*.json; do [ -f "$f" ] && ip link del "$(jq -r .bridge "$f")"; done
    grep -lx "$work/store" /run/mycontainer-subnets/* | xargs -r rm -f
  fi
  umount_under "$work"
  # CNI's shared port chains go when this run made them and no container's chain is left
  local made
  made=$(comm -13 <(echo "$chains_before" | sort) <(iptables-save -t nat | grep '^:' | cut -d' ' -f1 | sort) | tr -d : | grep '^CNI-HOSTPORT-')
  if [ -n "$made" ] && ! iptables-save -t nat | grep '^:CNI-' | grep -vq '^:CNI-HOSTPORT-'; then
    iptables-save -t nat | grep '^-A' | grep -E -- "-j ($(paste -sd'|' <<<"$made"))( |$)" | while read -r line; do
      eval "iptables -t nat ${line/#-A/-D}"
    done
    for c in $made; do iptables -t nat -F "$c"; done
    for c in $made; do iptables -t nat -X "$c"; done
  fi
  echo "$forward_before" >/proc/sys/net/ipv4/ip_forward
  rm -rf "$work"
}
quiet() { "$@" >/dev/null 2>&1; }
cd "$work"

step "1. A network namespace, a bridge, and a veth pair between them"
run_shown ip netns add lab06
run_shown ip link add lab06br type bridge
run_shown ip addr add "$subnet.1/24" dev lab06br
run_shown ip link set lab06br up
run_shown ip link add lab06h type veth peer name eth0 netns lab06
run_shown ip link set lab06h master lab06br up
run_shown ip -n lab06 addr add "$subnet.2/24" dev eth0
run_shown ip -n lab06 link set eth0 up
run_shown ip -n lab06 link set lo up
run_shown ip -n lab06 route add default via "$subnet.1"
run_shown ip -n lab06 -br addr
run_shown ip -br link show master lab06br
run_shown ip netns exec lab06 busybox ping -c 1 -W 2 "$subnet.1"
claim netns-pings-bridge "$subnet.2 in netns lab06 reached $subnet.1 on lab06br" \
  quiet ip netns exec lab06 busybox ping -q -c 1 -W 2 "$subnet.1"

step "2. Out: MASQUERADE rewrites the netns's source address to the host's"
run_shown sysctl -w net.ipv4.ip_forward=1
# hosts where docker runs have FORWARD's policy at DROP: let the bridge's traffic through
rule -t filter -I FORWARD 1 -i lab06br -m comment --comment lab06 -j ACCEPT
rule -t filter -I FORWARD 1 -o lab06br -m conntrack --ctstate RELATED,ESTABLISHED -m comment --comment lab06 -j ACCEPT
gw=$(ip -4 route show default | awk '{print $3; exit}')
if [ -n "$gw" ] && quiet busybox ping -q -c 1 -W 2 "$gw"; then
  echo "The host's gateway $gw answers the host. Without NAT, it gets $subnet.2 as the source, which it cannot route back:"
  run_shown ip netns exec lab06 busybox ping -q -c 1 -W 2 "$gw" || true
fi
rule -t nat -A POSTROUTING -s "$subnet.0/24" ! -o lab06br -m comment --comment lab06 -j MASQUERADE
if [ -n "$gw" ] && quiet busybox ping -q -c 1 -W 2 "$gw"; then
  run_shown ip netns exec lab06 busybox ping -q -c 1 -W 2 "$gw" || true
  run_shown iptables -t nat -L POSTROUTING -v -n
  claim masquerade-reaches-gateway "the netns pinged the host's gateway $gw through MASQUERADE" \
    quiet ip netns exec lab06 busybox ping -q -c 1 -W 2 "$gw"
else
  echo "(this host has no default gateway that answers ping: nothing outside to reach)"
fi

step "3. In: DNAT forwards a host port to busybox httpd in the netns"
mkdir www && echo "hello from netns lab06" >www/index.html
echo "+ ip netns exec lab06 busybox httpd -f -p 80 -h $work/www &"
ip netns exec lab06 busybox httpd -f -p 80 -h "$work/www" & httpd_pid=$!
port=$(free_port)
# from other machines: PREROUTING
rule -t nat -A PREROUTING -p tcp --dport "$port" -m comment --comment lab06 -j DNAT --to-destination "$subnet.2:80"
# from this host: its own packets skip PREROUTING and go through OUTPUT
rule -t nat -A OUTPUT -d 127.0.0.1 -p tcp --dport "$port" -m comment --comment lab06 -j DNAT --to-destination "$subnet.2:80"
# a packet from 127.0.0.1 may leave through lab06br, and the netns gets an address it can answer
run_shown sysctl -w net.ipv4.conf.lab06br.route_localnet=1
rule -t nat -A POSTROUTING -s 127.0.0.1 -d "$subnet.2" -m comment --comment lab06 -j MASQUERADE
echo "+ iptables -t nat -S | grep lab06"
iptables -t nat -S | grep lab06
answer=
for _ in $(seq 30); do answer=$(wget -q -T 2 -O- "http://127.0.0.1:$port/" 2>/dev/null) && break; sleep 0.1; done
echo "+ wget -qO- http://127.0.0.1:$port/"
echo "$answer"
claim hand-nat-forward-answers "127.0.0.1:$port answered \"$answer\"" test "$answer" = "hello from netns lab06"

step "4. Everything made by hand goes: the rules with -D, the netns (its eth0 and the veth peer with it), the bridge"
unrule_all
kill "$httpd_pid"; wait "$httpd_pid" 2>/dev/null || true; httpd_pid=
run_shown ip netns del lab06
run_shown ip link del lab06br
echo "$forward_before" >/proc/sys/net/ipv4/ip_forward
claim hand-made-removed "no lab06 rule, netns or link is left" \
  sh -c '! iptables-save | grep -q lab06 && ! ip netns list | grep -qw lab06 && ! ip link show lab06h 2>/dev/null && ! ip link show lab06br 2>/dev/null'

step "5. The same, made by CNI: mycontainer run -d -p HOSTPORT:80"
echo "(mc is bin/mycontainer --root $work/store --runroot $work/run: a store of this lab's own, removed at the end)"
"$REPO/scripts/build-busybox-image.sh" "$work/oci" latest >/dev/null
mc load -i "$work/oci" --name localhost/busybox:latest >/dev/null
port=$(free_port)
run_shown mc run -d --name lab06-web -p "127.0.0.1:$port:80" busybox httpd -f -p 80 -h /etc
id=$(mc inspect -f '{{.Id}}' lab06-web)
ipaddr=$(mc inspect -f '{{.NetworkSettings.IPAddress}}' lab06-web)
bridge=$(jq -r .bridge "$work/store/networks/bridge.json")
run_shown mc exec lab06-web ip -o -4 addr show eth0
peer=$(mc exec lab06-web cat /sys/class/net/eth0/iflink)
echo "eth0's peer on the host is link $peer:"
run_shown ip -br link show master "$bridge"
hostveth=$(ip -o link show | awk -F': ' -v i="$peer" '$1 == i {sub(/@.*/, "", $2); print $2}')
claim cni-veth-on-bridge "the container's eth0 ($ipaddr) pairs with host link $peer, $hostveth, on $bridge" \
  sh -c "ip -o link show master '$bridge' | grep -q '^$peer: '"
echo "+ iptables -t nat -S | grep -e CNI (the rules CNI made for $ipaddr and port $port)"
# this container's rules (its address, port or id), and the shared chains' hooks
iptables -t nat -S | grep -e "$ipaddr" -e "dport $port" -e "$id" -e '^-A [A-Z]* .*-j CNI-HOSTPORT' -e '^-A CNI-HOSTPORT-[MS]' || true
run_shown sysctl "net.ipv4.conf.$bridge.route_localnet"
claim cni-nat-rules "a DNAT of $port to $ipaddr:80 and a MASQUERADE for $ipaddr" \
  sh -c "iptables -t nat -S | grep -q -- '--dport $port .*-j DNAT --to-destination $ipaddr:80' && iptables -t nat -S | grep -q -- '-s $ipaddr/32 .*-j CNI-'"
answer=
for _ in $(seq 30); do answer=$(wget -q -T 2 -O- "http://127.0.0.1:$port/hostname" 2>/dev/null) && break; sleep 0.1; done
echo "+ wget -qO- http://127.0.0.1:$port/hostname"
echo "$answer"
claim cni-port-answers "127.0.0.1:$port answered with the container's hostname \"$answer\"" test "$answer" = "${id:0:12}"
run_shown mc rm -f lab06-web
claim cni-rules-removed "no nat rule for $ipaddr is left after rm" sh -c "! iptables -t nat -S | grep -q -e '$ipaddr'"

