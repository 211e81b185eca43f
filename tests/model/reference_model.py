"""Independent PyTorch reference of harvest's video-text model, written from the published
architecture (OpenAI CLIP's ViT and text transformer built on torch.nn.MultiheadAttention, the
ViCLIP-style video extension of DESIGN.md section 1, a cross-attention MLM head and the recipe's
losses). It shares no code with the C++ model.

As a script it writes golden data for tests/model/test_golden.cpp:
    .venv/bin/python3 reference_model.py OUT_DIR
OUT_DIR/index.json lists tensors stored back to back in OUT_DIR/data.bin (little-endian float32
or int64): the model's weights under harvest's parameter names ("param/<name>"), the inputs,
and the reference outputs and gradients. bench/reference/step_reference.py imports the model.
"""
import json
import math
import os
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F


class QuickGELU(nn.Module):
    def forward(self, x):
        return x * torch.sigmoid(1.702 * x)


class Mlp(nn.Module):
    def __init__(self, width):
        super().__init__()
        self.c_fc = nn.Linear(width, 4 * width)
        self.gelu = QuickGELU()
        self.c_proj = nn.Linear(4 * width, width)

    def forward(self, x):
        return self.c_proj(self.gelu(self.c_fc(x)))


class ResidualAttentionBlock(nn.Module):
    """CLIP's block: x + attn(ln_1(x)), then + mlp(ln_2(x))."""

    def __init__(self, width, heads):
        super().__init__()
        self.ln_1 = nn.LayerNorm(width)
        self.attn = nn.MultiheadAttention(width, heads, batch_first=True)
        self.ln_2 = nn.LayerNorm(width)
        self.mlp = Mlp(width)

    def forward(self, x, attn_mask=None):
        h = self.ln_1(x)
        x = x + self.attn(h, h, h, need_weights=False, attn_mask=attn_mask)[0]
        return x + self.mlp(self.ln_2(x))


class Transformer(nn.Module):
    def __init__(self, width, layers, heads):
        super().__init__()
        self.resblocks = nn.ModuleList([ResidualAttentionBlock(width, heads) for _ in range(layers)])

    def forward(self, x, attn_mask=None):
        for block in self.resblocks:
            x = block(x, attn_mask)
        return x


class VideoEncoder(nn.Module):
    def __init__(self, c):
        super().__init__()
        w, p = c["vision_width"], c["patch_size"]
        self.grid = c["image_size"] // p
        self.conv1 = nn.Conv2d(3, w, kernel_size=p, stride=p, bias=False)
        self.class_embedding = nn.Parameter(torch.randn(w) * w ** -0.5)
        self.positional_embedding = nn.Parameter(torch.randn(self.grid ** 2 + 1, w) * w ** -0.5)
        self.temporal_embedding = nn.Parameter(torch.zeros(c["frames"], w))
        self.ln_pre = nn.LayerNorm(w)
        self.transformer = Transformer(w, c["vision_layers"], c["vision_heads"])
        self.ln_post = nn.LayerNorm(w)
        self.proj = nn.Parameter(torch.randn(w, c["embed_dim"]) * w ** -0.5)

    def temporal(self, frames):
        te = self.temporal_embedding
        if frames == te.shape[0]:
            return te
        return F.interpolate(te.t()[None], size=frames, mode="linear", align_corners=False)[0].t()

    def _frame_tokens(self, frames):
        x = self.conv1(frames)
        return x.flatten(2).transpose(1, 2) + self.positional_embedding[1:]

    def _encode(self, patches):
        b, w = patches.shape[0], patches.shape[2]
        cls = (self.class_embedding + self.positional_embedding[0]).expand(b, 1, w)
        x = self.ln_pre(torch.cat([cls, patches], dim=1))
        x = self.ln_post(self.transformer(x))
        return x[:, 0] @ self.proj, x

    def forward(self, video, keep=None):
        b, t = video.shape[:2]
        x = self._frame_tokens(video.flatten(0, 1))
        n, w = x.shape[1], x.shape[2]
        x = (x.view(b, t, n, w) + self.temporal(t)[:, None, :]).reshape(b, t * n, w)
        if keep is not None:
            x = torch.gather(x, 1, keep[:, :, None].expand(-1, -1, w))
        return self._encode(x)

    def encode_image(self, images):
        return self._encode(self._frame_tokens(images))[0]


