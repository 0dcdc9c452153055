
/*
 * Copyright (C) ngx_mdm contributors
 *
 * A DeclarativeManagement status report, parsed once here (jansson) into
 * what lua/ddm.lua stores: the flat "dotted.path" = JSON value pairs of
 * StatusItems, each declaration's status (management.declarations.*[]),
 * and the Errors.  The script then only writes hashes.
 */


#include "ngx_http_mdm_ddm.h"
#include "ngx_http_mdm_request.h"


typedef struct {
    ngx_http_request_t        *r;
    ngx_array_t               *values;   /* of ngx_str_t pairs */
    ngx_array_t               *decls;    /* of ngx_str_t pairs */
    u_char                     now[24];
} ngx_http_mdm_ddm_report_t;


static const char *ngx_http_mdm_ddm_flatten(ngx_http_mdm_ddm_report_t *rp,
    json_t *v, u_char *path, size_t len, ngx_uint_t depth);
static const char *ngx_http_mdm_ddm_declarations(
    ngx_http_mdm_ddm_report_t *rp, json_t *o);
static const char *ngx_http_mdm_ddm_errors(ngx_http_mdm_ddm_report_t *rp,
    json_t *errors, ngx_array_t *args);
static ngx_int_t ngx_http_mdm_ddm_pair(ngx_http_mdm_ddm_report_t *rp,
    ngx_array_t *a, u_char *name, size_t len, json_t *v);
static ngx_int_t ngx_http_mdm_ddm_count(ngx_http_request_t *r,
    ngx_array_t *args, ngx_uint_t n);


const char *
ngx_http_mdm_ddm_status_args(ngx_http_request_t *r, ngx_str_t *json,
    ngx_array_t *args)
{
    u_char                     path[NGX_HTTP_MDM_DDM_PATH_MAX + 1];
    json_t                    *root, *items, *errors, *full;
    ngx_str_t                 *a;
    const char                *reason;
    json_error_t               jerr;
    ngx_uint_t                 i;
    ngx_http_mdm_ddm_report_t  rp;

    root = json_loadb((const char *) json->data, json->len,
                      JSON_REJECT_DUPLICATES, &jerr);
    if (root == NULL) {
        return "malformed status report JSON";
    }

    items = json_object_get(root, "StatusItems");
    errors = json_object_get(root, "Errors");
    full = json_object_get(root, "FullReport");

    reason = NULL;

    if (!json_is_object(root) || !json_is_object(items)
        || (errors && !json_is_array(errors))
        || (full && !json_is_boolean(full)))
    {
        reason = "status report is not {StatusItems: {}, Errors: [], "
                 "FullReport: bool}";
        goto done;
    }

    rp.r = r;
    rp.values = ngx_array_create(r->pool, 64, sizeof(ngx_str_t));
    rp.decls = ngx_array_create(r->pool, 16, sizeof(ngx_str_t));
    if (rp.values == NULL || rp.decls == NULL) {
        reason = "out of memory";
        goto done;
    }

    ngx_http_mdm_ddm_now(rp.now);

    reason = ngx_http_mdm_ddm_flatten(&rp, items, path, 0, 0);
    if (reason) {
        goto done;
    }

    if (ngx_http_mdm_push_arg(args, (u_char *) (json_is_true(full) ? "1" : "0"),
                              1) != NGX_OK
        || ngx_http_mdm_ddm_count(r, args, rp.values->nelts / 2) != NGX_OK)
    {
        reason = "out of memory";
        goto done;
    }

    a = rp.values->elts;
    for (i = 0; i < rp.values->nelts; i++) {
        if (ngx_http_mdm_push_arg(args, a[i].data, a[i].len) != NGX_OK) {
            reason = "out of memory";
            goto done;
        }
    }

    if (ngx_http_mdm_ddm_count(r, args, rp.decls->nelts / 2) != NGX_OK) {
        reason = "out of memory";
        goto done;
    }

    a = rp.decls->elts;
    for (i = 0; i < rp.decls->nelts; i++) {
        if (ngx_http_mdm_push_arg(args, a[i].data, a[i].len) != NGX_OK) {
            reason = "out of memory";
            goto done;
        }
    }

    reason = ngx_http_mdm_ddm_errors(&rp, errors, args);

done:

    json_decref(root);

    return reason;
}


/*
 * Every value under StatusItems that is not an object, by its dotted path;
 * arrays are values (their JSON).  management.declarations goes apart.
 */

