
/*
 * Copyright (C) ngx_mdm contributors
 *
 * Prometheus metrics.  The module's own counters live in one shared memory
 * zone ("ngx_mdm_metrics"): every worker adds to the same numbers with
 * atomic adds, and a reload keeps them (same zone name and size).  They are
 * counted in the log phase, once per request, from what the request already
 * knows (location kind, message type, status, time), so the device paths
 * pay one handler call and a few atomic adds.
 *
 * "mdm_metrics;" serves them in the text format 0.0.4, followed by what
 * only Redis knows (mdm-worker's counters, queue lengths, expiry dates),
 * read by lua/metrics.lua in one call; without Redis that part is left
 * out and ngx_mdm_redis_up says 0.
 */


#include "ngx_http_mdm_metrics.h"
#include "ngx_http_mdm_redis.h"
#include "ngx_http_mdm_scripts.h"
#include "ngx_http_mdm_checkin.h"
#include "ngx_http_mdm_connect.h"
#include "ngx_http_mdm_enroll.h"
#include "ngx_http_mdm_scep.h"
#include "ngx_http_mdm_api_private.h"
#include "ngx_http_mdm_fastsig_shm.h"


#define NGX_HTTP_MDM_M_LOC_N      6
#define NGX_HTTP_MDM_M_MSG_N      24   /* the last one is "other" */
#define NGX_HTTP_MDM_M_CODE_N     24   /* the last one is "other" */
#define NGX_HTTP_MDM_M_BUCKET_N   12   /* and +Inf */

#define NGX_HTTP_MDM_M_BUF        16384


typedef struct {
    ngx_atomic_t   requests[NGX_HTTP_MDM_M_LOC_N][NGX_HTTP_MDM_M_MSG_N]
                           [NGX_HTTP_MDM_M_CODE_N];
    ngx_atomic_t   duration[NGX_HTTP_MDM_M_LOC_N][NGX_HTTP_MDM_M_BUCKET_N + 1];
    ngx_atomic_t   duration_ms[NGX_HTTP_MDM_M_LOC_N];
    ngx_atomic_t   redis_duration[NGX_HTTP_MDM_M_BUCKET_N + 1];
    ngx_atomic_t   redis_ms;
    ngx_atomic_t   redis_calls;
    ngx_atomic_t   redis_errors;
    ngx_atomic_t   redis_reconnects;
    ngx_atomic_t   cache[2];                       /* miss, hit */
    ngx_atomic_t   identity[NGX_HTTP_MDM_M_ID_N];
} ngx_http_mdm_metrics_shm_t;


typedef struct {
    ngx_http_request_t  *request;
    ngx_chain_t         *first;
    ngx_chain_t        **last;
    ngx_buf_t           *buf;
} ngx_http_mdm_metrics_out_t;


static ngx_int_t ngx_http_mdm_metrics_init_zone(ngx_shm_zone_t *shm_zone,
    void *data);
static ngx_int_t ngx_http_mdm_metrics_log(ngx_http_request_t *r);
static ngx_int_t ngx_http_mdm_metrics_kind(ngx_http_request_t *r,
    ngx_http_mdm_loc_conf_t *mlcf, ngx_uint_t *msg);
static ngx_uint_t ngx_http_mdm_metrics_index(const char **names, ngx_str_t *s);
static ngx_uint_t ngx_http_mdm_metrics_code(ngx_uint_t status);
static void ngx_http_mdm_metrics_observe(ngx_atomic_t *buckets,
    ngx_atomic_t *sum, ngx_msec_int_t ms);
static ngx_int_t ngx_http_mdm_metrics_handler(ngx_http_request_t *r);
static void ngx_http_mdm_metrics_done(ngx_http_request_t *r,
    redisReply *reply, const char *err);
static ngx_int_t ngx_http_mdm_metrics_send(ngx_http_request_t *r,
    redisReply *reply);
