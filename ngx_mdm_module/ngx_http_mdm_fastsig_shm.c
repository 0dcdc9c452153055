
/*
 * Copyright (C) ngx_mdm contributors
 *
 * The verdicts of the identity cache in nginx shared memory: one table of
 * verified certificates for all workers, which outlives a reload.  A
 * verdict says "the certificate whose DER has this SHA-256 chains to the
 * CA material with this fingerprint, was valid from not_before to
 * not_after, and is checked again at expires".  The CA is named by the
 * fingerprint of its certificates (ngx_http_mdm_identity_conf.c), not by a
 * pointer, so the verdicts of an unchanged CA survive `nginx -s reload`
 * and those of a changed one are never found again (they age out of the
 * LRU).
 *
 * The layout follows ngx_http_limit_req: a slab pool, a red-black tree for
 * the lookups and a queue for the LRU order, all under the pool's mutex,
 * held only for a tree walk and a few stores.  Every verdict is one
 * 128-byte slab chunk; when the pool is full the least recently used ones
 * make room, and a verdict that still does not fit is simply not kept
 * (the request never fails for it).  The per-worker key cache stays in
 * front: a device whose key is cached never touches the zone.
 */


#include "ngx_http_mdm_fastsig_shm.h"


/* bytes of the CA fingerprint a verdict keeps: 192 bits never collide */
#define NGX_HTTP_MDM_SHM_CA_LEN   24

/* the SHA-256 beyond the tree key, then the CA */
#define NGX_HTTP_MDM_SHM_ID_LEN                                              \
    (SHA256_DIGEST_LENGTH - sizeof(ngx_rbtree_key_t) + NGX_HTTP_MDM_SHM_CA_LEN)

/* the most verdicts evicted to make room for one */
#define NGX_HTTP_MDM_SHM_EVICT    8


/* 128 bytes on 64-bit platforms: one slab chunk */
typedef struct {
    ngx_rbtree_node_t   node;        /* key: the SHA-256's first bytes */
    ngx_queue_t         lru;
    u_char              id[NGX_HTTP_MDM_SHM_ID_LEN];
    time_t              not_before;
    time_t              not_after;
    time_t              expires;
} ngx_http_mdm_fastsig_shm_node_t;


typedef struct {
    ngx_rbtree_t        rbtree;
    ngx_rbtree_node_t   sentinel;
    ngx_queue_t         lru;         /* most recently used first */
    ngx_uint_t          entries;
    ngx_uint_t          hits;
    ngx_uint_t          misses;
    ngx_uint_t          evictions;
} ngx_http_mdm_fastsig_shm_sh_t;


typedef struct {
    ngx_http_mdm_fastsig_shm_sh_t  *sh;
    ngx_slab_pool_t                *shpool;
} ngx_http_mdm_fastsig_shm_ctx_t;


static ngx_int_t ngx_http_mdm_fastsig_shm_init_zone(ngx_shm_zone_t *shm_zone,
    void *data);
static void ngx_http_mdm_fastsig_shm_insert(ngx_rbtree_node_t *temp,
    ngx_rbtree_node_t *node, ngx_rbtree_node_t *sentinel);
static ngx_rbtree_key_t ngx_http_mdm_fastsig_shm_id(u_char *key, u_char *ca,
    u_char *id);
static ngx_http_mdm_fastsig_shm_node_t *ngx_http_mdm_fastsig_shm_lookup(
    ngx_http_mdm_fastsig_shm_sh_t *sh, ngx_rbtree_key_t k, u_char *id);
static void ngx_http_mdm_fastsig_shm_delete(
    ngx_http_mdm_fastsig_shm_ctx_t *ctx, ngx_http_mdm_fastsig_shm_node_t *v);


/* the zones' tag: no other user of shared memory shares their names */
static ngx_uint_t  ngx_http_mdm_fastsig_shm_tag;


