#!/usr/bin/env bash
# Take the documentation screenshot of the main window on a real (virtual) X server, with Qt's xcb
# platform, the way users see it; offscreen rendering differs in fonts and decorations.
# Usage: scripts/screenshot.sh [PATH]   (default docs/screenshots/main-window.png)
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
out=${1:-docs/screenshots/main-window.png}
mkdir -p "$(dirname "$out")"

if ! command -v xvfb-run >/dev/null; then
    echo "screenshot.sh: xvfb-run not found; install it with: apt-get install xvfb xauth" >&2
    exit 1
fi

# An explicit QT_QPA_PLATFORM (e.g. offscreen) would bypass the X server, so drop it.
env -u QT_QPA_PLATFORM xvfb-run -a -s "-screen 0 1280x1024x24" \
    python main.py --quit-after 1500 --screenshot "$out"
echo "wrote $out ($(stat -c %s "$out") bytes)"
