
/*
 * Copyright (C) ngx_mdm contributors
 */


#ifndef _NGX_HTTP_MDM_FASTSIG_H_INCLUDED_
#define _NGX_HTTP_MDM_FASTSIG_H_INCLUDED_


#include "ngx_http_mdm_module.h"
#include "ngx_http_mdm_identity.h"


/*
 * The per-worker cache of verified signer certificates: size entries with
 * their public keys, and verdicts entries of certificates verified before,
 * whose keys are rebuilt from the certificate when they come back.
 */
ngx_int_t ngx_http_mdm_fastsig_init(ngx_cycle_t *cycle, ngx_uint_t size,
    ngx_uint_t verdicts);
void ngx_http_mdm_fastsig_exit(void);

/*
 * NGX_OK when der (a decoded Mdm-Signature) verifies over body with a
 * cached certificate (id filled); NGX_DECLINED: the full path decides.
 */
ngx_int_t ngx_http_mdm_fastsig_verify(ngx_http_mdm_loc_conf_t *mlcf,
    ngx_str_t *der, ngx_str_t *body, ngx_http_mdm_identity_t *id);

/* cert, whose DER has this SHA-256, passed the full verification for
 * mlcf's CA */
void ngx_http_mdm_fastsig_store(ngx_http_mdm_loc_conf_t *mlcf, X509 *cert,
    u_char *sha256, time_t not_before, time_t not_after);


#endif /* _NGX_HTTP_MDM_FASTSIG_H_INCLUDED_ */
