
/*
 * Copyright (C) ngx_mdm contributors
 *
 * The admin API (mdm_api): NanoMDM's endpoints and JSON, so its tools work
 * unchanged, plus inspection.  HTTP Basic with user "nanomdm" and
 * mdm_api_key; nginx's allow/deny/auth_request can be layered on top.
 *
 * This file routes and authenticates, in that order: a path that is no
 * endpoint is answered 404 without a challenge, and a request that looks
 * like a device's is never answered 401, which would make the device
 * unenroll, when a broad location (location / { mdm_api; }) catches it.
 * The work of each endpoint is one call of lua/api.lua, which answers the
 * status and the JSON body; the endpoint files build its arguments.
 */


#include "ngx_http_mdm_api_private.h"
#include "ngx_http_mdm_redis.h"
#include "ngx_http_mdm_request.h"
#include "ngx_http_mdm_scripts.h"
#include "ngx_http_mdm_response.h"
#include "ngx_http_mdm_enrollment.h"
#include "ngx_http_mdm_util.h"

#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/sha.h>


typedef ngx_int_t (*ngx_http_mdm_api_pt)(ngx_http_request_t *r,
    ngx_http_mdm_api_route_t *rt);


typedef struct {
    ngx_str_t              name;
    ngx_uint_t             max_args;   /* path segments after the name */
    const char            *subs;       /* "" or the only names arg2 (of
                                          enrollments) or arg (of webhooks)
                                          may take, space-separated */
    ngx_uint_t             body;       /* methods whose body is the input */
    ngx_http_mdm_api_pt    handler;    /* NULL: the body handler does it */
} ngx_http_mdm_api_endpoint_t;


static ngx_int_t ngx_http_mdm_api_version(ngx_http_request_t *r,
    ngx_http_mdm_api_route_t *rt);
static ngx_int_t ngx_http_mdm_api_enqueue_method(ngx_http_request_t *r,
    ngx_http_mdm_api_route_t *rt);
static ngx_int_t ngx_http_mdm_api_pushcert(ngx_http_request_t *r,
    ngx_http_mdm_api_route_t *rt);
static ngx_http_mdm_api_endpoint_t *ngx_http_mdm_api_endpoint(
    ngx_http_request_t *r, ngx_http_mdm_api_route_t *rt);
static ngx_uint_t ngx_http_mdm_api_sub(const char *subs, ngx_str_t *s);
static ngx_uint_t ngx_http_mdm_api_from_device(ngx_http_request_t *r);
static ngx_int_t ngx_http_mdm_api_auth(ngx_http_request_t *r,
    ngx_http_mdm_loc_conf_t *mlcf, ngx_uint_t device);
static void ngx_http_mdm_api_body(ngx_http_request_t *r);
static void ngx_http_mdm_api_done(ngx_http_request_t *r, redisReply *reply,
    const char *err);
static ngx_int_t ngx_http_mdm_api_json(ngx_http_request_t *r,
    ngx_uint_t status, json_t *j);
static ngx_uint_t ngx_http_mdm_api_cursor(ngx_str_t *v,
    ngx_uint_t stream_cursor);


static ngx_http_mdm_api_endpoint_t  ngx_http_mdm_api_endpoints[] = {
    { ngx_string("version"), 0, "", 0, ngx_http_mdm_api_version },
    { ngx_string("enqueue"), 1, "", NGX_HTTP_PUT|NGX_HTTP_POST,
      ngx_http_mdm_api_enqueue_method },
    { ngx_string("push"), 1, "", 0, ngx_http_mdm_api_push },
    { ngx_string("enrollments"), 2, "block unblock", 0,
      ngx_http_mdm_api_enrollments },
    { ngx_string("queue"), 2, "", 0, ngx_http_mdm_api_queue },
    { ngx_string("commands"), 1, "", NGX_HTTP_POST,
      ngx_http_mdm_api_commands },
    { ngx_string("templates"), 1, "", 0, ngx_http_mdm_api_templates },
    { ngx_string("blueprints"), 1, "", NGX_HTTP_PUT,
      ngx_http_mdm_api_blueprints },
    { ngx_string("pushcert"), 0, "", NGX_HTTP_PUT, ngx_http_mdm_api_pushcert },
    { ngx_string("webhooks"), 1, "replay", 0, ngx_http_mdm_api_webhooks },
    { ngx_string("renew"), 1, "", 0, ngx_http_mdm_api_renew },
    { ngx_string("challenge"), 0, "", 0, ngx_http_mdm_api_challenge },
    { ngx_string("certificates"), 0, "", 0, ngx_http_mdm_api_certificates },
    { ngx_string("dep"), NGX_HTTP_MDM_API_ANY_ARGS, "",
      NGX_HTTP_PUT|NGX_HTTP_POST|NGX_HTTP_DELETE, ngx_http_mdm_api_dep },
    { ngx_string("ddm"), NGX_HTTP_MDM_API_ANY_ARGS, "", NGX_HTTP_PUT,
      ngx_http_mdm_api_ddm },
    { ngx_string("assets"), 1, "", NGX_HTTP_PUT, ngx_http_mdm_api_assets },
    { ngx_string("vpp"), NGX_HTTP_MDM_API_ANY_ARGS, "",
      NGX_HTTP_PUT|NGX_HTTP_POST, ngx_http_mdm_api_vpp },
    { ngx_null_string, 0, NULL, 0, NULL }
};


