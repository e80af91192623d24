#!/usr/bin/env bash
# Debian's chromium for the console's browser tests (tests/console), installed with apt-get
# when /usr/bin/chromium is missing, as .ci/promtool.sh installs promtool. Playwright drives
# this binary (executable_path=/usr/bin/chromium); it never downloads a browser of its own.
set -euo pipefail

BROWSER=/usr/bin/chromium
fail() {
    echo "chromium.sh: $*" >&2
    exit 1
}
[ -x "$BROWSER" ] && exit 0
sudo=()
if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null || fail "need root or sudo to apt-get install chromium"
    sudo=(sudo)
fi
command -v apt-get >/dev/null || fail "apt-get not found; install Debian's chromium by hand"
echo "chromium.sh: installing chromium with apt-get" >&2
"${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq
"${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    chromium fonts-noto-cjk >/dev/null
[ -x "$BROWSER" ] || fail "$BROWSER still missing after apt-get install chromium"
