
/*
 * Copyright (C) ngx_mdm contributors
 *
 * Command reports (mdm_connect): Idle, Acknowledged, Error,
 * CommandFormatError, NotNow.  Each report is one call of lua/connect.lua,
 * which stores it and answers the next queued command, or nothing.
 */


#include "ngx_http_mdm_connect.h"
#include "ngx_http_mdm_checkin.h"
#include "ngx_http_mdm_request.h"
#include "ngx_http_mdm_plist.h"
#include "ngx_http_mdm_redis.h"
#include "ngx_http_mdm_scripts.h"
#include "ngx_http_mdm_response.h"
#include "ngx_http_mdm_enrollment.h"
#include "ngx_http_mdm_inventory.h"


static void ngx_http_mdm_connect_body(ngx_http_request_t *r);
static void ngx_http_mdm_server_body(ngx_http_request_t *r);
static ngx_int_t ngx_http_mdm_connect_call(ngx_http_request_t *r,
    ngx_http_mdm_ctx_t *ctx, ngx_str_t *uuid);
static void ngx_http_mdm_connect_done(ngx_http_request_t *r,
    redisReply *reply, const char *err);
static void ngx_http_mdm_connect_known(ngx_http_request_t *r,
    ngx_http_mdm_ctx_t *ctx, redisReply *known);


static ngx_str_t  ngx_http_mdm_statuses[] = {
    ngx_string("Idle"),
    ngx_string("Acknowledged"),
    ngx_string("Error"),
    ngx_string("CommandFormatError"),
    ngx_string("NotNow"),
    ngx_null_string
};


ngx_int_t
ngx_http_mdm_connect_handler(ngx_http_request_t *r)
{
    return ngx_http_mdm_device_read(r, ngx_http_mdm_connect_body);
}


/* mdm_server: one URL for both, routed by Content-Type as NanoMDM's /mdm */

ngx_int_t
ngx_http_mdm_server_handler(ngx_http_request_t *r)
{
    return ngx_http_mdm_device_read(r, ngx_http_mdm_server_body);
}


static void
ngx_http_mdm_server_body(ngx_http_request_t *r)
{
    ngx_int_t  rc;

    if (ngx_http_mdm_is_checkin(r)) {
        rc = ngx_http_mdm_checkin_process(r);

    } else {
        rc = ngx_http_mdm_connect_process(r);
    }

    if (rc != NGX_DONE) {
        ngx_http_finalize_request(r, rc);
    }
}


static void
ngx_http_mdm_connect_body(ngx_http_request_t *r)
{
    ngx_int_t            rc;
    ngx_http_mdm_ctx_t  *ctx;

    if (ngx_http_mdm_is_checkin(r)) {
        ctx = ngx_http_get_module_ctx(r, ngx_http_mdm_module);
        rc = ngx_http_mdm_reject(r, ctx, NGX_HTTP_UNSUPPORTED_MEDIA_TYPE,
                                 "a check-in sent to the command URL "
                                 "(mdm_connect)");

    } else {
        rc = ngx_http_mdm_connect_process(r);
    }

    if (rc != NGX_DONE) {
        ngx_http_finalize_request(r, rc);
    }
}


ngx_int_t
ngx_http_mdm_connect_process(ngx_http_request_t *r)
{
    ngx_int_t            rc;
    ngx_str_t            uuid, *s;
    ngx_http_mdm_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_mdm_module);

    rc = ngx_http_mdm_device_prepare(r, ctx, "Status");
    if (rc != NGX_OK) {
        return rc;
    }

    for (s = ngx_http_mdm_statuses; s->len; s++) {
        if (s->len == ctx->message_type.len
            && ngx_strncmp(s->data, ctx->message_type.data, s->len) == 0)
        {
            break;
        }
    }

    if (s->len == 0) {
        return ngx_http_mdm_reject(r, ctx, NGX_HTTP_BAD_REQUEST,
                                   ctx->message_type.len
                                   ? "unknown Status"
                                   : "no Status string");
    }

    ngx_str_null(&uuid);

    rc = ngx_http_mdm_plist_string(ctx->plist, "CommandUUID", &uuid);

    if (rc == NGX_ERROR) {
        return ngx_http_mdm_reject(r, ctx, NGX_HTTP_BAD_REQUEST,
                                   "CommandUUID is not a string");
    }

    if (s == &ngx_http_mdm_statuses[0]) {
        /* an Idle report answers no command */
        ngx_str_null(&uuid);

    } else if (!ngx_http_mdm_enrollment_valid_part(&uuid)) {
        return ngx_http_mdm_reject(r, ctx, NGX_HTTP_BAD_REQUEST,
                                   "CommandUUID missing, or with characters "
                                   "outside [A-Za-z0-9._@+-]");
    }

    ctx->command_uuid = uuid;

    return ngx_http_mdm_connect_call(r, ctx, &uuid);
}


