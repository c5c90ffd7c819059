#!/usr/bin/env bash
# Debian's Chromium for the browser tests (Playwright's own browser download does not work
# here), with fonts: DejaVu for text and Noto Color Emoji so reactions in the screenshots show
# as emoji, not as empty boxes. Idempotent: does nothing when every package is installed.
# Needs root.
set -euo pipefail

PACKAGES=(chromium fonts-dejavu-core fonts-noto-color-emoji)
missing=()
for package in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done
if [ "${#missing[@]}" -eq 0 ]; then
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "install_chromium.sh: missing ${missing[*]}; run as root: apt-get install -y ${missing[*]}" >&2
  # Without Chromium the browser tests cannot run; without a font they only look worse.
  [ -x /usr/bin/chromium ] && exit 0
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
apt-get install -y -q --no-install-recommends "${missing[@]}"
/usr/bin/chromium --version
