#!/usr/bin/env bash
# ngx_mdm: set up a Debian 12 machine, build the module, run it, test it.
#
#   ./build.sh          install packages (as root) and build
#   ./build.sh run      ... then start redis-server + nginx on localhost
#   ./build.sh stop     stop what "run" started
#   ./build.sh test     ... then run the whole suite, plain and under ASan+UBSan
#   ./build.sh asan     build only the sanitized module (build/asan)
#   ./build.sh bench    ... then run the benchmarks (bench/run.sh; --quick, --scenario NAME;
#                           --scenario fleet: the mass-command benchmark, bench/fleet.sh;
#                           --scenario fleet-all: every fleet number, bench/fleet-all.sh)
#   ./build.sh soak     ... then fault injection under load (bench/faults.py, ~10 min; bench/faults-results.md)
#   ./build.sh install  ... then install mdmctl as /usr/local/bin/mdmctl (PREFIX=/usr/local)
#   ./build.sh fuzz [SECONDS]  build the libFuzzer targets (fuzz/) and run each
#                       for SECONDS (default 60) under ASan+UBSan
#
# Everything it builds goes to build/, everything "run" starts lives in run/.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")" && pwd)
BUILD=$ROOT/build
RUN=$ROOT/run
NGINX_SRC=/usr/share/nginx/src
NGINX=/usr/sbin/nginx

PACKAGES=(nginx nginx-dev libssl-dev libplist-dev libhiredis-dev
          libcurl4-openssl-dev libnghttp2-dev redis-server redis-tools
          libtest-base-perl libprotocol-http2-perl wrk openssl gcc make
          libjansson-dev redis-sentinel prometheus libyaml-libyaml-perl
          perl curl libev-dev libio-socket-ssl-perl valgrind
          faketime python3 python3-cryptography)

# -W is nginx's spelling of -Wextra; nginx's own flags come first, so these
# are what the module is held to.
WARN="-Wall -Wextra -Werror -Wno-unused-parameter"

# clang 14 and its libFuzzer runtime: ./build.sh fuzz (fuzz/)
PACKAGES+=(clang-14 libclang-rt-14-dev)

say() { printf '\033[1m==> %s\033[0m\n' "$*"; }
die() { printf 'build.sh: %s\n' "$*" >&2; exit 1; }

