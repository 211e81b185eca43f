#!/usr/bin/env bash
# netns_e2e.sh HARVEST_EXE
#
# A multi-host job on one machine: three network namespaces (hosts A, B, C) on a private subnet,
# joined by veth pairs to a bridge that lives in a fourth namespace (the root namespace's
# networking is not touched). Host A runs `harvest coordinator`, hosts B and C one
# `harvest worker` each (ranks 0 and 1) under deploy/bin/supervise, the way a scheduler would
# start them. The control plane runs over tcp with CURVE on: a server key pair and one key pair
# per worker and for the loaders, and an authorized_keys file listing them. All hosts share /tmp.
#
# Checks:
#   1. a clean run with coordinator-placed loaders (data.loader_placement = coordinator): two
#      `harvest loader`s on host A feed the workers on B and C over each worker's CURVE data
#      endpoint; it trains to train.steps: both workers exit 0, the checkpoint at train.steps is
#      committed, the coordinator tells the loaders to stop (they exit 0) and exits 0 on SIGTERM;
#      the traffic runs between the namespace addresses
#      (coordinator bound on host A's address, Gloo on the workers' dist.host; a wildcard
#      listener on host B, c10d's TCPStore, is printed as a NOTE, not failed);
#   2. a peer without an authorized key is refused: `harvest status` from host C without keys
#      and with a stranger's keys gets no answer, with a worker's key it gets the members; the
#      coordinator logs the refused stranger;
#   3. a second run (worker-started loaders; coordinator.exit_when_done, so the coordinator
#      exits 0 by itself at the end): the harvest worker process on host C is SIGKILLed after
#      the first commit,
#      supervise restarts it, the group resumes from the last committed checkpoint and trains to
#      train.steps; steps trained twice (before the kill, after the resume) must log the same
#      losses; the times from the kill to the abort, the restart and the next step are printed.
#
# Exit 0: pass; 1: fail (the message names what did not happen, the logs' tails follow);
# 77: skipped (not root, or network namespaces not permitted). Every wait has a deadline and
# the whole test a 480 s budget; the EXIT trap kills what it started, deletes the namespaces
# (veths go with them) and the temp folder (kept when NETNS_E2E_KEEP is set, for debugging).
set -uo pipefail

