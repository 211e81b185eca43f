"""References for `harvest bench decode`: the same clips with the same sampling (T equal
segments, the frame on screen at each segment's middle, i.e. the last frame with pts <= t),
decoded by PyAV (--decoder pyav) or torchcodec, PyTorch's decoder (--decoder torchcodec, its
exact seek mode; torchcodec-approximate: its approximate mode, which trusts the container's
index instead of scanning it), one FFmpeg thread per decoder, resized to SxS RGB with bicubic
interpolation (torchcodec: its decoder-side Resize transform). Prints JSON last."""
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


def decode_clip_torchcodec(path, frames, size, seek_mode):
    from torchcodec.decoders import VideoDecoder
    from torchcodec.transforms import Resize
    decoder = VideoDecoder(path, num_ffmpeg_threads=1, seek_mode=seek_mode, dimension_order="NHWC",
                           transforms=[Resize(size=(size, size))])
    meta = decoder.metadata
    begin = meta.begin_stream_seconds or 0.0
    duration = (meta.end_stream_seconds or meta.duration_seconds) - begin
    targets = [begin + (i + 0.5) * duration / frames for i in range(frames)]
    batch = decoder.get_frames_played_at(seconds=targets)
    return batch.data.numpy(), None


def main():
    p = argparse.ArgumentParser()
    p.add_argument("videos", nargs="+")
    p.add_argument("--frames", type=int, default=8)
    p.add_argument("--size", type=int, default=224)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--passes", type=int, default=2)
    p.add_argument("--decoder", default="pyav", choices=["pyav", "torchcodec", "torchcodec-approximate"])
    a = p.parse_args()
    if a.decoder == "pyav":
        decode = decode_clip
    else:
        import torch
        torch.set_num_threads(1)  # the Resize transform and tensor work stay on one core, as PyAV's do
        mode = "approximate" if a.decoder.endswith("approximate") else "exact"
        def decode(path, frames, size):
            return decode_clip_torchcodec(path, frames, size, mode)
    jobs = [v for _ in range(a.passes) for v in a.videos]
    lock = threading.Lock()
    decoded = []

    def work():
        while True:
            with lock:
                if not jobs:
                    return
                path = jobs.pop()
            _, n = decode(path, a.frames, a.size)
            if n is not None:
                with lock:
                    decoded.append(n)

    decode(a.videos[0], a.frames, a.size)  # untimed: library loading and first-call set-up
    t0 = time.perf_counter()
    pool = [threading.Thread(target=work) for _ in range(a.threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    elapsed = time.perf_counter() - t0
    clips = a.passes * len(a.videos)
    print(json.dumps({"clips_per_s": clips / elapsed, "frames_per_s": clips * a.frames / elapsed,
                      "decoded_frames_per_clip": sum(decoded) / len(decoded) if decoded else None,
                      "decoder": a.decoder}))


if __name__ == "__main__":
    main()
