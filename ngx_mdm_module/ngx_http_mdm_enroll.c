
/*
 * Copyright (C) ngx_mdm contributors
 *
 * mdm_enroll: the location devices get their enrollment profile from.
 *   GET                                   a profile (admins, users)
 *   POST with a signed MachineInfo        ADE: Setup Assistant's request
 *   GET with x-apple-aspen-deviceinfo     ADE through a web view
 * Each is one call of lua/enroll.lua (topic, one-time challenge, the
 * MachineInfo record), then the profile is built (and signed) here.
 */


#include "ngx_http_mdm_enroll_private.h"
#include "ngx_http_mdm_scep.h"
#include "ngx_http_mdm_request.h"
#include "ngx_http_mdm_plist.h"
#include "ngx_http_mdm_redis.h"
#include "ngx_http_mdm_scripts.h"
#include "ngx_http_mdm_response.h"

#include <jansson.h>
#include <openssl/err.h>
#include <openssl/pem.h>


/* what MachineInfo carries, and how it is named in mdm:machineinfo:SERIAL */
typedef struct {
    const char                 *key;
    const char                 *field;
    ngx_uint_t                  required;
} ngx_http_mdm_machineinfo_key_t;


static ngx_http_mdm_machineinfo_key_t  ngx_http_mdm_machineinfo_keys[] = {
    { "SERIAL", "serial", 1 },
    { "UDID", "udid", 1 },
    { "PRODUCT", "product", 0 },
    { "VERSION", "version", 0 },
    { "LANGUAGE", "language", 0 },
    { "IMEI", "imei", 0 },
    { "MEID", "meid", 0 },
    { NULL, NULL, 0 }
};


static void ngx_http_mdm_enroll_body(ngx_http_request_t *r);
static ngx_int_t ngx_http_mdm_enroll_process(ngx_http_request_t *r,
    ngx_http_mdm_enroll_ctx_t *ctx);
static ngx_int_t ngx_http_mdm_enroll_deviceinfo(ngx_http_request_t *r,
    ngx_http_mdm_enroll_ctx_t *ctx, ngx_str_t *der);
static ngx_int_t ngx_http_mdm_enroll_ade(ngx_http_request_t *r,
    ngx_http_mdm_enroll_ctx_t *ctx, ngx_str_t *der, ngx_array_t *args);
static ngx_uint_t ngx_http_mdm_enroll_is_serial(ngx_str_t *s);
static void ngx_http_mdm_enroll_done(ngx_http_request_t *r,
    redisReply *reply, const char *err);
static ngx_int_t ngx_http_mdm_enroll_send(ngx_http_request_t *r,
    ngx_http_mdm_enroll_ctx_t *ctx, ngx_str_t *topic);
static ngx_int_t ngx_http_mdm_enroll_time_arg(ngx_http_request_t *r,
    ngx_array_t *args, time_t t);


