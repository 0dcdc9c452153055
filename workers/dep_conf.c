/*
 * Copyright (C) ngx_mdm contributors
 *
 * What the tick read of each DEP name (contract D1, and the worker's own
 * status and queue, D2) goes into its lane: a token JSON that changed is a
 * PUT through the admin API, so its session goes and its page sizes are
 * asked for again; a name gone from mdm:dep:names goes when its lane is
 * idle.
 */

#define _GNU_SOURCE          /* strptime, timegm */

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "dep.h"


static void mw_dep_tokens(mw_dep_name_t *n, const char *json, size_t len);


void
mw_dep_refresh(mw_dep_t *dep, redisReply *list)
{
    size_t          i, len;
    long long       due;
    redisReply     *e;
    const char     *v;
    mw_dep_name_t  *n, **pn;

    for (n = dep->names; n; n = n->next) {
        n->seen = 0;
    }

    for (i = 0; list->type == REDIS_REPLY_ARRAY && i < list->elements; i++) {
        e = list->element[i];
        if (e->type != REDIS_REPLY_ARRAY || e->elements != 11) {
            continue;
        }

        v = mw_lane_str(e->element[0], &len);
        n = mw_dep_lane(dep, v, len);
        if (n == NULL) {
            continue;
        }

        n->seen = 1;

        v = mw_lane_str(e->element[1], &len);
        if (n->tokens == NULL || strlen(n->tokens) != len
            || memcmp(n->tokens, v, len) != 0)
        {
            mw_dep_tokens(n, v, len);
        }

        /* "https://host/" + "/session" would be a different URL to sign */
        v = mw_lane_str(e->element[2], &len);
        while (len && v[len - 1] == '/') {
            len--;
        }
        mw_lane_set(&n->base_url, len ? v : "https://mdmenrollment.apple.com",
                   len ? len : 31);
        v = mw_lane_str(e->element[3], &len);
        mw_lane_set(&n->profile, v, len);

        v = mw_lane_str(e->element[4], &len);
        if (n->session == NULL && len) {
            /* a restart reuses the session the last run stored */
            mw_lane_set(&n->session, v, len);
        }

        /* a tick read before our own stop was written does not undo it */
        v = mw_lane_str(e->element[5], &len);
        if ((len == 1 && v[0] == '1')
            || mw_now_ms() - n->stopped_at > 2000)
        {
            n->stopped = (len == 1 && v[0] == '1');
        }

        if (!n->busy && n->phase == MW_DEP_IDLE) {
            /* what the next cycle starts from */
            v = mw_lane_str(e->element[7], &len);
            mw_lane_set(&n->cursor, v, len);
            v = mw_lane_str(e->element[8], &len);
            n->fetching = (len == 5 && memcmp(v, "fetch", 5) == 0)
                          || n->cursor == NULL;
        }

        v = mw_lane_str(e->element[9], &len);
        due = len ? atoll(v) : 0;
        n->assign_due = due;
        n->assigning = (int) e->element[10]->integer;
    }

    /* names no longer in mdm:dep:names go when their lane is idle */
    for (pn = &dep->names; *pn; ) {
        n = *pn;
        if (!n->seen && !n->busy && n->jobs == NULL) {
            *pn = n->next;
            mw_dep_free_name(n);
            continue;
        }
        pn = &n->next;
    }
}


/* the token JSON (D1) changed: a PUT; the session and stop go with it */

static void
mw_dep_tokens(mw_dep_name_t *n, const char *v, size_t len)
{
    json_t       *j;
    const char   *exp;
    struct tm     tm;
    json_error_t  err;

    mw_lane_set(&n->tokens, v, len);
    free(n->ck); free(n->cs); free(n->at); free(n->as);
    n->ck = n->cs = n->at = n->as = NULL;
    n->expiry_ms = 0;
    n->account_ok = 0;
    n->warned_at = 0;

    /* a call in flight has its header copied already */
    free(n->session);
    n->session = NULL;

    if (len == 0) {
        return;
    }

    j = json_loadb(v, len, 0, &err);
    if (j == NULL || !json_is_object(j)) {
        mw_log("error", "dep %s: tokens are not a JSON object", n->name);
        json_decref(j);
        return;
    }

#define MW_TOK(f, dst)                                                     \
    if (json_is_string(json_object_get(j, f))) {                           \
        dst = strdup(json_string_value(json_object_get(j, f)));            \
    }

    MW_TOK("consumer_key", n->ck);
    MW_TOK("consumer_secret", n->cs);
    MW_TOK("access_token", n->at);
    MW_TOK("access_secret", n->as);

    exp = json_string_value(json_object_get(j, "access_token_expiry"));
    memset(&tm, 0, sizeof(tm));
    if (exp && strptime(exp, "%Y-%m-%dT%H:%M:%S", &tm)) {
        n->expiry_ms = (long long) timegm(&tm) * 1000;
    }

    json_decref(j);

    if (n->expiry_ms
        && mw_redis_command(&n->dep->ctx->cmd, mw_dep_acked, n->dep,
                            "HSET " MDM_KEY_DEP "%s:status token_expiry %lld",
                            n->name, n->expiry_ms) == 0)
    {
        n->dep->lease.pending++;
    }

    if (!n->ck || !n->cs || !n->at || !n->as) {
        mw_log("error", "dep %s: tokens lack consumer_key, consumer_secret, "
               "access_token or access_secret", n->name);
    }
}
