/*
 * Copyright (C) ngx_mdm contributors
 *
 * mdm-worker: configuration, logging, signals and the event loop.
 */

#include <ctype.h>
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "mdm_worker.h"


typedef struct {
    const char  *name;
    char         type;           /* s: string, i: int, l: long */
    size_t       offset;         /* of the field in mw_conf_t */
    const char  *help;
} mw_option_t;

#define MW_FIELD(conf, o)  ((char *) (conf) + (o)->offset)


static mw_option_t  mw_options[] = {
    { "redis", 's', offsetof(mw_conf_t, redis),
      "Redis address, host:port or unix:/path (127.0.0.1:6379)" },
    { "redis_db", 'i', offsetof(mw_conf_t, redis_db), "Redis database (0)" },
    { "redis_password", 's', offsetof(mw_conf_t, redis_password),
      "Redis password (none)" },
    { "redis_sentinels", 's', offsetof(mw_conf_t, redis_sentinels),
      "Redis Sentinel addresses, host:port,host:port; with redis_master, "
      "the master is asked of them at every connect, and \"redis\" is "
      "not used (none)" },
    { "redis_master", 's', offsetof(mw_conf_t, redis_master),
      "the master's name the sentinels monitor (none)" },
    { "redis_sentinel_password", 's',
      offsetof(mw_conf_t, redis_sentinel_password),
      "password of the sentinels, if they have one (none)" },
    { "redis_timeout", 'l', offsetof(mw_conf_t, redis_timeout),
      "seconds a Redis call may go unanswered (beyond the 1 s of blocking "
      "reads) before the connection is dropped and made again (5)" },
    { "apns_url", 's', offsetof(mw_conf_t, apns_url),
      "APNs base URL: https://api.push.apple.com, or "
      "https://api.sandbox.push.apple.com" },
    { "apns_ca", 's', offsetof(mw_conf_t, apns_ca),
      "CA bundle that signs the APNs server certificate (system CAs)" },
    { "apns_expiration", 'l', offsetof(mw_conf_t, apns_expiration),
      "apns-expiration, seconds from now; 0: deliver now or never (604800)" },
    { "apns_priority", 'i', offsetof(mw_conf_t, apns_priority),
      "apns-priority (10)" },
    { "push_retries", 'i', offsetof(mw_conf_t, push_retries),
      "attempts after a 429, a 5xx or a connection failure (8)" },
    { "push_backoff_ms", 'l', offsetof(mw_conf_t, push_backoff_ms),
      "first retry delay, doubled each time up to 60 s (1000)" },
    { "max_inflight", 'i', offsetof(mw_conf_t, max_inflight),
      "pushes in flight at once (1000)" },
    { "repush_interval", 'l', offsetof(mw_conf_t, repush_interval),
      "seconds before an enrollment with queued commands is pushed again, "
      "doubled while it does not answer; 0: off (900)" },
    { "heartbeat", 'l', offsetof(mw_conf_t, heartbeat),
      "seconds between heartbeats; a worker silent for 3 is taken for "
      "dead and its unfinished pushes are taken over (5)" },
    { "stop_timeout", 'l', offsetof(mw_conf_t, stop_timeout),
      "seconds SIGTERM waits for the work in flight; then the worker exits "
      "and its unfinished pushes are put back by the next start (30)" },
    { "webhook_url", 's', offsetof(mw_conf_t, webhook_url),
      "where events are POSTed as NanoMDM webhooks (none: off)" },
    { "webhook_hmac_key", 's', offsetof(mw_conf_t, webhook_hmac_key),
      "key of the X-Hmac-Signature header (none: no header)" },
    { "webhook_retries", 'i', offsetof(mw_conf_t, webhook_retries),
      "attempts before an event goes to mdm:webhooks:dead (10)" },
    { "webhook_backoff_ms", 'l', offsetof(mw_conf_t, webhook_backoff_ms),
      "first retry delay, doubled each time up to 300 s (1000)" },
    { "webhook_claim_ms", 'l', offsetof(mw_conf_t, webhook_claim_ms),
      "idle time after which a dead worker's (heartbeat expired) "
      "undelivered events are taken over (30000)" },
    { "webhook_idle", 's', offsetof(mw_conf_t, webhook_idle),
      "on: Idle check-ins are webhook events too; off: the module does "
      "not add them (on)" },
    { "webhook_max_inflight", 'i', offsetof(mw_conf_t, webhook_max_inflight),
      "webhook requests in flight at once (8)" },
    { "webhook_dead_max", 'l', offsetof(mw_conf_t, webhook_dead_max),
      "dead letters kept in mdm:webhooks:dead, about (100000)" },
    { "dep_sync_interval", 'l', offsetof(mw_conf_t, dep_sync_interval),
      "DEP: seconds between syncs of a DEP name (1800)" },
    { "dep_backoff_ms", 'l', offsetof(mw_conf_t, dep_backoff_ms),
      "DEP: first delay after a 5xx or a connection failure, doubled each "
      "time up to dep_backoff_max (1000)" },
    { "dep_backoff_max", 'l', offsetof(mw_conf_t, dep_backoff_max),
      "DEP: the longest such delay, seconds (300)" },
    { "dep_page_size", 'i', offsetof(mw_conf_t, dep_page_size),
      "DEP: devices asked for per fetch or sync page, never above "
      "/account's limit (1000)" },
    { "dep_protocol_version", 'i', offsetof(mw_conf_t, dep_protocol_version),
      "DEP: X-Server-Protocol-Version (10)" },
    { "dep_throttle_cooldown", 'l', offsetof(mw_conf_t, dep_throttle_cooldown),
      "DEP: seconds before a THROTTLED assignment is retried when Apple "
      "gives no retry_after_seconds (3600)" },
    { "dep_assign_retries", 'i', offsetof(mw_conf_t, dep_assign_retries),
      "DEP: attempts of a FAILED assignment before giving up (8)" },
    { "dep_assign_backoff", 'l', offsetof(mw_conf_t, dep_assign_backoff),
      "DEP: seconds before the first retry of a FAILED assignment, "
      "doubled each time up to a day (60)" },
    { "dep_events_max", 'l', offsetof(mw_conf_t, dep_events_max),
      "DEP: MAXLEN ~ of mdm:events for DEP events, as mdm_events_max "
      "(1000000)" },
    { "dep_deleted_ttl", 'l', offsetof(mw_conf_t, dep_deleted_ttl),
      "DEP: seconds a deleted device's record is kept (2592000)" },
    { "dep_session_ttl", 'l', offsetof(mw_conf_t, dep_session_ttl),
      "DEP: seconds a stored X-ADM-Auth-Session is reused by a restarted "
      "worker (1800)" },
    { "vpp_sync_interval", 'l', offsetof(mw_conf_t, vpp_sync_interval),
      "VPP: seconds between syncs of a location's assets and assignment "
      "changes (3600)" },
    { "vpp_full_interval", 'l', offsetof(mw_conf_t, vpp_full_interval),
      "VPP: seconds between full walks of the assignments (86400)" },
    { "vpp_backoff_ms", 'l', offsetof(mw_conf_t, vpp_backoff_ms),
      "VPP: first delay after an error without Retry-After, doubled each "
      "time up to vpp_backoff_max (1000)" },
    { "vpp_backoff_max", 'l', offsetof(mw_conf_t, vpp_backoff_max),
      "VPP: the longest such delay, seconds (300)" },
    { "vpp_poll_ms", 'l', offsetof(mw_conf_t, vpp_poll_ms),
      "VPP: first wait before asking for an associate event's status, "
      "doubled each time up to vpp_poll_max (500)" },
    { "vpp_poll_max", 'l', offsetof(mw_conf_t, vpp_poll_max),
      "VPP: the longest such wait, seconds (30)" },
    { "vpp_event_timeout", 'l', offsetof(mw_conf_t, vpp_event_timeout),
      "VPP: seconds after which an event still pending fails its batch "
      "(3600)" },
    { "vpp_batch_max", 'l', offsetof(mw_conf_t, vpp_batch_max),
      "VPP: serials per associate call, never above Apple's "
      "maxSerialNumbers (1000)" },
    { "vpp_events_max", 'l', offsetof(mw_conf_t, vpp_events_max),
      "VPP: MAXLEN ~ of mdm:events for VPP events (1000000)" },
    { "inventory_interval", 'l', offsetof(mw_conf_t, inventory_interval),
      "seconds after which a device's inventory is asked for again "
      "(DeviceInformation); 0: off (0)" },
    { "inventory_batch", 'i', offsetof(mw_conf_t, inventory_batch),
      "devices asked for their inventory per second, at most (100)" },
    { "ddm_interval", 'l', offsetof(mw_conf_t, ddm_interval),
      "milliseconds between DDM fan-out steps (DeclarativeManagement "
      "commands after declaration and set changes); 0: off (500)" },
    { "ddm_settle_ms", 'l', offsetof(mw_conf_t, ddm_settle_ms),
      "how long a DDM change must be quiet before devices are told, so "
      "a burst of API calls makes one command per device (1000)" },
    { "ddm_budget", 'i', offsetof(mw_conf_t, ddm_budget),
      "enrollments one DDM fan-out step looks at, about (200)" },
    { "ddm_command_ttl", 'l', offsetof(mw_conf_t, ddm_command_ttl),
      "seconds the DeclarativeManagement commands are kept, as "
      "mdm_result_ttl (2592000)" },
    { "stats_retention", 'l', offsetof(mw_conf_t, stats_retention),
      "seconds a worker's counters (mdm:stats:worker:ID, the metrics "
      "labelled worker) are kept after its last heartbeat (86400)" },
    { "worker_id", 's', offsetof(mw_conf_t, worker_id),
      "this worker's name, unique among the workers of one Redis "
      "(the host name)" },
    { NULL, 0, 0, NULL }
};


