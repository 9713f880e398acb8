#!/usr/bin/env bash
# Build the images tests and the demo need, with no container registry: debootstrap a
# root file system and `docker import` it.
#
# Usage: build-host-image.sh debian12|debian13|app-base
#   debian12, debian13  systemd test hosts (python3, systemd, sudo): cnt-test-host:<name>
#   app-base            the base the application images build FROM when no registry is
#                       reachable (python3 + venv, no systemd): cnt-app-base:bookworm
#
# Each image is cached: labelled with the hash of this recipe, it is rebuilt only when
# this file (or the suite) changes.
set -euo pipefail

name=${1:?usage: $0 debian12|debian13|app-base}
host_packages=python3,systemd,systemd-sysv,sudo,ca-certificates,iproute2,procps
case "$name" in
  debian12) suite=bookworm image=cnt-test-host:debian12 packages=$host_packages ;;
  debian13) suite=trixie image=cnt-test-host:debian13 packages=$host_packages ;;
  app-base) suite=bookworm image=cnt-app-base:bookworm packages=python3,python3-venv,ca-certificates,passwd ;;
  *) echo "unknown image: $name" >&2; exit 2 ;;
esac
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
debootstrap --variant=minbase --include="$packages" \
  "$suite" "$workdir/rootfs" "$mirror" >"$workdir/debootstrap.log" 2>&1 \
  || { tail -n 30 "$workdir/debootstrap.log" >&2; exit 1; }

# Units that cannot work inside a container only slow the boot down.
if [ -d "$workdir/rootfs/etc/systemd/system" ]; then
  for unit in systemd-modules-load.service getty.target console-getty.service \
              systemd-remount-fs.service sys-kernel-config.mount sys-kernel-debug.mount; do
    ln -sf /dev/null "$workdir/rootfs/etc/systemd/system/$unit"
  done
fi
# apt's lists are fetched on first use; do not ship them.
rm -rf "$workdir/rootfs/var/lib/apt/lists/"* "$workdir/rootfs/var/cache/apt/"*.bin
: >"$workdir/rootfs/etc/machine-id"

if [ "$name" = app-base ]; then cmd='CMD ["python3"]'; else cmd='CMD ["/lib/systemd/systemd"]'; fi
tar -C "$workdir/rootfs" -c . | docker import \
  --change "$cmd" \
  --change "LABEL cnt.recipe=$recipe_hash" \
  --change "LABEL cnt.image=$name" \
  - "$image" >/dev/null
echo "built $image (recipe $recipe_hash)"
