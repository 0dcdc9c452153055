/*
 * Copyright (C) ngx_mdm contributors
 *
 * DEP fetch and sync.  GET /account first: its urls[].limit.maximum caps
 * the page sizes.  Fetch (POST /server/devices) until more_to_follow is
 * false, then sync (POST /devices/sync) from the stored cursor every
 * dep_sync_interval or on sync-now.  Each page goes to Redis in one
 * script (worker_dep_page.lua) that records its devices, queues their
 * assignments and only then stores its cursor.  EXHAUSTED_CURSOR: sync;
 * EXPIRED_CURSOR or INVALID_CURSOR: the cursor is dropped, fetch again.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "dep.h"


typedef struct {
    mw_dep_name_t  *n;
    char           *cursor;
    int             more;
} mw_dep_page_t;


static void mw_dep_accounted(mw_dep_call_t *c);
static void mw_dep_paged(mw_dep_call_t *c);
static int mw_dep_cursor_error(mw_dep_call_t *c);
static void mw_dep_recorded(redisAsyncContext *ac, void *reply, void *data);
static void mw_dep_reset(redisAsyncContext *ac, void *reply, void *data);


void
mw_dep_account(mw_dep_name_t *n)
{
    if (mw_dep_call(n, "GET", "/account", NULL, mw_dep_accounted, NULL)
        != 0)
    {
        mw_dep_wait(n, 1.);
    }
}


static void
mw_dep_accounted(mw_dep_call_t *c)
{
    int             page;
    size_t          i;
    json_t         *j, *urls, *u, *max;
    long long       m;
    const char     *uri;
    mw_dep_name_t  *n = c->n;

    if (c->replayed == 2) {
        mw_dep_call_free(c);
        mw_dep_step(n);
        return;
    }

    j = (c->status == 200) ? json_loads(c->resp, 0, NULL) : NULL;
    if (!json_is_object(j)) {
        json_decref(j);
        mw_dep_failed(c, "GET /account");
        mw_dep_call_free(c);
        mw_dep_step(n);
        return;
    }

    /* without urls: Apple's documented default, 100 */
    page = n->dep->ctx->conf.dep_page_size;
    n->fetch_limit = n->sync_limit = page < 100 ? page : 100;
    n->assign_limit = MW_DEP_ASSIGN_MAX;

    urls = json_object_get(j, "urls");
    json_array_foreach(urls, i, u) {
        uri = json_string_value(json_object_get(u, "uri"));
        max = json_object_get(json_object_get(u, "limit"), "maximum");
        if (uri == NULL || !json_is_integer(max)) {
            continue;
        }

        m = json_integer_value(max);
        if (m < 1) {
            continue;
        }

        if (strcmp(uri, "/server/devices") == 0) {
            n->fetch_limit = (int) (m < page ? m : page);
        } else if (strcmp(uri, "/devices/sync") == 0) {
            n->sync_limit = (int) (m < page ? m : page);
        } else if (strcmp(uri, "/profile/devices") == 0) {
            n->assign_limit = (int) (m < MW_DEP_ASSIGN_MAX ? m
                                                           : MW_DEP_ASSIGN_MAX);
        }
    }

    json_decref(j);
    n->account_ok = 1;
    mw_log("info", "dep %s: page sizes: fetch %d, sync %d, assign %d",
           n->name, n->fetch_limit, n->sync_limit, n->assign_limit);

    mw_dep_call_free(c);
    mw_dep_step(n);
}


void
mw_dep_page(mw_dep_name_t *n)
{
    int          fetch;
    char        *body;
    json_t      *j;

    if (n->phase == MW_DEP_SYNC && n->cursor == NULL) {
        n->phase = MW_DEP_FETCH;
    }

    fetch = (n->phase == MW_DEP_FETCH);

    j = json_pack("{s:i}", "limit", fetch ? n->fetch_limit : n->sync_limit);
    if (j && n->cursor) {
        json_object_set_new(j, "cursor", json_string(n->cursor));
    }

    body = j ? json_dumps(j, JSON_COMPACT) : NULL;
    json_decref(j);

    if (body == NULL
        || mw_dep_call(n, "POST", fetch ? "/server/devices" : "/devices/sync",
                       body, mw_dep_paged, NULL) != 0)
    {
        mw_dep_wait(n, 1.);
    }

    free(body);
}


