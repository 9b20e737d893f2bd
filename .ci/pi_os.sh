#!/usr/bin/env bash
# Raspberry Pi OS 12/13 arm64 userlands + the [edge] extra + qemu-user 10 for the emulated
# edge-client tests (tests/pi_os/), cached in ${TLEDGE_PI_CACHE:-~/.cache/tledge-pi-os}.
# Without mmdebstrap (and no root to install it) it says so and those tests skip.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v mmdebstrap >/dev/null 2>&1; then
  if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
    apt-get update -qq && apt-get install -y -qq mmdebstrap >/dev/null
  else
    echo "pi_os: no mmdebstrap and no root to install it; tests/pi_os will skip" >&2
    exit 0
  fi
fi
# The venv's pip installs the arm64 wheels (--target); a system python3 may lack pip.
python=.venv/bin/python
[ -x "$python" ] || python=python3
"$python" tests/pi_os/userland.py
