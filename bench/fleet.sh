#!/usr/bin/env bash
# bench/fleet.sh: the mass-command benchmark (./build.sh bench --scenario
# fleet runs it).
#
#   bench/fleet.sh [--devices N] [--workers "1 2"] [--concurrency C]
#                  [--timeout S] [--hold] [--out FILE]
#
# N enrolled devices (default 100,000), each with its own certificate
# (1,000 RSA keys among them: 100,000 keys would take hours to make; the
# module binds certificates, not keys), enrolled through nginx with real
# signed Authenticate + TokenUpdate (push tokens the APNs mock knows).
# Then, for each nginx worker count W (default "1 2"), nginx is started
# fresh and two commands go to the whole fleet, the first with cold caches
# (fresh nginx start), the second warm:
#   - a DeviceInformation command is queued to every device with PUT
#     /v1/enqueue, which also queues the pushes. The API takes at most
#     10,000 ids a call and a CommandUUID only once, so the fleet-wide
#     command is N/10,000 calls, one after the other (in a random order,
#     each call's ids shuffled), each with its own CommandUUID chosen in
#     advance (BENCH-FLEET-c-k for devices 10,000k.., so that the
#     Acknowledged bodies can be pre-signed);
#   - mdm-worker pushes each device through the loopback APNs mock
#     (bench/fleetsim: HTTP/2 over TLS, client certificate, strict);
#   - bench/fleetsim's devices answer each push: C at once (default 200),
#     the next one at random among the woken, a signed Idle (which must
#     receive the command), then a signed Acknowledged, every request with
#     its own pre-made signature.
# Reported per run: seconds from the first enqueue call to the last
# acknowledgement, the enqueue calls, push fan-out (enqueue start to the
# last push at the mock), requests/s, CPU seconds of nginx (all workers),
# redis-server and mdm-worker, nginx worker RSS, and the check that all N
# results (mdm:r:{ID}:BENCH-FLEET-c, status Acknowledged) are stored.
#
# --hold: the devices wait until every one is pushed, so that the push
# fan-out is measured alone (mdm-worker, Redis and the mock without the
# devices' load on the same two cores); then they answer as usual.
#
# BENCH_NGINX adds directives to nginx's http{} (as for run.sh), e.g.
#   BENCH_NGINX="mdm_identity_cache 10000 verdicts=400000;" bench/fleet.sh
# BENCH_WORKER_OPTS adds mdm-worker flags, e.g. "--max_inflight 2000",
# BENCH_FLEETSIM_OPTS fleetsim's, e.g. "--rst-limit 1000000:100000" (the
# mock's HTTP/2 stream-reset bucket; see fleetsim.c).
# The population is made once and cached in bench/.cache/ (shared with
# run.sh's idle-fleet scenario). Writes bench/fleet.md.
set -euo pipefail

# shellcheck source=lib.sh
source "$(dirname "$0")/lib.sh"

DEVICES=100000
WORKERS_LIST="1 2"
CONC=200
PER_CALL=10000    # the API's limit, and gen.c's FLEET_PER_CALL
TIMEOUT=600
HOLD=
OUT=

while [ $# -gt 0 ]; do
    case $1 in
        --devices)       DEVICES=$2; shift ;;
        --workers)       WORKERS_LIST=$2; shift ;;
        --concurrency)   CONC=$2; shift ;;
        --timeout)       TIMEOUT=$2; shift ;;
        --hold)          HOLD=" hold" ;;
        --out)           OUT=$2; shift ;;
        -h|--help)       sed -n '2,/^set -e/p' "$0" | sed -e '$d' -e 's/^# \{0,1\}//'; exit 0 ;;
        *)               die "unknown option $1" ;;
    esac
    shift
done
OUT=${OUT:-$BENCH/fleet.md}
NRUNS=$(( $(wc -w <<< "$WORKERS_LIST") * 2 ))
[ "$NRUNS" -le "${FLEET_COMMANDS:-4}" ] || die "$NRUNS runs need FLEET_COMMANDS=$NRUNS (the population's commands)"

WORKER_BIN=${MDM_WORKER:-$ROOT/workers/mdm-worker}
[ -x "$WORKER_BIN" ] || die "$WORKER_BIN not built (./build.sh)"
build_tools
MODULE_NOTE=$(module_note)
LOADAVG=$(cut -d' ' -f1-3 /proc/loadavg)
CLK_TCK=$(getconf CLK_TCK)

