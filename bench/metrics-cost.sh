#!/usr/bin/env bash
# bench/metrics-cost.sh: what counting for mdm_metrics costs a signed Idle.
#
#   bench/metrics-cost.sh [--requests N] [--repeat K] [--rounds R]
#                         [--duration S] [--no-wrk] [--no-callgrind] [--out FILE]
#
# The module counts (log phase, shared-memory atomics) only when some
# location has mdm_metrics, so the same nginx configuration with and without
# "location = /metrics { mdm_metrics; }" is the A/B pair.
#
# 1. Instructions per request (deterministic, what the 1% budget is judged
#    on): nginx (one process, master_process off) under
#    valgrind --tool=callgrind serves the enrollment of the bench population
#    and then N, then 2N signed Idle requests (bench/send, one connection);
#    instructions per request = (I(2N) - I(N)) / N, which cancels start-up,
#    enrollment and exit. Both configurations get the very same bytes. The
#    event loop's batching still varies a little from run to run (about
#    ±0.1% here), so the pair is measured K times and the median reported,
#    with the range; and, exactly, the instructions spent inside the
#    counting functions themselves (ngx_http_mdm_metrics_*, inclusive, from
#    callgrind_annotate), per request.
# 2. For completeness, wrk: two native nginx (one worker each), one per
#    configuration, sharing one redis-server, interleaved A B A B ... R
#    rounds on the same Idle bytes; the median of the per-round ratios, and
#    the nginx worker CPU time per request. On a shared 2-core machine this
#    moves by several % between identical runs: it cannot see 1%.
#
# Prints a small Markdown report (and writes it to --out, default
# bench/metrics-cost.md).
set -euo pipefail

# shellcheck source=lib.sh
source "$(dirname "$0")/lib.sh"

N=2000
REPEAT=3
ROUNDS=10
DURATION=3
DO_WRK=1
DO_CG=1
OUT=$BENCH/metrics-cost.md

usage() { sed -n '2,/^set -e/p' "$0" | sed -e '$d' -e 's/^# \{0,1\}//'; exit "${1:-0}"; }

while [ $# -gt 0 ]; do
    case $1 in
        --requests)     N=$2; shift ;;
        --repeat)       REPEAT=$2; shift ;;
        --rounds)       ROUNDS=$2; shift ;;
        --duration)     DURATION=$2; shift ;;
        --no-wrk)       DO_WRK=0 ;;
        --no-callgrind) DO_CG=0 ;;
        --out)          OUT=$2; shift ;;
        -h|--help)      usage ;;
        *)              printf 'bench: unknown option %s\n\n' "$1" >&2; usage 2 ;;
    esac
    shift
done

command -v valgrind >/dev/null || die "valgrind is not installed (apt-get install valgrind)"
build_tools
MODULE_NOTE=$(module_note)
LOADAVG=$(cut -d' ' -f1-3 /proc/loadavg)

# the smoke population of bench/run.sh --quick: 50 devices, 6,000 Idles
POP=$(population 50 50 12000)
IDLES=$(sed -n 's/^idle=//p' "$POP/params")
[ $((2 * N)) -le "$IDLES" ] || die "--requests $N: the pool has $IDLES Idles (2N needed)"

TMP=$(mktemp -d /tmp/ngx_mdm_bench.XXXXXX)
trap cleanup EXIT
trap 'exit 130' INT TERM
mkdir -p "$TMP/logs" "$TMP/redis"
API_KEY=$(openssl rand -hex 16)
PORT=$(free_ports)
REDIS_PORT=$((PORT + 3))
start_redis || die "redis-server did not start"

# the first N and the first 2N Idle records, as files of their own
head_records() {
    local n=$1
    # records: an 8-digit length line, then that many bytes
    python3 - "$POP/idle.req" "$n" <<'PY'
import sys
path, n = sys.argv[1], int(sys.argv[2])
with open(path, 'rb') as f:
    data = f.read()
pos = 0
for _ in range(n):
    ln = int(data[pos:pos + 8])
    pos += 9 + ln
sys.stdout.buffer.write(data[:pos])
PY
}
head_records "$N" > "$TMP/idle-n.req"
head_records $((2 * N)) > "$TMP/idle-2n.req"

# conf NAME PORT METRICS(0|1) [MASTER(0|1)]: an nginx configuration
conf() {
    local name=$1 port=$2 metrics=$3 master=${4:-1}
    mkdir -p "$TMP/$name/logs" "$TMP/$name/conf"
    cat > "$TMP/$name/conf/nginx.conf" <<CONF
load_module $MODULE;
worker_processes 1;
$([ "$master" = 0 ] && echo 'master_process off; daemon off;')
pid logs/nginx.pid;
error_log logs/error.log error;
events { worker_connections 1024; }
http {
    access_log off;
    keepalive_requests 1000000;
    client_body_temp_path $TMP/$name/cbt;
    proxy_temp_path $TMP/$name/pt;
    fastcgi_temp_path $TMP/$name/ft;
    uwsgi_temp_path $TMP/$name/ut;
    scgi_temp_path $TMP/$name/st;
    mdm_redis 127.0.0.1:$REDIS_PORT timeout=5s;
    ${BENCH_NGINX:-}
    server {
        listen 127.0.0.1:$port;
        mdm_identity signature;
        mdm_identity_ca $POP/ca.pem;
        location = /mdm/checkin { mdm_checkin; }
        location = /mdm/connect { mdm_connect; }
        location /v1/ { mdm_api; mdm_api_key $API_KEY; }
        $([ "$metrics" = 1 ] && echo 'location = /metrics { mdm_metrics; }')
    }
}
CONF
}

