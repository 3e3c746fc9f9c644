#!/usr/bin/env bash
# Installs the system pieces WebGPU needs on a Debian 12 machine without a GPU:
# the Vulkan loader and Mesa's software Vulkan driver (lavapipe). Debian 12's own
# Mesa 22.x lavapipe is rejected by Dawn, so Mesa comes from bookworm-backports (25.x).
# Also installs Debian's dataset-fashion-mnist (MIT; IDX files in /usr/share/datasets/fashion-mnist),
# the demo's data when ../shared/datasets/cifar10-jpeg.tar.gz is absent.
# Idempotent: does nothing when a recent lavapipe ICD and the data set are already installed.
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

if [ "$(id -u)" -ne 0 ]; then
  SUDO=sudo
else
  SUDO=
fi
export DEBIAN_FRONTEND=noninteractive

setup_vulkan() {
  # A machine with NVIDIA's Vulkan driver does not need the software one.
  if ls /usr/share/vulkan/icd.d/nvidia_icd*.json /etc/vulkan/icd.d/nvidia_icd*.json >/dev/null 2>&1; then
    echo "setup-system: NVIDIA Vulkan driver present; not installing lavapipe"
    return 0
  fi

  if have_recent_lavapipe; then
    echo "setup-system: lavapipe already installed ($(dpkg-query -W -f='${Version}' mesa-vulkan-drivers))"
    return 0
  fi

  if ! grep -qs 'bookworm' /etc/os-release; then
    echo "setup-system: not Debian 12 (bookworm): install a Vulkan driver yourself (a GPU driver, or Mesa's"
    echo "  lavapipe ≥ 24 from your distribution, e.g. apt-get install mesa-vulkan-drivers libvulkan1)"
    return 0
  fi

  if ! grep -rqs 'bookworm-backports' /etc/apt/sources.list /etc/apt/sources.list.d/; then
    echo "setup-system: adding bookworm-backports to apt sources"
    echo 'deb http://deb.debian.org/debian bookworm-backports main' | $SUDO tee /etc/apt/sources.list.d/bookworm-backports.list >/dev/null
  fi

  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq libvulkan1
  $SUDO apt-get install -y -qq -t bookworm-backports mesa-vulkan-drivers
  echo "setup-system: installed mesa-vulkan-drivers $(dpkg-query -W -f='${Version}' mesa-vulkan-drivers)"
}

# The demo's fallback data. Debian only; a failure here is reported, not fatal (the demo then
# asks for --data).
setup_fashion_mnist() {
  if [ -f /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz ]; then
    echo "setup-system: dataset-fashion-mnist already installed"
    return 0
  fi
  if [ ! -f /etc/debian_version ] || ! command -v apt-get >/dev/null 2>&1; then
    echo "setup-system: not Debian: Fashion-MNIST is not installed (the demo needs --data, or ../shared/datasets)"
    return 0
  fi
  if ! $SUDO apt-get install -y -qq dataset-fashion-mnist; then
    $SUDO apt-get update -qq && $SUDO apt-get install -y -qq dataset-fashion-mnist \
      || { echo "setup-system: warning: could not install dataset-fashion-mnist"; return 0; }
  fi
  echo "setup-system: installed dataset-fashion-mnist (/usr/share/datasets/fashion-mnist)"
}

setup_vulkan
setup_fashion_mnist