static void mw_defaults(mw_conf_t *conf);
static int mw_set(mw_conf_t *conf, const char *name, const char *value);
static int mw_read_conf(mw_conf_t *conf, const char *path);
static void mw_usage(FILE *out);
static void mw_signal(struct ev_loop *loop, ev_signal *w, int revents);
static void mw_check_idle(struct ev_loop *loop, ev_timer *w, int revents);
static void mw_ready(mw_redis_t *r);
static void mw_free_conf(mw_conf_t *conf);


int
main(int argc, char **argv)
{
    int         i;
    ev_signal   sigterm, sigint;
    mw_ctx_t    ctx;
    mw_conf_t  *conf = &ctx.conf;

    memset(&ctx, 0, sizeof(mw_ctx_t));
    mw_defaults(conf);

    for (i = 1; i + 1 < argc; i++) {
        if (strcmp(argv[i], "-c") == 0 || strcmp(argv[i], "--config") == 0) {
            if (mw_read_conf(conf, argv[++i]) != 0) {
                mw_free_conf(conf);
                return 2;
            }
        }
    }

    for (i = 1; i < argc; i++) {

        if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
            mw_usage(stdout);
            mw_free_conf(conf);
            return 0;
        }

        if (strcmp(argv[i], "-v") == 0 || strcmp(argv[i], "--version") == 0) {
            printf("mdm-worker %s\n", MW_VERSION);
            mw_free_conf(conf);
            return 0;
        }

        /* the file was read first (below): flags win wherever they stand */
        if ((strcmp(argv[i], "-c") == 0 || strcmp(argv[i], "--config") == 0)
            && i + 1 < argc)
        {
            i++;
            continue;
        }

        if (strncmp(argv[i], "--", 2) == 0 && i + 1 < argc
            && mw_set(conf, argv[i] + 2, argv[i + 1]) == 0)
        {
            i++;
            continue;
        }

        fprintf(stderr, "mdm-worker: unknown option \"%s\"\n\n", argv[i]);
        mw_usage(stderr);
        mw_free_conf(conf);
        return 2;
    }

    if ((conf->redis_sentinels == NULL) != (conf->redis_master == NULL)) {
        fprintf(stderr, "mdm-worker: redis_sentinels and redis_master go "
                "together: the sentinels are asked for that master\n");
        mw_free_conf(conf);
        return 2;
    }

    if (conf->worker_id == NULL) {
        char  host[256];

        if (gethostname(host, sizeof(host)) != 0) {
            snprintf(host, sizeof(host), "worker");
        }
        host[sizeof(host) - 1] = '\0';
        conf->worker_id = strdup(host);
    }

    ctx.loop = EV_DEFAULT;

    if (mw_http_init(&ctx) != 0) {
        mw_log("error", "cannot initialize libcurl");
        mw_free_conf(conf);
        return 1;
    }

    if (mw_apns_init(&ctx) != 0 || mw_webhook_init(&ctx) != 0
        || mw_dep_init(&ctx) != 0
        || mw_inventory_init(&ctx) != 0
        || mw_vpp_init(&ctx) != 0)
    {
        mw_log("error", "out of memory");
        mw_apns_cleanup(&ctx);
        mw_webhook_cleanup(&ctx);
        mw_dep_cleanup(&ctx);
        mw_inventory_cleanup(&ctx);
        mw_vpp_cleanup(&ctx);
        mw_http_cleanup(&ctx);
        mw_free_conf(conf);
        return 1;
    }

    mw_log("notice", "mdm-worker %s (%s) starting: redis %s, apns %s",
           MW_VERSION, conf->worker_id, conf->redis, conf->apns_url);

    ev_signal_init(&sigterm, mw_signal, SIGTERM);
    ev_signal_init(&sigint, mw_signal, SIGINT);
    sigterm.data = &ctx;
    sigint.data = &ctx;
    ev_signal_start(ctx.loop, &sigterm);
    ev_signal_start(ctx.loop, &sigint);

    /*
     * hiredis writes with write(2): a write to a Redis that just died
     * would raise SIGPIPE and end the worker without a word
     */
    signal(SIGPIPE, SIG_IGN);

    mw_scripts_init(&ctx);

    /* the command connection checks the version and loads the scripts */
    ctx.cmd.check = 1;
    ctx.cmd.scripts = 1;
    ctx.blk.block = MW_BLOCK_SECONDS;
    ctx.evt.block = MW_BLOCK_SECONDS;

    mw_redis_start(&ctx, &ctx.cmd, "commands", mw_ready);
    mw_redis_start(&ctx, &ctx.blk, "blocking", NULL);

    if (conf->webhook_url && conf->webhook_url[0]) {
        mw_redis_start(&ctx, &ctx.evt, "events", NULL);
    }

    ev_run(ctx.loop, 0);

    mw_redis_stop(&ctx.cmd);
    mw_redis_stop(&ctx.blk);
    mw_redis_stop(&ctx.evt);
    mw_apns_cleanup(&ctx);
    mw_webhook_cleanup(&ctx);
    mw_dep_cleanup(&ctx);
    mw_inventory_cleanup(&ctx);
    mw_vpp_cleanup(&ctx);
    mw_http_cleanup(&ctx);
    ev_loop_destroy(ctx.loop);

    mw_log("notice", "stopped");
    mw_free_conf(conf);

    return ctx.exit_code;
}


