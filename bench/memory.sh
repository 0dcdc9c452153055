#!/usr/bin/env bash
# bench/memory.sh: memory per enrollment in Redis, and the nginx worker's
# RSS across a million requests.
#
#   bench/memory.sh [--quick] [--devices N] [--keys K] [--requests R]
#                   [--out FILE]
#
# 1. Enrolls N devices (default 100,000) with real signed Authenticate and
#    TokenUpdate check-ins through nginx, each device with its own
#    certificate (K distinct RSA keys among them, default 1,000: generating
#    100,000 keys would take hours; the module binds certificates, not keys),
#    and reports Redis's used_memory per idle enrollment: the growth of
#    used_memory over the enrollment divided by N, with the event stream
#    (drained by mdm-worker in production) deleted first.
# 2. Sends R (default 1,000,000) signed Idle connects, cycling over one Idle
#    per device (every certificate seen again and again), and reports the
#    nginx worker's VmRSS from /proc before, along the way and after
#    (--requests 0: Redis only).
#
# The population is generated once and cached in bench/.cache/ (the first
# run takes minutes). Writes bench/memory.md (memory-quick.md with --quick).
set -euo pipefail

# shellcheck source=lib.sh
source "$(dirname "$0")/lib.sh"

QUICK=0
DEVICES=100000
KEYS=1000
REQUESTS=1000000
CHUNK=30
OUT=

while [ $# -gt 0 ]; do
    case $1 in
        --quick)     QUICK=1 ;;
        --devices)   DEVICES=$2; shift ;;
        --keys)      KEYS=$2; shift ;;
        --requests)  REQUESTS=$2; shift ;;
        --out)       OUT=$2; shift ;;
        -h|--help)   sed -n '2,/^set -e/p' "$0" | sed -e '$d' -e 's/^# \{0,1\}//'; exit 0 ;;
        *)           die "unknown option $1" ;;
    esac
    shift
done

if [ $QUICK = 1 ]; then
    DEVICES=2000 KEYS=100 REQUESTS=50000 CHUNK=5
    OUT=${OUT:-$BENCH/memory-quick.md}
fi
OUT=${OUT:-$BENCH/memory.md}

build_tools
MODULE_NOTE=$(module_note)
LOADAVG=$(cut -d' ' -f1-3 /proc/loadavg)
POP=$(population "$DEVICES" "$KEYS" 0 --idle "$DEVICES" --ack 0 --tokenupdate 0)
start_servers "$POP"

used_memory() { rcli INFO memory | sed -n 's/^used_memory:\([0-9]*\).*/\1/p'; }
kb_to_mb() { awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; }

WORKER=$(nginx_worker)
RSS_START=$(vm_rss_kb "$WORKER")

# --- Redis bytes per idle enrollment ---

sleep 0.5
MEM0=$(used_memory)
KEYS0=$(rcli DBSIZE)
say "enrolling $DEVICES devices: signed Authenticate, then TokenUpdate, through nginx"
"$BENCH/send" -c 32 "127.0.0.1:$PORT" "$POP/enroll-auth.req" "$POP/enroll-tu.req" \
    || die "enrollment failed (see $TMP/logs/error.log)"
EVENTS=$(rcli XLEN mdm:events)
rcli DEL mdm:events >/dev/null
sleep 0.5
MEM1=$(used_memory)
KEYS1=$(rcli DBSIZE)
ENABLED=$(rcli --scan --pattern 'mdm:enr:*' | head -1000 | while read -r k; do rcli HGET "$k" enabled; done | grep -c '^1$' || true)

PER=$(awk -v a="$MEM0" -v b="$MEM1" -v n="$DEVICES" 'BEGIN { printf "%.0f", (b - a) / n }')
KEYS_PER=$(awk -v a="$KEYS0" -v b="$KEYS1" -v n="$DEVICES" 'BEGIN { printf "%.2f", (b - a) / n }')
note "used_memory $MEM0 -> $MEM1: $PER bytes per enrollment ($KEYS_PER keys each; $EVENTS events deleted)"

