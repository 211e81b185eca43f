#!/usr/bin/env bash
# The main job on a fresh Debian 12 machine: set up, build, synthesise the demo dataset (with a
# held-out test split of attribute combinations never seen in training), learn its BPE
# vocabulary, train the tiny model with `harvest run` (coordinator + 2 Gloo workers + their loader
# processes; patch dropping and MLM on; HDF5 checkpoints every 250 steps from 0 to 1500), sweep the
# checkpoints with zero-shot retrieval on the held-out split, and write the run report. The last
# line is the report's JSON summary (t2v_r1_before, t2v_r1_after, v2t_r1_after, steps,
# train_seconds, clips_per_s, data_wait_fraction, ...). See docs/quickstart.md.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
HARVEST_TARGETS=harvest bash scripts/build.sh  # the binary only: no test binaries
H=build/cli/harvest
RUN=runs/demo
$H --version
$H config check configs/demo.toml
[[ -f $RUN/data/test.jsonl ]] || $H data synth --out $RUN/data --clips 1200 --seed 1
[[ -f $RUN/vocab.txt.gz ]] || $H data vocab --manifest $RUN/data/train.jsonl --size 1000 --out $RUN/vocab.txt.gz
started=$SECONDS
# Resumes from the latest committed checkpoint when run again (checkpoint.resume = auto).
$H run --config configs/demo.toml
$H sweep $RUN
echo "train + eval wall time: $((SECONDS - started)) s"
$H report $RUN