static void
mw_ready(mw_redis_t *r)
{
    mw_apns_start(r->ctx);
    mw_webhook_start(r->ctx);
    mw_dep_start(r->ctx);
    mw_inventory_start(r->ctx);
    mw_ddm_start(r->ctx);
    mw_vpp_start(r->ctx);
}


/* SIGTERM: stop taking work, finish what is in flight, then exit */

static void
mw_signal(struct ev_loop *loop, ev_signal *w, int revents)
{
    mw_ctx_t  *ctx = w->data;

    (void) revents;

    if (ctx->stopping) {
        return;
    }

    mw_log("notice", "signal %d: finishing %d pushes in flight", w->signum,
           mw_http_inflight(ctx));

    ctx->stopping = 1;
    ctx->stop_by = ev_now(loop) + (ev_tstamp) ctx->conf.stop_timeout;
    mw_apns_stop(ctx);
    mw_webhook_stop(ctx);
    mw_dep_stop(ctx);
    mw_inventory_stop(ctx);
    mw_ddm_stop(ctx);
    mw_vpp_stop(ctx);

    ev_timer_init(&ctx->idle, mw_check_idle, 0., 0.05);
    ctx->idle.data = ctx;
    ev_timer_again(loop, &ctx->idle);
}


static void
mw_check_idle(struct ev_loop *loop, ev_timer *w, int revents)
{
    mw_ctx_t  *ctx = w->data;

    (void) revents;

    if (mw_http_inflight(ctx) == 0 && mw_apns_idle(ctx)
        && mw_webhook_idle(ctx) && mw_dep_idle(ctx)
        && mw_inventory_idle(ctx)
        && mw_ddm_idle(ctx) && mw_vpp_idle(ctx))
    {
        ev_timer_stop(loop, w);
        ev_break(loop, EVBREAK_ALL);
        return;
    }

    if (ev_now(loop) >= ctx->stop_by) {
        /* what is left stays in Redis: the next start takes it up */
        mw_log("warn", "stop_timeout: exiting with %d requests in flight",
               mw_http_inflight(ctx));
        ev_timer_stop(loop, w);
        ev_break(loop, EVBREAK_ALL);
    }
}


