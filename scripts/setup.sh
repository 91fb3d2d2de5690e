#!/usr/bin/env bash
# Installs everything mycontainer needs on a fresh Debian 12 machine, as root:
# the Debian packages used at run time and by the tests, the npm packages, the
# native helper, and the TypeScript build. Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."

pkgs=(runc crun podman conmon skopeo umoci docker-registry busybox-static
      containernetworking-plugins iptables uidmap jq make gcc libc6-dev
      python3 iproute2 util-linux time openssl zstd containerd tini g++ dnsmasq-base
      attr etcd-server curl wget)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing Debian packages: ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  # etcd-server's package enables and starts an etcd on 127.0.0.1:2379 where
  # an init system runs. Nothing here uses it (the tests start their own on
  # free ports; `kube server --datastore-endpoint` names the user's own), so
  # the one this install started is stopped and disabled; a later run of
  # this script leaves an etcd the user enabled alone.
  if [[ " ${missing[*]} " == *" etcd-server "* ]]; then
    if [ -d /run/systemd/system ]; then
      systemctl disable --now etcd.service >/dev/null 2>&1 || true
    elif [ -x /etc/init.d/etcd ]; then
      /etc/init.d/etcd stop >/dev/null 2>&1 || true
      update-rc.d etcd disable >/dev/null 2>&1 || true
    fi
  fi
fi

# npm 11 does not run install scripts unless approved: koffi ships prebuilt,
# the rest is plain JavaScript but better-sqlite3 (the orchestrator's
# storage), approved in package.json's allowScripts and compiled here with
# g++ (its prebuilt download needs the internet). If npm skipped its script,
# build it with npm's own node-gyp.
if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "setup: installing npm packages"
  npm ci --no-audit --no-fund --loglevel=error
fi
if [ ! -f node_modules/better-sqlite3/build/Release/better_sqlite3.node ]; then
  echo "setup: compiling better-sqlite3 (about 2 minutes)"
  (cd node_modules/better-sqlite3 && node "$(npm root -g)/npm/node_modules/node-gyp/bin/node-gyp.js" rebuild --release >/dev/null)
fi

make -s native build

# kubectl 1.20 for the orchestrator's tests (1.27-1.33 come with the host's
# dispatcher): Debian's kubernetes-client would conflict with /usr/bin/kubectl,
# so only its binary is taken out of the package.
if [ ! -x /usr/local/lib/mycontainer/kubectl-1.20 ]; then
  tmp=$(mktemp -d)
  if (cd "$tmp" && apt-get download -qq kubernetes-client >/dev/null 2>&1 && dpkg -x kubernetes-client_*.deb x); then
    install -D -m 0755 "$tmp/x/usr/bin/kubectl" /usr/local/lib/mycontainer/kubectl-1.20
    echo "setup: kubectl 1.20 in /usr/local/lib/mycontainer/kubectl-1.20"
  else
    echo "setup: kubernetes-client (kubectl 1.20) could not be downloaded; its tests will be skipped"
  fi
  rm -rf "$tmp"
fi

# Debian's redis and nginx for the orchestrator's tests (scripts/build-debian-image.sh
# makes their images from these, offline).
debs=/usr/local/lib/mycontainer/debs
for pkg in redis-tools libjemalloc2 liblzf1 liblua5.1-0 nginx; do
  if ! compgen -G "$debs/${pkg}_*.deb" >/dev/null; then
    mkdir -p "$debs"
    (cd "$debs" && apt-get download -qq "$pkg" >/dev/null 2>&1) || echo "setup: $pkg could not be downloaded; the tests that need it will be skipped"
  fi
done

# The CRI server's pod network (`mycontainer cri`), as kubelet clusters set it
# up: the first config in /etc/cni/net.d. Written only where there is none.
if ! compgen -G '/etc/cni/net.d/*.conf' >/dev/null && ! compgen -G '/etc/cni/net.d/*.conflist' >/dev/null; then
  echo "setup: writing the pod network /etc/cni/net.d/10-mycontainer.conflist (bridge mccri0, 10.85.0.0/16)"
  mkdir -p /etc/cni/net.d
  cat >/etc/cni/net.d/10-mycontainer.conflist <<'CONF'
{
  "cniVersion": "0.4.0",
  "name": "mycontainer-pods",
  "plugins": [
    {"type": "bridge", "bridge": "mccri0", "isGateway": true, "ipMasq": true, "hairpinMode": true,
     "ipam": {"type": "host-local", "ranges": [[{"subnet": "10.85.0.0/16"}]], "routes": [{"dst": "0.0.0.0/0"}]}},
    {"type": "portmap", "capabilities": {"portMappings": true}}
  ]
}
CONF
fi