ngx_shm_zone_t *
ngx_http_mdm_fastsig_shm_add(ngx_conf_t *cf, ngx_str_t *name, size_t size)
{
    ngx_shm_zone_t                   *zone, **zp;
    ngx_http_mdm_main_conf_t         *mmcf;
    ngx_http_mdm_fastsig_shm_ctx_t   *ctx;

    zone = ngx_shared_memory_add(cf, name, size,
                                 &ngx_http_mdm_fastsig_shm_tag);
    if (zone == NULL) {
        return NULL;
    }

    if (zone->data) {
        return zone;            /* another location named it first */
    }

    ctx = ngx_pcalloc(cf->pool, sizeof(ngx_http_mdm_fastsig_shm_ctx_t));
    if (ctx == NULL) {
        return NULL;
    }

    zone->init = ngx_http_mdm_fastsig_shm_init_zone;
    zone->data = ctx;

    /* for the metrics: the zones of this configuration */
    mmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_mdm_module);

    if (mmcf->identity_zones == NULL) {
        mmcf->identity_zones = ngx_array_create(cf->pool, 1,
                                                sizeof(ngx_shm_zone_t *));
        if (mmcf->identity_zones == NULL) {
            return NULL;
        }
    }

    zp = ngx_array_push(mmcf->identity_zones);
    if (zp == NULL) {
        return NULL;
    }

    *zp = zone;

    return zone;
}


static ngx_int_t
ngx_http_mdm_fastsig_shm_init_zone(ngx_shm_zone_t *shm_zone, void *data)
{
    ngx_http_mdm_fastsig_shm_ctx_t  *octx = data;

    size_t                           len;
    ngx_http_mdm_fastsig_shm_ctx_t  *ctx;

    ctx = shm_zone->data;

    if (octx) {
        /* a reload: the zone and its verdicts go on */
        ctx->sh = octx->sh;
        ctx->shpool = octx->shpool;

        /* the tree's insert function is ours: where this module is now */
        ngx_shmtx_lock(&ctx->shpool->mutex);
        ctx->sh->rbtree.insert = ngx_http_mdm_fastsig_shm_insert;
        ngx_shmtx_unlock(&ctx->shpool->mutex);

        return NGX_OK;
    }

    ctx->shpool = (ngx_slab_pool_t *) shm_zone->shm.addr;

    if (shm_zone->shm.exists) {
        ctx->sh = ctx->shpool->data;
        return NGX_OK;
    }

    ctx->sh = ngx_slab_calloc(ctx->shpool,
                              sizeof(ngx_http_mdm_fastsig_shm_sh_t));
    if (ctx->sh == NULL) {
        return NGX_ERROR;
    }

    ctx->shpool->data = ctx->sh;

    ngx_rbtree_init(&ctx->sh->rbtree, &ctx->sh->sentinel,
                    ngx_http_mdm_fastsig_shm_insert);
    ngx_queue_init(&ctx->sh->lru);

    len = sizeof(" in mdm_identity_cache zone \"\"") + shm_zone->shm.name.len;

    ctx->shpool->log_ctx = ngx_slab_alloc(ctx->shpool, len);
    if (ctx->shpool->log_ctx == NULL) {
        return NGX_ERROR;
    }

    ngx_sprintf(ctx->shpool->log_ctx, " in mdm_identity_cache zone \"%V\"%Z",
                &shm_zone->shm.name);

    /* a full zone is normal: the LRU makes room, nothing to log */
    ctx->shpool->log_nomem = 0;

    return NGX_OK;
}


/*
 * The verdict on key for the CA whose fingerprint is ca, still good at
 * now: NGX_OK, t filled, and the verdict becomes the most recently used.
 * An expired verdict is dropped on the way.
 */

