
/*
 * Copyright (C) ngx_mdm contributors
 *
 * The one Redis connection of a worker process: hiredis's async API driven
 * by nginx's event loop.  Nothing else in the module touches hiredis.
 */


#include "ngx_http_mdm_redis.h"
#include "ngx_http_mdm_scripts.h"

#include <hiredis/async.h>


#define NGX_HTTP_MDM_REDIS_BACKOFF_MIN  100
#define NGX_HTTP_MDM_REDIS_BACKOFF_MAX  5000


typedef struct ngx_http_mdm_redis_ticket_s  ngx_http_mdm_redis_ticket_t;

/* one call of a request; lives in r->pool */
typedef struct {
    ngx_http_request_t             *request;
    ngx_http_mdm_redis_done_pt      done;
    ngx_http_mdm_redis_ticket_t    *ticket;
    ngx_event_t                     timer;
    int                             argc;
    const char                    **argv;
    size_t                         *argvlen;
    ngx_uint_t                      script;
    unsigned                        retried:1;
} ngx_http_mdm_redis_op_t;


/*
 * hiredis's privdata.  It is on the heap because the reply may arrive after
 * the request pool is gone: the request and hiredis each hold one reference,
 * and "op" is NULL once the request no longer waits for the reply.
 */
struct ngx_http_mdm_redis_ticket_s {
    ngx_http_mdm_redis_op_t        *op;
    ngx_uint_t                      refs;
    ngx_http_mdm_redis_ticket_t    *next;   /* in the free list */
};

/*
 * Released tickets are kept for the next requests, so that a device request
 * costs no heap allocation of ours; the list is bounded, and what is beyond
 * it is freed.
 */
#define NGX_HTTP_MDM_REDIS_FREE_TICKETS  1024

/* the command buffer kept between calls, enough for every check-in */
#define NGX_HTTP_MDM_REDIS_BUFFER_KEEP   65536


typedef struct {
    redisAsyncContext              *ac;
    ngx_http_mdm_main_conf_t       *conf;
    ngx_log_t                      *log;
    ngx_event_t                     reconnect;
    ngx_event_t                     connect_timer;
    ngx_msec_t                      backoff;
    ngx_uint_t                      setup_pending; /* AUTH, SELECT replies */
    unsigned                        connected:1;
    unsigned                        setup_failed:1;
    unsigned                        exiting:1;
    unsigned                        down_logged:1;
    unsigned                        unusable_logged:1;
    unsigned                        draining:1;   /* failover reply seen */
    ngx_resolver_ctx_t             *resolving;
    ngx_uint_t                      next_addr;    /* of a resolved name */
    ngx_http_mdm_redis_ticket_t    *free_tickets;
    ngx_uint_t                      nfree_tickets;
    u_char                         *buf;          /* commands are written */
    size_t                          buf_size;
} ngx_http_mdm_redis_t;


static void ngx_http_mdm_redis_connect(void);
static void ngx_http_mdm_redis_resolve(void);
static void ngx_http_mdm_redis_resolved(ngx_resolver_ctx_t *ctx);
static void ngx_http_mdm_redis_connect_to(const char *host);
static void ngx_http_mdm_redis_info_reply(redisAsyncContext *ac, void *r,
    void *privdata);
static ngx_int_t ngx_http_mdm_redis_info_field(ngx_str_t *info,
    const char *name, ngx_str_t *value);
static ngx_uint_t ngx_http_mdm_redis_version_ok(ngx_str_t *v);
static void ngx_http_mdm_redis_unusable(redisAsyncContext *ac,
    const char *why);
static ngx_uint_t ngx_http_mdm_redis_failover(redisReply *reply);
static ngx_str_t *ngx_http_mdm_redis_shown(void);
static void ngx_http_mdm_redis_drain(redisAsyncContext *ac,
    redisReply *reply);
static const char *ngx_http_mdm_redis_word(redisReply *reply);
static const char *ngx_http_mdm_redis_busy(redisReply *reply);
static void ngx_http_mdm_redis_lost(const char *why);
static void ngx_http_mdm_redis_drop(const char *why);
static void ngx_http_mdm_redis_reconnect_handler(ngx_event_t *ev);
static void ngx_http_mdm_redis_connect_timeout(ngx_event_t *ev);
static void ngx_http_mdm_redis_on_connect(const redisAsyncContext *ac,
    int status);
static void ngx_http_mdm_redis_on_disconnect(const redisAsyncContext *ac,
    int status);
static void ngx_http_mdm_redis_setup_reply(redisAsyncContext *ac, void *r,
    void *privdata);
static void ngx_http_mdm_redis_ready(void);
static ngx_int_t ngx_http_mdm_redis_attach(redisAsyncContext *ac);
static void ngx_http_mdm_redis_add_read(void *data);
static void ngx_http_mdm_redis_del_read(void *data);
static void ngx_http_mdm_redis_add_write(void *data);
static void ngx_http_mdm_redis_del_write(void *data);
static void ngx_http_mdm_redis_cleanup(void *data);
static void ngx_http_mdm_redis_read_handler(ngx_event_t *ev);
static void ngx_http_mdm_redis_write_handler(ngx_event_t *ev);
static ngx_int_t ngx_http_mdm_redis_send(ngx_http_mdm_redis_op_t *op);
static void ngx_http_mdm_redis_reply(redisAsyncContext *ac, void *reply,
    void *privdata);