wait_port() {
    for _ in $(seq 600); do
        (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
        sleep 0.1
    done
    return 1
}

# callgrind NAME METRICS FILE: total instructions of one nginx lifetime that
# enrolls the population and serves FILE
callgrind() {
    local name=$1 metrics=$2 file=$3 pid out
    rcli FLUSHALL >/dev/null
    conf "$name" "$PORT" "$metrics" 0
    out=$TMP/$name/callgrind.out
    valgrind --tool=callgrind --callgrind-out-file="$out" \
        --dump-instr=no --dump-line=no --collect-systime=no \
        "$NGINX" -p "$TMP/$name/" -c conf/nginx.conf -e logs/error.log \
        > "$TMP/$name/valgrind.log" 2>&1 &
    pid=$!
    NGINX_PID=$pid
    wait_port "$PORT" || die "nginx under valgrind did not start (see $TMP/$name)"
    "$BENCH/send" -c 1 "127.0.0.1:$PORT" "$POP/enroll-auth.req" "$POP/enroll-tu.req" \
        > /dev/null 2>&1 || die "enrollment failed (see $TMP/$name/logs/error.log)"
    "$BENCH/send" -c 1 "127.0.0.1:$PORT" "$file" > "$TMP/$name/send.log" 2>&1 \
        || die "the Idles failed (see $TMP/$name/logs/error.log)"
    # TERM (a graceful QUIT may wait on the Redis connection), again until
    # it is gone: under valgrind the first signal may land on a thread-pool
    # thread and leave the event loop asleep
    kill -TERM "$pid"
    for _ in $(seq 60); do
        sleep 1
        kill -0 "$pid" 2>/dev/null || break
        kill -TERM "$pid" 2>/dev/null || break
    done
    wait "$pid" || true
    NGINX_PID=
    sed -n 's/^summary: *\([0-9]*\).*/\1/p' "$out" | head -1
}

# counting NAME: instructions inside ngx_http_mdm_metrics_* (inclusive;
# they do not call each other on the request path)
counting() {
    callgrind_annotate --inclusive=yes --threshold=100 "$TMP/$1/callgrind.out" 2>/dev/null \
        | awk 'match($0, /ngx_http_mdm_metrics_(log|redis_call|cache|identity|redis_reconnect)( |$)/) {
                   # one function may be listed under several names (path,
                   # object, ???): the largest line is the whole of it
                   f = substr($0, RSTART, RLENGTH); sub(/ $/, "", f)
                   v = $1; gsub(",", "", v); if (v + 0 > m[f]) m[f] = v + 0 }
               END { for (f in m) s += m[f]; print s + 0 }'
}

REPORT=$TMP/report.md
{
    echo "### mdm_metrics: the cost of counting, signed Idle"
    echo
    echo "$(date -u '+%Y-%m-%d %H:%M UTC'), $MODULE_NOTE, load average $LOADAVG," \
         "$(nproc) cores. \`bench/metrics-cost.sh\`."
    echo
} > "$REPORT"