ngx_int_t
ngx_http_mdm_api_handler(ngx_http_request_t *r)
{
    ngx_int_t                     rc;
    ngx_http_mdm_loc_conf_t      *mlcf;
    ngx_http_mdm_api_route_t      rt;
    ngx_http_mdm_api_endpoint_t  *ep;

    mlcf = ngx_http_get_module_loc_conf(r, ngx_http_mdm_module);

    /* routing first: what is not an endpoint gets no challenge */
    ep = ngx_http_mdm_api_endpoint(r, &rt);
    if (ep == NULL) {
        return ngx_http_mdm_api_bad(r, NGX_HTTP_NOT_FOUND,
                                    "unknown endpoint");
    }

    rc = ngx_http_mdm_api_auth(r, mlcf, ngx_http_mdm_api_from_device(r));
    if (rc != NGX_OK) {
        return ngx_http_mdm_api_bad(r, rc, (mlcf->api_key.len == 0)
                                           ? "the API is off: no "
                                             "mdm_api_key"
                                           : "wrong or missing API "
                                             "credentials");
    }

    if (r->method & ep->body) {
        rc = ngx_http_read_client_request_body(r, ngx_http_mdm_api_body);
        if (rc >= NGX_HTTP_SPECIAL_RESPONSE) {
            return rc;
        }

        return NGX_DONE;
    }

    if (ngx_http_discard_request_body(r) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    rc = ep->handler(r, &rt);

    if (rc == NGX_DONE) {
        /* held until the reply, as reading a body would have held it */
        r->main->count++;
    }

    return rc;
}


/*
 * ".../version" or ".../v1/ENDPOINT[/ARG[/ARG2]]", wherever the location
 * is mounted: NGX_OK, or NGX_DECLINED for anything else.
 */

ngx_int_t
ngx_http_mdm_api_route(ngx_http_request_t *r, ngx_http_mdm_api_route_t *rt)
{
    u_char     *p, *last, *slash;
    ngx_str_t  *parts[3];
    ngx_uint_t  i;

    ngx_memzero(rt, sizeof(ngx_http_mdm_api_route_t));

    last = r->uri.data + r->uri.len;

    p = ngx_strnstr(r->uri.data, "/v1/", r->uri.len);

    if (p == NULL) {
        if (r->uri.len >= 8 && ngx_strncmp(last - 8, "/version", 8) == 0) {
            ngx_str_set(&rt->endpoint, "version");
            return NGX_OK;
        }

        return NGX_DECLINED;
    }

    p += 4;

    slash = ngx_strlchr(p, last, '/');
    if (slash != NULL) {
        rt->rest.data = slash + 1;
        rt->rest.len = last - (slash + 1);
    }

    parts[0] = &rt->endpoint;
    parts[1] = &rt->arg;
    parts[2] = &rt->arg2;

    for (i = 0; i < 3 && p < last; i++) {
        slash = ngx_strlchr(p, last, '/');
        if (slash == NULL) {
            slash = last;
        }

        parts[i]->data = p;
        parts[i]->len = slash - p;
        p = slash + 1;
    }

    if (rt->endpoint.len == 0) {
        return NGX_DECLINED;
    }

    /* the endpoint decides whether it takes deeper paths */
    rt->deep = (p < last);

    return NGX_OK;
}


/* the endpoint the path names, or NULL: it names none */

static ngx_http_mdm_api_endpoint_t *
ngx_http_mdm_api_endpoint(ngx_http_request_t *r, ngx_http_mdm_api_route_t *rt)
{
    ngx_uint_t                    nargs;
    ngx_http_mdm_api_endpoint_t  *ep;

    if (ngx_http_mdm_api_route(r, rt) != NGX_OK) {
        return NULL;
    }

    nargs = rt->deep ? NGX_HTTP_MDM_API_ANY_ARGS
                     : (rt->arg2.len ? 2 : (rt->arg.len ? 1 : 0));

    for (ep = ngx_http_mdm_api_endpoints; ep->name.len; ep++) {
        if (rt->endpoint.len != ep->name.len
            || ngx_strncmp(rt->endpoint.data, ep->name.data, ep->name.len)
               != 0)
        {
            continue;
        }

        if (nargs > ep->max_args) {
            return NULL;
        }

        /* enrollments/ID/block, webhooks/replay: fixed names */
        if (ep->subs[0]) {
            if (ep->max_args == 2 && nargs == 2
                && !ngx_http_mdm_api_sub(ep->subs, &rt->arg2))
            {
                return NULL;
            }

            if (ep->max_args == 1 && nargs == 1
                && !ngx_http_mdm_api_sub(ep->subs, &rt->arg))
            {
                return NULL;
            }
        }

        return ep;
    }

    return NULL;
}


static ngx_uint_t
ngx_http_mdm_api_sub(const char *subs, ngx_str_t *s)
{
    const char  *p, *end;

    for (p = subs; *p; p = *end ? end + 1 : end) {
        end = strchr(p, ' ');
        if (end == NULL) {
            end = p + ngx_strlen(p);
        }

        if ((size_t) (end - p) == s->len
            && ngx_strncmp(p, s->data, s->len) == 0)
        {
            return 1;
        }
    }

    return 0;
}


/*
 * A device's request: an MDM content type, an MDM client's User-Agent
 * ("MDM/1.0", "MDM-OSX/1.0 mdmclient/..."), or an Mdm-Signature header.
 * Such a request must never be answered 401: the device would unenroll.
 */

static ngx_uint_t
ngx_http_mdm_api_from_device(ngx_http_request_t *r)
{
    ngx_str_t         *v;
    ngx_uint_t         i;
    ngx_list_part_t   *part;
    ngx_table_elt_t   *h;

    static u_char  aspen[] = "application/x-apple-aspen-mdm";

    if (r->headers_in.content_type) {
        v = &r->headers_in.content_type->value;

        if (v->len >= sizeof(aspen) - 1
            && ngx_strncasecmp(v->data, aspen, sizeof(aspen) - 1) == 0)
        {
            return 1;
        }
    }

    if (r->headers_in.user_agent) {
        v = &r->headers_in.user_agent->value;

        if ((v->len >= 4 && ngx_strncmp(v->data, "MDM/", 4) == 0)
            || (v->len >= 8 && ngx_strncmp(v->data, "MDM-OSX/", 8) == 0))
        {
            return 1;
        }
    }

    part = &r->headers_in.headers.part;
    h = part->elts;

    for (i = 0; /* void */; i++) {
        if (i >= part->nelts) {
            if (part->next == NULL) {
                break;
            }

            part = part->next;
            h = part->elts;
            i = 0;
        }

        if (h[i].key.len == sizeof("Mdm-Signature") - 1
            && ngx_strncasecmp(h[i].key.data, (u_char *) "Mdm-Signature",
                               h[i].key.len) == 0)
        {
            return 1;
        }
    }

    return 0;
}


/*
 * NGX_OK, or the status to refuse with.  Off without a key.  The password
 * is compared through SHA-256 digests, so the comparison takes the same
 * time whatever its length and content.  A device is refused with 403 and
 * no challenge.
 */

static ngx_int_t
ngx_http_mdm_api_auth(ngx_http_request_t *r, ngx_http_mdm_loc_conf_t *mlcf,
    ngx_uint_t device)
{
    u_char            got[SHA256_DIGEST_LENGTH], want[SHA256_DIGEST_LENGTH];
    ngx_table_elt_t  *h;

    if (mlcf->api_key.len == 0) {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "mdm: API request refused: no mdm_api_key configured");
        return NGX_HTTP_FORBIDDEN;
    }

    if (ngx_http_auth_basic_user(r) == NGX_OK
        && r->headers_in.user.len == sizeof("nanomdm") - 1
        && ngx_strncmp(r->headers_in.user.data, "nanomdm",
                       r->headers_in.user.len) == 0)
    {
        SHA256(r->headers_in.passwd.data, r->headers_in.passwd.len, got);
        SHA256(mlcf->api_key.data, mlcf->api_key.len, want);

        if (CRYPTO_memcmp(got, want, SHA256_DIGEST_LENGTH) == 0) {
            return NGX_OK;
        }
    }

    if (device) {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "mdm: API request refused with 403, not 401: it looks "
                      "like a device's (MDM content type, User-Agent or "
                      "Mdm-Signature); is a device URL inside an mdm_api "
                      "location?");
        return NGX_HTTP_FORBIDDEN;
    }

    ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                  "mdm: API request refused: %s",
                  r->headers_in.authorization ? "wrong user or key"
                                              : "no Authorization header");

    h = ngx_list_push(&r->headers_out.headers);
    if (h == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    h->hash = 1;
    ngx_str_set(&h->key, "WWW-Authenticate");
    ngx_str_set(&h->value, "Basic realm=\"ngx_mdm\"");

    return NGX_HTTP_UNAUTHORIZED;
}