U0=$(head -1 "$POP/udids.txt")
# the certificate bound to it: its enrollment hash's field named by a SHA-256
HASH0=$(rcli HKEYS "mdm:enr:{$U0}" | grep -E '^[0-9a-f]{64}$' | head -1)
BREAKDOWN=$(
    { rcli --scan --pattern "*{$U0}*" | sort; echo "mdm:certidx:$HASH0"; } | while read -r k; do
        printf '| `%s` | %s | %s | %s |\n' "$k" "$(rcli TYPE "$k")" \
            "$(rcli OBJECT ENCODING "$k")" "$(rcli MEMORY USAGE "$k" SAMPLES 0)"
    done)
FIELDS=$(rcli HLEN "mdm:enr:{$U0}")
RSS_ENROLLED=$(vm_rss_kb "$WORKER")

# --- the same enrollments with an inventory (issue 12) ---
# Every device is sent a DeviceInformation and a SecurityInfo through
# POST /v1/commands (2,000 ids a call) and answers them Acknowledged with
# the fields the inventory keeps, through the module's connect path (on the
# server without identity: the answers are not signed). The results and
# the commands, which expire with mdm_result_ttl, are deleted before
# used_memory is read again: what stays is the idle enrollment's inventory.

say "inventory: DeviceInformation + SecurityInfo to $DEVICES devices, answered through nginx"
# 2,000 ids a call: a command-line argument (the URL) is at most 128 KB
split -l 2000 "$POP/udids.txt" "$TMP/inv-ids."
INV_REQ=$TMP/inventory.req
chunk=0
for f in "$TMP"/inv-ids.*; do
    ids=$(paste -sd, "$f")
    for t in DeviceInformation SecurityInfo; do
        curl -fsS -o /dev/null -u "nanomdm:$API_KEY" -X POST \
             -d "{\"request_type\":\"$t\",\"command_uuid\":\"BENCH-INV-$t-$chunk\"}" \
             "http://127.0.0.1:$PORT/v1/commands/$ids?nopush=1" \
            || die "POST /v1/commands failed"
    done
    CHUNK_OF=$chunk perl -ne '
        chomp; my $c = $ENV{CHUNK_OF}; my $n = $. - 1;
        my $head = qq{<?xml version="1.0" encoding="UTF-8"?>\n<plist version="1.0">\n<dict>\n};
        my %b = (
          DeviceInformation => qq{<key>QueryResponses</key><dict>}
            . qq{<key>SerialNumber</key><string>C02X} . sprintf("%08d", $n) . qq{</string>}
            . qq{<key>Model</key><string>Mac14,2</string><key>ModelName</key><string>MacBook Air</string>}
            . qq{<key>ProductName</key><string>Mac14,2</string><key>OSVersion</key><string>14.4.1</string>}
            . qq{<key>BuildVersion</key><string>23E224</string><key>DeviceName</key><string>Bench Mac $n</string>}
            . qq{<key>DeviceCapacity</key><real>494.38</real><key>AvailableDeviceCapacity</key><real>212.07</real>}
            . qq{<key>BatteryLevel</key><real>0.87</real><key>UDID</key><string>$_</string></dict>},
          SecurityInfo => qq{<key>SecurityInfo</key><dict><key>FDE_Enabled</key><true/>}
            . qq{<key>PasscodePresent</key><true/><key>PasscodeCompliant</key><true/></dict>});
        for my $t (qw(DeviceInformation SecurityInfo)) {
            my $body = $head . qq{<key>CommandUUID</key><string>BENCH-INV-$t-$c</string>}
                . qq{<key>Status</key><string>Acknowledged</string><key>UDID</key><string>$_</string>}
                . $b{$t} . qq{\n</dict>\n</plist>\n};
            my $req = "PUT /mdm/connect HTTP/1.1\r\nHost: localhost\r\n"
                . "Content-Type: application/x-apple-aspen-mdm\r\n"
                . "Content-Length: " . length($body) . "\r\n\r\n" . $body;
            printf "%08d\n%s", length($req), $req;
        }' "$f" >> "$INV_REQ"
    chunk=$((chunk + 1))