static void ngx_http_mdm_redis_finish(ngx_http_mdm_redis_op_t *op,
    redisReply *reply, const char *err);
static void ngx_http_mdm_redis_op_timeout(ngx_event_t *ev);
static void ngx_http_mdm_redis_op_cleanup(void *data);
static ngx_http_mdm_redis_ticket_t *ngx_http_mdm_redis_ticket(ngx_log_t *log);
static u_char *ngx_http_mdm_redis_buffer(size_t len);
static void ngx_http_mdm_redis_buffer_done(void);
static void ngx_http_mdm_redis_release(ngx_http_mdm_redis_ticket_t *t);


static ngx_http_mdm_redis_t  ngx_http_mdm_redis;

/* nginx's event debug logging reads ev->data as a connection */
static ngx_connection_t      ngx_http_mdm_redis_dummy;


ngx_int_t
ngx_http_mdm_redis_init_process(ngx_cycle_t *cycle)
{
    ngx_http_mdm_main_conf_t  *mmcf;

    mmcf = ngx_http_cycle_get_module_main_conf(cycle, ngx_http_mdm_module);

    if (mmcf == NULL || !mmcf->configured) {
        return NGX_OK;
    }

    ngx_memzero(&ngx_http_mdm_redis, sizeof(ngx_http_mdm_redis_t));

    ngx_http_mdm_redis.conf = mmcf;
    ngx_http_mdm_redis.log = cycle->log;
    ngx_http_mdm_redis.backoff = NGX_HTTP_MDM_REDIS_BACKOFF_MIN;

    ngx_http_mdm_redis_dummy.fd = (ngx_socket_t) -1;
    ngx_http_mdm_redis.reconnect.data = &ngx_http_mdm_redis_dummy;
    ngx_http_mdm_redis.connect_timer.data = &ngx_http_mdm_redis_dummy;

    /* a pending reconnect must not hold up a graceful shutdown */
    ngx_http_mdm_redis.reconnect.handler = ngx_http_mdm_redis_reconnect_handler;
    ngx_http_mdm_redis.reconnect.log = cycle->log;
    ngx_http_mdm_redis.reconnect.cancelable = 1;

    ngx_http_mdm_redis.connect_timer.handler =
                                         ngx_http_mdm_redis_connect_timeout;
    ngx_http_mdm_redis.connect_timer.log = cycle->log;
    ngx_http_mdm_redis.connect_timer.cancelable = 1;

    ngx_http_mdm_redis_connect();

    return NGX_OK;
}


void
ngx_http_mdm_redis_exit_process(ngx_cycle_t *cycle)
{
    redisAsyncContext            *ac;
    ngx_http_mdm_redis_ticket_t  *t;

    ngx_http_mdm_redis.exiting = 1;

    if (ngx_http_mdm_redis.resolving) {
        ngx_resolve_name_done(ngx_http_mdm_redis.resolving);
        ngx_http_mdm_redis.resolving = NULL;
    }

    ac = ngx_http_mdm_redis.ac;

    if (ac) {
        ngx_http_mdm_redis.ac = NULL;
        ac->onDisconnect = NULL;
        ac->onConnect = NULL;

        /* the callbacks of what is pending release their tickets here */
        redisAsyncFree(ac);
    }

    ngx_free(ngx_http_mdm_redis.buf);
    ngx_http_mdm_redis.buf = NULL;
    ngx_http_mdm_redis.buf_size = 0;

    while (ngx_http_mdm_redis.free_tickets) {
        t = ngx_http_mdm_redis.free_tickets;
        ngx_http_mdm_redis.free_tickets = t->next;
        ngx_free(t);
    }

    ngx_http_mdm_redis.nfree_tickets = 0;
}


static void
ngx_http_mdm_redis_connect(void)
{
    if (ngx_http_mdm_redis.conf->resolver) {
        ngx_http_mdm_redis_resolve();
        return;
    }

    ngx_http_mdm_redis_connect_to((char *) ngx_http_mdm_redis.conf->host.data);
}


/* mdm_redis NAME with a resolver: NAME is looked up at every connect */

static void
ngx_http_mdm_redis_resolve(void)
{
    ngx_resolver_ctx_t        *ctx;
    ngx_http_mdm_main_conf_t  *mmcf;

    mmcf = ngx_http_mdm_redis.conf;

    ctx = ngx_resolve_start(mmcf->resolver, NULL);
    if (ctx == NULL || ctx == NGX_NO_RESOLVER) {
        ngx_http_mdm_redis_lost("cannot start resolving");
        return;
    }

    ctx->name = mmcf->name;
    ctx->handler = ngx_http_mdm_redis_resolved;
    ctx->data = NULL;
    ctx->timeout = mmcf->resolver_timeout;
    ctx->cancelable = 1;

    ngx_http_mdm_redis.resolving = ctx;

    /* the handler may run before this returns, with a cached answer */
    if (ngx_resolve_name(ctx) != NGX_OK) {
        ngx_http_mdm_redis.resolving = NULL;
        ngx_http_mdm_redis_lost("cannot resolve");
    }
}


