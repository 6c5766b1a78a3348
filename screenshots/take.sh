#!/bin/sh
# SPDX-License-Identifier: MIT
# screenshots/take.sh — regenerates the PNGs in this folder.
#
#   sh screenshots/take.sh [BUILD-DIR] [MODEL]
#
# Builds the screenshot program in BUILD-DIR (default build/), then drives
# the workbench under a virtual X server: the built-in demo model (or
# MODEL), a few quantization runs, and the plan, histogram, experiments
# and comparison views saved as PNG.  With the reference data (../shared,
# or QB_SHARED_DIR) it also evaluates stories260K's plans on TinyStories
# (evaluation.png, compare-kld.png).
set -eu
cd "$(dirname "$0")/.."
build=${1:-build}
[ -f "$build/build.ninja" ] || meson setup "$build"
# A build configured before this folder existed does not know the target yet.
meson compile -C "$build" take-screenshots 2>/dev/null \
  || { meson setup --reconfigure "$build" >/dev/null && meson compile -C "$build" take-screenshots; }
export GSETTINGS_BACKEND=memory GSETTINGS_SCHEMA_DIR="$PWD/$build/data"
[ -n "${QB_SHARED_DIR:-}" ] || { [ -d ../shared/models ] && QB_SHARED_DIR="$(cd ../shared && pwd)" && export QB_SHARED_DIR; } || true
shift $(( $# > 0 ? 1 : 0 ))
exec xvfb-run -a -s "-screen 0 1920x1080x24" "$build/screenshots/take-screenshots" screenshots "$@"
