
/*
 * Copyright (C) ngx_mdm contributors
 *
 * Inspection and maintenance: enrollments (listing, one, block, unblock,
 * delete), queues, commands and webhook delivery.  Every listing is a page
 * (?cursor=&limit=, at most NGX_HTTP_MDM_API_MAX_PAGE items), so no call of
 * lua/api.lua works on an unbounded set: a long script would hold Redis,
 * and with it every device request, past its timeout.
 */


#include "ngx_http_mdm_api_private.h"
#include "ngx_http_mdm_request.h"
#include "ngx_http_mdm_enrollment.h"
#include "ngx_http_mdm_util.h"


/* dead letters replayed by one POST /v1/webhooks/replay */
#define NGX_HTTP_MDM_API_REPLAY       100


static ngx_int_t ngx_http_mdm_api_enrollment_list(ngx_http_request_t *r);
static ngx_int_t ngx_http_mdm_api_id_call(ngx_http_request_t *r,
    const char *op, ngx_str_t *id, ngx_str_t *uuid);
static ngx_int_t ngx_http_mdm_api_push_ttl(ngx_http_request_t *r,
    ngx_array_t *args);
static ngx_int_t ngx_http_mdm_api_bad_page(ngx_http_request_t *r,
    ngx_int_t rc);


/*
 * GET /v1/enrollments, GET|DELETE /v1/enrollments/ID,
 * POST /v1/enrollments/ID/block, POST /v1/enrollments/ID/unblock
 */

ngx_int_t
ngx_http_mdm_api_enrollments(ngx_http_request_t *r,
    ngx_http_mdm_api_route_t *rt)
{
    ngx_str_t  none = ngx_null_string;

    if (rt->arg.len == 0) {
        if (r->method != NGX_HTTP_GET) {
            return ngx_http_mdm_api_error(r, NGX_HTTP_NOT_ALLOWED,
                                          "enrollments takes GET");
        }

        return ngx_http_mdm_api_enrollment_list(r);
    }

    if (!ngx_http_mdm_api_valid_id(&rt->arg)) {
        return ngx_http_mdm_api_error(r, NGX_HTTP_BAD_REQUEST,
                                      "invalid enrollment id or command "
                                      "UUID");
    }

    if (rt->arg2.len) {
        /* block and unblock: the route allows no other name here */
        if (r->method != NGX_HTTP_POST) {
            return ngx_http_mdm_api_error(r, NGX_HTTP_NOT_ALLOWED,
                                          "enrollments/ID/block and unblock "
                                          "take POST");
        }

        /* a block holds for the device, with its user channels */
        if (ngx_strlchr(rt->arg.data, rt->arg.data + rt->arg.len, ':')) {
            return ngx_http_mdm_api_error(r, NGX_HTTP_BAD_REQUEST,
                                          "block and unblock take a device "
                                          "id, not a user channel's");
        }

        /* what an admin did to a device is worth a line of its own */
        ngx_log_error(NGX_LOG_NOTICE, r->connection->log, 0,
                      "mdm: API: %V of device \"%V\"", &rt->arg2, &rt->arg);

        return ngx_http_mdm_api_id_call(r, ngx_http_mdm_api_is(rt->arg2,
                                                               "block")
                                           ? "block" : "unblock",
                                        &rt->arg, &none);
    }

    if (r->method == NGX_HTTP_GET) {
        return ngx_http_mdm_api_id_call(r, "enrollment", &rt->arg, &none);
    }

    if (r->method == NGX_HTTP_DELETE) {
        ngx_log_error(NGX_LOG_NOTICE, r->connection->log, 0,
                      "mdm: API: delete of enrollment \"%V\"", &rt->arg);

        return ngx_http_mdm_api_id_call(r, "delete", &rt->arg, &none);
    }

    return ngx_http_mdm_api_error(r, NGX_HTTP_NOT_ALLOWED,
                                  "enrollments/ID takes GET or DELETE");
}


/*
 * ?cursor=&count= (or limit=)&type=&enabled=&last_seen_after=: one SCAN
 * step of "count" keys, filtered
 */