static void
mw_defaults(mw_conf_t *conf)
{
    conf->redis = strdup("127.0.0.1:6379");
    conf->redis_timeout = 5;
    conf->apns_url = strdup("https://api.push.apple.com");
    conf->apns_expiration = 604800;
    conf->apns_priority = 10;
    conf->push_retries = 8;
    conf->push_backoff_ms = 1000;
    conf->max_inflight = 1000;
    conf->repush_interval = 900;
    conf->heartbeat = 5;
    conf->stop_timeout = 30;
    conf->webhook_retries = 10;
    conf->webhook_backoff_ms = 1000;
    conf->webhook_claim_ms = 30000;
    conf->webhook_idle = strdup("on");
    conf->webhook_max_inflight = 8;
    conf->webhook_dead_max = 100000;
    conf->dep_sync_interval = 1800;
    conf->dep_backoff_ms = 1000;
    conf->dep_backoff_max = 300;
    conf->dep_page_size = 1000;
    conf->dep_protocol_version = 10;
    conf->dep_throttle_cooldown = 3600;
    conf->dep_assign_retries = 8;
    conf->dep_assign_backoff = 60;
    conf->dep_events_max = 1000000;
    conf->dep_deleted_ttl = 2592000;
    conf->dep_session_ttl = 1800;
    conf->inventory_batch = 100;
    conf->ddm_interval = 500;
    conf->ddm_settle_ms = 1000;
    conf->ddm_budget = 200;
    conf->ddm_command_ttl = 2592000;
    conf->stats_retention = 86400;
    conf->vpp_sync_interval = 3600;
    conf->vpp_full_interval = 86400;
    conf->vpp_backoff_ms = 1000;
    conf->vpp_backoff_max = 300;
    conf->vpp_poll_ms = 500;
    conf->vpp_poll_max = 30;
    conf->vpp_event_timeout = 3600;
    conf->vpp_batch_max = 1000;
    conf->vpp_events_max = 1000000;
}


