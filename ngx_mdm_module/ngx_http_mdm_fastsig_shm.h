
/*
 * Copyright (C) ngx_mdm contributors
 */


#ifndef _NGX_HTTP_MDM_FASTSIG_SHM_H_INCLUDED_
#define _NGX_HTTP_MDM_FASTSIG_SHM_H_INCLUDED_


#include "ngx_http_mdm_module.h"
#include "ngx_http_mdm_fastsig_cache.h"


/* the zone a device location gets when it names none (README) */
#define NGX_HTTP_MDM_FASTSIG_SHM_NAME  "mdm_identity"
#define NGX_HTTP_MDM_FASTSIG_SHM_SIZE  (16 * 1024 * 1024)

/* the smallest zone: the slab pool's own pages and a few verdicts */
#define NGX_HTTP_MDM_FASTSIG_SHM_MIN   (32 * 1024)


typedef struct {
    ngx_uint_t         entries;      /* verdicts held now */
    ngx_uint_t         hits;
    ngx_uint_t         misses;
    ngx_uint_t         evictions;    /* LRU, to make room */
    size_t             size;         /* of the zone, bytes */
} ngx_http_mdm_fastsig_shm_stats_t;


/* the zone NAME of SIZE bytes, shared by every location that names it */
ngx_shm_zone_t *ngx_http_mdm_fastsig_shm_add(ngx_conf_t *cf, ngx_str_t *name,
    size_t size);

/* the verdict on key for the CA with this fingerprint: NGX_OK and t */
ngx_int_t ngx_http_mdm_fastsig_shm_find(ngx_shm_zone_t *zone, u_char *key,
    u_char *ca, time_t now, ngx_http_mdm_fastsig_times_t *t);

/* key is known good for the CA with this fingerprint until t->expires */
void ngx_http_mdm_fastsig_shm_store(ngx_shm_zone_t *zone, u_char *key,
    u_char *ca, ngx_http_mdm_fastsig_times_t *t, time_t now);

void ngx_http_mdm_fastsig_shm_stats(ngx_shm_zone_t *zone,
    ngx_http_mdm_fastsig_shm_stats_t *st);


#endif /* _NGX_HTTP_MDM_FASTSIG_SHM_H_INCLUDED_ */
