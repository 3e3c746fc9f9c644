#!/usr/bin/env bash
# Installs the system pieces WebGPU needs on a Debian 12 machine without a GPU:
# the Vulkan loader and Mesa's software Vulkan driver (lavapipe). Debian 12's own
# Mesa 22.x lavapipe is rejected by Dawn, so Mesa comes from bookworm-backports (25.x).
# Idempotent: does nothing when a recent lavapipe ICD is already installed.
set -euo pipefail

have_recent_lavapipe() {
  ls /usr/share/vulkan/icd.d/lvp_icd*.json >/dev/null 2>&1 || return 1
  local v
  v=$(dpkg-query -W -f='${Version}' mesa-vulkan-drivers 2>/dev/null || true)
  [ -n "$v" ] && dpkg --compare-versions "$v" ge 24 && dpkg -s libvulkan1 >/dev/null 2>&1
}

# Only Linux needs a Vulkan driver from the system (Dawn uses Metal on macOS, D3D12 on Windows).
if [ "$(uname -s)" != "Linux" ]; then
  echo "setup-system: $(uname -s): nothing to install"
  exit 0
fi
# A machine with NVIDIA's Vulkan driver does not need the software one.
if ls /usr/share/vulkan/icd.d/nvidia_icd*.json /etc/vulkan/icd.d/nvidia_icd*.json >/dev/null 2>&1; then
  echo "setup-system: NVIDIA Vulkan driver present; not installing lavapipe"
  exit 0
fi

if have_recent_lavapipe; then
  echo "setup-system: lavapipe already installed ($(dpkg-query -W -f='${Version}' mesa-vulkan-drivers))"
  exit 0
fi

if ! grep -qs 'bookworm' /etc/os-release; then
  echo "setup-system: not Debian 12 (bookworm): install a Vulkan driver yourself (a GPU driver, or Mesa's"
  echo "  lavapipe ≥ 24 from your distribution, e.g. apt-get install mesa-vulkan-drivers libvulkan1)"
  exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
  SUDO=sudo
else
  SUDO=
fi

if ! grep -rqs 'bookworm-backports' /etc/apt/sources.list /etc/apt/sources.list.d/; then
  echo "setup-system: adding bookworm-backports to apt sources"
  echo 'deb http://deb.debian.org/debian bookworm-backports main' | $SUDO tee /etc/apt/sources.list.d/bookworm-backports.list >/dev/null
fi

export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq libvulkan1
$SUDO apt-get install -y -qq -t bookworm-backports mesa-vulkan-drivers
echo "setup-system: installed mesa-vulkan-drivers $(dpkg-query -W -f='${Version}' mesa-vulkan-drivers)"