static int
mw_set(mw_conf_t *conf, const char *name, const char *value)
{
    char         *end, **str;
    mw_option_t  *o;

    for (o = mw_options; o->name; o++) {
        if (strcmp(o->name, name) != 0) {
            continue;
        }

        if (o->type == 's') {
            str = (char **) MW_FIELD(conf, o);
            free(*str);
            *str = strdup(value);
            return *str ? 0 : -1;
        }

        errno = 0;
        long v = strtol(value, &end, 10);
        if (errno || *end || end == value || v < 0) {
            fprintf(stderr, "mdm-worker: %s: \"%s\" is not a number\n",
                    name, value);
            return -1;
        }

        if (o->type == 'i') {
            *(int *) MW_FIELD(conf, o) = (int) v;
        } else {
            *(long *) MW_FIELD(conf, o) = v;
        }

        return 0;
    }

    return -1;
}


/* "name = value" lines; "#" starts a comment */

static int
mw_read_conf(mw_conf_t *conf, const char *path)
{
    int    n;
    FILE  *f;
    char   line[4096], *p, *eq, *name, *value, *end;

    f = fopen(path, "r");
    if (f == NULL) {
        fprintf(stderr, "mdm-worker: cannot open %s: %s\n", path,
                strerror(errno));
        return -1;
    }

    for (n = 1; fgets(line, sizeof(line), f); n++) {
        p = strchr(line, '#');
        if (p) {
            *p = '\0';
        }

        for (p = line; isspace((unsigned char) *p); p++) { /* void */ }
        if (*p == '\0') {
            continue;
        }

        eq = strchr(p, '=');
        if (eq == NULL) {
            goto invalid;
        }

        name = p;
        for (end = eq; end > name && isspace((unsigned char) end[-1]); end--)
        { /* void */ }
        *end = '\0';

        for (value = eq + 1; isspace((unsigned char) *value); value++)
        { /* void */ }
        for (end = value + strlen(value);
             end > value && isspace((unsigned char) end[-1]); end--)
        { /* void */ }
        *end = '\0';

        if (mw_set(conf, name, value) != 0) {
            goto invalid;
        }
    }

    fclose(f);
    return 0;

invalid:

    fprintf(stderr, "mdm-worker: %s:%d: invalid line\n", path, n);
    fclose(f);
    return -1;
}