static ngx_int_t
ngx_http_mdm_api_version(ngx_http_request_t *r, ngx_http_mdm_api_route_t *rt)
{
    if (!(r->method & (NGX_HTTP_GET|NGX_HTTP_HEAD))) {
        return ngx_http_mdm_api_error(r, NGX_HTTP_NOT_ALLOWED,
                                      "version takes GET");
    }

    return ngx_http_mdm_api_json(r, NGX_HTTP_OK,
                                 json_pack("{s:s}", "version",
                                           NGX_HTTP_MDM_VERSION));
}


/* enqueue's body is read only for PUT and POST; anything else is this */

static ngx_int_t
ngx_http_mdm_api_enqueue_method(ngx_http_request_t *r,
    ngx_http_mdm_api_route_t *rt)
{
    return ngx_http_mdm_api_error(r, NGX_HTTP_NOT_ALLOWED,
                                  "enqueue takes PUT or POST");
}


/* GET /v1/pushcert?topic=; the PUT is read as a body first */

static ngx_int_t
ngx_http_mdm_api_pushcert(ngx_http_request_t *r, ngx_http_mdm_api_route_t *rt)
{
    if (r->method != NGX_HTTP_GET) {
        return ngx_http_mdm_api_error(r, NGX_HTTP_NOT_ALLOWED,
                                      "pushcert takes GET or PUT");
    }

    return ngx_http_mdm_api_pushcert_get(r, rt);
}


