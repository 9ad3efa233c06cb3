#!/usr/bin/env bash
# Open an `asr report` page in headless Chromium and save a screenshot: proof that a real browser
# renders it (the tests parse the HTML; only a browser shows that the layout and images work).
#   bash benchmarks/report_screenshot.sh REPORT.html OUT.png [WIDTHxHEIGHT]
# Needs Chromium (Debian: apt-get install chromium).
set -euo pipefail
if [ $# -lt 2 ]; then
    echo "usage: $0 REPORT.html OUT.png [WIDTHxHEIGHT]" >&2
    exit 2
fi
page=$(realpath "$1")
out=$(realpath -m "$2")
size=${3:-1200x2400}
browser=$(command -v chromium || command -v chromium-browser || command -v google-chrome || true)
if [ -z "$browser" ]; then
    echo "$0: Chromium not found (Debian: apt-get install chromium)" >&2
    exit 1
fi
[ -f "$page" ] || { echo "$0: $page: no such file" >&2; exit 1; }
profile=$(mktemp -d)
trap 'rm -rf "$profile"' EXIT
# --no-sandbox: Chromium refuses to run as root with its sandbox (containers, CI)
"$browser" --headless --no-sandbox --disable-gpu --hide-scrollbars --user-data-dir="$profile" \
    --window-size="${size/x/,}" --screenshot="$out" "file://$page" >/dev/null 2>&1
[ -s "$out" ] || { echo "$0: Chromium wrote no screenshot" >&2; exit 1; }
echo "$out"
