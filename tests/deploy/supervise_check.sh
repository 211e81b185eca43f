#!/usr/bin/env bash
# supervise_check.sh [ignored]
#
# deploy/bin/supervise's contract, with stand-in commands instead of harvest roles:
#   exit 0 and exit 2 end the loop with that code, at once;
#   exit 1 and death by a signal restart the command, at most --max-restarts times, then exit 1;
#   SIGTERM, SIGINT and SIGUSR1 reach the command as SIGTERM, its own exit code is returned, and
#   nothing is restarted afterwards;
#   bad usage exits 2.
# Exit 0: pass; 1: a check failed (each failure printed). Needs bash and python3 only.
set -uo pipefail
supervise=$(realpath "$(dirname "$0")/../../deploy/bin/supervise")
work=$(mktemp -d /tmp/harvest-supervise.XXXXXX)
trap 'rm -rf "$work"' EXIT
failures=0
expect() { # WHAT WANT GOT
  if [[ "$2" != "$3" ]]; then
    echo "supervise_check: FAIL: $1: expected $2, got $3"
    failures=$((failures + 1))
  else
    echo "supervise_check: ok: $1 ($3)"
  fi
}
runs() { wc -l <"$work/runs" | tr -d ' '; }

# A command that records each start in $work/runs and exits with its argument.
: >"$work/runs"
"$supervise" --delay 0 -- bash -c "echo run >>'$work/runs'; exit 0" 2>/dev/null
expect "exit 0 ends the loop" "0 1" "$? $(runs)"

: >"$work/runs"
"$supervise" --delay 0 -- bash -c "echo run >>'$work/runs'; exit 2" 2>/dev/null
expect "exit 2 (config error) is not retried" "2 1" "$? $(runs)"

: >"$work/runs"
"$supervise" --max-restarts 3 --delay 0 -- bash -c "echo run >>'$work/runs'; exit 1" 2>/dev/null
expect "exit 1 is retried max-restarts times, then exit 1" "1 4" "$? $(runs)"

: >"$work/runs"
"$supervise" --max-restarts 2 --delay 0 -- bash -c "echo run >>'$work/runs'; kill -KILL \$\$" 2>/dev/null
expect "a SIGKILLed command is restarted" "1 3" "$? $(runs)"

# Fails twice, then succeeds: the loop ends with 0 after two restarts.
: >"$work/runs"
"$supervise" --max-restarts 5 --delay 0 -- bash -c \
  "echo run >>'$work/runs'; [[ \$(wc -l <'$work/runs') -ge 3 ]] || exit 1" 2>/dev/null
expect "a command that recovers ends the loop with 0" "0 3" "$? $(runs)"

# Signals: the command turns SIGTERM into a graceful exit 0 (as harvest does); supervise must pass
# TERM, INT and USR1 on as SIGTERM, return 0 and not restart.
# (A background job of a non-interactive shell starts with SIGINT ignored, which bash cannot undo:
# python3 restores the default before exec, as a scheduler-started supervise has it.)
for sig in TERM INT USR1; do
  : >"$work/runs"
  python3 -c 'import os, signal, sys; signal.signal(signal.SIGINT, signal.SIG_DFL); os.execv(sys.argv[1], sys.argv[1:])' \
    "$supervise" --delay 0 -- bash -c \
    "echo run >>'$work/runs'; trap 'kill \$s; echo got-term >>\"$work/runs\"; exit 0' TERM; sleep 30 & s=\$!; wait" \
    2>/dev/null &
  pid=$!
  for _ in $(seq 50); do [[ $(runs) -ge 1 ]] && break; sleep 0.1; done
  sleep 0.2
  kill -"$sig" "$pid"
  wait "$pid"
  code=$?
  expect "SIG$sig reaches the command as SIGTERM, no restart" "0 run,got-term" \
    "$code $(paste -sd, "$work/runs")"
done

"$supervise" --bogus -- true 2>/dev/null
expect "an unknown option is a usage error" 2 $?
"$supervise" 2>/dev/null
expect "no command is a usage error" 2 $?
"$supervise" --max-restarts x -- true 2>/dev/null
expect "a non-numeric --max-restarts is a usage error" 2 $?

if [[ $failures -ne 0 ]]; then exit 1; fi
echo "supervise_check: all checks passed"
