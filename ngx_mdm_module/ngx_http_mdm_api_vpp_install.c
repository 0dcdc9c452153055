
/*
 * Copyright (C) ngx_mdm contributors
 *
 * POST /v1/vpp/install/NAME {"adam_id", "serials" | "enrollment_ids",
 * "options"} and POST /v1/vpp/remove/NAME {"adam_id", "identifier",
 * "serials" | "enrollment_ids"} (contract V3): the command plist is built
 * here from the InstallApplication / RemoveApplication template and stored
 * unqueued with the install record; the worker associates (or
 * disassociates) the licenses in batches and queues the command to each
 * device whose license went through.  GET /v1/vpp/install/NAME/IID shows
 * the outcome, device by device.
 */


#include "ngx_http_mdm_api_vpp.h"
#include "ngx_http_mdm_template.h"
#include "ngx_http_mdm_plist.h"
#include "ngx_http_mdm_request.h"
#include "ngx_http_mdm_util.h"

#include <openssl/rand.h>


/* an install record lives 30 days: its command at least as long */
#define NGX_HTTP_MDM_VPP_INSTALL_TTL  (30 * 86400)


typedef struct {
    json_t          *in;           /* the body */
    json_t          *devices;      /* its serials or enrollment_ids */
    const char      *kind;         /* "serials" or "enrollment_ids" */
    ngx_str_t        adam;         /* digits */
    ngx_str_t        pricing;      /* STDQ or PLUS */
    ngx_str_t        identifier;   /* remove: the bundle id */
} ngx_http_mdm_vpp_install_t;


static const char *ngx_http_mdm_api_vpp_install_read(ngx_http_request_t *r,
    ngx_http_mdm_vpp_install_t *in, ngx_uint_t remove);
static const char *ngx_http_mdm_api_vpp_devices(ngx_http_mdm_vpp_install_t *in);
static plist_t ngx_http_mdm_api_vpp_command(ngx_http_request_t *r,
    ngx_http_mdm_vpp_install_t *in, ngx_uint_t remove, const char **err);
static ngx_int_t ngx_http_mdm_api_vpp_uuid(ngx_http_request_t *r,
    ngx_str_t *uuid);


