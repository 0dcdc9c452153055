
/*
 * Copyright (C) ngx_mdm contributors
 *
 * What the pieces of the device identity share: the certificate a source
 * presented (ngx_http_mdm_identity_source.c) before ngx_http_mdm_identity.c
 * checks it.
 */


#ifndef _NGX_HTTP_MDM_IDENTITY_PRIVATE_H_INCLUDED_
#define _NGX_HTTP_MDM_IDENTITY_PRIVATE_H_INCLUDED_


#include "ngx_http_mdm_identity.h"

#include <openssl/cms.h>
#include <openssl/err.h>
#include <openssl/pem.h>


typedef struct {
    X509             *cert;
    STACK_OF(X509)   *chain;        /* extra certificates the device sent */
    time_t            signing_time; /* 0 when the signature has none */
} ngx_http_mdm_presented_t;


/* NGX_DECLINED: nothing there; NGX_OK: p.cert set; NGX_ABORT: bad input */
ngx_int_t ngx_http_mdm_identity_present(ngx_http_request_t *r,
    ngx_http_mdm_identity_source_t *src, ngx_str_t *body,
    ngx_http_mdm_presented_t *p, const char **reason);
ngx_table_elt_t *ngx_http_mdm_identity_header(ngx_http_request_t *r,
    ngx_str_t *lowcase_name);
time_t ngx_http_mdm_identity_time(const ASN1_TIME *t);


#endif /* _NGX_HTTP_MDM_IDENTITY_PRIVATE_H_INCLUDED_ */
