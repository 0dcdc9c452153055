
/*
 * Copyright (C) ngx_mdm contributors
 *
 * mdm_asset: asset data and legacy profiles (DDM's DataURL, ProfileURL
 * with Authentication Type "MDM") for enrolled devices only.  The device
 * presents its identity certificate as for check-ins (TLS client
 * certificate, or the header a TLS terminator sets: mdm_identity); the
 * certificate must be bound to an enabled enrollment.  The data is a blob
 * stored with PUT /v1/assets/NAME (its Content-Type as given there) or
 * else a file under the location's root or alias (Content-Type from
 * "types").  A refusal is 403, never 401, which would unenroll the device.
 */


#include "ngx_http_mdm_asset.h"
#include "ngx_http_mdm_ddm.h"
#include "ngx_http_mdm_identity.h"
#include "ngx_http_mdm_request.h"
#include "ngx_http_mdm_redis.h"
#include "ngx_http_mdm_scripts.h"
#include "ngx_http_mdm_response.h"


static void ngx_http_mdm_asset_done(ngx_http_request_t *r, redisReply *reply,
    const char *err);
static ngx_int_t ngx_http_mdm_asset_blob(ngx_http_request_t *r,
    redisReply *type, redisReply *data);
static ngx_int_t ngx_http_mdm_asset_file(ngx_http_request_t *r,
    ngx_http_mdm_ctx_t *ctx);


