#!/usr/bin/env bash
# Installs what harvest's build, tests, benchmarks and demo need on Debian 12, run as root:
# the Debian packages below, then the project's own Python environment (.venv) with PyTorch,
# whose LibTorch the build links, and the references tests and bench/ compare against
# (scripts/python-requirements.txt). Idempotent: apt is not called when every package is
# present, pip not when .venv already holds exactly the pinned requirements.
set -euo pipefail
cd "$(dirname "$0")/.."

PACKAGES=(
  # toolchain
  cmake g++ ninja-build ccache pkg-config git
  # header-only and small libraries
  catch2 libtomlplusplus-dev libspdlog-dev libfmt-dev libcli11-dev nlohmann-json3-dev
  # control plane, data, checkpoints
  libzmq3-dev libsodium-dev capnproto libcapnp-dev
  libavformat-dev libavcodec-dev libswscale-dev libavutil-dev
  libhdf5-dev libxxhash-dev libpcre2-dev zlib1g-dev
  # Gloo headers for LibTorch's c10d ProcessGroupGloo (the wheel ships c10d's headers, not Gloo's)
  libgloo-dev
  # the project's Python environment; the ffmpeg CLI and chromium are test-time references
  python3 python3-venv ffmpeg chromium
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

# --- .venv: PyTorch (LibTorch for the build) and the Python references -----------------
# Debian's python3 (3.11), not whatever python3 comes first on PATH: the venv must outlive
# the shell that made it.
VENV=.venv
REQUIREMENTS=scripts/python-requirements.txt
stamp="$VENV/.harvest-requirements"
if [[ -f "$stamp" ]] && cmp -s "$stamp" "$REQUIREMENTS" && [[ -x "$VENV/bin/python3" ]]; then
  echo "setup.sh: $VENV holds $REQUIREMENTS"
else
  start=$(date +%s)
  [[ -x "$VENV/bin/python3" ]] || /usr/bin/python3 -m venv "$VENV"
  "$VENV/bin/python3" -m pip install --quiet --disable-pip-version-check --no-input -r "$REQUIREMENTS"
  cp "$REQUIREMENTS" "$stamp"
  echo "setup.sh: $VENV installed from $REQUIREMENTS in $(( $(date +%s) - start )) s"
fi