static void
ngx_http_mdm_api_body(ngx_http_request_t *r)
{
    ngx_int_t                  rc;
    ngx_http_mdm_api_route_t   rt;

    if (ngx_http_mdm_api_route(r, &rt) != NGX_OK) {
        rc = NGX_HTTP_INTERNAL_SERVER_ERROR;

    } else if (ngx_http_mdm_api_is(rt.endpoint, "pushcert")) {
        rc = ngx_http_mdm_api_pushcert_put(r);

    } else if (ngx_http_mdm_api_is(rt.endpoint, "dep")) {
        rc = ngx_http_mdm_api_dep(r, &rt);

    } else if (ngx_http_mdm_api_is(rt.endpoint, "commands")) {
        rc = ngx_http_mdm_api_command_post(r);

    } else if (ngx_http_mdm_api_is(rt.endpoint, "blueprints")) {
        rc = ngx_http_mdm_api_blueprint_put(r);

    } else if (ngx_http_mdm_api_is(rt.endpoint, "ddm")) {
        rc = ngx_http_mdm_api_ddm(r, &rt);

    } else if (ngx_http_mdm_api_is(rt.endpoint, "assets")) {
        rc = ngx_http_mdm_api_assets(r, &rt);

    } else if (ngx_http_mdm_api_is(rt.endpoint, "vpp")) {
        rc = ngx_http_mdm_api_vpp(r, &rt);

    } else {
        rc = ngx_http_mdm_api_enqueue(r);
    }

    if (rc != NGX_DONE) {
        ngx_http_finalize_request(r, rc);
    }
}


/* "DEVICE" or "DEVICE:USER", each part as the device requests allow */

ngx_uint_t
ngx_http_mdm_api_valid_id(ngx_str_t *id)
{
    u_char     *colon;
    ngx_str_t   device, user;

    colon = ngx_strlchr(id->data, id->data + id->len, ':');

    if (colon == NULL) {
        return ngx_http_mdm_enrollment_valid_part(id);
    }

    device.data = id->data;
    device.len = colon - id->data;
    user.data = colon + 1;
    user.len = id->data + id->len - user.data;

    return ngx_http_mdm_enrollment_valid_part(&device)
           && ngx_http_mdm_enrollment_valid_part(&user);
}


