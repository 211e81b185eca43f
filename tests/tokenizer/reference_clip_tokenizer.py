#!/usr/bin/env python3
"""Independent reference for harvest's tokenizer tests: CLIP's BPE tokenizer written from the
published algorithm (OpenAI CLIP's simple_tokenizer: byte-to-unicode alphabet, html.unescape
twice, whitespace collapse, lower(), the `regex` pre-tokenisation pattern, rank-ordered merges
with '</w>', SOT/EOT), without ftfy. Test-time only; needs the regex package (in the .venv).

  reference_clip_tokenizer.py apply --fn encode|decode|clean|unescape|lower|words
                              [--vocab PATH] [--context-length N] INPUT.jsonl OUTPUT.jsonl
  reference_clip_tokenizer.py unicode-table OUTPUT.txt
  reference_clip_tokenizer.py hf-export --vocab PATH OUTDIR

INPUT.jsonl holds one JSON value per line (a string; for decode, a list of ids); OUTPUT.jsonl
gets one JSON value per line in the same order.
"""
import argparse
import gzip
import html
import json
import os
import re
import sys
import unicodedata

import regex

CLIP_MAX_MERGES = 49152 - 256 - 2  # CLIP reads merges[1:49152-256-2+1]
SOT, EOT = "<|startoftext|>", "<|endoftext|>"


def bytes_to_unicode():
    keep = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + \
        list(range(ord("®"), ord("ÿ") + 1))
    chars = keep[:]
    extra = 0
    for b in range(256):
        if b not in keep:
            keep.append(b)
            chars.append(256 + extra)
            extra += 1
    return dict(zip(keep, [chr(c) for c in chars]))


def read_text(path):
    with open(path, "rb") as f:
        data = f.read()
    if data[:2] == b"\x1f\x8b":
        data = gzip.decompress(data)
    return data.decode("utf-8")


def clean(text):
    text = html.unescape(html.unescape(text)).strip()
    text = re.sub(r"\s+", " ", text).strip()
    return text.lower()


PATTERN = regex.compile(
    r"""<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+""",
    regex.IGNORECASE)


class ClipReference:
    def __init__(self, path, max_merges=CLIP_MAX_MERGES):
        lines = read_text(path).split("\n")[1:max_merges + 1]
        merges = [tuple(line.split()) for line in lines if line.strip()]
        self.byte_encoder = bytes_to_unicode()
        self.byte_decoder = {v: k for k, v in self.byte_encoder.items()}
        vocab = list(self.byte_encoder.values())
        vocab = vocab + [v + "</w>" for v in vocab]
        vocab += ["".join(m) for m in merges]
        vocab += [SOT, EOT]
        self.vocab = vocab
        self.merges = merges
        self.encoder = dict(zip(vocab, range(len(vocab))))
        self.decoder = {v: k for k, v in self.encoder.items()}
        self.ranks = dict(zip(merges, range(len(merges))))
        self.cache = {SOT: SOT, EOT: EOT}

    def bpe(self, token):
        if token in self.cache:
            return self.cache[token]
        word = tuple(token[:-1]) + (token[-1] + "</w>",)
        while len(word) > 1:
            pairs = set(zip(word[:-1], word[1:]))
            best = min(pairs, key=lambda p: self.ranks.get(p, float("inf")))
            if best not in self.ranks:
                break
            first, second = best
            merged = []
            i = 0
            while i < len(word):
                if i < len(word) - 1 and word[i] == first and word[i + 1] == second:
                    merged.append(first + second)
                    i += 2
                else:
                    merged.append(word[i])
                    i += 1
            word = tuple(merged)
        out = " ".join(word)
        self.cache[token] = out
        return out

    def encode(self, text, context_length=0):
        ids = [self.encoder[SOT]]
        for token in PATTERN.findall(clean(text)):
            token = "".join(self.byte_encoder[b] for b in token.encode("utf-8"))
            ids.extend(self.encoder[t] for t in self.bpe(token).split(" "))
        ids.append(self.encoder[EOT])
        if context_length and len(ids) > context_length:
            ids = ids[:context_length]
            ids[-1] = self.encoder[EOT]
        return ids

    def decode(self, ids):
        text = "".join(self.decoder[i] for i in ids)
        data = bytearray(self.byte_decoder[c] for c in text)
        return data.decode("utf-8", errors="replace").replace("</w>", " ")