static void
mw_usage(FILE *out)
{
    mw_option_t  *o;

    fprintf(out,
        "usage: mdm-worker [-c FILE] [--NAME VALUE ...]\n\n"
        "Sends the APNs pushes ngx_http_mdm_module queues in Redis,\n"
        "delivers its events as webhooks, and runs the DEP names (sync and\n"
        "auto-assign with Apple's device-assignment API).\n"
        "Settings come from the file (\"name = value\" lines, # comments),\n"
        "then from --name value flags, which win:\n\n");

    for (o = mw_options; o->name; o++) {
        fprintf(out, "  %-18s %s\n", o->name, o->help);
    }

    fprintf(out,
        "\n  -c, --config FILE  read settings from FILE\n"
        "  -h, --help         this help\n"
        "  -v, --version      the version\n\n"
        "SIGTERM or SIGINT: finish the pushes in flight (for at most\n"
        "stop_timeout seconds), put back the ones waiting to be retried, and\n"
        "exit.  Needs Redis 6.2 or later.\n");
}


static void
mw_free_conf(mw_conf_t *conf)
{
    char         **str;
    mw_option_t   *o;

    for (o = mw_options; o->name; o++) {
        if (o->type == 's') {
            str = (char **) MW_FIELD(conf, o);
            free(*str);
            *str = NULL;
        }
    }
}


void
mw_log(const char *level, const char *fmt, ...)
{
    char        ts[32];
    time_t      now;
    va_list     ap;
    struct tm   tm;

    now = time(NULL);
    gmtime_r(&now, &tm);
    strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%SZ", &tm);

    fprintf(stderr, "%s mdm-worker[%d] %s: ", ts, (int) getpid(), level);

    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);

    fputc('\n', stderr);
}


/*
 * Bytes a device or a server chose, as one printable line: quotes,
 * backslashes, control characters and non-ASCII bytes escaped (\n, \xNN),
 * cut to fit with "...".
 */

const char *
mw_esc(char *buf, size_t size, const char *s, size_t len)
{
    size_t          i, n;
    unsigned char   c;
    char            e[8];

    n = 0;

    for (i = 0; i < len; i++) {
        c = (unsigned char) s[i];

        if (c == '"' || c == '\\') {
            e[0] = '\\';
            e[1] = (char) c;
            e[2] = '\0';

        } else if (c == '\n') {
            memcpy(e, "\\n", 3);

        } else if (c == '\r') {
            memcpy(e, "\\r", 3);

        } else if (c == '\t') {
            memcpy(e, "\\t", 3);

        } else if (c < 0x20 || c >= 0x7f) {
            snprintf(e, sizeof(e), "\\x%02x", c);

        } else {
            e[0] = (char) c;
            e[1] = '\0';
        }

        if (n + strlen(e) + 4 > size) {
            memcpy(buf + n, "...", 4);
            return buf;
        }

        memcpy(buf + n, e, strlen(e));
        n += strlen(e);
    }

    buf[n] = '\0';

    return buf;
}
