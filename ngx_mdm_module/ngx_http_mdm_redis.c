
/*
 * Copyright (C) ngx_mdm contributors
 *
 * The one Redis connection of a worker process: hiredis's async API driven
 * by nginx's event loop, and its life: connect (through a resolver if the
 * name needs one), AUTH/SELECT/version check, loss, failover, reconnect.
 * The calls requests make on it are in ngx_http_mdm_redis_call.c.
 */


#include "ngx_http_mdm_redis_private.h"
#include "ngx_http_mdm_metrics.h"


#define NGX_HTTP_MDM_REDIS_BACKOFF_MIN  100
#define NGX_HTTP_MDM_REDIS_BACKOFF_MAX  5000


static void ngx_http_mdm_redis_connect(void);
static void ngx_http_mdm_redis_resolve(void);
static void ngx_http_mdm_redis_resolved(ngx_resolver_ctx_t *ctx);
static void ngx_http_mdm_redis_info_reply(redisAsyncContext *ac, void *r,
    void *privdata);
static ngx_int_t ngx_http_mdm_redis_info_field(ngx_str_t *info,
    const char *name, ngx_str_t *value);
static ngx_uint_t ngx_http_mdm_redis_version_ok(ngx_str_t *v);
static void ngx_http_mdm_redis_unusable(redisAsyncContext *ac,
    const char *why);
static void ngx_http_mdm_redis_reconnect_handler(ngx_event_t *ev);
static void ngx_http_mdm_redis_connect_timeout(ngx_event_t *ev);
static void ngx_http_mdm_redis_on_connect(const redisAsyncContext *ac,
    int status);
static void ngx_http_mdm_redis_on_disconnect(const redisAsyncContext *ac,
    int status);
static void ngx_http_mdm_redis_setup_reply(redisAsyncContext *ac, void *r,
    void *privdata);
static void ngx_http_mdm_redis_ready(void);
static void ngx_http_mdm_redis_add_read(void *data);
static void ngx_http_mdm_redis_del_read(void *data);
static void ngx_http_mdm_redis_add_write(void *data);
static void ngx_http_mdm_redis_del_write(void *data);
static void ngx_http_mdm_redis_cleanup(void *data);
static void ngx_http_mdm_redis_read_handler(ngx_event_t *ev);
static void ngx_http_mdm_redis_write_handler(ngx_event_t *ev);


/* the state of this worker process's one connection, shared with the call path */
ngx_http_mdm_redis_t         ngx_http_mdm_redis;

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

    ngx_http_mdm_redis.sentinel_timer.data = &ngx_http_mdm_redis_dummy;
    ngx_http_mdm_redis.sentinel_timer.handler =
                                         ngx_http_mdm_redis_sentinel_timeout;
    ngx_http_mdm_redis.sentinel_timer.log = cycle->log;
    ngx_http_mdm_redis.sentinel_timer.cancelable = 1;

    ngx_http_mdm_redis_wait_init();

    ngx_http_mdm_redis_connect();

    return NGX_OK;
}


void
ngx_http_mdm_redis_exit_process(ngx_cycle_t *cycle)
{
    redisAsyncContext  *ac;

    ngx_http_mdm_redis.exiting = 1;

    if (ngx_http_mdm_redis.resolving) {
        ngx_resolve_name_done(ngx_http_mdm_redis.resolving);
        ngx_http_mdm_redis.resolving = NULL;
    }

    ngx_http_mdm_redis_sentinel_close();

    ac = ngx_http_mdm_redis.ac;

    if (ac) {
        ngx_http_mdm_redis.ac = NULL;
        ac->onDisconnect = NULL;
        ac->onConnect = NULL;

        /* the callbacks of what is pending release their tickets here */
        redisAsyncFree(ac);
    }

    ngx_http_mdm_redis_calls_free();
}


static void
ngx_http_mdm_redis_connect(void)
{
    if (ngx_http_mdm_redis.conf->sentinels) {
        ngx_http_mdm_redis_sentinel_ask();
        return;
    }

    if (ngx_http_mdm_redis.conf->resolver) {
        ngx_http_mdm_redis_resolve();
        return;
    }

    ngx_http_mdm_redis_connect_to((char *) ngx_http_mdm_redis.conf->host.data,
                                  ngx_http_mdm_redis.conf->port);
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

    ngx_http_mdm_redis_connect_to((char *) host,
                                  ngx_http_mdm_redis.conf->port);
}


void
ngx_http_mdm_redis_connect_to(const char *host, in_port_t port)
{
    ngx_str_t                  s;
    redisAsyncContext         *ac;
    ngx_http_mdm_main_conf_t  *mmcf;

    mmcf = ngx_http_mdm_redis.conf;

    if (mmcf->unix_socket) {
        ac = redisAsyncConnectUnix(host);

    } else {
        ac = redisAsyncConnect(host, port);
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

    /* with Sentinel, a writable replica is refused too: its writes are lost */
    if (ngx_http_mdm_redis_info_field(&info, "role", &v) == NGX_OK
        && v.len == 5 && ngx_strncmp(v.data, "slave", 5) == 0
        && (ngx_http_mdm_redis.conf->sentinels
            || ngx_http_mdm_redis_info_field(&info, "slave_read_only", &v)
               != NGX_OK
            || v.len != 1 || v.data[0] != '0'))
    {
        ngx_http_mdm_redis_unusable(ac, ngx_http_mdm_redis.conf->sentinels
                                        ? "it is a replica, not the master"
                                        : "it is a read-only replica");
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

ngx_uint_t
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


ngx_str_t *
ngx_http_mdm_redis_shown(void)
{
    ngx_http_mdm_main_conf_t  *mmcf = ngx_http_mdm_redis.conf;

    if (mmcf->master_name.len) {
        return &mmcf->master_name;
    }

    return mmcf->name.len ? &mmcf->name : &mmcf->host;
}


/* the context is gone (or never was): forget it and try again later */

void
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

void
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
        || ngx_http_mdm_redis.resolving || ngx_http_mdm_redis.sac)
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

    if (rd->ready_once) {
        ngx_http_mdm_metrics_redis_reconnect();
    }

    rd->ready_once = 1;

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

ngx_int_t
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
