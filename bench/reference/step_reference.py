"""PyTorch eager reference of harvest's training step, timed the way `harvest bench step` times
the C++ one: forward (patch dropping, text masking, VTC + MLM) + backward + AdamW, and the video
encoder's forward + backward alone, median per drop ratio, drop ratios interleaved.

    .venv/bin/python3 step_reference.py --config JSON --batch B --drops 0,0.9 [--freeze-text]
        [--repeats N] [--warmup N] [--threads N] [--device cpu|cuda] [--bf16]
    .venv/bin/python3 step_reference.py --config JSON --batch B [--freeze-text] [--threads N]
        [--device cpu|cuda] [--bf16] --serve

--config is the model shape as JSON (written by the C++ bench from the same preset). The model
is tests/model/reference_model.py's. On CUDA the model and inputs live on the device, the device
is synchronised around every timed call, and --bf16 runs the forward under
torch.autocast("cuda", torch.bfloat16), as harvest's set_bf16_autocast does (backward outside).
Standalone, it prints one JSON object on the last line. With --serve it prints "ready" once set
up, then answers each stdin line "step DROP" or "encoder DROP" with "SECONDS PEAK_BYTES" for that
one timed call (PEAK_BYTES: the call's peak allocated CUDA memory, -1 on the CPU; "quit" ends
it): the C++ bench drives it so that C++ and PyTorch calls alternate (A B A B) under the same
machine load.
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
    mean = torch.tensor(CLIP_MEAN, device=x.device).view(1, 1, 3, 1, 1)
    std = torch.tensor(CLIP_STD, device=x.device).view(1, 1, 3, 1, 1)
    return ((x - mean) / std).contiguous()


# Random draws happen on the CPU generator (as harvest's PatchDropper and TextMasker draw) and
# their results move to the device.
def draw_keep(gen, batch, patches, drop, device):
    scores = torch.rand(batch, patches, generator=gen, device="cpu")
    return scores.topk(kept_count(patches, drop), dim=1).indices.sort(dim=1).values.to(device)


def mask_text(gen, ids, c, device, ratio=0.5, p_mask=0.8, p_random=0.1):
    L = ids.shape[1]
    eot = (ids == c["eot_id"]).int().argmax(dim=1, keepdim=True)
    pos = torch.arange(L, device="cpu")[None, :]
    eligible = (pos > 0) & (pos < eot)
    selected = (torch.rand(ids.shape, generator=gen, device="cpu") < ratio) & eligible
    how = torch.rand(ids.shape, generator=gen, device="cpu")
    masked = selected & (how < p_mask)
    rand = selected & (how >= p_mask) & (how < p_mask + p_random)
    random_ids = torch.randint(0, c["vocab_size"] - 2, ids.shape, generator=gen, device="cpu")
    masked_ids = torch.where(rand, random_ids, ids)
    targets = torch.where(selected, ids, torch.full_like(ids, -100))
    return masked_ids.to(device), masked.to(device), targets.to(device)


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
    ap.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N")
    ap.add_argument("--bf16", action="store_true", help="bf16 autocast around the forward (CUDA only)")
    ap.add_argument("--serve", action="store_true")
    args = ap.parse_args()

    device = torch.device(args.device)
    if device.type not in ("cpu", "cuda"):
        sys.exit("step_reference.py: --device must be cpu or cuda, got %r" % args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        sys.exit("step_reference.py: --device %s but torch %s sees no CUDA device" % (args.device, torch.__version__))
    if args.bf16 and device.type != "cuda":
        sys.exit("step_reference.py: --bf16 needs --device cuda (autocast to bf16 is CUDA-only here, as in harvest)")
    if device.type == "cuda":
        # reference_model.py builds its causal mask, padding mask and contrastive labels with
        # factory calls that name no device; the default device puts them beside the activations
        # (at a small per-call cost in Python, which the C++ side does not pay).
        torch.set_default_device(device)

    c = json.loads(args.config)
    torch.set_num_threads(args.threads if args.threads > 0 else os.cpu_count())
    torch.manual_seed(args.seed)
    drops = [float(d) for d in args.drops.split(",")]
    model = VideoTextModel(c).to(device)
    model.train()
    if args.freeze_text:
        for p in model.text.parameters():
            p.requires_grad_(False)
        model.text.mask_embedding.requires_grad_(True)  # harvest's [MASK] vector always trains
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        (no_decay if p.dim() < 2 or "embedding" in name or name == "logit_scale" else decay).append(p)
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.2}, {"params": no_decay, "weight_decay": 0.0}],
                            lr=1e-5, betas=(0.9, 0.98), eps=1e-6)

    B, T, S, L = args.batch, c["frames"], c["image_size"], c["context_length"]
    gen = torch.Generator(device="cpu").manual_seed(args.seed)
    video_u8 = torch.randint(0, 256, (B, T, S, S, 3), dtype=torch.uint8, generator=gen, device="cpu")
    ids = torch.zeros(B, L, dtype=torch.int64, device="cpu")
    words = L - 2
    ids[:, 0] = c["sot_id"]
    ids[:, 1:1 + words] = torch.randint(0, c["sot_id"], (B, words), generator=gen, device="cpu")
    ids[:, 1 + words] = c["eot_id"]
    patches = T * (S // c["patch_size"]) ** 2
    video_u8, ids_on_device = video_u8.to(device), ids.to(device)
    cuda = device.type == "cuda"

    def autocast():
        return torch.autocast("cuda", dtype=torch.bfloat16, enabled=args.bf16)

    def step(drop):
        video = normalize(video_u8)
        keep = draw_keep(gen, B, patches, drop, device) if drop > 0 else None
        masked_ids, masked, targets = mask_text(gen, ids, c, device)
        with autocast():
            total = model.losses(video, ids_on_device, keep, masked_ids, masked, targets)[0]
        total.backward()
        opt.step()
        opt.zero_grad()

    def encoder(drop):
        video = normalize(video_u8)
        keep = draw_keep(gen, B, patches, drop, device) if drop > 0 else None
        with autocast():
            embedding = model.visual(video, keep)[0]
        embedding.sum().backward()
        model.zero_grad()

    # One timed call with the device idle at both ends; its peak allocated CUDA memory (-1 on CPU).
    def timed(fn, drop):
        if cuda:
            torch.cuda.synchronize(device)
            torch.cuda.reset_peak_memory_stats(device)
        t0 = time.perf_counter()
        fn(drop)
        if cuda:
            torch.cuda.synchronize(device)
        seconds = time.perf_counter() - t0
        return seconds, torch.cuda.max_memory_allocated(device) if cuda else -1

    if args.serve:
        print("ready", flush=True)
        for line in sys.stdin:
            words = line.split()
            if not words or words[0] == "quit":
                break
            fn = step if words[0] == "step" else encoder
            seconds, peak = timed(fn, float(words[1]))
            print("%.9f %d" % (seconds, peak), flush=True)
        return

    step_times = {d: [] for d in drops}
    enc_times = {d: [] for d in drops}
    peaks = {d: -1 for d in drops}
    for rep in range(args.warmup + args.repeats):
        for d in drops:
            seconds, peak = timed(step, d)
            if rep >= args.warmup:
                step_times[d].append(seconds)
                peaks[d] = max(peaks[d], peak)
        for d in drops:
            seconds, _ = timed(encoder, d)
            if rep >= args.warmup:
                enc_times[d].append(seconds)

    key = lambda d: ("%g" % d)
    result = {
        "median_step_s": {key(d): statistics.median(v) for d, v in step_times.items()},
        "encoder_median_s": {key(d): statistics.median(v) for d, v in enc_times.items()},
        "torch": torch.__version__, "threads": torch.get_num_threads(),
        "device": str(device), "bf16": args.bf16,
    }
    if cuda:
        result["peak_memory_bytes"] = {key(d): p for d, p in peaks.items()}
        result["device_name"] = torch.cuda.get_device_name(device)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