static void
ngx_http_mdm_redis_resolved(ngx_resolver_ctx_t *ctx)
{
    u_char      host[NGX_SOCKADDR_STRLEN + 1];
    size_t      len;
    ngx_uint_t  i;

    static u_char  why[256];

    ngx_http_mdm_redis.resolving = NULL;

    if (ctx->state || ctx->naddrs == 0) {
        ngx_snprintf(why, sizeof(why), "cannot resolve \"%V\": %s%Z",
                     &ctx->name, ctx->state
                                 ? ngx_resolver_strerror(ctx->state)
                                 : "no address");
        ngx_resolve_name_done(ctx);
        ngx_http_mdm_redis_lost((char *) why);
        return;
    }

    /* each reconnect tries the next address */
    i = ngx_http_mdm_redis.next_addr++ % ctx->naddrs;

    len = ngx_sock_ntop(ctx->addrs[i].sockaddr, ctx->addrs[i].socklen, host,
                        NGX_SOCKADDR_STRLEN, 0);
    host[len] = '\0';

    ngx_resolve_name_done(ctx);

    ngx_log_debug1(NGX_LOG_DEBUG_HTTP, ngx_http_mdm_redis.log, 0,
                   "mdm: redis resolved to %s", host);

    ngx_http_mdm_redis_connect_to((char *) host);
}


static void
ngx_http_mdm_redis_connect_to(const char *host)
{
    ngx_str_t                  s;
    redisAsyncContext         *ac;
    ngx_http_mdm_main_conf_t  *mmcf;

    mmcf = ngx_http_mdm_redis.conf;

    if (mmcf->unix_socket) {
        ac = redisAsyncConnectUnix(host);

    } else {
        ac = redisAsyncConnect(host, mmcf->port);
    }

    if (ac == NULL) {
        ngx_http_mdm_redis_lost("out of memory");
        return;
    }

    if (ac->err) {
        ngx_http_mdm_redis_lost(ac->errstr);
        redisAsyncFree(ac);
        return;
    }

    if (ngx_http_mdm_redis_attach(ac) != NGX_OK) {
        redisAsyncFree(ac);
        ngx_http_mdm_redis_lost("cannot attach to the event loop");
        return;
    }

    ngx_http_mdm_redis.ac = ac;
    ngx_http_mdm_redis.setup_pending = 0;
    ngx_http_mdm_redis.setup_failed = 0;
    ngx_http_mdm_redis.draining = 0;

    redisAsyncSetConnectCallback(ac, ngx_http_mdm_redis_on_connect);
    redisAsyncSetDisconnectCallback(ac, ngx_http_mdm_redis_on_disconnect);

    /*
     * hiredis buffers these until the socket is connected; requests that
     * come meanwhile queue up behind them
     */

    if (mmcf->password.len) {
        s = mmcf->password;
        if (redisAsyncCommand(ac, ngx_http_mdm_redis_setup_reply, "AUTH",
                              "AUTH %b", s.data, s.len) == REDIS_OK)
        {
            ngx_http_mdm_redis.setup_pending++;
        }
    }

    if (mmcf->db) {
        if (redisAsyncCommand(ac, ngx_http_mdm_redis_setup_reply, "SELECT",
                              "SELECT %d", (int) mmcf->db) == REDIS_OK)
        {
            ngx_http_mdm_redis.setup_pending++;
        }
    }

    /* whether this server can serve at all: version, role, loading */
    if (redisAsyncCommand(ac, ngx_http_mdm_redis_info_reply, NULL, "INFO")
        == REDIS_OK)
    {
        ngx_http_mdm_redis.setup_pending++;
    }

    ngx_add_timer(&ngx_http_mdm_redis.connect_timer, mmcf->timeout);
}


/*
 * INFO's answer on a new connection.  A server too old for the commands
 * the module and mdm-worker use (LPOS, BLMOVE, XAUTOCLAIM, XTRIM MINID:
 * 6.2), a read-only replica or one still loading its data cannot serve:
 * it is dropped and tried again with the backoff, and requests get 503.
 */