/*
 * ?cursor=&limit= (or count=) of a listing, appended to args as cursor ("" for the
 * first page) and limit (def without one, at most
 * NGX_HTTP_MDM_API_MAX_PAGE).  A cursor is a number, or a stream id
 * ("1700000000000-0") for stream listings.  NGX_DECLINED if invalid.
 */

ngx_int_t
ngx_http_mdm_api_page(ngx_http_request_t *r, ngx_array_t *args,
    ngx_uint_t stream_cursor, ngx_int_t def)
{
    ngx_int_t  n, rc;
    ngx_str_t  cursor, limit;

    if (ngx_http_mdm_arg(r, "cursor", &cursor) == NGX_ERROR) {
        return NGX_ERROR;
    }

    /* count= is how earlier versions spelt limit= */
    rc = ngx_http_mdm_arg(r, "limit", &limit);
    if (rc == NGX_DECLINED) {
        rc = ngx_http_mdm_arg(r, "count", &limit);
    }

    if (rc == NGX_ERROR) {
        return NGX_ERROR;
    }

    n = limit.len ? ngx_atoi(limit.data, limit.len) : def;

    if (n <= 0 || n > NGX_HTTP_MDM_API_MAX_PAGE
        || (cursor.len && !ngx_http_mdm_api_cursor(&cursor, stream_cursor)))
    {
        return NGX_DECLINED;
    }

    if (ngx_http_mdm_push_arg(args, cursor.data, cursor.len) != NGX_OK
        || ngx_http_mdm_api_push_num(r, args, n) != NGX_OK)
    {
        return NGX_ERROR;
    }

    return NGX_OK;
}


/* digits (at most 20: a 64-bit SCAN cursor), or digits-digits */

static ngx_uint_t
ngx_http_mdm_api_cursor(ngx_str_t *v, ngx_uint_t stream_cursor)
{
    ngx_uint_t  i, digits, dash;

    digits = 0;
    dash = 0;

    for (i = 0; i < v->len; i++) {
        if (v->data[i] >= '0' && v->data[i] <= '9') {
            if (++digits > 20) {
                return 0;
            }

            continue;
        }

        if (v->data[i] != '-' || !stream_cursor || dash || digits == 0) {
            return 0;
        }

        dash = 1;
        digits = 0;
    }

    return digits > 0 && (dash || !stream_cursor);
}


/* ARGV of lua/api.lua: the operation, the time (ms), then its own */

ngx_array_t *
ngx_http_mdm_api_args(ngx_http_request_t *r, const char *op)
{
    u_char       *p;
    ngx_time_t   *tp;
    ngx_array_t  *args;

    args = ngx_array_create(r->pool, 16, sizeof(ngx_str_t));
    p = ngx_pnalloc(r->pool, NGX_TIME_T_LEN + 3);
    if (args == NULL || p == NULL) {
        return NULL;
    }

    tp = ngx_timeofday();

    if (ngx_http_mdm_push_arg(args, (u_char *) op, ngx_strlen(op)) != NGX_OK
        || ngx_http_mdm_push_arg(args, p,
                                 ngx_sprintf(p, "%T%03M", tp->sec, tp->msec)
                                 - p) != NGX_OK)
    {
        return NULL;
    }

    return args;
}


ngx_int_t
ngx_http_mdm_api_push_num(ngx_http_request_t *r, ngx_array_t *args, int64_t n)
{
    u_char  *p;

    p = ngx_pnalloc(r->pool, NGX_INT64_LEN);
    if (p == NULL) {
        return NGX_ERROR;
    }

    return ngx_http_mdm_push_arg(args, p, ngx_sprintf(p, "%L", n) - p);
}


ngx_int_t
ngx_http_mdm_api_call(ngx_http_request_t *r, ngx_array_t *args)
{
    return ngx_http_mdm_api_eval(r, NGX_HTTP_MDM_SCRIPT_API, 0, args,
                                 ngx_http_mdm_api_done);
}


/* one script call of an API request: NGX_DONE, or the answer to send */

