"""The heap policy's effect on a training run (core/heap.hpp), A/B: short CPU demo trainings
(`harvest run`, configs/demo.toml: coordinator + 2 Gloo workers + loaders, patch dropping on)
alternate HARVEST_HEAP=system (glibc's defaults) and HARVEST_HEAP=retain (harvest's default).
Per run: the median step time of rank 0 (steps after the first 20), and the CPU seconds and
minor page faults of every process of the run (getrusage of the waited-for children).

    .venv/bin/python3 bench/heap/heap_ab.py [--harvest build/cli/harvest] [--pairs 3]
        [--steps 120] [--work DIR]

Makes its own small dataset and vocabulary under --work (kept for the next time). Prints one
line per run and one JSON object last: medians per policy and the ratios retain / system.
"""
import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile


def run(cmd, env=None):
    subprocess.run(cmd, check=True, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)


def one_run(args, data, policy, index):
    run_dir = os.path.join(args.work, f"run-{policy}-{index}")
    subprocess.run(["rm", "-rf", run_dir], check=True)
    env = dict(os.environ, HARVEST_HEAP=policy)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    run([args.harvest, "run", "--config", "configs/demo.toml",
         "--set", f"model.vocab={data}/vocab.txt.gz",
         "--set", f"data.train_manifest={data}/train.jsonl",
         "--set", f"eval.manifest={data}/test.jsonl",
         "--set", f"train.steps={args.steps}", "--set", "train.unmasked_steps=0",
         "--set", f"logging.run_dir={run_dir}", "--set", "checkpoint.every_steps=100000",
         "--set", "checkpoint.save_initial=false",
         "--set", f"coordinator.address=tcp://127.0.0.1:{args.port}"], env=env)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    steps = []
    with open(os.path.join(run_dir, "metrics.jsonl")) as f:
        for line in f:
            r = json.loads(line)
            if r.get("rank") == 0 and "step_s" in r and r.get("step", 0) > 20:
                steps.append(r["step_s"])
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {"policy": policy, "median_step_s": statistics.median(steps), "cpu_s": cpu,
            "minor_faults": after.ru_minflt - before.ru_minflt}


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--harvest", default="build/cli/harvest")
    p.add_argument("--pairs", type=int, default=3)
    p.add_argument("--steps", type=int, default=120)
    p.add_argument("--port", type=int, default=29817)
    p.add_argument("--work", default=os.path.join(tempfile.gettempdir(), "harvest-heap-ab"))
    args = p.parse_args()
    args.harvest = os.path.abspath(args.harvest)
    os.chdir(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
    data = os.path.join(args.work, "data")
    if not os.path.exists(os.path.join(data, "vocab.txt.gz")):
        run([args.harvest, "data", "synth", "--out", data, "--clips", "400", "--seed", "1"])
        run([args.harvest, "data", "vocab", "--manifest", f"{data}/train.jsonl", "--size", "1000",
             "--out", f"{data}/vocab.txt.gz"])
    results = []
    for i in range(args.pairs):
        for policy in ("system", "retain"):  # A B A B ...
            r = one_run(args, data, policy, i)
            print(json.dumps(r), flush=True)
            results.append(r)
    summary = {"pairs": args.pairs, "steps": args.steps}
    for policy in ("system", "retain"):
        mine = [r for r in results if r["policy"] == policy]
        for key in ("median_step_s", "cpu_s", "minor_faults"):
            summary[f"{policy}_{key}"] = statistics.median(r[key] for r in mine)
    for key in ("median_step_s", "cpu_s", "minor_faults"):
        summary[f"ratio_{key}"] = summary[f"retain_{key}"] / summary[f"system_{key}"]
    print(json.dumps(summary))


if __name__ == "__main__":
    sys.exit(main())
