# bench/lib.sh: what run.sh and memory.sh share (sourced, not run).
#
# Starts a redis-server (loopback, no persistence) and an nginx with the
# module (one worker, prefix in a temp dir, config written here), makes and
# caches the test population, enrolls it, drives wrk.  Everything it starts
# is stopped by its pid when the script exits.

BENCH=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(dirname "$BENCH")
NGINX=${NGINX:-/usr/sbin/nginx}
MODULE=${MDM_MODULE:-$ROOT/build/nginx/ngx_http_mdm_module.so}
CACHE=${MDM_BENCH_CACHE:-$BENCH/.cache}

say() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }
note() { printf '    %s\n' "$*" >&2; }
die() { printf 'bench: %s\n' "$*" >&2; exit 1; }

TMP=
REDIS_PID=
NGINX_PID=
TRIMMER_PID=
KEEP_TMP=${MDM_BENCH_KEEP:-0}

cleanup() {
    local rc=$?
    set +e
    if [ -n "$TRIMMER_PID" ]; then
        kill "$TRIMMER_PID" 2>/dev/null
        wait "$TRIMMER_PID" 2>/dev/null
    fi
    if [ -n "$NGINX_PID" ] && kill -0 "$NGINX_PID" 2>/dev/null; then
        kill -QUIT "$NGINX_PID" 2>/dev/null
        for _ in $(seq 50); do kill -0 "$NGINX_PID" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$NGINX_PID" 2>/dev/null
    fi
    stop_redis
    if [ -n "$TMP" ] && [ -d "$TMP" ]; then
        if [ "$rc" -ne 0 ] || [ "$KEEP_TMP" = 1 ]; then
            printf 'bench: logs and config kept in %s\n' "$TMP" >&2
        else
            rm -rf "$TMP"
        fi
    fi
    return $rc
}

stop_redis() {
    if [ -s "$TMP/replica/redis.pid" ]; then
        kill "$(cat "$TMP/replica/redis.pid")" 2>/dev/null
    fi
    if [ -n "$REDIS_PID" ] && kill -0 "$REDIS_PID" 2>/dev/null; then
        kill "$REDIS_PID" 2>/dev/null
        for _ in $(seq 50); do kill -0 "$REDIS_PID" 2>/dev/null || break; sleep 0.1; done
    fi
    REDIS_PID=
}

# four consecutive free loopback ports (the module, return 200, no
# identity, redis) below the ephemeral range; other test suites may pick
# ports at the same moment, so start_servers retries on a clash
free_ports() {
    local p i ok used
    used=$(ss -Htan 2>/dev/null | awk '{ n = split($4, a, ":"); print a[n] }' | sort -u)
    for _ in $(seq 100); do
        p=$((10000 + RANDOM % 22000))
        ok=1
        for i in 0 1 2 3; do
            if grep -qx "$((p + i))" <<< "$used" \
               || (exec 3<>"/dev/tcp/127.0.0.1/$((p + i))") 2>/dev/null; then
                ok=0
                break
            fi
        done
        if [ $ok = 1 ]; then echo "$p"; return; fi
    done
    die "no free ports"
}

# module_note: the commit and the state of the module, for the reports
module_note() {
    local dirty
    dirty=$(git -C "$ROOT" status --porcelain -- ngx_mdm_module config config.make 2>/dev/null | wc -l)
    printf 'commit %s%s, module built %s%s' "$COMMIT" \
        "$([ "$dirty" -gt 0 ] && echo ' with uncommitted module changes')" \
        "$(date -u -r "$MODULE" '+%H:%M UTC')" \
        "$([ -n "$STALE" ] && echo " (**older than its sources**: $STALE)")"
}

build_tools() {
    [ -f "$MODULE" ] || die "$MODULE not built (./build.sh)"
    # what the numbers are for: the commit, and whether the module was built
    # from what is checked out
    COMMIT=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?')
    STALE=$(find "$ROOT/ngx_mdm_module" "$ROOT/config" "$ROOT/config.make" \
                 -newer "$MODULE" -type f 2>/dev/null | sed "s|^$ROOT/||" | head -3 | paste -sd' ')
    if [ -n "$STALE" ]; then
        say "warning: $MODULE is older than $STALE: run ./build.sh (./build.sh bench does)"
    fi
    command -v wrk >/dev/null || die "wrk is not installed"
    make -s -C "$BENCH" || die "building bench/gen and bench/send failed"
}