class TextEncoder(nn.Module):
    def __init__(self, c):
        super().__init__()
        w = c["text_width"]
        self.token_embedding = nn.Embedding(c["vocab_size"], w)
        self.positional_embedding = nn.Parameter(torch.randn(77, w) * 0.01)
        self.transformer = Transformer(w, c["text_layers"], c["text_heads"])
        self.ln_final = nn.LayerNorm(w)
        self.text_projection = nn.Parameter(torch.randn(w, c["embed_dim"]) * w ** -0.5)
        self.mask_embedding = nn.Parameter(torch.randn(w) * 0.02)
        self.eot_id = c["eot_id"]

    def forward(self, ids, masked=None):
        L = ids.shape[1]
        x = self.token_embedding(ids)
        if masked is not None:
            x = torch.where(masked[..., None], self.mask_embedding.expand_as(x), x)
        x = x + self.positional_embedding[:L]
        causal = torch.full((L, L), float("-inf")).triu(1)
        x = self.ln_final(self.transformer(x, causal))
        eot = (ids == self.eot_id).int().argmax(dim=1)  # first EOT
        return x[torch.arange(ids.shape[0]), eot] @ self.text_projection, x, eot


class FusionLayer(nn.Module):
    def __init__(self, width, video_width, heads):
        super().__init__()
        self.ln_1 = nn.LayerNorm(width)
        self.attn = nn.MultiheadAttention(width, heads, batch_first=True)
        self.ln_2 = nn.LayerNorm(width)
        self.cross_attn = nn.MultiheadAttention(width, heads, kdim=video_width, vdim=video_width, batch_first=True)
        self.ln_3 = nn.LayerNorm(width)
        self.mlp = Mlp(width)

    def forward(self, x, padding, video):
        h = self.ln_1(x)
        x = x + self.attn(h, h, h, need_weights=False, key_padding_mask=padding)[0]
        x = x + self.cross_attn(self.ln_2(x), video, video, need_weights=False)[0]
        return x + self.mlp(self.ln_3(x))


class FusionHead(nn.Module):
    def __init__(self, c):
        super().__init__()
        w = c["text_width"]
        self.layers = nn.ModuleList(
            [FusionLayer(w, c["vision_width"], c["text_heads"]) for _ in range(c["fusion_layers"])])
        self.dense = nn.Linear(w, w)
        self.ln_head = nn.LayerNorm(w)
        self.bias = nn.Parameter(torch.zeros(c["vocab_size"]))

    def forward(self, text, eot, video):
        padding = torch.arange(text.shape[1])[None, :] > eot[:, None]
        for layer in self.layers:
            text = layer(text, padding, video)
        return text

    def predict(self, states, token_embedding):
        h = self.ln_head(QuickGELU()(self.dense(states)))
        return h @ token_embedding.t() + self.bias