static ngx_int_t ngx_http_mdm_metrics_module(ngx_http_mdm_metrics_out_t *o);
static ngx_int_t ngx_http_mdm_metrics_zones(ngx_http_mdm_metrics_out_t *o);
static ngx_int_t ngx_http_mdm_metrics_histogram(ngx_http_mdm_metrics_out_t *o,
    const char *name, const char *label, ngx_atomic_t *buckets,
    ngx_atomic_t sum);
static ngx_int_t ngx_http_mdm_metrics_printf(ngx_http_mdm_metrics_out_t *o,
    const char *fmt, ...);


static ngx_str_t  ngx_http_mdm_metrics_zone_name =
    ngx_string("ngx_mdm_metrics");

static ngx_http_mdm_metrics_shm_t  *ngx_http_mdm_metrics;


static const char *ngx_http_mdm_metrics_locs[] = {
    "checkin", "connect", "api", "enroll", "scep", "other", NULL
};

#define NGX_HTTP_MDM_M_CHECKIN  0
#define NGX_HTTP_MDM_M_CONNECT  1
#define NGX_HTTP_MDM_M_API      2
#define NGX_HTTP_MDM_M_ENROLL   3
#define NGX_HTTP_MDM_M_SCEP     4
#define NGX_HTTP_MDM_M_OTHER    5

/* the "message" label, per location kind; what is not listed: "other" */
static const char *ngx_http_mdm_metrics_msgs[][NGX_HTTP_MDM_M_MSG_N] = {
    { "Authenticate", "TokenUpdate", "CheckOut", "UserAuthenticate",
      "SetBootstrapToken", "GetBootstrapToken", "DeclarativeManagement",
      "GetToken", NULL },
    { "Idle", "Acknowledged", "Error", "CommandFormatError", "NotNow",
      NULL },
    { "version", "enqueue", "push", "enrollments", "queue", "commands",
      "pushcert", "webhooks", "renew", "challenge", "certificates", "dep",
      "ddm", "blueprints", "templates", "assets", NULL },
    { "profile", "MachineInfo", NULL },
    { "GetCACaps", "GetCACert", "PKIOperation", NULL },
    { NULL }
};

static ngx_uint_t  ngx_http_mdm_metrics_codes[] = {
    200, 201, 204, 301, 302, 304, 400, 401, 403, 404, 405, 409, 410, 413,
    415, 429, 499, 500, 501, 502, 503, 504, 0
};

/* seconds, as Prometheus wants them; the clock is nginx's, in ms */
static ngx_msec_int_t  ngx_http_mdm_metrics_le[NGX_HTTP_MDM_M_BUCKET_N] = {
    1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000
};

static const char *ngx_http_mdm_metrics_id_reasons[] = {
    "no_certificate", "expired", "not_yet_valid", "untrusted", "usage",
    "signature", "binding", "other", NULL
};


/* postconfiguration: the zone and the log-phase counter */

ngx_int_t
ngx_http_mdm_metrics_init(ngx_conf_t *cf)
{
    ngx_shm_zone_t             *shm_zone;
    ngx_http_handler_pt        *h;
    ngx_http_core_main_conf_t  *cmcf;
    ngx_http_mdm_main_conf_t   *mmcf;

    mmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_mdm_module);

    /* nobody reads the counters: requests do not pay for them */
    if (!mmcf->configured || !mmcf->metrics) {
        return NGX_OK;
    }

    shm_zone = ngx_shared_memory_add(cf, &ngx_http_mdm_metrics_zone_name,
                           ngx_align(sizeof(ngx_http_mdm_metrics_shm_t)
                                     + 8 * ngx_pagesize, ngx_pagesize),
                           &ngx_http_mdm_module);
    if (shm_zone == NULL) {
        return NGX_ERROR;
    }

    shm_zone->init = ngx_http_mdm_metrics_init_zone;

    cmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_core_module);

    h = ngx_array_push(&cmcf->phases[NGX_HTTP_LOG_PHASE].handlers);
    if (h == NULL) {
        return NGX_ERROR;
    }

    *h = ngx_http_mdm_metrics_log;

    return NGX_OK;
}


