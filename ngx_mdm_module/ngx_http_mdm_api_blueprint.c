
/*
 * Copyright (C) ngx_mdm contributors
 *
 * Enrollment blueprints (issue 12, contract B1): PUT /v1/blueprints/NAME
 * with {"commands": [...], "device_configured": bool, "applies_to": {...}},
 * GET /v1/blueprints[/NAME], DELETE /v1/blueprints/NAME.  Every command is
 * checked and built into its plist here, at PUT time, so that the run in
 * lua/checkin.lua (the device's first TokenUpdate) only copies plists.
 */


#include "ngx_http_mdm_api_private.h"
#include "ngx_http_mdm_template.h"
#include "ngx_http_mdm_plist.h"
#include "ngx_http_mdm_request.h"
#include "ngx_http_mdm_scripts.h"


#define NGX_HTTP_MDM_BP_MAX_COMMANDS  100
#define NGX_HTTP_MDM_BP_MAX_SERIALS   10000


static const char *ngx_http_mdm_bp_check(ngx_http_request_t *r, json_t *in,
    ngx_array_t *args);
static const char *ngx_http_mdm_bp_applies(ngx_http_request_t *r,
    json_t *a, ngx_array_t *args, ngx_array_t *values);
static const char *ngx_http_mdm_bp_commands(ngx_http_request_t *r,
    json_t *cmds, ngx_array_t *args);
static const char *ngx_http_mdm_bp_command(ngx_http_request_t *r,
    json_t *c, ngx_uint_t i, ngx_array_t *args);
static const char *ngx_http_mdm_bp_raw(ngx_http_request_t *r, json_t *c,
    ngx_uint_t i, ngx_array_t *args);
static const char *ngx_http_mdm_bp_push_plist(ngx_http_request_t *r,
    plist_t root, const char *rtype, ngx_array_t *args);
static ngx_uint_t ngx_http_mdm_bp_valid(const char *s, size_t len,
    size_t max);
static const char *ngx_http_mdm_bp_fail(ngx_http_request_t *r,
    ngx_uint_t i, const char *err);


/* names as D1's: [A-Za-z0-9._-]{1,64} */

static ngx_uint_t
ngx_http_mdm_bp_valid(const char *s, size_t len, size_t max)
{
    size_t  i;

    if (len == 0 || len > max) {
        return 0;
    }

    for (i = 0; i < len; i++) {
        if (!(isalnum((u_char) s[i]) || s[i] == '.' || s[i] == '_'
              || s[i] == '-'))
        {
            return 0;
        }
    }

    return 1;
}


/* GET /v1/blueprints, GET and DELETE /v1/blueprints/NAME */

ngx_int_t
ngx_http_mdm_api_blueprints(ngx_http_request_t *r,
    ngx_http_mdm_api_route_t *rt)
{
    const char   *op;
    ngx_array_t  *args;

    if (r->method == NGX_HTTP_GET && rt->arg.len == 0) {
        op = "blueprint_list";

    } else if (r->method == NGX_HTTP_GET) {
        op = "blueprint_get";

    } else if (r->method == NGX_HTTP_DELETE && rt->arg.len) {
        op = "blueprint_delete";

    } else {
        return ngx_http_mdm_api_error(r, NGX_HTTP_NOT_ALLOWED,
                                      "blueprints takes GET, and PUT or "
                                      "DELETE with a name");
    }

    if (rt->arg.len
        && !ngx_http_mdm_bp_valid((char *) rt->arg.data, rt->arg.len, 64))
    {
        return ngx_http_mdm_api_error(r, NGX_HTTP_BAD_REQUEST,
                                      "a blueprint name is 1 to 64 of "
                                      "[A-Za-z0-9._-]");
    }

    args = ngx_http_mdm_api_args(r, op);
    if (args == NULL
        || (rt->arg.len
            && ngx_http_mdm_push_arg(args, rt->arg.data, rt->arg.len)
               != NGX_OK))
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return ngx_http_mdm_api_call(r, args);
}


/*
 * PUT /v1/blueprints/NAME.  ARGV of "blueprint_put": name, the JSON as
 * given (compact), applies kind (all, dep, serials), device_configured
 * (0|1), DeviceConfigured's plist, the number of commands, then request
 * type and plist of each, then the profile UUID or the serials.
 */

