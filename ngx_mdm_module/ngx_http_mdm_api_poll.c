
/*
 * Copyright (C) ngx_mdm contributors
 *
 * The reply polling shared by the jobs nginx hands to mdm-worker (see
 * ngx_http_mdm_api_poll.h): the DEP proxy (D4) and VPP's token and sync
 * jobs (V2).  Whoever queues the job fills the waiter; this file runs the
 * timer, the polls, the 504, and hands the reply to the waiter's answer.
 * The worker drops jobs past their deadline and its replies live 120 s,
 * so nothing stays behind when the admin went away.
 */


#include "ngx_http_mdm_api_poll.h"
#include "ngx_http_mdm_api_dep.h"
#include "ngx_http_mdm_request.h"

#include <openssl/rand.h>


#define NGX_HTTP_MDM_POLL_FIRST       20
#define NGX_HTTP_MDM_POLL_MAX         50
#define NGX_HTTP_MDM_POLL_SLOW        250
#define NGX_HTTP_MDM_POLL_FAST_FOR    2000


static void ngx_http_mdm_api_poll_cleanup(void *data);
static void ngx_http_mdm_api_poll(ngx_event_t *ev);
static void ngx_http_mdm_api_polled(ngx_http_request_t *r,
    redisReply *reply, const char *err);


ngx_http_mdm_api_poll_t *
ngx_http_mdm_api_poll_state(ngx_http_request_t *r, ngx_uint_t create)
{
    u_char                    rnd[16];
    ngx_pool_cleanup_t       *cln;
    ngx_http_mdm_api_poll_t  *pl;

    for (cln = r->pool->cleanup; cln; cln = cln->next) {
        if (cln->handler == ngx_http_mdm_api_poll_cleanup) {
            return cln->data;
        }
    }

    if (!create || RAND_bytes(rnd, sizeof(rnd)) != 1) {
        return NULL;
    }

    cln = ngx_pool_cleanup_add(r->pool, sizeof(ngx_http_mdm_api_poll_t));
    if (cln == NULL) {
        return NULL;
    }

    pl = cln->data;
    ngx_memzero(pl, sizeof(ngx_http_mdm_api_poll_t));

    ngx_hex_dump(pl->id, rnd, sizeof(rnd));

    pl->request = r;
    pl->timer.handler = ngx_http_mdm_api_poll;
    pl->timer.data = pl;
    pl->timer.log = r->connection->log;

    cln->handler = ngx_http_mdm_api_poll_cleanup;

    return pl;
}


/* a request ended some other way must not leave its timer behind */

static void
ngx_http_mdm_api_poll_cleanup(void *data)
{
    ngx_http_mdm_api_poll_t  *pl = data;

    if (pl->timer.timer_set) {
        ngx_del_timer(&pl->timer);
    }
}


ngx_int_t
ngx_http_mdm_api_script_reply(ngx_http_request_t *r, redisReply *reply,
    const char *err)
{
    return ngx_http_mdm_api_dep_reply(r, reply, err, 2);
}


void
ngx_http_mdm_api_poll_queued(ngx_http_request_t *r, redisReply *reply,
    const char *err)
{
    ngx_http_mdm_api_poll_t  *pl;

    if (reply == NULL || reply->type != REDIS_REPLY_ARRAY
        || reply->elements != 2 || reply->element[0]->type
                                   != REDIS_REPLY_INTEGER
        || reply->element[0]->integer != 202)
    {
        ngx_http_finalize_request(r, ngx_http_mdm_api_script_reply(r, reply,
                                                                   err));
        return;
    }

    pl = ngx_http_mdm_api_poll_state(r, 0);

    pl->started = ngx_current_msec;
    pl->interval = NGX_HTTP_MDM_POLL_FIRST;

    ngx_add_timer(&pl->timer, pl->interval);
}


static void
ngx_http_mdm_api_poll(ngx_event_t *ev)
{
    ngx_int_t                 rc;
    ngx_array_t              *args;
    ngx_connection_t         *c;
    ngx_http_request_t       *r;
    ngx_http_mdm_api_poll_t  *pl;

    pl = ev->data;
    r = pl->request;
    c = r->connection;

    ngx_http_set_log_request(c->log, r);

    args = ngx_http_mdm_api_args(r, pl->op);

    if (args == NULL
        || ngx_http_mdm_push_arg(args, (u_char *) "", 0) != NGX_OK
        || ngx_http_mdm_push_arg(args, pl->id, 32) != NGX_OK)
    {
        rc = NGX_HTTP_INTERNAL_SERVER_ERROR;

    } else {
        rc = ngx_http_mdm_api_eval(r, pl->script, 0, args,
                                   ngx_http_mdm_api_polled);
    }

    if (rc != NGX_DONE) {
        ngx_http_finalize_request(r, rc);
    }

    ngx_http_run_posted_requests(c);
}


static void
ngx_http_mdm_api_polled(ngx_http_request_t *r, redisReply *reply,
    const char *err)
{
    ngx_msec_t                waited, most;
    ngx_http_mdm_api_poll_t  *pl;

    pl = ngx_http_mdm_api_poll_state(r, 0);

    if (reply && reply->type == REDIS_REPLY_ARRAY && reply->elements == 2
        && reply->element[0]->type == REDIS_REPLY_INTEGER
        && reply->element[0]->integer == 1
        && reply->element[1]->type == REDIS_REPLY_STRING)
    {
        ngx_http_finalize_request(r, pl->answer(r, pl, reply->element[1]));
        return;
    }

    if (reply == NULL || reply->type != REDIS_REPLY_ARRAY
        || reply->elements != 1)
    {
        ngx_http_finalize_request(r, ngx_http_mdm_api_script_reply(r, reply,
                                                                   err));
        return;
    }

    waited = ngx_current_msec - pl->started;

    if (waited >= pl->timeout) {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "mdm: %s \"%V\" of %s \"%V\" got no answer in %M "
                      "ms (%s): is mdm-worker running?", pl->kind, &pl->what,
                      pl->owner, &pl->name, pl->timeout, pl->directive);
        ngx_http_finalize_request(r, ngx_http_mdm_api_error(r,
                                    NGX_HTTP_GATEWAY_TIME_OUT, pl->late));
        return;
    }

    /*
     * the first answers come fast; later ones are Apple's pace, and each
     * poll costs the request's pool a Redis call: a long wait polls less
     */
    most = (waited < NGX_HTTP_MDM_POLL_FAST_FOR)
           ? NGX_HTTP_MDM_POLL_MAX : NGX_HTTP_MDM_POLL_SLOW;

    pl->interval = ngx_min(pl->interval + pl->interval / 2, most);

    ngx_add_timer(&pl->timer, ngx_min(pl->interval, pl->timeout - waited));
}
