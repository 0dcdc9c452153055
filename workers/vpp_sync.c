/*
 * Copyright (C) ngx_mdm contributors
 *
 * What the worker keeps of a location (V1): Apple's limits from
 * /service/config (maxSerialNumbers sizes the install batches) and a look
 * at /client/config (the mdmInfo still ours), both hourly; the
 * assets (GET /assets, every page by pageIndex until no nextPageIndex)
 * and the assignments (GET /assignments: a full walk at the first sync,
 * after a "sync" job and every vpp_full_interval; otherwise the changes
 * since the versionId of the last walk's first page).  A full walk's pages
 * are written aside and swapped in afterwards in bounded steps, as what a
 * cut-off walk left is cleared before one (worker_vpp_page.lua).
 */

#include <stdlib.h>
#include <string.h>

#include "vpp.h"


#define MW_VPP_PAGES_MAX  100000


static void mw_vpp_service_done(mw_vpp_call_t *c);
static void mw_vpp_client_done(mw_vpp_call_t *c);
static void mw_vpp_page_done(mw_vpp_call_t *c);
static void mw_vpp_page_stored(redisAsyncContext *ac, void *reply,
    void *data);
static void mw_vpp_step_script(mw_vpp_loc_t *l);
static void mw_vpp_stepped(redisAsyncContext *ac, void *reply, void *data);
static void mw_vpp_walk_done(mw_vpp_loc_t *l);


void
mw_vpp_service(mw_vpp_loc_t *l)
{
    if (mw_vpp_call(l, "GET", "/service/config", NULL, NULL,
                    mw_vpp_service_done, NULL) != 0)
    {
        mw_vpp_wait(l, 1.);
    }
}


static void
mw_vpp_service_done(mw_vpp_call_t *c)
{
    long           max;
    json_t        *lim;
    mw_vpp_loc_t  *l = c->l;
    mw_conf_t     *conf = &l->vpp->ctx->conf;

    if (c->status == 200 && c->errnum == 0) {
        lim = json_object_get(c->json, "limits");
        max = (long) json_integer_value(json_object_get(lim,
                                                        "maxSerialNumbers"));
        if (max <= 0 || max > conf->vpp_batch_max) {
            max = conf->vpp_batch_max;
        }
        l->max_serials = (int) max;
        mw_log("info", "vpp %s: /service/config: maxSerialNumbers %ld",
               l->name, max);
        mw_vpp_call_free(c);

        /* the location still ours (mdmInfo) and the token still good */
        if (mw_vpp_call(l, "GET", "/client/config", NULL, NULL,
                        mw_vpp_client_done, NULL) != 0)
        {
            mw_vpp_wait(l, 1.);
        }
        return;
    }

    mw_vpp_failed(c, "/service/config");
    mw_vpp_call_free(c);
    mw_vpp_step(l);
}


static void
mw_vpp_client_done(mw_vpp_call_t *c)
{
    mw_vpp_loc_t  *l = c->l;

    if (c->status == 200 && c->errnum == 0) {
        l->svc_at = mw_now_ms();
    } else {
        mw_vpp_failed(c, "/client/config");
    }

    mw_vpp_call_free(c);
    mw_vpp_step(l);
}


void
mw_vpp_sync_start(mw_vpp_loc_t *l)
{
    long long   now = mw_now_ms();

    l->phase = MW_VPP_ASSETS;
    l->page = 0;
    l->delta = !(l->full || l->version_id == NULL || now >= l->next_full);
    mw_log("info", "vpp %s: sync starts (%s)", l->name,
           l->delta ? "assignments since the last version" : "full");
}


void
mw_vpp_page(mw_vpp_loc_t *l)
{
    char   path[256];

    if (l->phase == MW_VPP_CLEAR || l->phase == MW_VPP_SWAP) {
        mw_vpp_step_script(l);
        return;
    }

    if (l->phase == MW_VPP_ASSETS) {
        if (l->page) {
            snprintf(path, sizeof(path), "/assets?pageIndex=%ld", l->page);
        } else {
            snprintf(path, sizeof(path), "/assets");
        }

    } else if (l->delta) {
        snprintf(path, sizeof(path), "/assignments?sinceVersionId=%.100s%s",
                 l->version_id ? l->version_id : "", "");
        if (l->page) {
            snprintf(path + strlen(path), sizeof(path) - strlen(path),
                     "&pageIndex=%ld", l->page);
        }

    } else if (l->page) {
        snprintf(path, sizeof(path), "/assignments?pageIndex=%ld", l->page);

    } else {
        snprintf(path, sizeof(path), "/assignments");
    }

    if (mw_vpp_call(l, "GET", path, NULL, NULL, mw_vpp_page_done, NULL) != 0) {
        mw_vpp_wait(l, 1.);
    }
}


