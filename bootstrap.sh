#!/bin/sh
# SPDX-License-Identifier: MIT
# bootstrap.sh — set up, build and run Quantbench on Debian 12.
#
#   sh bootstrap.sh run            install what is missing, build, open the GUI on the demo model
#   sh bootstrap.sh test           install what is missing, build, run the whole test suite
#   sh bootstrap.sh test-sanitize  the same, built with AddressSanitizer + UBSan (build-asan/)
#   sh bootstrap.sh setup          install and build only
#
# Each step is skipped when already done, so a second run is quick.
set -eu

cd "$(dirname "$0")"

PACKAGES="build-essential meson ninja-build pkg-config
  libglib2.0-dev libglib2.0-bin libgtk-4-dev libjson-glib-dev libsqlite3-dev libopenblas-dev
  ocl-icd-opencl-dev opencl-headers libclblast-dev pocl-opencl-icd
  xvfb xauth desktop-file-utils appstream-util
  adwaita-icon-theme fonts-cantarell fonts-dejavu-core"

install_packages () {
  missing=""
  for p in $PACKAGES; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
  done
  [ -z "$missing" ] && return 0
  echo "bootstrap: installing$missing"
  if [ "$(id -u)" -eq 0 ]; then sudo=""; else sudo="sudo"; fi
  $sudo apt-get update -q
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends $missing
}

build () {
  dir=$1; shift
  if [ ! -f "$dir/build.ninja" ]; then
    meson setup "$dir" "$@"
  fi
  meson compile -C "$dir"
}

run_tests () {
  dir=$1
  # UI tests need a display: give the suite a virtual one unless one exists.
  if [ -z "${DISPLAY:-}" ] && [ -z "${WAYLAND_DISPLAY:-}" ]; then
    xvfb-run -a -s "-screen 0 1920x1080x24" meson test -C "$dir" --print-errorlogs --num-processes 2
  else
    meson test -C "$dir" --print-errorlogs --num-processes 2
  fi
}

cmd=${1:-run}
case "$cmd" in
  setup)
    install_packages
    build build
    ;;
  run)
    install_packages
    build build
    export GSETTINGS_SCHEMA_DIR="$PWD/build/data"
    exec ./build/app/quantbench
    ;;
  test)
    install_packages
    build build
    run_tests build
    ;;
  test-sanitize)
    install_packages
    build build-asan -Dsanitize=true -Db_lundef=false
    run_tests build-asan
    ;;
  *)
    echo "usage: sh bootstrap.sh run|test|test-sanitize|setup" >&2
    exit 2
    ;;
esac