static const char *
ngx_http_mdm_ddm_flatten(ngx_http_mdm_ddm_report_t *rp, json_t *v,
    u_char *path, size_t len, ngx_uint_t depth)
{
    size_t       klen, n;
    json_t      *sub;
    const char  *key, *reason;

    if (!json_is_object(v)) {
        if (rp->values->nelts / 2 >= NGX_HTTP_MDM_DDM_VALUES_MAX) {
            return "status report has too many values";
        }

        return ngx_http_mdm_ddm_pair(rp, rp->values, path, len, v) == NGX_OK
               ? NULL : "out of memory";
    }

    if (depth >= NGX_HTTP_MDM_DDM_DEPTH_MAX) {
        return "status report nests too deep";
    }

    if (len == sizeof("management.declarations") - 1
        && ngx_strncmp(path, "management.declarations", len) == 0)
    {
        return ngx_http_mdm_ddm_declarations(rp, v);
    }

    json_object_keylen_foreach(v, key, klen, sub) {
        n = len + (len ? 1 : 0) + klen;

        if (n > NGX_HTTP_MDM_DDM_PATH_MAX || klen == 0
            || ngx_strlchr((u_char *) key, (u_char *) key + klen, '\0'))
        {
            return "status report has a bad or too long item name";
        }

        if (len) {
            path[len] = '.';
        }

        ngx_memcpy(path + n - klen, key, klen);

        reason = ngx_http_mdm_ddm_flatten(rp, sub, path, n, depth + 1);
        if (reason) {
            return reason;
        }
    }

    return NULL;
}


/*
 * {activations: [...], configurations: [...], ...}: each entry, with its
 * manifest and the time it came, stored by identifier
 */

static const char *
ngx_http_mdm_ddm_declarations(ngx_http_mdm_ddm_report_t *rp, json_t *o)
{
    size_t       i;
    json_t      *list, *e, *ident, *copy;
    ngx_int_t    rc;
    const char  *manifest;

    json_object_foreach(o, manifest, list) {
        if (!json_is_array(list)) {
            return "management.declarations holds a non-array";
        }

        json_array_foreach(list, i, e) {
            ident = json_object_get(e, "identifier");

            if (!json_is_object(e) || !json_is_string(ident)
                || json_string_length(ident) == 0
                || json_string_length(ident) > 256)
            {
                return "a declaration status without identifier";
            }

            if (rp->decls->nelts / 2 >= NGX_HTTP_MDM_DDM_VALUES_MAX) {
                return "status report has too many declarations";
            }

            copy = json_copy(e);
            if (copy == NULL
                || json_object_set_new(copy, "manifest",
                                       json_string(manifest)) != 0
                || json_object_set_new(copy, "status_received",
                                       json_string((char *) rp->now)) != 0)
            {
                json_decref(copy);
                return "out of memory";
            }

            rc = ngx_http_mdm_ddm_pair(rp, rp->decls,
                                       (u_char *) json_string_value(ident),
                                       json_string_length(ident), copy);
            json_decref(copy);

            if (rc != NGX_OK) {
                return "out of memory";
            }
        }
    }

    return NULL;
}


/* each error, with the time it came, as one JSON argument */

static const char *
ngx_http_mdm_ddm_errors(ngx_http_mdm_ddm_report_t *rp, json_t *errors,
    ngx_array_t *args)
{
    size_t      i;
    json_t     *e, *copy;
    ngx_int_t   rc;
    ngx_str_t   s;

    if (json_array_size(errors) > NGX_HTTP_MDM_DDM_ERRORS_MAX) {
        return "status report has too many errors";
    }

    json_array_foreach(errors, i, e) {
        if (!json_is_object(e)
            || !json_is_string(json_object_get(e, "StatusItem")))
        {
            return "a status report error without StatusItem";
        }

        copy = json_copy(e);
        if (copy == NULL
            || json_object_set_new(copy, "status_received",
                                   json_string((char *) rp->now)) != 0)
        {
            json_decref(copy);
            return "out of memory";
        }

        rc = ngx_http_mdm_ddm_dump(rp->r->pool, copy,
                                   JSON_COMPACT|JSON_SORT_KEYS, &s);
        json_decref(copy);

        if (rc != NGX_OK
            || ngx_http_mdm_push_arg(args, s.data, s.len) != NGX_OK)
        {
            return "out of memory";
        }
    }

    return NULL;
}


/* name (copied) and v's compact JSON, appended to a */

static ngx_int_t
ngx_http_mdm_ddm_pair(ngx_http_mdm_ddm_report_t *rp, ngx_array_t *a,
    u_char *name, size_t len, json_t *v)
{
    ngx_str_t  *p;

    p = ngx_array_push_n(a, 2);
    if (p == NULL) {
        return NGX_ERROR;
    }

    p[0].data = ngx_pnalloc(rp->r->pool, len);
    if (p[0].data == NULL) {
        return NGX_ERROR;
    }

    ngx_memcpy(p[0].data, name, len);
    p[0].len = len;

    return ngx_http_mdm_ddm_dump(rp->r->pool, v,
                                 JSON_COMPACT|JSON_SORT_KEYS|JSON_ENCODE_ANY,
                                 &p[1]);
}


static ngx_int_t
ngx_http_mdm_ddm_count(ngx_http_request_t *r, ngx_array_t *args,
    ngx_uint_t n)
{
    u_char  *p;

    p = ngx_pnalloc(r->pool, NGX_INT_T_LEN);
    if (p == NULL) {
        return NGX_ERROR;
    }

    return ngx_http_mdm_push_arg(args, p, ngx_sprintf(p, "%ui", n) - p);
}
