#!/usr/bin/env bash
# Installs Debian's Chromium (+ chromium-driver) for the browser test (tests/test_app_browser.py).
# Playwright drives it through executable_path=/usr/bin/chromium; never run `playwright install`.
set -euo pipefail

if [ -x /usr/bin/chromium ]; then
    echo "Chromium is already installed: $(/usr/bin/chromium --version 2>/dev/null || echo /usr/bin/chromium)"
    exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
    echo "Chromium is missing (/usr/bin/chromium) and this script is not running as root." >&2
    echo "Install it with:  sudo apt-get update && sudo apt-get install -y chromium chromium-driver" >&2
    echo "Until then the browser test (pytest -m browser) is skipped." >&2
    exit 1
fi
if ! command -v apt-get >/dev/null 2>&1; then
    echo "Chromium is missing and apt-get is not available (not a Debian/Ubuntu system)." >&2
    echo "Install a Chromium build at /usr/bin/chromium by other means; the browser test is skipped until then." >&2
    exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update
apt-get install -y --no-install-recommends chromium chromium-driver fonts-dejavu-core
/usr/bin/chromium --version
