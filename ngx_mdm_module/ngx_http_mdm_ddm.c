
/*
 * Copyright (C) ngx_mdm contributors
 *
 * The DeclarativeManagement check-in: Endpoint "tokens",
 * "declaration-items", "declaration/<kind>/<Identifier>" and "status",
 * each one call of lua/ddm.lua, which checks the enrollment and its
 * certificate binding as lua/checkin.lua does for every check-in.  Answers
 * are JSON (jansson); a declaration the enrollment does not have is a 404,
 * on which the device deletes its copy.
 */


#include "ngx_http_mdm_ddm.h"
#include "ngx_http_mdm_checkin.h"
#include "ngx_http_mdm_request.h"
#include "ngx_http_mdm_plist.h"
#include "ngx_http_mdm_redis.h"
#include "ngx_http_mdm_scripts.h"
#include "ngx_http_mdm_response.h"


#define NGX_HTTP_MDM_DDM_TOKENS       0
#define NGX_HTTP_MDM_DDM_ITEMS        1
#define NGX_HTTP_MDM_DDM_DECLARATION  2
#define NGX_HTTP_MDM_DDM_STATUS       3


typedef struct {
    ngx_uint_t                 what;
    ngx_str_t                  kind;      /* of a declaration/ endpoint */
    ngx_str_t                  ident;
} ngx_http_mdm_ddm_endpoint_t;


static const char *ngx_http_mdm_ddm_endpoint(ngx_http_mdm_ctx_t *ctx,
    ngx_http_mdm_ddm_endpoint_t *ep);
static const char *ngx_http_mdm_ddm_args(ngx_http_request_t *r,
    ngx_http_mdm_ctx_t *ctx, ngx_http_mdm_ddm_endpoint_t *ep,
    ngx_array_t *args);
static void ngx_http_mdm_ddm_done(ngx_http_request_t *r, redisReply *reply,
    const char *err);
static ngx_int_t ngx_http_mdm_ddm_answer(ngx_http_request_t *r,
    ngx_http_mdm_ctx_t *ctx, redisReply *reply);
static ngx_int_t ngx_http_mdm_ddm_tokens(ngx_http_request_t *r,
    redisReply *token);
static ngx_int_t ngx_http_mdm_ddm_items(ngx_http_request_t *r,
    redisReply *reply);
static ngx_int_t ngx_http_mdm_ddm_declaration(ngx_http_request_t *r,
    ngx_http_mdm_ctx_t *ctx, ngx_http_mdm_ddm_endpoint_t *ep,
    redisReply *json);
static ngx_int_t ngx_http_mdm_ddm_send(ngx_http_request_t *r, json_t *j);


/* the manifest arrays, by kind, in the order lua/ddm.lua names them */
static const char  *ngx_http_mdm_ddm_kinds[][2] = {
    { "activation", "Activations" },
    { "asset", "Assets" },
    { "configuration", "Configurations" },
    { "management", "Management" },
    { NULL, NULL }
};