class VideoTextModel(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.visual = VideoEncoder(c)
        self.text = TextEncoder(c)
        self.fusion = FusionHead(c)
        self.logit_scale = nn.Parameter(torch.tensor(math.log(1.0 / c["temperature_init"])))

    def losses(self, video, ids, keep, masked_ids, masked, targets, vtc_weight=1.0, mlm_weight=1.0):
        """Returns (total, vtc, mlm, video_embedding, text_embedding) for one worker."""
        v_emb, v_tokens = self.visual(video, keep)
        # Both text passes (unmasked for VTC, masked for MLM) in one batch.
        b = ids.shape[0]
        t_all, tokens_all, eot_all = self.text(torch.cat([ids, masked_ids]),
                                               torch.cat([torch.zeros_like(masked), masked]))
        t_emb, m_tokens, m_eot = t_all[:b], tokens_all[b:], eot_all[b:]
        scale = self.logit_scale.exp()  # kept <= 100 by clamping the parameter after each step
        v = F.normalize(v_emb, dim=-1)
        t = F.normalize(t_emb, dim=-1)
        logits = scale * v @ t.t()
        labels = torch.arange(logits.shape[0])
        vtc = (F.cross_entropy(logits, labels) + F.cross_entropy(logits.t(), labels)) / 2
        fused = self.fusion(m_tokens, m_eot, v_tokens)
        sel = targets != -100
        mlm_logits = self.fusion.predict(fused[sel], self.text.token_embedding.weight)
        mlm = F.cross_entropy(mlm_logits, targets[sel])
        return vtc_weight * vtc + mlm_weight * mlm, vtc, mlm, v_emb, t_emb


def harvest_state(model):
    """The reference's parameters under harvest's names (nn.MultiheadAttention with kdim keeps
    separate q/k/v weights and one packed bias; harvest has q_proj/k_proj/v_proj Linears)."""
    out = {}
    for name, p in model.named_parameters():
        if ".cross_attn." in name and name.endswith(("q_proj_weight", "k_proj_weight", "v_proj_weight")):
            out[name.replace("_proj_weight", "_proj.weight")] = p
        elif ".cross_attn.in_proj_bias" in name:
            w = p.shape[0] // 3
            for i, part in enumerate(("q", "k", "v")):
                out[name.replace("in_proj_bias", part + "_proj.bias")] = p[i * w:(i + 1) * w]
        else:
            out[name] = p
    return out


def grad_state(model):
    out = {}
    for name, p in model.named_parameters():
        g = p.grad if p.grad is not None else torch.zeros_like(p)
        if ".cross_attn." in name and name.endswith(("q_proj_weight", "k_proj_weight", "v_proj_weight")):
            out[name.replace("_proj_weight", "_proj.weight")] = g
        elif ".cross_attn.in_proj_bias" in name:
            w = g.shape[0] // 3
            for i, part in enumerate(("q", "k", "v")):
                out[name.replace("in_proj_bias", part + "_proj.bias")] = g[i * w:(i + 1) * w]
        else:
            out[name] = g
    return out


class Writer:
    def __init__(self, directory):
        self.directory = directory
        self.index = {}
        self.blob = bytearray()

    def add(self, name, tensor):
        t = tensor.detach().contiguous()
        dtype = "i64" if t.dtype in (torch.int64, torch.bool) else "f32"
        t = t.to(torch.int64 if dtype == "i64" else torch.float32)
        data = t.numpy().tobytes()
        self.index[name] = {"dtype": dtype, "shape": list(t.shape), "offset": len(self.blob)}
        self.blob += data

    def close(self, config):
        with open(os.path.join(self.directory, "data.bin"), "wb") as f:
            f.write(self.blob)
        with open(os.path.join(self.directory, "index.json"), "w") as f:
            json.dump({"config": config, "tensors": self.index}, f, indent=1)


GOLDEN_CONFIG = {
    "vision_width": 64, "vision_layers": 2, "vision_heads": 4, "patch_size": 16, "image_size": 32,
    "frames": 3, "text_width": 48, "text_layers": 2, "text_heads": 4, "context_length": 8,
    "vocab_size": 100, "sot_id": 98, "eot_id": 99, "embed_dim": 32, "fusion_layers": 2,
    "temperature_init": 0.07,
}


def golden(directory):
    torch.manual_seed(1234)
    c = GOLDEN_CONFIG
    model = VideoTextModel(c)
    with torch.no_grad():  # every parameter non-trivial, so a misplaced one shows
        for name, p in model.named_parameters():
            if name.endswith("bias") or "ln_" in name or name == "visual.temporal_embedding":
                p.add_(torch.randn_like(p) * 0.1)
    w = Writer(directory)
    for name, p in harvest_state(model).items():
        w.add("param/" + name, p)

    B, T, S, L = 4, c["frames"], c["image_size"], c["context_length"]
    video = torch.randn(B, T, 3, S, S)
    lengths = [3, 8, 5, 6]  # tokens incl. SOT and EOT; the rest is padding (id 0)
    ids = torch.zeros(B, L, dtype=torch.int64)
    for i, n in enumerate(lengths):
        ids[i, 0] = c["sot_id"]
        ids[i, 1:n - 1] = torch.randint(0, 98, (n - 2,))
        ids[i, n - 1] = c["eot_id"]
    n_patches = T * (S // c["patch_size"]) ** 2
    keep = torch.stack([torch.randperm(n_patches)[:5].sort().values for _ in range(B)])
    masked_ids = ids.clone()
    masked = torch.zeros(B, L, dtype=torch.bool)
    targets = torch.full((B, L), -100, dtype=torch.int64)
    for i, n in enumerate(lengths):
        for j in range(1, n - 1):
            r = torch.rand(()).item()
            if r < 0.5:
                targets[i, j] = ids[i, j]
                if r < 0.4:
                    masked[i, j] = True
                elif r < 0.45:
                    masked_ids[i, j] = torch.randint(0, 98, ()).item()
    for name, t in [("video", video), ("ids", ids), ("keep", keep), ("masked_ids", masked_ids),
                    ("masked", masked), ("targets", targets)]:
        w.add("input/" + name, t)

    total, vtc, mlm, v_emb, t_emb = model.losses(video, ids, keep, masked_ids, masked, targets, 1.0, 0.5)
    total.backward()
    w.add("out/total", total)
    w.add("out/vtc", vtc)
    w.add("out/mlm", mlm)
    w.add("out/video_embedding_dropped", v_emb)
    w.add("out/text_embedding", t_emb)
    for name, g in grad_state(model).items():
        w.add("grad/" + name, g)

    with torch.no_grad():
        w.add("out/video_embedding", model.visual(video)[0])
        w.add("input/video_2frames", video[:, :2])
        w.add("out/video_embedding_2frames", model.visual(video[:, :2])[0])
        w.add("out/image_embedding", model.visual.encode_image(video[:, 0]))
    w.close(c)


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: reference_model.py OUT_DIR")
    golden(sys.argv[1])
