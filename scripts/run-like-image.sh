#!/usr/bin/env bash
# Runs the compiled binary the way the distroless image runs it, without a container engine:
# a read-only root holding only the binary, the glibc files it links and /etc/passwd, with /proc,
# /dev, a tmpfs /tmp and a writable /data, as uid 65532, with only the environment given here.
#
#   scripts/run-like-image.sh BINARY DATA_DIR [KEY=VALUE ...] [ARG ...]
#
# KEY=VALUE pairs become the process environment (on top of the image's own ENV); other arguments
# go to the binary (e.g. --healthcheck). Needs root (mount namespaces and chroot).
set -euo pipefail

if [ "${1:-}" != "--inside" ]; then
  exec unshare --mount --propagation private "$0" --inside "$@"
fi
shift
binary=$(realpath "$1")
data=$(realpath "$2")
shift 2

environment=(DATABASE_URL=sqlite:/data/sim-gateway.sqlite AVATAR_DIR=/data/avatars HOST=0.0.0.0 PORT=3000)
arguments=()
for item in "$@"; do
  if [[ "$item" == *=* ]]; then environment+=("$item"); else arguments+=("$item"); fi
done

root=$(mktemp -d)
mount -t tmpfs -o size=256m,mode=0755 image-root "$root"
mkdir -p "$root/proc" "$root/dev" "$root/tmp" "$root/data" "$root/etc"
cp "$binary" "$root/sim-gateway"
# The shared libraries the binary links, at the paths the dynamic loader looks for them.
for library in $(ldd "$binary" | grep -o '/[^ ]*'); do
  mkdir -p "$root$(dirname "$library")"
  cp -L "$library" "$root$library"
done
echo 'nonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin' > "$root/etc/passwd"
echo 'nonroot:x:65532:' > "$root/etc/group"
mount -o remount,ro,bind "$root"

mount -t proc proc "$root/proc"
mount --rbind /dev "$root/dev"
mount -t tmpfs -o size=64m,mode=1777 tmp "$root/tmp"
mount --bind "$data" "$root/data"
chown 65532:65532 "$data"

exec env -i "${environment[@]}" "$(command -v chroot)" --userspec=65532:65532 "$root" /sim-gateway "${arguments[@]}"