deps() {
    local missing=()
    for p in "${PACKAGES[@]}"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" \
            || missing+=("$p")
    done
    [ ${#missing[@]} -eq 0 ] && return 0

    [ "$(id -u)" -eq 0 ] || die "missing packages (${missing[*]}): run as root or apt-get install them"
    say "installing ${missing[*]}"
    # the packaged services are not wanted running: we start our own
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    systemctl disable --now redis-server redis-sentinel nginx >/dev/null 2>&1 || true
}

# build_module DIR EXTRA_CFLAGS EXTRA_LDFLAGS
build_module() {
    local dir=$1 cflags=$2 ldflags=$3
    mkdir -p "$dir"
    # --with-threads: Debian's nginx has them, and the SCEP CA posts its
    # private-key work to a thread pool (NGX_THREADS must agree)
    local opts="--with-compat --with-debug --with-threads --with-http_ssl_module"
    # configure only when the options, the flags or the config script
    # changed: it takes seconds, a rebuild takes less than one
    local stamp="$opts|$cflags|$ldflags|$(cat "$ROOT/config" "$ROOT/config.make" | md5sum)"
    if [ ! -f "$dir/Makefile" ] || [ "$(cat "$dir/.stamp" 2>/dev/null)" != "$stamp" ]; then
        # shellcheck disable=SC2086
        (cd "$NGINX_SRC" && ./configure $opts --builddir="$dir" \
            --with-cc-opt="$cflags" --with-ld-opt="$ldflags" \
            --add-dynamic-module="$ROOT" >"$dir/configure.log" 2>&1) \
            || { tail -20 "$dir/configure.log"; die "configure failed (see $dir/configure.log)"; }
        echo "$stamp" > "$dir/.stamp"
    fi
    (cd "$NGINX_SRC" && make -s -f "$dir/Makefile" modules) \
        || die "module build failed"
}

build() {
    deps
    say "building the module"
    build_module "$BUILD/nginx" "$WARN -O2 -g" ""
    # the module must load into Debian's own nginx
    check_loads "$BUILD/nginx/ngx_http_mdm_module.so"
    say "building mdm-worker"
    make -s -C "$ROOT/workers" || die "mdm-worker build failed"
    say "building mdmctl"
    make -s -C "$ROOT/workers" mdmctl || die "mdmctl build failed"
}

build_asan() {
    say "building the module with AddressSanitizer + UndefinedBehaviorSanitizer"
    build_module "$BUILD/asan" \
        "$WARN -O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined" \
        "-fsanitize=address,undefined"
}

check_loads() {
    local tmp
    tmp=$(mktemp -d)
    mkdir -p "$tmp/logs"
    printf 'load_module %s;\nevents {}\nhttp { mdm_redis 127.0.0.1:6379; }\n' "$1" > "$tmp/nginx.conf"
    "$NGINX" -p "$tmp/" -c "$tmp/nginx.conf" -e "$tmp/logs/error.log" -t -q \
        || die "$1 does not load into $NGINX"
    rm -rf "$tmp"
}

# the plain suite, then once more with the sanitized module preloaded with
# its runtimes into the stock nginx; any sanitizer report fails the run
test_suite() {
    build
    build_asan
    local so=$BUILD/nginx/ngx_http_mdm_module.so
    cd "$ROOT"
    # the device vectors live in t/vectors; checks against Apple's schema
    # files read them from ../shared when it is there and say when not
    export MDM_SHARED=${MDM_SHARED:-$ROOT/../shared}

    export MDM_WORKER=$ROOT/workers/mdm-worker

    # two files at a time (MDM_TEST_JOBS): every test picks its own ports
    # (TEST_NGINX_RANDOMIZE) and its own Redis, and most of a file's time
    # is waiting
    local jobs=${MDM_TEST_JOBS:-2}
    export TEST_NGINX_RANDOMIZE=1

    # every fuzz target, briefly (MDM_FUZZ_SECONDS each)
    fuzz_suite "${MDM_FUZZ_SECONDS:-15}"

    say "test suite"
    TEST_NGINX_LOAD_MODULES=$so TEST_NGINX_BINARY=$NGINX \
        prove -j"$jobs" -I. -I t/lib -r t

    say "test suite under AddressSanitizer + UndefinedBehaviorSanitizer"
    local reports=$BUILD/asan/reports
    rm -rf "$reports"; mkdir -p "$reports"
    # The sanitizer runtimes go into nginx only, not into perl or openssl.
    # nginx's main() does not free its 1 KB init pool when it refuses a
    # configuration (the must_die tests): the reports of nginx processes
    # that fail to start are set aside.
    cat > "$BUILD/asan/nginx" <<EOF
#!/bin/sh
# a preload the caller set (libfaketime, t/scep-vector.t) goes after them
LD_PRELOAD="$(gcc -print-file-name=libasan.so) $(gcc -print-file-name=libubsan.so)\${LD_PRELOAD:+ \$LD_PRELOAD}" \\
    $NGINX "\$@" &
pid=\$!
wait \$pid
rc=\$?
if [ \$rc -ne 0 ]; then
    for f in "$reports"/asan.\$pid; do
        [ -f "\$f" ] && mv "\$f" "$reports/failed-start.\$pid"
    done
fi
exit \$rc
EOF
    chmod +x "$BUILD/asan/nginx"
    TEST_NGINX_LOAD_MODULES=$BUILD/asan/ngx_http_mdm_module.so \
    TEST_NGINX_BINARY=$BUILD/asan/nginx \
    ASAN_OPTIONS="log_path=$reports/asan:detect_leaks=1" \
    UBSAN_OPTIONS="log_path=$reports/ubsan:print_stacktrace=1" \
        prove -j"$jobs" -I. -I t/lib -r t
    perl t/sanitizer-check.pl "$reports" || die "sanitizer reports in $reports"
    say "no sanitizer reports"

    # the Debian packages, installed on this machine and purged again: as
    # root only (CI is), MDM_TEST_DEB=0 skips it
    if [ "$(id -u)" -eq 0 ] && [ "${MDM_TEST_DEB:-1}" != 0 ]; then
        deb
        say "Debian packages: install, check-in, push, purge"
        MDM_TEST_DEB=$BUILD/deb TEST_NGINX_BINARY=$NGINX \
            prove -I. -I t/lib t/deb-install.t
    fi
}

# fault injection under load (bench/faults.py, ~10 min): the table goes to
# bench/faults-results.md; bench/faults.py --help for the options
soak() {
    build
    cd "$ROOT"
    MDM_WORKER=$ROOT/workers/mdm-worker \
    TEST_NGINX_LOAD_MODULES=$BUILD/nginx/ngx_http_mdm_module.so TEST_NGINX_BINARY=$NGINX \
        /usr/bin/python3 bench/faults.py --out bench/faults-results.md "$@"
}

# the libFuzzer targets of fuzz/ (see its Makefile), each run for $1
# seconds after its regression inputs (fuzz/regress/TARGET/); any crash,
# leak, sanitizer report or differential mismatch fails
fuzz_suite() {
    local secs=${1:-60} out=$BUILD/fuzz t rc execs total=0 failed=()
    deps
    # the configure output (ngx_auto_config.h) the module's headers need
    build_module "$BUILD/nginx" "$WARN -O2 -g" ""
    say "building the fuzz targets"
    make -s -C "$ROOT/fuzz" -j2 OUT="$out" OBJS="$BUILD/nginx" \
        NGINX_SRC="$NGINX_SRC" || die "fuzz targets build failed"
    : > "$out/summary.txt"
    for t in $(make -s -C "$ROOT/fuzz" targets); do
        mkdir -p "$out/work/$t" "$out/artifacts/$t"
        if compgen -G "$ROOT/fuzz/regress/$t/*" >/dev/null; then
            say "fuzz $t: regression inputs"
            "$out/fuzz_$t" "$ROOT/fuzz/regress/$t"/* >"$out/$t.regress.log" 2>&1 \
                || { tail -30 "$out/$t.regress.log"; failed+=("$t(regress)"); continue; }
        fi
        say "fuzz $t: ${secs}s"
        rc=0
        "$out/fuzz_$t" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 \
            -print_final_stats=1 -artifact_prefix="$out/artifacts/$t/" \
            "$out/work/$t" "$ROOT/fuzz/corpus/$t" >"$out/$t.log" 2>&1 || rc=$?
        execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$out/$t.log" | tail -1)
        execs=${execs:-0}
        total=$((total + execs))
        printf '%-12s %12s executions  %s\n' "$t" "$execs" \
            "$( [ $rc -eq 0 ] && echo ok || echo FAILED)" | tee -a "$out/summary.txt"
        grep -h '^[a-z]*: .*inputs' "$out/$t.log" >> "$out/summary.txt" || true
        if [ $rc -ne 0 ]; then
            grep -E 'ERROR|MISMATCH|check failed|runtime error|Test unit written' \
                "$out/$t.log" | head -10
            failed+=("$t")
        fi
    done
    printf '%-12s %12s executions\n' total "$total" | tee -a "$out/summary.txt"
    [ ${#failed[@]} -eq 0 ] || die "fuzzing failed: ${failed[*]} (logs and inputs in $out; keep each input in fuzz/regress/TARGET/)"
    say "fuzzing: no crash, leak or mismatch"
}

run() {
    build
    mkdir -p "$RUN"/{conf,logs,pki,redis}
    local port=${MDM_PORT:-8080} redis_port=${MDM_REDIS_PORT:-6390}

    if [ ! -f "$RUN/pki/identity-ca.pem" ]; then
        say "making a demo identity CA and one device certificate in run/pki"
        "$ROOT/conf/demo-pki.sh" "$RUN/pki"
    fi

    if [ ! -f "$RUN/api.key" ]; then
        openssl rand -hex 24 > "$RUN/api.key"
        chmod 600 "$RUN/api.key"
    fi

    if ! redis-cli -p "$redis_port" ping >/dev/null 2>&1; then
        say "starting redis-server on 127.0.0.1:$redis_port"
        redis-server --bind 127.0.0.1 --port "$redis_port" --dir "$RUN/redis" \
            --daemonize yes --pidfile "$RUN/redis/redis.pid" \
            --logfile "$RUN/logs/redis.log" --appendonly yes
    fi

    sed -e "s|@MODULE@|$BUILD/nginx/ngx_http_mdm_module.so|" \
        -e "s|@PORT@|$port|" -e "s|@REDIS_PORT@|$redis_port|" \
        -e "s|@PKI@|$RUN/pki|" -e "s|@RUN@|$RUN|" \
        "$ROOT/conf/nginx-local.conf" > "$RUN/conf/nginx.conf"

    if [ -f "$RUN/worker.pid" ] && kill -0 "$(cat "$RUN/worker.pid")" 2>/dev/null; then
        kill "$(cat "$RUN/worker.pid")"
    fi
    say "starting mdm-worker"
    nohup "$ROOT/workers/mdm-worker" -c "$ROOT/conf/mdm-worker.conf" \
        --redis "127.0.0.1:$redis_port" --worker_id local \
        >> "$RUN/logs/mdm-worker.log" 2>&1 &
    echo $! > "$RUN/worker.pid"

    if [ -f "$RUN/logs/nginx.pid" ] && kill -0 "$(cat "$RUN/logs/nginx.pid")" 2>/dev/null; then
        "$NGINX" -p "$RUN/" -c conf/nginx.conf -e logs/error.log -s reload
    else
        "$NGINX" -p "$RUN/" -c conf/nginx.conf -e logs/error.log
    fi

    cat <<EOF

ngx_mdm is running on http://127.0.0.1:$port (redis on 127.0.0.1:$redis_port),
with mdm-worker beside it (log: run/logs/mdm-worker.log).
Config: run/conf/nginx.conf    Logs: run/logs/    Demo PKI: run/pki/

Send a signed check-in as a device would:
  body=t/vectors/nanomdm/mdm/testdata/Authenticate.2.plist
  sig=\$(openssl cms -sign -binary -md sha256 -in "\$body" -signer run/pki/device.pem \\
        -inkey run/pki/device.key -outform DER | base64 -w0)
  curl -i -X PUT --data-binary @"\$body" -H "Mdm-Signature: \$sig" \\
       -H "Content-Type: application/x-apple-aspen-mdm-checkin" http://127.0.0.1:$port/mdm/checkin
  redis-cli -p $redis_port --scan --pattern 'mdm:*'

The admin API (user nanomdm, key in run/api.key):
  curl -u nanomdm:\$(cat run/api.key) http://127.0.0.1:$port/v1/enrollments

Stop everything with ./build.sh stop
EOF
}

stop() {
    [ -f "$RUN/logs/nginx.pid" ] && "$NGINX" -p "$RUN/" -c conf/nginx.conf -e logs/error.log -s quit || true
    [ -f "$RUN/worker.pid" ] && kill "$(cat "$RUN/worker.pid")" 2>/dev/null || true
    [ -f "$RUN/redis/redis.pid" ] && kill "$(cat "$RUN/redis/redis.pid")" 2>/dev/null || true
    say "stopped"
}

# ./build.sh deb: libnginx-mod-http-mdm and ngx-mdm-worker into build/deb,
# from a clean copy of the tracked files (the tree's own build/ and t/
# servroots stay out), then lintian on both
deb() {
    deps
    local pkgs=(debhelper lintian dpkg-dev fakeroot)
    local missing=()
    for p in "${pkgs[@]}"; do
        dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
    done
    if [ ${#missing[@]} -gt 0 ]; then
        [ "$(id -u)" -eq 0 ] || die "missing packages (${missing[*]}): run as root"
        apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    fi
    local version src=$BUILD/deb/ngx-mdm
    version=$(dpkg-parsechangelog -l "$ROOT/debian/changelog" -S Version)
    rm -rf "$BUILD/deb"; mkdir -p "$src"
    say "packaging ngx-mdm $version"
    (cd "$ROOT" && git ls-files -z --cached --others --exclude-standard \
        | grep -zv '^build/\|^t/servroot' \
        | xargs -0 tar -cf - ) | tar -xf - -C "$src"
    (cd "$src" && dpkg-buildpackage -b -us -uc >"$BUILD/deb/build.log" 2>&1) \
        || { tail -40 "$BUILD/deb/build.log"; die "dpkg-buildpackage failed (build/deb/build.log)"; }
    say "lintian"
    lintian --fail-on error "$BUILD"/deb/*.changes
    ls -1 "$BUILD"/deb/*.deb
}

case "${1:-build}" in
    build) build ;;
    asan)  build_asan ;;
    fuzz)  fuzz_suite "${2:-60}" ;;
    deps)  deps ;;
    run)   run ;;
    stop)  stop ;;
    test)  test_suite ;;
    bench) build
           # --scenario fleet: the mass-command benchmark (bench/fleet.sh);
           # fleet-all: it and idle-fleet with 1 and 2 workers (bench/fleet-all.sh)
           if [ "${2:-}" = --scenario ] && [[ "${3:-}" == fleet || "${3:-}" == fleet-all ]]; then
               "$ROOT/bench/$3.sh" "${@:4}"
           else
               "$ROOT/bench/run.sh" "${@:2}"
           fi ;;
    deb)   deb ;;
    soak)  soak "${@:2}" ;;
    install) build; install -D -m 0755 "$ROOT/workers/mdmctl" "${PREFIX:-/usr/local}/bin/mdmctl"
             say "installed ${PREFIX:-/usr/local}/bin/mdmctl" ;;
    *)     die "usage: $0 [build|run|stop|test|asan|bench|deb|soak|install|fuzz]" ;;
esac
