#!/usr/bin/env bash
# Lab 05: image layers are tar files; a container's root is an overlay of
# them. Builds two layers, mounts them by hand, then runs the same layers
# as an image through a registry and bin/mycontainer. See README.md.
LAB=$(cd "$(dirname "$0")" && pwd)
# shellcheck source-path=SCRIPTDIR source=../lib.sh
. "$LAB/../lib.sh"

lab_begin "Lab 05: image layers, whiteouts and overlayfs" \
  "root; overlayfs; tar; setfattr and getfattr (package attr); umoci, skopeo, docker-registry, busybox-static; bin/mycontainer (make build)" \
  "about 20 seconds"
need_root "mount, mknod, trusted.* xattrs"
need_tool tar tar
need_tool setfattr attr
need_tool getfattr attr
need_tool setpriv util-linux
need_tool curl curl
need_tool umoci umoci
need_tool skopeo skopeo
need_tool docker-registry docker-registry
need_tool node nodejs
need_busybox
need_runtime
grep -qw overlay /proc/filesystems || modprobe overlay 2>/dev/null || refuse "the kernel has no overlayfs"

work=$(mktemp -d /tmp/lab05.XXXX)
mc() { "$MC" --root "$work/store" --runroot "$work/run" "$@"; }
registry_pid=
lab_cleanup() {
  mc rm -f lab05
  umount_under "$work"
  [ -n "$registry_pid" ] && kill "$registry_pid" && wait "$registry_pid"
  rm -rf "$work"
}
cd "$work"

step "1. Two layers, as tar files"
mkdir -p l1/lab/cfg l2/lab/cfg
echo "from layer 1" >l1/lab/keep.txt
echo "from layer 1" >l1/lab/gone.txt
echo "from layer 1" >l1/lab/cfg/old-a.conf
echo "from layer 1" >l1/lab/cfg/old-b.conf
: >l2/lab/.wh.gone.txt         # whiteout: layer 2 deletes lab/gone.txt
: >l2/lab/cfg/.wh..wh..opq     # opaque: lab/cfg of the layers below is hidden
echo "from layer 2" >l2/lab/cfg/new.conf
echo "from layer 2" >l2/lab/added.txt
tar -C l1 --numeric-owner --owner=0 --group=0 -cf layer1.tar lab
tar -C l2 --numeric-owner --owner=0 --group=0 -cf layer2.tar lab
run_shown tar -tvf layer1.tar
run_shown tar -tvf layer2.tar

step "2. Given to overlayfs as they are, the whiteouts are just files"
mkdir -p raw/1 raw/2 raw/merged
tar -C raw/1 -xf layer1.tar
tar -C raw/2 -xf layer2.tar
run_shown mount -t overlay overlay -o "lowerdir=$work/raw/2:$work/raw/1" "$work/raw/merged"
run_shown ls -A raw/merged/lab raw/merged/lab/cfg
umount raw/merged

step "3. Converted as the image store does: .wh.NAME -> char device 0/0, .wh..wh..opq -> trusted.overlay.opaque=y"
mkdir -p 1 2 upper work merged
tar -C 1 -xf layer1.tar
tar -C 2 -xf layer2.tar
while read -r wh; do
  dir=$(dirname "$wh") base=$(basename "$wh")
  if [ "$base" = .wh..wh..opq ]; then
    run_shown setfattr -n trusted.overlay.opaque -v y "$dir"
  else
    run_shown mknod "$dir/${base#.wh.}" c 0 0
  fi
  rm "$wh"
done < <(find 2 -name '.wh.*')
run_shown ls -l 2/lab
run_shown getfattr --absolute-names -n trusted.overlay.opaque 2/lab/cfg
# lowerdir lists the top layer first
run_shown mount -t overlay overlay -o "lowerdir=$work/2:$work/1,upperdir=$work/upper,workdir=$work/work" "$work/merged"
run_shown find merged/lab
hand=$(cd merged && find lab | sort)
claim whiteout-hides-file "lab/gone.txt is gone from the merged view, lab/keep.txt is there" \
  test ! -e merged/lab/gone.txt -a -e merged/lab/keep.txt
