#!/bin/bash
# Make a bare git repository (branch main) of this working tree as it is now: tracked
# and untracked files, not ignored ones, committed fresh. The bootstrap scenario serves
# it over HTTP (git's "dumb" protocol) as the instances' remote. The commit is signed
# with the key in $GNUPGHOME named by $CNT_SIGNING_KEY (the team's key, as the
# instances' keyring trusts it).
# Usage (from the project's root): GNUPGHOME=... CNT_SIGNING_KEY=... make-served-repo.sh DEST.git
set -euo pipefail
dest=${1:?usage: $0 DEST.git}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
git ls-files -z --cached --others --exclude-standard --deduplicate \
  | while IFS= read -r -d '' f; do [ -e "$f" ] || [ -L "$f" ] && printf '%s\0' "$f"; done \
  | xargs -0 cp -a --parents -t "$work"
git -C "$work" init -q -b main
git -C "$work" add -A
git -C "$work" -c user.name=molecule -c user.email=molecule@example.invalid \
  -c user.signingkey="${CNT_SIGNING_KEY:?the key to sign with}" commit -q -S -m "served by the bootstrap scenario"
rm -rf "$dest"
git clone -q --bare "$work" "$dest"
git -C "$dest" update-server-info
echo "served $(git -C "$dest" rev-parse main) at $dest"
