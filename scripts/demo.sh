#!/usr/bin/env bash
# The README's first command: make a busybox bundle from Debian's
# busybox-static and run a container in it with bin/mycontainer.
set -euo pipefail
cd "$(dirname "$0")/.."
MC="$PWD/bin/mycontainer"

work=$(mktemp -d /tmp/mycontainer-demo.XXXXXX)
trap '"$MC" delete --force demo >/dev/null 2>&1 || true; rm -rf "$work"' EXIT
mkdir -p "$work/rootfs"
node -e "require('./dist/test/helpers/bundle.js').makeBusyboxRootfs(process.argv[1])" "$work/rootfs"
chmod 755 "$work" "$work/rootfs"

"$MC" spec --bundle "$work"
# Run a small script instead of an interactive shell.
node -e '
const fs = require("fs"); const f = process.argv[1];
const s = JSON.parse(fs.readFileSync(f, "utf8"));
s.process.args = ["sh", "-c", "echo \"hello from $(hostname): pid $$, uid $(id -u)\"; grep -E \"^(CapEff|NoNewPrivs)\" /proc/self/status; ls /"];
s.root.readonly = true;
fs.writeFileSync(f, JSON.stringify(s, null, 2));
' "$work/config.json"

echo "+ mycontainer run --bundle $work demo"
"$MC" run --bundle "$work" demo
