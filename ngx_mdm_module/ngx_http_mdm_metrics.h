
/*
 * Copyright (C) ngx_mdm contributors
 */


#ifndef _NGX_HTTP_MDM_METRICS_H_INCLUDED_
#define _NGX_HTTP_MDM_METRICS_H_INCLUDED_


#include "ngx_http_mdm_module.h"


/* identity failures, by kind (the metric's "reason" label) */
#define NGX_HTTP_MDM_M_ID_NONE       0   /* no certificate presented */
#define NGX_HTTP_MDM_M_ID_EXPIRED    1
#define NGX_HTTP_MDM_M_ID_NOTYET     2
#define NGX_HTTP_MDM_M_ID_UNTRUSTED  3   /* chain does not verify */
#define NGX_HTTP_MDM_M_ID_USAGE      4   /* EKU, KU */
#define NGX_HTTP_MDM_M_ID_SIGNATURE  5   /* Mdm-Signature does not verify */
#define NGX_HTTP_MDM_M_ID_BINDING    6   /* not the enrollment's certificate */
#define NGX_HTTP_MDM_M_ID_OTHER      7
#define NGX_HTTP_MDM_M_ID_N          8


ngx_int_t ngx_http_mdm_metrics_init(ngx_conf_t *cf);
char *ngx_http_mdm_metrics_directive(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);

void ngx_http_mdm_metrics_redis_call(ngx_msec_t started, ngx_uint_t failed);
void ngx_http_mdm_metrics_redis_reconnect(void);
void ngx_http_mdm_metrics_cache(ngx_uint_t hit);
void ngx_http_mdm_metrics_identity(const char *reason);


#endif /* _NGX_HTTP_MDM_METRICS_H_INCLUDED_ */
