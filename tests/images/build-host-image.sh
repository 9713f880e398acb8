#!/usr/bin/env bash
# Build a systemd test host image (Debian with python3, systemd and sudo) with no
# container registry: debootstrap a root file system and `docker import` it.
#
# Usage: build-host-image.sh debian12|debian13
#
# The image is cached: it is tagged cnt-test-host:<name> and labelled with the hash
# of this recipe, so it is rebuilt only when this file (or the suite) changes.
set -euo pipefail

name=${1:?usage: $0 debian12|debian13}
case "$name" in
  debian12) suite=bookworm ;;
  debian13) suite=trixie ;;
  *) echo "unknown test host image: $name" >&2; exit 2 ;;
esac

image="cnt-test-host:${name}"
recipe_hash=$( (cat "$0"; echo "$suite") | sha256sum | cut -c1-16)

current=$(docker image inspect --format '{{ index .Config.Labels "cnt.recipe" }}' "$image" 2>/dev/null || true)
if [ "$current" = "$recipe_hash" ]; then
  echo "$image is up to date (recipe $recipe_hash)"
  exit 0
fi

# The mirror is the one this machine's apt already uses (no other archive is reachable).
# deb822 "URIs:" lines and one-line "deb URL" entries; comments are skipped.
mirror=$(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.sources /etc/apt/sources.list.d/*.list 2>/dev/null \
  | awk '$1 == "URIs:" || $1 == "deb" { for (i = 2; i <= NF; i++) if ($i ~ /^https?:/) print $i }' \
  | grep -v -- '-security' | sed -n 1p || true)
mirror=${mirror:-http://deb.debian.org/debian}

workdir=$(mktemp -d)
trap 'rm -rf "$workdir"' EXIT

echo "building $image from $suite ($mirror); this takes about 90 s"
debootstrap --variant=minbase \
  --include=python3,systemd,systemd-sysv,sudo,ca-certificates,iproute2,procps \
  "$suite" "$workdir/rootfs" "$mirror" >"$workdir/debootstrap.log" 2>&1 \
  || { tail -n 30 "$workdir/debootstrap.log" >&2; exit 1; }

# Units that cannot work inside a container only slow the boot down.
for unit in systemd-modules-load.service getty.target console-getty.service \
            systemd-remount-fs.service sys-kernel-config.mount sys-kernel-debug.mount; do
  ln -sf /dev/null "$workdir/rootfs/etc/systemd/system/$unit"
done
# apt's lists are fetched on first use; do not ship them.
rm -rf "$workdir/rootfs/var/lib/apt/lists/"* "$workdir/rootfs/var/cache/apt/"*.bin
: >"$workdir/rootfs/etc/machine-id"

tar -C "$workdir/rootfs" -c . | docker import \
  --change 'CMD ["/lib/systemd/systemd"]' \
  --change "LABEL cnt.recipe=$recipe_hash" \
  --change 'LABEL cnt.purpose=test-host' \
  - "$image" >/dev/null
echo "built $image (recipe $recipe_hash)"