# population DEVICES KEYS RECORDS [gen options]: prints the directory of a
# cached population, making it first if needed
population() {
    local n=$1 k=$2 m=$3
    shift 3
    local tag="n$n-k$k-m$m${*:+-$(echo "$*" | tr -c 'a-z0-9\n' '_' )}"
    local dir="$CACHE/pop-$tag"
    if [ ! -f "$dir/params" ] || [ "$BENCH/gen.c" -nt "$dir/params" ]; then
        mkdir -p "$CACHE"
        say "generating $n device certificates ($k keys) and signed requests in ${dir#"$ROOT"/} (cached)"
        # RSA keys are slow to make (minutes for 1,000): kept apart, and
        # shared by the populations with as many keys
        local keys="$CACHE/keys-$k.pem"
        GEN_KEYS=$keys "$BENCH/gen" pop -o "$dir" -n "$n" -k "$k" -m "$m" "$@" >&2 \
            || die "gen failed"
        [ -f "$keys" ] || cp "$dir/keys.pem" "$keys"
    fi
    echo "$dir"
}

# start_servers POPDIR: redis-server and nginx in a fresh temp dir
start_servers() {
    local pop=$1 try
    TMP=$(mktemp -d /tmp/ngx_mdm_bench.XXXXXX)
    trap cleanup EXIT
    trap 'exit 130' INT TERM
    mkdir -p "$TMP/logs" "$TMP/conf" "$TMP/redis"
    API_KEY=$(openssl rand -hex 16)

    for try in 1 2 3 4 5; do
        PORT=$(free_ports)
        BASE_PORT=$((PORT + 1))
        NOID_PORT=$((PORT + 2))
        REDIS_PORT=$((PORT + 3))
        if start_redis && start_nginx "$pop"; then
            note "nginx $NGINX_PID on 127.0.0.1:$PORT (return 200 on :$BASE_PORT," \
                 "no identity on :$NOID_PORT), redis on :$REDIS_PORT, in $TMP"
            return 0
        fi
        note "could not start on ports $PORT-$REDIS_PORT (try $try), trying others"
        stop_redis
    done
    die "could not start redis-server and nginx (see $TMP/logs)"
}

start_redis() {
    rm -f "$TMP/redis/redis.pid"
    redis-server --bind 127.0.0.1 --port "$REDIS_PORT" --dir "$TMP/redis" \
        --save '' --appendonly no --daemonize yes \
        --pidfile "$TMP/redis/redis.pid" --logfile "$TMP/logs/redis.log" \
        || return 1
    for _ in $(seq 50); do
        if [ -s "$TMP/redis/redis.pid" ] \
           && redis-cli -p "$REDIS_PORT" ping 2>/dev/null | grep -q PONG; then
            REDIS_PID=$(cat "$TMP/redis/redis.pid")
            [ -z "${BENCH_REPLICA:-}" ] || start_replica
            return 0
        fi
        sleep 0.1
    done
    return 1
}

# BENCH_REPLICA=1: a replica on the next port, in sync before the runs
start_replica() {
    local rport=$((REDIS_PORT + 10))
    mkdir -p "$TMP/replica"
    redis-server --bind 127.0.0.1 --port "$rport" --dir "$TMP/replica" \
        --save '' --appendonly no --daemonize yes \
        --pidfile "$TMP/replica/redis.pid" --logfile "$TMP/logs/replica.log" \
        --replicaof 127.0.0.1 "$REDIS_PORT" || die "replica did not start"
    for _ in $(seq 100); do
        redis-cli -p "$rport" info replication 2>/dev/null \
            | grep -q 'master_link_status:up' && return 0
        sleep 0.1
    done
    die "the replica did not sync"
}

start_nginx() {
    local pop=$1
    cat > "$TMP/conf/nginx.conf" <<CONF
load_module $MODULE;

# BENCH_WORKERS: nginx workers (default 1)
worker_processes ${BENCH_WORKERS:-1};
pid logs/nginx.pid;
error_log logs/error.log error;

events {
    worker_connections 4096;
}

http {
    access_log off;
    keepalive_requests 1000000;

    client_body_temp_path $TMP/client_body_temp;
    proxy_temp_path       $TMP/proxy_temp;
    fastcgi_temp_path     $TMP/fastcgi_temp;
    uwsgi_temp_path       $TMP/uwsgi_temp;
    scgi_temp_path        $TMP/scgi_temp;

    # the enqueue to 10,000 enrollments has a ~370 KB URL
    large_client_header_buffers 4 512k;
    client_max_body_size 1m;

    # BENCH_REDIS_OPTS: more mdm_redis options, e.g. "wait=1,500ms" (with
    # BENCH_REPLICA=1, which starts a replica of the bench's Redis)
    mdm_redis 127.0.0.1:$REDIS_PORT timeout=5s ${BENCH_REDIS_OPTS:-};

    # BENCH_NGINX: directives to try, e.g. "mdm_identity_cache 10000 verdicts=400000;"
    ${BENCH_NGINX:-}

    # the module, as conf/nginx-local.conf sets it up
    server {
        listen 127.0.0.1:$PORT;

        mdm_identity signature;
        mdm_identity_ca ${BENCH_CA:-$pop/ca.pem};

        location = /mdm/checkin { mdm_checkin; }
        location = /mdm/connect { mdm_connect; }
        location /v1/ {
            mdm_api;
            mdm_api_key $API_KEY;
        }
    }

    # the baseline: nginx's own "return 200" for the very same requests
    server {
        listen 127.0.0.1:$BASE_PORT;
        location / { return 200; }
    }

    # the module without identity: the cost of verification by difference
    server {
        listen 127.0.0.1:$NOID_PORT;

        mdm_identity off;
        mdm_cert_auth off;

        location = /mdm/checkin { mdm_checkin; }
        location = /mdm/connect { mdm_connect; }
    }
}
CONF
    rm -f "$TMP/logs/nginx.pid"
    # the warning about mdm_identity off is expected: not shown
    if ! "$NGINX" -p "$TMP/" -c conf/nginx.conf -e logs/error.log -q \
             2> "$TMP/logs/nginx-start.log"; then
        grep -v 'without device identity' "$TMP/logs/nginx-start.log" >&2
        return 1
    fi
    for _ in $(seq 50); do [ -s "$TMP/logs/nginx.pid" ] && break; sleep 0.1; done
    NGINX_PID=$(cat "$TMP/logs/nginx.pid")
    sleep 0.3
}