/*
 * KEYS: the device keys, the queue.  ARGV: Status, CommandUUID, device argv,
 * the retention settings.
 */

static ngx_int_t
ngx_http_mdm_connect_call(ngx_http_request_t *r, ngx_http_mdm_ctx_t *ctx,
    ngx_str_t *uuid)
{
    ngx_int_t     rc;
    ngx_str_t    *queue;
    ngx_array_t  *args;

    args = ngx_array_create(r->pool, 20, sizeof(ngx_str_t));
    if (args == NULL
        || ngx_http_mdm_device_keys(r, ctx, args) != NGX_OK
        || (queue = ngx_array_push(args)) == NULL
        || ngx_http_mdm_enrollment_key(r->pool, MDM_KEY_QUEUE, ctx, 1, queue)
           != NGX_OK
        || ngx_http_mdm_push_arg(args, ctx->message_type.data,
                                 ctx->message_type.len) != NGX_OK
        || ngx_http_mdm_push_arg(args, uuid->data, uuid->len) != NGX_OK
        || ngx_http_mdm_device_argv(r, ctx, args) != NGX_OK
        || ngx_http_mdm_retention_args(r, args) != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    /* DeviceInformation and SecurityInfo answers update the inventory */
    if (ctx->message_type.len == sizeof("Acknowledged") - 1
        && ngx_strncmp(ctx->message_type.data, "Acknowledged",
                       ctx->message_type.len) == 0
        && ngx_http_mdm_inventory_args(r, ctx->plist, args) != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    rc = ngx_http_mdm_redis_eval(r, NGX_HTTP_MDM_SCRIPT_CONNECT,
                                 NGX_HTTP_MDM_DEVICE_NKEYS + 1, args,
                                 ngx_http_mdm_connect_done);

    return ngx_http_mdm_device_wait(r, ctx, rc);
}


/* {"ok", next command or "", "queued" | "not queued" | ""} */

static void
ngx_http_mdm_connect_done(ngx_http_request_t *r, redisReply *reply,
    const char *err)
{
    ngx_int_t            rc;
    ngx_str_t            cmd;
    redisReply          *next, *known;
    ngx_http_mdm_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_mdm_module);

    rc = ngx_http_mdm_refused(r, ctx, reply);
    if (rc != NGX_DECLINED) {
        goto done;
    }

    rc = ngx_http_mdm_device_reply(r, ctx, reply, err);
    if (rc != NGX_OK) {
        goto done;
    }

    next = reply->element[1];
    known = reply->elements > 2 ? reply->element[2] : NULL;

    if (known && known->type == REDIS_REPLY_STRING) {
        ngx_http_mdm_connect_known(r, ctx, known);
    }

    if (next->type != REDIS_REPLY_STRING || next->len == 0) {
        rc = ngx_http_mdm_send(r, NGX_HTTP_OK, NULL, NULL);
        goto done;
    }

    /* exactly as enqueued; copied since the reply is freed on return */
    cmd.len = next->len;
    cmd.data = ngx_pnalloc(r->pool, cmd.len);
    if (cmd.data == NULL) {
        rc = NGX_HTTP_INTERNAL_SERVER_ERROR;
        goto done;
    }

    ngx_memcpy(cmd.data, next->str, cmd.len);

    rc = ngx_http_mdm_send(r, NGX_HTTP_OK, "application/xml", &cmd);

done:

    ngx_http_finalize_request(r, rc);
}


/*
 * What connect.lua made of a report's CommandUUID.  Both ids were checked
 * against [A-Za-z0-9._@+-] before Redis was asked, so they log as they are.
 */

static void
ngx_http_mdm_connect_known(ngx_http_request_t *r, ngx_http_mdm_ctx_t *ctx,
    redisReply *known)
{
    if (known->len == sizeof("not queued") - 1
        && ngx_strncmp(known->str, "not queued", known->len) == 0)
    {
        /* stored all the same: late reports after a queue was cleared */
        ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                      "mdm: %V report from enrollment \"%V\" for command "
                      "\"%V\", which is not queued: stored",
                      &ctx->message_type, &ctx->enrollment_id,
                      &ctx->command_uuid);
        return;
    }

    if (known->len == sizeof("unknown") - 1
        && ngx_strncmp(known->str, "unknown", known->len) == 0)
    {
        /* a device must not be able to fill Redis with made-up results */
        ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                      "mdm: %V report from enrollment \"%V\" for command "
                      "\"%V\", which was never queued to it: not stored "
                      "(counted in mdm:stats:module unknown_reports)",
                      &ctx->message_type, &ctx->enrollment_id,
                      &ctx->command_uuid);
    }
}
