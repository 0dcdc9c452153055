
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


typedef struct {
    ngx_array_t                *ids;         /* of ngx_str_t */
} ngx_http_mdm_renew_ctx_t;


static const char *ngx_http_mdm_api_renew_ids(ngx_str_t *list,
    ngx_array_t *ids);
static void ngx_http_mdm_api_renew_topics(ngx_http_request_t *r,
    redisReply *reply, const char *err);
static ngx_int_t ngx_http_mdm_api_renew_queue(ngx_http_request_t *r,
    redisReply *topics);
static ngx_int_t ngx_http_mdm_api_renew_command(ngx_http_request_t *r,
    ngx_str_t *topic, ngx_array_t *args);


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
 * ARGV of "renew": how long commands are kept, how long their challenges
 * live, then id, command UUID ("" for an unknown device), command plist,
 * challenge, for each device.
 */

static ngx_int_t
ngx_http_mdm_api_renew_queue(ngx_http_request_t *r, redisReply *topics)
{
    time_t                     ttl;
    ngx_str_t                 *id, topic, none;
    ngx_uint_t                 i;
    ngx_array_t               *args;
    redisReply                *t;
    ngx_http_mdm_loc_conf_t   *mlcf;
    ngx_http_mdm_renew_ctx_t  *ctx;
    ngx_http_mdm_scep_conf_t  *scf;

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
        t = topics->element[i];

        if (ngx_http_mdm_push_arg(args, id[i].data, id[i].len) != NGX_OK) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        if (t->type != REDIS_REPLY_STRING || t->len == 0) {
            if (ngx_http_mdm_push_arg(args, none.data, 0) != NGX_OK
                || ngx_http_mdm_push_arg(args, none.data, 0) != NGX_OK
                || ngx_http_mdm_push_arg(args, none.data, 0) != NGX_OK)
            {
                return NGX_HTTP_INTERNAL_SERVER_ERROR;
            }

            continue;
        }

        /* the reply is freed after this handler: the pool keeps a copy */
        topic.len = t->len;
        topic.data = ngx_pnalloc(r->pool, t->len);
        if (topic.data == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        ngx_memcpy(topic.data, t->str, t->len);

        if (ngx_http_mdm_api_renew_command(r, &topic, args) != NGX_OK) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }
    }

    return ngx_http_mdm_api_call(r, args);
}


/* {CommandUUID, Command: {RequestType: InstallProfile, Payload: profile}} */

static ngx_int_t
ngx_http_mdm_api_renew_command(ngx_http_request_t *r, ngx_str_t *topic,
    ngx_array_t *args)
{
    u_char                     *uuid;
    plist_t                     root, cmd;
    ngx_int_t                   rc;
    ngx_str_t                   profile, xml, challenge;
    ngx_http_mdm_loc_conf_t    *mlcf;
    ngx_http_mdm_profile_in_t   in;

    mlcf = ngx_http_get_module_loc_conf(r, ngx_http_mdm_module);

    uuid = ngx_pnalloc(r->pool, 37);
    if (uuid == NULL
        || ngx_http_mdm_enroll_uuid(uuid) != NGX_OK
        || ngx_http_mdm_challenge_new(r, &challenge) != NGX_OK)
    {
        return NGX_ERROR;
    }

    ngx_memzero(&in, sizeof(ngx_http_mdm_profile_in_t));
    in.topic = *topic;
    /*
     * Always a one-time challenge, whatever static one is configured: the
     * command waits in Redis for days and names one device, and a static
     * secret has no business in a stored command.
     */
    in.challenge = challenge;
    /* the MDM channel vouches for it: no private-key work per device */
    in.nosign = 1;

    if (ngx_http_mdm_enroll_profile(r->pool, r->connection->log,
                                    &mlcf->enroll, &in, &profile)
        != NGX_OK)
    {
        return NGX_ERROR;
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
                        plist_new_data((const char *) profile.data,
                                       profile.len));
    plist_dict_set_item(root, "Command", cmd);
    plist_dict_set_item(root, "CommandUUID", plist_new_string((char *) uuid));

    rc = ngx_http_mdm_plist_xml(r->pool, root, &xml);
    plist_free(root);

    if (rc != NGX_OK) {
        return NGX_ERROR;
    }

    if (ngx_http_mdm_push_arg(args, uuid, 36) != NGX_OK
        || ngx_http_mdm_push_arg(args, xml.data, xml.len) != NGX_OK
        || ngx_http_mdm_push_arg(args, challenge.data, challenge.len)
           != NGX_OK)
    {
        return NGX_ERROR;
    }

    return NGX_OK;
}
