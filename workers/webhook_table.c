/*
 * Copyright (C) ngx_mdm contributors
 *
 * A small chained hash table for webhook delivery: lanes by enrollment id
 * and buffered events by stream id, found in O(1) however large the
 * fleet.  Nodes live inside the structures they index; keys are (pointer,
 * length) and may hold any byte.  The table doubles when it gets as full
 * as it is wide; it holds at most the buffered events, so it stays small.
 */

#include <stdlib.h>
#include <string.h>

#include "webhook.h"


#define MW_WH_TABLE_MIN  64


/* FNV-1a */
static uint32_t
mw_wh_hash(const char *key, size_t len)
{
    size_t    i;
    uint32_t  h = 2166136261u;

    for (i = 0; i < len; i++) {
        h ^= (unsigned char) key[i];
        h *= 16777619u;
    }

    return h;
}


mw_wh_node_t *
mw_wh_table_find(mw_wh_table_t *t, const char *key, size_t len)
{
    uint32_t       h;
    mw_wh_node_t  *n;

    if (t->size == 0) {
        return NULL;
    }

    h = mw_wh_hash(key, len);

    for (n = t->buckets[h & (t->size - 1)]; n; n = n->next) {
        if (n->hash == h && n->len == len && memcmp(n->key, key, len) == 0) {
            return n;
        }
    }

    return NULL;
}


static int
mw_wh_table_grow(mw_wh_table_t *t)
{
    size_t          i, size;
    mw_wh_node_t  **b, *n, *next;

    size = t->size ? t->size * 2 : MW_WH_TABLE_MIN;

    b = calloc(size, sizeof(mw_wh_node_t *));
    if (b == NULL) {
        return -1;
    }

    for (i = 0; i < t->size; i++) {
        for (n = t->buckets[i]; n; n = next) {
            next = n->next;
            n->next = b[n->hash & (size - 1)];
            b[n->hash & (size - 1)] = n;
        }
    }

    free(t->buckets);
    t->buckets = b;
    t->size = size;

    return 0;
}


int
mw_wh_table_insert(mw_wh_table_t *t, mw_wh_node_t *n, const char *key,
    size_t len)
{
    mw_wh_node_t  **b;

    if (t->count >= t->size && mw_wh_table_grow(t) != 0) {
        return -1;
    }

    n->key = key;
    n->len = len;
    n->hash = mw_wh_hash(key, len);

    b = &t->buckets[n->hash & (t->size - 1)];
    n->next = *b;
    *b = n;
    t->count++;

    return 0;
}


void
mw_wh_table_remove(mw_wh_table_t *t, mw_wh_node_t *n)
{
    mw_wh_node_t  **p;

    for (p = &t->buckets[n->hash & (t->size - 1)]; *p; p = &(*p)->next) {
        if (*p == n) {
            *p = n->next;
            t->count--;
            return;
        }
    }
}


void
mw_wh_table_free(mw_wh_table_t *t)
{
    free(t->buckets);
    memset(t, 0, sizeof(mw_wh_table_t));
}