static void
ngx_http_mdm_redis_info_reply(redisAsyncContext *ac, void *r, void *privdata)
{
    redisReply  *reply = r;
    ngx_str_t    info, v;

    static u_char  why[256];

    if (reply == NULL) {
        return;
    }

    if (ngx_http_mdm_redis.setup_failed) {
        return;
    }

    if (reply->type != REDIS_REPLY_STRING) {
        /* an ACL may deny INFO: serve all the same, unchecked */
        ngx_log_error(NGX_LOG_WARN, ngx_http_mdm_redis.log, 0,
                      "mdm: redis INFO failed: %*s; the server's version "
                      "and maxmemory-policy are not checked",
                      (size_t) (reply->type == REDIS_REPLY_ERROR
                                ? reply->len : 0), reply->str);
        ngx_str_set(&info, "");

    } else {
        info.data = (u_char *) reply->str;
        info.len = reply->len;
    }

    if (info.len == 0) {
        goto checked;
    }

    if (ngx_http_mdm_redis_info_field(&info, "redis_version", &v) != NGX_OK
        || !ngx_http_mdm_redis_version_ok(&v))
    {
        ngx_snprintf(why, sizeof(why), "its version is %V; ngx_mdm needs "
                     "Redis 6.2 or later%Z", &v);
        ngx_http_mdm_redis_unusable(ac, (char *) why);
        return;
    }

    if (ngx_http_mdm_redis_info_field(&info, "loading", &v) == NGX_OK
        && v.len == 1 && v.data[0] == '1')
    {
        ngx_http_mdm_redis_unusable(ac, "it is loading its dataset");
        return;
    }

    if (ngx_http_mdm_redis_info_field(&info, "role", &v) == NGX_OK
        && v.len == 5 && ngx_strncmp(v.data, "slave", 5) == 0
        && (ngx_http_mdm_redis_info_field(&info, "slave_read_only", &v)
            != NGX_OK
            || v.len != 1 || v.data[0] != '0'))
    {
        ngx_http_mdm_redis_unusable(ac, "it is a read-only replica");
        return;
    }

    if (ngx_http_mdm_redis_info_field(&info, "maxmemory_policy", &v) == NGX_OK
        && !(v.len == 10 && ngx_strncmp(v.data, "noeviction", 10) == 0))
    {
        /* once per connection: an admin must see it, not every request */
        ngx_log_error(NGX_LOG_WARN, ngx_http_mdm_redis.log, 0,
                      "mdm: redis at \"%V\" has maxmemory-policy %V: it "
                      "may evict enrollments and queued commands when "
                      "full; set \"maxmemory-policy noeviction\"",
                      ngx_http_mdm_redis_shown(), &v);
    }

checked:

    if (--ngx_http_mdm_redis.setup_pending == 0
        && ngx_http_mdm_redis.connected)
    {
        ngx_http_mdm_redis_ready();
    }
}


/* the value of "name:value\r\n" in an INFO text */

static ngx_int_t
ngx_http_mdm_redis_info_field(ngx_str_t *info, const char *name,
    ngx_str_t *value)
{
    u_char  *p, *last, *eol;
    size_t   n;

    n = ngx_strlen(name);
    p = info->data;
    last = info->data + info->len;

    while (p < last) {
        eol = ngx_strlchr(p, last, '\n');
        if (eol == NULL) {
            eol = last;
        }

        if ((size_t) (eol - p) > n && p[n] == ':'
            && ngx_strncmp(p, name, n) == 0)
        {
            value->data = p + n + 1;
            value->len = eol - value->data;

            if (value->len && value->data[value->len - 1] == '\r') {
                value->len--;
            }

            return NGX_OK;
        }

        p = eol + 1;
    }

    ngx_str_set(value, "unknown");

    return NGX_DECLINED;
}


/* "MAJOR.MINOR.PATCH" at least 6.2 */

static ngx_uint_t
ngx_http_mdm_redis_version_ok(ngx_str_t *v)
{
    u_char     *p, *dot, *last;
    ngx_int_t   major, minor;

    p = v->data;
    last = v->data + v->len;

    dot = ngx_strlchr(p, last, '.');
    if (dot == NULL) {
        return 0;
    }

    major = ngx_atoi(p, dot - p);

    p = dot + 1;
    dot = ngx_strlchr(p, last, '.');
    minor = ngx_atoi(p, (dot ? dot : last) - p);

    if (major == NGX_ERROR || minor == NGX_ERROR) {
        return 0;
    }

    return major > 6 || (major == 6 && minor >= 2);
}


/*
 * This server cannot serve now: say why once (until it is back), fail what
 * is pending on the connection with 503 and reconnect with the backoff.
 */

static void
ngx_http_mdm_redis_unusable(redisAsyncContext *ac, const char *why)
{
    ngx_http_mdm_redis_t  *rd = &ngx_http_mdm_redis;

    if (!rd->unusable_logged) {
        ngx_log_error(NGX_LOG_ERR, rd->log, 0,
                      "mdm: redis at \"%V\" cannot serve: %s; answering "
                      "503 and reconnecting", ngx_http_mdm_redis_shown(),
                      why);
        rd->unusable_logged = 1;
        rd->down_logged = 1;
    }

    rd->setup_failed = 1;

    redisAsyncDisconnect(ac);
}


/*
 * READONLY (a primary turned replica), LOADING (a restarted server reading
 * its data), MASTERDOWN (a replica cut off): the connection is to the wrong
 * server or too early, not broken; still it is dropped and made anew, so
 * that a failover (a new address from DNS, a proxy that moved) is followed.
 */

static ngx_uint_t
ngx_http_mdm_redis_failover(redisReply *reply)
{
    ngx_str_t  e;

    e.data = (u_char *) reply->str;
    e.len = reply->len;

    return (e.len >= 8 && ngx_strncmp(e.data, "READONLY", 8) == 0)
           || (e.len >= 7 && ngx_strncmp(e.data, "LOADING", 7) == 0)
           || (e.len >= 10 && ngx_strncmp(e.data, "MASTERDOWN", 10) == 0)
           /* Redis 6.2 wraps a script's failed write in ERR */
           || ngx_strlcasestrn(e.data, e.data + e.len,
                               (u_char *) "-READONLY ", 10 - 1) != NULL;
}


