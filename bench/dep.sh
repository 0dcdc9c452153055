#!/bin/bash
# bench/dep.sh [--devices N] [--page N]: DEP fetch + auto-assign of N
# devices (default 100,000) from the DEP mock (t/servers/dep.pl), by
# mdm-worker against a redis-server of its own (loopback, no persistence).
# Reports the wall time from the worker's start until every device is
# recorded and assigned, and the CPU time of the worker, redis-server and
# the mock (from /proc/PID/stat).  Everything it starts is stopped by pid.

set -eu

BENCH=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(dirname "$BENCH")
WORKER=${MDM_WORKER:-$ROOT/workers/mdm-worker}
N=100000
PAGE=1000

while [ $# -gt 0 ]; do
    case "$1" in
    --devices) N=$2; shift 2 ;;
    --page) PAGE=$2; shift 2 ;;
    *) echo "usage: $0 [--devices N] [--page N]" >&2; exit 2 ;;
    esac
done

TMP=$(mktemp -d /tmp/mdm-dep-bench-XXXXXX)
PIDS=()
cleanup() {
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
    rm -rf "$TMP"
}
trap cleanup EXIT

port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
cpu() { awk '{ printf "%.2f", ($14 + $15) / '"$(getconf CLK_TCK)"' }' "/proc/$1/stat"; }
now() { date +%s.%N; }

RP=$(port)
redis-server --port "$RP" --bind 127.0.0.1 --save '' --appendonly no --dir "$TMP" \
    --logfile "$TMP/redis.log" &
PIDS+=($!); RPID=$!
R="redis-cli -p $RP"
for _ in $(seq 50); do $R PING >/dev/null 2>&1 && break; sleep 0.1; done

DP=$(port)
perl "$ROOT/t/servers/dep.pl" --port "$DP" --fetch-max "$PAGE" --sync-max "$PAGE" \
    >"$TMP/dep.out" 2>"$TMP/dep.err" &
PIDS+=($!); DPID=$!
for _ in $(seq 50); do grep -q listening "$TMP/dep.out" && break; sleep 0.1; done
curl -sf -XPOST "http://127.0.0.1:$DP/_ctl/devices" -d "{\"add\": $N}" >/dev/null

$R SET mdm:dep:bench:tokens '{"consumer_key":"CK_mock","consumer_secret":"CS_mock","access_token":"AT_mock","access_secret":"AS_mock","access_token_expiry":"2099-01-01T00:00:00Z"}' >/dev/null
$R HSET mdm:dep:bench:config base_url "http://127.0.0.1:$DP" >/dev/null
$R HSET mdm:dep:bench:assigner profile_uuid BENCH-PROFILE >/dev/null
$R SADD mdm:dep:names bench >/dev/null

M0=$(cpu "$DPID"); R0=$(cpu "$RPID")
T0=$(now)
"$WORKER" --redis "127.0.0.1:$RP" --repush_interval 0 --worker_id bench \
    2>"$TMP/worker.log" &
PIDS+=($!); WPID=$!

FETCHED=
while :; do
    phase=$($R HGET mdm:dep:bench:status phase)
    if [ -z "$FETCHED" ] && [ "$phase" = idle ]; then FETCHED=$(now); fi
    left=$($R EVAL "return redis.call('ZCARD', KEYS[1]) + redis.call('HLEN', KEYS[2])" 2 \
           mdm:dep:bench:assignq mdm:dep:bench:assigning)
    if [ -n "$FETCHED" ] && [ "$left" = 0 ]; then break; fi
    kill -0 "$WPID" || { cat "$TMP/worker.log"; exit 1; }
    sleep 0.05
done
T1=$(now)

W=$(cpu "$WPID"); M1=$(cpu "$DPID"); R1=$(cpu "$RPID")
STATS=$(curl -sf "http://127.0.0.1:$DP/_ctl/stats")
ASSIGNED=$(echo "$STATS" | perl -MJSON::PP -e 'print decode_json(<STDIN>)->{assigned_total}')
MULTI=$(echo "$STATS" | perl -MJSON::PP -e 'print decode_json(<STDIN>)->{assigned_multi}')
DEVICES=$($R ZCARD mdm:dep:bench:serials)
MEM=$($R INFO memory | awk -F: '/^used_memory:/ { printf "%.1f", $2 / 1048576 }')

printf '%s devices, pages of %s, 2 cores shared\n' "$N" "$PAGE"
printf '  recorded:              %s (assigned %s, more than once %s)\n' "$DEVICES" "$ASSIGNED" "$MULTI"
printf '  fetch done after:      %.1f s\n' "$(echo "$FETCHED - $T0" | bc)"
printf '  all assigned after:    %.1f s\n' "$(echo "$T1 - $T0" | bc)"
printf '  mdm-worker CPU:        %s s\n' "$W"
printf '  redis-server CPU:      %.2f s\n' "$(echo "$R1 - $R0" | bc)"
printf '  DEP mock (Perl) CPU:   %.2f s\n' "$(echo "$M1 - $M0" | bc)"
printf '  Redis used_memory:     %s MiB (records, events, queue)\n' "$MEM"
[ "$DEVICES" = "$N" ] && [ "$ASSIGNED" = "$N" ] && [ "$MULTI" = 0 ]
