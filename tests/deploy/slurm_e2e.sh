#!/usr/bin/env bash
# tests/deploy/slurm_e2e.sh HARVEST_EXE
#
# End to end: deploy/slurm/harvest.sbatch on a real one-node Slurm cluster started here (Debian's
# slurm-wlm and munge, installed with apt-get when missing; private munged, slurmctld and slurmd
# on non-default ports with every file under one temp dir, so nothing else on the machine is
# touched). Two CPU workers train the tiny model:
#   1. a short job runs to train.steps: COMPLETED, exit 0, checkpoint at train.steps committed;
#      a third task (HARVEST_SPARES=1) is a spare worker that evaluates the committed checkpoints
#      (the final one too) and is told to leave once training is finished and nothing is queued;
#   2. a longer job, its loaders a second srun step placed by the coordinator, gets USR1 mid-run
#      (`scancel --signal=USR1 --batch`, what --signal=B:USR1@N sends before the time limit):
#      the workers stop with a final checkpoint, the script requeues
#      the job (ending the loader step), the job runs again, resumes from that committed
#      checkpoint and completes, and the loader step then ends by itself with 0.
# Exit 0 pass, 1 fail, 77 skip (not root, or apt cannot install the packages).
# shellcheck disable=SC2317 # functions called from traps and through wait_until
set -uo pipefail