static ngx_int_t
ngx_http_mdm_metrics_init_zone(ngx_shm_zone_t *shm_zone, void *data)
{
    ngx_slab_pool_t  *shpool;

    /* a reload: the same counters go on */
    if (data) {
        shm_zone->data = data;
        ngx_http_mdm_metrics = data;
        return NGX_OK;
    }

    shpool = (ngx_slab_pool_t *) shm_zone->shm.addr;

    if (shm_zone->shm.exists) {
        shm_zone->data = shpool->data;
        ngx_http_mdm_metrics = shpool->data;
        return NGX_OK;
    }

    ngx_http_mdm_metrics = ngx_slab_calloc(shpool,
                                        sizeof(ngx_http_mdm_metrics_shm_t));
    if (ngx_http_mdm_metrics == NULL) {
        return NGX_ERROR;
    }

    shpool->data = ngx_http_mdm_metrics;
    shm_zone->data = ngx_http_mdm_metrics;

    return NGX_OK;
}


/* once per request, after it is answered: only mdm locations count */

static ngx_int_t
ngx_http_mdm_metrics_log(ngx_http_request_t *r)
{
    ngx_int_t                 kind;
    ngx_uint_t                msg, status;
    ngx_time_t               *tp;
    ngx_msec_int_t            ms;
    ngx_http_mdm_loc_conf_t  *mlcf;

    if (ngx_http_mdm_metrics == NULL || r != r->main) {
        return NGX_OK;
    }

    mlcf = ngx_http_get_module_loc_conf(r, ngx_http_mdm_module);

    kind = ngx_http_mdm_metrics_kind(r, mlcf, &msg);
    if (kind == NGX_DECLINED) {
        return NGX_OK;
    }

    status = r->err_status ? r->err_status : r->headers_out.status;

    (void) ngx_atomic_fetch_add(&ngx_http_mdm_metrics->requests[kind][msg]
                                    [ngx_http_mdm_metrics_code(status)], 1);

    tp = ngx_timeofday();
    ms = (ngx_msec_int_t) ((tp->sec - r->start_sec) * 1000
                           + (tp->msec - r->start_msec));

    ngx_http_mdm_metrics_observe(ngx_http_mdm_metrics->duration[kind],
                                 &ngx_http_mdm_metrics->duration_ms[kind],
                                 ms);

    return NGX_OK;
}


/* which kind of mdm location, and the message label's index */

static ngx_int_t
ngx_http_mdm_metrics_kind(ngx_http_request_t *r,
    ngx_http_mdm_loc_conf_t *mlcf, ngx_uint_t *msg)
{
    ngx_str_t                  s;
    ngx_int_t                  kind;
    ngx_http_mdm_ctx_t        *ctx;
    ngx_http_core_loc_conf_t  *clcf;
    ngx_http_mdm_api_route_t   rt;

    clcf = ngx_http_get_module_loc_conf(r, ngx_http_core_module);

    ngx_str_null(&s);

    if (mlcf->api) {
        kind = NGX_HTTP_MDM_M_API;

        if (ngx_http_mdm_api_route(r, &rt) == NGX_OK) {
            s = rt.endpoint;
        }

    } else if (mlcf->checkin) {
        kind = (mlcf->handler == (void *) ngx_http_mdm_checkin_handler)
               ? NGX_HTTP_MDM_M_CHECKIN
               : (mlcf->handler == (void *) ngx_http_mdm_connect_handler)
                 ? NGX_HTTP_MDM_M_CONNECT : NGX_HTTP_MDM_M_OTHER;

        ctx = ngx_http_get_module_ctx(r, ngx_http_mdm_module);
        if (ctx && kind != NGX_HTTP_MDM_M_OTHER) {
            s = ctx->message_type;
        }

    } else if (clcf->handler == ngx_http_mdm_enroll_handler) {
        kind = NGX_HTTP_MDM_M_ENROLL;

        if (r->method == NGX_HTTP_POST) {
            ngx_str_set(&s, "MachineInfo");

        } else {
            ngx_str_set(&s, "profile");
        }

    } else if (clcf->handler == ngx_http_mdm_scep_handler) {
        kind = NGX_HTTP_MDM_M_SCEP;
        (void) ngx_http_arg(r, (u_char *) "operation", 9, &s);

    } else {
        return NGX_DECLINED;
    }

    *msg = ngx_http_mdm_metrics_index(ngx_http_mdm_metrics_msgs[kind], &s);

    return kind;
}


