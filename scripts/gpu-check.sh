#!/usr/bin/env bash
# The GPU check in one command (docs/gpu-check.md).
#
#   scripts/gpu-check.sh --prepare
#       On the build machine: copies the header-only dependencies of the model-only build
#       (TOML++, spdlog, fmt, nlohmann-json, Catch2 and its CMake scripts) into .gpu-deps/, which
#       travels with the source tree to a GPU machine that has none of them.
#   scripts/gpu-check.sh --out DIR [--device cuda|cpu] [--build-dir DIR] [--quick]
#       Configures a model-only build against the machine's PyTorch (skipped when --build-dir
#       names a configured build), builds device_tests and harvest_step_bench, runs the device
#       tests (HARVEST_TEST_DEVICE) and the step benchmark, and writes every log and summary.json
#       into DIR. --device cpu is the CI half: the same tests and a tiny benchmark on the CPU.
#       --quick: a smaller benchmark, for a short GPU window.
#
# Progress goes to stderr. A failed step prints its log's tail and one line
# "gpu-check: FAILED <step>: <why> (log: <file>)" on stderr and the exit status is 1 (2: bad
# usage). The last stdout line is always the summary JSON.
set -uo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DEPS="$ROOT/.gpu-deps"
OUT=""
DEVICE="cuda"
BUILD=""
PREPARE=0
QUICK=0

usage() {
  echo "usage: scripts/gpu-check.sh --out DIR [--device cuda|cpu] [--build-dir DIR] [--prepare] [--quick]" >&2
  exit 2
}

while [ $# -gt 0 ]; do
  case "$1" in
    --out) [ $# -ge 2 ] || usage; OUT="$2"; shift 2 ;;
    --device) [ $# -ge 2 ] || usage; DEVICE="$2"; shift 2 ;;
    --build-dir) [ $# -ge 2 ] || usage; BUILD="$2"; shift 2 ;;
    --prepare) PREPARE=1; shift ;;
    --quick) QUICK=1; shift ;;
    -h|--help) sed -n '2,19p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "gpu-check: unknown argument '$1'" >&2; usage ;;
  esac
done

# --- --prepare: on the build machine -----------------------------------------------------------
if [ "$PREPARE" = 1 ]; then
  # Debian's packages (scripts/setup.sh installs them); the model-only build needs nothing else
  # from the system besides LibTorch, CUDA and a compiler.
  rm -rf "$DEPS"
  mkdir -p "$DEPS/include" "$DEPS/cmake"
  for dir in toml++ spdlog fmt nlohmann catch2; do
    if [ ! -d "/usr/include/$dir" ]; then
      echo "gpu-check: FAILED prepare: /usr/include/$dir is missing (install libtomlplusplus-dev libspdlog-dev libfmt-dev nlohmann-json3-dev catch2, scripts/setup.sh)" >&2
      echo '{"ok": false, "failed_step": "prepare", "error": "/usr/include/'"$dir"' is missing"}'
      exit 1
    fi
    cp -rL "/usr/include/$dir" "$DEPS/include/"
  done
  for script in Catch.cmake CatchAddTests.cmake; do
    if [ ! -f "/usr/lib/cmake/Catch2/$script" ]; then
      echo "gpu-check: FAILED prepare: /usr/lib/cmake/Catch2/$script is missing (install catch2)" >&2
      echo '{"ok": false, "failed_step": "prepare", "error": "/usr/lib/cmake/Catch2/'"$script"' is missing"}'
      exit 1
    fi
    cp "/usr/lib/cmake/Catch2/$script" "$DEPS/cmake/"
  done
  # Which versions were carried, for whoever reads a GPU run's configure log.
  dpkg-query -W -f '${Package} ${Version}\n' libtomlplusplus-dev libspdlog-dev libfmt-dev nlohmann-json3-dev catch2 >"$DEPS/VERSIONS" 2>/dev/null || true
  bytes=$(du -sb "$DEPS" | cut -f1)
  echo "gpu-check: prepared $DEPS ($bytes bytes); carry it with the source tree (docs/gpu-check.md)" >&2
  echo "{\"ok\": true, \"prepared\": \"$DEPS\", \"bytes\": $bytes}"
  exit 0