static ngx_str_t *
ngx_http_mdm_redis_shown(void)
{
    ngx_http_mdm_main_conf_t  *mmcf = ngx_http_mdm_redis.conf;

    return mmcf->name.len ? &mmcf->name : &mmcf->host;
}


/* the context is gone (or never was): forget it and try again later */

static void
ngx_http_mdm_redis_lost(const char *why)
{
    ngx_http_mdm_redis_t  *rd = &ngx_http_mdm_redis;

    rd->ac = NULL;
    rd->connected = 0;

    if (rd->connect_timer.timer_set) {
        ngx_del_timer(&rd->connect_timer);
    }

    if (rd->exiting) {
        return;
    }

    if (!rd->down_logged) {
        ngx_log_error(NGX_LOG_ERR, rd->log, 0,
                      "mdm: redis at \"%V\" unavailable: %s, reconnecting",
                      ngx_http_mdm_redis_shown(), why);
        rd->down_logged = 1;

    } else {
        ngx_log_debug1(NGX_LOG_DEBUG_HTTP, rd->log, 0,
                       "mdm: redis reconnect failed: %s", why);
    }

    if (!rd->reconnect.timer_set) {
        ngx_add_timer(&rd->reconnect, rd->backoff);
        rd->backoff = ngx_min(rd->backoff * 2, NGX_HTTP_MDM_REDIS_BACKOFF_MAX);
    }
}


/*
 * Drops a live context at once: every pending call fails (503) instead of
 * waiting on a server that stopped answering.  Not for hiredis callbacks.
 */

static void
ngx_http_mdm_redis_drop(const char *why)
{
    redisAsyncContext  *ac;

    ac = ngx_http_mdm_redis.ac;
    if (ac == NULL) {
        return;
    }

    ngx_http_mdm_redis_lost(why);

    ac->onConnect = NULL;
    ac->onDisconnect = NULL;
    redisAsyncFree(ac);
}


static void
ngx_http_mdm_redis_reconnect_handler(ngx_event_t *ev)
{
    if (ngx_http_mdm_redis.exiting || ngx_http_mdm_redis.ac
        || ngx_http_mdm_redis.resolving)
    {
        return;
    }

    ngx_http_mdm_redis_connect();
}


static void
ngx_http_mdm_redis_connect_timeout(ngx_event_t *ev)
{
    if (!ngx_http_mdm_redis.connected) {
        ngx_http_mdm_redis_drop("connect timed out");
    }
}


static void
ngx_http_mdm_redis_on_connect(const redisAsyncContext *ac, int status)
{
    ngx_http_mdm_redis_t  *rd = &ngx_http_mdm_redis;

    if (status != REDIS_OK) {
        /* hiredis frees the context right after this callback */
        ngx_http_mdm_redis_lost(ac->errstr);
        return;
    }

    rd->connected = 1;

    if (rd->setup_pending == 0) {
        ngx_http_mdm_redis_ready();
    }
}


/* connected, authenticated, on the right db: only now is Redis "back" */

static void
ngx_http_mdm_redis_ready(void)
{
    ngx_http_mdm_redis_t  *rd = &ngx_http_mdm_redis;

    rd->backoff = NGX_HTTP_MDM_REDIS_BACKOFF_MIN;

    if (rd->connect_timer.timer_set) {
        ngx_del_timer(&rd->connect_timer);
    }

    if (rd->down_logged) {
        ngx_log_error(NGX_LOG_NOTICE, rd->log, 0,
                      "mdm: redis at \"%V\" is back",
                      ngx_http_mdm_redis_shown());
        rd->down_logged = 0;
    }

    rd->unusable_logged = 0;
}


static void
ngx_http_mdm_redis_on_disconnect(const redisAsyncContext *ac, int status)
{
    ngx_http_mdm_redis_lost(status == REDIS_OK ? "disconnected" : ac->errstr);
}


static void
ngx_http_mdm_redis_setup_reply(redisAsyncContext *ac, void *r, void *privdata)
{
    redisReply  *reply = r;

    if (reply == NULL) {
        return;
    }

    if (reply->type != REDIS_REPLY_ERROR) {
        if (--ngx_http_mdm_redis.setup_pending == 0
            && ngx_http_mdm_redis.connected)
        {
            ngx_http_mdm_redis_ready();
        }

        return;
    }

    /*
     * A wrong password or db is a configuration error: say so and keep
     * trying with backoff.  Replies already on their way behind it belong
     * to a connection that never worked: they fail as if it had dropped.
     */
    if (!ngx_http_mdm_redis.setup_failed) {
        ngx_log_error(NGX_LOG_ERR, ngx_http_mdm_redis.log, 0,
                      "mdm: redis %s failed: %*s", (char *) privdata,
                      (size_t) reply->len, reply->str);
    }

    ngx_http_mdm_redis.setup_failed = 1;

    redisAsyncDisconnect(ac);
}


/* the event-loop adapter */

