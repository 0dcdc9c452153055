
/*
 * Copyright (C) ngx_mdm contributors
 *
 * The DDM admin API under /v1/ddm/ (KMFDDM's endpoints and shapes) and
 * the asset blobs under /v1/assets/NAME.  Each request is one call of
 * lua/ddm_api.lua; the answers' JSON is built here (jansson).  A
 * declaration's ServerToken is computed here from its content, so any
 * change of it changes the token.
 */


#include "ngx_http_mdm_api_private.h"
#include "ngx_http_mdm_ddm.h"
#include "ngx_http_mdm_request.h"
#include "ngx_http_mdm_response.h"
#include "ngx_http_mdm_scripts.h"
#include "ngx_http_mdm_util.h"

#include <openssl/sha.h>


/* the largest asset blob PUT /v1/assets takes (client_max_body_size too) */
#define NGX_HTTP_MDM_ASSET_MAX  (16 * 1024 * 1024)


typedef struct {
    const char              *name;      /* the path segment after ddm/ */
    ngx_uint_t               methods;
    ngx_uint_t               arg;       /* 0 none, 1 id, 2 enrollment */
    const char              *query;     /* the query arg PUT/DELETE take */
    const char              *get, *put, *del;   /* operations */
} ngx_http_mdm_ddm_route_t;


static ngx_http_mdm_ddm_route_t  ngx_http_mdm_ddm_routes[] = {
    { "declarations", NGX_HTTP_GET|NGX_HTTP_PUT|NGX_HTTP_DELETE, 1, NULL,
      "decl_get", "decl_put", "decl_delete" },
    { "set-declarations", NGX_HTTP_GET|NGX_HTTP_PUT|NGX_HTTP_DELETE, 1,
      "declaration", "setdecl_get", "setdecl_put", "setdecl_delete" },
    { "enrollment-sets", NGX_HTTP_GET|NGX_HTTP_PUT|NGX_HTTP_DELETE, 2,
      "set", "enrset_get", "enrset_put", "enrset_delete" },
    { "declaration-sets", NGX_HTTP_GET, 1, NULL, "declsets_get", NULL, NULL },
    { "declaration-items", NGX_HTTP_GET, 2, NULL, "items_get", NULL, NULL },
    { "tokens", NGX_HTTP_GET, 2, NULL, "tokens_get", NULL, NULL },
    { "declaration-status", NGX_HTTP_GET, 2, NULL, "dstatus_get", NULL,
      NULL },
    { "status-errors", NGX_HTTP_GET, 2, NULL, "errors_get", NULL, NULL },
    { "status-values", NGX_HTTP_GET, 2, NULL, "values_get", NULL, NULL },
    { NULL, 0, 0, NULL, NULL, NULL, NULL }
};


static ngx_int_t ngx_http_mdm_api_ddm_declaration_put(ngx_http_request_t *r);
static const char *ngx_http_mdm_api_ddm_declaration(ngx_http_request_t *r,
    json_t *in, ngx_array_t *args);
static ngx_int_t ngx_http_mdm_api_ddm_copy(ngx_http_request_t *r,
    ngx_array_t *args, const char *s, size_t len);
static ngx_int_t ngx_http_mdm_api_ddm_notify(ngx_http_request_t *r,
    ngx_array_t *args);
static void ngx_http_mdm_api_ddm_done(ngx_http_request_t *r,
    redisReply *reply, const char *err);
static json_t *ngx_http_mdm_api_ddm_shape(ngx_http_request_t *r,
    redisReply *reply, ngx_uint_t *status);
static json_t *ngx_http_mdm_api_ddm_items(redisReply *reply);
static json_t *ngx_http_mdm_api_ddm_list(redisReply *reply, ngx_uint_t how);
static ngx_int_t ngx_http_mdm_api_ddm_json(ngx_http_request_t *r,
    ngx_uint_t status, json_t *j);
static ngx_int_t ngx_http_mdm_api_ddm_call(ngx_http_request_t *r,
    ngx_array_t *args);