ngx_int_t
ngx_http_mdm_enroll_handler(ngx_http_request_t *r)
{
    ngx_int_t                   rc;
    ngx_http_mdm_enroll_ctx_t  *ctx;

    ctx = ngx_pcalloc(r->pool, sizeof(ngx_http_mdm_enroll_ctx_t));
    if (ctx == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_http_set_ctx(r, ctx, ngx_http_mdm_module);
    ngx_str_set(&ctx->mdm.message_type, "profile request");

    if (!(r->method & (NGX_HTTP_GET|NGX_HTTP_HEAD|NGX_HTTP_POST))) {
        return ngx_http_mdm_reject(r, &ctx->mdm, NGX_HTTP_NOT_ALLOWED,
                                   "method is not GET, HEAD or POST");
    }

    /* a GET has no body: the handler then runs at once */
    rc = ngx_http_read_client_request_body(r, ngx_http_mdm_enroll_body);

    if (rc >= NGX_HTTP_SPECIAL_RESPONSE) {
        return rc;
    }

    return NGX_DONE;
}


static void
ngx_http_mdm_enroll_body(ngx_http_request_t *r)
{
    ngx_int_t  rc;

    rc = ngx_http_mdm_enroll_process(r, ngx_http_get_module_ctx(r,
                                                   ngx_http_mdm_module));

    if (rc != NGX_DONE) {
        ngx_http_finalize_request(r, rc);
    }
}


/*
 * ARGV of enroll.lua: now, one-time challenge, its TTL, MachineInfo TTL,
 * SERIAL, MachineInfo field/value pairs.
 */

static ngx_int_t
ngx_http_mdm_enroll_process(ngx_http_request_t *r,
    ngx_http_mdm_enroll_ctx_t *ctx)
{
    u_char                      *p;
    ngx_int_t                    rc;
    ngx_str_t                    der, none;
    ngx_time_t                  *tp;
    ngx_array_t                 *args;
    ngx_http_mdm_loc_conf_t     *mlcf;
    ngx_http_mdm_scep_conf_t    *scf;
    ngx_http_mdm_enroll_conf_t  *ecf;

    mlcf = ngx_http_get_module_loc_conf(r, ngx_http_mdm_module);
    ecf = &mlcf->enroll;
    scf = mlcf->scep;

    ngx_str_null(&der);
    ngx_str_null(&none);

    if (r->method == NGX_HTTP_POST) {
        ngx_str_set(&ctx->mdm.message_type, "MachineInfo");

        rc = ngx_http_mdm_request_body(r, &der);
        if (rc != NGX_OK) {
            return ngx_http_mdm_reject(r, &ctx->mdm,
                                       rc == NGX_DECLINED
                                       ? NGX_HTTP_BAD_REQUEST
                                       : NGX_HTTP_INTERNAL_SERVER_ERROR,
                                       rc == NGX_DECLINED
                                       ? "empty body: no MachineInfo"
                                       : "cannot read body");
        }

    } else {
        rc = ngx_http_mdm_enroll_deviceinfo(r, ctx, &der);
        if (rc != NGX_OK) {
            return rc;
        }
    }

    /*
     * Where devices' MachineInfo is checked, nothing else gets a profile:
     * an ADE location is usually open, and a plain GET would walk past it.
     * The JSON says why to an admin who opens the URL in a browser.
     */
    if (der.len == 0 && ecf->device_ca_set) {
        return ngx_http_mdm_enroll_error(r, ctx, NGX_HTTP_FORBIDDEN,
                                         "no MachineInfo: this location "
                                         "(mdm_enroll_device_ca) serves ADE "
                                         "devices only (a POST from Setup "
                                         "Assistant, or a GET with "
                                         "x-apple-aspen-deviceinfo); people "
                                         "get profiles from another "
                                         "mdm_enroll location");
    }

    /*
     * One source for the static challenge: the mdm_scep_challenge(_file)
     * this location sees, the one the SCEP CA checks.  Without one, every
     * profile gets its own one-time challenge.
     */
    if (scf->challenge.len) {
        ctx->challenge = scf->challenge;

    } else if (ngx_http_mdm_challenge_new(r, &ctx->challenge)
               != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    args = ngx_array_create(r->pool, 24, sizeof(ngx_str_t));
    p = ngx_pnalloc(r->pool, NGX_TIME_T_LEN + 3);
    if (args == NULL || p == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    tp = ngx_timeofday();

    if (ngx_http_mdm_push_arg(args, p, ngx_sprintf(p, "%T%03M", tp->sec,
                                                   tp->msec) - p)
           != NGX_OK
        /* a static challenge is the SCEP CA's to check: nothing to store */
        || ngx_http_mdm_push_arg(args, ctx->challenge.data,
                                 scf->challenge.len ? 0 : ctx->challenge.len)
           != NGX_OK
        || ngx_http_mdm_enroll_time_arg(r, args, scf->challenge_ttl) != NGX_OK
        || ngx_http_mdm_enroll_time_arg(r, args, ecf->machineinfo_ttl)
           != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (der.len) {
        rc = ngx_http_mdm_enroll_ade(r, ctx, &der, args);
        if (rc != NGX_OK) {
            return rc;
        }

    } else if (ngx_http_mdm_push_arg(args, none.data, 0) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    rc = ngx_http_mdm_redis_eval(r, NGX_HTTP_MDM_SCRIPT_ENROLL, 0, args,
                                 ngx_http_mdm_enroll_done);

    if (rc == NGX_DECLINED) {
        return ngx_http_mdm_enroll_error(r, ctx, NGX_HTTP_SERVICE_UNAVAILABLE,
                                         "redis is not connected");
    }

    if (rc != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    /* a client that hangs up while Redis works is finalized at once */
    r->read_event_handler = ngx_http_test_reading;

    return NGX_DONE;
}


/* the web-view flow: the same CMS as ADE's POST, base64 in a header */

static ngx_int_t
ngx_http_mdm_enroll_deviceinfo(ngx_http_request_t *r,
    ngx_http_mdm_enroll_ctx_t *ctx, ngx_str_t *der)
{
    ngx_uint_t        i;
    ngx_list_part_t  *part;
    ngx_table_elt_t  *h;

    static const char  name[] = "x-apple-aspen-deviceinfo";

    part = &r->headers_in.headers.part;
    h = part->elts;

    for (i = 0; /* void */ ; i++) {

        if (i >= part->nelts) {
            if (part->next == NULL) {
                return NGX_OK;                  /* a plain profile request */
            }

            part = part->next;
            h = part->elts;
            i = 0;
        }

        if (h[i].key.len == sizeof(name) - 1
            && ngx_strncasecmp(h[i].key.data, (u_char *) name,
                               sizeof(name) - 1) == 0)
        {
            break;
        }
    }

    der->data = ngx_pnalloc(r->pool,
                            ngx_base64_decoded_length(h[i].value.len));
    if (der->data == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (h[i].value.len == 0
        || ngx_decode_base64(der, &h[i].value) != NGX_OK)
    {
        ngx_str_set(&ctx->mdm.message_type, "MachineInfo");
        return ngx_http_mdm_reject(r, &ctx->mdm, NGX_HTTP_BAD_REQUEST,
                                   "x-apple-aspen-deviceinfo is not base64");
    }

    return NGX_OK;
}


/* verifies and reads a MachineInfo; appends SERIAL and its pairs to args */

static ngx_int_t
ngx_http_mdm_enroll_ade(ngx_http_request_t *r, ngx_http_mdm_enroll_ctx_t *ctx,
    ngx_str_t *der, ngx_array_t *args)
{
    plist_t                          info;
    ngx_int_t                        rc;
    ngx_str_t                        v, *serial;
    const char                      *reason;
    ngx_http_mdm_loc_conf_t         *mlcf;
    ngx_http_mdm_machineinfo_key_t  *k;

    mlcf = ngx_http_get_module_loc_conf(r, ngx_http_mdm_module);

    ngx_str_set(&ctx->mdm.message_type, "MachineInfo");

    if (mlcf->enroll.device_ca_set == 0) {
        return ngx_http_mdm_reject(r, &ctx->mdm, NGX_HTTP_FORBIDDEN,
                                   "ADE MachineInfo refused: no "
                                   "mdm_enroll_device_ca here");
    }

    rc = ngx_http_mdm_enroll_machineinfo(r, &mlcf->enroll, der, &info,
                                         &reason);
    if (rc == NGX_DECLINED) {
        return ngx_http_mdm_reject(r, &ctx->mdm, NGX_HTTP_BAD_REQUEST, reason);
    }

    if (rc != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    serial = ngx_array_push(args);
    if (serial == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    for (k = ngx_http_mdm_machineinfo_keys; k->key; k++) {
        rc = ngx_http_mdm_plist_string(info, k->key, &v);

        if (rc == NGX_ERROR || (rc == NGX_DECLINED && k->required)
            || (rc == NGX_OK && v.len > 256))
        {
            return ngx_http_mdm_reject(r, &ctx->mdm, NGX_HTTP_BAD_REQUEST,
                                       "MachineInfo lacks SERIAL or UDID, "
                                       "or a key is not a short string");
        }

        if (rc == NGX_DECLINED) {
            continue;
        }

        if (k == ngx_http_mdm_machineinfo_keys) {
            /* it names a Redis key and goes into the log */
            if (!ngx_http_mdm_enroll_is_serial(&v)) {
                return ngx_http_mdm_reject(r, &ctx->mdm, NGX_HTTP_BAD_REQUEST,
                                           "MachineInfo SERIAL is not 1-64 "
                                           "letters and digits");
            }

            *serial = v;
            ctx->mdm.enrollment_id = v;
        }

        if (ngx_http_mdm_push_arg(args, (u_char *) k->field,
                                  ngx_strlen(k->field)) != NGX_OK
            || ngx_http_mdm_push_arg(args, v.data, v.len) != NGX_OK)
        {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }
    }

    return NGX_OK;
}


static ngx_uint_t
ngx_http_mdm_enroll_is_serial(ngx_str_t *s)
{
    ngx_uint_t  i;

    if (s->len == 0 || s->len > 64) {
        return 0;
    }

    for (i = 0; i < s->len; i++) {
        if (!isalnum(s->data[i]) && s->data[i] != '-') {
            return 0;
        }
    }

    return 1;
}


static void
ngx_http_mdm_enroll_done(ngx_http_request_t *r, redisReply *reply,
    const char *err)
{
    u_char                      buf[128];
    ngx_int_t                   rc;
    ngx_str_t                   topic;
    redisReply                 *status, *value;
    ngx_http_mdm_enroll_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_mdm_module);

    if (reply == NULL) {
        ngx_snprintf(buf, sizeof(buf), "redis %s%Z", err);
        rc = ngx_http_mdm_enroll_error(r, ctx, NGX_HTTP_SERVICE_UNAVAILABLE,
                                       (char *) buf);
        goto done;
    }

    if (reply->type != REDIS_REPLY_ARRAY || reply->elements != 2
        || reply->element[0]->type != REDIS_REPLY_STRING
        || reply->element[1]->type != REDIS_REPLY_STRING)
    {
        ngx_snprintf(buf, sizeof(buf), "redis script failed: %*s%Z",
                     (size_t) (reply->type == REDIS_REPLY_ERROR
                               ? ngx_min(reply->len, 80) : 0),
                     reply->str);
        rc = ngx_http_mdm_enroll_error(r, ctx,
                                       NGX_HTTP_INTERNAL_SERVER_ERROR,
                                       (char *) buf);
        goto done;
    }

    status = reply->element[0];
    value = reply->element[1];

    if (status->len != 2 || ngx_strncmp(status->str, "ok", 2) != 0) {
        /* the only refusal: a profile with no topic would be useless */
        rc = ngx_http_mdm_enroll_error(r, ctx, NGX_HTTP_SERVICE_UNAVAILABLE,
                                       "no push certificate: upload the "
                                       "APNs certificate with PUT "
                                       "/v1/pushcert first");
        goto done;
    }

    /* the reply is freed when this returns */
    topic.len = value->len;
    topic.data = ngx_pnalloc(r->pool, topic.len);
    if (topic.data == NULL) {
        rc = NGX_HTTP_INTERNAL_SERVER_ERROR;
        goto done;
    }

    ngx_memcpy(topic.data, value->str, topic.len);

    rc = ngx_http_mdm_enroll_send(r, ctx, &topic);

    /* NGX_DONE: signing in the thread pool, which finalizes */
    if (rc == NGX_DONE) {
        return;
    }

done:

    ngx_http_finalize_request(r, rc);
}


static ngx_int_t
ngx_http_mdm_enroll_send(ngx_http_request_t *r,
    ngx_http_mdm_enroll_ctx_t *ctx, ngx_str_t *topic)
{
    ngx_str_t                    profile;
    ngx_http_mdm_loc_conf_t     *mlcf;
    ngx_http_mdm_profile_in_t    in;
    ngx_http_mdm_enroll_conf_t  *ecf;

    mlcf = ngx_http_get_module_loc_conf(r, ngx_http_mdm_module);
    ecf = &mlcf->enroll;

    in.topic = *topic;
    in.challenge = ctx->challenge;

    /* the private-key work goes to the thread pool when there is one */
    in.nosign = (ecf->signer && ecf->thread_pool) ? 1 : 0;

#if (NGX_HTTP_SSL)
    if (r->connection->ssl) {
        ngx_str_set(&in.scheme, "https");
    } else
#endif
    {
        ngx_str_set(&in.scheme, "http");
    }

    /* as the device reached us, port included */
    if (r->headers_in.host) {
        in.host = r->headers_in.host->value;

    } else {
        in.host = r->headers_in.server;
    }

    if (ngx_http_mdm_enroll_profile(r->pool, r->connection->log, ecf, &in,
                                    &profile)
        != NGX_OK)
    {
        return ngx_http_mdm_enroll_error(r, ctx,
                                         NGX_HTTP_INTERNAL_SERVER_ERROR,
                                         "cannot build the profile");
    }

#if (NGX_THREADS)
    if (in.nosign) {
        ctx->profile = profile;
        return ngx_http_mdm_enroll_sign_post(r, ctx, ecf->thread_pool);
    }
#endif

    return ngx_http_mdm_enroll_deliver(r, ctx, &profile);
}


ngx_int_t
ngx_http_mdm_enroll_deliver(ngx_http_request_t *r,
    ngx_http_mdm_enroll_ctx_t *ctx, ngx_str_t *profile)
{
    ngx_table_elt_t  *h;

    h = ngx_list_push(&r->headers_out.headers);
    if (h == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    h->hash = 1;
    ngx_str_set(&h->key, "Content-Disposition");
    ngx_str_set(&h->value, "attachment; filename=\"enroll.mobileconfig\"");

    ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                  "mdm: enrollment profile sent%s%V%s",
                  ctx->mdm.enrollment_id.len ? " to ADE device serial \"" : "",
                  &ctx->mdm.enrollment_id,
                  ctx->mdm.enrollment_id.len ? "\"" : "");

    return ngx_http_mdm_send(r, NGX_HTTP_OK, NGX_HTTP_MDM_PROFILE_TYPE,
                             profile);
}


/* one log line and a JSON {"error": reason}: people read this one */

ngx_int_t
ngx_http_mdm_enroll_error(ngx_http_request_t *r,
    ngx_http_mdm_enroll_ctx_t *ctx, ngx_uint_t status, const char *reason)
{
    char       *s;
    json_t     *j;
    ngx_str_t   body;

    ngx_http_mdm_reject(r, &ctx->mdm, status, reason);

    j = json_pack("{s:s}", "error", reason);
    s = j ? json_dumps(j, JSON_COMPACT) : NULL;
    json_decref(j);

    if (s == NULL) {
        return status;
    }

    body.len = ngx_strlen(s);
    body.data = ngx_pnalloc(r->pool, body.len);

    if (body.data == NULL) {
        free(s);
        return status;
    }

    ngx_memcpy(body.data, s, body.len);
    free(s);

    return ngx_http_mdm_send(r, status, "application/json", &body);
}


static ngx_int_t
ngx_http_mdm_enroll_time_arg(ngx_http_request_t *r, ngx_array_t *args,
    time_t t)
{
    u_char  *p;

    p = ngx_pnalloc(r->pool, NGX_TIME_T_LEN);
    if (p == NULL) {
        return NGX_ERROR;
    }

    return ngx_http_mdm_push_arg(args, p, ngx_sprintf(p, "%T", t) - p);
}