ngx_int_t
ngx_http_mdm_ddm_checkin(ngx_http_request_t *r, ngx_http_mdm_ctx_t *ctx)
{
    u_char                       *n;
    ngx_int_t                     rc;
    const char                   *reason;
    ngx_array_t                  *args;
    ngx_http_mdm_loc_conf_t      *mlcf;
    ngx_http_mdm_ddm_endpoint_t   ep;

    reason = ngx_http_mdm_ddm_endpoint(ctx, &ep);
    if (reason) {
        return ngx_http_mdm_reject(r, ctx, NGX_HTTP_BAD_REQUEST, reason);
    }

    args = ngx_array_create(r->pool, 32, sizeof(ngx_str_t));
    if (args == NULL
        || ngx_http_mdm_device_keys(r, ctx, args) != NGX_OK
        || ngx_http_mdm_device_argv(r, ctx, args) != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    /* the body for the event; mdm_events_max caps the stream */
    mlcf = ngx_http_get_module_loc_conf(r, ngx_http_mdm_module);

    n = ngx_pnalloc(r->pool, NGX_INT_T_LEN);
    if (n == NULL
        || ngx_http_mdm_push_arg(args, n,
                                 ngx_sprintf(n, "%i", mlcf->events_max) - n)
           != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    reason = ngx_http_mdm_ddm_args(r, ctx, &ep, args);
    if (reason) {
        return ngx_http_mdm_reject(r, ctx, NGX_HTTP_BAD_REQUEST, reason);
    }

    rc = ngx_http_mdm_redis_eval(r, NGX_HTTP_MDM_SCRIPT_DDM,
                                 NGX_HTTP_MDM_DEVICE_NKEYS, args,
                                 ngx_http_mdm_ddm_done);

    return ngx_http_mdm_device_wait(r, ctx, rc);
}


/* Endpoint, checked: NULL, or why it is refused */

static const char *
ngx_http_mdm_ddm_endpoint(ngx_http_mdm_ctx_t *ctx,
    ngx_http_mdm_ddm_endpoint_t *ep)
{
    u_char      *p, *last, *slash;
    ngx_str_t    v;
    ngx_uint_t   i;

    ngx_memzero(ep, sizeof(ngx_http_mdm_ddm_endpoint_t));

    if (ngx_http_mdm_plist_string(ctx->plist, "Endpoint", &v) != NGX_OK
        || v.len == 0)
    {
        return "no Endpoint string";
    }

    if (v.len == sizeof("tokens") - 1
        && ngx_strncmp(v.data, "tokens", v.len) == 0)
    {
        ep->what = NGX_HTTP_MDM_DDM_TOKENS;
        return NULL;
    }

    if (v.len == sizeof("declaration-items") - 1
        && ngx_strncmp(v.data, "declaration-items", v.len) == 0)
    {
        ep->what = NGX_HTTP_MDM_DDM_ITEMS;
        return NULL;
    }

    if (v.len == sizeof("status") - 1
        && ngx_strncmp(v.data, "status", v.len) == 0)
    {
        ep->what = NGX_HTTP_MDM_DDM_STATUS;
        return NULL;
    }

    if (v.len <= sizeof("declaration/") - 1
        || ngx_strncmp(v.data, "declaration/", sizeof("declaration/") - 1)
           != 0)
    {
        return "unknown Endpoint";
    }

    p = v.data + sizeof("declaration/") - 1;
    last = v.data + v.len;

    slash = ngx_strlchr(p, last, '/');
    if (slash == NULL) {
        return "Endpoint declaration/ without kind and Identifier";
    }

    ep->kind.data = p;
    ep->kind.len = slash - p;
    ep->ident.data = slash + 1;
    ep->ident.len = last - (slash + 1);

    for (i = 0; ngx_http_mdm_ddm_kinds[i][0]; i++) {
        if (ep->kind.len == ngx_strlen(ngx_http_mdm_ddm_kinds[i][0])
            && ngx_strncmp(ep->kind.data, ngx_http_mdm_ddm_kinds[i][0],
                           ep->kind.len) == 0)
        {
            break;
        }
    }

    if (ngx_http_mdm_ddm_kinds[i][0] == NULL) {
        return "Endpoint declaration/ with an unknown kind";
    }

    if (!ngx_http_mdm_ddm_valid_id(ep->ident.data, ep->ident.len)) {
        return "Endpoint declaration/ with a bad Identifier";
    }

    ep->what = NGX_HTTP_MDM_DDM_DECLARATION;

    return NULL;
}


static const char *
ngx_http_mdm_ddm_args(ngx_http_request_t *r, ngx_http_mdm_ctx_t *ctx,
    ngx_http_mdm_ddm_endpoint_t *ep, ngx_array_t *args)
{
    ngx_int_t   rc;
    ngx_str_t   data;

    static ngx_str_t  names[] = {
        ngx_string("tokens"), ngx_string("items"),
        ngx_string("declaration"), ngx_string("status")
    };

    if (ngx_http_mdm_push_arg(args, names[ep->what].data,
                              names[ep->what].len) != NGX_OK)
    {
        return "out of memory";
    }

    switch (ep->what) {

    case NGX_HTTP_MDM_DDM_DECLARATION:
        if (ngx_http_mdm_push_arg(args, ep->kind.data, ep->kind.len)
               != NGX_OK
            || ngx_http_mdm_push_arg(args, ep->ident.data, ep->ident.len)
               != NGX_OK)
        {
            return "out of memory";
        }

        return NULL;

    case NGX_HTTP_MDM_DDM_STATUS:
        rc = ngx_http_mdm_plist_data(r->pool, ctx->plist, "Data", &data);
        if (rc != NGX_OK || data.len == 0) {
            return "status without Data";
        }

        return ngx_http_mdm_ddm_status_args(r, &data, args);

    default:
        return NULL;
    }
}


static void
ngx_http_mdm_ddm_done(ngx_http_request_t *r, redisReply *reply,
    const char *err)
{
    ngx_int_t            rc;
    ngx_http_mdm_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_mdm_module);

    rc = ngx_http_mdm_refused(r, ctx, reply);

    if (rc == NGX_DECLINED) {
        rc = ngx_http_mdm_device_reply(r, ctx, reply, err);
    }

    if (rc == NGX_OK) {
        rc = ngx_http_mdm_ddm_answer(r, ctx, reply);
    }

    ngx_http_finalize_request(r, rc);
}


static ngx_int_t
ngx_http_mdm_ddm_answer(ngx_http_request_t *r, ngx_http_mdm_ctx_t *ctx,
    redisReply *reply)
{
    ngx_http_mdm_ddm_endpoint_t  ep;

    /* the Endpoint was checked before the call: the plist still holds it */
    if (ngx_http_mdm_ddm_endpoint(ctx, &ep) != NULL
        || reply->element[1]->type != REDIS_REPLY_STRING)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    switch (ep.what) {

    case NGX_HTTP_MDM_DDM_TOKENS:
        return ngx_http_mdm_ddm_tokens(r, reply->element[1]);

    case NGX_HTTP_MDM_DDM_ITEMS:
        return ngx_http_mdm_ddm_items(r, reply);

    case NGX_HTTP_MDM_DDM_DECLARATION:
        return ngx_http_mdm_ddm_declaration(r, ctx, &ep, reply->element[1]);

    default: /* status: an empty 200, as KMFDDM answers */
        return ngx_http_mdm_send(r, NGX_HTTP_OK, NULL, NULL);
    }
}


static ngx_int_t
ngx_http_mdm_ddm_tokens(ngx_http_request_t *r, redisReply *token)
{
    u_char  now[24];

    ngx_http_mdm_ddm_now(now);

    return ngx_http_mdm_ddm_send(r,
               json_pack("{s:{s:s%,s:s}}", "SyncTokens",
                         "DeclarationsToken", token->str,
                         (size_t) token->len, "Timestamp", (char *) now));
}


/* {"ok", token, id, kind, ServerToken, ...}: all four arrays, [] if empty */

static ngx_int_t
ngx_http_mdm_ddm_items(ngx_http_request_t *r, redisReply *reply)
{
    size_t       i, k;
    json_t      *decls, *lists[4], *item;
    redisReply  *id, *kind, *tok;

    decls = json_object();
    if (decls == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    for (k = 0; k < 4; k++) {
        lists[k] = json_array();
        if (lists[k] == NULL
            || json_object_set_new(decls, ngx_http_mdm_ddm_kinds[k][1],
                                   lists[k]) != 0)
        {
            json_decref(decls);
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }
    }

    for (i = 2; i + 2 < reply->elements; i += 3) {
        id = reply->element[i];
        kind = reply->element[i + 1];
        tok = reply->element[i + 2];

        if (id->type != REDIS_REPLY_STRING || kind->type != REDIS_REPLY_STRING
            || tok->type != REDIS_REPLY_STRING)
        {
            continue;
        }

        for (k = 0; k < 4; k++) {
            if (ngx_strcmp(kind->str, ngx_http_mdm_ddm_kinds[k][0]) == 0) {
                break;
            }
        }

        if (k == 4) {
            continue;
        }

        item = json_pack("{s:s%,s:s%}", "Identifier", id->str,
                         (size_t) id->len, "ServerToken", tok->str,
                         (size_t) tok->len);

        if (item == NULL || json_array_append_new(lists[k], item) != 0) {
            json_decref(decls);
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }
    }

    return ngx_http_mdm_ddm_send(r,
               json_pack("{s:o,s:s%}", "Declarations", decls,
                         "DeclarationsToken", reply->element[1]->str,
                         (size_t) reply->element[1]->len));
}


/* the stored declaration as it is (its JSON was built by the API), or 404 */

static ngx_int_t
ngx_http_mdm_ddm_declaration(ngx_http_request_t *r, ngx_http_mdm_ctx_t *ctx,
    ngx_http_mdm_ddm_endpoint_t *ep, redisReply *json)
{
    ngx_str_t  body;

    if (json->len == 0) {
        /* the protocol's way to say "delete it": worth a line, not an error */
        ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                      "mdm: DeclarativeManagement from enrollment \"%V\": "
                      "no %V declaration \"%V\", answered 404",
                      &ctx->enrollment_id, &ep->kind, &ep->ident);
        return ngx_http_mdm_send(r, NGX_HTTP_NOT_FOUND, NULL, NULL);
    }

    body.len = json->len;
    body.data = ngx_pnalloc(r->pool, body.len);
    if (body.data == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_memcpy(body.data, json->str, body.len);

    return ngx_http_mdm_send(r, NGX_HTTP_OK, "application/json", &body);
}


static ngx_int_t
ngx_http_mdm_ddm_send(ngx_http_request_t *r, json_t *j)
{
    ngx_int_t  rc;
    ngx_str_t  body;

    if (j == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    rc = ngx_http_mdm_ddm_dump(r->pool, j, JSON_COMPACT, &body);
    json_decref(j);

    if (rc != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return ngx_http_mdm_send(r, NGX_HTTP_OK, "application/json", &body);
}


ngx_int_t
ngx_http_mdm_ddm_dump(ngx_pool_t *pool, json_t *j, size_t flags,
    ngx_str_t *out)
{
    size_t  n;

    n = json_dumpb(j, NULL, 0, flags);
    if (n == 0) {
        return NGX_ERROR;
    }

    out->data = ngx_pnalloc(pool, n);
    if (out->data == NULL) {
        return NGX_ERROR;
    }

    out->len = json_dumpb(j, (char *) out->data, n, flags);

    return (out->len == n) ? NGX_OK : NGX_ERROR;
}


ngx_uint_t
ngx_http_mdm_ddm_valid_id(u_char *p, size_t len)
{
    size_t  i;

    if (len == 0 || len > NGX_HTTP_MDM_DDM_ID_MAX) {
        return 0;
    }

    for (i = 0; i < len; i++) {
        /* not strchr(): it would find a NUL, the string's own end */
        if ((p[i] >= 'A' && p[i] <= 'Z') || (p[i] >= 'a' && p[i] <= 'z')
            || (p[i] >= '0' && p[i] <= '9')
            || (p[i] != '\0' && ngx_strchr("._@+:=~-", p[i])))
        {
            continue;
        }

        return 0;
    }

    return 1;
}


const char *
ngx_http_mdm_ddm_kind(const char *type)
{
    size_t       n;
    ngx_uint_t   i;
    const char  *p;

    if (ngx_strncmp(type, "com.apple.", sizeof("com.apple.") - 1) != 0) {
        return NULL;
    }

    p = type + sizeof("com.apple.") - 1;

    for (i = 0; ngx_http_mdm_ddm_kinds[i][0]; i++) {
        n = ngx_strlen(ngx_http_mdm_ddm_kinds[i][0]);

        /* "com.apple.<kind>.<name>": a name must follow */
        if (ngx_strncmp(p, ngx_http_mdm_ddm_kinds[i][0], n) == 0
            && p[n] == '.' && p[n + 1] != '\0')
        {
            return ngx_http_mdm_ddm_kinds[i][0];
        }
    }

    return NULL;
}


void
ngx_http_mdm_ddm_now(u_char *buf)
{
    ngx_tm_t  tm;

    ngx_gmtime(ngx_time(), &tm);

    ngx_sprintf(buf, "%4d-%02d-%02dT%02d:%02d:%02dZ%Z",
                tm.ngx_tm_year, tm.ngx_tm_mon, tm.ngx_tm_mday,
                tm.ngx_tm_hour, tm.ngx_tm_min, tm.ngx_tm_sec);
}