if [ $DO_CG = 1 ]; then
    say "callgrind: nginx without and with an mdm_metrics location, $N and $((2 * N)) signed Idles"
    : > "$TMP/cg"
    for k in $(seq "$REPEAT"); do
        A1=$(callgrind a1 0 "$TMP/idle-n.req");  note "[$k] without, $N: $A1 instructions"
        A2=$(callgrind a2 0 "$TMP/idle-2n.req"); note "[$k] without, $((2 * N)): $A2"
        B1=$(callgrind b1 1 "$TMP/idle-n.req");  note "[$k] with, $N: $B1"
        C1=$(counting b1)
        B2=$(callgrind b2 1 "$TMP/idle-2n.req"); note "[$k] with, $((2 * N)): $B2"
        C2=$(counting b2)
        awk -v a1="$A1" -v a2="$A2" -v b1="$B1" -v b2="$B2" -v c1="$C1" -v c2="$C2" -v n="$N" 'BEGIN {
            a = (a2 - a1) / n; b = (b2 - b1) / n
            printf "%.0f %.0f %.4f %.1f\n", a, b, (b - a) * 100 / a, (c2 - c1) / n }' >> "$TMP/cg"
        note "[$k] $(tail -1 "$TMP/cg")"
    done
    med() { sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
    PA=$(awk '{ print $1 }' "$TMP/cg" | med)
    PB=$(awk '{ print $2 }' "$TMP/cg" | med)
    PD=$(awk '{ print $3 }' "$TMP/cg" | med)
    PDMIN=$(awk '{ print $3 }' "$TMP/cg" | sort -g | head -1)
    PDMAX=$(awk '{ print $3 }' "$TMP/cg" | sort -g | tail -1)
    PC=$(awk '{ print $4 }' "$TMP/cg" | med)
    {
        echo "Instructions per signed Idle in the nginx process (valgrind callgrind, master_process"
        echo "off, one connection; (I(2N) − I(N)) / N with N = $N, the same bytes for both;"
        echo "median of $REPEAT measurements):"
        echo
        echo "| configuration | instructions / request |"
        echo "|---|---|"
        echo "| no \`mdm_metrics\` location (nothing counted) | $PA |"
        echo "| with \`location = /metrics { mdm_metrics; }\` (every request counted) | $PB |"
        printf '| difference | **%+.2f %%** (runs: %+.2f %% to %+.2f %%) |\n' "$PD" "$PDMIN" "$PDMAX"
        printf '| inside the counting functions (`ngx_http_mdm_metrics_*`, exact) | %s (%.3f %%) |\n' \
            "$PC" "$(awk -v c="$PC" -v a="$PA" 'BEGIN { print c * 100 / a }')"
        echo
    } >> "$REPORT"
fi

if [ $DO_WRK = 1 ]; then
    say "wrk: two nginx, without and with mdm_metrics, $ROUNDS interleaved rounds of ${DURATION}s"
    rcli FLUSHALL >/dev/null
    PA_PORT=$PORT PB_PORT=$((PORT + 1))
    conf wa "$PA_PORT" 0
    conf wb "$PB_PORT" 1
    "$NGINX" -p "$TMP/wa/" -c conf/nginx.conf -e logs/error.log -q || die "nginx A"
    "$NGINX" -p "$TMP/wb/" -c conf/nginx.conf -e logs/error.log -q || die "nginx B"
    sleep 0.5
    MA=$(cat "$TMP/wa/logs/nginx.pid") MB=$(cat "$TMP/wb/logs/nginx.pid")
    WA=$(pgrep -P "$MA" | head -1) WB=$(pgrep -P "$MB" | head -1)
    stop_wrk_nginx() { kill -QUIT "$MA" "$MB" 2>/dev/null || true; }
    trap 'stop_wrk_nginx; cleanup' EXIT
    "$BENCH/send" -c 4 "127.0.0.1:$PA_PORT" "$POP/enroll-auth.req" "$POP/enroll-tu.req" \
        > /dev/null || die "enrollment failed"
    CLK_TCK=$(getconf CLK_TCK)
    LOG=$TMP/logs/wrk.log
    : > "$TMP/rounds"
    for r in $(seq "$ROUNDS"); do
        for side in a b; do
            if [ $side = a ]; then p=$PA_PORT w=$WA; else p=$PB_PORT w=$WB; fi
            t0=$(cpu_ticks "$w")
            line=$(wrk_run "$p" "$POP/idle.req" 0 32 "${DURATION}s" "$LOG")
            t1=$(cpu_ticks "$w")
            [ "$(field status_errors "$line")" = 0 ] || die "error answers (see $TMP/w$side/logs)"
            rps=$(field rps "$line")
            us=$(awk -v t=$((t1 - t0)) -v n="$(field requests "$line")" -v hz="$CLK_TCK" \
                     'BEGIN { printf "%.2f", t * 1e6 / hz / n }')
            eval "RPS_$side=\$rps US_$side=\$us"
        done
        echo "$r $RPS_a $RPS_b $US_a $US_b" >> "$TMP/rounds"
        note "round $r: without $RPS_a req/s ($US_a µs), with $RPS_b req/s ($US_b µs)"
    done
    stop_wrk_nginx
    med() { sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
    RATIO=$(awk '{ print $3 / $2 }' "$TMP/rounds" | med)
    RMIN=$(awk '{ print $3 / $2 }' "$TMP/rounds" | sort -g | head -1)
    RMAX=$(awk '{ print $3 / $2 }' "$TMP/rounds" | sort -g | tail -1)
    UA=$(awk '{ print $4 }' "$TMP/rounds" | med)
    UB=$(awk '{ print $5 }' "$TMP/rounds" | med)
    RA=$(awk '{ print $2 }' "$TMP/rounds" | med)
    RB=$(awk '{ print $3 }' "$TMP/rounds" | med)
    {
        echo "wrk, $ROUNDS interleaved rounds of ${DURATION} s (-t1 -c32, two nginx with one worker each,"
        echo "one redis-server; the Idle bytes replayed):"
        echo
        echo "| | without | with | with / without |"
        echo "|---|---|---|---|"
        printf '| req/s (median) | %.0f | %.0f | %.3f (rounds %.3f – %.3f) |\n' "$RA" "$RB" "$RATIO" "$RMIN" "$RMAX"
        printf '| nginx worker CPU µs / request (median) | %s | %s | %s |\n' "$UA" "$UB" \
            "$(awk -v a="$UA" -v b="$UB" 'BEGIN { printf "%.3f", b / a }')"
        echo
    } >> "$REPORT"
fi

cat "$REPORT"
cp "$REPORT" "$OUT"
