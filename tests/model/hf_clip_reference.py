#!/usr/bin/env python3
"""Reference for `harvest import-clip` and `harvest embed`: small random CLIP weights saved as
safetensors, and the embeddings Hugging Face `transformers`' own CLIPModel computes from them
(get_text_features, get_image_features). The multi-frame video embedding, which CLIPModel has no
notion of, comes from a model written here from the published architecture (DESIGN.md section 1),
itself checked against CLIPModel on one frame before anything is written. It shares no code with
harvest; only the file format and CLIP's tokenizer (reference_clip_tokenizer.py, itself checked
against CLIP's rules) are common.

    hf_clip_reference.py OUT_DIR --vocab BPE [--dtype F32|F16|BF16] [--act quick_gelu|gelu]
                         [--layout hf|openai] [--broken]

writes OUT_DIR/model.safetensors, config.json, square.png (224x224), wide.png (320x240),
static.mkv (the square picture, 6 identical lossless frames) and expected.json:
{"texts": [...], "ids": [[...]], "text": [[...]], "square": [...], "wide": [...], "static8": [...]}:
the reference's L2-normalised embeddings ("static8": static.mkv as an 8-frame video). The reference computes with the weights as stored (F16
and BF16 values upcast), so exactness is judged on the same numbers harvest reads.
--act picks both towers' MLP activation (config.json's hidden_act). --layout openai writes the
weights under OpenAI's / open_clip's state-dict names (fused attn.in_proj_weight, [W, E]
projections); config.json is written either way. --broken writes a file with one tensor missing, one unexpected
and one mis-shaped instead.
Test-time only (the project's .venv: torch; the ffmpeg CLI).
"""
import argparse
import json
import math
import os
import struct
import subprocess
import sys

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tokenizer"))
from reference_clip_tokenizer import ClipReference  # noqa: E402

VISION = dict(width=64, layers=2, heads=4, patch=16, image=224)
TEXT = dict(width=64, layers=2, heads=4, positions=77)
EMBED = 48
TEXTS = ["a photo of a cat", "A dog running on the beach at sunset!", "", "über café — 東京 🚀 it's 3.14"]


def make_weights(vocab_size, gen):
    w = {}

    def normal(*shape, std=0.02):
        return torch.randn(*shape, generator=gen) * std

    def norm(prefix, width):
        w[prefix + ".weight"] = 1.0 + normal(width, std=0.1)
        w[prefix + ".bias"] = normal(width, std=0.05)

    def layers(prefix, width, count):
        for i in range(count):
            p = f"{prefix}.encoder.layers.{i}."
            for name in ("q_proj", "k_proj", "v_proj", "out_proj"):
                w[p + f"self_attn.{name}.weight"] = normal(width, width, std=width ** -0.5)
                w[p + f"self_attn.{name}.bias"] = normal(width, std=0.05)
            norm(p + "layer_norm1", width)
            norm(p + "layer_norm2", width)
            w[p + "mlp.fc1.weight"] = normal(4 * width, width, std=width ** -0.5)
            w[p + "mlp.fc1.bias"] = normal(4 * width, std=0.05)
            w[p + "mlp.fc2.weight"] = normal(width, 4 * width, std=(4 * width) ** -0.5)
            w[p + "mlp.fc2.bias"] = normal(width, std=0.05)

    vw, tw, p = VISION["width"], TEXT["width"], VISION["patch"]
    grid = VISION["image"] // p
    w["vision_model.embeddings.patch_embedding.weight"] = normal(vw, 3, p, p, std=(3 * p * p) ** -0.5)
    w["vision_model.embeddings.class_embedding"] = normal(vw, std=vw ** -0.5)
    w["vision_model.embeddings.position_embedding.weight"] = normal(grid * grid + 1, vw, std=vw ** -0.5)
    norm("vision_model.pre_layrnorm", vw)
    layers("vision_model", vw, VISION["layers"])
    norm("vision_model.post_layernorm", vw)
    w["visual_projection.weight"] = normal(EMBED, vw, std=vw ** -0.5)
    w["text_model.embeddings.token_embedding.weight"] = normal(vocab_size, tw, std=0.02)
    w["text_model.embeddings.position_embedding.weight"] = normal(TEXT["positions"], tw, std=0.01)
    layers("text_model", tw, TEXT["layers"])
    norm("text_model.final_layer_norm", tw)
    w["text_projection.weight"] = normal(EMBED, tw, std=tw ** -0.5)
    w["logit_scale"] = torch.tensor(math.log(1 / 0.07))
    # A buffer real Hugging Face files carry; not a weight.
    w["text_model.embeddings.position_ids"] = torch.arange(TEXT["positions"]).view(1, -1)
    return w


