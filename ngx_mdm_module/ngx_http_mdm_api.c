
/*
 * Copyright (C) ngx_mdm contributors
 *
 * The admin API (mdm_api): NanoMDM's endpoints and JSON, so its tools work
 * unchanged, plus inspection.  HTTP Basic with user "nanomdm" and
 * mdm_api_key; nginx's allow/deny/auth_request can be layered on top.
 * The work of each endpoint is one call of lua/api.lua, which answers the
 * status and the JSON body.
 */


#include "ngx_http_mdm_api.h"
#include "ngx_http_mdm_plist.h"
#include "ngx_http_mdm_redis.h"
#include "ngx_http_mdm_request.h"
#include "ngx_http_mdm_scripts.h"
#include "ngx_http_mdm_response.h"
#include "ngx_http_mdm_enrollment.h"

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/sha.h>
#include <openssl/x509.h>


/* what one enqueue or push may name */
#define NGX_HTTP_MDM_API_MAX_IDS      10000

/* ten years: longer than any device lives */
#define NGX_HTTP_MDM_API_MAX_EXPIRES  (10 * 365 * 86400)


typedef struct {
    ngx_str_t        endpoint;     /* "enqueue", "queue", ... */
    ngx_str_t        arg;          /* the path segment after it */
    ngx_str_t        arg2;         /* the one after that */
} ngx_http_mdm_api_route_t;


static ngx_int_t ngx_http_mdm_api_auth(ngx_http_request_t *r,
    ngx_http_mdm_loc_conf_t *mlcf);
static ngx_int_t ngx_http_mdm_api_route(ngx_http_request_t *r,
    ngx_http_mdm_api_route_t *rt);
static ngx_int_t ngx_http_mdm_api_dispatch(ngx_http_request_t *r,
    ngx_http_mdm_api_route_t *rt);
static void ngx_http_mdm_api_body(ngx_http_request_t *r);
static ngx_int_t ngx_http_mdm_api_pushcert(ngx_http_request_t *r);
static const char *ngx_http_mdm_api_pem(ngx_http_request_t *r,
    ngx_str_t *body, ngx_array_t *args);
static ngx_int_t ngx_http_mdm_api_bio_arg(ngx_http_request_t *r, BIO *bio,
    ngx_array_t *args);
static int ngx_http_mdm_api_no_password(char *buf, int size, int rwflag,
    void *u);
static ngx_int_t ngx_http_mdm_api_enqueue(ngx_http_request_t *r);
static const char *ngx_http_mdm_api_command(ngx_http_request_t *r,
    plist_t root, ngx_str_t *body, ngx_str_t *uuid, ngx_str_t *rtype);
static ngx_int_t ngx_http_mdm_api_ids(ngx_http_request_t *r, ngx_str_t *list,
    ngx_array_t *args);
static ngx_uint_t ngx_http_mdm_api_valid_id(ngx_str_t *id);
static ngx_array_t *ngx_http_mdm_api_args(ngx_http_request_t *r,
    const char *op);
static ngx_int_t ngx_http_mdm_api_call(ngx_http_request_t *r,
    ngx_array_t *args);
static void ngx_http_mdm_api_done(ngx_http_request_t *r, redisReply *reply,
    const char *err);
static ngx_int_t ngx_http_mdm_api_error(ngx_http_request_t *r,
    ngx_uint_t status, const char *message);
static ngx_int_t ngx_http_mdm_api_refuse(ngx_http_request_t *r,
    ngx_uint_t status, const char *message);
static ngx_int_t ngx_http_mdm_api_arg(ngx_http_request_t *r, const char *name,
    ngx_str_t *value);
static ngx_int_t ngx_http_mdm_api_flag(ngx_str_t *v);


