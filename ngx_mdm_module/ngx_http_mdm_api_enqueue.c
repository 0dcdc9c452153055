
/*
 * Copyright (C) ngx_mdm contributors
 *
 * PUT /v1/enqueue/IDS and /v1/push/IDS: a command into the queues of up to
 * NGX_HTTP_MDM_API_MAX_IDS enrollments, and their pushes.  One call of
 * lua/api.lua each, whose work is bounded by that number of ids.
 */


#include "ngx_http_mdm_api_private.h"
#include "ngx_http_mdm_plist.h"
#include "ngx_http_mdm_request.h"
#include "ngx_http_mdm_enrollment.h"
#include "ngx_http_mdm_util.h"

#include <openssl/rand.h>


/* ten years: longer than any device lives */
#define NGX_HTTP_MDM_API_MAX_EXPIRES  (10 * 365 * 86400)


static const char *ngx_http_mdm_api_options(ngx_http_request_t *r,
    ngx_array_t *args, time_t *expires);
static const char *ngx_http_mdm_api_command(ngx_http_request_t *r,
    plist_t root, ngx_str_t *body, ngx_str_t *uuid, ngx_str_t *rtype);
static const char *ngx_http_mdm_api_new_uuid(ngx_http_request_t *r,
    ngx_str_t *uuid);
static ngx_int_t ngx_http_mdm_api_ids(ngx_str_t *list, ngx_array_t *args);


/*
 * PUT /v1/enqueue/ID[,ID...][?nopush=1][&priority=1][&expires=SECONDS]
 * [&max_deliveries=N] with a raw command plist.
 */

