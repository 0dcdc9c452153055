/*
 * Copyright (C) ngx_mdm contributors
 *
 * mdmctl: inventory and queues.  devices, device, queue, result, clear,
 * push, certs, events (and events replay), version: each a call (or a
 * walk over the pages) of an existing admin API endpoint.
 */

#include <stdlib.h>
#include <string.h>

#include "mdmctl.h"


#define MC_PUSH_CHUNK  100     /* IDs per URL: fits nginx's default 8k
                                  request line */


/*
 * Walks the pages of a listing: path (with or without a query), the list's
 * key (an array, or an object of enrollments), the cursor's key in the
 * answer.  Returns the first page's object with the list holding every
 * item seen (at most max, 0 = all) and the cursor where the walk stopped.
 */
json_t *
mc_pages(const mc_conf_t *conf, const char *path, const char *list_key,
    const char *cursor_key, long limit, long max, int *rc)
{
    int          r;
    char        *p, *esc, *prev;
    size_t       n, len;
    json_t      *all, *page, *list, *acc, *cur;
    const char  *cursor;

    all = NULL;
    acc = NULL;
    prev = mc_strdup("");
    cursor = "";
    *rc = MC_OK;

    for ( ;; ) {
        esc = mc_escape(cursor);
        len = strlen(path) + strlen(esc) + 64;
        p = malloc(len);
        if (p == NULL) {
            mc_err("out of memory");
            exit(MC_SERVER);
        }
        snprintf(p, len, "%s%scursor=%s", path,
                 strchr(path, '?') ? "&" : "?", esc);
        if (limit) {
            n = strlen(p);
            snprintf(p + n, len - n, "&limit=%ld", limit);
        }
        free(esc);

        page = mc_api(conf, "GET", p, NULL, 0, &r);
        free(p);
        if (page == NULL || r != MC_OK) {
            *rc = r;
            json_decref(page);
            break;
        }

        list = json_object_get(page, list_key);
        if (all == NULL) {
            all = page;
            acc = list;
            if (acc == NULL) {
                acc = json_array();
                json_object_set_new(all, list_key, acc);
            }
        } else if (json_is_array(acc) && json_is_array(list)) {
            json_array_extend(acc, list);
        } else if (json_is_object(acc) && json_is_object(list)) {
            json_object_update(acc, list);
        }

        cur = json_object_get(page, cursor_key);
        cursor = json_is_string(cur) ? json_string_value(cur) : "";
        n = json_is_array(acc) ? json_array_size(acc) : json_object_size(acc);

        /* the last page, enough items, or a server that repeats itself */
        if (*cursor == '\0' || (max && (long) n >= max)
            || strcmp(cursor, prev) == 0)
        {
            if (all != page) {
                json_object_set_new(all, cursor_key,
                                    cur ? json_incref(cur) : json_string(""));
                json_decref(page);
            }
            break;
        }
        free(prev);
        prev = mc_strdup(cursor);
        if (all != page) {
            json_object_set(all, cursor_key, cur);
            json_decref(page);
            cursor = json_string_value(json_object_get(all, cursor_key));
        }
    }

    free(prev);
    if (*rc != MC_OK) {
        json_decref(all);
        return NULL;
    }

    if (max && json_is_array(acc) && (long) json_array_size(acc) > max) {
        while ((long) json_array_size(acc) > max) {
            json_array_remove(acc, json_array_size(acc) - 1);
        }
    }
    return all;
}


/* --limit and --max of a listing that walks pages */
int
mc_page_args(const mc_cmd_t *cmd, mc_args_t *a, long *limit, long *max)
{
    const char  *v;

    *limit = 0;
    *max = 0;
    v = mc_opt(cmd, a, "limit");
    if (v && mc_parse_long(v, 1, 1000, limit) != 0) {
        return mc_usage_error(cmd, "--limit is 1-1000");
    }
    v = mc_opt(cmd, a, "max");
    if (v && mc_parse_long(v, 1, 100000000, max) != 0) {
        return mc_usage_error(cmd, "--max is a positive number");
    }
    return MC_OK;
}


int
mc_want_pos(const mc_cmd_t *cmd, mc_args_t *a, int min, int max)
{
    if (a->npos < min) {
        return mc_usage_error(cmd, "missing %s", cmd->synopsis);
    }
    if (max >= 0 && a->npos > max) {
        return mc_usage_error(cmd, "unexpected argument \"%s\"",
                              a->pos[max]);
    }
    return MC_OK;
}