ngx_int_t
ngx_http_mdm_api_eval(ngx_http_request_t *r, ngx_uint_t script,
    ngx_uint_t nkeys, ngx_array_t *args, ngx_http_mdm_redis_done_pt done)
{
    ngx_int_t  rc;

    rc = ngx_http_mdm_redis_eval(r, script, nkeys, args, done);

    if (rc == NGX_DECLINED) {
        return ngx_http_mdm_api_unavailable(r, "is not connected");
    }

    return (rc == NGX_OK) ? NGX_DONE : NGX_HTTP_INTERNAL_SERVER_ERROR;
}


/* Redis could not answer ("redis " + why): 503, and one line */

ngx_int_t
ngx_http_mdm_api_unavailable(ngx_http_request_t *r, const char *why)
{
    u_char  *msg;

    ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                  "mdm: API request answered 503: redis %s", why);

    msg = ngx_pnalloc(r->pool, sizeof("redis ") + ngx_strlen(why));
    if (msg == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_sprintf(msg, "redis %s%Z", why);

    return ngx_http_mdm_api_error(r, NGX_HTTP_SERVICE_UNAVAILABLE,
                                  (const char *) msg);
}


/* {status, JSON body}: the script's JSON goes out as it is */

static void
ngx_http_mdm_api_done(ngx_http_request_t *r, redisReply *reply,
    const char *err)
{
    ngx_int_t    rc;
    ngx_str_t    json;
    redisReply  *status, *body;

    if (reply == NULL) {
        rc = ngx_http_mdm_api_unavailable(r, err);
        goto done;
    }

    if (reply->type != REDIS_REPLY_ARRAY || reply->elements != 2
        || reply->element[0]->type != REDIS_REPLY_INTEGER
        || reply->element[1]->type != REDIS_REPLY_STRING)
    {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "mdm: API script failed: %*s",
                      (size_t) (reply->type == REDIS_REPLY_ERROR
                                ? reply->len : 0), reply->str);
        rc = ngx_http_mdm_api_error(r, NGX_HTTP_INTERNAL_SERVER_ERROR,
                                    "redis script failed");
        goto done;
    }

    status = reply->element[0];
    body = reply->element[1];

    json.len = body->len;
    json.data = ngx_pnalloc(r->pool, json.len);
    if (json.data == NULL) {
        rc = NGX_HTTP_INTERNAL_SERVER_ERROR;
        goto done;
    }

    ngx_memcpy(json.data, body->str, json.len);

    if (status->integer >= 400) {
        ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                      "mdm: API request answered %i: %*s",
                      (ngx_int_t) status->integer,
                      ngx_min(json.len, 256), json.data);
    }

    rc = ngx_http_mdm_send(r, (ngx_uint_t) status->integer,
                           "application/json", &json);

done:

    ngx_http_finalize_request(r, rc);
}


/*
 * An answer before the body was read: the body is discarded first, or on a
 * keep-alive connection it would be taken for the next request.
 */

ngx_int_t
ngx_http_mdm_api_bad(ngx_http_request_t *r, ngx_uint_t status,
    const char *message)
{
    if (ngx_http_discard_request_body(r) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return ngx_http_mdm_api_error(r, status, message);
}


/*
 * {"error": "..."} with its status, so API clients always get JSON.  A
 * refusal of the client's input is logged here, at "info"; refused
 * credentials and Redis failures were logged by those who saw them.
 */

ngx_int_t
ngx_http_mdm_api_error(ngx_http_request_t *r, ngx_uint_t status,
    const char *message)
{
    json_t  *s;

    if (status >= 400 && status < 500 && status != NGX_HTTP_UNAUTHORIZED
        && status != NGX_HTTP_FORBIDDEN)
    {
        ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                      "mdm: API request \"%V\" answered %ui: %s",
                      &r->uri, status, message);
    }

    /* jansson takes UTF-8 only; every message here is ASCII but Redis's */
    s = json_string(message);

    return ngx_http_mdm_api_json(r, status,
                                 json_pack("{s:o}", "error",
                                           s ? s : json_string("failed")));
}


/* sends j, compact, and releases it */

static ngx_int_t
ngx_http_mdm_api_json(ngx_http_request_t *r, ngx_uint_t status, json_t *j)
{
    size_t     n;
    ngx_str_t  body;

    if (j == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    n = json_dumpb(j, NULL, 0, JSON_COMPACT);

    body.data = n ? ngx_pnalloc(r->pool, n) : NULL;
    body.len = body.data ? json_dumpb(j, (char *) body.data, n, JSON_COMPACT)
                         : 0;

    json_decref(j);

    if (body.len == 0 || body.len > n) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return ngx_http_mdm_send(r, status, "application/json", &body);
}