def apply(args):
    ref = ClipReference(args.vocab) if args.fn in ("encode", "decode") else None
    with open(args.input, encoding="utf-8") as f:
        values = [json.loads(line) for line in f if line.strip()]
    out = []
    for v in values:
        if args.fn == "encode":
            out.append(ref.encode(v, args.context_length))
        elif args.fn == "decode":
            out.append(ref.decode(v))
        elif args.fn == "clean":
            out.append(clean(v))
        elif args.fn == "unescape":
            out.append(html.unescape(v))
        elif args.fn == "lower":
            out.append(v.lower())
        elif args.fn == "words":
            out.append(PATTERN.findall(clean(v)))
    with open(args.output, "w", encoding="utf-8") as f:
        for v in out:
            f.write(json.dumps(v, ensure_ascii=True) + "\n")


def unicode_table(args):
    """One line per code point assigned in Python's Unicode database (surrogates excluded):
    'hex class lower-hex-sequence space final_sigma_after nonfinal_sigma_before', where class is
    which pre-tokenizer alternative matches the single character (L, N, O, or - for none)."""
    letters = regex.compile(r"[\p{L}]+", regex.IGNORECASE)
    numbers = regex.compile(r"[\p{N}]", regex.IGNORECASE)
    others = regex.compile(r"[^\s\p{L}\p{N}]+", regex.IGNORECASE)
    with open(args.output, "w") as f:
        for cp in range(0x110000):
            if 0xD800 <= cp <= 0xDFFF or unicodedata.category(chr(cp)) == "Cn":
                continue
            c = chr(cp)
            cls = "L" if letters.fullmatch(c) else "N" if numbers.fullmatch(c) else \
                "O" if others.fullmatch(c) else "-"
            lower = "+".join("%x" % ord(x) for x in c.lower())
            # Final_Sigma probes: does c count as a cased letter before / after a capital sigma?
            sigma_after = (c + "\u03a3").lower()[-1] == "\u03c2"
            sigma_before = ("A\u03a3" + c).lower()[1] == "\u03c2"
            f.write("%x %s %s %d %d %d\n" % (cp, cls, lower, int(c.isspace()), int(sigma_after),
                                             int(sigma_before)))


def hf_export(args):
    ref = ClipReference(args.vocab)
    os.makedirs(args.outdir, exist_ok=True)
    with open(os.path.join(args.outdir, "vocab.json"), "w", encoding="utf-8") as f:
        json.dump(ref.encoder, f, ensure_ascii=False)
    with open(os.path.join(args.outdir, "merges.txt"), "w", encoding="utf-8") as f:
        f.write("#version: 0.2\n")
        for a, b in ref.merges:
            f.write(a + " " + b + "\n")


def main():
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="mode", required=True)
    p = sub.add_parser("apply")
    p.add_argument("--fn", required=True,
                   choices=["encode", "decode", "clean", "unescape", "lower", "words"])
    p.add_argument("--vocab")
    p.add_argument("--context-length", type=int, default=0)
    p.add_argument("input")
    p.add_argument("output")
    p = sub.add_parser("unicode-table")
    p.add_argument("output")
    p = sub.add_parser("hf-export")
    p.add_argument("--vocab", required=True)
    p.add_argument("outdir")
    args = parser.parse_args()
    {"apply": apply, "unicode-table": unicode_table, "hf-export": hf_export}[args.mode](args)


if __name__ == "__main__":
    sys.exit(main())
