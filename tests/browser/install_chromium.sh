#!/usr/bin/env bash
# Debian's Chromium for the browser tests (Playwright's own browser download does not work
# here). Idempotent: does nothing when /usr/bin/chromium is already installed. Needs root.
set -euo pipefail

if [ -x /usr/bin/chromium ]; then
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "install_chromium.sh: /usr/bin/chromium is missing; run as root: apt-get install -y chromium" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
apt-get install -y -q --no-install-recommends chromium fonts-dejavu-core
/usr/bin/chromium --version