ngx_int_t
ngx_http_mdm_asset_handler(ngx_http_request_t *r)
{
    u_char                   *p, *last, *buf;
    ngx_int_t                 rc;
    ngx_str_t                 name, empty;
    ngx_time_t               *tp;
    const char               *reason;
    ngx_array_t              *args;
    ngx_http_mdm_ctx_t       *ctx;
    ngx_http_mdm_identity_t   id;
    ngx_http_mdm_loc_conf_t  *mlcf;

    ctx = ngx_pcalloc(r->pool, sizeof(ngx_http_mdm_ctx_t));
    if (ctx == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_http_set_ctx(r, ctx, ngx_http_mdm_module);
    ngx_str_set(&ctx->message_type, "asset request");

    if (!(r->method & (NGX_HTTP_GET|NGX_HTTP_HEAD))) {
        return ngx_http_mdm_reject(r, ctx, NGX_HTTP_NOT_ALLOWED,
                                   "method is not GET");
    }

    if (ngx_http_discard_request_body(r) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    mlcf = ngx_http_get_module_loc_conf(r, ngx_http_mdm_module);

    if (mlcf->identity->nelts == 0) {
        return ngx_http_mdm_reject(r, ctx, NGX_HTTP_FORBIDDEN,
                                   "mdm_asset with mdm_identity off serves "
                                   "no one");
    }

    /* a GET has no body to sign: TLS or the terminator's header */
    ngx_memzero(&id, sizeof(ngx_http_mdm_identity_t));
    ngx_str_null(&empty);

    rc = ngx_http_mdm_identity_verify(r, mlcf, &empty, &id, &reason);
    if (rc == NGX_DECLINED) {
        return ngx_http_mdm_reject(r, ctx, NGX_HTTP_FORBIDDEN, reason);
    }

    if (rc != NGX_OK) {
        return ngx_http_mdm_reject(r, ctx, NGX_HTTP_INTERNAL_SERVER_ERROR,
                                   "identity verification failed");
    }

    ngx_memcpy(ctx->cert_hash, id.sha256, sizeof(ctx->cert_hash));
    ctx->cert_not_after = id.not_after;
    ctx->has_cert = 1;

    /* the asset's name: the last path segment */
    last = r->uri.data + r->uri.len;
    for (p = last; p > r->uri.data && p[-1] != '/'; p--) { /* void */ }

    name.data = p;
    name.len = last - p;

    if (!ngx_http_mdm_ddm_valid_id(name.data, name.len)) {
        return ngx_http_mdm_reject(r, ctx, NGX_HTTP_NOT_FOUND,
                                   "no asset of that name "
                                   "([A-Za-z0-9._@+:=~-]{1,64})");
    }

    args = ngx_array_create(r->pool, 8, sizeof(ngx_str_t));
    buf = ngx_pnalloc(r->pool, 2 * NGX_TIME_T_LEN + 4);
    if (args == NULL || buf == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    tp = ngx_timeofday();
    p = ngx_sprintf(buf, "%T%03M", tp->sec, tp->msec);
    last = ngx_sprintf(p, "%T", ctx->cert_not_after);

    if (ngx_http_mdm_push_arg(args, (u_char *) "asset_fetch",
                              sizeof("asset_fetch") - 1) != NGX_OK
        || ngx_http_mdm_push_arg(args, buf, p - buf) != NGX_OK
        || ngx_http_mdm_push_arg(args, ctx->cert_hash, 64) != NGX_OK
        || ngx_http_mdm_push_arg(args, p, last - p) != NGX_OK
        || ngx_http_mdm_push_arg(args, name.data, name.len) != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    rc = ngx_http_mdm_redis_eval(r, NGX_HTTP_MDM_SCRIPT_DDM_API, 0, args,
                                 ngx_http_mdm_asset_done);

    if (rc == NGX_DECLINED) {
        return ngx_http_mdm_reject(r, ctx, NGX_HTTP_SERVICE_UNAVAILABLE,
                                   "redis is not connected");
    }

    if (rc != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    r->main->count++;

    return NGX_DONE;
}


/* {status, "error", why} | {200, "blob", type, data, did} | {200, "file", did} */

static void
ngx_http_mdm_asset_done(ngx_http_request_t *r, redisReply *reply,
    const char *err)
{
    u_char               reason[256];
    ngx_int_t            rc;
    redisReply         **e;
    ngx_http_mdm_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_mdm_module);

    if (reply == NULL) {
        ngx_snprintf(reason, sizeof(reason), "redis %s%Z", err);
        rc = ngx_http_mdm_reject(r, ctx, NGX_HTTP_SERVICE_UNAVAILABLE,
                                 (char *) reason);
        goto done;
    }

    if (reply->type != REDIS_REPLY_ARRAY || reply->elements < 3
        || reply->element[0]->type != REDIS_REPLY_INTEGER
        || reply->element[1]->type != REDIS_REPLY_STRING)
    {
        rc = ngx_http_mdm_reject(r, ctx, NGX_HTTP_INTERNAL_SERVER_ERROR,
                                 "redis script failed");
        goto done;
    }

    e = reply->element;

    if (ngx_strcmp(e[1]->str, "error") == 0) {
        /* never 401: whatever the script says, a device gets a 403 */
        rc = ngx_http_mdm_reject(r, ctx, NGX_HTTP_FORBIDDEN, e[2]->str);
        goto done;
    }

    /* the device id, for the log lines */
    e = &reply->element[reply->elements - 1];
    ctx->enrollment_id.data = ngx_pnalloc(r->pool, (*e)->len);
    if (ctx->enrollment_id.data) {
        ngx_memcpy(ctx->enrollment_id.data, (*e)->str, (*e)->len);
        ctx->enrollment_id.len = (*e)->len;
    }

    e = reply->element;

    if (ngx_strcmp(e[1]->str, "blob") == 0 && reply->elements == 5) {
        rc = ngx_http_mdm_asset_blob(r, e[2], e[3]);

    } else {
        rc = ngx_http_mdm_asset_file(r, ctx);
    }

done:

    ngx_http_finalize_request(r, rc);
}


static ngx_int_t
ngx_http_mdm_asset_blob(ngx_http_request_t *r, redisReply *type,
    redisReply *data)
{
    ngx_str_t   body;
    u_char     *ct;

    body.len = data->len;
    body.data = ngx_pnalloc(r->pool, body.len + 1);
    ct = ngx_pnalloc(r->pool, type->len + 1);
    if (body.data == NULL || ct == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_memcpy(body.data, data->str, body.len);
    ngx_memcpy(ct, type->str, type->len);
    ct[type->len] = '\0';

    if (body.len == 0) {
        r->headers_out.content_type.data = ct;
        r->headers_out.content_type.len = type->len;
        r->headers_out.content_type_len = type->len;
    }

    return ngx_http_mdm_send(r, NGX_HTTP_OK, (const char *) ct, &body);
}


/* the file under root or alias, as nginx's static module would send it */

static ngx_int_t
ngx_http_mdm_asset_file(ngx_http_request_t *r, ngx_http_mdm_ctx_t *ctx)
{
    size_t                     root;
    ngx_int_t                  rc;
    ngx_buf_t                 *b;
    ngx_str_t                  path;
    ngx_chain_t                out;
    ngx_open_file_info_t       of;
    ngx_http_core_loc_conf_t  *clcf;

    if (ngx_http_map_uri_to_path(r, &path, &root, 0) == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    path.len--;   /* the terminating NUL */

    clcf = ngx_http_get_module_loc_conf(r, ngx_http_core_module);

    ngx_memzero(&of, sizeof(ngx_open_file_info_t));
    of.read_ahead = clcf->read_ahead;
    of.directio = NGX_MAX_OFF_T_VALUE;
    of.valid = clcf->open_file_cache_valid;
    of.min_uses = clcf->open_file_cache_min_uses;
    of.errors = clcf->open_file_cache_errors;
    of.events = clcf->open_file_cache_events;

    if (ngx_http_set_disable_symlinks(r, clcf, &path, &of) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (ngx_open_cached_file(clcf->open_file_cache, &path, &of, r->pool)
        != NGX_OK || !of.is_file)
    {
        return ngx_http_mdm_reject(r, ctx, NGX_HTTP_NOT_FOUND,
                                   "no such asset (neither stored nor a "
                                   "file)");
    }

    r->headers_out.status = NGX_HTTP_OK;
    r->headers_out.content_length_n = of.size;
    r->headers_out.last_modified_time = of.mtime;

    if (ngx_http_set_content_type(r) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (of.size == 0) {
        r->header_only = 1;
        return ngx_http_send_header(r);
    }

    b = ngx_calloc_buf(r->pool);
    if (b == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    b->file = ngx_pcalloc(r->pool, sizeof(ngx_file_t));
    if (b->file == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    rc = ngx_http_send_header(r);

    if (rc == NGX_ERROR || rc > NGX_OK || r->header_only) {
        return rc;
    }

    b->file_pos = 0;
    b->file_last = of.size;
    b->in_file = 1;
    b->last_buf = (r == r->main) ? 1 : 0;
    b->last_in_chain = 1;

    b->file->fd = of.fd;
    b->file->name = path;
    b->file->log = r->connection->log;
    b->file->directio = of.is_directio;

    out.buf = b;
    out.next = NULL;

    return ngx_http_output_filter(r, &out);
}
