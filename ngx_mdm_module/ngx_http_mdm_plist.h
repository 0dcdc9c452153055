
/*
 * Copyright (C) ngx_mdm contributors
 */


#ifndef _NGX_HTTP_MDM_PLIST_H_INCLUDED_
#define _NGX_HTTP_MDM_PLIST_H_INCLUDED_


#include "ngx_http_mdm_module.h"


/* a dictionary parsed from body, freed with r->pool; NULL if not a dict */
plist_t ngx_http_mdm_plist_parse(ngx_http_request_t *r, ngx_str_t *body);

/*
 * The same, with the reason it failed: an XML plist only, pre-scanned so
 * that libplist never nests deeper than 128 elements nor allocates more
 * than mdm_plist_max_nodes of them.
 */
plist_t ngx_http_mdm_plist_parse_body(ngx_http_request_t *r, ngx_str_t *body,
    const char **reason);

/*
 * Getters: NGX_OK, NGX_DECLINED when the key is absent, NGX_ERROR when it
 * holds another type.  Strings point into the tree (valid for the request);
 * data is copied into the pool.
 */
ngx_int_t ngx_http_mdm_plist_string(plist_t dict, const char *key,
    ngx_str_t *out);
ngx_int_t ngx_http_mdm_plist_data(ngx_pool_t *pool, plist_t dict,
    const char *key, ngx_str_t *out);
ngx_int_t ngx_http_mdm_plist_bool(plist_t dict, const char *key,
    ngx_uint_t *out);

/* serializes p as XML into the pool */
ngx_int_t ngx_http_mdm_plist_xml(ngx_pool_t *pool, plist_t p, ngx_str_t *out);


#endif /* _NGX_HTTP_MDM_PLIST_H_INCLUDED_ */