/* the filters of GET /v1/enrollments (README) */
static const char  *mc_filter_names[] = {
    "type", "enabled", "serial", "model", "os_version", "last_seen_after",
    "last_seen_before", "cert_expires_before", NULL
};


/* the query of GET /v1/enrollments from --filter KEY=VALUE options */
static int
mc_filters(const mc_cmd_t *cmd, mc_args_t *a, char *q, size_t qlen)
{
    int          i;
    char        *esc;
    size_t       n, k;
    const char  *f, *eq, *vals[MC_MAX_POS];
    int          nvals;

    nvals = 0;
    if (mc_opt(cmd, a, "filter")) {
        vals[nvals++] = mc_opt(cmd, a, "filter");
    }
    for (i = 0; i < a->nfree && nvals < MC_MAX_POS; i++) {
        if (strcmp(a->free_name[i], "filter") == 0) {
            vals[nvals++] = a->free_val[i];
        }
    }

    n = 0;
    q[0] = '\0';
    for (i = 0; i < nvals; i++) {
        f = vals[i];
        eq = strchr(f, '=');
        if (eq == NULL || eq == f) {
            return mc_usage_error(cmd, "--filter wants KEY=VALUE, not "
                                  "\"%s\"", f);
        }
        /* the server ignores a name it does not know: a typo would list
         * every device */
        for (k = 0; mc_filter_names[k]; k++) {
            if (strlen(mc_filter_names[k]) == (size_t) (eq - f)
                && strncmp(mc_filter_names[k], f, eq - f) == 0)
            {
                break;
            }
        }
        if (mc_filter_names[k] == NULL) {
            return mc_usage_error(cmd, "--filter: no filter \"%.*s\" (type, "
                                  "enabled, serial, model, os_version, "
                                  "last_seen_after, last_seen_before, "
                                  "cert_expires_before)", (int) (eq - f), f);
        }
        esc = mc_escape(eq + 1);
        if (n + (eq - f) + strlen(esc) + 3 >= qlen) {
            free(esc);
            return mc_usage_error(cmd, "--filter: too long");
        }
        n += snprintf(q + n, qlen - n, "%s%.*s=%s", n ? "&" : "?",
                      (int) (eq - f), f, esc);
        free(esc);
    }
    return MC_OK;
}


int
mc_cmd_devices(const mc_cmd_t *cmd, mc_args_t *a)
{
    int          rc;
    long         limit, max;
    char         q[8192], path[8300];
    size_t       i;
    json_t      *all, *e;
    mc_table_t  *t;

    if ((rc = mc_want_pos(cmd, a, 0, 0)) != MC_OK
        || (rc = mc_page_args(cmd, a, &limit, &max)) != MC_OK
        || (rc = mc_filters(cmd, a, q, sizeof(q))) != MC_OK)
    {
        return rc;
    }
    snprintf(path, sizeof(path), "/v1/enrollments%s", q);

    all = mc_pages(a->conf, path, "enrollments", "cursor", limit, max, &rc);
    if (all == NULL) {
        return rc;
    }
    if (mc_json_done(a->conf, all)) {
        return MC_OK;
    }

    t = mc_table(8, "ID", "TYPE", "SERIAL", "MODEL", "OS", "NAME", "ENABLED",
                 "LAST SEEN (UTC)");
    json_array_foreach(json_object_get(all, "enrollments"), i, e) {
        mc_table_row(t, mc_str(e, "id"), mc_str(e, "type"),
                     mc_str(e, "serial_number"),
                     json_object_get(e, "model")
                         ? mc_str(e, "model") : mc_str(e, "product_name"),
                     mc_str(e, "os_version"), mc_str(e, "device_name"),
                     mc_str(e, "enabled"), mc_ms_time(e, "last_seen"));
    }
    mc_table_print(t);
    json_decref(all);
    return MC_OK;
}


