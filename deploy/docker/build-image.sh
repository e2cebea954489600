#!/usr/bin/env bash
# Builds a Docker image holding one `agora` binary, with nothing pulled from a
# registry: the root filesystem is the binary, the shared libraries `ldd`
# lists for it and the dynamic loader, copied from this machine, imported
# with `docker import` (a `FROM scratch` image without a Dockerfile or a
# builder). Run it on a machine whose glibc is the one the binary was built
# against (the build machine, or a twin of it).
#
#   deploy/docker/build-image.sh BINARY TAG      e.g. target/release/agora agora:dev
#
# The entrypoint is `agora`, so a container runs `agora master ...`,
# `agora agent ...` or `agora marathon ...`. Debug information is stripped
# from the copy (the image of a debug build would otherwise be hundreds of
# megabytes); the binary given is not changed.
set -euo pipefail

if [[ $# -ne 2 ]]; then
  echo "usage: $0 BINARY TAG" >&2
  exit 2
fi
binary=$1
tag=$2
[[ -x $binary ]] || { echo "$0: $binary is not an executable" >&2; exit 1; }
command -v ldd >/dev/null || { echo "$0: ldd is required (libc-bin)" >&2; exit 1; }

root=$(mktemp -d "${TMPDIR:-/tmp}/agora-image.XXXXXX")
trap 'rm -rf "$root"' EXIT

mkdir -p "$root/usr/local/bin" "$root/etc" "$root/var/lib/agora"
install -d -m 1777 "$root/tmp"
cp "$binary" "$root/usr/local/bin/agora"
if command -v strip >/dev/null; then
  strip --strip-debug "$root/usr/local/bin/agora"
fi

# Every library ldd resolves ("name => /path (addr)") and the loader, which
# ldd prints as a bare absolute path. Copied with their directories so the
# paths the binary and the loader look in are the same as here.
ldd "$binary" | awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// { print $1 }' |
  sort -u | while read -r lib; do
    mkdir -p "$root$(dirname "$lib")"
    cp -L "$lib" "$root$lib"
  done
# Name resolution for glibc: /etc/hosts first (compose's extra_hosts), then
# DNS (Docker's embedded resolver). Docker supplies hosts and resolv.conf.
echo 'hosts: files dns' >"$root/etc/nsswitch.conf"
printf 'root:x:0:0:root:/root:/bin/false\nnobody:x:65534:65534:nobody:/:/bin/false\n' >"$root/etc/passwd"
printf 'root:x:0:\nnogroup:x:65534:\n' >"$root/etc/group"

tar --numeric-owner --owner=0 --group=0 -C "$root" -c . |
  docker import \
    --change 'ENTRYPOINT ["/usr/local/bin/agora"]' \
    --change 'ENV PATH=/usr/local/bin' \
    --change 'WORKDIR /' \
    - "$tag" >/dev/null
echo "built $tag from $binary"
