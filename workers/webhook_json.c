/*
 * Copyright (C) ngx_mdm contributors
 *
 * The webhook body, NanoMDM's: {topic, event_id, created_at,
 * checkin_event | acknowledge_event}, built with jansson.  Every value
 * comes from a stream entry, much of it from the device, so nothing is
 * pasted into the text: strings are taken with their lengths (NULs
 * included, escaped by jansson) and bytes that are not UTF-8 become
 * U+FFFD, since JSON strings are Unicode.
 */

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>
#include <openssl/evp.h>

#include "webhook.h"


/* the length of the UTF-8 sequence at s (at most n bytes), 0 if invalid */
static size_t
mw_utf8_len(const unsigned char *s, size_t n)
{
    size_t    len, i;
    uint32_t  c;

    if (s[0] < 0x80) {
        return 1;
    }

    if (s[0] >= 0xc2 && s[0] <= 0xdf) {
        len = 2;
        c = s[0] & 0x1f;
    } else if (s[0] >= 0xe0 && s[0] <= 0xef) {
        len = 3;
        c = s[0] & 0x0f;
    } else if (s[0] >= 0xf0 && s[0] <= 0xf4) {
        len = 4;
        c = s[0] & 0x07;
    } else {
        return 0;
    }

    if (len > n) {
        return 0;
    }

    for (i = 1; i < len; i++) {
        if ((s[i] & 0xc0) != 0x80) {
            return 0;
        }
        c = (c << 6) | (s[i] & 0x3f);
    }

    /* overlong forms, surrogates, beyond U+10FFFF */
    if ((len == 3 && c < 0x800) || (len == 4 && c < 0x10000)
        || (c >= 0xd800 && c <= 0xdfff) || c > 0x10ffff)
    {
        return 0;
    }

    return len;
}


/* a JSON string of n bytes; invalid UTF-8 bytes become U+FFFD */
static json_t *
mw_json_str(const char *s, size_t n)
{
    size_t                i, k, j;
    char                 *copy;
    json_t               *v;
    const unsigned char  *u = (const unsigned char *) s;

    for (i = 0; i < n; i += k) {
        k = mw_utf8_len(u + i, n - i);
        if (k == 0) {
            break;
        }
    }

    if (i == n) {
        return json_stringn(s, n);
    }

    copy = malloc(n * 3 + 1);
    if (copy == NULL) {
        return NULL;
    }

    for (i = 0, j = 0; i < n; i += k) {
        k = mw_utf8_len(u + i, n - i);
        if (k == 0) {
            memcpy(copy + j, "\xef\xbf\xbd", 3);
            j += 3;
            k = 1;
        } else {
            memcpy(copy + j, s + i, k);
            j += k;
        }
    }

    v = json_stringn(copy, j);
    free(copy);

    return v;
}


static int
mw_set(json_t *o, const char *key, json_t *v)
{
    return v == NULL ? -1 : json_object_set_new(o, key, v);
}


static int
mw_set_field(json_t *o, const char *key, const mw_wh_event_t *e,
    const char *name)
{
    size_t       len;
    const char  *v = mw_wh_field(e, name, &len);

    return mw_set(o, key, mw_json_str(v, len));
}


static int
mw_hex(int c)
{
    return (c >= '0' && c <= '9') ? c - '0'
           : (c >= 'a' && c <= 'f') ? c - 'a' + 10
           : (c >= 'A' && c <= 'F') ? c - 'A' + 10 : -1;
}


/* percent- and plus-decodes n bytes into d (room for n); the length */
static size_t
mw_url_decode(char *d, const char *s, size_t n)
{
    size_t  i, j;

    for (i = 0, j = 0; i < n; i++) {
        if (s[i] == '%' && i + 2 < n && mw_hex(s[i + 1]) >= 0
            && mw_hex(s[i + 2]) >= 0)
        {
            d[j++] = (char) (mw_hex(s[i + 1]) * 16 + mw_hex(s[i + 2]));
            i += 2;

        } else {
            d[j++] = (s[i] == '+') ? ' ' : s[i];
        }
    }

    return j;
}


/* "a=1&b=2" as {"a":"1","b":"2"}, decoded; null when empty */
static json_t *
mw_json_params(const char *q, size_t n)
{
    char        *buf, *eq;
    size_t       i, end, len, klen;
    json_t      *o, *k, *v;

    if (n == 0) {
        return json_null();
    }

    o = json_object();
    buf = malloc(n + 1);

    if (o == NULL || buf == NULL) {
        json_decref(o);
        free(buf);
        return NULL;
    }

    for (i = 0; i < n; i = end + 1) {
        for (end = i; end < n && q[end] != '&'; end++) { /* void */ }

        if (end == i) {
            continue;
        }

        /* the name is what precedes the first "=" before decoding */
        eq = memchr(q + i, '=', end - i);
        klen = eq ? (size_t) (eq - (q + i)) : end - i;

        len = mw_url_decode(buf, q + i, klen);
        k = mw_json_str(buf, len);

        len = eq ? mw_url_decode(buf, eq + 1, end - i - klen - 1) : 0;
        v = mw_json_str(buf, len);

        if (k == NULL || v == NULL
            || json_object_setn_new(o, json_string_value(k),
                                    json_string_length(k), v) != 0)
        {
            json_decref(k);
            free(buf);
            json_decref(o);
            return NULL;
        }

        json_decref(k);
    }

    free(buf);

    return o;
}