claim opaque-hides-lower-dir "lab/cfg shows only $(ls merged/lab/cfg | tr '\n' ' ')" \
  test "$(ls merged/lab/cfg)" = new.conf

step "4. A write goes to upperdir; a delete is a new whiteout there"
run_shown rm merged/lab/keep.txt
run_shown ls -l upper/lab
claim delete-makes-whiteout "upper/lab/keep.txt is $(stat -c '%F %t/%T' upper/lab/keep.txt 2>/dev/null || echo missing)" \
  test "$(stat -c '%F %t/%T' upper/lab/keep.txt 2>/dev/null)" = "character special file 0/0"
umount merged

step "5. The same layers as an image, through a registry, run by bin/mycontainer"
echo "(mc is bin/mycontainer --root $work/store --runroot $work/run: a store of this lab's own, removed at the end)"
"$REPO/scripts/build-busybox-image.sh" "$work/oci" lab05 >/dev/null
run_shown umoci raw add-layer --image "$work/oci:lab05" layer1.tar
run_shown umoci raw add-layer --image "$work/oci:lab05" layer2.tar
port=$(node -e 'const s=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})')
cat >registry.yml <<YML
version: 0.1
log: {level: error, accesslog: {disabled: true}}
storage: {filesystem: {rootdirectory: $work/registry}}
http: {addr: "127.0.0.1:$port"}
YML
# under --pdeathsig: the registry dies with this script, even if it is killed
setpriv --pdeathsig KILL -- docker-registry serve registry.yml 2>registry.log & registry_pid=$!
for _ in $(seq 100); do curl -fs "http://127.0.0.1:$port/v2/" >/dev/null && break; sleep 0.1; done
image=127.0.0.1:$port/lab05:v1
echo '{"auths":{}}' >auth.json
run_shown env REGISTRY_AUTH_FILE=auth.json skopeo copy --quiet --dest-tls-verify=false "oci:$work/oci:lab05" "docker://$image"
echo "+ mc pull $image"
mc pull "$image" | tail -n 2
run_shown mc run -d --name lab05 --network none "$image" sleep 600
pid=$(mc inspect -f '{{.State.Pid}}' lab05)
run_shown mc exec lab05 find /lab
inside=$(mc exec lab05 find /lab | sed 's,^/,,' | sort)
expected=$(printf '%s\n' lab lab/added.txt lab/cfg lab/cfg/new.conf lab/keep.txt | sort)
# the hand mount before step 4's delete: keep.txt was there
claim same-view-in-container "find /lab in the container: ${inside//$'\n'/ }" \
  test "$inside" = "$expected" -a "$hand" = "$expected"

echo "+ awk '\$5 == \"/\"' /proc/$pid/mountinfo    (the container's root)"
rootline=$(awk '$5 == "/"' "/proc/$pid/mountinfo")
echo "$rootline"
lowers=$(echo "$rootline" | grep -o 'lowerdir=[^,]*' | cut -d= -f2)
top=${lowers%%:*}
echo "lowerdir has $(echo "$lowers" | tr ':' '\n' | wc -l) layers, top first; the top one is layer2.tar, converted by the store:"
run_shown ls -l "$top/lab"
run_shown getfattr --absolute-names -n trusted.overlay.opaque "$top/lab/cfg"
claim container-root-is-overlay "the root of pid $pid is overlay with $(echo "$lowers" | tr ':' '\n' | wc -l) lowerdirs" \
  grep -q ' - overlay overlay ' <<<"$rootline"
claim store-converted-whiteouts "the store's layer 2 has gone.txt as char 0/0 and cfg opaque" \
  sh -c "[ \"\$(stat -c '%F %t/%T' '$top/lab/gone.txt')\" = 'character special file 0/0' ] && getfattr --absolute-names --only-values -n trusted.overlay.opaque '$top/lab/cfg' | grep -q y"