done
"$BENCH/send" -c 32 "127.0.0.1:$NOID_PORT" "$INV_REQ" \
    || die "the inventory answers failed (see $TMP/logs/error.log)"
rcli --scan --pattern 'mdm:r:*' | xargs -r -n 1000 redis-cli -p "$REDIS_PORT" UNLINK >/dev/null
rcli --scan --pattern 'mdm:cmd:BENCH-INV-*' | xargs -r -n 1000 redis-cli -p "$REDIS_PORT" UNLINK >/dev/null
rcli DEL mdm:events >/dev/null
# what was freed lazily, and the query buffers of the 10,000-id calls,
# are given back by Redis's cron within a second or two
sleep 3
MEM2=$(used_memory)
PER_INV=$(awk -v a="$MEM0" -v b="$MEM2" -v n="$DEVICES" 'BEGIN { printf "%.0f", (b - a) / n }')
INV_DONE=$(rcli --scan --pattern 'mdm:enr:*' | head -1000 | while read -r k; do rcli HGET "$k" inventory_at; done | grep -c '^[0-9]' || true)
INV_FIELDS=$(rcli HLEN "mdm:enr:{$U0}")
INV_BYTES=$(rcli MEMORY USAGE "mdm:enr:{$U0}" SAMPLES 0)
INV_ENC=$(rcli OBJECT ENCODING "mdm:enr:{$U0}")
note "with inventory: used_memory $MEM2: $PER_INV bytes per enrollment ($INV_DONE of 1000 with an inventory)"

# --- nginx worker RSS across REQUESTS signed Idle connects ---

if [ "$REQUESTS" -gt 0 ]; then
    start_trimmer
    say "nginx worker $WORKER: RSS across $REQUESTS signed Idle connects (wrk, ${CHUNK} s at a time)"
    WRKLOG=$TMP/logs/wrk.log
    TOTAL=0
    POS=0
    TRACE=$TMP/rss-trace
    # a short first chunk: what fills once (caches, pools) is filled before "before"
    line=$(wrk_run "$PORT" "$POP/idle.req" "$POS" 32 2s "$WRKLOG")
    POS=$(field end "$line")
    RSS_BEFORE=$(vm_rss_kb "$WORKER")
    WARM=$(field requests "$line")
    echo "0 $RSS_BEFORE" > "$TRACE"
    note "after $WARM warm-up requests: VmRSS $RSS_BEFORE kB"
    T0=$(date +%s)
    ERRS=0
    while [ "$TOTAL" -lt "$REQUESTS" ]; do
        line=$(wrk_run "$PORT" "$POP/idle.req" "$POS" 32 "${CHUNK}s" "$WRKLOG")
        POS=$(field end "$line")
        TOTAL=$(( TOTAL + $(field requests "$line") ))
        ERRS=$(( ERRS + $(field status_errors "$line") + $(field errors "$line") ))
        rss=$(vm_rss_kb "$WORKER")
        echo "$TOTAL $rss" >> "$TRACE"
        note "$TOTAL requests ($(field rps "$line") req/s): VmRSS $rss kB"
    done
    ELAPSED=$(( $(date +%s) - T0 ))
    RSS_AFTER=$(vm_rss_kb "$WORKER")
    HWM=$(awk '/^VmHWM:/ { print $2 }' "/proc/$WORKER/status")
    GROWTH=$(( RSS_AFTER - RSS_BEFORE ))
    [ "$(nginx_worker)" = "$WORKER" ] || die "the nginx worker changed (crashed?) during the run"
fi

