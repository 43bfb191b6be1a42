#!/usr/bin/env bash
# Installs the software Vulkan driver the WebGPU tests run on: Mesa lavapipe (>= 25) and the Vulkan
# loader from Debian bookworm-backports, so that Dawn (the `webgpu` npm package) finds an adapter.
#
#   bash .ci/install-driver.sh           install when needed (idempotent: a no-op when present)
#   bash .ci/install-driver.sh --check   only report; exit 0 when a usable driver is present, else 1
#
# Needs root (or sudo) only when it has something to install. Supports Debian 12 (bookworm).
set -euo pipefail

MIN_MESA_MAJOR=25
SOURCES_FILE=/etc/apt/sources.list.d/bookworm-backports.sources
SOURCES_TEXT='Types: deb
URIs: http://deb.debian.org/debian
Suites: bookworm-backports
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg'

log() { echo "install-driver: $*" >&2; }

# Prints the installed version of a package, or nothing when it is not (fully) installed.
installed_version() {
  local status
  status=$(dpkg-query -W -f='${db:Status-Status} ${Version}' "$1" 2>/dev/null || true)
  case "$status" in
    "installed "*) echo "${status#installed }" ;;
    *) echo "" ;;
  esac
}

# True when lavapipe from Mesa >= MIN_MESA_MAJOR, its ICD file and libvulkan1 are installed.
driver_ok() {
  local mesa loader major icd
  mesa=$(installed_version mesa-vulkan-drivers)
  loader=$(installed_version libvulkan1)
  if [[ -z "$mesa" ]]; then log "mesa-vulkan-drivers is not installed"; return 1; fi
  if [[ -z "$loader" ]]; then log "libvulkan1 (the Vulkan loader) is not installed"; return 1; fi
  major=${mesa#*:}          # drop an epoch ("1:25.0.7-2" -> "25.0.7-2")
  major=${major%%.*}
  if ! [[ "$major" =~ ^[0-9]+$ ]] || (( major < MIN_MESA_MAJOR )); then
    log "mesa-vulkan-drivers $mesa is older than Mesa $MIN_MESA_MAJOR"
    return 1
  fi
  icd=$(ls /usr/share/vulkan/icd.d/lvp_icd*.json 2>/dev/null | head -n 1 || true)
  if [[ -z "$icd" ]]; then log "no lavapipe ICD file (lvp_icd*.json) under /usr/share/vulkan/icd.d"; return 1; fi
  log "ok: mesa-vulkan-drivers $mesa (lavapipe ICD $icd), libvulkan1 $loader"
  return 0
}

if [[ "${1:-}" == "--check" ]]; then
  driver_ok
  exit $?
fi
if [[ $# -gt 0 ]]; then
  echo "usage: bash .ci/install-driver.sh [--check]" >&2
  exit 2
fi

if driver_ok; then
  exit 0
fi

codename=$(. /etc/os-release 2>/dev/null && echo "${VERSION_CODENAME:-}")
if [[ "$codename" != "bookworm" ]]; then
  log "this script installs from Debian bookworm-backports, but this system is '${codename:-unknown}'."
  log "install Mesa >= $MIN_MESA_MAJOR with lavapipe (mesa-vulkan-drivers) and libvulkan1 by other means."
  exit 1
fi

SUDO=()
if [[ $(id -u) -ne 0 ]]; then
  if command -v sudo >/dev/null 2>&1; then SUDO=(sudo); else log "needs root (or sudo) to install packages"; exit 1; fi
fi

if [[ ! -f "$SOURCES_FILE" ]] || [[ "$(cat "$SOURCES_FILE")" != "$SOURCES_TEXT" ]]; then
  log "adding the bookworm-backports apt source ($SOURCES_FILE)"
  printf '%s\n' "$SOURCES_TEXT" | "${SUDO[@]}" tee "$SOURCES_FILE" >/dev/null
fi

log "installing mesa-vulkan-drivers and libvulkan1 from bookworm-backports"
"${SUDO[@]}" apt-get update
"${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive \
  apt-get install -y --no-install-recommends -t bookworm-backports mesa-vulkan-drivers libvulkan1

if ! driver_ok; then
  log "the driver is still not usable after the install"
  exit 1
fi
