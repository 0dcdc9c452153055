#!/usr/bin/env bash
# bench/profile.sh: where the nginx worker's time goes in one scenario.
#
#   bench/profile.sh [--scenario NAME] [--seconds S] [--devices N]
#                    [--records M] [--out FILE]
#
# Same set-up as run.sh (its cached population, one nginx worker, Redis,
# 1,000 enrolled devices), then wrk -t1 -c32 for S seconds (default 10) of
# scenario NAME (idle, idle-noid, tokenupdate, idle-command, ack; default
# idle) while `perf record --call-graph dwarf` samples the nginx worker.
# Writes inclusive and self time by function, and self time by shared
# object, to bench/profile-NAME.txt.
set -euo pipefail

# shellcheck source=lib.sh
source "$(dirname "$0")/lib.sh"

SCENARIO=idle
SECONDS_=10
DEVICES=1000
RECORDS=300000
OUT=

while [ $# -gt 0 ]; do
    case $1 in
        --scenario)  SCENARIO=$2; shift ;;
        --seconds)   SECONDS_=$2; shift ;;
        --devices)   DEVICES=$2; shift ;;
        --records)   RECORDS=$2; shift ;;
        --out)       OUT=$2; shift ;;
        -h|--help)   sed -n '2,/^set -e/p' "$0" | sed -e '$d' -e 's/^# \{0,1\}//'; exit 0 ;;
        *)           die "unknown option $1" ;;
    esac
    shift
done
OUT=${OUT:-$BENCH/profile-$SCENARIO.txt}
command -v perf >/dev/null || die "perf is not installed (apt-get install linux-perf)"

build_tools
POP=$(population "$DEVICES" "$DEVICES" "$RECORDS")
ACK_COMMANDS=$(sed -n 's/^ack_commands=//p' "$POP/params")
start_servers "$POP"
enroll "$POP"
start_trimmer
WORKER=$(nginx_worker)

port=$PORT
case $SCENARIO in
    idle)         file=$POP/idle.req ;;
    idle-noid)    file=$POP/idle.req; port=$NOID_PORT ;;
    tokenupdate)  file=$POP/tokenupdate.req ;;
    idle-command)
        file=$POP/idle.req
        "$BENCH/gen" enqueue -o "$TMP/enqueue.req" --key "$API_KEY" \
            --ids "$POP/udids.txt" --uuid BENCH-IDLE-CMD
        "$BENCH/send" -c 1 "127.0.0.1:$PORT" "$TMP/enqueue.req" ;;
    ack)
        file=$POP/ack.req
        "$BENCH/gen" enqueue -o "$TMP/enqueue.req" --key "$API_KEY" \
            --ids "$POP/udids.txt" --uuid 'BENCH-ACK-%05d' --count "$ACK_COMMANDS"
        "$BENCH/send" -c 1 "127.0.0.1:$PORT" "$TMP/enqueue.req" ;;
    *)  die "unknown scenario $SCENARIO" ;;
esac

say "profiling nginx worker $WORKER: $SCENARIO for $SECONDS_ s"
perf record -F 499 --call-graph dwarf,16384 -o "$TMP/perf.data" -p "$WORKER" -- sleep "$((SECONDS_ + 1))" \
    2> "$TMP/logs/perf.log" &
PERF_PID=$!
sleep 0.5
line=$(wrk_run "$port" "$file" 0 32 "${SECONDS_}s" "$TMP/logs/wrk.log")
wait "$PERF_PID" || die "perf record failed: $(cat "$TMP/logs/perf.log")"
note "$line"

{
    echo "# nginx worker profile: $SCENARIO, wrk -t1 -c32 ${SECONDS_} s, $(date -u '+%Y-%m-%d %H:%M UTC')"
    echo "# $(nproc) x $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1), $(module_note)"
    echo "# $line"
    echo "# perf record -F 499 --call-graph dwarf; libcrypto and nginx are stripped: their"
    echo "# internal functions show as addresses and are left out below"
    echo
    echo "## inclusive time (the function and what it calls), above 1.5%"
    perf report -i "$TMP/perf.data" --stdio --children --sort dso,sym -g none \
        --percent-limit 1.5 2>/dev/null | grep -v '^#' | grep -v '\] 0x0000' | sed '/^$/d'
    echo
    echo "## self time by symbol, above 0.5%"
    perf report -i "$TMP/perf.data" --stdio --no-children --sort dso,sym -g none \
        --percent-limit 0.5 2>/dev/null | grep -v '^#' | sed '/^$/d'
    echo
    echo "## self time by shared object"
    perf report -i "$TMP/perf.data" --stdio --no-children --sort dso -g none \
        2>/dev/null | grep -v '^#' | sed '/^$/d'
} > "$OUT"

sed -n '/^## inclusive/,/^## self time by symbol/p' "$OUT" | grep -v '^## self' | head -40 || true
echo "written to ${OUT#"$ROOT"/}"
