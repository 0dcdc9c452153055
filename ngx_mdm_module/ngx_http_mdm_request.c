
/*
 * Copyright (C) ngx_mdm contributors
 *
 * The steps every device request takes before its own work:
 * PUT → read body → verify identity on the raw bytes → parse plist →
 * resolve enrollment.
 * A failure is one log line and a 4xx; never 401, which unenrolls devices.
 */


#include "ngx_http_mdm_metrics.h"
#include "ngx_http_mdm_request.h"
#include "ngx_http_mdm_plist.h"
#include "ngx_http_mdm_identity.h"
#include "ngx_http_mdm_enrollment.h"


static ngx_int_t ngx_http_mdm_device_identity(ngx_http_request_t *r,
    ngx_http_mdm_ctx_t *ctx);
static ngx_uint_t ngx_http_mdm_is_word(ngx_str_t *s);


ngx_int_t
ngx_http_mdm_device_read(ngx_http_request_t *r,
    ngx_http_client_body_handler_pt post)
{
    ngx_int_t            rc;
    ngx_http_mdm_ctx_t  *ctx;

    ctx = ngx_pcalloc(r->pool, sizeof(ngx_http_mdm_ctx_t));
    if (ctx == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_http_set_ctx(r, ctx, ngx_http_mdm_module);

    if (r->method != NGX_HTTP_PUT) {
        return ngx_http_mdm_reject(r, ctx, NGX_HTTP_NOT_ALLOWED,
                                   "method is not PUT");
    }

    rc = ngx_http_read_client_request_body(r, post);

    if (rc >= NGX_HTTP_SPECIAL_RESPONSE) {
        return rc;
    }

    return NGX_DONE;
}


ngx_int_t
ngx_http_mdm_device_prepare(ngx_http_request_t *r, ngx_http_mdm_ctx_t *ctx,
    const char *type_key)
{
    ngx_int_t    rc;
    const char  *reason;

    rc = ngx_http_mdm_request_body(r, &ctx->body);
    if (rc != NGX_OK) {
        return ngx_http_mdm_reject(r, ctx, rc == NGX_DECLINED
                                           ? NGX_HTTP_BAD_REQUEST
                                           : NGX_HTTP_INTERNAL_SERVER_ERROR,
                                   rc == NGX_DECLINED ? "empty body"
                                                      : "cannot read body");
    }

    /*
     * Who sent it, from the raw bytes: the signature covers the exact body,
     * and the TLS and header certificates need no body at all.  Only what
     * a device vouched for reaches the XML parser.
     */
    rc = ngx_http_mdm_device_identity(r, ctx);
    if (rc != NGX_OK) {
        return rc;
    }

    ctx->plist = ngx_http_mdm_plist_parse_body(r, &ctx->body, &reason);
    if (ctx->plist == NULL) {
        return ngx_http_mdm_reject(r, ctx, NGX_HTTP_BAD_REQUEST, reason);
    }

    /*
     * Named early, so that every later rejection says what was refused;
     * only a plain word, since it goes into the log.
     */
    if (ngx_http_mdm_plist_string(ctx->plist, type_key, &ctx->message_type)
        != NGX_OK
        || !ngx_http_mdm_is_word(&ctx->message_type))
    {
        ngx_str_null(&ctx->message_type);
    }

    reason = ngx_http_mdm_enrollment_resolve(r, ctx->plist, ctx);
    if (reason) {
        return ngx_http_mdm_reject(r, ctx, NGX_HTTP_BAD_REQUEST, reason);
    }

    return NGX_OK;
}


/*
 * The device certificate, verified, into ctx (has_cert stays 0 with
 * mdm_identity off).  Its binding to an enrollment is checked later, by
 * the script, once the message has been parsed.
 */

static ngx_int_t
ngx_http_mdm_device_identity(ngx_http_request_t *r, ngx_http_mdm_ctx_t *ctx)
{
    ngx_int_t                 rc;
    const char               *reason;
    ngx_http_mdm_loc_conf_t  *mlcf;
    ngx_http_mdm_identity_t   id;

    mlcf = ngx_http_get_module_loc_conf(r, ngx_http_mdm_module);

    if (mlcf->identity->nelts == 0) {
        return NGX_OK;
    }

    ngx_memzero(&id, sizeof(ngx_http_mdm_identity_t));

    rc = ngx_http_mdm_identity_verify(r, mlcf, &ctx->body, &id, &reason);

    if (rc == NGX_DECLINED) {
        ngx_http_mdm_metrics_identity(reason);

        /* never 401: a device that gets one removes its MDM profile */
        return ngx_http_mdm_reject(r, ctx, id.status ? (ngx_int_t) id.status
                                                     : NGX_HTTP_BAD_REQUEST,
                                   reason);
    }

    if (rc != NGX_OK) {
        return ngx_http_mdm_reject(r, ctx, NGX_HTTP_INTERNAL_SERVER_ERROR,
                                   "identity verification failed");
    }

    ngx_memcpy(ctx->cert_hash, id.sha256, sizeof(ctx->cert_hash));
    ctx->cert_not_after = id.not_after;
    ctx->has_cert = 1;

    return NGX_OK;
}


static ngx_uint_t
ngx_http_mdm_is_word(ngx_str_t *s)
{
    ngx_uint_t  i;

    if (s->len == 0 || s->len > 32) {
        return 0;
    }

    for (i = 0; i < s->len; i++) {
        if (!((s->data[i] >= 'A' && s->data[i] <= 'Z')
              || (s->data[i] >= 'a' && s->data[i] <= 'z')))
        {
            return 0;
        }
    }

    return 1;
}


ngx_uint_t
ngx_http_mdm_is_checkin(ngx_http_request_t *r)
{
    size_t      n;
    ngx_str_t  *ct;

    if (r->headers_in.content_type == NULL) {
        return 0;
    }

    ct = &r->headers_in.content_type->value;

    n = sizeof(NGX_HTTP_MDM_CHECKIN_TYPE) - 1;

    if (ct->len < n
        || ngx_strncasecmp(ct->data, (u_char *) NGX_HTTP_MDM_CHECKIN_TYPE, n)
           != 0)
    {
        return 0;
    }

    /* parameters such as "; charset=UTF-8" may follow, nothing else */
    return ct->len == n || ct->data[n] == ';' || ct->data[n] == ' '
           || ct->data[n] == '\t';
}


/*
 * The body as one string.  Bodies over client_body_buffer_size are in a
 * temporary file; reading it back is what nginx's own modules do.
 */

ngx_int_t
ngx_http_mdm_request_body(ngx_http_request_t *r, ngx_str_t *body)
{
    u_char       *p;
    off_t         len;
    ssize_t       n;
    ngx_buf_t    *b;
    ngx_chain_t  *cl;

    if (r->request_body == NULL || r->request_body->bufs == NULL) {
        return NGX_DECLINED;
    }

    len = 0;

    for (cl = r->request_body->bufs; cl; cl = cl->next) {
        len += ngx_buf_size(cl->buf);
    }

    if (len == 0) {
        return NGX_DECLINED;
    }

    cl = r->request_body->bufs;

    if (cl->next == NULL && !cl->buf->in_file) {
        body->data = cl->buf->pos;
        body->len = (size_t) len;
        return NGX_OK;
    }

    p = ngx_pnalloc(r->pool, (size_t) len);
    if (p == NULL) {
        return NGX_ERROR;
    }

    body->data = p;
    body->len = (size_t) len;

    for ( /* void */ ; cl; cl = cl->next) {
        b = cl->buf;

        if (!b->in_file) {
            /* a chunked body ends with an empty buffer (pos NULL) */
            if (b->last != b->pos) {
                p = ngx_cpymem(p, b->pos, b->last - b->pos);
            }
            continue;
        }

        n = ngx_read_file(b->file, p, (size_t) (b->file_last - b->file_pos),
                          b->file_pos);

        if (n != b->file_last - b->file_pos) {
            return NGX_ERROR;
        }

        p += n;
    }

    return NGX_OK;
}


ngx_int_t
ngx_http_mdm_device_keys(ngx_http_request_t *r, ngx_http_mdm_ctx_t *ctx,
    ngx_array_t *args)
{
    u_char     *p;
    ngx_str_t  *a;

    a = ngx_array_push_n(args, NGX_HTTP_MDM_DEVICE_NKEYS);
    if (a == NULL) {
        return NGX_ERROR;
    }

    if (ngx_http_mdm_enrollment_key(r->pool, MDM_KEY_ENR, ctx, 1, &a[0])
           != NGX_OK
        || ngx_http_mdm_enrollment_key(r->pool, MDM_KEY_ENR, ctx, 0, &a[1])
           != NGX_OK)
    {
        return NGX_ERROR;
    }

    p = ngx_pnalloc(r->pool, sizeof(MDM_KEY_CERTIDX) - 1 + 64);
    if (p == NULL) {
        return NGX_ERROR;
    }

    a[2].data = p;
    p = ngx_cpymem(p, MDM_KEY_CERTIDX, sizeof(MDM_KEY_CERTIDX) - 1);
    if (ctx->has_cert) {
        p = ngx_cpymem(p, ctx->cert_hash, 64);
    }
    a[2].len = p - a[2].data;

    ngx_str_set(&a[3], MDM_KEY_EVENTS);

    return NGX_OK;
}


ngx_int_t
ngx_http_mdm_device_argv(ngx_http_request_t *r, ngx_http_mdm_ctx_t *ctx,
    ngx_array_t *args)
{
    u_char                   *p;
    ngx_str_t                *a;
    ngx_time_t               *tp;
    ngx_http_mdm_loc_conf_t  *mlcf;

    static ngx_str_t  modes[] = {
        ngx_string("off"), ngx_string("on"), ngx_string("retro")
    };

    mlcf = ngx_http_get_module_loc_conf(r, ngx_http_mdm_module);

    a = ngx_array_push_n(args, 10);
    p = ngx_pnalloc(r->pool, 2 * NGX_TIME_T_LEN + 3);
    if (a == NULL || p == NULL) {
        return NGX_ERROR;
    }

    a[0] = ctx->enrollment_id;
    a[1] = ctx->enrollment_type;
    a[2] = ctx->device_id;
    a[3] = ctx->user_suffix;

    a[4].data = ctx->cert_hash;
    a[4].len = ctx->has_cert ? 64 : 0;

    a[5].data = p;
    p = ngx_sprintf(p, "%T", ctx->has_cert ? ctx->cert_not_after : 0);
    a[5].len = p - a[5].data;

    a[6] = ctx->has_cert ? modes[mlcf->cert_auth] : modes[0];

    tp = ngx_timeofday();
    a[7].data = p;
    p = ngx_sprintf(p, "%T%03M", tp->sec, tp->msec);
    a[7].len = p - a[7].data;

    a[8] = ctx->body;
    a[9] = r->args;

    return NGX_OK;
}


ngx_int_t
ngx_http_mdm_push_arg(ngx_array_t *args, u_char *data, size_t len)
{
    ngx_str_t  *a;

    a = ngx_array_push(args);
    if (a == NULL) {
        return NGX_ERROR;
    }

    a->data = data;
    a->len = len;

    return NGX_OK;
}


ngx_int_t
ngx_http_mdm_device_reply(ngx_http_request_t *r, ngx_http_mdm_ctx_t *ctx,
    redisReply *reply, const char *err)
{
    u_char       reason[256];
    redisReply  *status, *value;

    if (reply == NULL) {
        ngx_snprintf(reason, sizeof(reason), "redis %s%Z", err);
        return ngx_http_mdm_reject(r, ctx, NGX_HTTP_SERVICE_UNAVAILABLE,
                                   (char *) reason);
    }

    if (reply->type != REDIS_REPLY_ARRAY || reply->elements < 2
        || reply->element[0]->type != REDIS_REPLY_STRING)
    {
        ngx_snprintf(reason, sizeof(reason), "redis script failed: %*s%Z",
                     (size_t) (reply->type == REDIS_REPLY_ERROR
                               ? reply->len : 0),
                     reply->str);
        return ngx_http_mdm_reject(r, ctx, NGX_HTTP_INTERNAL_SERVER_ERROR,
                                   (char *) reason);
    }

    status = reply->element[0];
    value = reply->element[1];

    if (status->len == 3 && ngx_strncmp(status->str, "err", 3) == 0) {
        ngx_snprintf(reason, sizeof(reason), "%*s%Z",
                     (size_t) (value->type == REDIS_REPLY_STRING
                               ? value->len : 0),
                     value->str);
        return ngx_http_mdm_reject(r, ctx, NGX_HTTP_BAD_REQUEST,
                                   (char *) reason);
    }

    return NGX_OK;
}


ngx_int_t
ngx_http_mdm_device_wait(ngx_http_request_t *r, ngx_http_mdm_ctx_t *ctx,
    ngx_int_t rc)
{
    if (rc == NGX_DECLINED) {
        return ngx_http_mdm_reject(r, ctx, NGX_HTTP_SERVICE_UNAVAILABLE,
                                   "redis is not connected");
    }

    if (rc != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    /*
     * A device that hangs up while Redis works is finalized at once (499),
     * as nginx's proxy does; its reply is then dropped by the Redis layer.
     */
    r->read_event_handler = ngx_http_test_reading;

    /* the count taken by reading the body is released in the reply */
    return NGX_DONE;
}


ngx_int_t
ngx_http_mdm_reject(ngx_http_request_t *r, ngx_http_mdm_ctx_t *ctx,
    ngx_int_t status, const char *reason)
{
    ngx_str_t  type, id;

    type = ctx->message_type;
    if (type.len == 0) {
        ngx_str_set(&type, "request");
    }

    id = ctx->enrollment_id;
    if (id.len == 0) {
        ngx_str_set(&id, "-");
    }

    /*
     * At "error", the level nginx logs by default: a device that cannot
     * enroll is what an admin opens the log for.
     */
    ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                  "mdm: %V from enrollment \"%V\" answered %i: %s",
                  &type, &id, status, reason);

    return status;
}
