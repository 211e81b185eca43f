#!/usr/bin/env python3
"""Test fixture for harvest's safetensors reader: writes a safetensors file following the
published format (8-byte little-endian header length, JSON header, data buffer) with tensors of
several dtypes, whose values PyTorch converts (the reference rounding for F16/BF16), and
expected.json: for each tensor its dtype, shape and the float32 bit patterns the reader must
produce. Test-time only (the .venv's torch).

  make_safetensors.py OUT.safetensors EXPECTED.json
"""
import json
import struct
import sys

import torch


def main():
    out_path, expected_path = sys.argv[1], sys.argv[2]
    g = torch.Generator().manual_seed(1234)
    special = torch.tensor([0.0, -0.0, 1.0, -2.5, 65504.0, 1e-7, 6e-8, -3e-5, 1e30, float("inf"),
                            float("-inf"), 0.1, 1 / 3])
    tensors = {
        "text_model.embeddings.token_embedding.weight": torch.randn(7, 5, generator=g),
        "vision_model.half": torch.cat([torch.randn(30, generator=g) * 100, special]).to(torch.float16),
        "vision_model.bf16": torch.cat([torch.randn(3, 10, generator=g), special.view(1, -1)[:, :10]]).to(torch.bfloat16),
        "f64": torch.randn(2, 3, dtype=torch.float64, generator=g),
        "i64": torch.tensor([-5, 0, 7, 1 << 40], dtype=torch.int64),
        "i32": torch.tensor([[-1, 2], [3, -4]], dtype=torch.int32),
        "u8": torch.tensor([0, 1, 255], dtype=torch.uint8),
        "i8": torch.tensor([-128, 127], dtype=torch.int8),
        "i16": torch.tensor([-300, 300], dtype=torch.int16),
        "flag": torch.tensor([True, False, True]),
        "logit_scale": torch.tensor(4.6052),
        "empty": torch.zeros(0, 3),
    }
    dtype_names = {torch.float32: "F32", torch.float16: "F16", torch.bfloat16: "BF16",
                   torch.float64: "F64", torch.int64: "I64", torch.int32: "I32",
                   torch.uint8: "U8", torch.int8: "I8", torch.int16: "I16", torch.bool: "BOOL"}
    header = {"__metadata__": {"format": "pt", "note": "harvest test"}}
    blobs = []
    offset = 0
    expected = {}
    # Deliberately not in name order: the reader must not depend on it.
    for name in sorted(tensors, key=lambda n: (len(n), n), reverse=True):
        t = tensors[name].contiguous()
        if t.dtype == torch.bfloat16:
            raw = t.view(torch.int16).numpy().tobytes()
        else:
            raw = t.numpy().tobytes()
        header[name] = {"dtype": dtype_names[t.dtype], "shape": list(t.shape),
                        "data_offsets": [offset, offset + len(raw)]}
        offset += len(raw)
        blobs.append(raw)
        as_f32 = t.to(torch.float32).reshape(-1).tolist()
        expected[name] = {"dtype": dtype_names[t.dtype], "shape": list(t.shape),
                          "bits": [struct.pack("<f", v).hex() for v in as_f32]}
    text = json.dumps(header).encode("utf-8")
    text += b" " * ((8 - len(text) % 8) % 8)  # the format allows trailing-space padding
    with open(out_path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for raw in blobs:
            f.write(raw)
    with open(expected_path, "w") as f:
        json.dump(expected, f)


if __name__ == "__main__":
    main()
