
/*
 * Copyright (C) ngx_mdm contributors
 *
 * POST /v1/renew/ID[,ID...]: renews device identities the way Apple
 * devices allow it, by sending the enrollment profile again (same
 * ServerURL, CheckInURL and topic, a new one-time SCEP challenge) as an
 * InstallProfile command; the device gets a new certificate and its next
 * Authenticate binds it.  Two calls of lua/api.lua: the devices' topics,
 * then one command per device with its own challenge, queued and pushed.
 */


#include "ngx_http_mdm_api_private.h"
#include "ngx_http_mdm_enroll.h"
#include "ngx_http_mdm_scep.h"
#include "ngx_http_mdm_plist.h"
#include "ngx_http_mdm_redis.h"
#include "ngx_http_mdm_request.h"
#include "ngx_http_mdm_scripts.h"
#include "ngx_http_mdm_util.h"

#include <openssl/crypto.h>
#include <openssl/err.h>

#if (NGX_THREADS)
#include <ngx_thread_pool.h>
#endif


/* one device's renewal, made once its topic is known */
typedef struct {
    ngx_str_t                   topic;       /* empty: unknown device */
    u_char                     *uuid;        /* the command's, 36 bytes */
    ngx_str_t                   challenge;
    ngx_str_t                   profile;     /* the XML */
    u_char                     *der;         /* signed, OPENSSL_malloc()ed */
    int                         der_len;
} ngx_http_mdm_renew_item_t;


typedef struct {
    ngx_array_t                *ids;         /* of ngx_str_t */
    ngx_http_mdm_renew_item_t  *items;       /* one per id */

    /* signing in the thread pool (mdm_enroll_sign) */
    ngx_http_request_t         *request;
    ngx_http_mdm_enroll_signer_t  *signer;
    ngx_uint_t                  sign_failed;
} ngx_http_mdm_renew_ctx_t;


static const char *ngx_http_mdm_api_renew_ids(ngx_str_t *list,
    ngx_array_t *ids);
static void ngx_http_mdm_api_renew_topics(ngx_http_request_t *r,
    redisReply *reply, const char *err);
static ngx_int_t ngx_http_mdm_api_renew_queue(ngx_http_request_t *r,
    redisReply *topics);
static ngx_int_t ngx_http_mdm_api_renew_profile(ngx_http_request_t *r,
    ngx_http_mdm_renew_item_t *it, ngx_uint_t nosign);
static ngx_int_t ngx_http_mdm_api_renew_send(ngx_http_request_t *r);
static ngx_int_t ngx_http_mdm_api_renew_command(ngx_http_request_t *r,
    ngx_http_mdm_renew_item_t *it, ngx_array_t *args);
static void ngx_http_mdm_api_renew_cleanup(void *data);
#if (NGX_THREADS)
static ngx_int_t ngx_http_mdm_api_renew_sign_post(ngx_http_request_t *r,
    ngx_http_mdm_renew_ctx_t *ctx, ngx_thread_pool_t *pool);
static void ngx_http_mdm_api_renew_sign_thread(void *data, ngx_log_t *log);
static void ngx_http_mdm_api_renew_sign_done(ngx_event_t *ev);
#endif


