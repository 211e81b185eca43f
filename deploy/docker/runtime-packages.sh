#!/usr/bin/env bash
# runtime-packages.sh BINARY: prints, one per line, the Debian packages owning the shared
# libraries BINARY loads (ldd), so a runtime image installs exactly those. Fails when a library
# is missing or owned by no package (it would be missing from the runtime image). Libraries of
# the PyTorch wheel (under WHEEL_DIR, default /src/.venv) are the image's to copy, not apt's:
# they are listed on stderr and skipped.
set -euo pipefail
binary=$1
wheel_dir=${WHEEL_DIR:-/src/.venv}
if ldd "$binary" | grep -q 'not found'; then
  echo "runtime-packages.sh: $binary: unresolved libraries:" >&2
  ldd "$binary" | grep 'not found' >&2
  exit 1
fi
status=0
packages=()
for lib in $(ldd "$binary" | awk '$3 ~ /^\// {print $3}' | sort -u); do
  if [[ $(realpath "$lib") == "$(realpath "$wheel_dir")"/* ]]; then
    echo "runtime-packages.sh: $lib comes with the torch wheel" >&2
    continue
  fi
  # Debian 12 is usr-merged and BLAS/LAPACK go through alternatives: try the path ldd printed,
  # then its resolved path, then the /usr spelling.
  owner=$( (dpkg -S "$lib" || dpkg -S "$(realpath "$lib")" || dpkg -S "/usr$(realpath "$lib")") \
          2>/dev/null | head -n 1 || true)
  if [[ -z "$owner" ]]; then
    echo "runtime-packages.sh: $lib ($(realpath "$lib")) belongs to no package" >&2
    status=1
    continue
  fi
  owner=${owner%%:*}             # "libfoo1:amd64: /path" -> "libfoo1"
  packages+=("${owner%%,*}")     # "a, b: /path" (diverted) -> "a"
done
printf '%s\n' "${packages[@]}" | sort -u
exit "$status"