if [[ $# -ne 1 ]]; then
  echo "usage: netns_e2e.sh HARVEST_EXE" >&2
  exit 2
fi
HARVEST=$(realpath "$1")
SUPERVISE=$(realpath "$(dirname "$0")/../../deploy/bin/supervise")
if [[ ! -x "$HARVEST" ]]; then echo "netns_e2e: $1 is not an executable" >&2; exit 2; fi
if [[ ! -x "$SUPERVISE" ]]; then echo "netns_e2e: $SUPERVISE is not an executable" >&2; exit 2; fi

if [[ $EUID -ne 0 ]]; then
  echo "netns_e2e: SKIP: needs root to create network namespaces (running as uid $EUID)"
  exit 77
fi
if ! command -v ip >/dev/null; then
  echo "netns_e2e: SKIP: iproute2's 'ip' command is not installed"
  exit 77
fi

T0=$(date +%s%3N)
now_ms() { date +%s%3N; }
elapsed() { printf '%d.%03d' $(( ($(now_ms) - $1) / 1000 )) $(( ($(now_ms) - $1) % 1000 )); }
ms_to_s() { printf '%d.%03d' $(( $1 / 1000 )) $(( $1 % 1000 )); }
log() { echo "netns_e2e [+$(elapsed "$T0") s] $*"; }

# Unique per run, so parallel runs (ctest -j) do not clash.
SUFFIX=$(printf '%x-%04x' $$ $RANDOM)
NS_BR=hv-br-$SUFFIX
NS_A=hv-a-$SUFFIX
NS_B=hv-b-$SUFFIX
NS_C=hv-c-$SUFFIX
NET=10.231.$(( RANDOM % 200 + 20 ))
IP_A=$NET.1
IP_B=$NET.2
IP_C=$NET.3
PORT=29500
ADDRESS=tcp://$IP_A:$PORT
WORK=$(mktemp -d /tmp/harvest-netns-XXXXXX)
CREATED_NS=()
PIDS=()
WATCHDOG=

cleanup() {
  local code=$?
  trap - EXIT INT TERM
  exec 2>/dev/null  # no "Killed" job notices for the processes stopped below
  if [[ -n "$WATCHDOG" ]]; then
    pkill -KILL -P "$WATCHDOG"
    kill -KILL "$WATCHDOG"
  fi
  for pid in "${PIDS[@]}"; do kill -KILL "$pid" 2>/dev/null; done
  # Anything else left in our namespaces (loaders, a restarted worker) is ours too.
  for ns in "${CREATED_NS[@]}"; do
    for pid in $(ip netns pids "$ns" 2>/dev/null); do kill -KILL "$pid" 2>/dev/null; done
  done
  wait 2>/dev/null
  for ns in "${CREATED_NS[@]}"; do ip netns del "$ns" 2>/dev/null; done
  if [[ -n "${NETNS_E2E_KEEP:-}" ]]; then echo "netns_e2e: kept $WORK"; else rm -rf "$WORK"; fi
  exit "$code"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
# The whole test stays well inside ctest's timeout, so the trap (not a SIGKILL) ends it.
BUDGET_S=480
trap 'fail "the test ran past its $BUDGET_S s budget"' USR1
(sleep "$BUDGET_S" && kill -USR1 $$) 2>/dev/null &
WATCHDOG=$!

dump_logs() {
  for f in "$WORK"/logs/*.log; do
    [[ -f "$f" ]] || continue
    echo "----- tail of ${f#"$WORK"/} -----"
    tail -n 25 "$f"
  done
}
fail() {
  echo "netns_e2e: FAIL: $*" >&2
  dump_logs >&2
  exit 1
}

# Processes that must stay up while waiting (name=pid); a wait fails at once when one ends.
declare -A MUST_LIVE=()
check_alive() {
  local name
  for name in "${!MUST_LIVE[@]}"; do
    if ! kill -0 "${MUST_LIVE[$name]}" 2>/dev/null; then
      wait "${MUST_LIVE[$name]}"
      fail "$name (pid ${MUST_LIVE[$name]}) exited early with $?"
    fi
  done
}

# wait_for SECONDS WHAT COMMAND...: poll COMMAND until it succeeds; fail naming WHAT at the deadline.
wait_for() {
  local limit=$1 what=$2
  shift 2
  local end=$(( $(now_ms) + limit * 1000 ))
  until "$@"; do
    check_alive
    (( $(now_ms) < end )) || fail "$what did not happen within $limit s"
    sleep 0.2
  done
}
# wait_exit SECONDS WHAT PID: the exit status of background PID, which must end within SECONDS.
wait_exit() {
  local limit=$1 what=$2 pid=$3
  local end=$(( $(now_ms) + limit * 1000 ))
  while kill -0 "$pid" 2>/dev/null; do
    (( $(now_ms) < end )) || fail "$what (pid $pid) did not exit within $limit s"
    sleep 0.2
  done
  wait "$pid"
}

# ---- network: a bridge namespace and three hosts -------------------------------------------
# Namespaces left by an earlier run that was SIGKILLed (its pid, in the name, is gone).
for ns in $(ip netns list 2>/dev/null | awk '{print $1}' | grep -E '^hv-(br|a|b|c)-[0-9a-f]+-[0-9a-f]{4}$'); do
  owner=$(cut -d- -f3 <<<"$ns")
  if ! kill -0 $((16#$owner)) 2>/dev/null; then
    echo "netns_e2e: removing $ns, left by an earlier run (pid $((16#$owner)) is gone)"
    for pid in $(ip netns pids "$ns" 2>/dev/null); do kill -KILL "$pid" 2>/dev/null; done
    ip netns del "$ns" 2>/dev/null
  fi
done
if ! ip netns add "$NS_BR" 2>"$WORK/netns.err"; then
  echo "netns_e2e: SKIP: 'ip netns add' is not permitted here: $(cat "$WORK/netns.err")"
  exit 77
fi
CREATED_NS+=("$NS_BR")
setup_started=$(now_ms)
ip -n "$NS_BR" link set lo up || fail "lo up in $NS_BR"
ip -n "$NS_BR" link add br0 type bridge || fail "creating the bridge in $NS_BR"
ip -n "$NS_BR" link set br0 up || fail "bridge up"
i=0
for host in a b c; do
  i=$((i + 1))
  ns=hv-$host-$SUFFIX
  ip netns add "$ns" || fail "ip netns add $ns"
  CREATED_NS+=("$ns")
  ip -n "$ns" link set lo up || fail "lo up in $ns"
  # The veth's bridge end stays in $NS_BR, the host end becomes eth0 in the host's namespace.
  ip -n "$NS_BR" link add "port-$host" type veth peer name eth0 netns "$ns" || fail "veth for $ns"
  ip -n "$NS_BR" link set "port-$host" master br0 up || fail "attaching port-$host to br0"
  ip -n "$ns" addr add "$NET.$i/24" dev eth0 || fail "address $NET.$i in $ns"
  ip -n "$ns" link set eth0 up || fail "eth0 up in $ns"
done
reachable() { ip netns exec "$NS_B" ping -c 1 -W 1 "$IP_A" >/dev/null 2>&1 &&
  ip netns exec "$NS_C" ping -c 1 -W 1 "$IP_B" >/dev/null 2>&1; }
if command -v ping >/dev/null; then wait_for 10 "B reaching A and C reaching B by ping" reachable; fi
log "network up in $(elapsed "$setup_started") s: bridge in $NS_BR; A=$IP_A ($NS_A) B=$IP_B ($NS_B) C=$IP_C ($NS_C)"

# ---- data, keys, config ---------------------------------------------------------------------
mkdir -p "$WORK/logs" "$WORK/keys"
"$HARVEST" data synth --out "$WORK/data" --clips 48 --seed 3 --size 32 --frames 4 \
  >"$WORK/logs/setup.log" 2>&1 || fail "harvest data synth"
"$HARVEST" data vocab --manifest "$WORK/data/train.jsonl" --size 700 --out "$WORK/vocab.txt.gz" \
  >>"$WORK/logs/setup.log" 2>&1 || fail "harvest data vocab"
for k in server coordinator worker0 worker1 loader stranger; do
  "$HARVEST" keygen --out "$WORK/keys/$k" >>"$WORK/logs/setup.log" 2>&1 || fail "harvest keygen $k"
done
{ echo "# the two workers and the loaders"; cat "$WORK/keys/worker0.public"; echo
  cat "$WORK/keys/worker1.public"; echo; cat "$WORK/keys/loader.public"; echo; } >"$WORK/keys/authorized"
sed -i '/^$/d' "$WORK/keys/authorized"

# run.toml: what every host shares; each role adds its own keys, rank and address with --set.
cat >"$WORK/run.toml" <<EOF
[model]
vocab = "$WORK/vocab.txt.gz"
image_size = 32
frames = 4
context_length = 16
freeze_text = false

[data]
train_manifest = "$WORK/data/train.jsonl"
batch_size = 2

[train]
device = "cpu"
threads = 1
log_every = 1

[dist]
world_size = 2
backend = "gloo"
timeout_s = 20

[coordinator]
address = "$ADDRESS"
curve_server_public = "$WORK/keys/server.public"
curve_authorized_keys = "$WORK/keys/authorized"
EOF

client_keys() {  # --set arguments for a client holding key pair $1
  echo --set "coordinator.curve_client_public=$WORK/keys/$1.public" \
    --set "coordinator.curve_client_secret=$WORK/keys/$1.secret"
}

# status_from NS TIMEOUT [KEYNAME]: `harvest status` from a host, with key pair KEYNAME or none.
status_from() {
  local ns=$1 timeout=$2 key=${3:-}
  if [[ -z "$key" ]]; then  # a plain ZeroMQ client: no server key, no client key
    ip netns exec "$ns" "$HARVEST" status --coordinator "$ADDRESS" --timeout "$timeout" --json
    return
  fi
  local sets=()
  read -r -a sets <<<"$(client_keys "$key")"
  ip netns exec "$ns" "$HARVEST" status --config "$WORK/run.toml" --coordinator "$ADDRESS" \
    --timeout "$timeout" --json "${sets[@]}"
}

# ---- one job: coordinator on A, rank 0 on B, rank 1 on C -------------------------------------
COORD=0
SUP_B=0
SUP_C=0
LOADERS=()
PLACED=0
EXIT_WHEN_DONE=0
start_job() {  # start_job NAME STEPS EVERY placed|exit-when-done
  local name=$1 steps=$2 every=$3
  PLACED=0
  EXIT_WHEN_DONE=0
  [[ $4 == placed ]] && PLACED=1
  [[ $4 == exit-when-done ]] && EXIT_WHEN_DONE=1
  RUN_DIR=$WORK/$name
  local common=(--config "$WORK/run.toml" --set "logging.run_dir=$RUN_DIR"
    --set "train.steps=$steps" --set "checkpoint.every_steps=$every")
  # placed: two loaders run on host A (a CPU host), the coordinator deals them to the workers
  # and tells them to stop once training is finished. exit-when-done: the coordinator then exits
  # by itself (coordinator.exit_when_done); otherwise SIGTERM stops it.
  if [[ $PLACED -eq 1 ]]; then common+=(--set "data.loader_placement=coordinator"); fi
  if [[ $EXIT_WHEN_DONE -eq 1 ]]; then common+=(--set "coordinator.exit_when_done=true"); fi
  # The coordinator never uses a client key pair, but the config check wants one beside
  # curve_server_public; it gets its own (not in authorized_keys).
  # shellcheck disable=SC2046
  ip netns exec "$NS_A" "$HARVEST" coordinator "${common[@]}" \
    --set "coordinator.curve_server_secret=$WORK/keys/server.secret" $(client_keys coordinator) \
    >"$WORK/logs/$name-coordinator.log" 2>&1 &
  COORD=$!
  PIDS+=("$COORD")
  # shellcheck disable=SC2046  # client_keys prints separate words on purpose
  ip netns exec "$NS_B" "$SUPERVISE" --max-restarts 2 --delay 0.2 -- \
    "$HARVEST" worker --rank 0 "${common[@]}" --set "dist.host=$IP_B" $(client_keys worker0) \
    >"$WORK/logs/$name-worker0.log" 2>&1 &
  SUP_B=$!
  PIDS+=("$SUP_B")
  # shellcheck disable=SC2046
  ip netns exec "$NS_C" "$SUPERVISE" --max-restarts 2 --delay 0.2 -- \
    "$HARVEST" worker --rank 1 "${common[@]}" --set "dist.host=$IP_C" $(client_keys worker1) \
    >"$WORK/logs/$name-worker1.log" 2>&1 &
  SUP_C=$!
  PIDS+=("$SUP_C")
  MUST_LIVE=([coordinator on host A]=$COORD [supervise of rank 0 on host B]=$SUP_B
    [supervise of rank 1 on host C]=$SUP_C)
  LOADERS=()
  if [[ $PLACED -eq 1 ]]; then
    local i
    for i in 0 1; do
      # shellcheck disable=SC2046
      ip netns exec "$NS_A" "$HARVEST" loader "${common[@]}" $(client_keys loader) \
        >"$WORK/logs/$name-loader$i.log" 2>&1 &
      LOADERS+=("$!")
      PIDS+=("$!")
      MUST_LIVE["loader $i on host A"]=$!
    done
  fi
}

# The step of the newest committed checkpoint of run folder $1 (0 if none).
committed_step() {
  local latest=$1/checkpoints/latest
  [[ -f "$latest" ]] || { echo 0; return; }
  local s  # the marker is JSON: "latest": "step-000000000020"
  s=$(sed -n 's/.*"latest": *"step-0*\([0-9][0-9]*\)".*/\1/p' "$latest" | head -n 1)
  echo "${s:-0}"
}
committed_at_least() { (( $(committed_step "$1") >= $2 )); }
status_answers() { status_from "$NS_C" 1 worker1 >"$WORK/status.json" 2>/dev/null; }
both_running() {
  status_answers && [[ $(grep -o '"state": *"running"' "$WORK/status.json" | wc -l) -ge 2 ]]
}

finish_job() {  # finish_job NAME STEPS: workers exit 0, STEPS committed, coordinator stops cleanly
  local name=$1 steps=$2 rc
  MUST_LIVE=()
  wait_exit 180 "worker rank 0 on host B ($name)" "$SUP_B"
  rc=$?
  [[ $rc -eq 0 ]] || fail "worker rank 0 on host B ($name) exited $rc, expected 0"
  wait_exit 30 "worker rank 1 on host C ($name)" "$SUP_C"
  rc=$?
  [[ $rc -eq 0 ]] || fail "worker rank 1 on host C ($name) exited $rc, expected 0"
  local step
  step=$(committed_step "$RUN_DIR")
  [[ $step -eq $steps ]] || fail "$name: the last committed checkpoint is step $step, expected $steps"
  "$HARVEST" ckpt inspect "$RUN_DIR/checkpoints" >"$WORK/logs/$name-inspect.log" 2>&1 ||
    fail "$name: harvest ckpt inspect of the checkpoint folder failed"
  grep -Eq "step-0*$steps +step $steps +2 part" "$WORK/logs/$name-inspect.log" ||
    fail "$name: harvest ckpt inspect does not list step $steps with 2 parts: $(cat "$WORK/logs/$name-inspect.log")"
  local stop_started i
  stop_started=$(now_ms)
  if [[ $PLACED -eq 1 ]]; then
    # Training is finished: the coordinator tells the loaders to stop.
    for i in "${!LOADERS[@]}"; do
      wait_exit 20 "loader $i on host A ($name) after training finished" "${LOADERS[$i]}"
      rc=$?
      [[ $rc -eq 0 ]] || fail "loader $i ($name) exited $rc, expected 0 after the coordinator's shutdown"
    done
    grep -q "training finished: step $steps is committed and no worker is left; 2 loader(s) told to stop" \
      "$WORK/logs/$name-coordinator.log" || fail "$name: the coordinator did not log telling 2 loaders to stop"
    log "$name: both loaders exited 0 by themselves $(elapsed "$stop_started") s after the workers"
  fi
  if [[ $EXIT_WHEN_DONE -eq 1 ]]; then
    wait_exit 20 "coordinator on host A ($name) exiting by itself (coordinator.exit_when_done)" "$COORD"
    rc=$?
    [[ $rc -eq 0 ]] || fail "coordinator ($name) exited $rc, expected 0 once the job was done"
    log "$name: coordinator exited 0 by itself $(elapsed "$stop_started") s after the workers"
    return
  fi
  kill -TERM "$COORD"
  wait_exit 20 "coordinator on host A ($name) after SIGTERM" "$COORD"
  rc=$?
  [[ $rc -eq 0 ]] || fail "coordinator ($name) exited $rc after SIGTERM, expected 0"
  log "$name: coordinator stopped by SIGTERM in $(elapsed "$stop_started") s, exit 0"
}

# ---- run 1: a clean run, CURVE refusal, addresses --------------------------------------------
STEPS1=20
log "run 1: $STEPS1 steps, checkpoint every 10"
run1_started=$(now_ms)
start_job clean $STEPS1 10 placed
wait_for 60 "an answer from the coordinator at $ADDRESS to host C's authorized status" status_answers
log "run 1: coordinator answers host C after $(elapsed "$run1_started") s"
wait_for 90 "both workers registered and running (harvest status from host C)" both_running
log "run 1: both workers running after $(elapsed "$run1_started") s; harvest status from host C with worker1's key:"
tr -d ' \n' <"$WORK/status.json" | grep -o '"members":\[.*\]' | grep -o '{[^}]*}' |
  sed 's/^/    /' || fail "no members in the status reply: $(cat "$WORK/status.json")"
bridge_bytes() {  # bytes hosts B and C sent into the bridge (rx of their bridge ports)
  local total=0 port
  for port in port-b port-c; do
    total=$((total + $(ip netns exec "$NS_BR" cat "/sys/class/net/$port/statistics/rx_bytes")))
  done
  echo "$total"
}

# Traffic goes between the namespace addresses: A listens on its own address only, B and C hold
# connections to A's address and to each other (Gloo).
ip netns exec "$NS_A" ss -tln >"$WORK/ss-a.txt"
grep -q " $IP_A:$PORT " "$WORK/ss-a.txt" || fail "the coordinator is not listening on $IP_A:$PORT in host A: $(cat "$WORK/ss-a.txt")"
wait_for 30 "Gloo connections between $IP_B and $IP_C" \
  bash -c "ip netns exec $NS_B ss -tn | grep -q '$IP_B:[0-9]* *$IP_C:'"
ip netns exec "$NS_B" ss -tn >"$WORK/ss-b.txt"
ip netns exec "$NS_B" ss -tln >"$WORK/ss-b-listen.txt"
# c10d's TCPStore server listens on every interface whatever dist.host says: note it, as a known
# gap, rather than fail; the connections above show the traffic uses the namespace addresses.
listeners_b=$(awk 'NR > 1 {print $4}' "$WORK/ss-b-listen.txt" | tr '\n' ' ')
if grep -Eq '^LISTEN +[0-9]+ +[0-9]+ +(\*|0\.0\.0\.0|\[::\]):' "$WORK/ss-b-listen.txt"; then
  log "NOTE: host B (rank 0) has a wildcard listener, not bound to dist.host $IP_B: $listeners_b"
fi
ip netns exec "$NS_C" ss -tn >"$WORK/ss-c.txt"
grep -q "$IP_B:[0-9]* *$IP_A:$PORT" "$WORK/ss-b.txt" || fail "no connection from host B ($IP_B) to the coordinator at $IP_A:$PORT"
grep -q "$IP_C:[0-9]* *$IP_A:$PORT" "$WORK/ss-c.txt" || fail "no connection from host C ($IP_C) to the coordinator at $IP_A:$PORT"
grep -q "$IP_C:[0-9]* *$IP_B:" "$WORK/ss-c.txt" || fail "no Gloo connection from host C ($IP_C) to host B ($IP_B)"
# The data plane: the loaders on host A connect to each worker's own data endpoint (CURVE, the
# workers' keys from the shard plan) and batches flow to B and C.
data_port() {  # the port worker $1's log says its loader hub listens on
  sed -n "s|.*listening for coordinator-placed loaders at tcp://$2:\([0-9]*\).*|\1|p" \
    "$WORK/logs/clean-worker$1.log" | head -n 1
}
port_b=$(data_port 0 "$IP_B")
port_c=$(data_port 1 "$IP_C")
[[ -n "$port_b" && -n "$port_c" ]] || fail "the workers did not log their data endpoints on $IP_B and $IP_C"
wait_for 30 "loaders on host A connected to both workers' data endpoints ($IP_B:$port_b, $IP_C:$port_c)" \
  bash -c "ip netns exec $NS_A ss -tn | grep -q '$IP_B:$port_b' && ip netns exec $NS_A ss -tn | grep -q '$IP_C:$port_c'"
grep -q "loader: to feed rank" "$WORK/logs/clean-loader0.log" ||
  fail "loader 0 on host A logged no assignment to a worker"
log "data plane: loaders on $IP_A feed $IP_B:$port_b and $IP_C:$port_c (CURVE)"
log "addresses: coordinator bound on $IP_A:$PORT; host B listens on $listeners_b; B->A $(grep -c "$IP_A:$PORT" "$WORK/ss-b.txt") conn, C->A $(grep -c "$IP_A:$PORT" "$WORK/ss-c.txt") conn, Gloo B<->C $(grep -c "$IP_C:" "$WORK/ss-b.txt") conn"

# CURVE: no client key and an unlisted key get no answer; a worker's key gets the members.
t=$(now_ms)
status_from "$NS_C" 2 >"$WORK/status-nokey.txt" 2>&1
rc=$?
if [[ $rc -ne 1 ]] || ! grep -q "no status reply" "$WORK/status-nokey.txt"; then
  fail "harvest status from host C without CURVE keys: expected exit 1 'no status reply', got $rc: $(cat "$WORK/status-nokey.txt")"
fi
log "curve: status without a client key refused (no answer in $(elapsed "$t") s)"
t=$(now_ms)
status_from "$NS_C" 2 stranger >"$WORK/status-stranger.txt" 2>&1
rc=$?
if [[ $rc -ne 1 ]] || ! grep -q "no status reply" "$WORK/status-stranger.txt"; then
  fail "harvest status from host C with an unauthorized key: expected exit 1 'no status reply', got $rc: $(cat "$WORK/status-stranger.txt")"
fi
log "curve: status with an unauthorized key refused (no answer in $(elapsed "$t") s)"
status_from "$NS_C" 3 worker1 >"$WORK/status-good.txt" 2>&1 ||
  fail "harvest status from host C with worker1's authorized key got no answer: $(cat "$WORK/status-good.txt")"
log "curve: status with an authorized key answered: $(tr -d '\n' <"$WORK/status-good.txt" | cut -c1-200)"
stranger_key=$(cat "$WORK/keys/stranger.public")
wait_for 5 "the coordinator logging 'refused CURVE client $stranger_key from $IP_C'" \
  grep -qF "refused CURVE client $stranger_key from $IP_C" "$WORK/logs/clean-coordinator.log"
log "curve: coordinator log: $(grep -F "refused CURVE client" "$WORK/logs/clean-coordinator.log" | head -n 1)"

finish_job clean $STEPS1
log "run 1: hosts B and C sent $(( $(bridge_bytes) / 1048576 )) MiB over the bridge"
log "run 1: PASS in $(elapsed "$run1_started") s (step $STEPS1 committed, both workers exit 0)"

# ---- run 2: SIGKILL the worker process on host C mid-run -------------------------------------
STEPS2=60
log "run 2: $STEPS2 steps, checkpoint every 10; SIGKILL rank 1's worker on host C after the first commit"
run2_started=$(now_ms)
start_job killed $STEPS2 10 exit-when-done
wait_for 120 "the first checkpoint commit (step >= 10) of run 2" committed_at_least "$RUN_DIR" 10
resume_step=$(committed_step "$RUN_DIR")
(( resume_step < STEPS2 )) || fail "run 2 reached step $STEPS2 before the kill; nothing to resume"
victim=$(pgrep -P "$SUP_C" -x harvest | head -n 1)
[[ -n "$victim" ]] || fail "no harvest worker process under supervise (pid $SUP_C) on host C"
killed_at=$(now_ms)
kill -KILL "$victim" || fail "SIGKILL of the worker (pid $victim) on host C"
log "run 2: SIGKILLed harvest worker pid $victim on host C; last committed step $resume_step"

restarted() {
  local p
  p=$(pgrep -P "$SUP_C" -x harvest | head -n 1)
  [[ -n "$p" && "$p" != "$victim" ]]
}
wait_for 20 "supervise on host C restarting the killed worker" restarted
restarted_at=$(now_ms)
# unix_ms of the first line of LOG matching PATTERN at or after the kill, or nothing.
event_ms() {
  grep -E "$2" "$1" | grep -o 'unix_ms=[0-9]*' | cut -d= -f2 | while read -r ms; do
    if (( ms >= killed_at )); then echo "$ms"; break; fi
  done
}
survivor=$WORK/logs/killed-worker0.log
aborted() { [[ -n $(event_ms "$survivor" 'abort: generation [0-9]+ ends') ]]; }
recovered() { [[ -n $(event_ms "$survivor" 'generation [0-9]+: first step done') ]]; }
wait_for 20 "the abort reaching the surviving worker on host B" aborted
wait_for 60 "the first step of the next generation on host B" recovered
aborted_at=$(event_ms "$survivor" 'abort: generation [0-9]+ ends')
recovered_at=$(event_ms "$survivor" 'generation [0-9]+: first step done')
grep -q "exited with 137; restart 1 of" "$WORK/logs/killed-worker1.log" ||
  fail "supervise on host C did not report restarting the killed worker (exit 137)"
rendezvous=$(grep -E 'generation [0-9]+ rendezvous complete' "$WORK/logs/killed-coordinator.log" | tail -n +2 | head -n 1)
resumed_from=$(sed -n 's/.*resume from step \([0-9]*\).*/\1/p' <<<"$rendezvous")
[[ -n "$resumed_from" ]] || fail "no second rendezvous in the coordinator's log after the kill"
(( resumed_from >= resume_step && resumed_from > 0 )) ||
  fail "the group re-formed from step $resumed_from, expected the last committed step ($resume_step or later)"
padded=$(printf 'step-%012d' "$resumed_from")
grep -q "resumed from .*/$padded/part-00001-of-00002.h5 at step $resumed_from" "$WORK/logs/killed-worker1.log" ||
  fail "the restarted worker on host C did not log resuming from $padded part 1"
grep -q "resumed from .*/$padded/part-00000-of-00002.h5 at step $resumed_from" "$survivor" ||
  fail "the surviving worker on host B did not log resuming from $padded part 0"
# Steps trained before the kill and again after the resume must give the same losses (exact
# resume); rank 0 logs every step (train.log_every = 1).
loss_lines() { grep -o "step [0-9]*/$STEPS2 loss [0-9.]* (vtc [0-9.]* mlm [0-9.]*)" "$survivor"; }
differing=$(loss_lines | sort -u | cut -d' ' -f2 | uniq -d | tr '\n' ' ')
[[ -z "$differing" ]] || fail "steps replayed after the resume gave other losses than before the kill: $differing"
replayed=$(loss_lines | cut -d' ' -f2 | sort | uniq -d | wc -l)
log "run 2: resumed from step $resumed_from on both hosts; $replayed step(s) replayed with identical losses"
finish_job killed $STEPS2
log "run 2: PASS in $(elapsed "$run2_started") s (resumed from step $resume_step, step $STEPS2 committed)"

echo "netns_e2e: timings after the SIGKILL of rank 1 on host C:"
echo "  abort reached rank 0 on host B:   $(ms_to_s $((aborted_at - killed_at))) s"
echo "  supervise restarted the worker:   $(ms_to_s $((restarted_at - killed_at))) s (restart delay 0.2 s)"
echo "  first step of the new generation: $(ms_to_s $((recovered_at - killed_at))) s"
echo "netns_e2e: PASS in $(elapsed "$T0") s"
