#!/usr/bin/env bash
# Installs exactly the Debian 12 packages harvest's build, tests, benchmarks and demo need.
# Idempotent: packages already present are not touched, and apt is not called at all when
# everything is installed. Run as root.
set -euo pipefail

PACKAGES=(
  # toolchain
  cmake g++ ninja-build ccache pkg-config git
  # LibTorch 1.13 (CPU) and a fast BLAS for it (the default netlib BLAS is ~20x slower)
  libtorch-dev libopenblas0-openmp
  # header-only and small libraries
  catch2 libtomlplusplus-dev libspdlog-dev libfmt-dev libcli11-dev nlohmann-json3-dev
  # control plane, data, checkpoints
  libzmq3-dev libsodium-dev capnproto libcapnp-dev
  libavformat-dev libavcodec-dev libswscale-dev libavutil-dev
  libhdf5-dev libxxhash-dev libpcre2-dev zlib1g-dev
  # Gloo headers for LibTorch's c10d ProcessGroupGloo (CPU collectives)
  libgloo-dev
  # independent references used by tests and bench/ only (never by the product at run time)
  ffmpeg chromium python3 python3-torch python3-av python3-h5py python3-numpy python3-regex python3-xxhash
)

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if ((${#missing[@]})); then
  if [[ $(id -u) -ne 0 ]]; then
    echo "setup.sh: missing packages (${missing[*]}); run as root to install them" >&2
    exit 1
  fi
  echo "setup.sh: installing ${#missing[@]} packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}"
else
  echo "setup.sh: all ${#PACKAGES[@]} packages present"
fi