static ngx_uint_t
ngx_http_mdm_metrics_index(const char **names, ngx_str_t *s)
{
    ngx_uint_t  i;

    for (i = 0; names[i]; i++) {
        if (ngx_strlen(names[i]) == s->len
            && ngx_strncmp(names[i], s->data, s->len) == 0)
        {
            return i;
        }
    }

    return NGX_HTTP_MDM_M_MSG_N - 1;
}


static ngx_uint_t
ngx_http_mdm_metrics_code(ngx_uint_t status)
{
    ngx_uint_t  i;

    for (i = 0; ngx_http_mdm_metrics_codes[i]; i++) {
        if (ngx_http_mdm_metrics_codes[i] == status) {
            return i;
        }
    }

    return NGX_HTTP_MDM_M_CODE_N - 1;
}


static void
ngx_http_mdm_metrics_observe(ngx_atomic_t *buckets, ngx_atomic_t *sum,
    ngx_msec_int_t ms)
{
    ngx_uint_t  i;

    if (ms < 0) {
        ms = 0;
    }

    /* non-cumulative here; the exposition adds them up */
    for (i = 0; i < NGX_HTTP_MDM_M_BUCKET_N; i++) {
        if (ms <= ngx_http_mdm_metrics_le[i]) {
            break;
        }
    }

    (void) ngx_atomic_fetch_add(&buckets[i], 1);
    (void) ngx_atomic_fetch_add(sum, (ngx_atomic_int_t) ms);
}


void
ngx_http_mdm_metrics_redis_call(ngx_msec_t started, ngx_uint_t failed)
{
    ngx_http_mdm_metrics_shm_t  *m = ngx_http_mdm_metrics;

    if (m == NULL) {
        return;
    }

    (void) ngx_atomic_fetch_add(&m->redis_calls, 1);

    if (failed) {
        (void) ngx_atomic_fetch_add(&m->redis_errors, 1);
    }

    ngx_http_mdm_metrics_observe(m->redis_duration, &m->redis_ms,
                                 (ngx_msec_int_t) (ngx_current_msec - started));
}


void
ngx_http_mdm_metrics_redis_reconnect(void)
{
    if (ngx_http_mdm_metrics) {
        (void) ngx_atomic_fetch_add(&ngx_http_mdm_metrics->redis_reconnects, 1);
    }
}


void
ngx_http_mdm_metrics_cache(ngx_uint_t hit)
{
    if (ngx_http_mdm_metrics) {
        (void) ngx_atomic_fetch_add(&ngx_http_mdm_metrics->cache[hit ? 1 : 0],
                                    1);
    }
}


/* the free-form reason of the identity check, by kind */

void
ngx_http_mdm_metrics_identity(const char *reason)
{
    ngx_uint_t   k;
    u_char      *p, *last;

    if (ngx_http_mdm_metrics == NULL || reason == NULL) {
        return;
    }

    p = (u_char *) reason;
    last = p + ngx_strlen(reason);

#define ngx_http_mdm_has(s)                                                  \
    (ngx_strlcasestrn(p, last, (u_char *) s, sizeof(s) - 2) != NULL)

    k = ngx_http_mdm_has("no device certificate") ? NGX_HTTP_MDM_M_ID_NONE
        : ngx_http_mdm_has("expired") ? NGX_HTTP_MDM_M_ID_EXPIRED
        : ngx_http_mdm_has("not yet valid") ? NGX_HTTP_MDM_M_ID_NOTYET
        : (ngx_http_mdm_has("usage") || ngx_http_mdm_has("client auth"))
          ? NGX_HTTP_MDM_M_ID_USAGE
        : ngx_http_mdm_has("signature") ? NGX_HTTP_MDM_M_ID_SIGNATURE
        : (ngx_http_mdm_has("trust") || ngx_http_mdm_has("issuer")
           || ngx_http_mdm_has("verify") || ngx_http_mdm_has("chain"))
          ? NGX_HTTP_MDM_M_ID_UNTRUSTED
        : ngx_http_mdm_has("bound") ? NGX_HTTP_MDM_M_ID_BINDING
        : NGX_HTTP_MDM_M_ID_OTHER;

#undef ngx_http_mdm_has

    (void) ngx_atomic_fetch_add(&ngx_http_mdm_metrics->identity[k], 1);
}