fi

# --- the check -----------------------------------------------------------------------------------
[ -n "$OUT" ] || usage
case "$DEVICE" in cuda|cpu) ;; *) echo "gpu-check: --device must be cuda or cpu, got '$DEVICE'" >&2; usage ;; esac
mkdir -p "$OUT" || { echo "gpu-check: cannot create --out $OUT" >&2; exit 2; }
OUT="$(cd "$OUT" && pwd)"
CONFIGURE=1
if [ -n "$BUILD" ] && [ -f "$BUILD/CMakeCache.txt" ]; then
  CONFIGURE=0
fi
[ -n "$BUILD" ] || BUILD="$ROOT/build-gpu"
mkdir -p "$BUILD" && BUILD="$(cd "$BUILD" && pwd)"

STEPS="$OUT/steps.tsv"  # step, exit status, seconds, one-line reason
: >"$STEPS"
# Nothing from an earlier run may be read as this run's result.
rm -f "$OUT"/{summary.json,step_bench.json,preflight.log,configure.log,build.log,device_tests.log,step_bench.log}
START=$SECONDS
# A GPU window is ~15 minutes including the machine's start: the whole check stays under 8.
if [ "$DEVICE" = cuda ]; then BUDGET=${HARVEST_GPU_CHECK_BUDGET_S:-460}; else BUDGET=${HARVEST_GPU_CHECK_BUDGET_S:-3600}; fi
FAILED=""

say() { echo "gpu-check: $*" >&2; }