{
    echo "# ngx_mdm memory"
    echo
    echo "$(date -u '+%Y-%m-%d %H:%M UTC'), \`bench/memory.sh$([ $QUICK = 1 ] && echo ' --quick')\`" \
         "on $MODULE_NOTE;" \
         "$(nproc) × $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1);" \
         "load average at start $LOADAVG; Redis $(redis-server --version | sed 's/.* v=\([^ ]*\).*/\1/'), nginx $("$NGINX" -v 2>&1 | sed 's/.*\///')."
    echo
    echo "## Redis: $PER bytes per idle enrollment (target ≤ 1 KB)"
    echo
    echo "$DEVICES devices enrolled with real signed Authenticate + TokenUpdate through nginx"
    echo "(each with its own certificate, $KEYS RSA keys among them); \`used_memory\` $MEM0 → $MEM1"
    echo "after deleting the event stream ($EVENTS entries, which mdm-worker drains in production):"
    echo "**$PER bytes per enrollment**, $KEYS_PER keys each. $ENABLED of the first 1000 enrollment hashes are enabled."
    echo
    echo "One device's keys (\`MEMORY USAGE\`, bytes):"
    echo
    echo "| key | type | encoding | bytes |"
    echo "|---|---|---|---:|"
    echo "$BREAKDOWN"
    echo
    echo "The enrollment hash has $FIELDS fields, the certificate binding among them. \`MEMORY USAGE\` counts a"
    echo "key's own allocations; used_memory also has the keyspace's dictionary entries, hence the difference."
    echo "With \`mdm_store_authenticate on\` each device also keeps its raw Authenticate (\`mdm:auth:{ID}\`, about 1 KB)."
    echo
    echo "## Redis with the inventory: $PER_INV bytes per idle enrollment (target ≤ 1.5 KB)"
    echo
    echo "Each device then answered a DeviceInformation and a SecurityInfo (queued with POST /v1/commands,"
    echo "answered Acknowledged through nginx's connect path); with their results and commands deleted"
    echo "(they expire with mdm_result_ttl): \`used_memory\` $MEM0 → $MEM2, **$PER_INV bytes per enrollment**;"
    echo "$INV_DONE of the first 1000 enrollment hashes have an inventory. One device's hash: $INV_FIELDS fields,"
    echo "$INV_BYTES bytes (\`MEMORY USAGE\`), encoding $INV_ENC. The difference to the first measurement is the"
    echo "inventory's fields in the hash plus what the run left in Redis's own tables (its key and expiry"
    echo "dictionaries grew with the 2 results per device, and do not shrink at this fill)."
    echo
    if [ "$REQUESTS" -gt 0 ]; then
        echo "## nginx worker RSS: $(kb_to_mb "$RSS_BEFORE") MB → $(kb_to_mb "$RSS_AFTER") MB over $TOTAL requests (target: within 2 MB)"
        echo
        echo "VmRSS of the one nginx worker: $(kb_to_mb "$RSS_START") MB at start, $(kb_to_mb "$RSS_ENROLLED") MB after the"
        echo "$((DEVICES * 2)) enrollment check-ins, $(kb_to_mb "$RSS_BEFORE") MB after $WARM warm-up Idle connects,"
        echo "**$(kb_to_mb "$RSS_AFTER") MB after $TOTAL more** (growth $GROWTH kB; peak VmHWM $(kb_to_mb "$HWM") MB)."
        echo "Signed Idle connects from all $DEVICES devices in turn (one pre-signed Idle per device, the pool"
        echo "cycled: here repeats don't matter), wrk -t1 -c32 in ${CHUNK} s pieces, $ELAPSED s in all"
        echo "($((TOTAL / (ELAPSED > 0 ? ELAPSED : 1))) requests/s with $DEVICES distinct certificates in turn), $ERRS error answers."
        echo
        echo '| requests | VmRSS kB |'
        echo '|---:|---:|'
        awk '{ printf "| %d | %d |\n", $1, $2 }' "$TRACE"
    fi
} > "$OUT"

echo
sed -n '/^## Redis/,$p' "$OUT" | grep -v '^|' | sed '/^$/d'
echo "written to ${OUT#$ROOT/}"
