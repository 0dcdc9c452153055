
/*
 * Copyright (C) ngx_mdm contributors
 *
 * /v1/dep/tokenpki/NAME: the DEP token exchange (contract D1).
 *
 *   GET     the PEM certificate to upload to Apple's portal; the RSA-2048
 *           key and the self-signed certificate are made on the first call
 *           (in the thread pool) and kept: mdm:dep:NAME:tokenpki.  Of two
 *           nodes making one at the same time, the first stored wins and
 *           both answer it.  ?cn= and ?validity_days= shape the first one.
 *   PUT     the token file (.p7m) the portal gives back: decrypted with
 *           that key (in the thread pool), unwrapped, checked and stored
 *           as the name's tokens; answers the consumer key and the expiry.
 *   DELETE  forgets the key (not the tokens): the next GET makes another.
 */


#include "ngx_http_mdm_api_dep.h"
#include "ngx_http_mdm_request.h"
#include "ngx_http_mdm_response.h"
#include "ngx_http_mdm_util.h"


#define NGX_HTTP_MDM_DEP_CN           "ngx_mdm"
#define NGX_HTTP_MDM_DEP_DAYS         365
#define NGX_HTTP_MDM_DEP_DAYS_MAX     3650


/* what a request's steps share; found again through its pool cleanup */
typedef struct {
    ngx_str_t                     name;
    ngx_str_t                     file;
    ngx_http_mdm_dep_keygen_t     keygen;
    ngx_http_mdm_dep_decrypt_t    decrypt;
} ngx_http_mdm_dep_pki_t;


static ngx_http_mdm_dep_pki_t *ngx_http_mdm_dep_pki_state(
    ngx_http_request_t *r, ngx_str_t *name);
static void ngx_http_mdm_dep_pki_cleanup(void *data);
static ngx_int_t ngx_http_mdm_dep_pki_get(ngx_http_request_t *r,
    ngx_http_mdm_dep_path_t *p);
static void ngx_http_mdm_dep_pki_got(ngx_http_request_t *r,
    redisReply *reply, const char *err);
static void ngx_http_mdm_dep_pki_made(ngx_http_request_t *r, void *data);
static ngx_int_t ngx_http_mdm_dep_pki_pem(ngx_http_request_t *r,
    redisReply *reply, const char *err);
static void ngx_http_mdm_dep_pki_stored(ngx_http_request_t *r,
    redisReply *reply, const char *err);
static ngx_int_t ngx_http_mdm_dep_pki_put(ngx_http_request_t *r,
    ngx_http_mdm_dep_path_t *p);
static void ngx_http_mdm_dep_pki_key(ngx_http_request_t *r,
    redisReply *reply, const char *err);
static void ngx_http_mdm_dep_pki_decrypted(ngx_http_request_t *r,
    void *data);
static ngx_int_t ngx_http_mdm_dep_pki_tokens(ngx_http_request_t *r,
    ngx_http_mdm_dep_pki_t *st);
static ngx_int_t ngx_http_mdm_dep_pki_copy(ngx_http_request_t *r,
    redisReply *from, ngx_str_t *to);