ngx_int_t
ngx_http_mdm_api_blueprint_put(ngx_http_request_t *r)
{
    char                      *s;
    json_t                    *in;
    ngx_str_t                  body;
    const char                *err;
    ngx_array_t               *args;
    json_error_t               jerr;
    ngx_http_mdm_api_route_t   rt;

    if (ngx_http_mdm_api_route(r, &rt) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (r->method != NGX_HTTP_PUT || rt.arg.len == 0) {
        return ngx_http_mdm_api_error(r, NGX_HTTP_NOT_ALLOWED,
                                      "a blueprint is written with PUT "
                                      "/v1/blueprints/NAME");
    }

    if (!ngx_http_mdm_bp_valid((char *) rt.arg.data, rt.arg.len, 64)) {
        return ngx_http_mdm_api_error(r, NGX_HTTP_BAD_REQUEST,
                                      "a blueprint name is 1 to 64 of "
                                      "[A-Za-z0-9._-]");
    }

    if (ngx_http_mdm_request_body(r, &body) != NGX_OK) {
        return ngx_http_mdm_api_error(r, NGX_HTTP_BAD_REQUEST,
                                      "no JSON blueprint in the body");
    }

    in = json_loadb((const char *) body.data, body.len,
                    JSON_REJECT_DUPLICATES, &jerr);
    if (in == NULL) {
        return ngx_http_mdm_api_error(r, NGX_HTTP_BAD_REQUEST,
                                      "the body is not JSON");
    }

    args = ngx_http_mdm_api_args(r, "blueprint_put");
    s = json_dumps(in, JSON_COMPACT);

    if (args == NULL || s == NULL
        || ngx_http_mdm_push_arg(args, rt.arg.data, rt.arg.len) != NGX_OK
        || ngx_http_mdm_push_arg(args, (u_char *) s, ngx_strlen(s)) != NGX_OK)
    {
        free(s);
        json_decref(in);
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    /* push_arg only points at it: the copy goes to the pool */
    body.len = ngx_strlen(s);
    body.data = ngx_pnalloc(r->pool, body.len);
    if (body.data == NULL) {
        free(s);
        json_decref(in);
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_memcpy(body.data, s, body.len);
    free(s);
    ((ngx_str_t *) args->elts)[args->nelts - 1] = body;

    err = ngx_http_mdm_bp_check(r, in, args);
    json_decref(in);

    if (err) {
        return (err[0] == '!')
               ? NGX_HTTP_INTERNAL_SERVER_ERROR
               : ngx_http_mdm_api_error(r, NGX_HTTP_BAD_REQUEST, err);
    }

    return ngx_http_mdm_api_call(r, args);
}


static const char *
ngx_http_mdm_bp_check(ngx_http_request_t *r, json_t *in, ngx_array_t *args)
{
    json_t                   *v, *dc, *cmds;
    plist_t                   root;
    ngx_str_t                *a;
    ngx_uint_t                i;
    const char               *key, *err;
    ngx_array_t              *values;
    ngx_http_mdm_template_t  *tpl;

    if (!json_is_object(in)) {
        return "a blueprint is a JSON object";
    }

    json_object_foreach(in, key, v) {
        if (ngx_strcmp(key, "commands") != 0
            && ngx_strcmp(key, "device_configured") != 0
            && ngx_strcmp(key, "applies_to") != 0)
        {
            return "a blueprint has commands, device_configured and "
                   "applies_to only";
        }
    }

    cmds = json_object_get(in, "commands");
    dc = json_object_get(in, "device_configured");

    if (!json_is_array(cmds)
        || json_array_size(cmds) > NGX_HTTP_MDM_BP_MAX_COMMANDS)
    {
        return "commands is an array of at most 100 commands";
    }

    if (dc && !json_is_boolean(dc)) {
        return "device_configured is true or false";
    }

    values = ngx_array_create(r->pool, 4, sizeof(ngx_str_t));
    if (values == NULL) {
        return "!out of memory";
    }

    err = ngx_http_mdm_bp_applies(r, json_object_get(in, "applies_to"),
                                  args, values);
    if (err) {
        return err;
    }

    if (ngx_http_mdm_push_arg(args, (u_char *) (json_is_true(dc) ? "1" : "0"),
                              1) != NGX_OK)
    {
        return "!out of memory";
    }

    /* DeviceConfigured, built as any template */
    v = json_pack("{s:s}", "request_type", "DeviceConfigured");
    root = v ? ngx_http_mdm_template_build(r->pool, v, &tpl, &err) : NULL;
    json_decref(v);

    if (root == NULL
        || ngx_http_mdm_bp_push_plist(r, root, NULL, args) != NULL
        || ngx_http_mdm_api_push_num(r, args, json_array_size(cmds)) != NGX_OK)
    {
        return "!DeviceConfigured";
    }

    err = ngx_http_mdm_bp_commands(r, cmds, args);
    if (err) {
        return err;
    }

    a = values->elts;
    for (i = 0; i < values->nelts; i++) {
        if (ngx_http_mdm_push_arg(args, a[i].data, a[i].len) != NGX_OK) {
            return "!out of memory";
        }
    }

    return NULL;
}


/* {"all": true} | {"dep_profile_uuid": "..."} | {"serials": [...]} */

static const char *
ngx_http_mdm_bp_applies(ngx_http_request_t *r, json_t *a, ngx_array_t *args,
    ngx_array_t *values)
{
    size_t       i;
    json_t      *v, *e;
    ngx_str_t   *s;
    const char  *kind;

    static const char  bad[] = "applies_to is {\"all\": true}, "
                               "{\"dep_profile_uuid\": \"UUID\"} or "
                               "{\"serials\": [\"SERIAL\", ...]}";

    if (!json_is_object(a) || json_object_size(a) != 1) {
        return bad;
    }

    if ((v = json_object_get(a, "all")) != NULL) {
        if (!json_is_true(v)) {
            return bad;
        }

        kind = "all";

    } else if ((v = json_object_get(a, "dep_profile_uuid")) != NULL) {
        if (!json_is_string(v)
            || !ngx_http_mdm_bp_valid(json_string_value(v),
                                      json_string_length(v), 128))
        {
            return "dep_profile_uuid is a profile UUID, 1 to 128 of "
                   "[A-Za-z0-9._-]";
        }

        kind = "dep";
        s = ngx_array_push(values);
        if (s == NULL) {
            return "!out of memory";
        }

        s->len = json_string_length(v);
        s->data = ngx_pstrdup(r->pool, &(ngx_str_t) { s->len,
                                        (u_char *) json_string_value(v) });
        if (s->data == NULL) {
            return "!out of memory";
        }

    } else if ((v = json_object_get(a, "serials")) != NULL) {
        if (!json_is_array(v) || json_array_size(v) == 0
            || json_array_size(v) > NGX_HTTP_MDM_BP_MAX_SERIALS)
        {
            return "serials is an array of 1 to 10000 serial numbers";
        }

        kind = "serials";

        json_array_foreach(v, i, e) {
            if (!json_is_string(e)
                || !ngx_http_mdm_bp_valid(json_string_value(e),
                                          json_string_length(e), 64))
            {
                return "a serial number is 1 to 64 of [A-Za-z0-9._-]";
            }

            s = ngx_array_push(values);
            if (s == NULL) {
                return "!out of memory";
            }

            s->len = json_string_length(e);
            s->data = ngx_pstrdup(r->pool, &(ngx_str_t) { s->len,
                                            (u_char *) json_string_value(e) });
            if (s->data == NULL) {
                return "!out of memory";
            }
        }

    } else {
        return bad;
    }

    if (ngx_http_mdm_push_arg(args, (u_char *) kind, ngx_strlen(kind))
        != NGX_OK)
    {
        return "!out of memory";
    }

    return NULL;
}


static const char *
ngx_http_mdm_bp_commands(ngx_http_request_t *r, json_t *cmds,
    ngx_array_t *args)
{
    size_t       i;
    json_t      *c;
    const char  *err;

    json_array_foreach(cmds, i, c) {
        if (!json_is_object(c)) {
            return ngx_http_mdm_bp_fail(r, i, "is not a JSON object");
        }

        err = json_object_get(c, "plist")
              ? ngx_http_mdm_bp_raw(r, c, i, args)
              : ngx_http_mdm_bp_command(r, c, i, args);

        if (err) {
            return err;
        }
    }

    return NULL;
}


/* a template: as POST /v1/commands takes it, but UUIDs are made per run */

static const char *
ngx_http_mdm_bp_command(ngx_http_request_t *r, json_t *c, ngx_uint_t i,
    ngx_array_t *args)
{
    plist_t                   root;
    const char               *err;
    ngx_http_mdm_template_t  *tpl;

    if (json_object_get(c, "command_uuid")) {
        return ngx_http_mdm_bp_fail(r, i, "has a command_uuid: a blueprint "
                                    "makes one for each run");
    }

    root = ngx_http_mdm_template_build(r->pool, c, &tpl, &err);
    if (root == NULL) {
        return (err[0] == '!') ? err : ngx_http_mdm_bp_fail(r, i, err);
    }

    if ((tpl->flags & NGX_HTTP_MDM_TPL_UNLOCK)
        && plist_dict_get_item(plist_dict_get_item(root, "Command"),
                               "UnlockToken") == NULL)
    {
        return ngx_http_mdm_bp_fail(r, i, "is a ClearPasscode without "
                                    "unlock_token");
    }

    return ngx_http_mdm_bp_push_plist(r, root, tpl->request_type, args);
}


/* {"plist": "<base64 of a command plist>"}: its CommandUUID is dropped */

static const char *
ngx_http_mdm_bp_raw(ngx_http_request_t *r, json_t *c, ngx_uint_t i,
    ngx_array_t *args)
{
    char        *rtype;
    json_t      *v;
    plist_t      root, cmd, rt;
    ngx_str_t    b64, xml;
    const char  *why;

    v = json_object_get(c, "plist");

    if (json_object_size(c) != 1 || !json_is_string(v)) {
        return ngx_http_mdm_bp_fail(r, i, "is {\"plist\": \"<base64>\"} "
                                    "and nothing else");
    }

    b64.data = (u_char *) json_string_value(v);
    b64.len = json_string_length(v);
    xml.data = ngx_pnalloc(r->pool, ngx_base64_decoded_length(b64.len) + 1);

    if (xml.data == NULL) {
        return "!out of memory";
    }

    if (ngx_decode_base64(&xml, &b64) != NGX_OK) {
        return ngx_http_mdm_bp_fail(r, i, "plist is not base64");
    }

    root = ngx_http_mdm_plist_parse_body(r, &xml, &why);
    cmd = root ? plist_dict_get_item(root, "Command") : NULL;
    rt = cmd ? plist_dict_get_item(cmd, "RequestType") : NULL;

    if (rt == NULL || plist_get_node_type(rt) != PLIST_STRING) {
        return ngx_http_mdm_bp_fail(r, i, "plist is not a command plist "
                                    "(Command with a RequestType string)");
    }

    plist_dict_remove_item(root, "CommandUUID");

    rtype = NULL;
    plist_get_string_val(rt, &rtype);
    why = ngx_http_mdm_bp_push_plist(r, root, rtype, args);
    free(rtype);

    return why;
}


/* the request type (when given) and the XML of root, as arguments */

static const char *
ngx_http_mdm_bp_push_plist(ngx_http_request_t *r, plist_t root,
    const char *rtype, ngx_array_t *args)
{
    ngx_str_t  xml, t;

    if (rtype) {
        t.len = ngx_strlen(rtype);
        t.data = ngx_pnalloc(r->pool, t.len + 1);
        if (t.data == NULL) {
            return "!out of memory";
        }

        ngx_memcpy(t.data, rtype, t.len);

        if (ngx_http_mdm_push_arg(args, t.data, t.len) != NGX_OK) {
            return "!out of memory";
        }
    }

    if (ngx_http_mdm_plist_xml(r->pool, root, &xml) != NGX_OK
        || ngx_http_mdm_push_arg(args, xml.data, xml.len) != NGX_OK)
    {
        return "!out of memory";
    }

    return NULL;
}


/* "commands[I] ERR" */

static const char *
ngx_http_mdm_bp_fail(ngx_http_request_t *r, ngx_uint_t i, const char *err)
{
    u_char  *p, *last;

    p = ngx_pnalloc(r->pool, 600);
    if (p == NULL) {
        return "!out of memory";
    }

    last = ngx_snprintf(p, 599, "commands[%ui] %s", i, err);
    *last = '\0';

    return (const char *) p;
}
