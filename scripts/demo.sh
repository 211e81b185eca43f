#!/usr/bin/env bash
# The main job on a fresh Debian 12 machine: set up, build, synthesise the demo dataset, learn
# its BPE vocabulary and train the tiny model on CPU with patch dropping and MLM, checkpointing
# as it goes. Today this is the single-process path (`harvest train`); the multi-process run
# (`harvest run`: coordinator + 2 Gloo workers + loaders) and the before/after retrieval table
# join when they land (docs/status.md).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/build.sh
H=build/cli/harvest
RUN=runs/demo
$H --version
$H config check configs/demo.toml
[[ -f $RUN/data/train.jsonl ]] || $H data synth --out $RUN/data --clips 1200 --seed 1
[[ -f $RUN/vocab.txt.gz ]] || $H data vocab --manifest $RUN/data/train.jsonl --size 1000 --out $RUN/vocab.txt.gz
$H train --config configs/demo.toml --set model.vocab=$RUN/vocab.txt.gz \
  --set dist.world_size=1 --set dist.backend=inproc