rcli() { redis-cli -p "$REDIS_PORT" "$@"; }

# the nginx worker's pid (one worker)
nginx_worker() {
    pgrep -P "$NGINX_PID" | head -1
}

# every nginx worker's pid
nginx_workers() {
    pgrep -P "$NGINX_PID" | paste -sd' '
}

# CPU ticks of all of them together
workers_ticks() {
    local p t=0
    for p in $(nginx_workers); do t=$(( t + $(cpu_ticks "$p") )); done
    echo "$t"
}

# stop_nginx: the master and its workers, gracefully (a fresh start after
# it has cold caches)
stop_nginx() {
    if [ -n "$NGINX_PID" ] && kill -0 "$NGINX_PID" 2>/dev/null; then
        kill -QUIT "$NGINX_PID" 2>/dev/null
        for _ in $(seq 100); do kill -0 "$NGINX_PID" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$NGINX_PID" 2>/dev/null || true
    fi
    NGINX_PID=
}

# CPU time (user + system, clock ticks) a process has used
cpu_ticks() {
    awk '{ print $14 + $15 }' "/proc/$1/stat"
}

vm_rss_kb() {
    awk '/^VmRSS:/ { print $2 }' "/proc/$1/status"
}

# Every accepted message also goes to the event stream mdm:events, which
# mdm-worker drains for webhooks; without it the stream grows with every
# body. Trim it once a second, as the README tells operators without
# webhooks to do.
start_trimmer() {
    ( while sleep 1; do
          redis-cli -p "$REDIS_PORT" XTRIM mdm:events MAXLEN '~' 10000 >/dev/null 2>&1 || exit 0
      done ) &
    TRIMMER_PID=$!
}

# enroll POPDIR: a real signed Authenticate, then TokenUpdate, per device
enroll() {
    local pop=$1
    "$BENCH/send" -c 16 "127.0.0.1:$PORT" "$pop/enroll-auth.req" "$pop/enroll-tu.req" \
        || die "enrollment failed (see $TMP/logs/error.log)"
}

# wrk_run PORT FILE POS CONNECTIONS DURATION LOG: one timed run; prints its
# BENCH line
wrk_run() {
    local port=$1 file=$2 pos=$3 conns=$4 dur=$5 log=$6
    wrk -t1 -c"$conns" -d"$dur" --timeout 10s -s "$BENCH/replay.lua" \
        "http://127.0.0.1:$port" -- "$file" "$pos" >> "$log" 2>&1 \
        || die "wrk failed (see $log)"
    grep '^BENCH ' "$log" | tail -1
}

# field NAME LINE: a value from a BENCH line
field() {
    sed -n "s/.* $1=\([^ ]*\).*/\1/p" <<< " $2"
}

# fleet_population DEVICES: the population of the fleet scenarios
# (bench/fleet.sh, run.sh's idle-fleet), one for both: DEVICES certificates
# with at most 1,000 RSA keys among them (100,000 keys would take hours to
# make; the module binds certificates, not keys), the enrollment check-ins,
# FLEET_IDLE_PASSES (default 3) passes of signed Idle over every device in
# a new random order each, and FLEET_COMMANDS (default 4) x (Idle +
# Acknowledged of BENCH-FLEET-c) per device
fleet_population() {
    local n=$1 k=1000
    [ "$n" -lt "$k" ] && k=$n
    population "$n" "$k" 0 --idle $(( n * ${FLEET_IDLE_PASSES:-3} )) --shuffle \
        --fleet "${FLEET_COMMANDS:-4}" --ack 0 --tokenupdate 0 --ddm 0
}
