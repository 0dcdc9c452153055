
/*
 * Copyright (C) ngx_mdm contributors
 */


#include "fuzz_request.h"

#include <openssl/pem.h>


ngx_module_t  ngx_http_mdm_module;


void
fuzz_conf_defaults(ngx_http_mdm_loc_conf_t *mlcf)
{
    ngx_memzero(mlcf, sizeof(ngx_http_mdm_loc_conf_t));

    mlcf->skew = 300;
    mlcf->plist_max_nodes = 100000;
}


ngx_http_request_t *
fuzz_request(ngx_http_mdm_loc_conf_t *mlcf)
{
    ngx_pool_t      *pool;
    fuzz_request_t  *fr;

    ngx_shim_time_update();

    pool = ngx_create_pool(4096, ngx_shim_log_get());
    fuzz_check(pool != NULL);

    fr = ngx_pcalloc(pool, sizeof(fuzz_request_t));
    fuzz_check(fr != NULL);

    fr->c.log = ngx_shim_log_get();
    fr->c.pool = pool;

    fr->loc_conf[0] = mlcf;
    ngx_http_mdm_module.ctx_index = 0;

    fr->r.pool = pool;
    fr->r.connection = &fr->c;
    fr->r.loc_conf = fr->loc_conf;

    fuzz_check(ngx_list_init(&fr->r.headers_in.headers, pool, 2,
                             sizeof(ngx_table_elt_t)) == NGX_OK);

    return &fr->r;
}


ngx_int_t
fuzz_header(ngx_http_request_t *r, const char *lowcase, u_char *value,
    size_t len)
{
    ngx_table_elt_t  *h;

    h = ngx_list_push(&r->headers_in.headers);
    if (h == NULL) {
        return NGX_ERROR;
    }

    ngx_memzero(h, sizeof(ngx_table_elt_t));
    h->hash = 1;
    h->key.data = (u_char *) lowcase;
    h->key.len = ngx_strlen(lowcase);
    h->lowcase_key = (u_char *) lowcase;
    h->value.data = value;
    h->value.len = len;

    return NGX_OK;
}


void
fuzz_request_done(ngx_http_request_t *r)
{
    ngx_destroy_pool(r->pool);
}


u_char *
fuzz_copy(ngx_pool_t *pool, const uint8_t *data, size_t len)
{
    u_char  *p;

    p = ngx_pnalloc(pool, len);
    fuzz_check(p != NULL);

    if (len) {
        ngx_memcpy(p, data, len);
    }

    return p;
}


ngx_int_t
fuzz_split(const uint8_t *data, size_t size, const char *sep, ngx_str_t *a,
    ngx_str_t *b)
{
    size_t  i, n;

    n = strlen(sep);

    for (i = 0; i + n <= size; i++) {
        if (memcmp(data + i, sep, n) == 0) {
            a->data = (u_char *) data;
            a->len = i;
            b->data = (u_char *) data + i + n;
            b->len = size - i - n;
            return NGX_OK;
        }
    }

    return NGX_DECLINED;
}


X509 *
fuzz_pki_cert(const char *name)
{
    char   path[512];
    X509  *x;
    FILE  *f;

    snprintf(path, sizeof(path), "%s/%s", FUZZ_PKI, name);

    f = fopen(path, "r");
    fuzz_check(f != NULL);
    x = PEM_read_X509(f, NULL, NULL, NULL);
    fclose(f);
    fuzz_check(x != NULL);

    return x;
}


EVP_PKEY *
fuzz_pki_key(const char *name)
{
    char       path[512];
    FILE      *f;
    EVP_PKEY  *k;

    snprintf(path, sizeof(path), "%s/%s", FUZZ_PKI, name);

    f = fopen(path, "r");
    fuzz_check(f != NULL);
    k = PEM_read_PrivateKey(f, NULL, NULL, NULL);
    fclose(f);
    fuzz_check(k != NULL);

    return k;
}


time_t
fuzz_asn1_time(const ASN1_TIME *t)
{
    struct tm  tm;

    fuzz_check(ASN1_TIME_to_tm(t, &tm) == 1);
    return timegm(&tm);
}


void
fuzz_ca_init(ngx_http_mdm_ca_t *ca)
{
    X509  *x;

    ca->store = X509_STORE_new();
    ca->untrusted = sk_X509_new_null();
    fuzz_check(ca->store && ca->untrusted);
    /* the module's log lines name it (mdm_identity_ca always sets it) */
    ngx_str_set(&ca->file, FUZZ_PKI "/ca.pem");
    x = fuzz_pki_cert("ca.pem");
    fuzz_check(X509_STORE_add_cert(ca->store, x) == 1);
    X509_free(x);
}