if [[ $# -ne 1 ]]; then
  echo "usage: $0 HARVEST_EXE" >&2
  exit 2
fi
harvest=$(realpath "$1")
repo=$(cd "$(dirname "$0")/../.." && pwd)
sbatch_script=$repo/deploy/slurm/harvest.sbatch
overall_deadline=$((SECONDS + 600))
test_start=$SECONDS

skip() { echo "SKIP: $*"; exit 77; }
[[ $(id -u) -eq 0 ]] || skip "needs root (installs slurm-wlm and munge, runs slurmctld and slurmd)"
[[ -x $harvest ]] || { echo "FAIL: $1 is not an executable" >&2; exit 1; }

install_slurm() {
  local packages=(slurm-wlm munge) apt=(apt-get -o DPkg::Lock::Timeout=120 install -y --no-install-recommends)
  export DEBIAN_FRONTEND=noninteractive
  if "${apt[@]}" "${packages[@]}" >/dev/null 2>&1; then return 0; fi
  apt-get -o DPkg::Lock::Timeout=120 update >/dev/null 2>&1 && "${apt[@]}" "${packages[@]}" >/dev/null 2>&1
}
if ! command -v slurmctld >/dev/null || ! command -v slurmd >/dev/null || ! command -v sbatch >/dev/null ||
  ! command -v munged >/dev/null; then
  echo "installing slurm-wlm and munge with apt-get"
  install_slurm || skip "apt-get could not install slurm-wlm and munge"
fi

tmp=$(mktemp -d /tmp/harvest-slurm-e2e.XXXXXX)
chmod 755 "$tmp" # munged wants its socket's folder searchable
daemons=()       # pids of munged, slurmctld, slurmd
submitted=() # job ids, cancelled on exit

log() { printf '[slurm_e2e %4ds] %s\n' $((SECONDS - test_start)) "$*"; }

dump_logs() {
  local f
  for f in "$tmp"/job-*.out "$tmp"/run-*/logs/*.log "$tmp"/slurm/log/*.log; do
    [[ -f $f ]] || continue
    echo "----- $f (last 25 lines)"
    tail -n 25 "$f"
  done
}
fail() {
  echo "FAIL: $*" >&2
  dump_logs >&2
  exit 1
}

cleanup() {
  local pid job deadline
  for job in "${submitted[@]}"; do scancel "$job" 2>/dev/null; done
  deadline=$((SECONDS + 40)) # KillWait=5 below, plus the graceful stop
  for job in "${submitted[@]}"; do
    while [[ $SECONDS -lt $deadline ]] && [[ -n $(squeue -h -j "$job" 2>/dev/null) ]]; do sleep 1; done
  done
  for pid in "${daemons[@]}"; do kill -TERM "$pid" 2>/dev/null; done
  for pid in "${daemons[@]}"; do
    deadline=$((SECONDS + 10))
    while kill -0 "$pid" 2>/dev/null && [[ $SECONDS -lt $deadline ]]; do sleep 0.2; done
    kill -KILL "$pid" 2>/dev/null
  done
  # Job processes left over (only ours: their command lines name this test's temp dir).
  for pid in $(pgrep -f "$tmp/" 2>/dev/null); do kill -KILL "$pid" 2>/dev/null; done
  rm -rf "$tmp"
}
trap cleanup EXIT
trap 'fail "interrupted"' INT TERM

# wait_until SECONDS WHAT COMMAND...: polls COMMAND every 0.5 s; fails naming WHAT at the deadline
# (or at the test's overall deadline, whichever comes first).
wait_until() {
  local limit=$1 what=$2
  shift 2
  local deadline=$((SECONDS + limit))
  if [[ $deadline -gt $overall_deadline ]]; then deadline=$overall_deadline; fi
  until "$@"; do
    if [[ $SECONDS -ge $deadline ]]; then fail "waited ${limit} s (or the test's 600 s) for $what"; fi
    sleep 0.5
  done
}

port_free() { [[ -z $(ss -Hltn "sport = :$1" 2>/dev/null) ]]; }
free_port() { # FIRST: the first free TCP port from FIRST on, in steps of 7
  local port=$1
  until port_free "$port"; do port=$((port + 7)); done
  echo "$port"
}

# ---- a private Slurm cluster: one node, this machine
node=$(hostname -s)
slurm=$tmp/slurm
mkdir -p "$slurm"/{state,spool,log,munge}
chmod 755 "$slurm" "$slurm/munge"
dd if=/dev/urandom of="$slurm/munge/munge.key" bs=1024 count=1 status=none
chmod 400 "$slurm/munge/munge.key"
ctld_port=$(free_port 16817)
slurmd_port=$(free_port $((ctld_port + 1)))
coordinator_port=$(free_port $((slurmd_port + 1000)))
export SLURM_CONF=$slurm/slurm.conf
cat >"$SLURM_CONF" <<EOF
ClusterName=harvest-e2e
SlurmctldHost=$node(127.0.0.1)
SlurmctldPort=$ctld_port
SlurmdPort=$slurmd_port
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$slurm/munge/munge.sock
StateSaveLocation=$slurm/state
SlurmdSpoolDir=$slurm/spool
SlurmctldPidFile=$slurm/slurmctld.pid
SlurmdPidFile=$slurm/slurmd.pid
SlurmctldLogFile=$slurm/log/slurmctld.log
SlurmdLogFile=$slurm/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/filetxt
JobCompLoc=$slurm/jobcomp.txt
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
SchedulerType=sched/builtin
SlurmdParameters=config_overrides
ReturnToService=2
MpiDefault=none
KillWait=5
NodeName=$node NodeAddr=127.0.0.1 CPUs=4 State=UNKNOWN
PartitionName=e2e Nodes=$node Default=YES MaxTime=INFINITE State=UP
EOF

log "starting munged, slurmctld (port $ctld_port) and slurmd (port $slurmd_port) in $slurm"
t0=$SECONDS
munged --foreground --force --socket="$slurm/munge/munge.sock" --key-file="$slurm/munge/munge.key" \
  --pid-file="$slurm/munge/munged.pid" --log-file="$slurm/log/munged.log" \
  --seed-file="$slurm/munge/munged.seed" >>"$slurm/log/munged.log" 2>&1 &
daemons+=($!)
wait_until 20 "munged's socket" test -S "$slurm/munge/munge.sock"
slurmctld -D -c -f "$SLURM_CONF" >>"$slurm/log/slurmctld.log" 2>&1 &
daemons+=($!)
slurmd -D -f "$SLURM_CONF" >>"$slurm/log/slurmd.log" 2>&1 &
daemons+=($!)
node_idle() { [[ $(sinfo -h -n "$node" -o %t 2>/dev/null) == idle ]]; }
wait_until 60 "node $node to be idle in sinfo" node_idle
log "cluster up: node $node idle after $((SECONDS - t0)) s"

# ---- tiny data and config (tests/worker/test_run_cli.cpp's)
"$harvest" data synth --out "$tmp/data" --clips 48 --seed 3 --size 32 --frames 4 >/dev/null 2>&1 ||
  fail "harvest data synth failed"
"$harvest" data vocab --manifest "$tmp/data/train.jsonl" --size 700 --out "$tmp/vocab.txt.gz" >/dev/null 2>&1 ||
  fail "harvest data vocab failed"
cat >"$tmp/tiny.toml" <<EOF
[model]
vocab = "$tmp/vocab.txt.gz"
image_size = 32
frames = 4
context_length = 16
freeze_text = false

[data]
train_manifest = "$tmp/data/train.jsonl"
batch_size = 2

[train]
device = "cpu"
threads = 1

[dist]
backend = "gloo"
timeout_s = 20
EOF

export HARVEST_EXE=$harvest HARVEST_SUPERVISE=$repo/deploy/bin/supervise HARVEST_PORT=$coordinator_port
# harvest.sbatch binds the first address of `hostname -I`; a machine with none gets loopback.
if [[ -z $(hostname -I 2>/dev/null | tr -d ' ') ]]; then export HARVEST_IFACE=lo; fi
submit() { # RUN_NAME STEPS EVERY [SECTION.KEY=VALUE ...]: prints the job id ($NTASKS tasks, default 2)
  local name=$1 steps=$2 every=$3
  shift 3
  sbatch --parsable --ntasks="${NTASKS:-2}" --chdir="$tmp" --output="$tmp/job-%j.out" --job-name="e2e-$name" \
    "$sbatch_script" "$tmp/tiny.toml" "logging.run_dir=$tmp/run-$name" "train.steps=$steps" \
    "checkpoint.every_steps=$every" "$@"
}
job_field() { scontrol show job "$1" 2>/dev/null | grep -o "$2=[^ ]*" | head -n 1 | cut -d= -f2; }
job_done() { [[ $(job_field "$1" JobState) =~ ^(COMPLETED|FAILED|CANCELLED|TIMEOUT|NODE_FAIL|OUT_OF_MEMORY)$ ]]; }
committed_step() { # RUN_DIR: newest committed step, 0 when none
  local steps
  steps=$("$harvest" ckpt inspect --json "$1/checkpoints" 2>/dev/null | grep -o 'step-[0-9]*' |
    sed -E 's/^step-0*([0-9])/\1/' | sort -n | tail -n 1)
  echo "${steps:-0}"
}
expect_completed() { # JOB RUN_NAME STEPS
  local state exit_code step
  state=$(job_field "$1" JobState)
  exit_code=$(job_field "$1" ExitCode)
  [[ $state == COMPLETED && $exit_code == 0:0 ]] || fail "job $1 ended $state with exit code $exit_code (expected COMPLETED 0:0)"
  step=$(committed_step "$tmp/run-$2")
  [[ $step -eq $3 ]] || fail "job $1: committed step $step, expected train.steps = $3"
  grep -q "training finished" "$tmp/job-$1.out" || fail "job $1: no 'training finished' in its output"
}

# ---- 1. a job that runs to the end (worker-started loaders), with a third task as a spare worker
# that evaluates the committed checkpoints (the final one after training) and then leaves
t0=$SECONDS
job=$(HARVEST_SPARES=1 NTASKS=3 submit short 6 3 eval.every_steps=3 "eval.manifest=$tmp/data/test.jsonl") ||
  fail "sbatch refused the short job"
submitted+=("$job")
log "job $job (short: 6 steps, 2 workers and a spare) submitted"
wait_until 240 "job $job to finish" job_done "$job"
expect_completed "$job" short 6
grep -q "loader task(s)" "$tmp/job-$job.out" && fail "job $job: a loader step without data.loader_placement = coordinator"
coordinator_log=$tmp/run-short/logs/coordinator.log
grep -q "3 worker task(s) (1 spare)" "$tmp/job-$job.out" || fail "job $job: the script did not start 3 tasks with 1 spare"
grep -Eq "eval of step [0-9]+ handed to spare worker" "$coordinator_log" ||
  fail "job $job: no eval job went to the spare worker"
grep -Eq "eval of step [0-9]+ by member [0-9]+: retrieval.t2v_r1=" "$coordinator_log" ||
  fail "job $job: the spare worker's evaluation did not come back with metrics"
grep -q "eval of step 6 by member" "$coordinator_log" ||
  fail "job $job: the final checkpoint (step 6) was not evaluated"
grep -Eq "spare worker [0-9]+ told to leave" "$coordinator_log" ||
  fail "job $job: the coordinator did not tell the spare to leave when training was finished"
short_s=$((SECONDS - t0))
log "job $job COMPLETED, checkpoint step 6 committed, the spare evaluated and left: ${short_s} s from submission"

# ---- 2. a job stopped by USR1 mid-run, requeued by the script, resumed, completed
target=60
t0=$SECONDS
job=$(submit long $target 5 data.loader_placement=coordinator) || fail "sbatch refused the long job"
submitted+=("$job")
log "job $job (long: $target steps, checkpoint every 5, 2 coordinator-placed loaders) submitted"
has_checkpoint() { [[ -f $tmp/run-long/checkpoints/latest ]]; } # the commit marker; cheap to poll
wait_until 240 "job $job's first committed checkpoint" has_checkpoint
first_ckpt_s=$((SECONDS - t0))
usr1_step=$(committed_step "$tmp/run-long")
t1=$SECONDS
scancel --signal=USR1 --batch "$job" || fail "scancel --signal=USR1 --batch $job failed"
log "first checkpoint after ${first_ckpt_s} s; USR1 sent with step $usr1_step committed"
requeued() { [[ $(job_field "$job" Restarts) -ge 1 ]]; }
wait_until 120 "job $job to be requeued after USR1" requeued
requeue_s=$((SECONDS - t1))
stop_step=$(committed_step "$tmp/run-long")
[[ $stop_step -ge $usr1_step && $stop_step -lt $target ]] ||
  fail "job $job: committed step $stop_step after the stop, expected in [$usr1_step, $target)"
grep -q "stopped before train.steps: requeueing" "$tmp/job-$job.out" ||
  fail "job $job was requeued, but not by harvest.sbatch's stop path"
grep -q "starting 2 coordinator-placed loader task(s)" "$tmp/job-$job.out" ||
  fail "job $job: the script did not start the loader step"
grep -q "loader step ended with" "$tmp/job-$job.out" ||
  fail "job $job: the script did not end the loader step after the stop"
log "job $job requeued ${requeue_s} s after USR1, stopped at committed step $stop_step"
# Slurm holds a requeued batch job back (BeginTime, about 2 min); let it start at once.
if [[ $(job_field "$job" Reason) == BeginTime ]]; then scontrol update JobId="$job" StartTime=now; fi
t2=$SECONDS
wait_until 300 "requeued job $job to finish" job_done "$job"
rerun_s=$((SECONDS - t2))
expect_completed "$job" long $target
grep -q "resumed from .*step-0*$stop_step/part-00000-of-00002.h5 at step $stop_step" "$tmp/run-long/logs/worker0.log" ||
  fail "job $job: worker 0 did not resume from step $stop_step (no 'resumed from ... at step $stop_step')"
restarted_from_0=$(awk '/resumed from/ { resumed = 1 } resumed && /training from step 0 to/' "$tmp/run-long/logs/worker0.log")
[[ -z $restarted_from_0 ]] || fail "job $job: worker 0 trained from step 0 again after resuming: $restarted_from_0"
last_loader_end=$(grep -o "loader step ended with [0-9]*" "$tmp/job-$job.out" | tail -n 1)
[[ $last_loader_end == "loader step ended with 0" ]] ||
  fail "job $job: after training finished the loader step did not end by itself with 0 ($last_loader_end)"
grep -q "2 loader(s) told to stop" "$tmp/run-long/logs/coordinator.log" ||
  fail "job $job: the coordinator did not tell the 2 loaders to stop at the end"
log "job $job ran again, resumed at step $stop_step and COMPLETED, checkpoint step $target committed: ${rerun_s} s after release"

log "PASS: short job ${short_s} s; long job: first checkpoint ${first_ckpt_s} s, USR1 to requeued ${requeue_s} s," \
  "rerun to completion ${rerun_s} s; whole test $((SECONDS - test_start)) s"
exit 0