def write_safetensors(path, tensors, dtype):
    names = {torch.float32: "F32", torch.float16: "F16", torch.bfloat16: "BF16", torch.int64: "I64"}
    header, blobs, offset = {"__metadata__": {"format": "pt"}}, [], 0
    for name, t in tensors.items():
        t = t.contiguous()
        if t.is_floating_point():
            t = t.to(dtype)
        raw = (t.view(torch.int16) if t.dtype == torch.bfloat16 else t).numpy().tobytes()
        header[name] = {"dtype": names[t.dtype], "shape": list(t.shape), "data_offsets": [offset, offset + len(raw)]}
        blobs.append(raw)
        offset += len(raw)
    text = json.dumps(header).encode()
    text += b" " * ((8 - len(text) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for raw in blobs:
            f.write(raw)


def quick_gelu(x):
    return x * torch.sigmoid(1.702 * x)


ACT = {"quick_gelu": quick_gelu, "gelu": F.gelu}
ACTIVATION = ["quick_gelu"]  # set by main()


def encoder(w, prefix, x, heads, causal):
    b, n, width = x.shape
    hd = width // heads
    mask = None
    if causal:
        mask = torch.full((n, n), float("-inf")).triu(1)
    i = 0
    while f"{prefix}.encoder.layers.{i}.layer_norm1.weight" in w:
        p = f"{prefix}.encoder.layers.{i}."
        h = F.layer_norm(x, (width,), w[p + "layer_norm1.weight"], w[p + "layer_norm1.bias"], 1e-5)
        q = F.linear(h, w[p + "self_attn.q_proj.weight"], w[p + "self_attn.q_proj.bias"]) * hd ** -0.5
        k = F.linear(h, w[p + "self_attn.k_proj.weight"], w[p + "self_attn.k_proj.bias"])
        v = F.linear(h, w[p + "self_attn.v_proj.weight"], w[p + "self_attn.v_proj.bias"])
        q, k, v = (t.view(b, n, heads, hd).transpose(1, 2) for t in (q, k, v))
        scores = q @ k.transpose(-1, -2)
        if mask is not None:
            scores = scores + mask
        attn = (scores.softmax(-1) @ v).transpose(1, 2).reshape(b, n, width)
        x = x + F.linear(attn, w[p + "self_attn.out_proj.weight"], w[p + "self_attn.out_proj.bias"])
        h = F.layer_norm(x, (width,), w[p + "layer_norm2.weight"], w[p + "layer_norm2.bias"], 1e-5)
        h = F.linear(ACT[ACTIVATION[0]](F.linear(h, w[p + "mlp.fc1.weight"], w[p + "mlp.fc1.bias"])),
                     w[p + "mlp.fc2.weight"], w[p + "mlp.fc2.bias"])
        x = x + h
        i += 1
    return x


def image_features(w, pixels):
    """pixels: float [B, 3, 224, 224], normalised."""
    return video_features(w, pixels.unsqueeze(1))


def video_features(w, pixels):
    """pixels: float [B, T, 3, 224, 224], normalised. CLIP's ViT over all frames jointly (the video
    extension of DESIGN.md section 1) with the zero temporal embedding of a fresh import: tokens
    [CLS, frame 0 patches, frame 1 patches, ...], the spatial position embedding on every frame."""
    vw = VISION["width"]
    b, t = pixels.shape[:2]
    pos = w["vision_model.embeddings.position_embedding.weight"]
    x = F.conv2d(pixels.flatten(0, 1), w["vision_model.embeddings.patch_embedding.weight"], stride=VISION["patch"])
    x = (x.flatten(2).transpose(1, 2) + pos[1:]).reshape(b, -1, vw)
    cls = (w["vision_model.embeddings.class_embedding"] + pos[0]).expand(b, 1, -1)
    x = torch.cat([cls, x], 1)
    x = F.layer_norm(x, (vw,), w["vision_model.pre_layrnorm.weight"], w["vision_model.pre_layrnorm.bias"], 1e-5)
    x = encoder(w, "vision_model", x, VISION["heads"], causal=False)
    pooled = F.layer_norm(x[:, 0], (vw,), w["vision_model.post_layernorm.weight"],
                          w["vision_model.post_layernorm.bias"], 1e-5)
    return F.normalize(pooled @ w["visual_projection.weight"].t(), dim=-1)


def text_features(w, ids, eot_id):
    tw = TEXT["width"]
    x = w["text_model.embeddings.token_embedding.weight"][ids] + \
        w["text_model.embeddings.position_embedding.weight"][: ids.shape[1]]
    x = encoder(w, "text_model", x, TEXT["heads"], causal=True)
    x = F.layer_norm(x, (tw,), w["text_model.final_layer_norm.weight"], w["text_model.final_layer_norm.bias"], 1e-5)
    eot = (ids == eot_id).int().argmax(dim=1)
    pooled = x[torch.arange(ids.shape[0]), eot]
    return F.normalize(pooled @ w["text_projection.weight"].t(), dim=-1)


MEAN = torch.tensor([0.48145466, 0.4578275, 0.40821073]).view(1, 3, 1, 1)
STD = torch.tensor([0.26862954, 0.26130258, 0.27577711]).view(1, 3, 1, 1)


def preprocess(rgb):
    """uint8 [H, W, 3] -> normalised [1, 3, 224, 224]: shorter side to 224 (bicubic, antialiased,
    rounded to 8 bits like PIL), centre crop, CLIP mean/std (Hugging Face CLIPImageProcessor's steps)."""
    size = VISION["image"]
    h, w = rgb.shape[:2]
    short, long = min(h, w), max(h, w)
    new_long = int(size * long / short)
    oh, ow = (size, new_long) if h <= w else (new_long, size)
    x = rgb.permute(2, 0, 1).unsqueeze(0).float()
    if (oh, ow) != (h, w):
        x = F.interpolate(x, size=(oh, ow), mode="bicubic", align_corners=False, antialias=True)
        x = x.round().clamp(0, 255)
    top, left = int((oh - size) / 2), int((ow - size) / 2)
    x = x[:, :, top:top + size, left:left + size] / 255.0
    return (x - MEAN) / STD


def picture(h, w, gen):
    """A smooth colourful picture with some texture, uint8 [H, W, 3]."""
    yy, xx = torch.meshgrid(torch.linspace(0, 1, h), torch.linspace(0, 1, w), indexing="ij")
    chans = [torch.sin(6 * xx + 2 * c) * torch.cos(5 * yy - c) for c in range(3)]
    img = torch.stack(chans, -1) * 100 + 128 + torch.randn(h, w, 3, generator=gen) * 12
    return img.round().clamp(0, 255).to(torch.uint8)


def ffmpeg_write(rgb, path, extra):
    h, w = rgb.shape[:2]
    cmd = ["ffmpeg", "-loglevel", "error", "-y", "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{w}x{h}",
           "-i", "-"] + extra + [path]
    subprocess.run(cmd, input=rgb.numpy().tobytes(), check=True)


def openai_names(w):
    """Hugging Face CLIPModel names -> OpenAI's / open_clip's state-dict names."""
    out = {}
    fixed = {"vision_model.embeddings.patch_embedding.weight": "visual.conv1.weight",
             "vision_model.embeddings.class_embedding": "visual.class_embedding",
             "vision_model.embeddings.position_embedding.weight": "visual.positional_embedding",
             "vision_model.pre_layrnorm.weight": "visual.ln_pre.weight",
             "vision_model.pre_layrnorm.bias": "visual.ln_pre.bias",
             "vision_model.post_layernorm.weight": "visual.ln_post.weight",
             "vision_model.post_layernorm.bias": "visual.ln_post.bias",
             "text_model.embeddings.token_embedding.weight": "token_embedding.weight",
             "text_model.embeddings.position_embedding.weight": "positional_embedding",
             "text_model.final_layer_norm.weight": "ln_final.weight",
             "text_model.final_layer_norm.bias": "ln_final.bias",
             "logit_scale": "logit_scale"}
    for k, v in fixed.items():
        out[v] = w[k]
    out["visual.proj"] = w["visual_projection.weight"].t().contiguous()
    out["text_projection"] = w["text_projection.weight"].t().contiguous()
    layer = {"self_attn.out_proj": "attn.out_proj", "layer_norm1": "ln_1", "layer_norm2": "ln_2",
             "mlp.fc1": "mlp.c_fc", "mlp.fc2": "mlp.c_proj"}
    for hf, oa in (("vision_model.encoder.layers.", "visual.transformer.resblocks."),
                   ("text_model.encoder.layers.", "transformer.resblocks.")):
        i = 0
        while f"{hf}{i}.layer_norm1.weight" in w:
            p, q = f"{hf}{i}.", f"{oa}{i}."
            for part in ("weight", "bias"):
                out[q + "attn.in_proj_" + part] = torch.cat([w[p + f"self_attn.{n}_proj.{part}"] for n in "qkv"])
                for a, b in layer.items():
                    out[q + b + "." + part] = w[p + a + "." + part]
            i += 1
    return out


def transformers_model(config, w):
    """transformers' CLIPModel with the weights `w` (float32)."""
    from transformers import CLIPConfig, CLIPModel
    cfg = CLIPConfig(text_config=config["text_config"], vision_config=config["vision_config"],
                     projection_dim=config["projection_dim"])
    model = CLIPModel(cfg).eval()
    missing, unexpected = model.load_state_dict({k: v for k, v in w.items() if not k.endswith("position_ids")},
                                                strict=False)
    assert not missing and not unexpected, (missing, unexpected)
    return model


def features(out):
    """get_*_features returns a tensor, or (newer transformers) an output holding it."""
    return out if torch.is_tensor(out) else out.pooler_output


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--vocab", required=True)
    ap.add_argument("--dtype", default="F32", choices=["F32", "F16", "BF16"])
    ap.add_argument("--act", default="quick_gelu", choices=["quick_gelu", "gelu"])
    ap.add_argument("--layout", default="hf", choices=["hf", "openai"])
    ap.add_argument("--broken", action="store_true")
    args = ap.parse_args()
    ACTIVATION[0] = args.act
    os.makedirs(args.out, exist_ok=True)
    torch.manual_seed(0)
    gen = torch.Generator().manual_seed(2024)
    tok = ClipReference(args.vocab)
    vocab_size = len(tok.encoder)
    eot_id = tok.encoder["<|endoftext|>"]
    weights = make_weights(vocab_size, gen)
    dtype = {"F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16}[args.dtype]
    config = {"projection_dim": EMBED,
              "vision_config": {"hidden_size": VISION["width"], "num_hidden_layers": VISION["layers"],
                                "num_attention_heads": VISION["heads"], "intermediate_size": 4 * VISION["width"],
                                "patch_size": VISION["patch"], "image_size": VISION["image"],
                                "hidden_act": args.act},
              "text_config": {"hidden_size": TEXT["width"], "num_hidden_layers": TEXT["layers"],
                              "num_attention_heads": TEXT["heads"], "intermediate_size": 4 * TEXT["width"],
                              "max_position_embeddings": TEXT["positions"], "vocab_size": vocab_size,
                              "hidden_act": args.act, "eos_token_id": eot_id}}
    with open(os.path.join(args.out, "config.json"), "w") as f:
        json.dump(config, f)
    if args.broken:
        del weights["vision_model.encoder.layers.1.mlp.fc2.bias"]
        weights["vision_model.extra_head.weight"] = torch.zeros(3, 3)
        weights["text_projection.weight"] = torch.zeros(EMBED, TEXT["width"] + 1)
        write_safetensors(os.path.join(args.out, "model.safetensors"), weights, dtype)
        return
    write_safetensors(os.path.join(args.out, "model.safetensors"),
                      openai_names(weights) if args.layout == "openai" else weights, dtype)
    # The reference computes with the values as stored.
    w = {k: (v.to(dtype).float() if v.is_floating_point() else v) for k, v in weights.items()}

    square = picture(224, 224, gen)
    wide = picture(240, 320, gen)
    ffmpeg_write(square, os.path.join(args.out, "square.png"), [])
    ffmpeg_write(wide, os.path.join(args.out, "wide.png"), [])
    # 6 identical frames, lossless (PNG frames in Matroska, 3 fps).
    frames = torch.stack([square] * 6)
    subprocess.run(["ffmpeg", "-loglevel", "error", "-y", "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", "224x224",
                    "-r", "3", "-i", "-", "-c:v", "png", os.path.join(args.out, "static.mkv")],
                   input=frames.numpy().tobytes(), check=True)

    ids = [tok.encode(t, 77) for t in TEXTS]
    padded = torch.zeros(len(ids), 77, dtype=torch.long)
    for i, row in enumerate(ids):
        padded[i, : len(row)] = torch.tensor(row)
    hf = transformers_model(config, w)
    with torch.no_grad():
        text = F.normalize(features(hf.get_text_features(input_ids=padded)), dim=-1)
        sq = F.normalize(features(hf.get_image_features(pixel_values=preprocess(square))), dim=-1)[0]
        wd = F.normalize(features(hf.get_image_features(pixel_values=preprocess(wide))), dim=-1)[0]
        # The video model written here must be CLIPModel on one frame before it is trusted on eight.
        mine = image_features(w, preprocess(wide))[0]
        assert (mine - wd).abs().max() < 1e-5, f"video reference differs from CLIPModel: {(mine - wd).abs().max()}"
        mine_text = text_features(w, padded, eot_id)
        assert (mine_text - text).abs().max() < 1e-5, f"text reference differs: {(mine_text - text).abs().max()}"
        static = video_features(w, preprocess(square).unsqueeze(1).expand(1, 8, 3, 224, 224))[0]
    expected = {"texts": TEXTS, "ids": ids, "text": text.tolist(), "square": sq.tolist(), "wide": wd.tolist(),
                "static8": static.tolist()}
    with open(os.path.join(args.out, "expected.json"), "w") as f:
        json.dump(expected, f)


if __name__ == "__main__":
    main()
