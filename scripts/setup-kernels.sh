#!/usr/bin/env bash
# Set-up for the CubeCL kernels (DESIGN.md §4), idempotent, for a fresh Debian machine (root).
#
# - The `cpu` runtime builds through `tracel-llvm-bundler`, whose build script downloads a prebuilt
#   LLVM 23 unless `$XDG_DATA_HOME/tracel/tracel-llvm-23.1.0-4/.tracel-llvm-installed` exists. The
#   download cannot work on a closed network, so we install Debian's LLVM 22 and put an `llvm-config`
#   there that forwards to it.
# - The `wgpu` runtime on a machine without a GPU runs on Mesa's lavapipe (Vulkan on the CPU).
set -euo pipefail

need=()
[ -x /usr/lib/llvm-22/bin/llvm-config ] || need+=(llvm-22-dev libpolly-22-dev)
dpkg -s libzstd-dev >/dev/null 2>&1 || need+=(libzstd-dev)
dpkg -s libz3-dev >/dev/null 2>&1 || need+=(libz3-dev)
if [ "${TAILOR_WGPU:-1}" = 1 ]; then
  dpkg -s mesa-vulkan-drivers >/dev/null 2>&1 || need+=(mesa-vulkan-drivers)
  dpkg -s libvulkan1 >/dev/null 2>&1 || need+=(libvulkan1)
fi
if [ ${#need[@]} -gt 0 ]; then
  echo "setup-kernels: installing ${need[*]}" >&2
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}" >/dev/null
fi

data="${XDG_DATA_HOME:-$HOME/.local/share}/tracel/tracel-llvm-23.1.0-4"
if [ ! -f "$data/.tracel-llvm-installed" ] || [ ! -x "$data/bin/llvm-config" ]; then
  mkdir -p "$data/bin"
  cat >"$data/bin/llvm-config" <<'SH'
#!/bin/sh
# Forwards to Debian's LLVM 22 (see scripts/setup-kernels.sh); links z3 by name, not by path.
/usr/lib/llvm-22/bin/llvm-config "$@" | sed -e 's#[^ ]*/libz3\.so[^ ]*#-lz3#g'
SH
  chmod +x "$data/bin/llvm-config"
  touch "$data/.tracel-llvm-installed"
fi