static ngx_int_t
ngx_http_mdm_redis_attach(redisAsyncContext *ac)
{
    ngx_connection_t  *c;

    c = ngx_get_connection(ac->c.fd, ngx_http_mdm_redis.log);
    if (c == NULL) {
        return NGX_ERROR;
    }

    c->data = ac;
    c->read->handler = ngx_http_mdm_redis_read_handler;
    c->write->handler = ngx_http_mdm_redis_write_handler;
    c->read->log = c->log;
    c->write->log = c->log;

    /*
     * Level-triggered everywhere: hiredis reads at most 16 KB per event, so
     * edge-triggered events would stall large replies, and epoll keeps one
     * mask per fd, so all four hooks must agree.
     */
    ac->ev.data = c;
    ac->ev.addRead = ngx_http_mdm_redis_add_read;
    ac->ev.delRead = ngx_http_mdm_redis_del_read;
    ac->ev.addWrite = ngx_http_mdm_redis_add_write;
    ac->ev.delWrite = ngx_http_mdm_redis_del_write;
    ac->ev.cleanup = ngx_http_mdm_redis_cleanup;

    return NGX_OK;
}


static void
ngx_http_mdm_redis_add_read(void *data)
{
    ngx_connection_t  *c = data;

    if (!c->read->active) {
        ngx_add_event(c->read, NGX_READ_EVENT, NGX_LEVEL_EVENT);
    }
}


static void
ngx_http_mdm_redis_del_read(void *data)
{
    ngx_connection_t  *c = data;

    if (c->read->active) {
        ngx_del_event(c->read, NGX_READ_EVENT, NGX_LEVEL_EVENT);
    }
}


static void
ngx_http_mdm_redis_add_write(void *data)
{
    ngx_connection_t  *c = data;

    if (!c->write->active) {
        ngx_add_event(c->write, NGX_WRITE_EVENT, NGX_LEVEL_EVENT);
    }
}


static void
ngx_http_mdm_redis_del_write(void *data)
{
    ngx_connection_t  *c = data;

    if (c->write->active) {
        ngx_del_event(c->write, NGX_WRITE_EVENT, NGX_LEVEL_EVENT);
    }
}


/* hiredis closes the fd itself after this, so only release the slot */

static void
ngx_http_mdm_redis_cleanup(void *data)
{
    ngx_connection_t  *c = data;

    ngx_http_mdm_redis_del_read(c);
    ngx_http_mdm_redis_del_write(c);

    if (c->read->posted) {
        ngx_delete_posted_event(c->read);
    }

    if (c->write->posted) {
        ngx_delete_posted_event(c->write);
    }

    ngx_free_connection(c);
    c->fd = (ngx_socket_t) -1;
}


static void
ngx_http_mdm_redis_read_handler(ngx_event_t *ev)
{
    ngx_connection_t  *c = ev->data;

    redisAsyncHandleRead(c->data);
}


static void
ngx_http_mdm_redis_write_handler(ngx_event_t *ev)
{
    ngx_connection_t  *c = ev->data;

    redisAsyncHandleWrite(c->data);
}


/* calls from requests */

ngx_int_t
ngx_http_mdm_redis_eval(ngx_http_request_t *r, ngx_uint_t script,
    ngx_uint_t nkeys, ngx_array_t *args, ngx_http_mdm_redis_done_pt done)
{
    int                           i;
    ngx_int_t                     rc;
    ngx_str_t                    *a;
    ngx_uint_t                    n;
    ngx_pool_cleanup_t           *cln;
    ngx_http_mdm_redis_op_t      *op;
    ngx_http_mdm_redis_ticket_t  *t;

    if (ngx_http_mdm_redis.ac == NULL || ngx_http_mdm_redis.draining) {
        return NGX_DECLINED;
    }

    op = ngx_pcalloc(r->pool, sizeof(ngx_http_mdm_redis_op_t));
    if (op == NULL) {
        return NGX_ERROR;
    }

    n = args->nelts;
    a = args->elts;

    op->argc = (int) n + 3;
    op->argv = ngx_palloc(r->pool, op->argc * sizeof(char *));
    op->argvlen = ngx_palloc(r->pool, op->argc * sizeof(size_t));
    if (op->argv == NULL || op->argvlen == NULL) {
        return NGX_ERROR;
    }

    /* argv[0] and argv[1] are set by ngx_http_mdm_redis_send() */
    op->argv[2] = (char *) ngx_pnalloc(r->pool, NGX_INT_T_LEN);
    if (op->argv[2] == NULL) {
        return NGX_ERROR;
    }
    op->argvlen[2] = ngx_sprintf((u_char *) op->argv[2], "%ui", nkeys)
                     - (u_char *) op->argv[2];

    for (i = 0; i < (int) n; i++) {
        op->argv[i + 3] = (const char *) a[i].data;
        op->argvlen[i + 3] = a[i].len;
    }

    cln = ngx_pool_cleanup_add(r->pool, 0);
    if (cln == NULL) {
        return NGX_ERROR;
    }

    t = ngx_http_mdm_redis_ticket(r->connection->log);
    if (t == NULL) {
        return NGX_ERROR;
    }

    t->op = op;
    t->refs = 1;            /* the request's; hiredis's is added on send */

    op->request = r;
    op->done = done;
    op->ticket = t;
    op->script = script;

    op->timer.handler = ngx_http_mdm_redis_op_timeout;
    op->timer.data = r->connection;
    op->timer.log = r->connection->log;

    cln->handler = ngx_http_mdm_redis_op_cleanup;
    cln->data = op;

    rc = ngx_http_mdm_redis_send(op);
    if (rc != NGX_OK) {
        return rc;
    }

    ngx_add_timer(&op->timer, ngx_http_mdm_redis.conf->timeout);

    return NGX_OK;
}