static json_t *
mw_json_time(const char *ms_text)
{
    char        ts[64];
    time_t      sec;
    long long   ms;
    struct tm   tm;

    ms = atoll(ms_text);
    if (ms < 0) {
        ms = 0;
    }

    sec = (time_t) (ms / 1000);
    gmtime_r(&sec, &tm);
    snprintf(ts, sizeof(ts), "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ",
             tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
             tm.tm_min, tm.tm_sec, (int) (ms % 1000));

    return json_string(ts);
}


static json_t *
mw_json_base64(const char *s, size_t n)
{
    char    *b64;
    json_t  *v;

    b64 = malloc(4 * ((n + 2) / 3) + 1);
    if (b64 == NULL) {
        return NULL;
    }

    EVP_EncodeBlock((unsigned char *) b64, (const unsigned char *) s,
                    (int) n);
    v = json_string(b64);
    free(b64);

    return v;
}


/* ids: {id, type, parent_id (a user channel's device)} */
static json_t *
mw_json_ids(const mw_wh_event_t *e)
{
    size_t       ilen, dlen;
    json_t      *o;
    const char  *id, *did;

    o = json_object();
    if (o == NULL) {
        return NULL;
    }

    id = mw_wh_field(e, "id", &ilen);
    did = mw_wh_field(e, "device_id", &dlen);

    if (mw_set(o, "id", mw_json_str(id, ilen)) != 0
        || mw_set_field(o, "type", e, "enrollment_type") != 0
        || ((ilen != dlen || memcmp(id, did, ilen) != 0)
            && mw_set(o, "parent_id", mw_json_str(did, dlen)) != 0))
    {
        json_decref(o);
        return NULL;
    }

    return o;
}


/* checkin_event / acknowledge_event */
static json_t *
mw_json_event(const mw_wh_event_t *e, int connect)
{
    char        *end;
    size_t       len;
    json_t      *o;
    long long    tally;
    const char  *v;

    o = json_object();
    if (o == NULL) {
        return NULL;
    }

    v = mw_wh_field(e, "enrollment_type", &len);

    if (mw_set_field(o, strncmp(v, "User Enrollment", 15) == 0
                        ? "enrollment_id" : "udid", e, "device_id") != 0)
    {
        goto failed;
    }

    if (connect) {
        if (mw_set_field(o, "status", e, "status") != 0) {
            goto failed;
        }

        mw_wh_field(e, "command_uuid", &len);
        if (len && mw_set_field(o, "command_uuid", e, "command_uuid") != 0) {
            goto failed;
        }
    }

    v = mw_wh_field(e, "params", &len);
    if (mw_set(o, "url_params", mw_json_params(v, len)) != 0
        || mw_set(o, "ids", mw_json_ids(e)) != 0)
    {
        goto failed;
    }

    v = mw_wh_field(e, "token_update_tally", &len);
    if (len) {
        tally = strtoll(v, &end, 10);
        if (mw_set(o, "token_update_tally",
                   (end == v + len) ? json_integer(tally)
                                    : mw_json_str(v, len)) != 0)
        {
            goto failed;
        }
    }

    v = mw_wh_field(e, "body", &len);
    if (mw_set(o, "raw_payload", mw_json_base64(v, len)) != 0) {
        goto failed;
    }

    return o;

failed:

    json_decref(o);
    return NULL;
}


char *
mw_wh_json(const mw_wh_event_t *e)
{
    int          connect;
    char        *topic, *out;
    size_t       len;
    json_t      *root;
    const char  *type;

    type = mw_wh_field(e, "type", &len);
    if ((len > 4 && (memcmp(type, "dep.", 4) == 0
                     || memcmp(type, "vpp.", 4) == 0))
        || (len > 10 && memcmp(type, "blueprint.", 10) == 0))
    {
        /* VPP events (V5) and blueprint runs have DEP's shape */
        return mw_dep_wh_json(e);
    }

    connect = (len == 7 && memcmp(type, "Connect", 7) == 0);

    root = json_object();
    topic = malloc(len + 5);

    if (root == NULL || topic == NULL) {
        goto failed;
    }

    memcpy(topic, "mdm.", 4);
    memcpy(topic + 4, type, len);

    if (mw_set(root, "topic", mw_json_str(topic, len + 4)) != 0
        || mw_set(root, "event_id", mw_json_str(e->stream_id,
                                               strlen(e->stream_id))) != 0
        || mw_set(root, "created_at",
                  mw_json_time(mw_wh_field(e, "time", &len))) != 0
        || mw_set(root, connect ? "acknowledge_event" : "checkin_event",
                  mw_json_event(e, connect)) != 0)
    {
        goto failed;
    }

    free(topic);

    /* compact: one line, and what the HMAC covers is exactly what is sent */
    out = json_dumps(root, JSON_COMPACT);
    json_decref(root);

    return out;

failed:

    free(topic);
    json_decref(root);
    return NULL;
}
