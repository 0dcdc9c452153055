
/*
 * Copyright (C) ngx_mdm contributors
 *
 * What the files of the DEP admin API (/v1/dep/...) share.
 * ngx_http_mdm_api_dep.c routes and lists (names, devices, status),
 * ngx_http_mdm_api_dep_tokens.c checks and stores tokens,
 * ngx_http_mdm_api_dep_settings.c keeps config and assigner,
 * ngx_http_mdm_api_dep_pki.c the token key and token files,
 * ngx_http_mdm_api_dep_crypto.c does their OpenSSL work (thread-safe),
 * ngx_http_mdm_api_dep_proxy.c hands Apple calls to the worker (D4).
 */


#ifndef _NGX_HTTP_MDM_API_DEP_H_INCLUDED_
#define _NGX_HTTP_MDM_API_DEP_H_INCLUDED_


#include "ngx_http_mdm_api_private.h"
#include "ngx_http_mdm_api_util.h"

#include <jansson.h>


/* the bodies the DEP endpoints take, at most (a token file is ~3 KB) */
#define NGX_HTTP_MDM_DEP_MAX_P7M      65536
#define NGX_HTTP_MDM_DEP_MAX_JSON     16384
#define NGX_HTTP_MDM_DEP_MAX_PROXY    (1024 * 1024)

/* what the thread writes: a PEM certificate, a PEM RSA-2048 key */
#define NGX_HTTP_MDM_DEP_CERT_MAX     8192
#define NGX_HTTP_MDM_DEP_KEY_MAX      8192

#define NGX_HTTP_MDM_DEP_CN_MAX       64

/* a DEP name's length, a serial's */
#define NGX_HTTP_MDM_DEP_NAME_MAX     64


/* /v1/dep/SUB[/NAME[/MORE]] */
typedef struct {
    ngx_str_t        sub;       /* "tokenpki", "proxy", ... */
    ngx_str_t        name;      /* the DEP name, checked; or empty */
    ngx_str_t        more;      /* after "NAME": "" or "/..." unsplit */
} ngx_http_mdm_dep_path_t;


/* a job for the thread pool: work runs there, done back in nginx */
typedef void (*ngx_http_mdm_dep_work_pt)(void *job);
typedef void (*ngx_http_mdm_dep_done_pt)(ngx_http_request_t *r, void *job);


/* key generation: in cn and days; out PEMs (buffers of the _MAX sizes) */
typedef struct {
    u_char           cn[NGX_HTTP_MDM_DEP_CN_MAX + 1];
    ngx_int_t        days;
    ngx_str_t        cert;
    ngx_str_t        key;
    const char      *err;
} ngx_http_mdm_dep_keygen_t;


/* token-file decryption: in file, cert, key; out the content */
typedef struct {
    ngx_str_t        file;
    ngx_str_t        cert;
    ngx_str_t        key;
    ngx_str_t        out;       /* a buffer of file.len bytes */
    const char      *err;
    ngx_uint_t       client;    /* err is about the file: 400, else 500 */
} ngx_http_mdm_dep_decrypt_t;


/* ngx_http_mdm_api_dep.c */
ngx_int_t ngx_http_mdm_api_dep_call(ngx_http_request_t *r,
    ngx_array_t *args, ngx_http_mdm_redis_done_pt done);
ngx_int_t ngx_http_mdm_api_dep_post(ngx_http_request_t *r,
    ngx_http_mdm_dep_work_pt work, ngx_http_mdm_dep_done_pt done, void *job);
ngx_int_t ngx_http_mdm_api_dep_tokens_store(ngx_http_request_t *r,
    ngx_str_t *name, json_t *tokens, ngx_uint_t brief);
ngx_int_t ngx_http_mdm_api_dep_reply(ngx_http_request_t *r,
    redisReply *reply, const char *err, ngx_uint_t elements);
ngx_int_t ngx_http_mdm_api_dep_method(ngx_http_request_t *r,
    ngx_uint_t allowed, const char *message);
ngx_int_t ngx_http_mdm_api_dep_simple(ngx_http_request_t *r,
    ngx_http_mdm_dep_path_t *p, const char *op);
ngx_int_t ngx_http_mdm_api_dep_json_body(ngx_http_request_t *r, size_t max,
    json_t **j, ngx_int_t *answer);

/* ngx_http_mdm_api_dep_tokens.c */
ngx_int_t ngx_http_mdm_api_dep_tokens(ngx_http_request_t *r,
    ngx_http_mdm_dep_path_t *p);

/* ngx_http_mdm_api_dep_settings.c */
ngx_int_t ngx_http_mdm_api_dep_config(ngx_http_request_t *r,
    ngx_http_mdm_dep_path_t *p);
ngx_int_t ngx_http_mdm_api_dep_assigner(ngx_http_request_t *r,
    ngx_http_mdm_dep_path_t *p);

/* ngx_http_mdm_api_dep_pki.c */
ngx_int_t ngx_http_mdm_api_dep_tokenpki(ngx_http_request_t *r,
    ngx_http_mdm_dep_path_t *p);

/* ngx_http_mdm_api_dep_crypto.c: thread-safe, touches only the job */
void ngx_http_mdm_dep_keygen(void *job);
void ngx_http_mdm_dep_decrypt(void *job);
const char *ngx_http_mdm_dep_unwrap(ngx_str_t *content, ngx_str_t *json);

/* ngx_http_mdm_api_dep_proxy.c */
ngx_int_t ngx_http_mdm_api_dep_proxy(ngx_http_request_t *r,
    ngx_http_mdm_dep_path_t *p);


#endif /* _NGX_HTTP_MDM_API_DEP_H_INCLUDED_ */
