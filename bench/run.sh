#!/usr/bin/env bash
# bench/run.sh: the benchmark suite (./build.sh bench [OPTIONS] builds first).
#
#   bench/run.sh [--quick] [--scenario NAME[,NAME...]] [--devices N]
#                [--records M] [--duration S] [--rounds R] [--connections C]
#                [--enqueue-ids N] [--workers W] [--fleet-devices F]
#                [--out FILE]
#
# Starts its own redis-server and nginx (one worker, the module loaded from
# build/nginx/), enrolls DEVICES devices with real signed Authenticate and
# TokenUpdate check-ins, and runs each scenario with wrk, interleaved with
# nginx's own "return 200" for the very same request bytes (another server
# of the same nginx worker): baseline, scenario, baseline, scenario ...
# ROUNDS times each, medians reported. Scenarios:
#
#   idle          signed Idle, empty queue (and the same requests with
#                 mdm_identity off: the cost of identity verification)
#   tokenupdate   signed TokenUpdate check-in
#   idle-command  signed Idle answered with the queued command
#   ack           signed Acknowledged for the head command, answered with
#                 the next one (every device walks its queue in order)
#   enqueue       admin API: one command to 10,000 enrollments
#   ddm-items     signed DeclarativeManagement declaration-items: the
#                 manifest of four declarations (one set)
#   ddm-status    signed DeclarativeManagement status: an incremental
#                 report of the four declarations and two values
#   idle-fleet    signed Idle from F devices (default 100,000) in random
#                 order, after one warm-up pass over all of them (the
#                 fleet population of bench/fleet.sh, enrolled first)
#
# --workers W: nginx worker_processes (default 1; the CPU columns are all
# workers together), e.g. idle-fleet with 1 and with 2 workers.
#
# Every signed request is sent once: each run continues where the last one
# of its pool stopped, and run lengths are capped (down to 1 s) so that the
# pool lasts; a row says "REPLAYED" if it did not. The population (CA,
# device certificates, signed requests) is made by bench/gen once and
# cached in bench/.cache/.
#
# Writes bench/results.md (bench/results-quick.md with --quick).
set -euo pipefail

# shellcheck source=lib.sh
source "$(dirname "$0")/lib.sh"

QUICK=0
for a in "$@"; do [ "$a" = --quick ] && QUICK=1; done

ONLY=
DEVICES=1000
RECORDS=300000
DURATION=5
ROUNDS=3
CONNS=32
ENQ_IDS=10000
ENQ_CONNS=1
WARMUP=1
FLEET_DEVICES=100000
OUT=$BENCH/results.md
if [ $QUICK = 1 ]; then
    # a smoke run, small and short; its pool is too small for its runs, so
    # signatures repeat (the rows say so)
    DEVICES=50 RECORDS=12000 DURATION=1 ROUNDS=2 ENQ_IDS=1000 WARMUP=0
    OUT=$BENCH/results-quick.md
fi

usage() { sed -n '2,/^set -e/p' "$0" | sed -e '$d' -e 's/^# \{0,1\}//'; exit "${1:-0}"; }

while [ $# -gt 0 ]; do
    case $1 in
        --quick)        ;;
        --scenario)     ONLY="$ONLY,$2"; shift ;;
        --scenario=*)   ONLY="$ONLY,${1#*=}" ;;
        --devices)      DEVICES=$2; shift ;;
        --records)      RECORDS=$2; shift ;;
        --duration)     DURATION=$2; shift ;;
        --rounds)       ROUNDS=$2; shift ;;
        --connections)  CONNS=$2; shift ;;
        --enqueue-ids)  ENQ_IDS=$2; shift ;;
        --workers)      export BENCH_WORKERS=$2; shift ;;
        --fleet-devices) FLEET_DEVICES=$2; shift ;;
        --out)          OUT=$2; shift ;;
        -h|--help)      usage ;;
        *)              printf 'bench: unknown option %s\n\n' "$1" >&2; usage 2 ;;
    esac
    shift
done

ALL="idle tokenupdate idle-command ack enqueue ddm-items ddm-status idle-fleet"
SCENARIOS=
for s in $ALL; do
    if [ -z "$ONLY" ] || [[ ",$ONLY," == *",$s,"* ]]; then
        SCENARIOS="$SCENARIOS $s"
    fi
