
/*
 * Copyright (C) ngx_mdm contributors
 *
 * Target "certheader": the value of a certificate header set by a TLS
 * terminator (mdm_identity header=...), RFC 9440 ":base64 DER:" or
 * nginx's URL-escaped PEM ($ssl_client_escaped_cert), through
 * ngx_http_mdm_identity_verify(): the header parser of
 * ngx_http_mdm_identity_source.c, the URL decoder, then the chain check.
 *
 * Only the two device certificates of fuzz/pki chain to the test CA: an
 * accepted request must name one of them, by its SHA-256, and OpenSSL
 * must verify that certificate on its own.
 */


#include "fuzz_request.h"
#include "ngx_http_mdm_identity.h"

#include <openssl/err.h>
#include <openssl/x509_vfy.h>


static ngx_http_mdm_loc_conf_t          mlcf;
static ngx_http_mdm_ca_t                ca;
static ngx_array_t                      sources;
static ngx_http_mdm_identity_source_t   source;
static u_char                           known[2][64];


int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
    int            i;
    X509          *x;
    u_char         md[32];
    unsigned int   n;
    const char    *names[] = { "rsa.pem", "ec.pem" };

    ngx_shim_init();
    fuzz_conf_defaults(&mlcf);
    fuzz_ca_init(&ca);

    source.type = NGX_HTTP_MDM_ID_HEADER;
    ngx_str_set(&source.header, "x-client-cert");
    sources.elts = &source;
    sources.nelts = 1;
    sources.size = sizeof(ngx_http_mdm_identity_source_t);
    sources.nalloc = 1;

    mlcf.ca = &ca;
    mlcf.identity = &sources;

    for (i = 0; i < 2; i++) {
        x = fuzz_pki_cert(names[i]);
        fuzz_check(X509_digest(x, EVP_sha256(), md, &n) == 1);
        ngx_hex_dump(known[i], md, n);
        X509_free(x);
    }

    return 0;
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    ngx_int_t                 rc;
    ngx_str_t                 body;
    const char               *reason;
    X509_STORE_CTX           *xctx;
    ngx_http_request_t       *r;
    ngx_http_mdm_identity_t   id;

    r = fuzz_request(&mlcf);

    fuzz_check(fuzz_header(r, "x-client-cert", fuzz_copy(r->pool, data, size),
                           size) == NGX_OK);

    ngx_str_set(&body, "<plist/>");
    ngx_memzero(&id, sizeof(ngx_http_mdm_identity_t));
    reason = NULL;

    rc = ngx_http_mdm_identity_verify(r, &mlcf, &body, &id, &reason);

    fuzz_check(rc == NGX_OK || rc == NGX_DECLINED || rc == NGX_ERROR);

    if (rc == NGX_DECLINED) {
        fuzz_check(reason != NULL);
    }

    if (rc == NGX_OK) {
        fuzz_check(id.cert != NULL);
        fuzz_check(ngx_memcmp(id.sha256, known[0], 64) == 0
                   || ngx_memcmp(id.sha256, known[1], 64) == 0);

        xctx = X509_STORE_CTX_new();
        fuzz_check(X509_STORE_CTX_init(xctx, ca.store, id.cert, NULL) == 1);
        X509_STORE_CTX_set_purpose(xctx, X509_PURPOSE_SSL_CLIENT);
        fuzz_check(X509_verify_cert(xctx) == 1);
        X509_STORE_CTX_free(xctx);
    }

    ERR_clear_error();
    fuzz_request_done(r);

    return 0;
}
