
/*
 * Copyright (C) ngx_mdm contributors
 *
 * Enrollment ids and types (NanoMDM's rules):
 *   UDID                       Device                    UDID
 *   UDID + UserID              User                      UDID:UserID
 *   UDID + UserID all-F        Shared iPad               UDID:UserShortName
 *   EnrollmentID               User Enrollment (Device)  EnrollmentID
 *   EnrollmentID + EUserID     User Enrollment           EnrollmentID:EUserID
 */


#include "ngx_http_mdm_enrollment.h"
#include "ngx_http_mdm_plist.h"


#define NGX_HTTP_MDM_SHARED_IPAD_USER  "FFFFFFFF-FFFF-FFFF-FFFF-FFFFFFFFFFFF"


static const char *ngx_http_mdm_enrollment_get(plist_t msg, const char *key,
    ngx_str_t *out, ngx_uint_t *found);
static ngx_int_t ngx_http_mdm_enrollment_join(ngx_pool_t *pool,
    ngx_http_mdm_ctx_t *ctx, ngx_str_t *user);


const char *
ngx_http_mdm_enrollment_resolve(ngx_http_request_t *r, plist_t msg,
    ngx_http_mdm_ctx_t *ctx)
{
    ngx_str_t    udid, eid, user, short_name, euser;
    ngx_uint_t   has_udid, has_eid, has_user, has_short, has_euser;
    const char  *err;

    if ((err = ngx_http_mdm_enrollment_get(msg, "UDID", &udid, &has_udid))
        || (err = ngx_http_mdm_enrollment_get(msg, "EnrollmentID", &eid,
                                              &has_eid))
        || (err = ngx_http_mdm_enrollment_get(msg, "UserID", &user,
                                              &has_user))
        || (err = ngx_http_mdm_enrollment_get(msg, "UserShortName",
                                              &short_name, &has_short))
        || (err = ngx_http_mdm_enrollment_get(msg, "EnrollmentUserID", &euser,
                                              &has_euser)))
    {
        return err;
    }

    if (has_udid) {
        ctx->udid = udid;
        ctx->device_id = udid;

        if (!has_user) {
            ngx_str_set(&ctx->enrollment_type, "Device");
            ngx_str_null(&user);

        } else if (user.len == sizeof(NGX_HTTP_MDM_SHARED_IPAD_USER) - 1
                   && ngx_strncasecmp(user.data,
                                  (u_char *) NGX_HTTP_MDM_SHARED_IPAD_USER,
                                  user.len) == 0)
        {
            if (!has_short) {
                return "Shared iPad user channel without UserShortName";
            }

            ngx_str_set(&ctx->enrollment_type, "Shared iPad");
            user = short_name;

        } else {
            ngx_str_set(&ctx->enrollment_type, "User");
        }

    } else if (has_eid) {
        ctx->device_id = eid;

        if (has_euser) {
            ngx_str_set(&ctx->enrollment_type, "User Enrollment");
            user = euser;

        } else {
            ngx_str_set(&ctx->enrollment_type, "User Enrollment (Device)");
            ngx_str_null(&user);
        }

    } else {
        return "neither UDID nor EnrollmentID in the message";
    }

    if (!ngx_http_mdm_enrollment_valid_part(&ctx->device_id)
        || (user.len && !ngx_http_mdm_enrollment_valid_part(&user)))
    {
        return "enrollment id has characters outside [A-Za-z0-9._@+-] "
               "or is longer than 128";
    }

    if (ngx_http_mdm_enrollment_join(r->pool, ctx, &user) != NGX_OK) {
        return "out of memory";
    }

    return NULL;
}


static const char *
ngx_http_mdm_enrollment_get(plist_t msg, const char *key, ngx_str_t *out,
    ngx_uint_t *found)
{
    ngx_int_t  rc;

    rc = ngx_http_mdm_plist_string(msg, key, out);

    *found = (rc == NGX_OK && out->len) ? 1 : 0;

    if (rc == NGX_ERROR) {
        return "an id key is not a string";
    }

    return NULL;
}


static ngx_int_t
ngx_http_mdm_enrollment_join(ngx_pool_t *pool, ngx_http_mdm_ctx_t *ctx,
    ngx_str_t *user)
{
    u_char  *p;

    if (user->len == 0) {
        ctx->enrollment_id = ctx->device_id;
        ngx_str_null(&ctx->user_suffix);
        return NGX_OK;
    }

    p = ngx_pnalloc(pool, ctx->device_id.len + 1 + user->len);
    if (p == NULL) {
        return NGX_ERROR;
    }

    ctx->enrollment_id.data = p;
    p = ngx_cpymem(p, ctx->device_id.data, ctx->device_id.len);
    *p++ = ':';
    p = ngx_cpymem(p, user->data, user->len);
    ctx->enrollment_id.len = p - ctx->enrollment_id.data;

    ctx->user_suffix.data = ctx->enrollment_id.data + ctx->device_id.len;
    ctx->user_suffix.len = user->len + 1;

    return NGX_OK;
}


ngx_int_t
ngx_http_mdm_enrollment_key(ngx_pool_t *pool, const char *prefix,
    ngx_http_mdm_ctx_t *ctx, ngx_uint_t with_user, ngx_str_t *key)
{
    u_char  *p;
    size_t   n;

    n = ngx_strlen(prefix);

    key->data = ngx_pnalloc(pool, n + ctx->device_id.len + 2
                                  + ctx->user_suffix.len);
    if (key->data == NULL) {
        return NGX_ERROR;
    }

    p = ngx_cpymem(key->data, prefix, n);
    *p++ = '{';
    p = ngx_cpymem(p, ctx->device_id.data, ctx->device_id.len);
    *p++ = '}';

    if (with_user && ctx->user_suffix.len) {
        p = ngx_cpymem(p, ctx->user_suffix.data, ctx->user_suffix.len);
    }

    key->len = p - key->data;

    return NGX_OK;
}


ngx_uint_t
ngx_http_mdm_enrollment_valid_part(ngx_str_t *s)
{
    u_char      c;
    ngx_uint_t  i;

    if (s->len == 0 || s->len > NGX_HTTP_MDM_ID_PART_MAX) {
        return 0;
    }

    for (i = 0; i < s->len; i++) {
        c = s->data[i];

        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
            || (c >= '0' && c <= '9')
            || c == '-' || c == '.' || c == '_' || c == '@' || c == '+')
        {
            continue;
        }

        return 0;
    }

    return 1;
}