int
mc_cmd_device(const mc_cmd_t *cmd, mc_args_t *a)
{
    int      rc;
    char    *esc, *path;
    size_t   len;
    json_t  *j;

    if ((rc = mc_want_pos(cmd, a, 1, 1)) != MC_OK) {
        return rc;
    }
    esc = mc_escape(a->pos[0]);
    len = strlen(esc) + 32;
    path = malloc(len);
    if (path == NULL) {
        exit(MC_SERVER);
    }
    snprintf(path, len, "/v1/enrollments/%s", esc);
    free(esc);

    j = mc_api(a->conf, "GET", path, NULL, 0, &rc);
    free(path);
    if (j == NULL) {
        return rc;
    }
    if (a->conf->json) {
        mc_print_json(j);
    } else {
        mc_print_object(j);
    }
    json_decref(j);
    return rc;
}


int
mc_cmd_queue(const mc_cmd_t *cmd, mc_args_t *a)
{
    int          rc;
    long         limit, max;
    char        *esc, path[2048];
    size_t       i;
    json_t      *all, *e;
    mc_table_t  *t;

    if ((rc = mc_want_pos(cmd, a, 1, 1)) != MC_OK
        || (rc = mc_page_args(cmd, a, &limit, &max)) != MC_OK)
    {
        return rc;
    }
    esc = mc_escape(a->pos[0]);
    snprintf(path, sizeof(path), "/v1/queue/%s", esc);
    free(esc);

    all = mc_pages(a->conf, path, "commands", "cursor", limit, max, &rc);
    if (all == NULL) {
        return rc;
    }
    if (mc_json_done(a->conf, all)) {
        return MC_OK;
    }

    t = mc_table(7, "COMMAND UUID", "TYPE", "DELIVERIES", "LAST STATUS",
                 "NOTNOW", "CREATED (UTC)", "EXPIRES (UTC)");
    json_array_foreach(json_object_get(all, "commands"), i, e) {
        mc_table_row(t, mc_str(e, "command_uuid"), mc_str(e, "request_type"),
                     mc_str(e, "deliveries"), mc_str(e, "last_status"),
                     mc_str(e, "not_now_tally"), mc_ms_time(e, "created_at"),
                     mc_ms_time(e, "expires_at"));
    }
    mc_table_print(t);
    printf("%s pending\n", mc_str(all, "total"));
    json_decref(all);
    return MC_OK;
}


int
mc_cmd_result(const mc_cmd_t *cmd, mc_args_t *a)
{
    int          rc;
    long         limit, max;
    char        *esc, path[2048];
    json_t      *all, *e;
    const char  *id;
    mc_table_t  *t;

    if ((rc = mc_want_pos(cmd, a, 1, 1)) != MC_OK
        || (rc = mc_page_args(cmd, a, &limit, &max)) != MC_OK)
    {
        return rc;
    }
    esc = mc_escape(a->pos[0]);
    snprintf(path, sizeof(path), "/v1/commands/%s", esc);
    free(esc);

    all = mc_pages(a->conf, path, "enrollments", "cursor", limit, max, &rc);
    if (all == NULL) {
        return rc;
    }
    if (mc_json_done(a->conf, all)) {
        return MC_OK;
    }

    printf("command %s: %s, created %s UTC, %s target(s)%s\n\n",
           mc_str(all, "command_uuid"), mc_str(all, "request_type"),
           mc_ms_time(all, "created_at"), mc_str(all, "targets_total"),
           json_is_true(json_object_get(all, "priority"))
               ? ", priority" : "");
    t = mc_table(5, "ENROLLMENT", "STATUS", "DELIVERIES", "NOTNOW",
                 "UPDATED (UTC)");
    json_object_foreach(json_object_get(all, "enrollments"), id, e) {
        mc_table_row(t, id, mc_str(e, "status"), mc_str(e, "deliveries"),
                     mc_str(e, "not_now_tally"), mc_ms_time(e, "updated_at"));
    }
    mc_table_print(t);
    json_decref(all);
    return MC_OK;
}


