#!/usr/bin/env bash
# bench/scep.sh: signed Idle latency during a burst of SCEP enrollments
# (t/scep-bench.pl), for one SCEP configuration.
#
#   bench/scep.sh [N [CONC]] -- [DIRECTIVE ...]
#
# Starts a redis-server and an nginx (one worker) on loopback, with the
# SCEP CA as the identity CA; enrolls one device through SCEP
# (t/scepclient.c), Authenticate and TokenUpdate; then runs
# t/scep-bench.pl: Idle alone, then Idle while N PKCSReqs (default 1000,
# CONC at a time, default 16) go to /scep.  The DIRECTIVEs go into the
# /scep location ("mdm_scep_concurrency 32;"), or into main{} when they
# start with "thread_pool".  Everything started is stopped by its pid.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
NGINX=${NGINX:-/usr/sbin/nginx}
MODULE=${MDM_MODULE:-$ROOT/build/nginx/ngx_http_mdm_module.so}
N=${1:-1000}; CONC=${2:-16}
shift $(( $# >= 2 ? 2 : $# )); [ "${1:-}" = "--" ] && shift
LOC="" MAIN=""
for d in "$@"; do
    case $d in thread_pool*) MAIN+="$d"$'\n' ;; *) LOC+="$d"$'\n' ;; esac
done

TMP=$(mktemp -d /tmp/mdm-scep-bench.XXXXXX)
REDIS_PID= NGINX_PID=
cleanup() {
    [ -n "$NGINX_PID" ] && kill -QUIT "$NGINX_PID" 2>/dev/null || true
    [ -n "$REDIS_PID" ] && kill "$REDIS_PID" 2>/dev/null || true
    sleep 0.5
    rm -rf "$TMP"
}
trap cleanup EXIT

port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
RPORT=$(port); PORT=$(port)

redis-server --bind 127.0.0.1 --port "$RPORT" --save '' --appendonly no \
    --daemonize no --logfile "$TMP/redis.log" &
REDIS_PID=$!

gcc -O1 -o "$TMP/scepclient" "$ROOT/t/scepclient.c" -lcrypto
openssl req -x509 -newkey rsa:2048 -nodes -keyout "$TMP/ca.key" \
    -out "$TMP/ca.pem" -days 3650 -subj '/CN=bench SCEP CA' \
    -addext basicConstraints=critical,CA:TRUE \
    -addext keyUsage=critical,keyCertSign,cRLSign,digitalSignature,keyEncipherment \
    2>/dev/null

mkdir -p "$TMP/logs" "$TMP/conf"
cat > "$TMP/conf/nginx.conf" <<EOF
load_module $MODULE;
worker_processes 1;
error_log $TMP/logs/error.log warn;
pid $TMP/logs/nginx.pid;
$MAIN
events { worker_connections 4096; }
http {
    access_log off;
    mdm_redis 127.0.0.1:$RPORT;
    server {
        listen 127.0.0.1:$PORT;
        mdm_identity_ca $TMP/ca.pem;
        mdm_scep_challenge bench-secret;
        location = /scep {
            mdm_scep;
            mdm_scep_ca $TMP/ca.pem $TMP/ca.key;
            $LOC
        }
        location = /mdm { mdm_server; }
    }
}
EOF
"$NGINX" -p "$TMP" -c conf/nginx.conf -e "$TMP/logs/error.log"
for _ in $(seq 50); do [ -s "$TMP/logs/nginx.pid" ] && break; sleep 0.1; done
NGINX_PID=$(cat "$TMP/logs/nginx.pid")

# the device: an identity from the CA under test, Authenticate, TokenUpdate
mkdir -p "$TMP/dev" "$TMP/burst"
"$TMP/scepclient" req "$TMP/dev" "$TMP/ca.pem" "bench device" bench-secret aes128 sha256
curl -s -o "$TMP/dev/rep.der" --data-binary @"$TMP/dev/req.der" \
    "http://127.0.0.1:$PORT/scep?operation=PKIOperation"
"$TMP/scepclient" rep "$TMP/dev" "$TMP/ca.pem" "$TMP/dev/rep.der" >/dev/null

UDID=BENCH-SCEP-0001
TOPIC=com.apple.mgmt.External.bench
vec=$ROOT/t/vectors/nanomdm/mdm/testdata
sign() {
    openssl cms -sign -binary -in "$1" -signer "$TMP/dev/cert.pem" \
        -inkey "$TMP/dev/key.pem" -outform DER | base64 -w0
}
checkin() {
    sed -e "s/66ADE930-5FDF-5EC4-8429-15640684C489/$UDID/" \
        -e "s/com\.apple\.mgmt\.External\.[0-9a-f-]*/$TOPIC/" "$1" > "$TMP/msg"
    curl -s -o /dev/null -w '%{http_code}' -X PUT --data-binary @"$TMP/msg" \
        -H 'Content-Type: application/x-apple-aspen-mdm-checkin' \
        -H "Mdm-Signature: $(sign "$TMP/msg")" "http://127.0.0.1:$PORT/mdm"
}
[ "$(checkin "$vec/Authenticate.2.plist")" = 200 ] || { echo "Authenticate failed"; exit 1; }
[ "$(checkin "$vec/TokenUpdate.2.plist")" = 200 ] || { echo "TokenUpdate failed"; exit 1; }

printf '<?xml version="1.0" encoding="UTF-8"?><plist version="1.0"><dict><key>Status</key><string>Idle</string><key>UDID</key><string>%s</string></dict></plist>' \
    "$UDID" > "$TMP/idle.plist"
sign "$TMP/idle.plist" > "$TMP/idle.sig"

# the burst: one PKCSReq, N times (the static challenge takes it each time)
"$TMP/scepclient" req "$TMP/burst" "$TMP/ca.pem" "bench burst" bench-secret aes128 sha256

echo "config: ${LOC//$'\n'/ }${MAIN//$'\n'/ }(N=$N, CONC=$CONC, $(nproc) cores)"
perl "$ROOT/t/scep-bench.pl" "$PORT" /scep "$TMP/burst/req.der" \
    "$TMP/idle.plist" "$TMP/idle.sig" "$N" "$CONC"
echo "503s: $(grep -c 'refused (503)' "$TMP/logs/error.log" || true)"
