
/*
 * Copyright (C) ngx_mdm contributors
 *
 * POST /v1/commands/ID[,ID...] with {"request_type": ..., <keys>}: the
 * command a template builds, queued exactly as PUT /v1/enqueue queues a
 * plist (same options, same answer); GET /v1/templates[/TYPE] describes
 * the templates (contract T1).
 */


#include "ngx_http_mdm_api_private.h"
#include "ngx_http_mdm_template.h"
#include "ngx_http_mdm_plist.h"
#include "ngx_http_mdm_request.h"
#include "ngx_http_mdm_response.h"
#include "ngx_http_mdm_enrollment.h"
#include "ngx_http_mdm_scripts.h"


typedef struct {
    plist_t      root;
    ngx_str_t    ids;
} ngx_http_mdm_api_cmd_ctx_t;


static ngx_int_t ngx_http_mdm_api_command_uuid(ngx_http_request_t *r,
    json_t *in, plist_t root);
static ngx_int_t ngx_http_mdm_api_unlock(ngx_http_request_t *r,
    ngx_str_t *ids, plist_t root);
static void ngx_http_mdm_api_unlock_done(ngx_http_request_t *r,
    redisReply *reply, const char *err);
static ngx_int_t ngx_http_mdm_api_command_queue(ngx_http_request_t *r,
    ngx_str_t *ids, plist_t root);
static ngx_int_t ngx_http_mdm_api_send_json(ngx_http_request_t *r,
    json_t *j);


/* GET /v1/templates: every template; /v1/templates/TYPE: that one */

