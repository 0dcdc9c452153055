
/*
 * Copyright (C) ngx_mdm contributors
 *
 * PUT /v1/pushcert[?force=1] and GET /v1/pushcert?topic=: the APNs push
 * certificate and its unencrypted key, PEM, as NanoMDM takes them.  The
 * topic is the certificate's UID; uploading one adds it to mdm:topics, the
 * topics the push-certificate guard compares against.
 */


#include "ngx_http_mdm_api_private.h"
#include "ngx_http_mdm_request.h"
#include "ngx_http_mdm_enrollment.h"
#include "ngx_http_mdm_util.h"

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>


static const char *ngx_http_mdm_api_pem(ngx_http_request_t *r,
    ngx_str_t *body, ngx_array_t *args);
static const char *ngx_http_mdm_api_pem_args(ngx_http_request_t *r, X509 *x,
    EVP_PKEY *key, ngx_str_t *topic, struct tm *tm, ngx_array_t *args);
static ngx_int_t ngx_http_mdm_api_bio_arg(ngx_http_request_t *r, BIO *bio,
    ngx_array_t *args);
static int ngx_http_mdm_api_no_password(char *buf, int size, int rwflag,
    void *u);


ngx_int_t
ngx_http_mdm_api_pushcert_put(ngx_http_request_t *r)
{
    ngx_int_t     force;
    ngx_str_t     body, v;
    const char   *err;
    ngx_array_t  *args;

    /* only 1, true or yes force: "force=false" must not (issue 9 #15) */
    ngx_http_mdm_arg(r, "force", &v);
    force = ngx_http_mdm_flag(&v);
    if (force == NGX_ERROR) {
        return ngx_http_mdm_api_error(r, NGX_HTTP_BAD_REQUEST,
                                      "force is 1, true, yes, 0, false or "
                                      "no");
    }

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
        /* the one log line is ngx_http_mdm_api_error()'s */
        return ngx_http_mdm_api_error(r, NGX_HTTP_BAD_REQUEST, err);
    }

    if (ngx_http_mdm_push_arg(args, (u_char *) (force ? "1" : "0"), 1)
        != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return ngx_http_mdm_api_call(r, args);
}


ngx_int_t
ngx_http_mdm_api_pushcert_get(ngx_http_request_t *r,
    ngx_http_mdm_api_route_t *rt)
{
    ngx_str_t     topic;
    ngx_array_t  *args;

    if (ngx_http_mdm_arg(r, "topic", &topic) != NGX_OK
        || !ngx_http_mdm_enrollment_valid_part(&topic))
    {
        return ngx_http_mdm_api_error(r, NGX_HTTP_BAD_REQUEST,
                                      "pushcert needs ?topic=");
    }

    args = ngx_http_mdm_api_args(r, "pushcert_get");
    if (args == NULL
        || ngx_http_mdm_push_arg(args, topic.data, topic.len) != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return ngx_http_mdm_api_call(r, args);
}


/*
 * Appends topic, cert PEM, key PEM, notAfter, notAfter RFC 3339.  NULL, or
 * why the body is refused.
 */

static const char *
ngx_http_mdm_api_pem(ngx_http_request_t *r, ngx_str_t *body,
    ngx_array_t *args)
{
    int           i;
    BIO          *in;
    X509         *x;
    EVP_PKEY     *key;
    struct tm     tm;
    ngx_str_t     topic;
    const char   *err;
    ASN1_STRING  *uid;

    x = NULL;
    key = NULL;
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

    err = ngx_http_mdm_api_pem_args(r, x, key, &topic, &tm, args);

done:

    BIO_free(in);
    X509_free(x);
    EVP_PKEY_free(key);

    return err;
}


static const char *
ngx_http_mdm_api_pem_args(ngx_http_request_t *r, X509 *x, EVP_PKEY *key,
    ngx_str_t *topic, struct tm *tm, ngx_array_t *args)
{
    u_char      *p, *t;
    BIO         *out;
    const char  *err;

    /* the certificate is freed before the call: keep a copy */
    t = ngx_pstrdup(r->pool, topic);
    p = ngx_pnalloc(r->pool, NGX_TIME_T_LEN + sizeof("2006-01-02T15:04:05Z"));
    out = BIO_new(BIO_s_mem());

    err = NULL;

    if (t == NULL || p == NULL || out == NULL
        || ngx_http_mdm_push_arg(args, t, topic->len) != NGX_OK
        || PEM_write_bio_X509(out, x) != 1
        || ngx_http_mdm_api_bio_arg(r, out, args) != NGX_OK
        || PEM_write_bio_PrivateKey(out, key, NULL, NULL, 0, NULL, NULL) != 1
        || ngx_http_mdm_api_bio_arg(r, out, args) != NGX_OK
        || ngx_http_mdm_push_arg(args, p,
                                 ngx_sprintf(p, "%T", timegm(tm)) - p)
           != NGX_OK)
    {
        err = "out of memory";
        goto done;
    }

    p += NGX_TIME_T_LEN;
    if (ngx_http_mdm_push_arg(args, p,
                              ngx_sprintf(p, "%4d-%02d-%02dT%02d:%02d:%02dZ",
                                          tm->tm_year + 1900, tm->tm_mon + 1,
                                          tm->tm_mday, tm->tm_hour,
                                          tm->tm_min, tm->tm_sec) - p)
        != NGX_OK)
    {
        err = "out of memory";
    }

done:

    BIO_free(out);

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