char *
ngx_http_mdm_metrics_directive(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_core_loc_conf_t  *clcf;
    ngx_http_mdm_main_conf_t  *mmcf;

    mmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_mdm_module);

    /* mdm_redis is in http{}, read before any location */
    if (!mmcf->configured) {
        return "needs \"mdm_redis\" in http{}";
    }

    clcf = ngx_http_conf_get_module_loc_conf(cf, ngx_http_core_module);

    if (clcf->handler == ngx_http_mdm_metrics_handler) {
        return "is duplicate";
    }

    clcf->handler = ngx_http_mdm_metrics_handler;
    mmcf->metrics = 1;

    return NGX_CONF_OK;
}


static ngx_int_t
ngx_http_mdm_metrics_handler(ngx_http_request_t *r)
{
    ngx_int_t     rc;
    ngx_array_t  *args;
    ngx_str_t    *a;

    if (!(r->method & (NGX_HTTP_GET|NGX_HTTP_HEAD))) {
        return NGX_HTTP_NOT_ALLOWED;
    }

    rc = ngx_http_discard_request_body(r);
    if (rc != NGX_OK) {
        return rc;
    }

    args = ngx_array_create(r->pool, 1, sizeof(ngx_str_t));
    if (args == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    /* now, in seconds: what "expiring within 30 days" counts from */
    a = ngx_array_push(args);
    if (a == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    a->data = ngx_pnalloc(r->pool, NGX_TIME_T_LEN);
    if (a->data == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    a->len = ngx_sprintf(a->data, "%T", ngx_time()) - a->data;

    rc = ngx_http_mdm_redis_eval(r, NGX_HTTP_MDM_SCRIPT_METRICS, 0, args,
                                 ngx_http_mdm_metrics_done);

    if (rc == NGX_OK) {
        r->main->count++;
        return NGX_DONE;
    }

    if (rc == NGX_DECLINED) {
        /* Redis down: the module's part all the same */
        ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                      "mdm: metrics without Redis's part: redis is not "
                      "connected");
        return ngx_http_mdm_metrics_send(r, NULL);
    }

    return NGX_HTTP_INTERNAL_SERVER_ERROR;
}


static void
ngx_http_mdm_metrics_done(ngx_http_request_t *r, redisReply *reply,
    const char *err)
{
    if (err || reply == NULL || reply->type != REDIS_REPLY_ARRAY) {
        ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                      "mdm: metrics without Redis's part: %s",
                      err ? err : (reply && reply->type == REDIS_REPLY_ERROR)
                                  ? reply->str : "unexpected reply");
        reply = NULL;
    }

    ngx_http_finalize_request(r, ngx_http_mdm_metrics_send(r, reply));
}


static ngx_int_t
ngx_http_mdm_metrics_send(ngx_http_request_t *r, redisReply *reply)
{
    size_t                       i;
    ngx_int_t                    rc;
    ngx_chain_t                 *cl;
    ngx_http_mdm_metrics_out_t   o;

    ngx_memzero(&o, sizeof(ngx_http_mdm_metrics_out_t));
    o.request = r;
    o.last = &o.first;

    if (ngx_http_mdm_metrics_module(&o) != NGX_OK
        || ngx_http_mdm_metrics_printf(&o,
               "# HELP ngx_mdm_redis_up Whether this nginx worker read "
               "Redis's part of these metrics.\n"
               "# TYPE ngx_mdm_redis_up gauge\n"
               "ngx_mdm_redis_up %d\n", reply ? 1 : 0) != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    /* lua/metrics.lua: complete exposition lines, its labels escaped */
    for (i = 0; reply && i < reply->elements; i++) {
        if (reply->element[i]->type == REDIS_REPLY_STRING
            && ngx_http_mdm_metrics_printf(&o, "%*s\n",
                                           reply->element[i]->len,
                                           reply->element[i]->str)
               != NGX_OK)
        {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }
    }

    o.buf->last_buf = (r == r->main);
    o.buf->last_in_chain = 1;

    r->headers_out.status = NGX_HTTP_OK;
    ngx_str_set(&r->headers_out.content_type,
                "text/plain; version=0.0.4; charset=utf-8");
    r->headers_out.content_type_len = r->headers_out.content_type.len;
    r->headers_out.content_length_n = 0;

    for (cl = o.first; cl; cl = cl->next) {
        r->headers_out.content_length_n += cl->buf->last - cl->buf->pos;
    }

    rc = ngx_http_send_header(r);
    if (rc == NGX_ERROR || rc > NGX_OK || r->header_only) {
        return rc;
    }

    return ngx_http_output_filter(r, o.first);
}


static ngx_int_t
ngx_http_mdm_metrics_module(ngx_http_mdm_metrics_out_t *o)
{
    ngx_uint_t                   l, m, c;
    ngx_atomic_t                 n;
    ngx_http_mdm_metrics_shm_t  *s = ngx_http_mdm_metrics;

    if (s == NULL) {
        return ngx_http_mdm_metrics_printf(o, "");
    }

    if (ngx_http_mdm_metrics_printf(o,
            "# HELP ngx_mdm_requests_total Requests to mdm locations, by "
            "location kind, message (MessageType, Status, API endpoint, "
            "SCEP operation) and answer code.\n"
            "# TYPE ngx_mdm_requests_total counter\n") != NGX_OK)
    {
        return NGX_ERROR;
    }

    for (l = 0; l < NGX_HTTP_MDM_M_LOC_N; l++) {
        for (m = 0; m < NGX_HTTP_MDM_M_MSG_N; m++) {
            for (c = 0; c < NGX_HTTP_MDM_M_CODE_N; c++) {
                n = s->requests[l][m][c];
                if (n == 0) {
                    continue;
                }

                if (ngx_http_mdm_metrics_printf(o,
                        "ngx_mdm_requests_total{location=\"%s\","
                        "message=\"%s\",code=\"%s%ui\"} %uA\n",
                        ngx_http_mdm_metrics_locs[l],
                        (m < NGX_HTTP_MDM_M_MSG_N - 1
                         && ngx_http_mdm_metrics_msgs[l][m])
                        ? ngx_http_mdm_metrics_msgs[l][m] : "other",
                        c == NGX_HTTP_MDM_M_CODE_N - 1 ? "other" : "",
                        c == NGX_HTTP_MDM_M_CODE_N - 1
                        ? (ngx_uint_t) 0 : ngx_http_mdm_metrics_codes[c],
                        n) != NGX_OK)
                {
                    return NGX_ERROR;
                }
            }
        }
    }

    if (ngx_http_mdm_metrics_printf(o,
            "# HELP ngx_mdm_request_duration_seconds Time from the request's "
            "first byte to its answer, by location kind.\n"
            "# TYPE ngx_mdm_request_duration_seconds histogram\n") != NGX_OK)
    {
        return NGX_ERROR;
    }

    for (l = 0; l < NGX_HTTP_MDM_M_LOC_N; l++) {
        if (ngx_http_mdm_metrics_histogram(o,
                "ngx_mdm_request_duration_seconds",
                ngx_http_mdm_metrics_locs[l], s->duration[l],
                s->duration_ms[l]) != NGX_OK)
        {
            return NGX_ERROR;
        }
    }

    if (ngx_http_mdm_metrics_printf(o,
            "# HELP ngx_mdm_redis_calls_total Calls to Redis (one script "
            "each).\n"
            "# TYPE ngx_mdm_redis_calls_total counter\n"
            "ngx_mdm_redis_calls_total %uA\n"
            "# HELP ngx_mdm_redis_errors_total Calls that failed: no "
            "connection, timeout, failover, OOM, BUSY.\n"
            "# TYPE ngx_mdm_redis_errors_total counter\n"
            "ngx_mdm_redis_errors_total %uA\n"
            "# HELP ngx_mdm_redis_reconnects_total Connections to Redis made "
            "again after one was lost or dropped.\n"
            "# TYPE ngx_mdm_redis_reconnects_total counter\n"
            "ngx_mdm_redis_reconnects_total %uA\n"
            "# HELP ngx_mdm_redis_call_duration_seconds Time from sending a "
            "call to its reply.\n"
            "# TYPE ngx_mdm_redis_call_duration_seconds histogram\n",
            s->redis_calls, s->redis_errors, s->redis_reconnects) != NGX_OK
        || ngx_http_mdm_metrics_histogram(o,
               "ngx_mdm_redis_call_duration_seconds", NULL,
               s->redis_duration, s->redis_ms) != NGX_OK
        || ngx_http_mdm_metrics_printf(o,
            "# HELP ngx_mdm_identity_cache_lookups_total Lookups of the "
            "verified-certificate cache of the signature fast path.\n"
            "# TYPE ngx_mdm_identity_cache_lookups_total counter\n"
            "ngx_mdm_identity_cache_lookups_total{result=\"hit\"} %uA\n"
            "ngx_mdm_identity_cache_lookups_total{result=\"miss\"} %uA\n"
            "# HELP ngx_mdm_identity_failures_total Device requests refused "
            "for their identity, by reason.\n"
            "# TYPE ngx_mdm_identity_failures_total counter\n",
            s->cache[1], s->cache[0]) != NGX_OK)
    {
        return NGX_ERROR;
    }

    for (m = 0; m < NGX_HTTP_MDM_M_ID_N; m++) {
        if (ngx_http_mdm_metrics_printf(o,
                "ngx_mdm_identity_failures_total{reason=\"%s\"} %uA\n",
                ngx_http_mdm_metrics_id_reasons[m], s->identity[m])
            != NGX_OK)
        {
            return NGX_ERROR;
        }
    }

    return ngx_http_mdm_metrics_zones(o);
}


/* the shared verdict zones of mdm_identity_cache: their own counters */

static ngx_int_t
ngx_http_mdm_metrics_zones(ngx_http_mdm_metrics_out_t *o)
{
    ngx_uint_t                         i, f, n;
    ngx_shm_zone_t                   **zones;
    ngx_http_mdm_main_conf_t          *mmcf;
    ngx_http_mdm_fastsig_shm_stats_t   st;

    static const char  *help[] = {
        "# HELP ngx_mdm_identity_verdict_lookups_total Lookups of the "
        "shared verdicts (a certificate whose key this worker has not "
        "cached).\n"
        "# TYPE ngx_mdm_identity_verdict_lookups_total counter\n",
        "# HELP ngx_mdm_identity_verdict_evictions_total Verdicts dropped, "
        "least recently used first, to make room in a full zone.\n"
        "# TYPE ngx_mdm_identity_verdict_evictions_total counter\n",
        "# HELP ngx_mdm_identity_verdicts Verdicts held in the zone.\n"
        "# TYPE ngx_mdm_identity_verdicts gauge\n",
        "# HELP ngx_mdm_identity_verdict_zone_bytes Size of the zone.\n"
        "# TYPE ngx_mdm_identity_verdict_zone_bytes gauge\n"
    };

    mmcf = ngx_http_get_module_main_conf(o->request, ngx_http_mdm_module);

    if (mmcf->identity_zones == NULL) {
        return NGX_OK;
    }

    zones = mmcf->identity_zones->elts;
    n = mmcf->identity_zones->nelts;

    for (f = 0; f < 4; f++) {
        if (ngx_http_mdm_metrics_printf(o, help[f]) != NGX_OK) {
            return NGX_ERROR;
        }

        for (i = 0; i < n; i++) {
            ngx_http_mdm_fastsig_shm_stats(zones[i], &st);

            if ((f == 0
                 && ngx_http_mdm_metrics_printf(o,
                        "ngx_mdm_identity_verdict_lookups_total"
                        "{zone=\"%V\",result=\"hit\"} %ui\n"
                        "ngx_mdm_identity_verdict_lookups_total"
                        "{zone=\"%V\",result=\"miss\"} %ui\n",
                        &zones[i]->shm.name, st.hits,
                        &zones[i]->shm.name, st.misses) != NGX_OK)
                || (f == 1
                    && ngx_http_mdm_metrics_printf(o,
                        "ngx_mdm_identity_verdict_evictions_total"
                        "{zone=\"%V\"} %ui\n",
                        &zones[i]->shm.name, st.evictions) != NGX_OK)
                || (f == 2
                    && ngx_http_mdm_metrics_printf(o,
                        "ngx_mdm_identity_verdicts{zone=\"%V\"} %ui\n",
                        &zones[i]->shm.name, st.entries) != NGX_OK)
                || (f == 3
                    && ngx_http_mdm_metrics_printf(o,
                        "ngx_mdm_identity_verdict_zone_bytes"
                        "{zone=\"%V\"} %uz\n",
                        &zones[i]->shm.name, st.size) != NGX_OK))
            {
                return NGX_ERROR;
            }
        }
    }

    return NGX_OK;
}


static ngx_int_t
ngx_http_mdm_metrics_histogram(ngx_http_mdm_metrics_out_t *o,
    const char *name, const char *label, ngx_atomic_t *buckets,
    ngx_atomic_t sum)
{
    u_char        inner[64], outer[64];
    ngx_uint_t    i;
    ngx_atomic_t  cum;

    /* location="checkin", for the buckets; {location="checkin"} else */
    inner[0] = '\0';
    outer[0] = '\0';

    if (label) {
        ngx_snprintf(inner, sizeof(inner), "location=\"%s\",%Z", label);
        ngx_snprintf(outer, sizeof(outer), "{location=\"%s\"}%Z", label);
    }

    cum = 0;

    for (i = 0; i < NGX_HTTP_MDM_M_BUCKET_N; i++) {
        cum += buckets[i];

        if (ngx_http_mdm_metrics_printf(o, "%s_bucket{%sle=\"%d.%03d\"} %uA\n",
                name, inner, (int) (ngx_http_mdm_metrics_le[i] / 1000),
                (int) (ngx_http_mdm_metrics_le[i] % 1000), cum)
            != NGX_OK)
        {
            return NGX_ERROR;
        }
    }

    cum += buckets[NGX_HTTP_MDM_M_BUCKET_N];

    return ngx_http_mdm_metrics_printf(o,
               "%s_bucket{%sle=\"+Inf\"} %uA\n"
               "%s_sum%s %uA.%03uA\n"
               "%s_count%s %uA\n",
               name, inner, cum,
               name, outer, sum / 1000, sum % 1000,
               name, outer, cum);
}


/* appends to the answer, a new 16 KB buffer when this one is nearly full */

static ngx_int_t
ngx_http_mdm_metrics_printf(ngx_http_mdm_metrics_out_t *o,
    const char *fmt, ...)
{
    u_char       *p;
    va_list       args;
    ngx_chain_t  *cl;

    if (o->buf == NULL || o->buf->end - o->buf->last < 4096) {
        o->buf = ngx_create_temp_buf(o->request->pool, NGX_HTTP_MDM_M_BUF);
        cl = ngx_alloc_chain_link(o->request->pool);
        if (o->buf == NULL || cl == NULL) {
            return NGX_ERROR;
        }

        cl->buf = o->buf;
        cl->next = NULL;
        *o->last = cl;
        o->last = &cl->next;
    }

    va_start(args, fmt);
    p = ngx_vslprintf(o->buf->last, o->buf->end, fmt, args);
    va_end(args);

    if (p == o->buf->end) {
        /* no write is near 4 KB: the longest is a block of HELP text */
        return NGX_ERROR;
    }

    o->buf->last = p;

    return NGX_OK;
}