done
for s in ${ONLY//,/ }; do
    [[ " $ALL " == *" $s "* ]] || die "unknown scenario $s (one of: $ALL)"
done

build_tools
MODULE_NOTE=$(module_note)

# --- the machine, before anything of ours runs on it ---

LOADAVG=$(cut -d' ' -f1-3 /proc/loadavg)
CPU_MODEL=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)
NPROC=$(nproc)

say "openssl speed rsa2048 (one core)"
SPEED_SECS=3; [ $QUICK = 1 ] && SPEED_SECS=1
SPEED=$(openssl speed -seconds $SPEED_SECS rsa2048 2>/dev/null | awk '/^rsa 2048 bits/ { print $(NF-1), $NF }')
RSA_SIGN_S=${SPEED% *}
RSA_VERIFY_S=${SPEED#* }
RSA_VERIFY_US=$(awk -v v="$RSA_VERIFY_S" 'BEGIN { printf "%.1f", 1e6 / v }')
note "RSA-2048: $RSA_SIGN_S sign/s, $RSA_VERIFY_S verify/s = $RSA_VERIFY_US µs per verify"

if [[ " $SCENARIOS " == *" idle-fleet "* ]]; then
    FPOP=$(fleet_population "$FLEET_DEVICES")
fi
if [ "$(echo $SCENARIOS)" = idle-fleet ]; then
    # idle-fleet alone: its population is the only one
    POP=$FPOP
else
    POP=$(population "$DEVICES" "$DEVICES" "$RECORDS")
    if [ -n "${FPOP:-}" ]; then
        # idle-fleet has its own population (and CA): nginx trusts both
        BENCH_CA=$CACHE/ca-$(basename "$POP")+$(basename "$FPOP").pem
        cat "$POP/ca.pem" "$FPOP/ca.pem" > "$BENCH_CA"
    fi
fi
pop_param() { sed -n "s/^$1=//p" "$POP/params"; }
ACK_COMMANDS=$(pop_param ack_commands)

start_servers "$POP"
WORKER=$(nginx_worker)
CLK_TCK=$(getconf CLK_TCK)
RES=$TMP/results
mkdir -p "$RES"
WRKLOG=$TMP/logs/wrk.log

if [ "$POP" != "${FPOP:-}" ]; then
    say "enrolling $DEVICES devices (signed Authenticate + TokenUpdate through nginx)"
    enroll "$POP"
fi
start_trimmer

# --- pools: every signed request once ---

# records in a file, and the byte offset where the next run starts
declare -A CURSOR CONSUMED
records_in() { case $1 in idle-fleet) sed -n 's/^idle=//p' "$FPOP/params" ;; idle) pop_param idle ;; ack) pop_param ack ;; tokenupdate) pop_param tokenupdate ;; ddm-items|ddm-status) pop_param ddm ;; *) echo 0 ;; esac; }
for p in idle ack tokenupdate ddm-items ddm-status idle-fleet none; do CURSOR[$p]=0; CONSUMED[$p]=0; done

# DDM: four declarations in set "bench", every device in it
ddm_setup() {
    [ -n "${DDM_READY:-}" ] && return 0
    local d
    for d in '{"Type":"com.apple.activation.simple","Identifier":"bench.activation","Payload":{"StandardConfigurations":["bench.passcode","bench.status"]}}' \
             '{"Type":"com.apple.configuration.passcode.settings","Identifier":"bench.passcode","Payload":{"RequirePasscode":true,"MinimumLength":6}}' \
             '{"Type":"com.apple.configuration.management.status-subscriptions","Identifier":"bench.status","Payload":{"StatusItems":[{"Name":"device.operating-system.version"}]}}' \
             '{"Type":"com.apple.management.properties","Identifier":"bench.properties","Payload":{"bench":"yes"}}'; do
        curl -sf -u "nanomdm:$API_KEY" -X PUT --data-binary "$d" \
            "http://127.0.0.1:$PORT/v1/ddm/declarations?nonotify=1" >/dev/null \
            || die "PUT /v1/ddm/declarations failed"
        d=${d#*\"Identifier\":\"}
        curl -sf -u "nanomdm:$API_KEY" -X PUT \
            "http://127.0.0.1:$PORT/v1/ddm/set-declarations/bench?declaration=${d%%\"*}&nonotify=1" >/dev/null \
            || die "PUT /v1/ddm/set-declarations failed"
    done
    sed 's/.*/SADD mdm:ddm:enrsets:{&} bench/' "$POP/udids.txt" | rcli --pipe >/dev/null
    DDM_READY=1
}

ms() { awk -v u="$1" 'BEGIN { printf "%.2f", u / 1000 }'; }

# round_duration LEFT RATE ROUNDS: the run length that keeps LEFT more
# records within the pool at RATE requests/s over ROUNDS runs (at most
# DURATION, at least 1 s)
round_duration() {
    awk -v b="$1" -v r="$2" -v n="$3" -v d="$DURATION" 'BEGIN {
        s = (r > 0 && n > 0) ? int(b / n / (r * 1.15)) : d
        if (s > d) s = d
        if (s < 1) s = 1
        print s }'
}