ngx_int_t
ngx_http_mdm_fastsig_shm_find(ngx_shm_zone_t *zone, u_char *key, u_char *ca,
    time_t now, ngx_http_mdm_fastsig_times_t *t)
{
    u_char                            id[NGX_HTTP_MDM_SHM_ID_LEN];
    ngx_int_t                         rc;
    ngx_rbtree_key_t                  k;
    ngx_http_mdm_fastsig_shm_ctx_t   *ctx;
    ngx_http_mdm_fastsig_shm_node_t  *v;

    ctx = zone->data;
    k = ngx_http_mdm_fastsig_shm_id(key, ca, id);
    rc = NGX_DECLINED;

    ngx_shmtx_lock(&ctx->shpool->mutex);

    v = ngx_http_mdm_fastsig_shm_lookup(ctx->sh, k, id);

    if (v && now >= v->expires) {
        ngx_http_mdm_fastsig_shm_delete(ctx, v);
        v = NULL;
    }

    if (v) {
        t->not_before = v->not_before;
        t->not_after = v->not_after;
        t->expires = v->expires;

        ngx_queue_remove(&v->lru);
        ngx_queue_insert_head(&ctx->sh->lru, &v->lru);

        ctx->sh->hits++;
        rc = NGX_OK;

    } else {
        ctx->sh->misses++;
    }

    ngx_shmtx_unlock(&ctx->shpool->mutex);

    return rc;
}


/*
 * key is known good for the CA whose fingerprint is ca: a new verdict, or
 * the one there renewed.  Room is made by dropping an expired verdict or
 * two from the LRU end, then the least recently used ones.
 */

void
ngx_http_mdm_fastsig_shm_store(ngx_shm_zone_t *zone, u_char *key, u_char *ca,
    ngx_http_mdm_fastsig_times_t *t, time_t now)
{
    u_char                            id[NGX_HTTP_MDM_SHM_ID_LEN];
    ngx_uint_t                        i;
    ngx_queue_t                      *q;
    ngx_rbtree_key_t                  k;
    ngx_http_mdm_fastsig_shm_sh_t    *sh;
    ngx_http_mdm_fastsig_shm_ctx_t   *ctx;
    ngx_http_mdm_fastsig_shm_node_t  *v;

    ctx = zone->data;
    sh = ctx->sh;
    k = ngx_http_mdm_fastsig_shm_id(key, ca, id);

    ngx_shmtx_lock(&ctx->shpool->mutex);

    v = ngx_http_mdm_fastsig_shm_lookup(sh, k, id);

    if (v) {
        ngx_queue_remove(&v->lru);
        goto fill;
    }

    for (i = 0; i < 2 && !ngx_queue_empty(&sh->lru); i++) {
        q = ngx_queue_last(&sh->lru);
        v = ngx_queue_data(q, ngx_http_mdm_fastsig_shm_node_t, lru);

        if (now < v->expires) {
            break;
        }

        ngx_http_mdm_fastsig_shm_delete(ctx, v);
    }

    v = ngx_slab_alloc_locked(ctx->shpool,
                              sizeof(ngx_http_mdm_fastsig_shm_node_t));

    for (i = 0;
         v == NULL && i < NGX_HTTP_MDM_SHM_EVICT && !ngx_queue_empty(&sh->lru);
         i++)
    {
        q = ngx_queue_last(&sh->lru);
        ngx_http_mdm_fastsig_shm_delete(ctx,
            ngx_queue_data(q, ngx_http_mdm_fastsig_shm_node_t, lru));
        sh->evictions++;

        v = ngx_slab_alloc_locked(ctx->shpool,
                                  sizeof(ngx_http_mdm_fastsig_shm_node_t));
    }

    if (v == NULL) {
        ngx_shmtx_unlock(&ctx->shpool->mutex);
        return;
    }

    v->node.key = k;
    ngx_memcpy(v->id, id, NGX_HTTP_MDM_SHM_ID_LEN);
    ngx_rbtree_insert(&sh->rbtree, &v->node);
    sh->entries++;

fill:

    v->not_before = t->not_before;
    v->not_after = t->not_after;
    v->expires = t->expires;
    ngx_queue_insert_head(&sh->lru, &v->lru);

    ngx_shmtx_unlock(&ctx->shpool->mutex);
}


