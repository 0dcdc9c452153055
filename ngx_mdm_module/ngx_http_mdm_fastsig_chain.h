
/*
 * Copyright (C) ngx_mdm contributors
 */


#ifndef _NGX_HTTP_MDM_FASTSIG_CHAIN_H_INCLUDED_
#define _NGX_HTTP_MDM_FASTSIG_CHAIN_H_INCLUDED_


#include "ngx_http_mdm_module.h"
#include "ngx_http_mdm_fastsig_cache.h"


/*
 * The first sight of a signer certificate this worker knows nothing of:
 * its chain to mlcf's CA checked from its DER, and a key entry for it
 * (ngx_http_mdm_fastsig_admit); NULL for anything unusual, and the full
 * path decides.
 */
ngx_http_mdm_fastsig_entry_t *ngx_http_mdm_fastsig_first_sight(
    ngx_http_mdm_loc_conf_t *mlcf, u_char *key, ngx_http_mdm_signed_t *s,
    time_t now);

void ngx_http_mdm_fastsig_chain_exit(void);


#endif /* _NGX_HTTP_MDM_FASTSIG_CHAIN_H_INCLUDED_ */
