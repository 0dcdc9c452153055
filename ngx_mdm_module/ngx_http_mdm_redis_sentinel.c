
/*
 * Copyright (C) ngx_mdm contributors
 *
 * Redis Sentinel: before each connect, the sentinels are asked, one after
 * the other, where the master named by "master=" is now
 * (SENTINEL get-master-addr-by-name).  Nothing else is needed to follow a
 * failover: every way the old master goes away (connection lost, a call
 * timed out, READONLY from a demoted master, a replica found by the INFO
 * check) drops the connection, and the reconnect asks again.  All of it is
 * asynchronous, on nginx's event loop, like the master connection.
 */


#include "ngx_http_mdm_redis_private.h"


static void ngx_http_mdm_redis_sentinel_next(void);
static void ngx_http_mdm_redis_sentinel_reply(redisAsyncContext *ac,
    void *r, void *privdata);
static void ngx_http_mdm_redis_sentinel_on_connect(const redisAsyncContext *ac,
    int status);
static void ngx_http_mdm_redis_sentinel_on_disconnect(
    const redisAsyncContext *ac, int status);
static void ngx_http_mdm_redis_sentinel_done(void);


/* a round over all sentinels; the next connect starts a new one */

void
ngx_http_mdm_redis_sentinel_ask(void)
{
    ngx_http_mdm_redis.sentinel_tries = 0;

    ngx_http_mdm_redis_sentinel_next();
}


static void
ngx_http_mdm_redis_sentinel_next(void)
{
    ngx_str_t                  *pw;
    redisAsyncContext          *ac;
    ngx_http_mdm_redis_t       *rd = &ngx_http_mdm_redis;
    ngx_http_mdm_main_conf_t   *mmcf = rd->conf;
    ngx_http_mdm_redis_addr_t  *s;

    while (rd->sentinel_tries < mmcf->sentinels->nelts) {
        rd->sentinel_tries++;

        /* where the last round ended: a sentinel that answered is kept */
        s = mmcf->sentinels->elts;
        s += rd->sentinel_next % mmcf->sentinels->nelts;

        ac = redisAsyncConnect((char *) s->host.data, s->port);

        if (ac == NULL) {
            break;
        }

        if (ac->err || ngx_http_mdm_redis_attach(ac) != NGX_OK) {
            ngx_log_error(NGX_LOG_WARN, rd->log, 0,
                          "mdm: redis sentinel %V:%d: %s", &s->host,
                          (int) s->port, ac->err ? ac->errstr
                                                 : "cannot attach");
            redisAsyncFree(ac);
            rd->sentinel_next++;
            continue;
        }

        rd->sac = ac;

        redisAsyncSetConnectCallback(ac,
                                     ngx_http_mdm_redis_sentinel_on_connect);
        redisAsyncSetDisconnectCallback(ac,
                                  ngx_http_mdm_redis_sentinel_on_disconnect);

        pw = &mmcf->sentinel_password;

        /* AUTH's own answer is not needed: a refusal fails the question */
        if (pw->len) {
            (void) redisAsyncCommand(ac, NULL, NULL, "AUTH %b", pw->data,
                                     pw->len);
        }

        if (redisAsyncCommand(ac, ngx_http_mdm_redis_sentinel_reply, s,
                              "SENTINEL get-master-addr-by-name %b",
                              mmcf->master_name.data, mmcf->master_name.len)
            != REDIS_OK)
        {
            ngx_http_mdm_redis_sentinel_close();
            rd->sentinel_next++;
            continue;
        }

        ngx_add_timer(&rd->sentinel_timer, mmcf->timeout);
        return;
    }

    ngx_http_mdm_redis_lost("no sentinel told the master's address");
}


