#!/usr/bin/env bash
# Builds the vmsbench container image from this checkout without pulling anything: a
# release build (or the binary given), stripped of its debug information, plus every shared
# library it loads, assembled into a root filesystem and copied into `FROM scratch`.
#
#   lab/image.sh                          # cargo build --release, tag vmsbench:latest
#   lab/image.sh --binary PATH --tag T    # use an existing binary (tests use the test build)
#
# Prints the image's tag and size. Needs docker, ldd and objcopy (binutils).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
binary=""
tag="vmsbench:latest"
while [ $# -gt 0 ]; do
    case "$1" in
        --binary) binary="$2"; shift 2 ;;
        --tag) tag="$2"; shift 2 ;;
        -h|--help) sed -n '2,9p' "$0"; exit 0 ;;
        *) echo "image.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
    esac
done
if [ -z "$binary" ]; then
    (cd "$root" && cargo build --release -p vmsbench)
    binary="$root/target/release/vmsbench"
fi
[ -x "$binary" ] || { echo "image.sh: $binary is not an executable" >&2; exit 1; }

# One staging directory per tag, so that two builds at once do not mix their files.
stage="$root/target/image/$(printf '%s' "$tag" | tr -c 'A-Za-z0-9_.-' '_')"
rm -rf "$stage"
mkdir -p "$stage/rootfs/tmp" "$stage/rootfs/etc" "$stage/rootfs/reports"
chmod 1777 "$stage/rootfs/tmp"
chmod 0777 "$stage/rootfs/reports"
objcopy --strip-debug "$binary" "$stage/rootfs/vmsbench"

# The libraries the binary loads, at the paths the dynamic loader looks for them.
ldd "$binary" | awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// { print $1 }' | sort -u |
    while read -r lib; do
        mkdir -p "$stage/rootfs$(dirname "$lib")"
        cp -L "$lib" "$stage/rootfs$lib"
    done
# Name lookups: the container runtime mounts /etc/hosts and /etc/resolv.conf; glibc reads
# these (its files and dns sources are built in).
printf 'hosts: files dns\n' > "$stage/rootfs/etc/nsswitch.conf"
printf 'root:x:0:0:root:/:/vmsbench\nvmsbench:x:65532:65532:vmsbench:/tmp:/vmsbench\n' \
    > "$stage/rootfs/etc/passwd"
printf 'root:x:0:\nvmsbench:x:65532:\n' > "$stage/rootfs/etc/group"
cp "$root/lab/Dockerfile" "$stage/Dockerfile"

old=$(docker image inspect --format '{{.Id}}' "$tag" 2>/dev/null || true)
docker build --quiet --tag "$tag" "$stage" >/dev/null
# The image this tag named before, now untagged, goes (unless a container still uses it).
new=$(docker image inspect --format '{{.Id}}' "$tag")
if [ -n "$old" ] && [ "$old" != "$new" ]; then
    docker image rm "$old" >/dev/null 2>&1 || true
fi
size=$(docker image inspect --format '{{.Size}}' "$tag")
echo "$tag $size bytes ($(( size / 1048576 )) MiB)"
