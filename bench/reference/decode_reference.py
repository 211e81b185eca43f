"""PyAV reference for `harvest bench decode`: the same clips with the same sampling (T equal
segments, the frame on screen at each segment's middle, i.e. the last frame with pts <= t),
decoded with PyAV and resized to SxS RGB with bicubic interpolation. Prints JSON last."""
import argparse
import json
import threading
import time

import av
import numpy as np


def decode_clip(path, frames, size):
    with av.open(path) as container:
        stream = container.streams.video[0]
        stream.thread_count = 1
        tb = float(stream.time_base)
        start = stream.start_time or 0
        duration = float(stream.duration * stream.time_base) if stream.duration else container.duration / 1e6
        targets = [start + ((i + 0.5) * duration / frames) / tb for i in range(frames)]
        chosen, held, k, decoded = [], None, 0, 0
        for frame in container.decode(stream):
            decoded += 1
            while k < frames and frame.pts > targets[k]:
                chosen.append(held if held is not None else frame)
                k += 1
            if k == frames:
                break
            held = frame
        while len(chosen) < frames:
            chosen.append(held)
        out = np.stack([f.to_ndarray(width=size, height=size, format="rgb24", interpolation="BICUBIC")
                        for f in chosen])
        return out, decoded


def main():
    p = argparse.ArgumentParser()
    p.add_argument("videos", nargs="+")
    p.add_argument("--frames", type=int, default=8)
    p.add_argument("--size", type=int, default=224)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--passes", type=int, default=2)
    a = p.parse_args()
    jobs = [v for _ in range(a.passes) for v in a.videos]
    lock = threading.Lock()
    decoded = []

    def work():
        while True:
            with lock:
                if not jobs:
                    return
                path = jobs.pop()
            _, n = decode_clip(path, a.frames, a.size)
            with lock:
                decoded.append(n)

    t0 = time.perf_counter()
    pool = [threading.Thread(target=work) for _ in range(a.threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    elapsed = time.perf_counter() - t0
    clips = a.passes * len(a.videos)
    print(json.dumps({"clips_per_s": clips / elapsed, "frames_per_s": clips * a.frames / elapsed,
                      "decoded_frames_per_clip": sum(decoded) / len(decoded)}))


if __name__ == "__main__":
    main()
