"""Independent reference for the dataloader tests: decode every frame of a video with PyAV and
print one JSON line per frame: its presentation time (seconds from the stream start, null when
the file carries none) and the mean of its RGB pixels."""
import json
import sys

import av


def main(path):
    with av.open(path) as container:
        stream = container.streams.video[0]
        start = stream.start_time or 0
        for frame in container.decode(stream):
            t = None if frame.pts is None else float((frame.pts - start) * stream.time_base)
            rgb = frame.to_ndarray(format="rgb24")
            print(json.dumps({"t": t, "mean": float(rgb.mean())}))


if __name__ == "__main__":
    main(sys.argv[1])