ngx_int_t
ngx_http_mdm_api_templates(ngx_http_request_t *r,
    ngx_http_mdm_api_route_t *rt)
{
    size_t       i;
    json_t      *all, *t;
    const char  *s;

    if (!(r->method & (NGX_HTTP_GET|NGX_HTTP_HEAD))) {
        return ngx_http_mdm_api_error(r, NGX_HTTP_NOT_ALLOWED,
                                      "templates takes GET");
    }

    all = ngx_http_mdm_template_describe();
    if (all == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (rt->arg.len == 0) {
        return ngx_http_mdm_api_send_json(r, all);
    }

    json_array_foreach(json_object_get(all, "templates"), i, t) {
        s = json_string_value(json_object_get(t, "request_type"));

        if (ngx_strlen(s) == rt->arg.len
            && ngx_strncmp(s, rt->arg.data, rt->arg.len) == 0)
        {
            json_incref(t);
            json_decref(all);
            return ngx_http_mdm_api_send_json(r, t);
        }
    }

    json_decref(all);

    return ngx_http_mdm_api_error(r, NGX_HTTP_NOT_FOUND,
                                  "no template for this request type");
}


/* the body handler of POST /v1/commands/IDS */

ngx_int_t
ngx_http_mdm_api_command_post(ngx_http_request_t *r)
{
    json_t                    *in;
    plist_t                    root, cmd;
    ngx_str_t                  body;
    const char                *err;
    json_error_t               jerr;
    ngx_http_mdm_template_t   *tpl;
    ngx_http_mdm_api_route_t   rt;

    if (ngx_http_mdm_api_route(r, &rt) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (ngx_http_mdm_request_body(r, &body) != NGX_OK) {
        return ngx_http_mdm_api_error(r, NGX_HTTP_BAD_REQUEST,
                                      "no JSON command in the body");
    }

    in = json_loadb((const char *) body.data, body.len,
                    JSON_REJECT_DUPLICATES, &jerr);
    if (in == NULL) {
        return ngx_http_mdm_api_error(r, NGX_HTTP_BAD_REQUEST,
                                      "the body is not JSON");
    }

    tpl = NULL;
    root = ngx_http_mdm_template_build(r->pool, in, &tpl, &err);

    if (root && ngx_http_mdm_api_command_uuid(r, in, root) != NGX_OK) {
        root = NULL;
        err = "command_uuid is a string of [A-Za-z0-9._@+-], up to 128";
    }

    json_decref(in);

    if (root == NULL) {
        return (err[0] == '!')
               ? NGX_HTTP_INTERNAL_SERVER_ERROR
               : ngx_http_mdm_api_error(r, NGX_HTTP_BAD_REQUEST, err);
    }

    cmd = plist_dict_get_item(root, "Command");

    if ((tpl->flags & NGX_HTTP_MDM_TPL_UNLOCK)
        && plist_dict_get_item(cmd, "UnlockToken") == NULL)
    {
        return ngx_http_mdm_api_unlock(r, &rt.arg, root);
    }

    return ngx_http_mdm_api_command_queue(r, &rt.arg, root);
}


/* "command_uuid": the CommandUUID, checked as enqueue checks it */

static ngx_int_t
ngx_http_mdm_api_command_uuid(ngx_http_request_t *r, json_t *in,
    plist_t root)
{
    json_t     *v;
    ngx_str_t   s;

    v = json_object_get(in, "command_uuid");
    if (v == NULL) {
        return NGX_OK;
    }

    if (!json_is_string(v)) {
        return NGX_ERROR;
    }

    s.data = (u_char *) json_string_value(v);
    s.len = json_string_length(v);

    if (!ngx_http_mdm_enrollment_valid_part(&s)) {
        return NGX_ERROR;
    }

    plist_dict_set_item(root, "CommandUUID", plist_new_string((char *) s.data));

    return NGX_OK;
}


/*
 * ClearPasscode without unlock_token: the one the device sent in its
 * TokenUpdate, so for one device only (each device has its own)
 */

static ngx_int_t
ngx_http_mdm_api_unlock(ngx_http_request_t *r, ngx_str_t *ids, plist_t root)
{
    ngx_array_t                 *args;
    ngx_http_mdm_api_cmd_ctx_t  *ctx;

    if (ngx_strlchr(ids->data, ids->data + ids->len, ',') != NULL
        || ngx_strlchr(ids->data, ids->data + ids->len, ':') != NULL
        || !ngx_http_mdm_api_valid_id(ids))
    {
        return ngx_http_mdm_api_error(r, NGX_HTTP_BAD_REQUEST,
                                      "ClearPasscode without unlock_token "
                                      "takes one device id: each device has "
                                      "its own UnlockToken");
    }

    ctx = ngx_pcalloc(r->pool, sizeof(ngx_http_mdm_api_cmd_ctx_t));
    args = ngx_http_mdm_api_args(r, "unlock_token");
    if (ctx == NULL || args == NULL
        || ngx_http_mdm_push_arg(args, ids->data, ids->len) != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ctx->root = root;
    ctx->ids = *ids;
    ngx_http_set_ctx(r, ctx, ngx_http_mdm_module);

    return ngx_http_mdm_api_eval(r, NGX_HTTP_MDM_SCRIPT_API, 0, args,
                                 ngx_http_mdm_api_unlock_done);
}


/* {200, base64 token} or {status, JSON error}: then the enqueue */

static void
ngx_http_mdm_api_unlock_done(ngx_http_request_t *r, redisReply *reply,
    const char *err)
{
    ngx_int_t                    rc;
    ngx_str_t                    b64, tok;
    redisReply                  *st, *val;
    ngx_http_mdm_api_cmd_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_mdm_module);

    if (reply == NULL) {
        rc = ngx_http_mdm_api_unavailable(r, err);
        goto done;
    }

    if (reply->type != REDIS_REPLY_ARRAY || reply->elements != 2
        || reply->element[0]->type != REDIS_REPLY_INTEGER
        || reply->element[1]->type != REDIS_REPLY_STRING)
    {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "mdm: API script failed: %*s",
                      (size_t) (reply->type == REDIS_REPLY_ERROR
                                ? reply->len : 0), reply->str);
        rc = ngx_http_mdm_api_error(r, NGX_HTTP_INTERNAL_SERVER_ERROR,
                                    "redis script failed");
        goto done;
    }

    st = reply->element[0];
    val = reply->element[1];

    if (st->integer != NGX_HTTP_OK) {
        /* the script's reason, e.g. "unknown enrollment" */
        rc = ngx_http_mdm_api_error(r, (ngx_uint_t) st->integer,
                                    st->integer == NGX_HTTP_NOT_FOUND
                                    ? "unknown enrollment"
                                    : "the device sent no UnlockToken: "
                                      "give unlock_token");
        goto done;
    }

    b64.data = (u_char *) val->str;
    b64.len = val->len;
    tok.data = ngx_pnalloc(r->pool, ngx_base64_decoded_length(b64.len));

    if (tok.data == NULL || ngx_decode_base64(&tok, &b64) != NGX_OK) {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "mdm: enrollment \"%V\" has an unlock_token that is "
                      "not base64", &ctx->ids);
        rc = NGX_HTTP_INTERNAL_SERVER_ERROR;
        goto done;
    }

    plist_dict_set_item(plist_dict_get_item(ctx->root, "Command"),
                        "UnlockToken",
                        plist_new_data((const char *) tok.data, tok.len));

    rc = ngx_http_mdm_api_command_queue(r, &ctx->ids, ctx->root);

done:

    /* NGX_DONE: the enqueue holds the request until its reply */
    if (rc != NGX_DONE) {
        ngx_http_finalize_request(r, rc);
    }
}


static ngx_int_t
ngx_http_mdm_api_command_queue(ngx_http_request_t *r, ngx_str_t *ids,
    plist_t root)
{
    ngx_str_t  xml;

    if (ngx_http_mdm_plist_xml(r->pool, root, &xml) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return ngx_http_mdm_api_enqueue_plist(r, ids, root, &xml);
}


static ngx_int_t
ngx_http_mdm_api_send_json(ngx_http_request_t *r, json_t *j)
{
    char       *s;
    ngx_str_t   body;

    s = json_dumps(j, JSON_COMPACT);
    json_decref(j);

    if (s == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    body.len = ngx_strlen(s);
    body.data = ngx_pnalloc(r->pool, body.len);
    if (body.data == NULL) {
        free(s);
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_memcpy(body.data, s, body.len);
    free(s);

    return ngx_http_mdm_send(r, NGX_HTTP_OK, "application/json", &body);
}