static void
mw_dep_paged(mw_dep_call_t *c)
{
    int             more;
    char            now[24], next[24], max[24], ttl[24], cnt[4][24];
    json_t         *j;
    const char     *cursor, *argv[13];
    mw_conf_t      *conf;
    mw_dep_page_t  *pg;
    mw_dep_name_t  *n = c->n;

    conf = &n->dep->ctx->conf;

    if (c->replayed == 2) {
        mw_dep_call_free(c);
        mw_dep_step(n);
        return;
    }

    if (c->status == 400 && mw_dep_cursor_error(c)) {
        return;
    }

    j = (c->status == 200) ? json_loads(c->resp, 0, NULL) : NULL;
    cursor = json_string_value(json_object_get(j, "cursor"));

    if (cursor == NULL || !json_is_array(json_object_get(j, "devices"))) {
        json_decref(j);
        mw_dep_failed(c, n->phase == MW_DEP_FETCH ? "POST /server/devices"
                                                  : "POST /devices/sync");
        mw_dep_call_free(c);
        mw_dep_step(n);
        return;
    }

    more = json_is_true(json_object_get(j, "more_to_follow"));

    pg = calloc(1, sizeof(mw_dep_page_t));
    if (pg == NULL || (pg->cursor = strdup(cursor)) == NULL) {
        free(pg);
        json_decref(j);
        mw_dep_call_free(c);
        mw_dep_wait(n, 1.);
        return;
    }

    json_decref(j);
    pg->n = n;
    pg->more = more;

    snprintf(now, sizeof(now), "%lld", mw_now_ms());
    snprintf(next, sizeof(next), "%lld",
             mw_now_ms() + conf->dep_sync_interval * 1000);
    snprintf(max, sizeof(max), "%ld", conf->dep_events_max);
    snprintf(ttl, sizeof(ttl), "%lld", (long long) conf->dep_deleted_ttl * 1000);
    for (int i = 0; i < 4; i++) {
        snprintf(cnt[i], sizeof(cnt[i]), "%lld", n->cycle[i]);
    }

    argv[0] = n->name;
    argv[1] = now;
    argv[2] = n->phase == MW_DEP_FETCH ? "fetch" : "sync";
    argv[3] = pg->cursor;
    argv[4] = more ? argv[2] : "idle";
    argv[5] = next;
    argv[6] = max;
    argv[7] = ttl;
    argv[8] = cnt[0];
    argv[9] = cnt[1];
    argv[10] = cnt[2];
    argv[11] = cnt[3];
    argv[12] = c->resp;

    /* the lane stays busy until the page is in Redis */
    if (mw_redis_eval(&n->dep->ctx->cmd, MW_LUA_DEP_PAGE, mw_dep_recorded,
                      pg, 0, 13, argv) != 0)
    {
        free(pg->cursor);
        free(pg);
        mw_dep_call_free(c);
        mw_dep_wait(n, 1.);
        return;
    }

    n->busy++;
    n->dep->lease.pending++;
    mw_dep_call_free(c);
}


static void
mw_dep_recorded(redisAsyncContext *ac, void *reply, void *data)
{
    size_t          i;
    redisReply     *r = reply;
    mw_dep_page_t  *pg = data;
    mw_dep_name_t  *n = pg->n;

    (void) ac;

    n->busy--;
    n->dep->lease.pending--;

    if (r == NULL || r->type != REDIS_REPLY_ARRAY || r->elements != 5) {
        /* not stored: the same page is asked for again */
        mw_log("error", "dep %s: the page was not recorded: %s", n->name,
               r && r->type == REDIS_REPLY_ERROR ? r->str : "redis down");
        mw_dep_wait(n, 1.);
        goto done;
    }

    for (i = 0; i < 4; i++) {
        n->cycle[i] += r->element[i]->integer;
    }

    mw_lane_set(&n->cursor, pg->cursor, strlen(pg->cursor));

    if (!pg->more) {
        mw_log("info", "dep %s: %s done: %lld added, %lld modified, "
               "%lld deleted, %lld queued for assignment, %lld devices",
               n->name, n->phase == MW_DEP_FETCH ? "fetch" : "sync",
               n->cycle[0], n->cycle[1], n->cycle[2], n->cycle[3],
               r->element[4]->integer);
        n->phase = MW_DEP_IDLE;
        n->fetching = 0;
        n->next_sync = mw_now_ms() + n->dep->ctx->conf.dep_sync_interval * 1000;
    }

    if (r->element[3]->integer > 0 && n->assign_due == 0) {
        n->assign_due = mw_now_ms();
    }

    mw_dep_step(n);

done:

    free(pg->cursor);
    free(pg);
}


/* 400 with a cursor error: 1 if handled */

static int
mw_dep_cursor_error(mw_dep_call_t *c)
{
    char            now[24];
    const char     *argv[3];
    mw_dep_name_t  *n = c->n;

    if (strstr(c->resp, "EXHAUSTED_CURSOR")) {
        mw_log("info", "dep %s: EXHAUSTED_CURSOR: syncing", n->name);
        n->phase = MW_DEP_SYNC;
        n->fetching = 0;
        mw_dep_call_free(c);
        mw_dep_step(n);
        return 1;
    }

    if (!strstr(c->resp, "EXPIRED_CURSOR") && !strstr(c->resp, "INVALID_CURSOR"))
    {
        return 0;
    }

    argv[2] = strstr(c->resp, "EXPIRED_CURSOR") ? "EXPIRED_CURSOR: fetching again"
                                                : "INVALID_CURSOR: fetching again";
    mw_log("warn", "dep %s: %s", n->name, argv[2]);

    free(n->cursor);
    n->cursor = NULL;
    n->phase = MW_DEP_FETCH;
    n->fetching = 1;

    snprintf(now, sizeof(now), "%lld", mw_now_ms());
    argv[0] = n->name;
    argv[1] = now;

    if (mw_dep_eval(n, MW_LUA_DEP_CURSOR, mw_dep_reset, 3, argv) != 0) {
        mw_dep_wait(n, 1.);
    }

    mw_dep_call_free(c);
    return 1;
}


static void
mw_dep_reset(redisAsyncContext *ac, void *reply, void *data)
{
    int             ok;
    mw_dep_name_t  *n;

    (void) ac;

    n = mw_dep_done_redis(reply, data, &ok);
    if (!ok) {
        mw_dep_wait(n, 1.);
    }

    mw_dep_step(n);
}