static void
ngx_http_mdm_redis_sentinel_reply(redisAsyncContext *ac, void *r,
    void *privdata)
{
    redisReply                 *reply = r, **e;
    ngx_int_t                   port;
    ngx_http_mdm_redis_t       *rd = &ngx_http_mdm_redis;
    ngx_http_mdm_redis_addr_t  *s = privdata;

    if (reply == NULL || rd->sac != ac) {
        /* freed by a timeout or at exit: that path goes on */
        return;
    }

    e = reply->element;

    if (reply->type == REDIS_REPLY_ARRAY && reply->elements == 2
        && e[0]->type == REDIS_REPLY_STRING && e[0]->len > 0
        && e[0]->len <= NGX_SOCKADDR_STRLEN
        && e[1]->type == REDIS_REPLY_STRING
        && (port = ngx_atoi((u_char *) e[1]->str, e[1]->len)) > 0
        && port < 65536)
    {
        ngx_memcpy(rd->master, e[0]->str, e[0]->len);
        rd->master[e[0]->len] = '\0';

        ngx_log_debug3(NGX_LOG_DEBUG_HTTP, rd->log, 0,
                       "mdm: redis sentinel %V: master at %s:%i",
                       &s->host, rd->master, port);

        ngx_http_mdm_redis_sentinel_done();
        ngx_http_mdm_redis_connect_to((char *) rd->master, (in_port_t) port);
        return;
    }

    ngx_log_error(NGX_LOG_WARN, rd->log, 0,
                  "mdm: redis sentinel %V:%d does not name master \"%V\": "
                  "%*s", &s->host, (int) s->port,
                  &rd->conf->master_name,
                  (size_t) (reply->type == REDIS_REPLY_ERROR ? reply->len : 4),
                  reply->type == REDIS_REPLY_ERROR ? reply->str : "none");

    ngx_http_mdm_redis_sentinel_done();
    rd->sentinel_next++;
    ngx_http_mdm_redis_sentinel_next();
}


static void
ngx_http_mdm_redis_sentinel_on_connect(const redisAsyncContext *ac,
    int status)
{
    ngx_http_mdm_redis_t  *rd = &ngx_http_mdm_redis;

    if (status == REDIS_OK || rd->sac != ac) {
        return;
    }

    /* hiredis frees the context after this callback */
    ngx_log_error(NGX_LOG_WARN, rd->log, 0, "mdm: redis sentinel: %s",
                  ac->errstr);

    rd->sac = NULL;

    if (rd->sentinel_timer.timer_set) {
        ngx_del_timer(&rd->sentinel_timer);
    }

    rd->sentinel_next++;
    ngx_http_mdm_redis_sentinel_next();
}


static void
ngx_http_mdm_redis_sentinel_on_disconnect(const redisAsyncContext *ac,
    int status)
{
    ngx_http_mdm_redis_t  *rd = &ngx_http_mdm_redis;

    if (rd->sac != ac) {
        return;
    }

    /* gone before it answered */
    rd->sac = NULL;

    if (rd->sentinel_timer.timer_set) {
        ngx_del_timer(&rd->sentinel_timer);
    }

    rd->sentinel_next++;
    ngx_http_mdm_redis_sentinel_next();
}


void
ngx_http_mdm_redis_sentinel_timeout(ngx_event_t *ev)
{
    ngx_log_error(NGX_LOG_WARN, ngx_http_mdm_redis.log, 0,
                  "mdm: redis sentinel did not answer in time");

    ngx_http_mdm_redis_sentinel_close();
    ngx_http_mdm_redis.sentinel_next++;
    ngx_http_mdm_redis_sentinel_next();
}


/* the answer is in: the question's connection ends after its callbacks */

static void
ngx_http_mdm_redis_sentinel_done(void)
{
    redisAsyncContext     *ac;
    ngx_http_mdm_redis_t  *rd = &ngx_http_mdm_redis;

    ac = rd->sac;
    rd->sac = NULL;

    if (rd->sentinel_timer.timer_set) {
        ngx_del_timer(&rd->sentinel_timer);
    }

    ac->onDisconnect = NULL;
    redisAsyncDisconnect(ac);
}


/* not from a hiredis callback of that context: it is freed at once */

void
ngx_http_mdm_redis_sentinel_close(void)
{
    redisAsyncContext     *ac;
    ngx_http_mdm_redis_t  *rd = &ngx_http_mdm_redis;

    if (rd->sentinel_timer.timer_set) {
        ngx_del_timer(&rd->sentinel_timer);
    }

    ac = rd->sac;
    if (ac == NULL) {
        return;
    }

    rd->sac = NULL;

    ac->onConnect = NULL;
    ac->onDisconnect = NULL;
    redisAsyncFree(ac);
}