int
mc_cmd_clear(const mc_cmd_t *cmd, mc_args_t *a)
{
    int          rc, rounds;
    char        *esc, *esc2, path[2048];
    size_t       i;
    json_t      *j, *all, *removed, *u;
    mc_table_t  *t;

    if ((rc = mc_want_pos(cmd, a, 1, 2)) != MC_OK) {
        return rc;
    }
    esc = mc_escape(a->pos[0]);
    if (a->npos == 2) {
        esc2 = mc_escape(a->pos[1]);
        snprintf(path, sizeof(path), "/v1/queue/%s/%s", esc, esc2);
        free(esc2);
    } else {
        snprintf(path, sizeof(path), "/v1/queue/%s?limit=1000", esc);
    }
    free(esc);

    /* a whole queue goes 1,000 commands per call */
    all = NULL;
    for (rounds = 0; rounds < 100000; rounds++) {
        j = mc_api(a->conf, "DELETE", path, NULL, 0, &rc);
        if (j == NULL) {
            json_decref(all);
            return rc;
        }
        if (all == NULL) {
            all = j;
        } else {
            json_array_extend(json_object_get(all, "removed"),
                              json_object_get(j, "removed"));
            json_object_set(all, "remaining",
                            json_object_get(j, "remaining"));
            removed = json_object_get(j, "removed");
            if (json_array_size(removed) == 0) {
                json_decref(j);
                break;
            }
            json_decref(j);
        }
        if (a->npos == 2
            || json_integer_value(json_object_get(all, "remaining")) == 0
            || json_array_size(json_object_get(all, "removed")) == 0)
        {
            break;
        }
    }

    if (a->conf->json) {
        mc_print_json(all);
    } else {
        t = mc_table(1, "REMOVED");
        json_array_foreach(json_object_get(all, "removed"), i, u) {
            mc_table_row(t, mc_str(u, NULL));
        }
        mc_table_print(t);
        printf("%s remaining\n", mc_str(all, "remaining"));
    }
    json_decref(all);
    return MC_OK;
}


/* the per-ID status map of enqueue, push, commands, renew, as a table */
void
mc_print_status(json_t *j, const char *what)
{
    json_t      *e, *v;
    const char  *id, *k, *res;
    mc_table_t  *t;

    if (json_is_string(json_object_get(j, "command_uuid"))) {
        printf("command %s (%s)\n", mc_str(j, "command_uuid"),
               mc_str(j, "request_type"));
    }
    t = mc_table(2, "ID", what);
    json_object_foreach(json_object_get(j, "status"), id, e) {
        res = "ok";
        json_object_foreach(e, k, v) {
            if (strstr(k, "error")) {
                res = json_string_value(v);
                break;
            }
            if (strcmp(k, "push_result") == 0) {
                res = json_string_value(v);
            }
        }
        mc_table_row(t, id, res);
    }
    mc_table_print(t);
}


int
mc_cmd_push(const mc_cmd_t *cmd, mc_args_t *a)
{
    int      rc, r, i, n, ok, bad;
    char    *ids, *path;
    size_t   len;
    json_t  *all, *j;

    if ((rc = mc_want_pos(cmd, a, 1, -1)) != MC_OK) {
        return rc;
    }

    all = json_object();
    json_object_set_new(all, "status", json_object());
    ok = bad = 0;
    rc = MC_OK;
    for (i = 0; i < a->npos; i += MC_PUSH_CHUNK) {
        n = a->npos - i < MC_PUSH_CHUNK ? a->npos - i : MC_PUSH_CHUNK;
        ids = mc_join_ids(a->pos + i, n);
        len = strlen(ids) + 16;
        path = malloc(len);
        if (path == NULL) {
            exit(MC_SERVER);
        }
        snprintf(path, len, "/v1/push/%s", ids);
        free(ids);
        j = mc_api(a->conf, "POST", path, NULL, 0, &r);
        free(path);
        if (j == NULL) {
            json_decref(all);
            return r;
        }
        json_object_update(json_object_get(all, "status"),
                           json_object_get(j, "status"));
        json_decref(j);
        if (r == MC_OK) {
            ok++;
        } else if (r == MC_PARTIAL) {
            ok++;
            bad++;
        } else {
            bad++;
            if (r == MC_SERVER) {
                rc = MC_SERVER;
            }
        }
    }

    if (a->conf->json) {
        mc_print_json(all);
    } else {
        mc_print_status(all, "PUSH");
    }
    json_decref(all);
    if (rc == MC_SERVER) {
        return rc;
    }
    return bad == 0 ? MC_OK : (ok ? MC_PARTIAL : MC_REFUSED);
}