POP=$(fleet_population "$DEVICES")
TOPIC=$(sed -n 's/.*<string>\(com\.apple\.mgmt\.External\.[^<]*\)<.*/\1/p' \
        <(head -c 4000 "$POP/enroll-tu.req" | tail -c +10) | head -1)
[ -n "$TOPIC" ] || die "no push topic in $POP/enroll-tu.req"

# --- the APNs side's PKI (cached): a push CA and a push certificate for
# TOPIC (UID = topic, as Apple's), the mock's TLS identity for 127.0.0.1 ---
PKI=$CACHE/fleet-pki
if [ ! -s "$PKI/push.pem" ]; then
    say "making the APNs mock's PKI in ${PKI#"$ROOT"/}"
    mkdir -p "$PKI.tmp"
    (
        cd "$PKI.tmp"
        openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.pem -days 3650 \
            -subj '/O=ngx_mdm bench/CN=bench Apple push CA' 2>/dev/null
        openssl req -newkey rsa:2048 -nodes -keyout push.key -out push.csr \
            -subj "/UID=$TOPIC/CN=APSP:${TOPIC##*.}/C=US" 2>/dev/null
        printf 'basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=clientAuth\n' > push.ext
        openssl x509 -req -in push.csr -CA ca.pem -CAkey ca.key -CAcreateserial \
            -days 3650 -extfile push.ext -out push.pem 2>/dev/null
        openssl req -x509 -newkey rsa:2048 -nodes -keyout server.key -out server.pem -days 3650 \
            -subj '/CN=127.0.0.1' -addext 'subjectAltName=IP:127.0.0.1' 2>/dev/null
    ) || die "openssl failed"
    rm -rf "$PKI" && mv "$PKI.tmp" "$PKI"
fi

BENCH_WORKERS=$(awk '{ print $1 }' <<< "$WORKERS_LIST")
export BENCH_WORKERS
start_servers "$POP"
start_trimmer

say "push certificate for $TOPIC"
cat "$PKI/push.pem" "$PKI/push.key" \
    | curl -fsS -u "nanomdm:$API_KEY" -X PUT --data-binary @- \
           "http://127.0.0.1:$PORT/v1/pushcert" >/dev/null \
    || die "PUT /v1/pushcert failed"

say "enrolling $DEVICES devices (signed Authenticate + TokenUpdate through nginx)"
T=$(date +%s.%N)
"$BENCH/send" -c 32 "127.0.0.1:$PORT" "$POP/enroll-auth.req" "$POP/enroll-tu.req" \
    || die "enrollment failed (see $TMP/logs/error.log)"