ngx_int_t
ngx_http_mdm_api_vpp_install(ngx_http_request_t *r, ngx_http_mdm_vpp_path_t *p,
    ngx_uint_t remove)
{
    size_t                       i;
    json_t                      *v, *extra;
    plist_t                      root;
    ngx_int_t                    answer;
    ngx_str_t                    uuid, xml, job, iid, s;
    const char                  *err;
    ngx_array_t                 *args;
    ngx_http_mdm_loc_conf_t     *mlcf;
    ngx_http_mdm_api_poll_t     *pl;
    ngx_http_mdm_vpp_install_t   in;

    ngx_memzero(&in, sizeof(ngx_http_mdm_vpp_install_t));

    if (ngx_http_mdm_api_vpp_json_body(r, NGX_HTTP_MDM_VPP_MAX_INSTALL,
                                       &in.in, &answer)
        != NGX_OK)
    {
        return answer;
    }

    err = ngx_http_mdm_api_vpp_install_read(r, &in, remove);
    root = err ? NULL : ngx_http_mdm_api_vpp_command(r, &in, remove, &err);

    if (root == NULL) {
        json_decref(in.in);
        return (err[0] == '!')
               ? NGX_HTTP_INTERNAL_SERVER_ERROR
               : ngx_http_mdm_api_error(r, NGX_HTTP_BAD_REQUEST, err);
    }

    if (ngx_http_mdm_api_vpp_uuid(r, &uuid) != NGX_OK) {
        json_decref(in.in);
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    plist_dict_set_item(root, "CommandUUID",
                        plist_new_string((char *) uuid.data));

    if (ngx_http_mdm_plist_xml(r->pool, root, &xml) != NGX_OK) {
        json_decref(in.in);
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    /*
     * V3's job: {"id", "name", "op", "deadline": 0, "install": IID}; the
     * install id is the waiter's random one (no reply is waited for)
     */
    pl = ngx_http_mdm_api_poll_state(r, 1);
    if (pl == NULL) {
        json_decref(in.in);
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    iid.data = pl->id;
    iid.len = 32;

    extra = json_pack("{s:s}", "install", (char *) pl->id);
    if (extra == NULL
        || ngx_http_mdm_api_vpp_job(r, p, remove ? "remove" : "install",
                                    extra, 0, &job) != NGX_OK)
    {
        json_decref(in.in);
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    /* what the arguments take from the body must outlive it */
    in.adam.data = ngx_pstrdup(r->pool, &in.adam);
    in.pricing.data = ngx_pstrdup(r->pool, &in.pricing);
    in.identifier.data = ngx_pstrdup(r->pool, &in.identifier);

    if (in.adam.data == NULL || in.pricing.data == NULL
        || (in.identifier.len && in.identifier.data == NULL))
    {
        json_decref(in.in);
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    mlcf = ngx_http_get_module_loc_conf(r, ngx_http_mdm_module);

    args = ngx_http_mdm_api_name_args(r, "install", &p->name);
    if (args == NULL
        || ngx_http_mdm_push_arg(args, iid.data, iid.len) != NGX_OK
        || ngx_http_mdm_push_arg(args, (u_char *) (remove ? "remove"
                                                          : "install"),
                                 remove ? 6 : 7) != NGX_OK
        || ngx_http_mdm_push_arg(args, in.adam.data, in.adam.len) != NGX_OK
        || ngx_http_mdm_push_arg(args, in.pricing.data, in.pricing.len)
           != NGX_OK
        || ngx_http_mdm_push_arg(args, uuid.data, uuid.len) != NGX_OK
        || ngx_http_mdm_push_arg(args, xml.data, xml.len) != NGX_OK
        || ngx_http_mdm_push_arg(args, (u_char *) (remove
                                                   ? "RemoveApplication"
                                                   : "InstallApplication"),
                                 remove ? 17 : 18) != NGX_OK
        || ngx_http_mdm_api_push_num(r, args, mlcf->result_ttl
                                     ? ngx_max(mlcf->result_ttl,
                                               NGX_HTTP_MDM_VPP_INSTALL_TTL)
                                     : 0) != NGX_OK
        || ngx_http_mdm_push_arg(args, in.identifier.data, in.identifier.len)
           != NGX_OK
        || ngx_http_mdm_push_arg(args, job.data, job.len) != NGX_OK
        || ngx_http_mdm_push_arg(args, (u_char *) in.kind,
                                 ngx_strlen(in.kind)) != NGX_OK)
    {
        json_decref(in.in);
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    /* the devices, copied: the call may wait for Redis after j is gone */
    json_array_foreach(in.devices, i, v) {
        s.len = json_string_length(v);
        s.data = ngx_pnalloc(r->pool, s.len);

        if (s.data == NULL) {
            json_decref(in.in);
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        ngx_memcpy(s.data, json_string_value(v), s.len);

        if (ngx_http_mdm_push_arg(args, s.data, s.len) != NGX_OK) {
            json_decref(in.in);
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }
    }

    json_decref(in.in);

    return ngx_http_mdm_api_vpp_call(r, args, NULL);
}


/* the body's adam_id, pricing, identifier, devices: NULL, or why not */

static const char *
ngx_http_mdm_api_vpp_install_read(ngx_http_request_t *r,
    ngx_http_mdm_vpp_install_t *in, ngx_uint_t remove)
{
    u_char      *d;
    json_t      *v, *opts, *pp;
    ngx_uint_t   i;
    const char  *key;

    static const char  *install_keys[] = { "adam_id", "serials",
                                           "enrollment_ids", "options",
                                           NULL };
    static const char  *remove_keys[] = { "adam_id", "serials",
                                          "enrollment_ids", "identifier",
                                          "pricing_param", NULL };

    json_object_foreach(in->in, key, v) {
        for (i = 0; (remove ? remove_keys : install_keys)[i]; i++) {
            if (ngx_strcmp(key, (remove ? remove_keys : install_keys)[i])
                == 0)
            {
                break;
            }
        }

        if ((remove ? remove_keys : install_keys)[i] == NULL) {
            return remove ? "remove takes adam_id, identifier, serials or "
                            "enrollment_ids, and pricing_param"
                          : "install takes adam_id, serials or "
                            "enrollment_ids, and options";
        }
    }

    /* the Adam ID: digits, as a number or a string (Apple writes both) */
    v = json_object_get(in->in, "adam_id");
    d = ngx_pnalloc(r->pool, 24);
    if (d == NULL) {
        return "!out of memory";
    }

    if (json_is_integer(v) && json_integer_value(v) > 0) {
        in->adam.data = d;
        in->adam.len = ngx_sprintf(d, "%L", (int64_t) json_integer_value(v))
                       - d;

    } else if (json_is_string(v) && json_string_length(v) > 0
               && json_string_length(v) <= 18)
    {
        in->adam.data = (u_char *) json_string_value(v);
        in->adam.len = json_string_length(v);

        for (i = 0; i < in->adam.len; i++) {
            if (in->adam.data[i] < '0' || in->adam.data[i] > '9') {
                return "adam_id is the app's Adam ID (digits)";
            }
        }

    } else {
        return "adam_id is the app's Adam ID (digits)";
    }

    /* pricing_param: the license kind (V3: STDQ unless said) */
    opts = json_object_get(in->in, "options");
    if (opts != NULL && !json_is_object(opts)) {
        return "options is a JSON object";
    }

    pp = remove ? json_object_get(in->in, "pricing_param")
                : json_object_get(opts, "pricing_param");
    ngx_str_set(&in->pricing, "STDQ");

    if (pp) {
        if (!json_is_string(pp)
            || (ngx_strcmp(json_string_value(pp), "STDQ") != 0
                && ngx_strcmp(json_string_value(pp), "PLUS") != 0))
        {
            return "pricing_param is STDQ or PLUS";
        }

        in->pricing.data = (u_char *) json_string_value(pp);
        in->pricing.len = 4;
    }

    if (remove) {
        v = json_object_get(in->in, "identifier");
        if (!json_is_string(v) || json_string_length(v) == 0
            || json_string_length(v) > 255)
        {
            return "remove needs identifier: the app's bundle identifier";
        }

        in->identifier.data = (u_char *) json_string_value(v);
        in->identifier.len = json_string_length(v);
    }

    return ngx_http_mdm_api_vpp_devices(in);
}


/* serials or enrollment_ids: 1 to 10,000 ids of [A-Za-z0-9._-] */

static const char *
ngx_http_mdm_api_vpp_devices(ngx_http_mdm_vpp_install_t *in)
{
    size_t      i;
    json_t     *s, *e, *v;
    ngx_str_t   id;

    s = json_object_get(in->in, "serials");
    e = json_object_get(in->in, "enrollment_ids");

    if ((s == NULL) == (e == NULL)) {
        return "name the devices by serials or by enrollment_ids (one of "
               "them)";
    }

    in->devices = s ? s : e;
    in->kind = s ? "serials" : "enrollment_ids";

    if (!json_is_array(in->devices) || json_array_size(in->devices) == 0
        || json_array_size(in->devices) > NGX_HTTP_MDM_API_MAX_IDS)
    {
        return "serials or enrollment_ids is an array of 1 to 10000 "
               "strings";
    }

    json_array_foreach(in->devices, i, v) {
        if (!json_is_string(v)) {
            return "serials or enrollment_ids is an array of 1 to 10000 "
                   "strings";
        }

        id.data = (u_char *) json_string_value(v);
        id.len = json_string_length(v);

        if (s && !ngx_http_mdm_api_valid_name(&id)) {
            return "a serial number is 1 to 64 letters, digits, \".\", "
                   "\"_\" or \"-\"";
        }

        if (e && (!ngx_http_mdm_api_valid_id(&id)
                  || ngx_strlchr(id.data, id.data + id.len, ':') != NULL))
        {
            return "an enrollment id is a device's (no user channel)";
        }
    }

    return NULL;
}


/*
 * InstallApplication {iTunesStoreID, Options.PurchaseMethod 1, the options'
 * template keys} or RemoveApplication {Identifier}, from the templates
 * (contract T1): their checks are the admin's answer
 */

static plist_t
ngx_http_mdm_api_vpp_command(ngx_http_request_t *r,
    ngx_http_mdm_vpp_install_t *in, ngx_uint_t remove, const char **err)
{
    json_t                   *t, *opts, *v;
    plist_t                   root;
    const char               *key;
    ngx_http_mdm_template_t  *tpl;

    if (remove) {
        t = json_pack("{s:s, s:O}", "request_type", "RemoveApplication",
                      "identifier", json_object_get(in->in, "identifier"));

    } else {
        t = json_pack("{s:s, s:I, s:i}", "request_type", "InstallApplication",
                      "itunes_store_id",
                      (json_int_t) ngx_atoof(in->adam.data, in->adam.len),
                      "purchase_method", 1);

        opts = json_object_get(in->in, "options");

        json_object_foreach(opts, key, v) {
            if (ngx_strcmp(key, "pricing_param") == 0) {
                continue;
            }

            if (ngx_strcmp(key, "itunes_store_id") == 0
                || ngx_strcmp(key, "purchase_method") == 0
                || ngx_strcmp(key, "identifier") == 0
                || ngx_strcmp(key, "manifest_url") == 0
                || ngx_strcmp(key, "request_type") == 0
                || ngx_strcmp(key, "command_uuid") == 0)
            {
                json_decref(t);
                *err = "options may not set itunes_store_id, "
                       "purchase_method, identifier or manifest_url: the "
                       "install sets them";
                return NULL;
            }

            if (t) {
                json_object_set(t, key, v);
            }
        }
    }

    if (t == NULL) {
        *err = "!out of memory";
        return NULL;
    }

    tpl = NULL;
    root = ngx_http_mdm_template_build(r->pool, t, &tpl, err);
    json_decref(t);

    return root;
}


/* a version 4 UUID, upper-case as Apple's tools write them */

static ngx_int_t
ngx_http_mdm_api_vpp_uuid(ngx_http_request_t *r, ngx_str_t *uuid)
{
    u_char  b[16], h[32], *p;

    if (RAND_bytes(b, sizeof(b)) != 1) {
        return NGX_ERROR;
    }

    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;

    ngx_hex_dump(h, b, sizeof(b));

    p = ngx_pnalloc(r->pool, 37);
    if (p == NULL) {
        return NGX_ERROR;
    }

    uuid->data = p;
    uuid->len = ngx_sprintf(p, "%*s-%*s-%*s-%*s-%*s%Z", 8, h, 4, h + 8,
                            4, h + 12, 4, h + 16, 12, h + 20)
                - p - 1;

    for (p = uuid->data; *p; p++) {
        *p = ngx_toupper(*p);
    }

    return NGX_OK;
}


/* GET /v1/vpp/install/NAME/IID[?state=&cursor=&limit=] */

ngx_int_t
ngx_http_mdm_api_vpp_install_get(ngx_http_request_t *r,
    ngx_http_mdm_vpp_path_t *p)
{
    ngx_int_t     rc;
    ngx_str_t     state;
    ngx_array_t  *args;

    if (!ngx_http_mdm_api_word(&p->more, 64, "._-")) {
        return ngx_http_mdm_api_error(r, NGX_HTTP_BAD_REQUEST,
                                      "an install id is what the install's "
                                      "POST answered (32 hex digits)");
    }

    if (ngx_http_mdm_arg(r, "state", &state) == NGX_ERROR) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (state.len && !ngx_http_mdm_api_word(&state, 32, "._-")) {
        return ngx_http_mdm_api_error(r, NGX_HTTP_BAD_REQUEST,
                                      "state is pending, associated, "
                                      "queued, failed or no_enrollment");
    }

    args = ngx_http_mdm_api_name_args(r, "install_get", &p->name);
    if (args == NULL
        || ngx_http_mdm_push_arg(args, p->more.data, p->more.len) != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (ngx_http_mdm_api_paged(r, args, &rc) != NGX_OK) {
        return rc;
    }

    if (ngx_http_mdm_push_arg(args, state.data, state.len) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return ngx_http_mdm_api_vpp_call(r, args, NULL);
}