void
ngx_http_mdm_fastsig_shm_stats(ngx_shm_zone_t *zone,
    ngx_http_mdm_fastsig_shm_stats_t *st)
{
    ngx_http_mdm_fastsig_shm_ctx_t  *ctx;

    ctx = zone->data;

    ngx_shmtx_lock(&ctx->shpool->mutex);

    st->entries = ctx->sh->entries;
    st->hits = ctx->sh->hits;
    st->misses = ctx->sh->misses;
    st->evictions = ctx->sh->evictions;

    ngx_shmtx_unlock(&ctx->shpool->mutex);

    st->size = zone->shm.size;
}


/* the tree key and the rest of a verdict's identity: SHA-256, then CA */

static ngx_rbtree_key_t
ngx_http_mdm_fastsig_shm_id(u_char *key, u_char *ca, u_char *id)
{
    ngx_rbtree_key_t  k;

    ngx_memcpy(&k, key, sizeof(ngx_rbtree_key_t));
    ngx_memcpy(id, key + sizeof(ngx_rbtree_key_t),
               SHA256_DIGEST_LENGTH - sizeof(ngx_rbtree_key_t));
    ngx_memcpy(id + SHA256_DIGEST_LENGTH - sizeof(ngx_rbtree_key_t), ca,
               NGX_HTTP_MDM_SHM_CA_LEN);

    return k;
}


static ngx_http_mdm_fastsig_shm_node_t *
ngx_http_mdm_fastsig_shm_lookup(ngx_http_mdm_fastsig_shm_sh_t *sh,
    ngx_rbtree_key_t k, u_char *id)
{
    ngx_int_t                         rc;
    ngx_rbtree_node_t                *node, *sentinel;
    ngx_http_mdm_fastsig_shm_node_t  *v;

    node = sh->rbtree.root;
    sentinel = sh->rbtree.sentinel;

    while (node != sentinel) {

        if (k != node->key) {
            node = (k < node->key) ? node->left : node->right;
            continue;
        }

        v = (ngx_http_mdm_fastsig_shm_node_t *) node;
        rc = ngx_memcmp(id, v->id, NGX_HTTP_MDM_SHM_ID_LEN);

        if (rc == 0) {
            return v;
        }

        node = (rc < 0) ? node->left : node->right;
    }

    return NULL;
}


/* ordered by key, then by the rest of the identity, as the lookup walks */

static void
ngx_http_mdm_fastsig_shm_insert(ngx_rbtree_node_t *temp,
    ngx_rbtree_node_t *node, ngx_rbtree_node_t *sentinel)
{
    ngx_rbtree_node_t               **p;
    ngx_http_mdm_fastsig_shm_node_t  *n, *t;

    n = (ngx_http_mdm_fastsig_shm_node_t *) node;

    for ( ;; ) {

        if (node->key != temp->key) {
            p = (node->key < temp->key) ? &temp->left : &temp->right;

        } else {
            t = (ngx_http_mdm_fastsig_shm_node_t *) temp;
            p = (ngx_memcmp(n->id, t->id, NGX_HTTP_MDM_SHM_ID_LEN) < 0)
                ? &temp->left : &temp->right;
        }

        if (*p == sentinel) {
            break;
        }

        temp = *p;
    }

    *p = node;
    node->parent = temp;
    node->left = sentinel;
    node->right = sentinel;
    ngx_rbt_red(node);
}


static void
ngx_http_mdm_fastsig_shm_delete(ngx_http_mdm_fastsig_shm_ctx_t *ctx,
    ngx_http_mdm_fastsig_shm_node_t *v)
{
    ngx_queue_remove(&v->lru);
    ngx_rbtree_delete(&ctx->sh->rbtree, &v->node);
    ngx_slab_free_locked(ctx->shpool, v);
    ctx->sh->entries--;
}
