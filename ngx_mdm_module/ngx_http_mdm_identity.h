
/*
 * Copyright (C) ngx_mdm contributors
 */


#ifndef _NGX_HTTP_MDM_IDENTITY_H_INCLUDED_
#define _NGX_HTTP_MDM_IDENTITY_H_INCLUDED_


#include "ngx_http_mdm_module.h"


typedef struct {
    X509         *cert;          /* freed with the request pool */
    u_char        sha256[64];    /* lowercase hex of the DER */
    time_t        not_after;
    const char   *source;        /* "Mdm-Signature", "TLS", a header name */
    ngx_uint_t    status;        /* with NGX_DECLINED: 403, or 0 for 400 */
} ngx_http_mdm_identity_t;


/*
 * Finds the device certificate in the first configured source that carries
 * one, checks it (signature over body, CA chain for client auth at the
 * current time, mdm_signature_skew) and fills id.  A header source is
 * read only from the addresses of its from=.  Returns NGX_OK, NGX_DECLINED
 * with *reason set (answer id->status, or 400 when it is 0), or NGX_ERROR.
 */
ngx_int_t ngx_http_mdm_identity_verify(ngx_http_request_t *r,
    ngx_http_mdm_loc_conf_t *mlcf, ngx_str_t *body,
    ngx_http_mdm_identity_t *id, const char **reason);

char *ngx_http_mdm_identity_directive(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
char *ngx_http_mdm_identity_ca_directive(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);


#endif /* _NGX_HTTP_MDM_IDENTITY_H_INCLUDED_ */