# record STEP STATUS SECONDS REASON
record() { printf '%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$4" >>"$STEPS"; }

# The line of a log most likely to say what went wrong.
first_error() {
  local line
  line=$(grep -m1 -E 'CMake Error|error:|FAILED|Error:|Traceback|No such file|not found|sees no' "$1" 2>/dev/null ||
         grep -v '^\s*$' "$1" 2>/dev/null | tail -n 1)
  echo "${line:0:300}" | tr -d '\r'
}

fail_step() {  # STEP STATUS SECONDS REASON LOG
  record "$1" "$2" "$3" "$4"
  [ -n "$FAILED" ] || FAILED="$1"
  if [ -f "$5" ]; then
    echo "----- last lines of $5 -----" >&2
    tail -n 25 "$5" >&2
    echo "-----" >&2
  fi
  say "FAILED $1: $4 (log: $5)"
}

# run_step STEP LIMIT_S COMMAND...: runs with stdout+stderr in OUT/STEP.log, within the budget
# (a shell function runs as is: `timeout` can only run programs).
run_step() {
  local step=$1 limit=$2 log="$OUT/$1.log" began=$SECONDS status
  shift 2
  local left=$((BUDGET - (SECONDS - START)))
  [ "$left" -lt "$limit" ] && limit=$left
  if [ "$limit" -le 5 ]; then
    fail_step "$step" 124 0 "no time left in the ${BUDGET} s budget" "$log"
    return 1
  fi
  say "$step (up to ${limit} s, log $log)"
  if declare -F "$1" >/dev/null; then
    "$@" >"$log" 2>&1
  else
    timeout --kill-after=10 "$limit" "$@" >"$log" 2>&1
  fi
  status=$?
  local took=$((SECONDS - began))
  if [ "$status" = 0 ]; then
    record "$step" 0 "$took" ""
    return 0
  fi
  if [ "$status" = 124 ] || [ "$status" = 137 ]; then
    fail_step "$step" "$status" "$took" "timed out after ${limit} s" "$log"
  else
    fail_step "$step" "$status" "$took" "exit $status: $(first_error "$log")" "$log"
  fi
  return 1
}

# Python: the configured build's (it has torch and runs the benchmark's reference), else python3.
PYTHON=""
if [ "$CONFIGURE" = 0 ]; then
  PYTHON=$(sed -n 's/^HARVEST_PYTHON:FILEPATH=//p' "$BUILD/CMakeCache.txt")
fi
[ -n "$PYTHON" ] || PYTHON="$(command -v python3 || true)"

# --- preflight: what the machine must have, checked before any minute goes into a build --------
preflight() {
  local missing=()
  for tool in cmake ninja c++ timeout; do command -v "$tool" >/dev/null || missing+=("$tool"); done
  [ -x "$PYTHON" ] || missing+=("python3 (with torch)")
  if [ "$DEVICE" = cuda ] && [ "$CONFIGURE" = 1 ]; then
    # CMake finds the CUDA toolkit (and with it NCCL) through nvcc.
    command -v nvcc >/dev/null || [ -x /usr/local/cuda/bin/nvcc ] || missing+=("nvcc (CUDA toolkit)")
  fi
  if [ ${#missing[@]} -gt 0 ]; then
    echo "missing: ${missing[*]}"
    return 1
  fi
  if [ "$CONFIGURE" = 1 ]; then
    for header in toml++/toml.h spdlog/spdlog.h fmt/core.h nlohmann/json.hpp catch2/catch.hpp; do
      if [ ! -f "$DEPS/include/$header" ]; then
        echo "error: $DEPS/include/$header not found: run scripts/gpu-check.sh --prepare on the build machine and carry .gpu-deps"
        return 1
      fi
    done
  fi
  "$PYTHON" - "$DEVICE" <<'EOF' || return 1
import json, sys
import torch
device = sys.argv[1]
info = {"torch": torch.__version__, "torch_cuda": torch.version.cuda,
        "cuda_devices": torch.cuda.device_count() if torch.cuda.is_available() else 0}
if info["cuda_devices"]:
    info["gpu"] = torch.cuda.get_device_name(0)
print(json.dumps(info))
if device == "cuda" and not info["cuda_devices"]:
    print("error: --device cuda but torch %s sees no CUDA device (CUDA_VISIBLE_DEVICES, driver?)" % torch.__version__)
    sys.exit(1)
EOF
  if [ "$DEVICE" = cuda ] && command -v nvidia-smi >/dev/null; then
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | sed 's/^/nvidia-smi: /' || true
  fi
  command -v pkg-config >/dev/null || echo "note: no pkg-config (the model-only build does not need PCRE2)"
  return 0
}

JOBS=$(nproc)
if [ "$DEVICE" = cuda ] && [ "$QUICK" = 0 ]; then
  BENCH=(--device cuda --bf16 --preset B/16 --size 224 --frames 8 --batch 16 --drop 0,0.9 --repeats 10 --warmup 2)
elif [ "$DEVICE" = cuda ]; then
  BENCH=(--device cuda --bf16 --preset B/16 --size 224 --frames 8 --batch 8 --drop 0,0.9 --repeats 3 --warmup 1)
else
  BENCH=(--device cpu --preset tiny --size 32 --frames 2 --batch 2 --drop 0,0.9 --repeats 1 --warmup 0 --threads 2)
fi

steps_ok=1
run_step preflight 60 preflight || steps_ok=0
if [ "$steps_ok" = 1 ] && [ "$CONFIGURE" = 1 ]; then
  # -Werror off: warnings are CI's business (the same sources build there with -Werror); a new
  # compiler's new warning must not cost a GPU window. Release: the benchmark's numbers.
  run_step configure 180 cmake -S "$ROOT" -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release \
    -DHARVEST_MODEL_ONLY=ON -DHARVEST_HEADER_DEPS="$DEPS/include" -DHARVEST_PYTHON="$PYTHON" \
    -DHARVEST_WERROR=OFF || steps_ok=0
fi
if [ "$steps_ok" = 1 ]; then
  run_step build 1800 cmake --build "$BUILD" --target device_tests harvest_step_bench -j "$JOBS" || steps_ok=0
fi
if [ "$steps_ok" = 1 ]; then
  # Tests and benchmark are independent: a failing test still leaves the benchmark's numbers.
  run_step device_tests 240 env HARVEST_TEST_DEVICE="$DEVICE" "$BUILD/tests/gpu/device_tests" --durations yes
  if run_step step_bench 300 "$BUILD/bench/model/harvest_step_bench" "${BENCH[@]}" --python "$PYTHON"; then
    # The result is the last stdout line; progress went to stderr, both into the log.
    tail -n 1 "$OUT/step_bench.log" >"$OUT/step_bench.json"
  fi
fi

# --- summary -------------------------------------------------------------------------------------
SUMMARY_PY="$PYTHON"
[ -x "$SUMMARY_PY" ] || SUMMARY_PY="$(command -v python3)"
"$SUMMARY_PY" - "$OUT" "$DEVICE" "$BUILD" "$QUICK" "$((SECONDS - START))" <<'EOF'
import json, os, re, sys

out, device, build, quick, seconds = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4] == "1", int(sys.argv[5])
summary = {"ok": True, "failed_step": None, "error": None, "device": device, "quick": quick,
           "seconds": seconds, "out": out, "build_dir": build, "steps": {}}
for line in open(os.path.join(out, "steps.tsv")):
    step, status, took, reason = line.rstrip("\n").split("\t")
    summary["steps"][step] = {"ok": status == "0", "seconds": int(took)}
    if status != "0":
        summary["steps"][step]["error"] = reason
        if summary["ok"]:
            summary.update(ok=False, failed_step=step, error=reason)

def read(name):
    path = os.path.join(out, name)
    return open(path, errors="replace").read() if os.path.exists(path) else ""

preflight = read("preflight.log")
for line in preflight.splitlines():
    if line.startswith("{"):
        summary.update(json.loads(line))
    elif line.startswith("nvidia-smi: "):
        summary.setdefault("nvidia_smi", []).append(line[len("nvidia-smi: "):])

tests = read("device_tests.log")
if tests:
    t = {}
    m = re.search(r"All tests passed \((\d+) assertions? in (\d+) test cases?\)", tests)
    if m:
        t = {"passed": int(m.group(2)), "failed": 0, "assertions": int(m.group(1))}
    else:
        m = re.search(r"test cases:\s*(\d+)\s*\|(?:\s*(\d+) passed\s*\|)?\s*(\d+) failed", tests)
        if m:
            t = {"passed": int(m.group(2) or 0), "failed": int(m.group(3)), "cases": int(m.group(1))}
    # WARN lines (a 2-rank group not run) and the failed cases' names.
    t["warnings"] = sorted(set(re.findall(r"warning:\s*\n\s*(.+)", tests)))
    # Catch prints a dashed header (case name, section names) before a case's reports.
    headers = list(re.finditer(r"^-{40,}\n(.+)\n(?:.+\n)*?-{40,}\n", tests, re.M))
    t["failed_cases"] = sorted({h.group(1).strip() for i, h in enumerate(headers)
                                if "FAILED" in tests[h.end():headers[i + 1].start() if i + 1 < len(headers) else None]})
    summary["tests"] = t

bench = read("step_bench.json").strip()
if bench:
    try:
        b = json.loads(bench)
        keep = ["device", "bf16", "preset", "size", "frames", "batch", "median_step_s", "video_tokens_per_s",
                "tflops_per_s", "mfu", "peak_tflops", "peak_memory_bytes", "flops_per_step",
                "optimizer_median_s", "encoder_median_s", "reference_median_step_s", "reference_video_tokens_per_s",
                "reference_mfu", "reference_peak_memory_bytes", "step_ratio_vs_reference", "max_rss_bytes",
                "peak_memory_note", "repeats", "warmup"]
        summary["bench"] = {k: b[k] for k in keep if k in b}
    except ValueError as e:
        summary["bench"] = {"error": "step_bench.json is not JSON: %s" % e}
        if summary["ok"]:
            summary.update(ok=False, failed_step="step_bench", error=summary["bench"]["error"])

with open(os.path.join(out, "summary.json"), "w") as f:
    json.dump(summary, f, indent=1)
print(json.dumps(summary))
sys.exit(0 if summary["ok"] else 1)
EOF
status=$?
if [ "$status" != 0 ] && [ -z "$FAILED" ]; then
  say "FAILED summary: see $OUT/summary.json"
fi
exit "$status"
