"""PyTorch eager reference of harvest's training step, timed the way `harvest bench step` times
the C++ one: forward (patch dropping, text masking, VTC + MLM) + backward + AdamW, and the video
encoder's forward + backward alone, median per drop ratio, drop ratios interleaved.

    /usr/bin/python3 step_reference.py --config JSON --batch B --drops 0,0.9 [--freeze-text]
        [--repeats N] [--warmup N] [--threads N]
    /usr/bin/python3 step_reference.py --config JSON --batch B [--freeze-text] [--threads N] --serve

--config is the model shape as JSON (written by the C++ bench from the same preset). The model
is tests/model/reference_model.py's. Standalone, it prints one JSON object on the last line.
With --serve it prints "ready" once set up, then answers each stdin line "step DROP" or
"encoder DROP" with the seconds that one timed call took ("quit" ends it): the C++ bench drives
it so that C++ and PyTorch calls alternate (A B A B) under the same machine load.
"""
import argparse
import json
import os
import statistics
import sys
import time

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tests", "model"))
from reference_model import VideoTextModel  # noqa: E402

CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


def kept_count(patches, drop):
    kept = int(round((1.0 - drop) * patches))
    return min(patches, max(1, kept))


def normalize(video_u8):
    x = video_u8.permute(0, 1, 4, 2, 3).float().div_(255.0)
    mean = torch.tensor(CLIP_MEAN).view(1, 1, 3, 1, 1)
    std = torch.tensor(CLIP_STD).view(1, 1, 3, 1, 1)
    return ((x - mean) / std).contiguous()


def draw_keep(gen, batch, patches, drop):
    scores = torch.rand(batch, patches, generator=gen)
    return scores.topk(kept_count(patches, drop), dim=1).indices.sort(dim=1).values


def mask_text(gen, ids, c, ratio=0.5, p_mask=0.8, p_random=0.1):
    L = ids.shape[1]
    eot = (ids == c["eot_id"]).int().argmax(dim=1, keepdim=True)
    pos = torch.arange(L)[None, :]
    eligible = (pos > 0) & (pos < eot)
    selected = (torch.rand(ids.shape, generator=gen) < ratio) & eligible
    how = torch.rand(ids.shape, generator=gen)
    masked = selected & (how < p_mask)
    rand = selected & (how >= p_mask) & (how < p_mask + p_random)
    random_ids = torch.randint(0, c["vocab_size"] - 2, ids.shape, generator=gen)
    masked_ids = torch.where(rand, random_ids, ids)
    targets = torch.where(selected, ids, torch.full_like(ids, -100))
    return masked_ids, masked, targets


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--config", required=True)
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--drops", default="0,0.5,0.75,0.9")
    ap.add_argument("--freeze-text", action="store_true")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--serve", action="store_true")
    args = ap.parse_args()

    c = json.loads(args.config)
    torch.set_num_threads(args.threads if args.threads > 0 else os.cpu_count())
    torch.manual_seed(args.seed)
    drops = [float(d) for d in args.drops.split(",")]
    model = VideoTextModel(c)
    model.train()
    if args.freeze_text:
        for p in model.text.parameters():
            p.requires_grad_(False)
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        (no_decay if p.dim() < 2 or "embedding" in name or name == "logit_scale" else decay).append(p)
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.2}, {"params": no_decay, "weight_decay": 0.0}],
                            lr=1e-5, betas=(0.9, 0.98), eps=1e-6)

    B, T, S, L = args.batch, c["frames"], c["image_size"], c["context_length"]
    gen = torch.Generator().manual_seed(args.seed)
    video_u8 = torch.randint(0, 256, (B, T, S, S, 3), dtype=torch.uint8, generator=gen)
    ids = torch.zeros(B, L, dtype=torch.int64)
    words = L - 2
    ids[:, 0] = c["sot_id"]
    ids[:, 1:1 + words] = torch.randint(0, c["sot_id"], (B, words), generator=gen)
    ids[:, 1 + words] = c["eot_id"]
    patches = T * (S // c["patch_size"]) ** 2

    def step(drop):
        video = normalize(video_u8)
        keep = draw_keep(gen, B, patches, drop) if drop > 0 else None
        masked_ids, masked, targets = mask_text(gen, ids, c)
        total = model.losses(video, ids, keep, masked_ids, masked, targets)[0]
        total.backward()
        opt.step()
        opt.zero_grad()

    def encoder(drop):
        video = normalize(video_u8)
        keep = draw_keep(gen, B, patches, drop) if drop > 0 else None
        model.visual(video, keep)[0].sum().backward()
        model.zero_grad()

    if args.serve:
        print("ready", flush=True)
        for line in sys.stdin:
            words = line.split()
            if not words or words[0] == "quit":
                break
            fn = step if words[0] == "step" else encoder
            t0 = time.perf_counter()
            fn(float(words[1]))
            print("%.9f" % (time.perf_counter() - t0), flush=True)
        return

    step_times = {d: [] for d in drops}
    enc_times = {d: [] for d in drops}
    for rep in range(args.warmup + args.repeats):
        for d in drops:
            t0 = time.perf_counter()
            step(d)
            if rep >= args.warmup:
                step_times[d].append(time.perf_counter() - t0)
        for d in drops:
            t0 = time.perf_counter()
            encoder(d)
            if rep >= args.warmup:
                enc_times[d].append(time.perf_counter() - t0)

    key = lambda d: ("%g" % d)
    print(json.dumps({
        "median_step_s": {key(d): statistics.median(v) for d, v in step_times.items()},
        "encoder_median_s": {key(d): statistics.median(v) for d, v in enc_times.items()},
        "torch": torch.__version__, "threads": torch.get_num_threads(),
    }))


if __name__ == "__main__":
    main()