# run NAME PORT FILE POOL ADVANCE DURATION CONNS TAG: one timed run from
# where POOL's next run starts; ADVANCE=1 consumes what it sent (a signed
# scenario), 0 not (the baseline and unsigned runs get the same bytes the
# scenario will get, and signatures mean nothing to them)
run() {
    local name=$1 port=$2 file=$3 pool=$4 advance=$5 dur=$6 conns=$7 tag=$8
    local line w0 r0 w1 r1
    w0=$(workers_ticks)
    r0=$(cpu_ticks "$REDIS_PID")
    line=$(wrk_run "$port" "$file" "${CURSOR[$pool]}" "$conns" "${dur}s" "$WRKLOG")
    w1=$(workers_ticks)
    r1=$(cpu_ticks "$REDIS_PID")
    # the CPU time the nginx worker and redis-server spent per request: what
    # other load on the machine changes least
    line="$line $(awk -v w=$((w1 - w0)) -v r=$((r1 - r0)) -v n="$(field requests "$line")" \
                      -v hz="$CLK_TCK" 'BEGIN {
        if (n == 0) n = 1
        printf "ngx_us=%.1f redis_us=%.1f", w * 1e6 / hz / n, r * 1e6 / hz / n }')"
    echo "$line" > "$RES/$name.$tag"
    if [ "$advance" = 1 ]; then
        CURSOR[$pool]=$(field end "$line")
        CONSUMED[$pool]=$(( ${CONSUMED[$pool]} + $(field sent "$line") ))
    fi
    printf '    %-14s %-6s %8.0f req/s  p50 %7.2f ms  p99 %7.2f ms  nginx %6.1f µs/req  (%s s)\n' \
        "$name" "$tag" "$(field rps "$line")" \
        "$(ms "$(field p50_us "$line")")" "$(ms "$(field p99_us "$line")")" \
        "$(field ngx_us "$line")" "$dur" >&2
}

# scenario NAME FILE POOL BUDGET CONNS [XNAME XPORT]: a warm-up (which
# also sets the run length that keeps within BUDGET records), then ROUNDS x
# (baseline, [XNAME: the same bytes to XPORT,] scenario); POOL "none" for
# unsigned requests, which may repeat
scenario() {
    local name=$1 file=$2 pool=$3 budget=$4 conns=$5 xname=${6:-} xport=${7:-}
    local advance=1 dur=$DURATION r line rate=0 durs=

    [ "$pool" = none ] && advance=0

    # into the page cache first: each baseline reads the records its
    # scenario run reads next, and would otherwise pay their first read
    cat "$file" > /dev/null

    if [ "$WARMUP" -gt 0 ]; then
        run "$name" "$PORT" "$file" "$pool" "$advance" "$WARMUP" "$conns" warmup
        line=$(cat "$RES/$name.warmup")
        [ "$(field status_errors "$line")" = 0 ] \
            || die "$name: error answers in the warm-up (see $TMP/logs/error.log)"
        budget=$(( budget - $(field sent "$line") ))
        rate=$(field rps "$line")
    fi

    for r in $(seq "$ROUNDS"); do
        # the fastest rate seen so far sets the length: the pool must last
        if [ $advance = 1 ] && [ "$WARMUP" -gt 0 ]; then
            dur=$(round_duration "$budget" "$rate" $(( ROUNDS - r + 1 )))
        fi
        durs="$durs${durs:+/}$dur"
        run "$name" "$BASE_PORT" "$file" "$pool" 0 "$dur" "$conns" "base$r"
        if [ -n "$xname" ]; then
            run "$xname" "$xport" "$file" "$pool" 0 "$dur" "$conns" "run$r"
        fi
        run "$name" "$PORT" "$file" "$pool" "$advance" "$dur" "$conns" "run$r"
        line=$(cat "$RES/$name.run$r")
        budget=$(( budget - $(field sent "$line") ))
        rate=$(awk -v a="$rate" -v b="$(field rps "$line")" 'BEGIN { print (b > a) ? b : a }')
    done
    echo "$durs" > "$RES/$name.duration"
}