ngx_int_t
ngx_http_mdm_api_dep_tokenpki(ngx_http_request_t *r,
    ngx_http_mdm_dep_path_t *p)
{
    ngx_array_t  *args;

    if (r->method == NGX_HTTP_GET) {
        return ngx_http_mdm_dep_pki_get(r, p);
    }

    if (r->method == NGX_HTTP_PUT) {
        return ngx_http_mdm_dep_pki_put(r, p);
    }

    if (r->method == NGX_HTTP_DELETE) {
        args = ngx_http_mdm_api_name_args(r, "tokenpki_delete", &p->name);
        if (args == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        return ngx_http_mdm_api_dep_call(r, args, NULL);
    }

    return ngx_http_mdm_api_error(r, NGX_HTTP_NOT_ALLOWED,
                                  "DEP tokenpki takes GET, PUT or DELETE");
}


static ngx_http_mdm_dep_pki_t *
ngx_http_mdm_dep_pki_state(ngx_http_request_t *r, ngx_str_t *name)
{
    ngx_pool_cleanup_t      *cln;
    ngx_http_mdm_dep_pki_t  *st;

    for (cln = r->pool->cleanup; cln; cln = cln->next) {
        if (cln->handler == ngx_http_mdm_dep_pki_cleanup) {
            return cln->data;
        }
    }

    if (name == NULL) {
        return NULL;
    }

    cln = ngx_pool_cleanup_add(r->pool, sizeof(ngx_http_mdm_dep_pki_t));
    if (cln == NULL) {
        return NULL;
    }

    st = cln->data;
    ngx_memzero(st, sizeof(ngx_http_mdm_dep_pki_t));
    st->name = *name;

    cln->handler = ngx_http_mdm_dep_pki_cleanup;

    return st;
}


/* the state lives in the pool: nothing to release, only to find */

static void
ngx_http_mdm_dep_pki_cleanup(void *data)
{
}


static ngx_int_t
ngx_http_mdm_dep_pki_get(ngx_http_request_t *r, ngx_http_mdm_dep_path_t *p)
{
    ngx_int_t                days;
    ngx_str_t                cn, v;
    ngx_uint_t               i;
    ngx_array_t             *args;
    ngx_http_mdm_dep_pki_t  *st;

    if (ngx_http_mdm_arg(r, "cn", &cn) == NGX_ERROR
        || ngx_http_mdm_arg(r, "validity_days", &v) == NGX_ERROR)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (cn.len == 0) {
        ngx_str_set(&cn, NGX_HTTP_MDM_DEP_CN);
    }

    for (i = 0; i < cn.len; i++) {
        if (cn.data[i] < 0x20 || cn.data[i] > 0x7e) {
            break;
        }
    }

    if (i < cn.len || cn.len > NGX_HTTP_MDM_DEP_CN_MAX) {
        return ngx_http_mdm_api_error(r, NGX_HTTP_BAD_REQUEST,
                                      "cn is 1 to 64 printable ASCII "
                                      "characters");
    }

    days = v.len ? ngx_atoi(v.data, v.len) : NGX_HTTP_MDM_DEP_DAYS;

    if (days < 1 || days > NGX_HTTP_MDM_DEP_DAYS_MAX) {
        return ngx_http_mdm_api_error(r, NGX_HTTP_BAD_REQUEST,
                                      "validity_days is 1 to 3650");
    }

    st = ngx_http_mdm_dep_pki_state(r, &p->name);
    if (st == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_memcpy(st->keygen.cn, cn.data, cn.len);
    st->keygen.cn[cn.len] = '\0';
    st->keygen.days = days;

    args = ngx_http_mdm_api_name_args(r, "tokenpki_get", &p->name);
    if (args == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return ngx_http_mdm_api_dep_call(r, args, ngx_http_mdm_dep_pki_got);
}


/* {1, cert}: answered; {0}: none yet, made in the thread pool */

static void
ngx_http_mdm_dep_pki_got(ngx_http_request_t *r, redisReply *reply,
    const char *err)
{
    ngx_int_t                rc;
    ngx_http_mdm_dep_pki_t  *st;

    if (reply == NULL || reply->type != REDIS_REPLY_ARRAY
        || reply->elements != 1 || reply->element[0]->type
                                   != REDIS_REPLY_INTEGER)
    {
        ngx_http_finalize_request(r, ngx_http_mdm_dep_pki_pem(r, reply, err));
        return;
    }

    st = ngx_http_mdm_dep_pki_state(r, NULL);

    st->keygen.cert.data = ngx_pnalloc(r->pool, NGX_HTTP_MDM_DEP_CERT_MAX);
    st->keygen.key.data = ngx_pnalloc(r->pool, NGX_HTTP_MDM_DEP_KEY_MAX);

    if (st->keygen.cert.data == NULL || st->keygen.key.data == NULL) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    rc = ngx_http_mdm_api_dep_post(r, ngx_http_mdm_dep_keygen,
                                   ngx_http_mdm_dep_pki_made, &st->keygen);
    if (rc != NGX_DONE) {
        ngx_http_finalize_request(r, rc);
    }
}


static void
ngx_http_mdm_dep_pki_made(ngx_http_request_t *r, void *data)
{
    ngx_int_t                   rc;
    ngx_array_t                *args;
    ngx_http_mdm_dep_pki_t     *st;
    ngx_http_mdm_dep_keygen_t  *job = data;

    if (job->err) {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "mdm: DEP token key: %s", job->err);
        ngx_http_finalize_request(r, ngx_http_mdm_api_error(r,
                                         NGX_HTTP_INTERNAL_SERVER_ERROR,
                                         job->err));
        return;
    }

    st = ngx_http_mdm_dep_pki_state(r, NULL);

    args = ngx_http_mdm_api_name_args(r, "tokenpki_store", &st->name);
    if (args == NULL
        || ngx_http_mdm_push_arg(args, job->cert.data, job->cert.len)
           != NGX_OK
        || ngx_http_mdm_push_arg(args, job->key.data, job->key.len) != NGX_OK)
    {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    rc = ngx_http_mdm_api_dep_call(r, args, ngx_http_mdm_dep_pki_stored);
    if (rc != NGX_DONE) {
        ngx_http_finalize_request(r, rc);
    }
}


static void
ngx_http_mdm_dep_pki_stored(ngx_http_request_t *r, redisReply *reply,
    const char *err)
{
    ngx_http_finalize_request(r, ngx_http_mdm_dep_pki_pem(r, reply, err));
}


/* {1, cert}: the PEM, as NanoDEP sends it; else a {status, JSON} */

static ngx_int_t
ngx_http_mdm_dep_pki_pem(ngx_http_request_t *r, redisReply *reply,
    const char *err)
{
    u_char                  *p;
    ngx_str_t                pem;
    ngx_table_elt_t         *h;
    ngx_http_mdm_dep_pki_t  *st;

    if (reply == NULL || reply->type != REDIS_REPLY_ARRAY
        || reply->elements != 2 || reply->element[0]->type
                                   != REDIS_REPLY_INTEGER
        || reply->element[0]->integer != 1)
    {
        return ngx_http_mdm_api_dep_reply(r, reply, err, 2);
    }

    if (ngx_http_mdm_dep_pki_copy(r, reply->element[1], &pem) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    st = ngx_http_mdm_dep_pki_state(r, NULL);

    h = ngx_list_push(&r->headers_out.headers);
    p = ngx_pnalloc(r->pool, sizeof("attachment; filename=\".pem\"")
                             + st->name.len);
    if (h == NULL || p == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    /* the name is [A-Za-z0-9._-]: nothing to quote */
    h->hash = 1;
    ngx_str_set(&h->key, "Content-Disposition");
    h->value.data = p;
    h->value.len = ngx_sprintf(p, "attachment; filename=\"%V.pem\"",
                               &st->name) - p;

    return ngx_http_mdm_send(r, NGX_HTTP_OK, "application/x-pem-file", &pem);
}


static ngx_int_t
ngx_http_mdm_dep_pki_put(ngx_http_request_t *r, ngx_http_mdm_dep_path_t *p)
{
    ngx_str_t                v;
    ngx_array_t             *args;
    ngx_http_mdm_dep_pki_t  *st;

    /* the force of the tokens is checked before the work */
    ngx_http_mdm_arg(r, "force", &v);
    if (ngx_http_mdm_flag(&v) == NGX_ERROR) {
        return ngx_http_mdm_api_error(r, NGX_HTTP_BAD_REQUEST,
                                      "force is 1, true, yes, 0, false or "
                                      "no");
    }

    st = ngx_http_mdm_dep_pki_state(r, &p->name);
    if (st == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (ngx_http_mdm_request_body(r, &st->file) != NGX_OK) {
        return ngx_http_mdm_api_error(r, NGX_HTTP_BAD_REQUEST,
                                      "the body is empty: the token file "
                                      "(.p7m) expected");
    }

    if (st->file.len > NGX_HTTP_MDM_DEP_MAX_P7M) {
        return ngx_http_mdm_api_error(r, NGX_HTTP_REQUEST_ENTITY_TOO_LARGE,
                                      "the body is too large for a token "
                                      "file (64 KB at most)");
    }

    args = ngx_http_mdm_api_name_args(r, "tokenpki_key", &p->name);
    if (args == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return ngx_http_mdm_api_dep_call(r, args, ngx_http_mdm_dep_pki_key);
}


/* {200, cert, key}: decrypted in the thread pool; else {status, JSON} */

static void
ngx_http_mdm_dep_pki_key(ngx_http_request_t *r, redisReply *reply,
    const char *err)
{
    ngx_int_t                    rc;
    ngx_http_mdm_dep_pki_t      *st;
    ngx_http_mdm_dep_decrypt_t  *job;

    if (reply == NULL || reply->type != REDIS_REPLY_ARRAY
        || reply->elements != 3)
    {
        ngx_http_finalize_request(r, ngx_http_mdm_api_dep_reply(r, reply,
                                                                err, 2));
        return;
    }

    st = ngx_http_mdm_dep_pki_state(r, NULL);
    job = &st->decrypt;

    job->file = st->file;
    job->out.data = ngx_pnalloc(r->pool, st->file.len);

    if (job->out.data == NULL
        || ngx_http_mdm_dep_pki_copy(r, reply->element[1], &job->cert)
           != NGX_OK
        || ngx_http_mdm_dep_pki_copy(r, reply->element[2], &job->key)
           != NGX_OK)
    {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    rc = ngx_http_mdm_api_dep_post(r, ngx_http_mdm_dep_decrypt,
                                   ngx_http_mdm_dep_pki_decrypted, job);
    if (rc != NGX_DONE) {
        ngx_http_finalize_request(r, rc);
    }
}


static void
ngx_http_mdm_dep_pki_decrypted(ngx_http_request_t *r, void *data)
{
    ngx_int_t                    rc;
    ngx_http_mdm_dep_decrypt_t  *job = data;

    if (job->err) {
        if (!job->client) {
            ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                          "mdm: DEP token file: %s", job->err);
        }

        ngx_http_finalize_request(r, ngx_http_mdm_api_error(r,
                                    job->client
                                    ? NGX_HTTP_BAD_REQUEST
                                    : NGX_HTTP_INTERNAL_SERVER_ERROR,
                                    job->err));
        return;
    }

    rc = ngx_http_mdm_dep_pki_tokens(r, ngx_http_mdm_dep_pki_state(r, NULL));
    if (rc != NGX_DONE) {
        ngx_http_finalize_request(r, rc);
    }
}


/* the decrypted content to tokens, stored: NGX_DONE or the answer */

static ngx_int_t
ngx_http_mdm_dep_pki_tokens(ngx_http_request_t *r, ngx_http_mdm_dep_pki_t *st)
{
    json_t        *j;
    ngx_int_t      rc;
    ngx_str_t      json;
    const char    *err;
    json_error_t   e;

    err = ngx_http_mdm_dep_unwrap(&st->decrypt.out, &json);
    if (err) {
        return ngx_http_mdm_api_error(r, NGX_HTTP_BAD_REQUEST, err);
    }

    j = json_loadb((const char *) json.data, json.len, JSON_REJECT_DUPLICATES,
                   &e);
    if (!json_is_object(j)) {
        json_decref(j);
        return ngx_http_mdm_api_error(r, NGX_HTTP_BAD_REQUEST,
                                      "the decrypted token is not a JSON "
                                      "object");
    }

    /* the same checks as a PUT of raw tokens, through the same store */
    rc = ngx_http_mdm_api_dep_tokens_store(r, &st->name, j, 1);
    json_decref(j);

    return rc;
}


static ngx_int_t
ngx_http_mdm_dep_pki_copy(ngx_http_request_t *r, redisReply *from,
    ngx_str_t *to)
{
    if (from->type != REDIS_REPLY_STRING || from->len == 0) {
        return NGX_ERROR;
    }

    to->data = ngx_pnalloc(r->pool, from->len);
    if (to->data == NULL) {
        return NGX_ERROR;
    }

    ngx_memcpy(to->data, from->str, from->len);
    to->len = from->len;

    return NGX_OK;
}
