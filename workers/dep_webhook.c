/*
 * Copyright (C) ngx_mdm contributors
 *
 * The webhook body of a DEP event (type dep.device.added|modified|deleted,
 * dep.sync, dep.error, D5): {"topic": TYPE, "event_id", "created_at",
 * "dep_event": {every other field of the stream entry}}, with jansson.
 * VPP events (vpp.*, V5) take the same shape with "vpp_event", blueprint
 * runs (blueprint.run) with "blueprint_event".
 */

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "webhook.h"


static json_t *
mw_dep_wh_str(const char *s, size_t n)
{
    json_t  *v = json_stringn(s, n);

    /* the fields are ours or Apple's JSON strings: UTF-8 */
    return v ? v : json_string("");
}


char *
mw_dep_wh_json(const mw_wh_event_t *e)
{
    char        ts[64], *out, name[64];
    size_t      i, len;
    time_t      sec;
    json_t     *root, *ev;
    struct tm   tm;
    long long   ms;
    const char *v;

    root = json_object();
    ev = json_object();
    if (root == NULL || ev == NULL) {
        json_decref(root);
        json_decref(ev);
        return NULL;
    }

    v = mw_wh_field(e, "type", &len);
    json_object_set_new(root, "topic", mw_dep_wh_str(v, len));
    json_object_set_new(root, "event_id", json_string(e->stream_id));

    v = mw_wh_field(e, "time", &len);
    ms = atoll(v);
    sec = (time_t) (ms / 1000);
    gmtime_r(&sec, &tm);
    snprintf(ts, sizeof(ts), "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ",
             tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
             tm.tm_min, tm.tm_sec, (int) (ms % 1000));
    json_object_set_new(root, "created_at", json_string(ts));

    for (i = 0; i + 1 < e->nfields; i += 2) {
        if (e->lens[i] >= sizeof(name)) {
            continue;
        }
        memcpy(name, e->fields[i], e->lens[i]);
        name[e->lens[i]] = '\0';

        if (strcmp(name, "type") == 0 || strcmp(name, "time") == 0
            || strcmp(name, "id") == 0)
        {
            continue;
        }

        json_object_set_new(ev, name,
                            mw_dep_wh_str(e->fields[i + 1], e->lens[i + 1]));
    }

    v = mw_wh_field(e, "type", &len);
    json_object_set_new(root, (len > 4 && memcmp(v, "vpp.", 4) == 0)
                              ? "vpp_event"
                              : (len > 10 && memcmp(v, "blueprint.", 10) == 0)
                              ? "blueprint_event" : "dep_event", ev);

    out = json_dumps(root, JSON_COMPACT);
    json_decref(root);

    return out;
}