UDID0=$(head -1 "$POP/udids.txt")
CHECKS=$RES/checks
: > "$CHECKS"
check() { echo "$1: $2" >> "$CHECKS"; note "check: $2"; }

IDLE=$(records_in idle)

for s in $SCENARIOS; do
    case $s in
    idle)
        say "scenario idle: signed Idle, empty queue (+ the same without identity)"
        scenario idle "$POP/idle.req" idle $(( IDLE / 2 )) "$CONNS" \
            idle-noid "$NOID_PORT"
        ;;
    tokenupdate)
        say "scenario tokenupdate: signed TokenUpdate check-in"
        scenario tokenupdate "$POP/tokenupdate.req" tokenupdate \
            "$(records_in tokenupdate)" "$CONNS"
        check tokenupdate "TokenUpdate tally of device 0: $(rcli HGET "mdm:enr:{$UDID0}" token_update_tally)"
        ;;
    idle-command)
        say "scenario idle-command: signed Idle answered with the queued command"
        "$BENCH/gen" enqueue -o "$TMP/enqueue-idle.req" --key "$API_KEY" \
            --ids "$POP/udids.txt" --uuid BENCH-IDLE-CMD
        "$BENCH/send" -c 1 "127.0.0.1:$PORT" "$TMP/enqueue-idle.req" || die "enqueue failed"
        scenario idle-command "$POP/idle.req" idle \
            $(( IDLE - ${CONSUMED[idle]} )) "$CONNS"
        check idle-command "deliveries of BENCH-IDLE-CMD to device 0: $(rcli HGET "mdm:r:{$UDID0}:BENCH-IDLE-CMD" deliveries)"
        # empty the queues again for what follows
        sed 's/.*/DEL mdm:q:{&}/' "$POP/udids.txt" | rcli --pipe >/dev/null
        ;;
    ack)
        say "scenario ack: signed Acknowledged + next command ($ACK_COMMANDS commands queued per device)"
        "$BENCH/gen" enqueue -o "$TMP/enqueue-ack.req" --key "$API_KEY" \
            --ids "$POP/udids.txt" --uuid 'BENCH-ACK-%05d' --count "$ACK_COMMANDS"
        # one at a time: the queue order is the order of the reports
        "$BENCH/send" -c 1 "127.0.0.1:$PORT" "$TMP/enqueue-ack.req" || die "enqueue failed"
        scenario ack "$POP/ack.req" ack "$(records_in ack)" "$CONNS"
        check ack "device 0: queue length $(rcli LLEN "mdm:q:{$UDID0}") of $ACK_COMMANDS, BENCH-ACK-00000 $(rcli HGET "mdm:r:{$UDID0}:BENCH-ACK-00000" status)"
        ;;
    enqueue)
        say "scenario enqueue: one command to $ENQ_IDS enrollments per API call"
        prefix=E3AC0000-0000-4000-8000-
        awk -v n="$ENQ_IDS" -v p="$prefix" 'BEGIN {
            for (i = 0; i < n; i++) {
                id = sprintf("%s%012d", p, i)
                printf "HSET mdm:enr:{%s} type Device device_id %s udid %s enabled 1 token_update_tally 1\n", id, id, id
            } }' | rcli --pipe >/dev/null
        "$BENCH/gen" enqueue -o "$TMP/enqueue-many.req" --key "$API_KEY" \
            --synthetic "$prefix:$ENQ_IDS"
        scenario enqueue "$TMP/enqueue-many.req" none 0 "$ENQ_CONNS"
        check enqueue "queue length of enrollment ${prefix}000000000000: $(rcli LLEN "mdm:q:{${prefix}000000000000}")"
        ;;
    ddm-items)
        say "scenario ddm-items: signed DeclarativeManagement declaration-items"
        ddm_setup
        scenario ddm-items "$POP/ddm-items.req" ddm-items "$(records_in ddm-items)" "$CONNS"
        check ddm-items "declaration-items of device 0: $(curl -s -u "nanomdm:$API_KEY" "http://127.0.0.1:$PORT/v1/ddm/declaration-items/$UDID0" | head -c 120)…"
        ;;
    ddm-status)
        say "scenario ddm-status: signed DeclarativeManagement status report"
        ddm_setup
        scenario ddm-status "$POP/ddm-status.req" ddm-status "$(records_in ddm-status)" "$CONNS"
        check ddm-status "status-values of device 0: $(curl -s -u "nanomdm:$API_KEY" "http://127.0.0.1:$PORT/v1/ddm/status-values/$UDID0" | head -c 120)…"
        ;;
    idle-fleet)
        say "scenario idle-fleet: signed Idle from $FLEET_DEVICES devices in random order"
        note "enrolling them (signed Authenticate + TokenUpdate through nginx)"
        "$BENCH/send" -c 32 "127.0.0.1:$PORT" "$FPOP/enroll-auth.req" "$FPOP/enroll-tu.req" \
            || die "enrollment of the fleet failed (see $TMP/logs/error.log)"
        # the warm-up pass: every device once (the first pass of the file)
        note "warm-up pass: one signed Idle from each of the $FLEET_DEVICES devices"
        "$BENCH/send" -c "$CONNS" -n "$FLEET_DEVICES" "127.0.0.1:$PORT" "$FPOP/idle.req" \
            || die "the warm-up pass failed (see $TMP/logs/error.log)"
        CURSOR[idle-fleet]=$(perl -e 'open my $f, "<", $ARGV[0] or die; my $h;
            for (1 .. $ARGV[1]) { read($f, $h, 9) == 9 or die; seek $f, $h + 0, 1 }
            print tell $f' "$FPOP/idle.req" "$FLEET_DEVICES")
        CONSUMED[idle-fleet]=$FLEET_DEVICES
        scenario idle-fleet "$FPOP/idle.req" idle-fleet \
            $(( $(records_in idle-fleet) - FLEET_DEVICES )) "$CONNS"
        FU0=$(head -1 "$FPOP/udids.txt")
        check idle-fleet "fleet device 0 enrolled: $(rcli HGET "mdm:enr:{$FU0}" enabled); $(rcli DBSIZE) keys in Redis"
        ;;
    esac
done

ERRLOG_LINES=$(grep -vc '\[warn\]' "$TMP/logs/error.log" || true)

# --- the report ---

LOADAVG_END=$(cut -d' ' -f1-3 /proc/loadavg)

median() { sort -g | awk '{ a[NR] = $1 } END { if (NR == 0) print 0; else if (NR % 2) print a[(NR + 1) / 2]; else print (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }
stat_of() {   # stat_of NAME TAGPREFIX FIELD -> median over the rounds
    local r
    for r in $(seq "$ROUNDS"); do field "$3" "$(cat "$RES/$1.$2$r")"; done | median
}
sum_of() {
    local r
    for r in $(seq "$ROUNDS"); do field "$3" "$(cat "$RES/$1.$2$r")"; done | awk '{ s += $1 } END { print s + 0 }'
}
# paired A FIELD_A B FIELD_B EXPR: the median over the rounds of EXPR(a, b),
# a and b from the same round (A, B: "name.tag" without the round number):
# runs next to each other saw the same load on the machine
paired() {
    local r
    for r in $(seq "$ROUNDS"); do
        awk -v a="$(field "$2" "$(cat "$RES/$1$r")")" \
            -v b="$(field "$4" "$(cat "$RES/$3$r")")" "BEGIN { print $5 }"
    done | median
}

declare -A TARGET=([idle]=25 [tokenupdate]=20 [idle-fleet]=12)
declare -A TITLE=(
    [idle]="signed Idle, empty queue"
    [idle-noid]="same, mdm_identity off"
    [tokenupdate]="signed TokenUpdate check-in"
    [idle-command]="signed Idle → queued command"
    [ack]="signed Acknowledged → next command"
    [enqueue]="API enqueue to $ENQ_IDS enrollments"
    [ddm-items]="signed DDM declaration-items (4 declarations)"
    [ddm-status]="signed DDM status report (incremental)"
    [idle-fleet]="signed Idle, ${FLEET_DEVICES} devices in random order")
declare -A POOL_OF=([idle]=idle [idle-command]=idle [ack]=ack [tokenupdate]=tokenupdate
                    [ddm-items]=ddm-items [ddm-status]=ddm-status [idle-fleet]=idle-fleet)

TABLE=$RES/table
{
    echo "| scenario | req/s | p50 ms | p99 ms | \`return 200\` req/s | p50 ms | p99 ms | ratio | target | nginx µs/req | Redis µs/req | notes |"
    echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"
} > "$TABLE"

row() {   # row NAME BASENAME
    local name=$1 base=$2 rps p50 p99 brps bp50 bp99 ratio target notes
    local reqs bytes errs wraps ngx bngx redis
    rps=$(stat_of "$name" run rps)
    p50=$(stat_of "$name" run p50_us)
    p99=$(stat_of "$name" run p99_us)
    brps=$(stat_of "$base" base rps)
    bp50=$(stat_of "$base" base p50_us)
    bp99=$(stat_of "$base" base p99_us)
    ratio=$(paired "$name.run" rps "$base.base" rps '(b > 0) ? 100 * a / b : 0')
    ngx=$(stat_of "$name" run ngx_us)
    bngx=$(stat_of "$base" base ngx_us)
    redis=$(stat_of "$name" run redis_us)
    target=${TARGET[$name]:+≥ ${TARGET[$name]}%}
    reqs=$(sum_of "$name" run requests)
    bytes=$(sum_of "$name" run bytes)
    errs=$(( $(sum_of "$name" run status_errors) + $(sum_of "$name" run errors) ))
    wraps=$(sum_of "$name" run wraps)
    notes="$(cat "$RES/$base.duration") s, $reqs requests, answers avg $(( reqs ? bytes / reqs : 0 )) B"
    if [ -n "${POOL_OF[$name]:-}" ]; then
        if [ "$wraps" -gt 0 ] || [ "${CONSUMED[${POOL_OF[$name]}]}" -gt "$(records_in "${POOL_OF[$name]}")" ]; then
            notes="$notes, **REPLAYED signatures**$([ $QUICK = 1 ] && echo ' (as --quick does)' || echo ' (pool too small: --records)')"
        else
            notes="$notes, every signature fresh"
        fi
    fi
    if [ "$name" = enqueue ]; then
        notes="$notes, $(awk -v r="$rps" -v n="$ENQ_IDS" 'BEGIN { printf "%.0f", r * n }') enrollments queued/s"
    fi
    if [ "$errs" -gt 0 ]; then
        notes="$notes, **$errs error answers/socket errors**"
    fi
    if [ "$name" = idle-noid ]; then
        # measured against the idle rounds' baseline, shown on that row
        brps= bp50= bp99= bngx=
    fi
    printf '| %s | %.0f | %s | %s | %s | %s | %s | %.1f%% | %s | %s | %.1f | %s |\n' \
        "${TITLE[$name]}" "$rps" "$(ms "$p50")" "$(ms "$p99")" \
        "${brps:+$(printf '%.0f' "$brps")}" "${bp50:+$(ms "$bp50")}" "${bp99:+$(ms "$bp99")}" \
        "$ratio" "$target" "$(printf '%.1f' "$ngx")${bngx:+ ($(printf '%.1f' "$bngx"))}" \
        "$redis" "$notes" >> "$TABLE"
}

for s in $SCENARIOS; do
    row "$s" "$s"
    if [ "$s" = idle ]; then row idle-noid idle; fi
done

IDENTITY=
if [[ " $SCENARIOS " == *" idle "* ]]; then
    ID_RPS=$(paired idle.run rps idle-noid.run rps '1e6 / a - 1e6 / b')
    ID_CPU=$(paired idle.run ngx_us idle-noid.run ngx_us 'a - b')
    IDENTITY=$(awk -v t="$ID_RPS" -v c="$ID_CPU" -v v="$RSA_VERIFY_US" 'BEGIN {
        printf "**%.1f µs per request** by nginx worker CPU time (%.2f× one RSA-2048 verify of %.1f µs), %.1f µs by throughput (1e6/rps signed − 1e6/rps with mdm_identity off); target ≤ 25 µs and ≤ 1.5× one verify", c, c / v, v, t }')
fi

NGINX_V=$("$NGINX" -v 2>&1 | sed 's/.*: //')
REDIS_V=$(redis-server --version | sed 's/.* v=\([^ ]*\).*/\1/')

{
    echo "# ngx_mdm benchmark results"
    echo
    echo "$(date -u '+%Y-%m-%d %H:%M UTC'), \`bench/run.sh$([ $QUICK = 1 ] && echo ' --quick')\`" \
         "on $MODULE_NOTE."
    echo
    echo "- Machine: $NPROC × $CPU_MODEL, $(awk '/MemTotal/ { printf "%.0f GB", $2 / 1048576 }' /proc/meminfo) RAM," \
         "$(. /etc/os-release && echo "$PRETTY_NAME"), kernel $(uname -r); load average at start $LOADAVG, at the end $LOADAVG_END"
    echo "- nginx $NGINX_V (\`worker_processes ${BENCH_WORKERS:-1}\`), Redis $REDIS_V on loopback TCP, OpenSSL $(openssl version | awk '{ print $2 }'), wrk $(wrk -v 2>&1 | awk 'NR == 1 { print $2 }')"
    echo "- wrk -t1 -c$CONNS (enqueue: -c$ENQ_CONNS), all on the same machine; $ROUNDS rounds of (return 200, scenario)," \
         "medians$([ "$WARMUP" -gt 0 ] && echo " (after a $WARMUP s warm-up of each scenario)")"
    if [ "$POP" != "${FPOP:-}" ]; then
    echo "- $DEVICES enrolled devices, each with its own RSA-2048 certificate; $RECORDS pre-signed requests" \
         "(detached CMS, signingTime, a distinct body each); enqueue to $ENQ_IDS enrollments"
    fi
    if [ -n "${FPOP:-}" ]; then
    echo "- idle-fleet: $FLEET_DEVICES enrolled devices, each with its own RSA-2048 certificate (1,000 keys among them)," \
         "$(records_in idle-fleet) pre-signed Idle in passes over every device in a new random order; the first pass is the warm-up" \
         "${BENCH_NGINX:+; \`BENCH_NGINX=\"$BENCH_NGINX\"\`}"
    fi
    echo "- \`return 200\`: the same request bytes to another server of the same nginx worker; ratio: the median of the"
    echo "  per-round ratios (each scenario run next to its baseline run); nginx µs/req: CPU time of the nginx worker"
    echo "  per request (the baseline's in parentheses), Redis µs/req: redis-server's, from /proc/PID/stat"
    echo
    cat "$TABLE"
    echo
    if [ -n "$IDENTITY" ]; then echo "Identity verification: $IDENTITY."; echo; fi
    echo "\`openssl speed -seconds $SPEED_SECS rsa2048\`: $RSA_SIGN_S sign/s, $RSA_VERIFY_S verify/s = $RSA_VERIFY_US µs per verify (one core)."
    echo
    echo "Checks after the runs:"
    echo
    sed 's/^/- /' "$CHECKS"
    echo "- error log lines (besides the mdm_identity off warning): $ERRLOG_LINES"
    echo
    echo "<details><summary>every run</summary>"
    echo
    echo '```'
    for n in $SCENARIOS idle-noid; do
        for t in warmup $(for r in $(seq "$ROUNDS"); do echo "base$r run$r"; done); do
            if [ -f "$RES/$n.$t" ]; then printf '%-22s %s\n' "$n.$t" "$(cat "$RES/$n.$t")"; fi
        done
    done
    echo '```'
    echo
    echo "</details>"
} > "$OUT"

echo
cat "$TABLE"
echo
[ -n "$IDENTITY" ] && echo "identity: $IDENTITY"
echo "RSA-2048 verify: $RSA_VERIFY_US µs ($RSA_VERIFY_S/s)"
[ "$ERRLOG_LINES" -gt 0 ] && { echo "error log:"; grep -v '\[warn\]' "$TMP/logs/error.log" | tail -5; }
echo "written to ${OUT#$ROOT/}"