int
mc_cmd_certs(const mc_cmd_t *cmd, mc_args_t *a)
{
    int          rc;
    long         limit, max, t0;
    char        *esc, path[4096];
    size_t       n, i;
    json_t      *all, *e;
    const char  *v;
    mc_table_t  *t;

    if ((rc = mc_want_pos(cmd, a, 0, 0)) != MC_OK
        || (rc = mc_page_args(cmd, a, &limit, &max)) != MC_OK)
    {
        return rc;
    }
    n = snprintf(path, sizeof(path), "/v1/certificates");
    if ((v = mc_opt(cmd, a, "subject"))) {
        esc = mc_escape(v);
        n += snprintf(path + n, sizeof(path) - n, "?subject=%.1000s", esc);
        free(esc);
    }
    if ((v = mc_opt(cmd, a, "expiring-before"))) {
        if (mc_parse_long(v, 0, 99999999999L, &t0) != 0) {
            return mc_usage_error(cmd, "--expiring-before is Unix seconds");
        }
        snprintf(path + n, sizeof(path) - n, "%sexpiring_before=%ld",
                 strchr(path, '?') ? "&" : "?", t0);
    }

    all = mc_pages(a->conf, path, "certificates", "next_cursor", limit,
                   max, &rc);
    if (all == NULL) {
        return rc;
    }
    if (mc_json_done(a->conf, all)) {
        return MC_OK;
    }
    t = mc_table(5, "SERIAL", "SUBJECT", "NOT AFTER (UTC)", "ISSUED (UTC)",
                 "SHA-256");
    json_array_foreach(json_object_get(all, "certificates"), i, e) {
        mc_table_row(t, mc_str(e, "serial"), mc_str(e, "subject"),
                     mc_s_time(e, "not_after"), mc_ms_time(e, "issued_at"),
                     mc_str(e, "sha256"));
    }
    mc_table_print(t);
    json_decref(all);
    return MC_OK;
}


int
mc_cmd_events(const mc_cmd_t *cmd, mc_args_t *a)
{
    int          rc;
    long         limit, max;
    size_t       i;
    json_t      *all, *e;
    mc_table_t  *t;

    if ((rc = mc_want_pos(cmd, a, 0, 0)) != MC_OK
        || (rc = mc_page_args(cmd, a, &limit, &max)) != MC_OK)
    {
        return rc;
    }
    all = mc_pages(a->conf, "/v1/webhooks", "dead", "cursor", limit, max, &rc);
    if (all == NULL) {
        return rc;
    }
    if (mc_json_done(a->conf, all)) {
        return MC_OK;
    }
    printf("backlog %s, pending %s, dead letters %s\n\n",
           mc_str(all, "backlog"), mc_str(all, "pending"),
           mc_str(all, "dead_total"));
    t = mc_table(5, "DEAD ID", "TYPE", "ENROLLMENT", "EVENT ID", "ERROR");
    json_array_foreach(json_object_get(all, "dead"), i, e) {
        mc_table_row(t, mc_str(e, "dead_id"), mc_str(e, "type"),
                     mc_str(e, "id"), mc_str(e, "event_id"),
                     mc_str(e, "error"));
    }
    mc_table_print(t);
    json_decref(all);
    return MC_OK;
}


int
mc_cmd_events_replay(const mc_cmd_t *cmd, mc_args_t *a)
{
    int          rc;
    long         count;
    char         path[64];
    json_t      *j;
    const char  *v;

    if ((rc = mc_want_pos(cmd, a, 0, 0)) != MC_OK) {
        return rc;
    }
    count = 100;
    v = mc_opt(cmd, a, "count");
    if (v && mc_parse_long(v, 1, 1000, &count) != 0) {
        return mc_usage_error(cmd, "--count is 1-1000");
    }
    snprintf(path, sizeof(path), "/v1/webhooks/replay?count=%ld", count);
    j = mc_api(a->conf, "POST", path, NULL, 0, &rc);
    if (j == NULL) {
        return rc;
    }
    if (a->conf->json) {
        mc_print_json(j);
    } else {
        printf("replayed %s, dropped %s, remaining %s\n",
               mc_str(j, "replayed"), mc_str(j, "dropped"),
               mc_str(j, "remaining"));
    }
    json_decref(j);
    return rc;
}


int
mc_cmd_version(const mc_cmd_t *cmd, mc_args_t *a)
{
    int      rc;
    json_t  *j;

    if ((rc = mc_want_pos(cmd, a, 0, 0)) != MC_OK) {
        return rc;
    }
    j = mc_api(a->conf, "GET", "/version", NULL, 0, &rc);
    if (j == NULL) {
        return rc;
    }
    if (a->conf->json) {
        mc_print_json(j);
    } else {
        printf("%s\n", mc_str(j, "version"));
    }
    json_decref(j);
    return rc;
}