ngx_int_t
ngx_http_mdm_api_renew(ngx_http_request_t *r, ngx_http_mdm_api_route_t *rt)
{
    ngx_str_t                   *id;
    ngx_uint_t                   i;
    const char                  *err;
    ngx_array_t                 *args;
    ngx_http_mdm_loc_conf_t     *mlcf;
    ngx_http_mdm_renew_ctx_t    *ctx;
    ngx_http_mdm_enroll_conf_t  *ecf;

    if (r->method != NGX_HTTP_POST) {
        return ngx_http_mdm_api_error(r, NGX_HTTP_NOT_ALLOWED,
                                      "renew takes POST");
    }

    mlcf = ngx_http_get_module_loc_conf(r, ngx_http_mdm_module);
    ecf = &mlcf->enroll;

    /*
     * A device refuses a profile update that changes these URLs, and the
     * admin API's own host says nothing about them.
     */
    if (ecf->server_url.len == 0 || ecf->checkin_url.len == 0
        || ecf->scep_url.len == 0)
    {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "mdm: API renew answered 500: mdm_enroll_server_url, "
                      "mdm_enroll_checkin_url and mdm_enroll_scep_url are "
                      "not set for the API location");
        return ngx_http_mdm_api_error(r, NGX_HTTP_INTERNAL_SERVER_ERROR,
                                      "renew needs mdm_enroll_server_url, "
                                      "mdm_enroll_checkin_url and "
                                      "mdm_enroll_scep_url where the API is "
                                      "(e.g. in http{}): the new profile must "
                                      "carry the devices' current URLs");
    }

    ctx = ngx_pcalloc(r->pool, sizeof(ngx_http_mdm_renew_ctx_t));
    if (ctx == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ctx->ids = ngx_array_create(r->pool, 4, sizeof(ngx_str_t));
    if (ctx->ids == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    err = ngx_http_mdm_api_renew_ids(&rt->arg, ctx->ids);
    if (err) {
        return (err[0] == '!')
               ? NGX_HTTP_INTERNAL_SERVER_ERROR
               : ngx_http_mdm_api_error(r, NGX_HTTP_BAD_REQUEST, err);
    }

    ngx_http_set_ctx(r, ctx, ngx_http_mdm_module);

    args = ngx_http_mdm_api_args(r, "renew_topics");
    if (args == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    id = ctx->ids->elts;

    for (i = 0; i < ctx->ids->nelts; i++) {
        if (ngx_http_mdm_push_arg(args, id[i].data, id[i].len) != NGX_OK) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }
    }

    return ngx_http_mdm_api_eval(r, NGX_HTTP_MDM_SCRIPT_API, 0, args,
                                 ngx_http_mdm_api_renew_topics);
}


/*
 * "ID,ID,...": device ids (a profile goes to the device channel), each
 * once, at most NGX_HTTP_MDM_RENEW_MAX_IDS: every one costs a profile
 * built here, in the event loop.  NULL, why the list is refused, or "!..."
 * for an internal failure.
 */

static const char *
ngx_http_mdm_api_renew_ids(ngx_str_t *list, ngx_array_t *ids)
{
    u_char      *p, *last, *comma;
    ngx_str_t    id, *a;
    ngx_uint_t   i;

    static const char  bad[] = "renew takes device ids (no user channels), "
                               "separated by commas";

    p = list->data;
    last = list->data + list->len;

    while (p < last) {
        comma = ngx_strlchr(p, last, ',');
        if (comma == NULL) {
            comma = last;
        }

        id.data = p;
        id.len = comma - p;
        p = comma + 1;

        if (!ngx_http_mdm_api_valid_id(&id)
            || ngx_strlchr(id.data, id.data + id.len, ':'))
        {
            return bad;
        }

        a = ids->elts;
        for (i = 0; i < ids->nelts; i++) {
            if (a[i].len == id.len
                && ngx_strncmp(a[i].data, id.data, id.len) == 0)
            {
                break;
            }
        }

        if (i < ids->nelts) {
            continue;                   /* one profile per device */
        }

        if (ids->nelts == NGX_HTTP_MDM_RENEW_MAX_IDS) {
            return "renew takes at most 100 devices per call";
        }

        a = ngx_array_push(ids);
        if (a == NULL) {
            return "!out of memory";
        }

        *a = id;
    }

    if (ids->nelts == 0 || list->data[list->len - 1] == ',') {
        return bad;
    }

    return NULL;
}


/* the topics, one per id ("" for an unknown device): now the commands */

static void
ngx_http_mdm_api_renew_topics(ngx_http_request_t *r, redisReply *reply,
    const char *err)
{
    ngx_int_t                  rc;
    ngx_http_mdm_renew_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_mdm_module);

    if (reply == NULL) {
        rc = ngx_http_mdm_api_unavailable(r, err);

    } else if (reply->type != REDIS_REPLY_ARRAY
               || reply->elements != ctx->ids->nelts)
    {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "mdm: API script failed: %*s",
                      (size_t) (reply->type == REDIS_REPLY_ERROR
                                ? reply->len : 0), reply->str);
        rc = ngx_http_mdm_api_error(r, NGX_HTTP_INTERNAL_SERVER_ERROR,
                                    "redis script failed");

    } else {
        rc = ngx_http_mdm_api_renew_queue(r, reply);
    }

    /* NGX_DONE: the second call holds the request until its reply */
    if (rc != NGX_DONE) {
        ngx_http_finalize_request(r, rc);
    }
}