ENROLL_S=$(awk -v a="$T" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
note "enrolled in $ENROLL_S s"

# --- the mock + simulator, and mdm-worker ---
APNS_PORT=$(free_ports)
mkfifo "$TMP/sim.ctl"
"$BENCH/fleetsim" --port "$APNS_PORT" --cert "$PKI/server.pem" --key "$PKI/server.key" \
    --client-ca "$PKI/ca.pem" --topic "$TOPIC" --nginx "127.0.0.1:$PORT" --pop "$POP" \
    --concurrency "$CONC" --timeout "$TIMEOUT" ${BENCH_FLEETSIM_OPTS:-} \
    < "$TMP/sim.ctl" > "$TMP/sim.out" 2> "$TMP/logs/fleetsim.log" &
SIM_PID=$!
exec 7> "$TMP/sim.ctl"

"$WORKER_BIN" --redis "127.0.0.1:$REDIS_PORT" --worker_id bench-fleet \
    --apns_url "https://127.0.0.1:$APNS_PORT" --apns_ca "$PKI/server.pem" \
    ${BENCH_WORKER_OPTS:-} > "$TMP/logs/worker.log" 2>&1 &
MW_PID=$!

fleet_cleanup() {
    local rc=$?
    set +e
    exec 7>&- 2>/dev/null || true
    [ -n "${MW_PID:-}" ] && kill "$MW_PID" 2>/dev/null && wait "$MW_PID" 2>/dev/null
    [ -n "${SIM_PID:-}" ] && kill "$SIM_PID" 2>/dev/null && wait "$SIM_PID" 2>/dev/null
    (exit "$rc")
    cleanup
}
trap fleet_cleanup EXIT
sleep 1
kill -0 "$SIM_PID" 2>/dev/null || die "fleetsim did not start: $(cat "$TMP/logs/fleetsim.log")"
kill -0 "$MW_PID" 2>/dev/null || die "mdm-worker did not start: $(tail -5 "$TMP/logs/worker.log")"

# the enqueue calls: devices 10,000k.. in call k (its own CommandUUID),
# the calls and the ids of each in a random order
split -l "$PER_CALL" -d -a 3 "$POP/udids.txt" "$TMP/ids."
for f in "$TMP"/ids.[0-9][0-9][0-9]; do shuf "$f" -o "$f"; done
NCALLS=$(ls "$TMP"/ids.[0-9][0-9][0-9] | wc -l)

ROWS=$TMP/rows
: > "$ROWS"
CMD=0
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", b - a }'; }

fleet_run() {   # fleet_run WORKERS CACHE
    local w=$1 cache=$2 c=$CMD f k reqs=() t0 t1 line ok
    local n0 r0 m0 n1 r1 m1 rss load
    CMD=$((CMD + 1))
    for f in $(ls "$TMP"/ids.[0-9][0-9][0-9] | shuf); do
        k=$((10#${f##*.}))
        "$BENCH/gen" enqueue -o "$f.$c.req" --key "$API_KEY" --ids "$f" \
            --uuid "BENCH-FLEET-$c-$k" --query ""
        reqs+=("$f.$c.req")
    done
    load=$(cut -d' ' -f1 /proc/loadavg)
    say "$w worker(s), $cache: BENCH-FLEET-$c-* to $DEVICES devices ($NCALLS enqueue calls), load average $load"
    n0=$(workers_ticks); r0=$(cpu_ticks "$REDIS_PID"); m0=$(cpu_ticks "$MW_PID")
    echo "go $c$HOLD" >&7
    t0=$(date +%s.%N)
    "$BENCH/send" -c 1 "127.0.0.1:$PORT" "${reqs[@]}" > /dev/null \
        || die "an enqueue call failed (see $TMP/logs/error.log)"
    t1=$(date +%s.%N)
    while ! grep -q "^ROUND c=$c " "$TMP/sim.out"; do
        kill -0 "$SIM_PID" 2>/dev/null || die "fleetsim died: $(tail -3 "$TMP/logs/fleetsim.log")"
        sleep 0.2
    done
    n1=$(workers_ticks); r1=$(cpu_ticks "$REDIS_PID"); m1=$(cpu_ticks "$MW_PID")
    line=$(grep "^ROUND c=$c " "$TMP/sim.out")
    rss=$(for p in $(nginx_workers); do vm_rss_kb "$p"; done | sort -n | tail -1)
    ok=$(awk -v c="$c" -v k="$PER_CALL" '{ printf "HGET mdm:r:{%s}:BENCH-FLEET-%d-%d status\n", $0, c, int((NR - 1) / k) }' \
             "$POP/udids.txt" | rcli | grep -c '^Acknowledged$' || true)
    echo "w=$w cache=$cache t0=$t0 t1=$t1 ngx=$((n1 - n0)) redis=$((r1 - r0)) mw=$((m1 - m0)) rss=$rss stored=$ok load=$load $line" >> "$ROWS"
    note "$(tail -1 "$ROWS")"
    [ "$(field done "$line")" = 1 ] || note "the round did not finish (timeout $TIMEOUT s): see $TMP/logs"
}

first=1
for w in $WORKERS_LIST; do
    if [ $first = 0 ]; then
        stop_nginx
        BENCH_WORKERS=$w
        start_nginx "$POP" || die "nginx did not restart"
    fi
    first=0
    fleet_run "$w" cold
    fleet_run "$w" warm
done

LOADAVG_END=$(cut -d' ' -f1-3 /proc/loadavg)
ERRLOG_LINES=$(grep -vc '\[warn\]' "$TMP/logs/error.log" || true)
WORKER_ERRS=$(grep -c '\[error\]\|error' "$TMP/logs/worker.log" || true)

{
    echo "# ngx_mdm mass-command benchmark"
    echo
    echo "$(date -u '+%Y-%m-%d %H:%M UTC'), \`bench/fleet.sh --devices $DEVICES\` on $MODULE_NOTE;" \
         "$(nproc) × $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1);" \
         "load average at start $LOADAVG, at the end $LOADAVG_END${BENCH_NGINX:+; \`BENCH_NGINX=\"$BENCH_NGINX\"\`}${BENCH_WORKER_OPTS:+; \`BENCH_WORKER_OPTS=\"$BENCH_WORKER_OPTS\"\`}${BENCH_FLEETSIM_OPTS:+; \`BENCH_FLEETSIM_OPTS=\"$BENCH_FLEETSIM_OPTS\"\`}."
    echo
    echo "$DEVICES devices, each with its own certificate (1,000 RSA-2048 keys among them), enrolled with"
    echo "signed Authenticate + TokenUpdate through nginx in $ENROLL_S s. Each run: one DeviceInformation"
    echo "command queued to every device with $NCALLS \`PUT /v1/enqueue\` calls of ≤ $PER_CALL ids one after the"
    echo "other (the API takes 10,000 ids a call and a CommandUUID once: one UUID per call, chosen in advance);"
    echo "mdm-worker pushes every device through"
    echo "the loopback HTTP/2-over-TLS APNs mock; $CONC simulated devices at once answer the pushes in random order,"
    echo "each with a signed Idle (which receives the command) and a signed Acknowledged, every request with"
    echo "its own pre-made signature, over keep-alive HTTP/1.1 connections. Cold: the first command after a"
    echo "fresh nginx start; warm: the second. Targets (issue 14, 100,000 devices): warm ≤ 20 s, cold ≤ 45 s,"
    echo "fan-out ≤ 5 s."
    [ -z "$HOLD" ] || echo "**--hold**: the devices waited for the last push; the fan-out is the push path alone, the other times are not comparable."
    echo
    echo "| nginx workers | caches | enqueue → last ack s | enqueue calls s | push fan-out s | requests/s | nginx CPU s | Redis CPU s | mdm-worker CPU s | nginx worker RSS MB (max) | results stored | Idle with the command | errors | load avg |"
    echo "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|"
    while read -r row; do
        t0=$(field t0 "$row")
        total=$(secs "$t0" "$(field last_ack "$row")")
        printf '| %s | %s | **%s** | %s | %s | %.0f | %.1f | %.1f | %.1f | %.1f | %s / %s | %s | %s | %s |\n' \
            "$(field w "$row")" "$(field cache "$row")" "$total" \
            "$(secs "$t0" "$(field t1 "$row")")" "$(secs "$t0" "$(field last_push "$row")")" \
            "$(awk -v n="$DEVICES" -v t="$total" 'BEGIN { print (t > 0) ? 2 * n / t : 0 }')" \
            "$(awk -v t="$(field ngx "$row")" -v h="$CLK_TCK" 'BEGIN { print t / h }')" \
            "$(awk -v t="$(field redis "$row")" -v h="$CLK_TCK" 'BEGIN { print t / h }')" \
            "$(awk -v t="$(field mw "$row")" -v h="$CLK_TCK" 'BEGIN { print t / h }')" \
            "$(awk -v k="$(field rss "$row")" 'BEGIN { print k / 1024 }')" \
            "$(field stored "$row")" "$DEVICES" "$(field idle_ok "$row")" \
            "$(field http_errors "$row") HTTP, $(field conn_errors "$row") conn, $(field bad_pushes "$row") bad pushes, $(field dup_pushes "$row") dup pushes$([ "$(field done "$row")" = 1 ] || echo ', **did not finish**')" \
            "$(field load "$row")"
    done < "$ROWS"
    echo
    echo "Error log lines of nginx (besides warnings): $ERRLOG_LINES; mdm-worker log lines with \"error\": $WORKER_ERRS."
    echo
    echo "<details><summary>raw</summary>"
    echo
    echo '```'
    cat "$ROWS"
    echo '```'
    echo
    echo "</details>"
} > "$OUT"

echo
grep '^|' "$OUT"
echo "written to ${OUT#"$ROOT"/}"
