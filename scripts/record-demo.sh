#!/usr/bin/env bash
# Records a canned squall demo with nobody at the keyboard: a 5-node cluster, the workload on, the leader
# killed, a node isolated, a majority/minority partition, heal, restart, and a check that no acknowledged
# write was lost. It drives `squall up --record` in a detached tmux session with send-keys, and waits for
# each step by polling the screen (capture-pane) for what that step should show, never by sleeping blindly.
# It leaves demo.cast, demo.gif (drawn by `squall render`), and the session's event log as
# demo.events.jsonl (replay it with `squall replay`).
#
# Usage: scripts/record-demo.sh [OUT.cast]
# Environment:
#   SQUALL      the squall binary (default: build and use target/debug/squall)
#   COLS, ROWS  the terminal size of the recording (default 120x36)
#   TIMEOUT     seconds to wait for any one step before giving up (default 60)
#   HOLD        seconds to hold each state on screen for the audience, after it appeared (default 2)
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
OUT=${1:-demo.cast}
GIF=${OUT%.cast}.gif
EVENTS=${OUT%.cast}.events.jsonl
COLS=${COLS:-120}
ROWS=${ROWS:-36}
TIMEOUT=${TIMEOUT:-60}
HOLD=${HOLD:-2}
SESSION=squall-demo-$$

need() {
    command -v "$1" >/dev/null || { echo "record-demo: $1 is not installed ($2)" >&2; exit 2; }
}
need tmux "apt-get install tmux"

if [[ -z ${SQUALL:-} ]]; then
    echo "record-demo: building squall and squall-node"
    (cd "$ROOT" && cargo build -q -p squall -p squall-node)
    target=$(cd "$ROOT" && cargo metadata --format-version 1 --no-deps | sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')
    SQUALL=$target/debug/squall
fi
[[ -x $SQUALL ]] || { echo "record-demo: no squall binary at $SQUALL" >&2; exit 2; }

# A recording never overwrites a file (it would pick demo-2.cast): start from a clean name.
rm -f -- "$OUT" "$EVENTS"

cleanup() {
    if tmux has-session -t "$SESSION" 2>/dev/null; then
        # Quit squall properly so it stops its nodes, then drop the session.
        tmux send-keys -t "$SESSION" q 2>/dev/null || true
        wait_until "squall to exit" squall_exited 2>/dev/null || true
        tmux kill-session -t "$SESSION" 2>/dev/null || true
    fi
}
trap cleanup EXIT

screen() { tmux capture-pane -p -t "$SESSION"; }

# wait_until DESCRIPTION COMMAND...: polls until COMMAND succeeds, or fails the demo after $TIMEOUT seconds
# showing the screen it last saw.
wait_until() {
    local what=$1
    shift
    local deadline=$((SECONDS + TIMEOUT))
    until "$@"; do
        if ((SECONDS >= deadline)); then
            echo "record-demo: gave up after ${TIMEOUT}s waiting for $what; the screen was:" >&2
            screen >&2 || true
            return 1
        fi
        sleep 0.2 # the polling interval
    done
    echo "record-demo: $what"
}

# Holds a state on screen for the audience; only ever called after the state was seen.
hold() { sleep "${1:-$HOLD}"; }

on_screen() { screen | grep -Eq -- "$1"; }
header() { screen | head -n 1; }
leader() { header | grep -Eo 'leader n[0-9]' | grep -Eo '[0-9]' || true; }
term() { header | grep -Eo 'term [0-9]+' | grep -Eo '[0-9]+' || echo 0; }
faults_line() { screen | grep -E '^ *faults ' | head -n 1; }
# The header's second line names the faults in force: "n3 killed", "n2 isolated", "partition 1,2|3,4,5".
isolated() { faults_line | grep -Eq "n$1 isolated"; }
partitioned() { faults_line | grep -Eq 'partition [0-9]'; }
healed() { faults_line | grep -Eq '^ *faults ' && ! faults_line | grep -Eq 'isolated|partition|links cut'; }
has_leader() { [[ -n $(leader) ]]; }
new_leader() { local l; l=$(leader); [[ -n $l && $l != "$OLD_LEADER" ]] && (($(term) > OLD_TERM)); }
workload_on() { on_screen 'client [0-9]+/s of'; }
node_running() { screen | grep -Eq "(^|[^0-9a-z])n$1 +[0-9]+ +running"; }
squall_exited() { on_screen 'squall exited'; }

tmux new-session -d -s "$SESSION" -x "$COLS" -y "$ROWS" \
    "'$SQUALL' up -n 5 --record '$OUT' --events '$EVENTS'; echo squall exited with status \$?; sleep 3600"

wait_until "a leader is elected" has_leader
hold

tmux send-keys -t "$SESSION" c
wait_until "the workload runs" workload_on
hold 3

OLD_LEADER=$(leader)
OLD_TERM=$(term)
tmux send-keys -t "$SESSION" K
wait_until "n$OLD_LEADER was killed and another node leads a later term" new_leader
hold 3

# Isolate a follower: neither the killed node nor the new leader.
NEW_LEADER=$(leader)
for n in 1 2 3 4 5; do
    if [[ $n != "$OLD_LEADER" && $n != "$NEW_LEADER" ]]; then
        VICTIM=$n
        break
    fi
done
tmux send-keys -t "$SESSION" "$VICTIM"
tmux send-keys -t "$SESSION" i
wait_until "n$VICTIM is isolated" isolated "$VICTIM"
hold 3
tmux send-keys -t "$SESSION" h
wait_until "the network is healed" healed
hold

# Majority/minority partition: `x` opens the shape prompt, where `h` picks halves.
tmux send-keys -t "$SESSION" x
wait_until "the partition prompt is open" on_screen 'halves.*apply'
tmux send-keys -t "$SESSION" h
wait_until "the cluster is split in halves" partitioned
hold 4
tmux send-keys -t "$SESSION" h
wait_until "the partition is healed" healed
wait_until "a leader leads the healed cluster" has_leader
hold

tmux send-keys -t "$SESSION" "$OLD_LEADER"
tmux send-keys -t "$SESSION" r
wait_until "n$OLD_LEADER is running again" node_running "$OLD_LEADER"
hold 4

# After all that, Raft kept every write it acknowledged: `v` checks the workload's counters.
tmux send-keys -t "$SESSION" v
wait_until "the check's verdict" on_screen 'check (✓|✗|\?)'
hold 4

tmux send-keys -t "$SESSION" q
wait_until "squall exited" squall_exited
screen | grep -E 'squall exited' || true
tmux kill-session -t "$SESSION"

[[ -s $OUT ]] || { echo "record-demo: squall wrote no recording at $OUT" >&2; exit 1; }
echo "record-demo: wrote $OUT ($(wc -l <"$OUT") lines); play it with: asciinema play $OUT"
if [[ -s $EVENTS ]]; then echo "record-demo: wrote $EVENTS; replay it with: squall replay $EVENTS"; fi

# squall draws the GIF itself (`squall render`); no other tool is needed.
if "$SQUALL" render "$OUT" -o "$GIF"; then
    echo "record-demo: wrote $GIF"
else
    echo "record-demo: \`$SQUALL render $OUT -o $GIF\` failed; no GIF" >&2
fi
