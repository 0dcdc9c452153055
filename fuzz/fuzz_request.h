
/*
 * Copyright (C) ngx_mdm contributors
 *
 * What every fuzz target shares: a request around one input, with its own
 * pool (destroyed after the input, so LeakSanitizer sees what the module
 * leaves behind) and the module's location configuration.
 *
 * The targets link the module's .c files themselves, not
 * ngx_http_mdm_module.c (its directive table pulls in every handler), so
 * the module's ngx_module_t is defined here, with ctx_index 0: only
 * ngx_http_get_module_loc_conf() reads it.
 */


#ifndef _FUZZ_REQUEST_H_INCLUDED_
#define _FUZZ_REQUEST_H_INCLUDED_


#include "ngx_shim.h"
#include "ngx_http_mdm_module.h"


typedef struct {
    ngx_http_request_t        r;
    ngx_connection_t          c;
    void                     *loc_conf[1];
} fuzz_request_t;


/* the defaults of ngx_http_mdm_merge_loc_conf() that the parsers read */
void fuzz_conf_defaults(ngx_http_mdm_loc_conf_t *mlcf);

/* a request with its own pool; headers may be added with fuzz_header() */
ngx_http_request_t *fuzz_request(ngx_http_mdm_loc_conf_t *mlcf);
ngx_int_t fuzz_header(ngx_http_request_t *r, const char *lowcase,
    u_char *value, size_t len);
void fuzz_request_done(ngx_http_request_t *r);

/* a copy of [data, data + len) in a buffer of exactly len bytes */
u_char *fuzz_copy(ngx_pool_t *pool, const uint8_t *data, size_t len);

/* the input split at the first occurrence of sep: NGX_OK, or NGX_DECLINED */
ngx_int_t fuzz_split(const uint8_t *data, size_t size, const char *sep,
    ngx_str_t *a, ngx_str_t *b);

/* fuzz/pki: the test CA and device certificates (PEM) */
X509 *fuzz_pki_cert(const char *name);
EVP_PKEY *fuzz_pki_key(const char *name);
void fuzz_ca_init(ngx_http_mdm_ca_t *ca);
time_t fuzz_asn1_time(const ASN1_TIME *t);

#define fuzz_check(cond)                                                     \
    do {                                                                     \
        if (!(cond)) {                                                       \
            fprintf(stderr, "fuzz: check failed: %s (%s:%d)\n", #cond,       \
                    __FILE__, __LINE__);                                     \
            abort();                                                         \
        }                                                                    \
    } while (0)


#endif /* _FUZZ_REQUEST_H_INCLUDED_ */