ngx_int_t
ngx_http_mdm_api_ddm(ngx_http_request_t *r, ngx_http_mdm_api_route_t *rt)
{
    u_char                    *slash, *last;
    ngx_str_t                  family, arg, q;
    const char                *op;
    ngx_array_t               *args;
    ngx_http_mdm_ddm_route_t  *d;

    last = rt->rest.data + rt->rest.len;
    slash = ngx_strlchr(rt->rest.data, last, '/');

    family.data = rt->rest.data;
    family.len = (slash ? slash : last) - rt->rest.data;
    arg.data = slash ? slash + 1 : last;
    arg.len = last - arg.data;

    for (d = ngx_http_mdm_ddm_routes; d->name; d++) {
        if (family.len == ngx_strlen(d->name)
            && ngx_strncmp(family.data, d->name, family.len) == 0)
        {
            break;
        }
    }

    if (d->name == NULL) {
        return ngx_http_mdm_api_error(r, NGX_HTTP_NOT_FOUND,
                                      "unknown ddm endpoint");
    }

    if (!(r->method & d->methods)) {
        return ngx_http_mdm_api_error(r, NGX_HTTP_NOT_ALLOWED,
                                      "method not allowed here");
    }

    /* PUT /v1/ddm/declarations: the body is the declaration */
    if (d->arg == 1 && d->query == NULL && r->method == NGX_HTTP_PUT) {
        if (arg.len) {
            return ngx_http_mdm_api_error(r, NGX_HTTP_NOT_FOUND,
                                          "PUT /v1/ddm/declarations takes "
                                          "no identifier in the path");
        }

        return ngx_http_mdm_api_ddm_declaration_put(r);
    }

    /* GET /v1/ddm/declarations: the list */
    if (d->arg == 1 && d->query == NULL && arg.len == 0
        && r->method == NGX_HTTP_GET)
    {
        args = ngx_http_mdm_api_args(r, "decl_list");
        return args ? ngx_http_mdm_api_ddm_call(r, args)
                    : NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (d->arg == 1 ? !ngx_http_mdm_ddm_valid_id(arg.data, arg.len)
                    : !ngx_http_mdm_api_valid_id(&arg))
    {
        return ngx_http_mdm_api_error(r, NGX_HTTP_BAD_REQUEST,
                                      d->arg == 1
                                      ? "bad identifier or set name: "
                                        "[A-Za-z0-9._@+:=~-]{1,64}"
                                      : "bad enrollment id");
    }

    op = (r->method == NGX_HTTP_GET) ? d->get
         : (r->method == NGX_HTTP_PUT) ? d->put : d->del;

    args = ngx_http_mdm_api_args(r, op);
    if (args == NULL
        || ngx_http_mdm_push_arg(args, arg.data, arg.len) != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (d->query && r->method != NGX_HTTP_GET) {
        if (ngx_http_mdm_arg(r, d->query, &q) != NGX_OK
            || !ngx_http_mdm_ddm_valid_id(q.data, q.len))
        {
            return ngx_http_mdm_api_error(r, NGX_HTTP_BAD_REQUEST,
                                          d->arg == 1
                                          ? "?declaration= names no valid "
                                            "identifier"
                                          : "?set= names no valid set");
        }

        if (ngx_http_mdm_push_arg(args, q.data, q.len) != NGX_OK) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }
    }

    if (ngx_strcmp(op, "values_get") == 0) {
        if (ngx_http_mdm_arg(r, "prefix", &q) == NGX_ERROR
            || ngx_http_mdm_push_arg(args, q.data, q.len) != NGX_OK)
        {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }
    }

    if (r->method != NGX_HTTP_GET
        && ngx_http_mdm_api_ddm_notify(r, args) != NGX_OK)
    {
        return ngx_http_mdm_api_error(r, NGX_HTTP_BAD_REQUEST,
                                      "nonotify is 1, true, yes, 0, false "
                                      "or no");
    }

    return ngx_http_mdm_api_ddm_call(r, args);
}


/* ?nonotify=1 (KMFDDM's): store the change, tell no device */

static ngx_int_t
ngx_http_mdm_api_ddm_notify(ngx_http_request_t *r, ngx_array_t *args)
{
    ngx_int_t  off;
    ngx_str_t  v;

    ngx_http_mdm_arg(r, "nonotify", &v);
    off = ngx_http_mdm_flag(&v);

    if (off == NGX_ERROR) {
        return NGX_ERROR;
    }

    return ngx_http_mdm_push_arg(args, (u_char *) (off ? "0" : "1"), 1);
}


static ngx_int_t
ngx_http_mdm_api_ddm_declaration_put(ngx_http_request_t *r)
{
    json_t        *in;
    ngx_str_t      body;
    const char    *reason;
    ngx_array_t   *args;
    json_error_t   jerr;

    if (ngx_http_mdm_request_body(r, &body) != NGX_OK) {
        return ngx_http_mdm_api_error(r, NGX_HTTP_BAD_REQUEST,
                                      "no declaration in the body");
    }

    in = json_loadb((const char *) body.data, body.len,
                    JSON_REJECT_DUPLICATES, &jerr);
    if (in == NULL) {
        return ngx_http_mdm_api_error(r, NGX_HTTP_BAD_REQUEST,
                                      "the body is not JSON");
    }

    args = ngx_http_mdm_api_args(r, "decl_put");

    reason = args ? ngx_http_mdm_api_ddm_declaration(r, in, args)
                  : "out of memory";
    json_decref(in);

    if (reason) {
        return ngx_http_mdm_api_error(r, NGX_HTTP_BAD_REQUEST, reason);
    }

    if (ngx_http_mdm_api_ddm_notify(r, args) != NGX_OK) {
        return ngx_http_mdm_api_error(r, NGX_HTTP_BAD_REQUEST,
                                      "nonotify is 1, true, yes, 0, false "
                                      "or no");
    }

    return ngx_http_mdm_api_ddm_call(r, args);
}


/*
 * Checks {Type, Identifier, Payload} and appends identifier, kind, Type,
 * ServerToken and the declaration's JSON as the device gets it.  The
 * ServerToken is the SHA-256 of the canonical (sorted, compact) JSON of
 * the three, cut to 32 hex digits: the same content, the same token.
 */

static const char *
ngx_http_mdm_api_ddm_declaration(ngx_http_request_t *r, json_t *in,
    ngx_array_t *args)
{
    u_char       md[SHA256_DIGEST_LENGTH], *hex;
    json_t      *type, *ident, *payload, *canon, *v;
    ngx_int_t    rc;
    ngx_str_t    c, out;
    const char  *kind, *key;

    type = json_object_get(in, "Type");
    ident = json_object_get(in, "Identifier");
    payload = json_object_get(in, "Payload");

    if (!json_is_object(in)) {
        return "a declaration is a JSON object";
    }

    if (!json_is_string(type)
        || (kind = ngx_http_mdm_ddm_kind(json_string_value(type))) == NULL)
    {
        return "Type is no com.apple.{activation,asset,configuration,"
               "management}.* string";
    }

    if (!json_is_string(ident)
        || !ngx_http_mdm_ddm_valid_id((u_char *) json_string_value(ident),
                                      json_string_length(ident)))
    {
        return "Identifier is no [A-Za-z0-9._@+:=~-]{1,64} string";
    }

    if (!json_is_object(payload)) {
        return "Payload is no object";
    }

    json_object_foreach(in, key, v) {
        if (ngx_strcmp(key, "Type") && ngx_strcmp(key, "Identifier")
            && ngx_strcmp(key, "Payload") && ngx_strcmp(key, "ServerToken"))
        {
            return "a declaration has Type, Identifier, Payload (and "
                   "ServerToken, which the server sets) only";
        }
    }

    canon = json_pack("{s:O,s:O,s:O}", "Type", type, "Identifier", ident,
                      "Payload", payload);
    if (canon == NULL) {
        return "out of memory";
    }

    rc = ngx_http_mdm_ddm_dump(r->pool, canon, JSON_COMPACT|JSON_SORT_KEYS,
                               &c);
    if (rc != NGX_OK) {
        json_decref(canon);
        return "out of memory";
    }

    SHA256(c.data, c.len, md);

    hex = ngx_pnalloc(r->pool, 32);
    if (hex == NULL) {
        json_decref(canon);
        return "out of memory";
    }

    ngx_hex_dump(hex, md, 16);

    rc = json_object_set_new(canon, "ServerToken",
                             json_stringn((char *) hex, 32));
    if (rc == 0) {
        rc = ngx_http_mdm_ddm_dump(r->pool, canon,
                                   JSON_COMPACT|JSON_SORT_KEYS, &out);
    }

    json_decref(canon);

    /* copies: the arguments outlive the parsed body */
    if (rc != NGX_OK
        || ngx_http_mdm_api_ddm_copy(r, args, json_string_value(ident),
                                     json_string_length(ident)) != NGX_OK
        || ngx_http_mdm_push_arg(args, (u_char *) kind, ngx_strlen(kind))
           != NGX_OK
        || ngx_http_mdm_api_ddm_copy(r, args, json_string_value(type),
                                     json_string_length(type)) != NGX_OK
        || ngx_http_mdm_push_arg(args, hex, 32) != NGX_OK
        || ngx_http_mdm_push_arg(args, out.data, out.len) != NGX_OK)
    {
        return "out of memory";
    }

    return NULL;
}


static ngx_int_t
ngx_http_mdm_api_ddm_copy(ngx_http_request_t *r, ngx_array_t *args,
    const char *s, size_t len)
{
    u_char  *p;

    p = ngx_pnalloc(r->pool, len);
    if (p == NULL) {
        return NGX_ERROR;
    }

    ngx_memcpy(p, s, len);

    return ngx_http_mdm_push_arg(args, p, len);
}


/* /v1/assets/NAME: GET the metadata, PUT the blob, DELETE */

ngx_int_t
ngx_http_mdm_api_assets(ngx_http_request_t *r, ngx_http_mdm_api_route_t *rt)
{
    u_char        md[SHA256_DIGEST_LENGTH], *hex;
    ngx_str_t     body, type;
    ngx_array_t  *args;

    if (!ngx_http_mdm_ddm_valid_id(rt->arg.data, rt->arg.len)) {
        return ngx_http_mdm_api_error(r, NGX_HTTP_BAD_REQUEST,
                                      "bad asset name: "
                                      "[A-Za-z0-9._@+:=~-]{1,64}");
    }

    if (r->method == NGX_HTTP_GET || r->method == NGX_HTTP_DELETE) {
        args = ngx_http_mdm_api_args(r, r->method == NGX_HTTP_GET
                                        ? "asset_get" : "asset_delete");
        if (args == NULL
            || ngx_http_mdm_push_arg(args, rt->arg.data, rt->arg.len)
               != NGX_OK)
        {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        return ngx_http_mdm_api_ddm_call(r, args);
    }

    if (r->method != NGX_HTTP_PUT) {
        return ngx_http_mdm_api_error(r, NGX_HTTP_NOT_ALLOWED,
                                      "assets take GET, PUT or DELETE");
    }

    if (ngx_http_mdm_request_body(r, &body) != NGX_OK) {
        return ngx_http_mdm_api_error(r, NGX_HTTP_BAD_REQUEST,
                                      "no asset data in the body");
    }

    if (body.len > NGX_HTTP_MDM_ASSET_MAX) {
        return ngx_http_mdm_api_error(r, NGX_HTTP_REQUEST_ENTITY_TOO_LARGE,
                                      "an asset is at most 16 MiB");
    }

    /* what the device will be told to expect: the type it was given */
    if (r->headers_in.content_type == NULL
        || r->headers_in.content_type->value.len == 0
        || r->headers_in.content_type->value.len > 255)
    {
        return ngx_http_mdm_api_error(r, NGX_HTTP_BAD_REQUEST,
                                      "an asset needs its Content-Type");
    }

    type = r->headers_in.content_type->value;

    SHA256(body.data, body.len, md);

    hex = ngx_pnalloc(r->pool, 2 * SHA256_DIGEST_LENGTH);
    args = ngx_http_mdm_api_args(r, "asset_put");

    if (hex == NULL || args == NULL
        || ngx_http_mdm_push_arg(args, rt->arg.data, rt->arg.len) != NGX_OK
        || ngx_http_mdm_push_arg(args, type.data, type.len) != NGX_OK
        || ngx_http_mdm_push_arg(args, hex,
                                 ngx_hex_dump(hex, md, sizeof(md)) - hex)
           != NGX_OK
        || ngx_http_mdm_push_arg(args, body.data, body.len) != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return ngx_http_mdm_api_ddm_call(r, args);
}


static ngx_int_t
ngx_http_mdm_api_ddm_call(ngx_http_request_t *r, ngx_array_t *args)
{
    return ngx_http_mdm_api_eval(r, NGX_HTTP_MDM_SCRIPT_DDM_API, 0, args,
                                 ngx_http_mdm_api_ddm_done);
}


static void
ngx_http_mdm_api_ddm_done(ngx_http_request_t *r, redisReply *reply,
    const char *err)
{
    json_t      *j;
    ngx_int_t    rc;
    ngx_uint_t   status;

    if (reply == NULL) {
        ngx_http_finalize_request(r, ngx_http_mdm_api_unavailable(r, err));
        return;
    }

    if (reply->type != REDIS_REPLY_ARRAY || reply->elements < 2
        || reply->element[0]->type != REDIS_REPLY_INTEGER
        || reply->element[1]->type != REDIS_REPLY_STRING)
    {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "mdm: DDM API script failed: %*s",
                      (size_t) (reply->type == REDIS_REPLY_ERROR
                                ? reply->len : 0), reply->str);
        ngx_http_finalize_request(r,
            ngx_http_mdm_api_error(r, NGX_HTTP_INTERNAL_SERVER_ERROR,
                                   "redis script failed"));
        return;
    }

    status = (ngx_uint_t) reply->element[0]->integer;

    if (ngx_strcmp(reply->element[1]->str, "error") == 0
        && reply->elements > 2
        && reply->element[2]->type == REDIS_REPLY_STRING)
    {
        ngx_http_finalize_request(r,
            ngx_http_mdm_api_error(r, status, reply->element[2]->str));
        return;
    }

    if (ngx_strcmp(reply->element[1]->str, "empty") == 0) {
        ngx_http_finalize_request(r,
            ngx_http_mdm_send(r, status, NULL, NULL));
        return;
    }

    j = ngx_http_mdm_api_ddm_shape(r, reply, &status);

    rc = ngx_http_mdm_api_ddm_json(r, status, j);

    ngx_http_finalize_request(r, rc);
}


static json_t *
ngx_http_mdm_api_ddm_shape(ngx_http_request_t *r, redisReply *reply,
    ngx_uint_t *status)
{
    char        *shape;
    redisReply  **e;

    shape = reply->element[1]->str;
    e = reply->element;

    if (ngx_strcmp(shape, "raw") == 0 && reply->elements == 3) {
        return json_loadb(e[2]->str, e[2]->len, 0, NULL);
    }

    if (ngx_strcmp(shape, "list") == 0) {
        return ngx_http_mdm_api_ddm_list(reply, 0);
    }

    if (ngx_strcmp(shape, "jsons") == 0) {
        return ngx_http_mdm_api_ddm_list(reply, 1);
    }

    if (ngx_strcmp(shape, "dstatus") == 0) {
        return ngx_http_mdm_api_ddm_list(reply, 2);
    }

    if (ngx_strcmp(shape, "pairs") == 0) {
        return ngx_http_mdm_api_ddm_list(reply, 3);
    }

    if (ngx_strcmp(shape, "tokens") == 0 && reply->elements == 3) {
        return json_pack("{s:{s:s}}", "SyncTokens", "DeclarationsToken",
                         e[2]->str);
    }

    if (ngx_strcmp(shape, "items") == 0) {
        return ngx_http_mdm_api_ddm_items(reply);
    }

    if (ngx_strcmp(shape, "asset") == 0 && reply->elements == 6) {
        return json_pack("{s:s,s:s,s:I,s:I}", "content_type", e[2]->str,
                         "sha256", e[3]->str,
                         "size", (json_int_t) ngx_atoof((u_char *) e[4]->str,
                                                        e[4]->len),
                         "updated_at",
                         (json_int_t) ngx_atoof((u_char *) e[5]->str,
                                                e[5]->len));
    }

    ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                  "mdm: DDM API script answered an unknown shape");
    *status = NGX_HTTP_INTERNAL_SERVER_ERROR;

    return json_pack("{s:s}", "error", "redis script failed");
}


/* as the device would get it, without the Timestamp */

static json_t *
ngx_http_mdm_api_ddm_items(redisReply *reply)
{
    size_t       i, k;
    json_t      *decls, *list;
    redisReply  **e;

    static const char  *kinds[][2] = {
        { "activation", "Activations" }, { "asset", "Assets" },
        { "configuration", "Configurations" }, { "management", "Management" }
    };

    e = reply->element;

    decls = json_pack("{s:[],s:[],s:[],s:[]}", "Activations", "Assets",
                      "Configurations", "Management");
    if (decls == NULL || reply->elements < 3) {
        json_decref(decls);
        return NULL;
    }

    for (i = 3; i + 2 < reply->elements; i += 3) {
        for (k = 0; k < 4; k++) {
            if (ngx_strcmp(e[i + 1]->str, kinds[k][0]) == 0) {
                list = json_object_get(decls, kinds[k][1]);
                json_array_append_new(list,
                    json_pack("{s:s,s:s}", "Identifier", e[i]->str,
                              "ServerToken", e[i + 2]->str));
            }
        }
    }

    return json_pack("{s:o,s:s}", "Declarations", decls,
                     "DeclarationsToken", e[2]->str);
}


/*
 * how 0: strings; 1: JSON documents; 2: status JSON + the ServerToken now
 * ("current"); 3: path/value pairs
 */

static json_t *
ngx_http_mdm_api_ddm_list(redisReply *reply, ngx_uint_t how)
{
    size_t       i;
    json_t      *a, *v, *tok;
    redisReply  **e;

    a = json_array();
    if (a == NULL) {
        return NULL;
    }

    e = reply->element;

    for (i = 2; i < reply->elements; i++) {
        if (e[i]->type != REDIS_REPLY_STRING) {
            continue;
        }

        switch (how) {

        case 0:
            v = json_stringn(e[i]->str, e[i]->len);
            break;

        case 1:
            v = json_loadb(e[i]->str, e[i]->len, 0, NULL);
            break;

        case 2:
            if (i + 1 >= reply->elements) {
                v = NULL;
                break;
            }

            v = json_loadb(e[i]->str, e[i]->len, 0, NULL);
            tok = json_object_get(v, "server-token");
            i++;

            if (json_is_object(v)) {
                json_object_set_new(v, "current",
                    json_boolean(json_is_string(tok)
                                 && ngx_strcmp(json_string_value(tok),
                                               e[i]->str) == 0));
            }

            break;

        default:
            if (i + 1 >= reply->elements) {
                v = NULL;
                break;
            }

            v = json_pack("{s:s%,s:o?}", "path", e[i]->str,
                          (size_t) e[i]->len, "value",
                          json_loadb(e[i + 1]->str, e[i + 1]->len,
                                     JSON_DECODE_ANY, NULL));
            i++;
        }

        if (v == NULL || json_array_append_new(a, v) != 0) {
            json_decref(a);
            return NULL;
        }
    }

    return a;
}


static ngx_int_t
ngx_http_mdm_api_ddm_json(ngx_http_request_t *r, ngx_uint_t status,
    json_t *j)
{
    ngx_int_t  rc;
    ngx_str_t  body;

    if (j == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    rc = ngx_http_mdm_ddm_dump(r->pool, j, JSON_COMPACT|JSON_ENCODE_ANY,
                               &body);
    json_decref(j);

    if (rc != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return ngx_http_mdm_send(r, status, "application/json", &body);
}