ngx_int_t
ngx_http_mdm_api_handler(ngx_http_request_t *r)
{
    ngx_int_t                  rc;
    ngx_http_mdm_loc_conf_t   *mlcf;
    ngx_http_mdm_api_route_t   rt;

    mlcf = ngx_http_get_module_loc_conf(r, ngx_http_mdm_module);

    rc = ngx_http_mdm_api_auth(r, mlcf);
    if (rc != NGX_OK) {
        return ngx_http_mdm_api_refuse(r, rc, rc == NGX_HTTP_FORBIDDEN
                                              ? "the API is off: no "
                                                "mdm_api_key"
                                              : "wrong or missing API "
                                                "credentials");
    }

    if (ngx_http_mdm_api_route(r, &rt) != NGX_OK) {
        return ngx_http_mdm_api_refuse(r, NGX_HTTP_NOT_FOUND,
                                       "unknown endpoint");
    }

    if ((rt.endpoint.len == 7
         && ngx_strncmp(rt.endpoint.data, "enqueue", 7) == 0)
        || (rt.endpoint.len == 8 && r->method == NGX_HTTP_PUT
            && ngx_strncmp(rt.endpoint.data, "pushcert", 8) == 0))
    {
        if (!(r->method & (NGX_HTTP_PUT|NGX_HTTP_POST))) {
            return ngx_http_mdm_api_refuse(r, NGX_HTTP_NOT_ALLOWED,
                                           "enqueue takes PUT or POST");
        }

        /* 6: nothing may follow the id list */
        if (rt.arg2.len) {
            return ngx_http_mdm_api_refuse(r, NGX_HTTP_NOT_FOUND,
                                           "unknown endpoint");
        }

        rc = ngx_http_read_client_request_body(r, ngx_http_mdm_api_body);
        if (rc >= NGX_HTTP_SPECIAL_RESPONSE) {
            return rc;
        }

        return NGX_DONE;
    }

    if (ngx_http_discard_request_body(r) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    rc = ngx_http_mdm_api_dispatch(r, &rt);

    if (rc == NGX_DONE) {
        /* held until the reply, as reading a body would have held it */
        r->main->count++;
    }

    return rc;
}


/*
 * NGX_OK, or the status to refuse with.  Off without a key.  The password
 * is compared through SHA-256 digests, so the comparison takes the same
 * time whatever its length and content.
 */

static ngx_int_t
ngx_http_mdm_api_auth(ngx_http_request_t *r, ngx_http_mdm_loc_conf_t *mlcf)
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


/*
 * ".../version" or ".../v1/ENDPOINT[/ARG[/ARG2]]", wherever the location
 * is mounted: NGX_OK, or NGX_DECLINED for anything else.
 */

static ngx_int_t
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

    if (p < last || rt->endpoint.len == 0) {
        return NGX_DECLINED;
    }

    return NGX_OK;
}


#define ngx_http_mdm_api_is(s, name)                                         \
    ((s).len == sizeof(name) - 1 && ngx_strncmp((s).data, name, (s).len) == 0)


