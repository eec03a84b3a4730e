#!/usr/bin/env bash
# Take the README's screenshots (main window, record dialog) by composing a song on the default model in
# the real app: on a virtual X server with Qt's xcb platform, the way users see it (offscreen rendering
# differs in fonts and decorations), and a JACK dummy sound card of its own for playing and recording.
# Usage: scripts/screenshot.sh [OUT_DIR]   (default docs/screenshots)
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
out=${1:-docs/screenshots}
mkdir -p "$out"

for tool in xvfb-run jackd jack_wait; do
    if ! command -v "$tool" >/dev/null; then
        echo "screenshot.sh: $tool not found; install it with: apt-get install xvfb xauth jackd2" >&2
        exit 1
    fi
done

# A JACK server of our own, never a musician's running session; clients must not start another.
export JACK_DEFAULT_SERVER="cocompose-screenshots-$$" JACK_NO_START_SERVER=1 JACK_NO_AUDIO_RESERVATION=1
jackd --no-realtime -d dummy -r 48000 -p 256 -C 2 -P 2 >/dev/null 2>&1 &
jackd_pid=$!
# PortAudio cannot shut down once its server is gone, so the server outlives the app.
trap 'kill "$jackd_pid" 2>/dev/null; wait "$jackd_pid" 2>/dev/null || true' EXIT
jack_wait -w -t 10 >/dev/null 2>&1

# An explicit QT_QPA_PLATFORM (e.g. offscreen) would bypass the X server, so drop it.
env -u QT_QPA_PLATFORM xvfb-run -a -s "-screen 0 1280x1024x24" python scripts/screenshots.py "$out"