static ngx_int_t
ngx_http_mdm_api_enrollment_list(ngx_http_request_t *r)
{
    ngx_str_t     v[10], limit;
    ngx_uint_t    i;
    ngx_array_t  *args;

    ngx_http_mdm_arg(r, "cursor", &v[0]);
    ngx_http_mdm_arg(r, "count", &v[1]);
    ngx_http_mdm_arg(r, "type", &v[2]);
    ngx_http_mdm_arg(r, "enabled", &v[3]);
    ngx_http_mdm_arg(r, "last_seen_after", &v[4]);
    ngx_http_mdm_arg(r, "cert_expires_before", &v[5]);

    /* cmds: the inventory's (ngx_http_mdm_inventory.c) */
    ngx_http_mdm_arg(r, "serial", &v[6]);
    ngx_http_mdm_arg(r, "model", &v[7]);
    ngx_http_mdm_arg(r, "os_version", &v[8]);
    ngx_http_mdm_arg(r, "last_seen_before", &v[9]);

    /* limit=, as every other listing spells it, wins over count= */
    if (ngx_http_mdm_arg(r, "limit", &limit) == NGX_OK) {
        v[1] = limit;
    }

    if (v[0].len == 0) {
        ngx_str_set(&v[0], "0");
    }

    if (v[1].len == 0) {
        ngx_str_set(&v[1], "100");
    }

    for (i = 0; i < v[0].len; i++) {
        if (v[0].data[i] < '0' || v[0].data[i] > '9' || i == 20) {
            v[0].len = 0;
            break;
        }
    }

    if (v[0].len == 0
        || ngx_atoi(v[1].data, v[1].len) <= 0
        || ngx_atoi(v[1].data, v[1].len) > NGX_HTTP_MDM_API_MAX_PAGE
        || (v[3].len && !(v[3].len == 1 && (v[3].data[0] == '0'
                                            || v[3].data[0] == '1')))
        || (v[4].len && ngx_atoi(v[4].data, v[4].len) == NGX_ERROR))
    {
        return ngx_http_mdm_api_error(r, NGX_HTTP_BAD_REQUEST,
                                      "cursor and last_seen_after are "
                                      "numbers, count 1 to 1000, enabled "
                                      "0 or 1");
    }

    /* renewal candidates (ngx_http_mdm_api_renew.c) */
    if (v[5].len && ngx_atoi(v[5].data, v[5].len) == NGX_ERROR) {
        return ngx_http_mdm_api_error(r, NGX_HTTP_BAD_REQUEST,
                                      "cert_expires_before is a time in "
                                      "seconds since 1970");
    }

    if (v[6].len > 64 || v[7].len > 64 || v[8].len > 64
        || (v[9].len && ngx_atoi(v[9].data, v[9].len) == NGX_ERROR))
    {
        return ngx_http_mdm_api_error(r, NGX_HTTP_BAD_REQUEST,
                                      "serial, model and os_version are at "
                                      "most 64 bytes, last_seen_before a "
                                      "time in ms");
    }

    args = ngx_http_mdm_api_args(r, "enrollments");
    if (args == NULL || ngx_array_push_n(args, 10) == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_memcpy((ngx_str_t *) args->elts + args->nelts - 10, v, sizeof(v));

    return ngx_http_mdm_api_call(r, args);
}


/*
 * GET /v1/queue/ID[?cursor=&limit=], DELETE /v1/queue/ID[?limit=],
 * DELETE /v1/queue/ID/UUID
 */

ngx_int_t
ngx_http_mdm_api_queue(ngx_http_request_t *r, ngx_http_mdm_api_route_t *rt)
{
    ngx_int_t     rc;
    ngx_str_t     limit;
    ngx_array_t  *args;

    if (!ngx_http_mdm_api_valid_id(&rt->arg)
        || (rt->arg2.len && !ngx_http_mdm_enrollment_valid_part(&rt->arg2)))
    {
        return ngx_http_mdm_api_error(r, NGX_HTTP_BAD_REQUEST,
                                      "invalid enrollment id or command "
                                      "UUID");
    }

    if (r->method == NGX_HTTP_GET && rt->arg2.len == 0) {
        args = ngx_http_mdm_api_args(r, "queue");
        if (args == NULL
            || ngx_http_mdm_push_arg(args, rt->arg.data, rt->arg.len)
               != NGX_OK)
        {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        rc = ngx_http_mdm_api_page(r, args, 0, NGX_HTTP_MDM_API_PAGE);
        if (rc != NGX_OK) {
            return ngx_http_mdm_api_bad_page(r, rc);
        }

        return ngx_http_mdm_api_call(r, args);
    }

    if (r->method != NGX_HTTP_DELETE) {
        return ngx_http_mdm_api_error(r, NGX_HTTP_NOT_ALLOWED,
                                      "queue/ID takes GET or DELETE, "
                                      "queue/ID/UUID takes DELETE");
    }

    /* a whole queue goes at most 1,000 commands per call */
    ngx_http_mdm_arg(r, "limit", &limit);
    rc = limit.len ? ngx_atoi(limit.data, limit.len)
                   : NGX_HTTP_MDM_API_MAX_PAGE;

    if (rc <= 0 || rc > NGX_HTTP_MDM_API_MAX_PAGE) {
        return ngx_http_mdm_api_error(r, NGX_HTTP_BAD_REQUEST,
                                      "limit is 1 to 1000");
    }

    args = ngx_http_mdm_api_args(r, "dequeue");
    if (args == NULL
        || ngx_http_mdm_push_arg(args, rt->arg.data, rt->arg.len) != NGX_OK
        || ngx_http_mdm_push_arg(args, rt->arg2.data, rt->arg2.len)
           != NGX_OK
        || ngx_http_mdm_api_push_ttl(r, args) != NGX_OK
        || ngx_http_mdm_api_push_num(r, args, rc) != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return ngx_http_mdm_api_call(r, args);
}


/* GET /v1/commands/UUID[?cursor=&limit=]: the command, a page of targets */

ngx_int_t
ngx_http_mdm_api_commands(ngx_http_request_t *r,
    ngx_http_mdm_api_route_t *rt)
{
    ngx_int_t     rc;
    ngx_array_t  *args;

    if (r->method != NGX_HTTP_GET) {
        return ngx_http_mdm_api_error(r, NGX_HTTP_NOT_ALLOWED,
                                      "commands/UUID takes GET");
    }

    if (!ngx_http_mdm_enrollment_valid_part(&rt->arg)) {
        return ngx_http_mdm_api_error(r, NGX_HTTP_BAD_REQUEST,
                                      "invalid command UUID");
    }

    args = ngx_http_mdm_api_args(r, "command");
    if (args == NULL
        || ngx_http_mdm_push_arg(args, rt->arg.data, rt->arg.len) != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    rc = ngx_http_mdm_api_page(r, args, 0, NGX_HTTP_MDM_API_PAGE);
    if (rc != NGX_OK) {
        return ngx_http_mdm_api_bad_page(r, rc);
    }

    return ngx_http_mdm_api_call(r, args);
}


/*
 * GET /v1/webhooks[?cursor=&limit=]: delivery state and a page of dead
 * letters, newest first; POST /v1/webhooks/replay[?count=N]
 */

ngx_int_t
ngx_http_mdm_api_webhooks(ngx_http_request_t *r,
    ngx_http_mdm_api_route_t *rt)
{
    ngx_int_t                 rc;
    ngx_str_t                 v;
    ngx_array_t              *args;
    ngx_http_mdm_loc_conf_t  *mlcf;

    if (rt->arg.len) {
        if (r->method != NGX_HTTP_POST) {
            return ngx_http_mdm_api_error(r, NGX_HTTP_NOT_ALLOWED,
                                          "webhooks/replay takes POST");
        }

        ngx_http_mdm_arg(r, "count", &v);
        rc = v.len ? ngx_atoi(v.data, v.len) : NGX_HTTP_MDM_API_REPLAY;

        if (rc <= 0 || rc > NGX_HTTP_MDM_API_MAX_PAGE) {
            return ngx_http_mdm_api_error(r, NGX_HTTP_BAD_REQUEST,
                                          "count is 1 to 1000");
        }

        /* ARGV 4: the events' MAXLEN, mdm_events_max as for the devices */
        mlcf = ngx_http_get_module_loc_conf(r, ngx_http_mdm_module);
        args = ngx_http_mdm_api_args(r, "replay");
        if (args == NULL
            || ngx_http_mdm_api_push_num(r, args, rc) != NGX_OK
            || ngx_http_mdm_api_push_num(r, args, mlcf->events_max) != NGX_OK)
        {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        return ngx_http_mdm_api_call(r, args);
    }

    if (r->method != NGX_HTTP_GET) {
        return ngx_http_mdm_api_error(r, NGX_HTTP_NOT_ALLOWED,
                                      "webhooks takes GET");
    }

    args = ngx_http_mdm_api_args(r, "webhooks");
    if (args == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    rc = ngx_http_mdm_api_page(r, args, 1, 50);

    if (rc != NGX_OK) {
        return ngx_http_mdm_api_bad_page(r, rc);
    }

    return ngx_http_mdm_api_call(r, args);
}


/* one operation on one enrollment id (and a command UUID) */

static ngx_int_t
ngx_http_mdm_api_id_call(ngx_http_request_t *r, const char *op,
    ngx_str_t *id, ngx_str_t *uuid)
{
    ngx_array_t  *args;

    args = ngx_http_mdm_api_args(r, op);
    if (args == NULL
        || ngx_http_mdm_push_arg(args, id->data, id->len) != NGX_OK
        || ngx_http_mdm_push_arg(args, uuid->data, uuid->len) != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return ngx_http_mdm_api_call(r, args);
}


/* mdm_result_ttl, in seconds, for the result keys a call creates */

static ngx_int_t
ngx_http_mdm_api_push_ttl(ngx_http_request_t *r, ngx_array_t *args)
{
    ngx_http_mdm_loc_conf_t  *mlcf;

    mlcf = ngx_http_get_module_loc_conf(r, ngx_http_mdm_module);

    return ngx_http_mdm_api_push_num(r, args, mlcf->result_ttl);
}


static ngx_int_t
ngx_http_mdm_api_bad_page(ngx_http_request_t *r, ngx_int_t rc)
{
    if (rc == NGX_ERROR) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return ngx_http_mdm_api_error(r, NGX_HTTP_BAD_REQUEST,
                                  "cursor is one a previous page answered, "
                                  "limit 1 to 1000");
}