static ngx_int_t
ngx_http_mdm_redis_send(ngx_http_mdm_redis_op_t *op)
{
    int                     rc;
    u_char                 *cmd, *p;
    size_t                  len;
    ngx_int_t               i;
    ngx_http_mdm_script_t  *s;

    if (ngx_http_mdm_redis.ac == NULL) {
        return NGX_DECLINED;
    }

    s = ngx_http_mdm_script(op->script);

    if (op->retried) {
        op->argv[0] = "EVAL";
        op->argv[1] = s->source;
        op->argvlen[1] = s->len;

    } else {
        op->argv[0] = "EVALSHA";
        op->argv[1] = (const char *) s->sha1;
        op->argvlen[1] = 40;
    }

    op->argvlen[0] = ngx_strlen(op->argv[0]);

    /*
     * The protocol is written here in one pass, into a buffer the worker
     * reuses (hiredis copies what it is given): hiredis's own formatting
     * builds it argument by argument with allocations, a tenth of a device
     * request's time.
     */

    len = sizeof("*\r\n") - 1 + NGX_INT_T_LEN;

    for (i = 0; i < op->argc; i++) {
        len += sizeof("$\r\n\r\n") - 1 + NGX_SIZE_T_LEN + op->argvlen[i];
    }

    cmd = ngx_http_mdm_redis_buffer(len);
    if (cmd == NULL) {
        return NGX_ERROR;
    }

    p = ngx_sprintf(cmd, "*%i\r\n", (ngx_int_t) op->argc);

    for (i = 0; i < op->argc; i++) {
        p = ngx_sprintf(p, "$%uz\r\n", op->argvlen[i]);

        /* an empty argument may have no data at all */
        if (op->argvlen[i]) {
            p = ngx_cpymem(p, op->argv[i], op->argvlen[i]);
        }

        *p++ = '\r';
        *p++ = '\n';
    }

    rc = redisAsyncFormattedCommand(ngx_http_mdm_redis.ac,
                                    ngx_http_mdm_redis_reply, op->ticket,
                                    (const char *) cmd, p - cmd);

    ngx_http_mdm_redis_buffer_done();

    if (rc != REDIS_OK) {
        return NGX_DECLINED;
    }

    op->ticket->refs++;

    return NGX_OK;
}


/* the worker's command buffer, at least len bytes */

static u_char *
ngx_http_mdm_redis_buffer(size_t len)
{
    if (ngx_http_mdm_redis.buf_size < len) {
        ngx_free(ngx_http_mdm_redis.buf);

        ngx_http_mdm_redis.buf_size = ngx_max(len, 4096);
        ngx_http_mdm_redis.buf = ngx_alloc(ngx_http_mdm_redis.buf_size,
                                           ngx_http_mdm_redis.log);

        if (ngx_http_mdm_redis.buf == NULL) {
            ngx_http_mdm_redis.buf_size = 0;
        }
    }

    return ngx_http_mdm_redis.buf;
}


/* a buffer grown for a large command report is not kept */

static void
ngx_http_mdm_redis_buffer_done(void)
{
    if (ngx_http_mdm_redis.buf_size > NGX_HTTP_MDM_REDIS_BUFFER_KEEP) {
        ngx_free(ngx_http_mdm_redis.buf);
        ngx_http_mdm_redis.buf = NULL;
        ngx_http_mdm_redis.buf_size = 0;
    }
}


static void
ngx_http_mdm_redis_reply(redisAsyncContext *ac, void *r, void *privdata)
{
    const char                   *err;
    redisReply                   *reply = r;
    ngx_http_mdm_redis_op_t      *op;
    ngx_http_mdm_redis_ticket_t  *t = privdata;

    op = t->op;

    if (op == NULL || ngx_http_mdm_redis.exiting) {
        ngx_http_mdm_redis_release(t);
        return;
    }

    if (reply == NULL || ngx_http_mdm_redis.setup_failed) {
        t->refs--;
        ngx_http_mdm_redis_finish(op, NULL,
                                  ngx_http_mdm_redis.setup_failed
                                  ? "cannot serve (see the log)"
                                  : ac->errstr[0] ? ac->errstr
                                                  : "connection lost");
        return;
    }

    if (reply->type == REDIS_REPLY_ERROR
        && ngx_http_mdm_redis_failover(reply))
    {
        t->refs--;
        ngx_http_mdm_redis_drain(ac, reply);
        ngx_http_mdm_redis_finish(op, NULL, ngx_http_mdm_redis_word(reply));
        return;
    }

    /* the server restarted or was flushed since the script was loaded */

    if (reply->type == REDIS_REPLY_ERROR && !op->retried
        && reply->len >= 8 && ngx_strncmp(reply->str, "NOSCRIPT", 8) == 0)
    {
        t->refs--;
        op->retried = 1;

        if (ngx_http_mdm_redis_send(op) != NGX_OK) {
            ngx_http_mdm_redis_finish(op, NULL, ngx_http_mdm_redis.ac
                                                ? "out of memory"
                                                : "connection lost");
        }

        return;
    }

    t->refs--;

    if (reply->type == REDIS_REPLY_ERROR
        && (err = ngx_http_mdm_redis_busy(reply)) != NULL)
    {
        ngx_http_mdm_redis_finish(op, NULL, err);
        return;
    }

    ngx_http_mdm_redis_finish(op, reply, NULL);
}