/*
 * Each known device's profile, with its own challenge; signed with
 * mdm_enroll_sign when it is set: in the thread pool (one task signs them
 * all, at most NGX_HTTP_MDM_RENEW_MAX_IDS), or here without one.
 */

static ngx_int_t
ngx_http_mdm_api_renew_queue(ngx_http_request_t *r, redisReply *topics)
{
    ngx_uint_t                   i, nosign;
    redisReply                  *t;
    ngx_pool_cleanup_t          *cln;
    ngx_http_mdm_loc_conf_t     *mlcf;
    ngx_http_mdm_renew_ctx_t    *ctx;
    ngx_http_mdm_renew_item_t   *it;
    ngx_http_mdm_enroll_conf_t  *ecf;

    ctx = ngx_http_get_module_ctx(r, ngx_http_mdm_module);
    mlcf = ngx_http_get_module_loc_conf(r, ngx_http_mdm_module);
    ecf = &mlcf->enroll;

    ctx->items = ngx_pcalloc(r->pool, ctx->ids->nelts
                                      * sizeof(ngx_http_mdm_renew_item_t));
    cln = ngx_pool_cleanup_add(r->pool, 0);
    if (ctx->items == NULL || cln == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    /* the signed DER is freed with the request, whatever becomes of it */
    cln->handler = ngx_http_mdm_api_renew_cleanup;
    cln->data = ctx;

    nosign = (ecf->signer && ecf->thread_pool) ? 1 : 0;

    for (i = 0; i < ctx->ids->nelts; i++) {
        t = topics->element[i];
        it = &ctx->items[i];

        if (t->type != REDIS_REPLY_STRING || t->len == 0) {
            continue;
        }

        /* the reply is freed after this handler: the pool keeps a copy */
        it->topic.len = t->len;
        it->topic.data = ngx_pnalloc(r->pool, t->len);
        if (it->topic.data == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        ngx_memcpy(it->topic.data, t->str, t->len);

        if (ngx_http_mdm_api_renew_profile(r, it, nosign) != NGX_OK) {
            return ngx_http_mdm_api_error(r, NGX_HTTP_INTERNAL_SERVER_ERROR,
                                          "cannot build the renewal "
                                          "profile");
        }
    }

#if (NGX_THREADS)
    if (nosign) {
        return ngx_http_mdm_api_renew_sign_post(r, ctx, ecf->thread_pool);
    }
#endif

    return ngx_http_mdm_api_renew_send(r);
}


/* a new profile: same URLs, the device's topic, a one-time challenge */

static ngx_int_t
ngx_http_mdm_api_renew_profile(ngx_http_request_t *r,
    ngx_http_mdm_renew_item_t *it, ngx_uint_t nosign)
{
    ngx_http_mdm_loc_conf_t    *mlcf;
    ngx_http_mdm_profile_in_t   in;

    mlcf = ngx_http_get_module_loc_conf(r, ngx_http_mdm_module);

    it->uuid = ngx_pnalloc(r->pool, 37);
    if (it->uuid == NULL
        || ngx_http_mdm_enroll_uuid(it->uuid) != NGX_OK
        || ngx_http_mdm_challenge_new(r, &it->challenge) != NGX_OK)
    {
        return NGX_ERROR;
    }

    ngx_memzero(&in, sizeof(ngx_http_mdm_profile_in_t));
    in.topic = it->topic;

    /*
     * Always a one-time challenge, whatever static one is configured: the
     * command waits in Redis for days and names one device, and a static
     * secret has no business in a stored command.
     */
    in.challenge = it->challenge;

    /* signed here when there is a signer and no pool to give it to */
    in.nosign = nosign;

    return ngx_http_mdm_enroll_profile(r->pool, r->connection->log,
                                       &mlcf->enroll, &in, &it->profile);
}


/*
 * ARGV of "renew": how long commands are kept, how long their challenges
 * live, then id, command UUID ("" for an unknown device), command plist,
 * challenge, for each device.
 */

static ngx_int_t
ngx_http_mdm_api_renew_send(ngx_http_request_t *r)
{
    time_t                      ttl;
    ngx_str_t                  *id, none;
    ngx_uint_t                  i;
    ngx_array_t                *args;
    ngx_http_mdm_loc_conf_t    *mlcf;
    ngx_http_mdm_renew_ctx_t   *ctx;
    ngx_http_mdm_scep_conf_t   *scf;
    ngx_http_mdm_renew_item_t  *it;

    ctx = ngx_http_get_module_ctx(r, ngx_http_mdm_module);
    mlcf = ngx_http_get_module_loc_conf(r, ngx_http_mdm_module);
    scf = mlcf->scep;

    /*
     * The device may be offline for days: the challenge lives as long as
     * the command may still be delivered (mdm_result_ttl), at least
     * mdm_scep_challenge_ttl.
     */
    ttl = ngx_max(mlcf->result_ttl, scf->challenge_ttl);

    args = ngx_http_mdm_api_args(r, "renew");
    if (args == NULL
        || ngx_http_mdm_api_push_num(r, args, mlcf->result_ttl) != NGX_OK
        || ngx_http_mdm_api_push_num(r, args, ttl) != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_str_null(&none);
    id = ctx->ids->elts;

    for (i = 0; i < ctx->ids->nelts; i++) {
        it = &ctx->items[i];

        if (ngx_http_mdm_push_arg(args, id[i].data, id[i].len) != NGX_OK) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        if (it->topic.len == 0) {
            if (ngx_http_mdm_push_arg(args, none.data, 0) != NGX_OK
                || ngx_http_mdm_push_arg(args, none.data, 0) != NGX_OK
                || ngx_http_mdm_push_arg(args, none.data, 0) != NGX_OK)
            {
                return NGX_HTTP_INTERNAL_SERVER_ERROR;
            }

            continue;
        }

        if (ngx_http_mdm_api_renew_command(r, it, args) != NGX_OK) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }
    }

    return ngx_http_mdm_api_call(r, args);
}


/* {CommandUUID, Command: {RequestType: InstallProfile, Payload: profile}} */

static ngx_int_t
ngx_http_mdm_api_renew_command(ngx_http_request_t *r,
    ngx_http_mdm_renew_item_t *it, ngx_array_t *args)
{
    plist_t     root, cmd;
    ngx_int_t   rc;
    ngx_str_t   xml, payload;

    if (it->der) {
        payload.data = it->der;
        payload.len = it->der_len;

    } else {
        payload = it->profile;
    }

    root = plist_new_dict();
    cmd = plist_new_dict();
    if (root == NULL || cmd == NULL) {
        plist_free(root);
        plist_free(cmd);
        return NGX_ERROR;
    }

    plist_dict_set_item(cmd, "RequestType",
                        plist_new_string("InstallProfile"));
    plist_dict_set_item(cmd, "Payload",
                        plist_new_data((const char *) payload.data,
                                       payload.len));
    plist_dict_set_item(root, "Command", cmd);
    plist_dict_set_item(root, "CommandUUID",
                        plist_new_string((char *) it->uuid));

    rc = ngx_http_mdm_plist_xml(r->pool, root, &xml);
    plist_free(root);

    if (rc != NGX_OK) {
        return NGX_ERROR;
    }

    if (ngx_http_mdm_push_arg(args, it->uuid, 36) != NGX_OK
        || ngx_http_mdm_push_arg(args, xml.data, xml.len) != NGX_OK
        || ngx_http_mdm_push_arg(args, it->challenge.data, it->challenge.len)
           != NGX_OK)
    {
        return NGX_ERROR;
    }

    return NGX_OK;
}


static void
ngx_http_mdm_api_renew_cleanup(void *data)
{
    ngx_http_mdm_renew_ctx_t  *ctx = data;

    ngx_uint_t  i;

    for (i = 0; i < ctx->ids->nelts; i++) {
        OPENSSL_free(ctx->items[i].der);
        ctx->items[i].der = NULL;
    }
}


#if (NGX_THREADS)

/*
 * One task signs every profile of the call (at most 100 RSA signatures)
 * off the event loop; the request is "blocked" meanwhile, so nginx does
 * not free it under the thread, which touches only the items and signer.
 */

static ngx_int_t
ngx_http_mdm_api_renew_sign_post(ngx_http_request_t *r,
    ngx_http_mdm_renew_ctx_t *ctx, ngx_thread_pool_t *pool)
{
    ngx_thread_task_t        *task;
    ngx_http_mdm_loc_conf_t  *mlcf;

    mlcf = ngx_http_get_module_loc_conf(r, ngx_http_mdm_module);

    task = ngx_thread_task_alloc(r->pool, 0);
    if (task == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ctx->request = r;
    ctx->signer = mlcf->enroll.signer;

    task->ctx = ctx;
    task->handler = ngx_http_mdm_api_renew_sign_thread;
    task->event.data = ctx;
    task->event.handler = ngx_http_mdm_api_renew_sign_done;

    if (ngx_thread_task_post(pool, task) != NGX_OK) {
        /* the pool's queue is full: nginx logged it */
        return ngx_http_mdm_api_error(r, NGX_HTTP_SERVICE_UNAVAILABLE,
                                      "the thread pool's queue is full");
    }

    r->main->blocked++;

    return NGX_DONE;
}


static void
ngx_http_mdm_api_renew_sign_thread(void *data, ngx_log_t *log)
{
    ngx_http_mdm_renew_ctx_t  *ctx = data;

    ngx_uint_t                  i;
    ngx_http_mdm_renew_item_t  *it;

    for (i = 0; i < ctx->ids->nelts; i++) {
        it = &ctx->items[i];

        if (it->profile.len == 0) {
            continue;
        }

        it->der_len = ngx_http_mdm_enroll_sign_der(ctx->signer,
                                                   it->profile.data,
                                                   it->profile.len, &it->der);
        if (it->der_len < 0) {
            ctx->sign_failed = 1;
            break;
        }
    }

    /* OpenSSL's per-thread state: the error queue and the rest */
    ngx_http_mdm_thread_task_end();
}


static void
ngx_http_mdm_api_renew_sign_done(ngx_event_t *ev)
{
    ngx_int_t                  rc;
    ngx_connection_t          *c;
    ngx_http_request_t        *r;
    ngx_http_mdm_renew_ctx_t  *ctx;

    ctx = ev->data;
    r = ctx->request;
    c = r->connection;

    ngx_http_set_log_request(c->log, r);

    r->main->blocked--;

    if (ctx->sign_failed) {
        ngx_log_error(NGX_LOG_ERR, c->log, 0,
                      "mdm: API renew answered 500: signing a renewal "
                      "profile failed (mdm_enroll_sign)");
        rc = ngx_http_mdm_api_error(r, NGX_HTTP_INTERNAL_SERVER_ERROR,
                                    "signing the renewal profiles failed");

    } else {
        rc = ngx_http_mdm_api_renew_send(r);
    }

    if (rc != NGX_DONE) {
        ngx_http_finalize_request(r, rc);
    }

    ngx_http_run_posted_requests(c);
}

#endif