static ngx_int_t
ngx_http_mdm_api_dispatch(ngx_http_request_t *r, ngx_http_mdm_api_route_t *rt)
{
    ngx_str_t     v[5];
    ngx_array_t  *args;

    static ngx_str_t  version = ngx_string("{\"version\":\""
                                           NGX_HTTP_MDM_VERSION "\"}");

    if (ngx_http_mdm_api_is(rt->endpoint, "version")) {
        if (!(r->method & (NGX_HTTP_GET|NGX_HTTP_HEAD))) {
            return ngx_http_mdm_api_error(r, NGX_HTTP_NOT_ALLOWED,
                                          "version takes GET");
        }

        return ngx_http_mdm_send(r, NGX_HTTP_OK, "application/json",
                                 &version);
    }

    if (ngx_http_mdm_api_is(rt->endpoint, "push") && rt->arg2.len == 0) {
        args = ngx_http_mdm_api_args(r, "push");
        if (args == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        if (ngx_http_mdm_api_ids(r, &rt->arg, args) != NGX_OK) {
            return ngx_http_mdm_api_error(r, NGX_HTTP_BAD_REQUEST,
                                          "invalid enrollment id list");
        }

        return ngx_http_mdm_api_call(r, args);
    }

    if (ngx_http_mdm_api_is(rt->endpoint, "enrollments")
        && rt->arg.len == 0)
    {
        if (r->method != NGX_HTTP_GET) {
            return ngx_http_mdm_api_error(r, NGX_HTTP_NOT_ALLOWED,
                                          "enrollments takes GET");
        }

        ngx_http_mdm_api_arg(r, "cursor", &v[0]);
        ngx_http_mdm_api_arg(r, "count", &v[1]);
        ngx_http_mdm_api_arg(r, "type", &v[2]);
        ngx_http_mdm_api_arg(r, "enabled", &v[3]);
        ngx_http_mdm_api_arg(r, "last_seen_after", &v[4]);

        if (v[0].len == 0) {
            ngx_str_set(&v[0], "0");
        }

        if (v[1].len == 0) {
            ngx_str_set(&v[1], "100");
        }

        if (ngx_atoi(v[0].data, v[0].len) == NGX_ERROR
            || ngx_atoi(v[1].data, v[1].len) <= 0
            || ngx_atoi(v[1].data, v[1].len) > 1000
            || (v[3].len && !(v[3].len == 1 && (v[3].data[0] == '0'
                                                || v[3].data[0] == '1')))
            || (v[4].len && ngx_atoi(v[4].data, v[4].len) == NGX_ERROR))
        {
            return ngx_http_mdm_api_error(r, NGX_HTTP_BAD_REQUEST,
                                          "cursor and last_seen_after are "
                                          "numbers, count 1 to 1000, enabled "
                                          "0 or 1");
        }

        args = ngx_http_mdm_api_args(r, "enrollments");
        if (args == NULL
            || ngx_array_push_n(args, 5) == NULL)
        {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        ngx_memcpy((ngx_str_t *) args->elts + args->nelts - 5, v,
                   sizeof(v));

        return ngx_http_mdm_api_call(r, args);
    }

    if (ngx_http_mdm_api_is(rt->endpoint, "enrollments")
        || ngx_http_mdm_api_is(rt->endpoint, "queue"))
    {
        if (!ngx_http_mdm_api_valid_id(&rt->arg)
            || (rt->arg2.len
                && !ngx_http_mdm_enrollment_valid_part(&rt->arg2)))
        {
            return ngx_http_mdm_api_error(r, NGX_HTTP_BAD_REQUEST,
                                          "invalid enrollment id or command "
                                          "UUID");
        }

        if (ngx_http_mdm_api_is(rt->endpoint, "enrollments")) {
            if (r->method != NGX_HTTP_GET || rt->arg2.len) {
                return ngx_http_mdm_api_error(r, NGX_HTTP_NOT_ALLOWED,
                                              "enrollments/ID takes GET");
            }

            args = ngx_http_mdm_api_args(r, "enrollment");

        } else if (r->method == NGX_HTTP_GET && rt->arg2.len == 0) {
            args = ngx_http_mdm_api_args(r, "queue");

        } else if (r->method == NGX_HTTP_DELETE) {
            args = ngx_http_mdm_api_args(r, "dequeue");

        } else {
            return ngx_http_mdm_api_error(r, NGX_HTTP_NOT_ALLOWED,
                                          "queue/ID takes GET or DELETE, "
                                          "queue/ID/UUID takes DELETE");
        }

        if (args == NULL
            || ngx_http_mdm_push_arg(args, rt->arg.data, rt->arg.len)
               != NGX_OK
            || ngx_http_mdm_push_arg(args, rt->arg2.data, rt->arg2.len)
               != NGX_OK)
        {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        return ngx_http_mdm_api_call(r, args);
    }

    if (ngx_http_mdm_api_is(rt->endpoint, "webhooks") && rt->arg.len == 0) {
        if (r->method != NGX_HTTP_GET) {
            return ngx_http_mdm_api_error(r, NGX_HTTP_NOT_ALLOWED,
                                          "webhooks takes GET");
        }

        ngx_http_mdm_api_arg(r, "count", &v[0]);
        if (v[0].len == 0) {
            ngx_str_set(&v[0], "50");
        }

        if (ngx_atoi(v[0].data, v[0].len) <= 0
            || ngx_atoi(v[0].data, v[0].len) > 1000)
        {
            return ngx_http_mdm_api_error(r, NGX_HTTP_BAD_REQUEST,
                                          "count is 1 to 1000");
        }

        args = ngx_http_mdm_api_args(r, "webhooks");
        if (args == NULL
            || ngx_http_mdm_push_arg(args, v[0].data, v[0].len) != NGX_OK)
        {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        return ngx_http_mdm_api_call(r, args);
    }

    if (ngx_http_mdm_api_is(rt->endpoint, "pushcert") && rt->arg.len == 0) {
        if (r->method != NGX_HTTP_GET) {
            return ngx_http_mdm_api_error(r, NGX_HTTP_NOT_ALLOWED,
                                          "pushcert takes GET or PUT");
        }

        if (ngx_http_mdm_api_arg(r, "topic", &v[0]) != NGX_OK
            || !ngx_http_mdm_enrollment_valid_part(&v[0]))
        {
            return ngx_http_mdm_api_error(r, NGX_HTTP_BAD_REQUEST,
                                          "pushcert needs ?topic=");
        }

        args = ngx_http_mdm_api_args(r, "pushcert_get");
        if (args == NULL
            || ngx_http_mdm_push_arg(args, v[0].data, v[0].len) != NGX_OK)
        {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        return ngx_http_mdm_api_call(r, args);
    }

    if (ngx_http_mdm_api_is(rt->endpoint, "commands") && rt->arg2.len == 0) {
        if (r->method != NGX_HTTP_GET) {
            return ngx_http_mdm_api_error(r, NGX_HTTP_NOT_ALLOWED,
                                          "commands/UUID takes GET");
        }

        if (!ngx_http_mdm_enrollment_valid_part(&rt->arg)) {
            return ngx_http_mdm_api_error(r, NGX_HTTP_BAD_REQUEST,
                                          "invalid command UUID");
        }

        args = ngx_http_mdm_api_args(r, "command");
        if (args == NULL
            || ngx_http_mdm_push_arg(args, rt->arg.data, rt->arg.len)
               != NGX_OK)
        {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        return ngx_http_mdm_api_call(r, args);
    }

    return ngx_http_mdm_api_error(r, NGX_HTTP_NOT_FOUND, "unknown endpoint");
}


static void
ngx_http_mdm_api_body(ngx_http_request_t *r)
{
    ngx_int_t                  rc;
    ngx_http_mdm_api_route_t   rt;

    if (ngx_http_mdm_api_route(r, &rt) != NGX_OK) {
        rc = NGX_HTTP_INTERNAL_SERVER_ERROR;

    } else if (rt.endpoint.len == 8) {
        rc = ngx_http_mdm_api_pushcert(r);

    } else {
        rc = ngx_http_mdm_api_enqueue(r);
    }

    if (rc != NGX_DONE) {
        ngx_http_finalize_request(r, rc);
    }
}


/*
 * PUT /v1/enqueue/ID[,ID...][?nopush=1][&priority=1][&expires=SECONDS]
 * [&max_deliveries=N] with a raw command plist.
 */

static ngx_int_t
ngx_http_mdm_api_enqueue(ngx_http_request_t *r)
{
    u_char                    *p;
    plist_t                    root;
    ngx_int_t                  n;
    ngx_str_t                  body, uuid, rtype, v, ids;
    const char                *err;
    ngx_time_t                *tp;
    ngx_array_t               *args;
    ngx_http_mdm_api_route_t   rt;

    if (ngx_http_mdm_api_route(r, &rt) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ids = rt.arg;

    if (ngx_http_mdm_request_body(r, &body) != NGX_OK) {
        return ngx_http_mdm_api_error(r, NGX_HTTP_BAD_REQUEST,
                                      "no command plist in the body");
    }

    root = ngx_http_mdm_plist_parse(r, &body);
    if (root == NULL) {
        return ngx_http_mdm_api_error(r, NGX_HTTP_BAD_REQUEST,
                                      "the body is not an XML plist "
                                      "dictionary");
    }

    err = ngx_http_mdm_api_command(r, root, &body, &uuid, &rtype);
    if (err) {
        return (err[0] == '!')
               ? NGX_HTTP_INTERNAL_SERVER_ERROR
               : ngx_http_mdm_api_error(r, NGX_HTTP_BAD_REQUEST, err);
    }

    args = ngx_http_mdm_api_args(r, "enqueue");
    p = ngx_pnalloc(r->pool, 2 * NGX_INT64_LEN);
    if (args == NULL || p == NULL
        || ngx_http_mdm_push_arg(args, uuid.data, uuid.len) != NGX_OK
        || ngx_http_mdm_push_arg(args, body.data, body.len) != NGX_OK
        || ngx_http_mdm_push_arg(args, rtype.data, rtype.len) != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    /* priority: to the front of the queue, for EraseDevice or DeviceLock */
    ngx_http_mdm_api_arg(r, "priority", &v);
    n = ngx_http_mdm_api_flag(&v);
    if (n == NGX_ERROR) {
        return ngx_http_mdm_api_error(r, NGX_HTTP_BAD_REQUEST,
                                      "priority is 1, true, 0 or false");
    }

    if (ngx_http_mdm_push_arg(args, (u_char *) (n ? "1" : "0"), 1)
        != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_http_mdm_api_arg(r, "expires", &v);
    n = v.len ? ngx_atoi(v.data, v.len) : 0;
    if (n == NGX_ERROR || n > NGX_HTTP_MDM_API_MAX_EXPIRES
        || (v.len && n == 0))
    {
        return ngx_http_mdm_api_error(r, NGX_HTTP_BAD_REQUEST,
                                      "expires is a number of seconds, up "
                                      "to ten years");
    }

    /* in milliseconds, as every time the scripts keep */
    tp = ngx_timeofday();
    v.data = p;
    v.len = n ? (size_t) (ngx_sprintf(p, "%T%03M", (time_t) (tp->sec + n),
                                      tp->msec) - p)
              : 0;

    if (ngx_http_mdm_push_arg(args, v.data, v.len) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_http_mdm_api_arg(r, "max_deliveries", &v);
    if (v.len && ngx_atoi(v.data, v.len) <= 0) {
        return ngx_http_mdm_api_error(r, NGX_HTTP_BAD_REQUEST,
                                      "max_deliveries is a positive number");
    }

    if (ngx_http_mdm_push_arg(args, v.data, v.len) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_http_mdm_api_arg(r, "nopush", &v);
    n = ngx_http_mdm_api_flag(&v);
    if (n == NGX_ERROR) {
        return ngx_http_mdm_api_error(r, NGX_HTTP_BAD_REQUEST,
                                      "nopush is 1, true, 0 or false");
    }

    if (ngx_http_mdm_push_arg(args, (u_char *) (n ? "1" : "0"), 1)
        != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (ngx_http_mdm_api_ids(r, &ids, args) != NGX_OK) {
        return ngx_http_mdm_api_error(r, NGX_HTTP_BAD_REQUEST,
                                      "invalid enrollment id list");
    }

    return ngx_http_mdm_api_call(r, args);
}


/*
 * PUT /v1/pushcert[?force=1]: the APNs push certificate and its unencrypted
 * key, PEM, as NanoMDM takes them.  The topic is the certificate's UID.
 */

static ngx_int_t
ngx_http_mdm_api_pushcert(ngx_http_request_t *r)
{
    ngx_str_t     body, v;
    const char   *err;
    ngx_array_t  *args;

    if (ngx_http_mdm_request_body(r, &body) != NGX_OK) {
        return ngx_http_mdm_api_error(r, NGX_HTTP_BAD_REQUEST,
                                      "no PEM certificate and key in the "
                                      "body");
    }

    args = ngx_http_mdm_api_args(r, "pushcert");
    if (args == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    err = ngx_http_mdm_api_pem(r, &body, args);
    ERR_clear_error();

    if (err) {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "mdm: push certificate refused: %s", err);
        return ngx_http_mdm_api_error(r, NGX_HTTP_BAD_REQUEST, err);
    }

    ngx_http_mdm_api_arg(r, "force", &v);
    if (ngx_http_mdm_push_arg(args, (u_char *) (v.len && v.data[0] != '0'
                                                ? "1" : "0"), 1)
        != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return ngx_http_mdm_api_call(r, args);
}


/* appends topic, cert PEM, key PEM, notAfter, notAfter RFC 3339 */

static const char *
ngx_http_mdm_api_pem(ngx_http_request_t *r, ngx_str_t *body,
    ngx_array_t *args)
{
    int               i;
    BIO              *in, *out;
    X509             *x;
    u_char           *p;
    EVP_PKEY         *key;
    struct tm         tm;
    ngx_str_t         topic;
    const char       *err;
    ASN1_STRING      *uid;

    x = NULL;
    key = NULL;
    out = NULL;
    err = NULL;

    in = BIO_new_mem_buf(body->data, (int) body->len);
    if (in == NULL) {
        return "out of memory";
    }

    x = PEM_read_bio_X509(in, NULL, NULL, NULL);
    if (x == NULL) {
        err = "no PEM certificate in the body";
        goto done;
    }

    (void) BIO_reset(in);

    key = PEM_read_bio_PrivateKey(in, NULL, ngx_http_mdm_api_no_password,
                                  NULL);
    if (key == NULL) {
        err = "no unencrypted PEM private key in the body";
        goto done;
    }

    if (X509_check_private_key(x, key) != 1) {
        err = "the private key does not match the certificate";
        goto done;
    }

    i = X509_NAME_get_index_by_NID(X509_get_subject_name(x), NID_userId, -1);
    uid = (i < 0) ? NULL
          : X509_NAME_ENTRY_get_data(
                X509_NAME_get_entry(X509_get_subject_name(x), i));

    if (uid == NULL) {
        err = "the certificate's subject has no UID (the push topic)";
        goto done;
    }

    topic.data = (u_char *) ASN1_STRING_get0_data(uid);
    topic.len = ASN1_STRING_length(uid);

    if (topic.len < sizeof("com.apple.mgmt.") - 1
        || ngx_strncmp(topic.data, "com.apple.mgmt.",
                       sizeof("com.apple.mgmt.") - 1) != 0
        || !ngx_http_mdm_enrollment_valid_part(&topic))
    {
        err = "the certificate's topic (UID) does not start with "
              "com.apple.mgmt.: not an MDM push certificate";
        goto done;
    }

    if (ASN1_TIME_to_tm(X509_get0_notAfter(x), &tm) != 1) {
        err = "the certificate has no valid notAfter";
        goto done;
    }

    /* the certificate is freed before the call: keep a copy */
    topic.data = ngx_pstrdup(r->pool, &topic);

    p = ngx_pnalloc(r->pool, NGX_TIME_T_LEN + sizeof("2006-01-02T15:04:05Z"));
    out = BIO_new(BIO_s_mem());

    if (topic.data == NULL) {
        err = "out of memory";
        goto done;
    }

    if (p == NULL || out == NULL
        || ngx_http_mdm_push_arg(args, topic.data, topic.len) != NGX_OK
        || PEM_write_bio_X509(out, x) != 1
        || ngx_http_mdm_api_bio_arg(r, out, args) != NGX_OK
        || PEM_write_bio_PrivateKey(out, key, NULL, NULL, 0, NULL, NULL) != 1
        || ngx_http_mdm_api_bio_arg(r, out, args) != NGX_OK
        || ngx_http_mdm_push_arg(args, p,
                                 ngx_sprintf(p, "%T", timegm(&tm)) - p)
           != NGX_OK)
    {
        err = "out of memory";
        goto done;
    }

    p += NGX_TIME_T_LEN;
    if (ngx_http_mdm_push_arg(args, p,
                              ngx_sprintf(p, "%4d-%02d-%02dT%02d:%02d:%02dZ",
                                          tm.tm_year + 1900, tm.tm_mon + 1,
                                          tm.tm_mday, tm.tm_hour, tm.tm_min,
                                          tm.tm_sec) - p)
        != NGX_OK)
    {
        err = "out of memory";
    }

done:

    BIO_free(in);
    BIO_free(out);
    X509_free(x);
    EVP_PKEY_free(key);

    return err;
}


/* what was written to the memory BIO, copied into the pool; BIO emptied */

static ngx_int_t
ngx_http_mdm_api_bio_arg(ngx_http_request_t *r, BIO *bio, ngx_array_t *args)
{
    char    *data;
    long     len;
    u_char  *p;

    len = BIO_get_mem_data(bio, &data);
    if (len <= 0) {
        return NGX_ERROR;
    }

    p = ngx_pnalloc(r->pool, len);
    if (p == NULL) {
        return NGX_ERROR;
    }

    ngx_memcpy(p, data, len);
    (void) BIO_reset(bio);

    return ngx_http_mdm_push_arg(args, p, len);
}


/* an encrypted key is refused rather than prompted for */

static int
ngx_http_mdm_api_no_password(char *buf, int size, int rwflag, void *u)
{
    return -1;
}


/*
 * Command.RequestType must be there; a missing CommandUUID is made up and
 * written into the plist, which is then stored as re-serialized.  Returns
 * NULL, why the command is refused, or "!..." for an internal failure.
 */

static const char *
ngx_http_mdm_api_command(ngx_http_request_t *r, plist_t root,
    ngx_str_t *body, ngx_str_t *uuid, ngx_str_t *rtype)
{
    u_char     rnd[16], *p;
    plist_t    cmd;
    ngx_int_t  rc;

    cmd = plist_dict_get_item(root, "Command");

    if (cmd == NULL || plist_get_node_type(cmd) != PLIST_DICT
        || ngx_http_mdm_plist_string(cmd, "RequestType", rtype) != NGX_OK
        || rtype->len == 0)
    {
        return "no Command dictionary with a RequestType string";
    }

    rc = ngx_http_mdm_plist_string(root, "CommandUUID", uuid);

    if (rc == NGX_OK) {
        if (!ngx_http_mdm_enrollment_valid_part(uuid)) {
            return "CommandUUID has characters outside [A-Za-z0-9._@+-] or "
                   "is longer than 128";
        }

        return NULL;
    }

    if (rc == NGX_ERROR) {
        return "CommandUUID is not a string";
    }

    if (RAND_bytes(rnd, sizeof(rnd)) != 1) {
        return "!RAND_bytes() failed";
    }

    /* a version 4 UUID */
    rnd[6] = (rnd[6] & 0x0f) | 0x40;
    rnd[8] = (rnd[8] & 0x3f) | 0x80;

    p = ngx_pnalloc(r->pool, 37);
    if (p == NULL) {
        return "!out of memory";
    }

    uuid->data = p;
    p = ngx_hex_dump(p, &rnd[0], 4);
    *p++ = '-';
    p = ngx_hex_dump(p, &rnd[4], 2);
    *p++ = '-';
    p = ngx_hex_dump(p, &rnd[6], 2);
    *p++ = '-';
    p = ngx_hex_dump(p, &rnd[8], 2);
    *p++ = '-';
    p = ngx_hex_dump(p, &rnd[10], 6);
    *p = '\0';
    uuid->len = p - uuid->data;

    /* the way uuidgen writes them, as Apple's tools do */
    for (p = uuid->data; *p; p++) {
        *p = ngx_toupper(*p);
    }

    plist_dict_set_item(root, "CommandUUID",
                        plist_new_string((char *) uuid->data));

    if (ngx_http_mdm_plist_xml(r->pool, root, body) != NGX_OK) {
        return "!out of memory";
    }

    return NULL;
}


/* "ID,ID,...": each a valid enrollment id, at most 10,000 */

static ngx_int_t
ngx_http_mdm_api_ids(ngx_http_request_t *r, ngx_str_t *list,
    ngx_array_t *args)
{
    u_char      *p, *last, *comma;
    ngx_str_t    id;
    ngx_uint_t   n;

    p = list->data;
    last = list->data + list->len;

    for (n = 0; p < last; n++) {
        comma = ngx_strlchr(p, last, ',');
        if (comma == NULL) {
            comma = last;
        }

        id.data = p;
        id.len = comma - p;

        if (n == NGX_HTTP_MDM_API_MAX_IDS
            || !ngx_http_mdm_api_valid_id(&id)
            || ngx_http_mdm_push_arg(args, id.data, id.len) != NGX_OK)
        {
            return NGX_ERROR;
        }

        p = comma + 1;
    }

    return (n && list->data[list->len - 1] != ',') ? NGX_OK : NGX_ERROR;
}


/* "DEVICE" or "DEVICE:USER", each part as the device requests allow */

static ngx_uint_t
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


/* ARGV of lua/api.lua: the operation, the time (ms), then its own */

static ngx_array_t *
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


static ngx_int_t
ngx_http_mdm_api_call(ngx_http_request_t *r, ngx_array_t *args)
{
    ngx_int_t  rc;

    rc = ngx_http_mdm_redis_eval(r, NGX_HTTP_MDM_SCRIPT_API, 0, args,
                                 ngx_http_mdm_api_done);

    if (rc == NGX_DECLINED) {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "mdm: API request answered 503: redis is not "
                      "connected");
        return ngx_http_mdm_api_error(r, NGX_HTTP_SERVICE_UNAVAILABLE,
                                      "redis is not connected");
    }

    if (rc != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return NGX_DONE;
}


/* {status, JSON body} */

static void
ngx_http_mdm_api_done(ngx_http_request_t *r, redisReply *reply,
    const char *err)
{
    ngx_int_t    rc;
    ngx_str_t    json;
    redisReply  *status, *body;

    if (reply == NULL) {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "mdm: API request answered 503: redis %s", err);
        rc = ngx_http_mdm_api_error(r, NGX_HTTP_SERVICE_UNAVAILABLE, err);
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

    rc = ngx_http_mdm_send(r, (ngx_uint_t) status->integer,
                           "application/json", &json);

done:

    ngx_http_finalize_request(r, rc);
}


/*
 * An answer before the body was read: the body is discarded first, or on a
 * keep-alive connection it would be taken for the next request.
 */

static ngx_int_t
ngx_http_mdm_api_refuse(ngx_http_request_t *r, ngx_uint_t status,
    const char *message)
{
    if (ngx_http_discard_request_body(r) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return ngx_http_mdm_api_error(r, status, message);
}


/* {"error": "..."} with its status, so API clients always get JSON */

static ngx_int_t
ngx_http_mdm_api_error(ngx_http_request_t *r, ngx_uint_t status,
    const char *message)
{
    u_char     *p;
    size_t      len;
    uintptr_t   escape;
    ngx_str_t   json;

    len = ngx_strlen(message);
    escape = ngx_escape_json(NULL, (u_char *) message, len);

    json.data = ngx_pnalloc(r->pool, sizeof("{\"error\":\"\"}") + len
                                     + escape);
    if (json.data == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    p = ngx_cpymem(json.data, "{\"error\":\"", sizeof("{\"error\":\"") - 1);
    p = (u_char *) ngx_escape_json(p, (u_char *) message, len);
    p = ngx_cpymem(p, "\"}", 2);
    json.len = p - json.data;

    return ngx_http_mdm_send(r, status, "application/json", &json);
}


/* 1 for "1" or "true", 0 for "0", "false" or absent, else NGX_ERROR */

static ngx_int_t
ngx_http_mdm_api_flag(ngx_str_t *v)
{
    if (v->len == 0
        || (v->len == 1 && v->data[0] == '0')
        || (v->len == 5 && ngx_strncasecmp(v->data, (u_char *) "false", 5)
                           == 0))
    {
        return 0;
    }

    if ((v->len == 1 && v->data[0] == '1')
        || (v->len == 4 && ngx_strncasecmp(v->data, (u_char *) "true", 4)
                           == 0))
    {
        return 1;
    }

    return NGX_ERROR;
}


/* a query argument, percent-decoded ("type=User%20Enrollment") */

static ngx_int_t
ngx_http_mdm_api_arg(ngx_http_request_t *r, const char *name,
    ngx_str_t *value)
{
    u_char      *dst, *src;
    ngx_str_t    raw;
    ngx_uint_t   i;

    if (ngx_http_arg(r, (u_char *) name, ngx_strlen(name), &raw) != NGX_OK) {
        ngx_str_null(value);
        return NGX_DECLINED;
    }

    value->data = ngx_pnalloc(r->pool, raw.len + 1);
    if (value->data == NULL) {
        ngx_str_null(value);
        return NGX_DECLINED;
    }

    /* in a query string "+" is a space too */
    for (i = 0; i < raw.len; i++) {
        value->data[i] = (raw.data[i] == '+') ? ' ' : raw.data[i];
    }

    dst = value->data;
    src = value->data;
    ngx_unescape_uri(&dst, &src, raw.len, 0);
    value->len = dst - value->data;

    return NGX_OK;
}