/*
 * Errors that say the server cannot take the call now, not that the call
 * is wrong: a full server under noeviction (OOM) or one stuck in a long
 * script (BUSY).  Answered 503, the connection kept.  Redis before 7 wraps
 * a script's failed call in ERR.
 */

static const char *
ngx_http_mdm_redis_busy(redisReply *reply)
{
    u_char  *p, *last;

    p = (u_char *) reply->str;
    last = p + reply->len;

    if ((reply->len >= 4 && ngx_strncmp(p, "OOM ", 4) == 0)
        || ngx_strlcasestrn(p, last, (u_char *) "-OOM ", 5 - 1) != NULL)
    {
        return "is out of memory (OOM; maxmemory-policy noeviction)";
    }

    if (reply->len >= 5 && ngx_strncmp(p, "BUSY ", 5) == 0) {
        return "is busy running a script (BUSY)";
    }

    return NULL;
}


/* a failover reply: no new calls on this connection, then reconnect */

static void
ngx_http_mdm_redis_drain(redisAsyncContext *ac, redisReply *reply)
{
    ngx_http_mdm_redis_t  *rd = &ngx_http_mdm_redis;

    if (rd->draining) {
        return;
    }

    rd->draining = 1;

    if (!rd->down_logged) {
        ngx_log_error(NGX_LOG_ERR, rd->log, 0,
                      "mdm: redis at \"%V\" answered \"%*s\": dropping "
                      "the connection, reconnecting",
                      ngx_http_mdm_redis_shown(),
                      (size_t) ngx_min(reply->len, 200), reply->str);
        rd->down_logged = 1;
    }

    /* hiredis closes it once the replies already on their way are read */
    redisAsyncDisconnect(ac);
}


/* what a request's log line says of a failover reply */

static const char *
ngx_http_mdm_redis_word(redisReply *reply)
{
    if (reply->len >= 7 && ngx_strncmp(reply->str, "LOADING", 7) == 0) {
        return "is loading its dataset (LOADING)";
    }

    if (reply->len >= 10 && ngx_strncmp(reply->str, "MASTERDOWN", 10) == 0) {
        return "lost its primary (MASTERDOWN)";
    }

    return "is read-only (READONLY)";
}


static void
ngx_http_mdm_redis_finish(ngx_http_mdm_redis_op_t *op, redisReply *reply,
    const char *err)
{
    ngx_connection_t    *c;
    ngx_http_request_t  *r;
    ngx_http_log_ctx_t  *lctx;

    r = op->request;
    c = r->connection;

    op->ticket->op = NULL;

    if (op->timer.timer_set) {
        ngx_del_timer(&op->timer);
    }

    lctx = c->log->data;
    lctx->current_request = r;

    op->done(r, reply, err);

    ngx_http_run_posted_requests(c);
}


static void
ngx_http_mdm_redis_op_timeout(ngx_event_t *ev)
{
    ngx_http_mdm_redis_op_t  *op;

    op = (ngx_http_mdm_redis_op_t *)
             ((u_char *) ev - offsetof(ngx_http_mdm_redis_op_t, timer));

    ngx_http_mdm_redis_finish(op, NULL, "timed out");

    /*
     * A server that does not answer within the timeout is treated as gone:
     * fail everything pending now and reconnect, rather than let every
     * following request wait for the same timeout.
     */
    ngx_http_mdm_redis_drop("a call timed out");
}


static void
ngx_http_mdm_redis_op_cleanup(void *data)
{
    ngx_http_mdm_redis_op_t  *op = data;

    if (op->timer.timer_set) {
        ngx_del_timer(&op->timer);
    }

    op->ticket->op = NULL;
    ngx_http_mdm_redis_release(op->ticket);
}


static ngx_http_mdm_redis_ticket_t *
ngx_http_mdm_redis_ticket(ngx_log_t *log)
{
    ngx_http_mdm_redis_ticket_t  *t;

    t = ngx_http_mdm_redis.free_tickets;

    if (t) {
        ngx_http_mdm_redis.free_tickets = t->next;
        ngx_http_mdm_redis.nfree_tickets--;
        return t;
    }

    return ngx_alloc(sizeof(ngx_http_mdm_redis_ticket_t), log);
}


static void
ngx_http_mdm_redis_release(ngx_http_mdm_redis_ticket_t *t)
{
    if (--t->refs) {
        return;
    }

    if (ngx_http_mdm_redis.exiting
        || ngx_http_mdm_redis.nfree_tickets >= NGX_HTTP_MDM_REDIS_FREE_TICKETS)
    {
        ngx_free(t);
        return;
    }

    t->next = ngx_http_mdm_redis.free_tickets;
    ngx_http_mdm_redis.free_tickets = t;
    ngx_http_mdm_redis.nfree_tickets++;
}
