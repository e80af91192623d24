#!/usr/bin/env bash
# `make vendor`: refresh the console's front-end libraries from the npm registry.
#
# The console must work on a network with no CDN, so its libraries are committed under
# services/console/static/vendor/ at the versions pinned below, each with its licence.
# This fetches each package tarball with `npm pack` (the registry only; nothing from a
# CDN), checks it against the registry's integrity hash (`npm view ... dist.integrity`),
# and copies the one built file the console serves plus the licence files.
# To upgrade: change a version here, run `make vendor`, look at the console, commit.
set -euo pipefail
cd "$(dirname "$0")/.."

# package@version  file-in-package  licence files...
PACKAGES=(
    "htmx.org@2.0.9 dist/htmx.min.js LICENSE"
    "echarts@5.6.0 dist/echarts.min.js LICENSE NOTICE"
)
DEST=services/console/static/vendor

command -v npm >/dev/null || { echo "vendor.sh: npm not found (apt-get install npm)" >&2; exit 1; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
manifest="$DEST/VERSIONS.txt"
mkdir -p "$DEST"
{
    echo "# Front-end libraries vendored by tools/vendor.sh (make vendor) from the npm registry."
    echo "# package version integrity"
} >"$work/VERSIONS.txt"
for entry in "${PACKAGES[@]}"; do
    read -r spec file licences <<<"$entry"
    name=${spec%@*}
    version=${spec##*@}
    echo "vendor.sh: $name $version"
    expected=$(npm view "$spec" dist.integrity)
    tarball=$(cd "$work" && npm pack --silent "$spec" | tail -n 1)
    actual="sha512-$(openssl dgst -sha512 -binary "$work/$tarball" | base64 -w0)"
    [ "$expected" = "$actual" ] || { echo "vendor.sh: $spec integrity mismatch" >&2; exit 1; }
    mkdir -p "$work/$name"
    tar -xzf "$work/$tarball" -C "$work/$name"
    target="$DEST/$name"
    rm -rf "$target" && mkdir -p "$target"
    cp "$work/$name/package/$file" "$target/"
    for licence in $licences; do
        cp "$work/$name/package/$licence" "$target/$licence"
    done
    echo "$name $version $expected" >>"$work/VERSIONS.txt"
done
cp "$work/VERSIONS.txt" "$manifest"
echo "vendor.sh: done; see $manifest"