ngx_int_t
ngx_http_mdm_api_enqueue(ngx_http_request_t *r)
{
    plist_t                    root;
    ngx_str_t                  body;
    ngx_http_mdm_api_route_t   rt;

    if (ngx_http_mdm_api_route(r, &rt) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (ngx_http_mdm_request_body(r, &body) != NGX_OK) {
        return ngx_http_mdm_api_error(r, NGX_HTTP_BAD_REQUEST,
                                      "no command plist in the body");
    }

    root = ngx_http_mdm_plist_parse(r, &body);
    if (root == NULL) {
        return ngx_http_mdm_api_error(r, NGX_HTTP_BAD_REQUEST,
                                      "the body is not an XML plist "
                                      "dictionary");
    }

    return ngx_http_mdm_api_enqueue_plist(r, &rt.arg, root, &body);
}


/*
 * The command root (its XML in body) into the queues of the enrollments
 * in ids, with the query's options: enqueue's work, and that of
 * POST /v1/commands (ngx_http_mdm_api_commands.c) once it built the plist.
 */

ngx_int_t
ngx_http_mdm_api_enqueue_plist(ngx_http_request_t *r, ngx_str_t *ids,
    plist_t root, ngx_str_t *xml)
{
    time_t                     expires, ttl;
    ngx_str_t                  body, uuid, rtype;
    const char                *err;
    ngx_array_t               *args;
    ngx_http_mdm_loc_conf_t   *mlcf;

    body = *xml;

    err = ngx_http_mdm_api_command(r, root, &body, &uuid, &rtype);
    if (err) {
        return (err[0] == '!')
               ? NGX_HTTP_INTERNAL_SERVER_ERROR
               : ngx_http_mdm_api_error(r, NGX_HTTP_BAD_REQUEST, err);
    }

    args = ngx_http_mdm_api_args(r, "enqueue");
    if (args == NULL
        || ngx_http_mdm_push_arg(args, uuid.data, uuid.len) != NGX_OK
        || ngx_http_mdm_push_arg(args, body.data, body.len) != NGX_OK
        || ngx_http_mdm_push_arg(args, rtype.data, rtype.len) != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    expires = 0;
    err = ngx_http_mdm_api_options(r, args, &expires);
    if (err) {
        return (err[0] == '!')
               ? NGX_HTTP_INTERNAL_SERVER_ERROR
               : ngx_http_mdm_api_error(r, NGX_HTTP_BAD_REQUEST, err);
    }

    /*
     * The command and its target set live mdm_result_ttl, and at least as
     * long as the command may still be delivered; mdm_result_ttl 0 keeps
     * them forever.
     */
    mlcf = ngx_http_get_module_loc_conf(r, ngx_http_mdm_module);
    ttl = mlcf->result_ttl ? ngx_max(mlcf->result_ttl, expires) : 0;

    if (ngx_http_mdm_api_push_num(r, args, ttl) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (ngx_http_mdm_api_ids(ids, args) != NGX_OK) {
        return ngx_http_mdm_api_error(r, NGX_HTTP_BAD_REQUEST,
                                      "invalid enrollment id list");
    }

    return ngx_http_mdm_api_call(r, args);
}


/*
 * priority, expires_at (ms, "" for none), max_deliveries ("" for none),
 * nopush: NULL, why the query is refused, or "!..." for an internal failure
 */

static const char *
ngx_http_mdm_api_options(ngx_http_request_t *r, ngx_array_t *args,
    time_t *expires)
{
    u_char      *p;
    ngx_int_t    n;
    ngx_str_t    v;
    ngx_time_t  *tp;

    /* priority: to the front of the queue, for EraseDevice or DeviceLock */
    ngx_http_mdm_arg(r, "priority", &v);
    n = ngx_http_mdm_flag(&v);
    if (n == NGX_ERROR) {
        return "priority is 1, true, yes, 0, false or no";
    }

    if (ngx_http_mdm_push_arg(args, (u_char *) (n ? "1" : "0"), 1)
        != NGX_OK)
    {
        return "!out of memory";
    }

    ngx_http_mdm_arg(r, "expires", &v);
    n = v.len ? ngx_atoi(v.data, v.len) : 0;
    if (n == NGX_ERROR || n > NGX_HTTP_MDM_API_MAX_EXPIRES
        || (v.len && n == 0))
    {
        return "expires is a number of seconds, up to ten years";
    }

    *expires = n;

    /* in milliseconds, as every time the scripts keep */
    p = ngx_pnalloc(r->pool, NGX_INT64_LEN);
    if (p == NULL) {
        return "!out of memory";
    }

    tp = ngx_timeofday();
    v.data = p;
    v.len = n ? (size_t) (ngx_sprintf(p, "%T%03M", (time_t) (tp->sec + n),
                                      tp->msec) - p)
              : 0;

    if (ngx_http_mdm_push_arg(args, v.data, v.len) != NGX_OK) {
        return "!out of memory";
    }

    ngx_http_mdm_arg(r, "max_deliveries", &v);
    if (v.len && ngx_atoi(v.data, v.len) <= 0) {
        return "max_deliveries is a positive number";
    }

    if (ngx_http_mdm_push_arg(args, v.data, v.len) != NGX_OK) {
        return "!out of memory";
    }

    ngx_http_mdm_arg(r, "nopush", &v);
    n = ngx_http_mdm_flag(&v);
    if (n == NGX_ERROR) {
        return "nopush is 1, true, yes, 0, false or no";
    }

    if (ngx_http_mdm_push_arg(args, (u_char *) (n ? "1" : "0"), 1)
        != NGX_OK)
    {
        return "!out of memory";
    }

    return NULL;
}


/* /v1/push/ID[,ID...], any method, as NanoMDM */

ngx_int_t
ngx_http_mdm_api_push(ngx_http_request_t *r, ngx_http_mdm_api_route_t *rt)
{
    ngx_array_t  *args;

    args = ngx_http_mdm_api_args(r, "push");
    if (args == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (ngx_http_mdm_api_ids(&rt->arg, args) != NGX_OK) {
        return ngx_http_mdm_api_error(r, NGX_HTTP_BAD_REQUEST,
                                      "invalid enrollment id list");
    }

    return ngx_http_mdm_api_call(r, args);
}


/*
 * Command.RequestType must be there; a missing CommandUUID is made up and
 * written into the plist, which is then stored as re-serialized.  Returns
 * NULL, why the command is refused, or "!..." for an internal failure.
 */

static const char *
ngx_http_mdm_api_command(ngx_http_request_t *r, plist_t root,
    ngx_str_t *body, ngx_str_t *uuid, ngx_str_t *rtype)
{
    plist_t      cmd;
    ngx_int_t    rc;
    const char  *err;

    cmd = plist_dict_get_item(root, "Command");

    if (cmd == NULL || plist_get_node_type(cmd) != PLIST_DICT
        || ngx_http_mdm_plist_string(cmd, "RequestType", rtype) != NGX_OK
        || rtype->len == 0)
    {
        return "no Command dictionary with a RequestType string";
    }

    rc = ngx_http_mdm_plist_string(root, "CommandUUID", uuid);

    if (rc == NGX_OK) {
        if (!ngx_http_mdm_enrollment_valid_part(uuid)) {
            return "CommandUUID has characters outside [A-Za-z0-9._@+-] or "
                   "is longer than 128";
        }

        return NULL;
    }

    if (rc == NGX_ERROR) {
        return "CommandUUID is not a string";
    }

    err = ngx_http_mdm_api_new_uuid(r, uuid);
    if (err) {
        return err;
    }

    plist_dict_set_item(root, "CommandUUID",
                        plist_new_string((char *) uuid->data));

    if (ngx_http_mdm_plist_xml(r->pool, root, body) != NGX_OK) {
        return "!out of memory";
    }

    return NULL;
}


/* a version 4 UUID, upper-case as uuidgen and Apple's tools write them */

static const char *
ngx_http_mdm_api_new_uuid(ngx_http_request_t *r, ngx_str_t *uuid)
{
    u_char  rnd[16], *p;

    if (RAND_bytes(rnd, sizeof(rnd)) != 1) {
        return "!RAND_bytes() failed";
    }

    rnd[6] = (rnd[6] & 0x0f) | 0x40;
    rnd[8] = (rnd[8] & 0x3f) | 0x80;

    p = ngx_pnalloc(r->pool, 37);
    if (p == NULL) {
        return "!out of memory";
    }

    uuid->data = p;
    p = ngx_hex_dump(p, &rnd[0], 4);
    *p++ = '-';
    p = ngx_hex_dump(p, &rnd[4], 2);
    *p++ = '-';
    p = ngx_hex_dump(p, &rnd[6], 2);
    *p++ = '-';
    p = ngx_hex_dump(p, &rnd[8], 2);
    *p++ = '-';
    p = ngx_hex_dump(p, &rnd[10], 6);
    *p = '\0';
    uuid->len = p - uuid->data;

    for (p = uuid->data; *p; p++) {
        *p = ngx_toupper(*p);
    }

    return NULL;
}


/* "ID,ID,...": each a valid enrollment id, at most 10,000 */

static ngx_int_t
ngx_http_mdm_api_ids(ngx_str_t *list, ngx_array_t *args)
{
    u_char      *p, *last, *comma;
    ngx_str_t    id;
    ngx_uint_t   n;

    p = list->data;
    last = list->data + list->len;

    for (n = 0; p < last; n++) {
        comma = ngx_strlchr(p, last, ',');
        if (comma == NULL) {
            comma = last;
        }

        id.data = p;
        id.len = comma - p;

        if (n == NGX_HTTP_MDM_API_MAX_IDS
            || !ngx_http_mdm_api_valid_id(&id)
            || ngx_http_mdm_push_arg(args, id.data, id.len) != NGX_OK)
        {
            return NGX_ERROR;
        }

        p = comma + 1;
    }

    return (n && list->data[list->len - 1] != ',') ? NGX_OK : NGX_ERROR;
}