static void
mw_vpp_page_done(mw_vpp_call_t *c)
{
    int            kind, argc, last;
    char           now[32], next[32], *vid, **dumps;
    size_t         i, n, k;
    json_t        *items, *it, *nx;
    const char    *a, *s, **argv;
    mw_vpp_loc_t  *l = c->l;
    mw_conf_t     *conf = &l->vpp->ctx->conf;

    if (l->phase == MW_VPP_IDLE) {
        mw_vpp_call_free(c);      /* stopped meanwhile */
        mw_vpp_step(l);
        return;
    }

    if (c->status != 200 || c->errnum != 0) {
        kind = mw_vpp_failed(c, "page");

        if (kind == MW_VPP_ERROR && l->phase == MW_VPP_ASSIGNMENTS
            && l->delta && c->errnum == 9602)
        {
            /* the version is unknown to Apple now: walk it all */
            l->delta = 0;
            l->page = 0;

        } else if (kind == MW_VPP_ERROR) {
            l->phase = MW_VPP_IDLE;
            l->next_sync = mw_now_ms() + conf->vpp_sync_interval * 1000;
            mw_vpp_sync_reply(l, 502, c->error);
        }

        mw_vpp_call_free(c);
        mw_vpp_step(l);
        return;
    }

    items = json_object_get(c->json, l->phase == MW_VPP_ASSETS ? "assets"
                                                                : "assignments");
    n = json_is_array(items) ? json_array_size(items) : 0;
    nx = json_object_get(c->json, "nextPageIndex");
    last = !json_is_integer(nx) || json_integer_value(nx) <= l->page
           || json_integer_value(nx) >= MW_VPP_PAGES_MAX;

    vid = (char *) json_string_value(json_object_get(c->json, "versionId"));
    if (l->page == 0 && l->phase == MW_VPP_ASSIGNMENTS) {
        mw_lane_set(&l->walk_version, vid ? vid : "", vid ? strlen(vid) : 0);
    }

    argv = calloc(7 + 2 * n, sizeof(char *));
    dumps = calloc(n + 1, sizeof(char *));
    if (argv == NULL || dumps == NULL) {
        free(argv);
        free(dumps);
        mw_vpp_call_free(c);
        mw_vpp_wait(l, 1.);
        return;
    }

    snprintf(now, sizeof(now), "%lld", mw_now_ms());
    snprintf(next, sizeof(next), "%lld",
             mw_now_ms() + conf->vpp_sync_interval * 1000);

    argv[0] = l->name;
    argv[1] = l->phase == MW_VPP_ASSETS ? "assets"
                                        : (l->delta ? "delta" : "full");
    argv[2] = l->page == 0 ? "1" : "0";
    argv[3] = last ? "1" : "0";
    argv[4] = l->walk_version ? l->walk_version : "";
    argv[5] = now;
    argv[6] = next;
    argc = 7;

    for (i = 0, k = 0; i < n; i++) {
        it = json_array_get(items, i);
        a = json_string_value(json_object_get(it, "adamId"));
        if (a == NULL || a[0] == '\0') {
            continue;
        }
        if (l->phase == MW_VPP_ASSETS) {
            dumps[k] = json_dumps(it, JSON_COMPACT);
            if (dumps[k] == NULL) {
                continue;
            }
            argv[argc++] = a;
            argv[argc++] = dumps[k++];
            continue;
        }
        /* user-based licenses (clientUserId) are not ours to keep */
        s = json_string_value(json_object_get(it, "serialNumber"));
        if (s && s[0]) {
            argv[argc++] = a;
            argv[argc++] = s;
        }
    }

    if (l->phase == MW_VPP_ASSETS) {
        l->walk_assets += (long long) k;
    }

    if (mw_vpp_eval(l, MW_LUA_VPP_PAGE, mw_vpp_page_stored, l, argc, argv)
        == 0)
    {
        if (last && l->phase == MW_VPP_ASSETS) {
            l->phase = l->delta ? MW_VPP_ASSIGNMENTS : MW_VPP_CLEAR;
            l->page = 0;

        } else if (last && !l->delta) {
            l->phase = MW_VPP_SWAP;

        } else if (last) {
            mw_vpp_walk_done(l);

        } else {
            l->page = (long) json_integer_value(nx);
        }

    } else {
        mw_vpp_wait(l, 1.);
    }

    for (i = 0; i < n && dumps[i]; i++) {
        free(dumps[i]);
    }
    free(dumps);
    free(argv);
    mw_vpp_call_free(c);
}


