#!/usr/bin/env python3
"""Reference for `harvest bench checkpoint`: the same bytes (a ViT-like mix of float32 tensors)
written as a raw sequential file, with plain h5py, and with torch.save, each fsync'd, interleaved,
medians. Run with the project's .venv Python (h5py, numpy, torch).

usage: checkpoint_h5py.py [SIZE_MB [REPS [DIR]]]   (last line: JSON)
       checkpoint_h5py.py --serve SIZE_MB   (for `harvest bench checkpoint --h5py`: builds the
           tensors once, then for each stdin line "h5py PATH" or "torch_save PATH" writes that
           file, fsync'd, and prints the seconds it took on a line of its own)
"""
import json
import os
import statistics
import sys
import tempfile
import time

import h5py
import numpy as np
import torch


def tensors(size_mb):
    # Same split as bench/checkpoint: a big matrix (1/24 of the total) then five small vectors.
    total = size_mb << 20
    rng = np.random.default_rng(5)
    out, used, i = {}, 0, 0
    while used < total:
        n = max(total // 24, 4096) if i % 6 == 0 else 4096 * (1 + i % 5)
        n = min(n, total - used)
        n -= n % 4
        if n == 0:
            break
        out[f"model/blocks/{i // 6}/param{i % 6}"] = rng.integers(0, 2**32, n // 4, dtype=np.uint32).view(np.float32)
        used += n
        i += 1
    return out, used


def fsync_path(path):
    fd = os.open(path, os.O_RDONLY)
    os.fsync(fd)
    os.close(fd)


def raw(ts, path):
    t = time.perf_counter()
    with open(path, "wb") as f:
        for a in ts.values():
            f.write(a.data)
        f.flush()
        os.fsync(f.fileno())
    return time.perf_counter() - t


def h5(ts, path):
    t = time.perf_counter()
    with h5py.File(path, "w") as f:
        for k, a in ts.items():
            f.create_dataset(k, data=a)
    fsync_path(path)
    return time.perf_counter() - t


def torch_save(ts, path):
    state = {k: torch.from_numpy(a) for k, a in ts.items()}
    t = time.perf_counter()
    torch.save(state, path)
    fsync_path(path)
    return time.perf_counter() - t


def serve(size_mb):
    ts, _ = tensors(size_mb)
    print("ready", flush=True)
    for line in sys.stdin:
        kind, path = line.strip().split(" ", 1)
        seconds = {"h5py": h5, "torch_save": torch_save, "raw": raw}[kind](ts, path)
        os.remove(path)
        print(f"{seconds:.6f}", flush=True)


def main():
    if len(sys.argv) > 2 and sys.argv[1] == "--serve":
        serve(int(sys.argv[2]))
        return
    size_mb = int(sys.argv[1]) if len(sys.argv) > 1 else 256
    reps = int(sys.argv[2]) if len(sys.argv) > 2 else 3
    folder = tempfile.mkdtemp(prefix="harvest-bench-ref-", dir=sys.argv[3] if len(sys.argv) > 3 else None)
    ts, nbytes = tensors(size_mb)
    times = {"raw": [], "h5py": [], "torch_save": []}
    for rep in range(reps):
        for name, fn in (("raw", raw), ("h5py", h5), ("torch_save", torch_save)):
            path = os.path.join(folder, name)
            times[name].append(fn(ts, path))
            os.remove(path)
        print(f"rep {rep}: " + ", ".join(f"{k} {v[-1]:.3f} s" for k, v in times.items()), file=sys.stderr)
    os.rmdir(folder)
    med = {k: statistics.median(v) for k, v in times.items()}
    gb = nbytes / 1e9
    print(json.dumps({"bench": "checkpoint_reference", "size_mb": size_mb, "reps": reps,
                      "raw_write_gbps": gb / med["raw"], "h5py_gbps": gb / med["h5py"],
                      "torch_save_gbps": gb / med["torch_save"],
                      "h5py_vs_raw": med["raw"] / med["h5py"], "torch_save_vs_raw": med["raw"] / med["torch_save"]}))


if __name__ == "__main__":
    main()