/* one bounded step of worker_vpp_page.lua's "clear" or "swap" */

static void
mw_vpp_step_script(mw_vpp_loc_t *l)
{
    char         now[32], next[32];
    const char  *argv[7];
    mw_conf_t   *conf = &l->vpp->ctx->conf;

    snprintf(now, sizeof(now), "%lld", mw_now_ms());
    snprintf(next, sizeof(next), "%lld",
             mw_now_ms() + conf->vpp_sync_interval * 1000);

    argv[0] = l->name;
    argv[1] = l->phase == MW_VPP_CLEAR ? "clear" : "swap";
    argv[2] = "0";
    argv[3] = "0";
    argv[4] = l->walk_version ? l->walk_version : "";
    argv[5] = now;
    argv[6] = next;

    if (mw_vpp_eval(l, MW_LUA_VPP_PAGE, mw_vpp_stepped, l, 7, argv) != 0) {
        mw_vpp_wait(l, 1.);
    }
}


static void
mw_vpp_stepped(redisAsyncContext *ac, void *reply, void *data)
{
    redisReply    *r = reply;
    mw_vpp_loc_t  *l = data;

    (void) ac;

    if (!mw_vpp_done_redis(l, reply)) {
        mw_vpp_wait(l, 1.);          /* the same step again */
        return;
    }

    if (r->type == REDIS_REPLY_INTEGER && r->integer == 0
        && l->phase != MW_VPP_IDLE)
    {
        if (l->phase == MW_VPP_CLEAR) {
            l->phase = MW_VPP_ASSIGNMENTS;
            l->page = 0;
        } else {
            mw_vpp_walk_done(l);
        }
    }

    mw_vpp_step(l);
}


/* the walk is over (its last page or its swap written) */

static void
mw_vpp_walk_done(mw_vpp_loc_t *l)
{
    const char  *v = l->walk_version ? l->walk_version : "";
    mw_conf_t   *conf = &l->vpp->ctx->conf;

    l->phase = MW_VPP_IDLE;
    mw_lane_set(&l->version_id, v, strlen(v));
    l->next_sync = mw_now_ms() + conf->vpp_sync_interval * 1000;
    if (!l->delta) {
        l->full = 0;
        l->next_full = mw_now_ms() + conf->vpp_full_interval * 1000;
    }
    mw_log("info", "vpp %s: synced: %lld assets, version %s", l->name,
           l->walk_assets, v);
    l->walk_assets = 0;
    mw_vpp_sync_reply(l, 200, NULL);
}


static void
mw_vpp_page_stored(redisAsyncContext *ac, void *reply, void *data)
{
    mw_vpp_loc_t  *l = data;

    (void) ac;

    if (!mw_vpp_done_redis(l, reply)) {
        /* the walk starts again rather than leave a hole */
        l->phase = MW_VPP_IDLE;
        l->full = 1;
        l->sync_now = 1;
        mw_vpp_wait(l, 1.);
        return;
    }

    mw_vpp_step(l);
}


/* the "sync" job waiting for this walk hears how it went */

void
mw_vpp_sync_reply(mw_vpp_loc_t *l, int status, const char *error)
{
    json_t        *body;
    mw_vpp_job_t  *job = l->sync_job;

    if (job == NULL) {
        return;
    }

    if (status == 200) {
        body = json_pack("{s:s,s:I}", "version_id",
                         l->version_id ? l->version_id : "",
                         "last_sync_at", mw_now_ms());
    } else {
        body = json_pack("{s:s}", "error", error ? error : "");
    }

    mw_vpp_reply(l->vpp, job->id, status, body);
    json_decref(body);
    mw_vpp_job_end(l, job);
}
