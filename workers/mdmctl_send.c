/*
 * Copyright (C) ngx_mdm contributors
 *
 * mdmctl: send and templates.  A template's keys and their types come from
 * the server (GET /v1/templates, contract T1), so mdmctl knows what the
 * server knows; --phone-number VALUE is the key phone_number, converted to
 * the key's JSON type, and anything the template does not have is refused
 * here, before anything is sent.  Raw plists go to PUT /v1/enqueue.
 */

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "mdmctl.h"


/* the enqueue options as a query: ?priority=1&expires=N&nopush=1 */
static int
mc_send_query(const mc_cmd_t *cmd, mc_args_t *a, char *q, size_t qlen)
{
    long         v;
    size_t       n;
    const char  *s;

    n = 0;
    q[0] = '\0';
    if (mc_opt(cmd, a, "priority")) {
        n += snprintf(q + n, qlen - n, "%spriority=1", n ? "&" : "?");
    }
    if ((s = mc_opt(cmd, a, "expires"))) {
        if (mc_parse_long(s, 1, 100L * 365 * 86400, &v) != 0) {
            return mc_usage_error(cmd, "--expires is a number of seconds");
        }
        n += snprintf(q + n, qlen - n, "%sexpires=%ld", n ? "&" : "?", v);
    }
    if (mc_opt(cmd, a, "nopush")) {
        n += snprintf(q + n, qlen - n, "%snopush=1", n ? "&" : "?");
    }
    if ((s = mc_opt(cmd, a, "max-deliveries"))) {
        if (mc_parse_long(s, 1, 1000000, &v) != 0) {
            return mc_usage_error(cmd, "--max-deliveries is a positive "
                                  "number");
        }
        snprintf(q + n, qlen - n, "%smax_deliveries=%ld", n ? "&" : "?", v);
    }
    return MC_OK;
}


static int
mc_send_answer(const mc_conf_t *conf, json_t *j, int rc)
{
    if (j == NULL) {
        return rc;
    }
    if (conf->json) {
        mc_print_json(j);
    } else {
        mc_print_status(j, "RESULT");
    }
    json_decref(j);
    return rc;
}


static int
mc_send_plist(const mc_cmd_t *cmd, mc_args_t *a, const char *file)
{
    int      rc;
    char    *body, *ids, *path, q[256];
    size_t   len, plen;
    json_t  *j;

    if (a->nfree) {
        return mc_usage_error(cmd, "--%s: template keys need a TEMPLATE, "
                              "not --plist", a->free_name[0]);
    }
    if (mc_opt(cmd, a, "uuid")) {
        return mc_usage_error(cmd, "--uuid goes with a TEMPLATE: a plist "
                              "has its own CommandUUID");
    }
    if ((rc = mc_want_pos(cmd, a, 1, -1)) != MC_OK
        || (rc = mc_send_query(cmd, a, q, sizeof(q))) != MC_OK)
    {
        return rc;
    }
    body = mc_read_file(file, &len);
    if (body == NULL) {
        mc_err("cannot read %s: %s", file, strerror(errno));
        return MC_USAGE;
    }
    if (strstr(body, "<plist") == NULL) {
        free(body);
        return mc_usage_error(cmd, "%s is not an XML plist", file);
    }

    ids = mc_join_ids(a->pos, a->npos);
    plen = strlen(ids) + strlen(q) + 16;
    path = malloc(plen);
    if (path == NULL) {
        exit(MC_SERVER);
    }
    snprintf(path, plen, "/v1/enqueue/%s%s", ids, q);
    free(ids);

    j = mc_api(a->conf, "PUT", path, body, len, &rc);
    free(path);
    free(body);
    return mc_send_answer(a->conf, j, rc);
}


static json_t *
mc_templates_get(const mc_conf_t *conf, int *rc)
{
    json_t  *j;

    j = mc_api(conf, "GET", "/v1/templates", NULL, 0, rc);
    if (j && !json_is_array(json_object_get(j, "templates"))) {
        mc_err("GET /v1/templates: no \"templates\" in the answer");
        json_decref(j);
        *rc = MC_SERVER;
        return NULL;
    }
    return j;
}


static json_t *
mc_template_find(json_t *all, const char *name)
{
    size_t       i;
    json_t      *t, *found;
    const char  *rt;

    found = NULL;
    json_array_foreach(json_object_get(all, "templates"), i, t) {
        rt = json_string_value(json_object_get(t, "request_type"));
        if (rt && strcmp(rt, name) == 0) {
            return t;
        }
        if (rt && strcasecmp(rt, name) == 0) {
            found = t;
        }
    }
    return found;
}


static json_t *
mc_template_key(json_t *tpl, const char *name)
{
    size_t       i;
    json_t      *k;
    const char  *n;

    json_array_foreach(json_object_get(tpl, "keys"), i, k) {
        n = json_string_value(json_object_get(k, "name"));
        if (n && strcmp(n, name) == 0) {
            return k;
        }
    }
    return NULL;
}


/* a value given on the command line (or read from a file) as the JSON
 * value of a key of this type; NULL after saying why */
static json_t *
mc_convert(const char *opt, const char *type, const char *items,
    const char *v, size_t vlen, int from_file)
{
    char          *end, *b64, *copy, *p, *tok;
    double         d;
    size_t         i;
    json_t        *j, *e;
    long long      n;
    json_error_t   err;

    if (strcmp(type, "boolean") == 0) {
        if (v == NULL || strcasecmp(v, "true") == 0 || strcasecmp(v, "yes")
            == 0 || strcmp(v, "1") == 0)
        {
            return json_true();
        }
        if (strcasecmp(v, "false") == 0 || strcasecmp(v, "no") == 0
            || strcmp(v, "0") == 0)
        {
            return json_false();
        }
        mc_err("--%s is a boolean: true or false, not \"%s\"", opt, v);
        return NULL;
    }

    if (v == NULL) {
        mc_err("--%s needs a value (%s)", opt, type);
        return NULL;
    }

    if (strcmp(type, "integer") == 0) {
        errno = 0;
        n = strtoll(v, &end, 10);
        if (errno || *v == '\0' || *end != '\0') {
            mc_err("--%s is an integer, not \"%s\"", opt, v);
            return NULL;
        }
        return json_integer(n);
    }

    if (strcmp(type, "real") == 0) {
        errno = 0;
        d = strtod(v, &end);
        if (errno || *v == '\0' || *end != '\0' || !isfinite(d)) {
            mc_err("--%s is a number, not \"%s\"", opt, v);
            return NULL;
        }
        return json_real(d);
    }

    if (strcmp(type, "data") == 0) {
        if (from_file) {
            b64 = mc_b64((const unsigned char *) v, vlen);
            j = json_string(b64);
            free(b64);
            return j;
        }
        for (i = 0; v[i]; i++) {
            if (!isalnum((unsigned char) v[i]) && v[i] != '+' && v[i] != '/'
                && v[i] != '=')
            {
                mc_err("--%s is data: base64, or --%s-file FILE for a "
                       "file's bytes", opt, opt);
                return NULL;
            }
        }
        return json_string(v);
    }

    if (strcmp(type, "array") == 0 || strcmp(type, "dict") == 0) {
        while (isspace((unsigned char) *v)) {
            v++;
        }
        if (*v == '[' || *v == '{' || from_file) {
            j = json_loads(v, JSON_REJECT_DUPLICATES, &err);
            if (j == NULL || (type[0] == 'a' ? !json_is_array(j)
                                             : !json_is_object(j)))
            {
                mc_err("--%s is a JSON %s: %s", opt,
                       type[0] == 'a' ? "array" : "object",
                       j ? "wrong type" : err.text);
                json_decref(j);
                return NULL;
            }
            return j;
        }
        if (type[0] == 'd') {
            mc_err("--%s is a JSON object ({\"Key\": ...}) or --%s-file "
                   "FILE", opt, opt);
            return NULL;
        }
        /* a,b,c: an array of the key's item type (strings if it says
         * none) */
        j = json_array();
        copy = mc_strdup(v);
        for (p = copy; (tok = strsep(&p, ",")) != NULL; ) {
            e = mc_convert(opt, items ? items : "string", NULL, tok,
                           strlen(tok), 0);
            if (e == NULL || json_array_append_new(j, e) != 0) {
                free(copy);
                json_decref(j);
                return NULL;
            }
        }
        free(copy);
        return j;
    }

    /* string, date (RFC 3339, checked by the server) and anything new */
    j = json_stringn(v, vlen);
    if (j == NULL) {
        mc_err("--%s is not UTF-8 text", opt);
    }
    return j;
}


/* a key with an "enum" takes only those values */
static int
mc_in_enum(const char *opt, json_t *def, json_t *v)
{
    char    *list;
    size_t   i;
    json_t  *en, *e;

    en = json_object_get(def, "enum");
    if (!json_is_array(en) || json_array_size(en) == 0) {
        return 1;
    }
    json_array_foreach(en, i, e) {
        if (json_equal(e, v)) {
            return 1;
        }
    }
    list = json_dumps(en, JSON_COMPACT);
    mc_err("--%s is one of %s", opt, list ? list : "its enum");
    free(list);
    return 0;
}


/* the body of POST /v1/commands from the template and --KEY options */
static json_t *
mc_send_body(const mc_cmd_t *cmd, mc_args_t *a, json_t *tpl)
{
    int          i, from_file;
    char         key[128], *data;
    size_t       n, k, vlen;
    json_t      *body, *def, *v, *e;
    const char  *type, *val, *name;

    body = json_object();
    json_object_set(body, "request_type",
                    json_object_get(tpl, "request_type"));
    if (mc_opt(cmd, a, "uuid")) {
        json_object_set_new(body, "command_uuid",
                            json_string(mc_opt(cmd, a, "uuid")));
    }

    for (i = 0; i < a->nfree; i++) {
        name = a->free_name[i];
        n = strlen(name);
        if (n >= sizeof(key)) {
            mc_err("--%s: no such key", name);
            goto fail;
        }
        for (k = 0; k <= n; k++) {
            key[k] = name[k] == '-' ? '_' : name[k];
        }

        from_file = 0;
        def = mc_template_key(tpl, key);
        if (def == NULL && n > 5 && strcmp(key + n - 5, "_file") == 0) {
            key[n - 5] = '\0';
            def = mc_template_key(tpl, key);
            from_file = 1;
        }
        if (def == NULL) {
            mc_err("%s has no key --%s (mdmctl templates %s "
                           "lists them)",
                           json_string_value(json_object_get(tpl,
                                                             "request_type")),
                           name,
                           json_string_value(json_object_get(tpl,
                                                         "request_type")));
            goto fail;
        }
        if (json_object_get(body, key)) {
            mc_err("--%s given twice", name);
            goto fail;
        }

        type = json_string_value(json_object_get(def, "type"));
        type = type ? type : "string";
        val = a->free_val[i];
        data = NULL;
        vlen = val ? strlen(val) : 0;
        if (from_file) {
            if (val == NULL) {
                mc_err("--%s needs a file", name);
                goto fail;
            }
            data = mc_read_file(val, &vlen);
            if (data == NULL) {
                mc_err("cannot read %s: %s", val, strerror(errno));
                goto fail;
            }
            val = data;
        }
        v = mc_convert(name, type,
                       json_string_value(json_object_get(def, "items")),
                       val, vlen, from_file);
        free(data);
        if (v == NULL) {
            goto fail;
        }
        if (!mc_in_enum(name, def, v)) {
            json_decref(v);
            goto fail;
        }
        json_object_set_new(body, key, v);
    }

    /* required keys without a default must be given */
    json_array_foreach(json_object_get(tpl, "keys"), k, e) {
        name = json_string_value(json_object_get(e, "name"));
        def = json_object_get(e, "default");
        if (name && json_is_true(json_object_get(e, "required"))
            && (def == NULL || json_is_null(def))
            && json_object_get(body, name) == NULL)
        {
            for (n = 0; name[n] && n < sizeof(key) - 1; n++) {
                key[n] = name[n] == '_' ? '-' : name[n];
            }
            key[n] = '\0';
            mc_err("%s needs --%s",
                           json_string_value(json_object_get(tpl,
                                                         "request_type")),
                           key);
            goto fail;
        }
    }
    return body;

fail:
    json_decref(body);
    return NULL;
}


int
mc_cmd_send(const mc_cmd_t *cmd, mc_args_t *a)
{
    int          rc;
    char        *ids, *path, q[256], *text;
    size_t       plen;
    json_t      *all, *tpl, *body, *j;
    const char  *name, *file;

    if ((file = mc_opt(cmd, a, "plist"))) {
        return mc_send_plist(cmd, a, file);
    }
    if (a->npos < 2) {
        return mc_usage_error(cmd, "want ID... TEMPLATE, or ID... --plist "
                              "FILE");
    }
    if ((rc = mc_send_query(cmd, a, q, sizeof(q))) != MC_OK) {
        return rc;
    }
    name = a->pos[a->npos - 1];

    all = mc_templates_get(a->conf, &rc);
    if (all == NULL) {
        return rc;
    }
    tpl = mc_template_find(all, name);
    if (tpl == NULL) {
        json_decref(all);
        return mc_usage_error(cmd, "no template \"%s\" (mdmctl templates "
                              "lists them)", name);
    }

    body = mc_send_body(cmd, a, tpl);
    json_decref(all);
    if (body == NULL) {
        return MC_USAGE;
    }

    text = json_dumps(body, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(body);
    if (text == NULL) {
        exit(MC_SERVER);
    }

    ids = mc_join_ids(a->pos, a->npos - 1);
    plen = strlen(ids) + strlen(q) + 16;
    path = malloc(plen);
    if (path == NULL) {
        exit(MC_SERVER);
    }
    snprintf(path, plen, "/v1/commands/%s%s", ids, q);
    free(ids);

    j = mc_api(a->conf, "POST", path, text, strlen(text), &rc);
    free(path);
    free(text);
    return mc_send_answer(a->conf, j, rc);
}


int
mc_cmd_templates(const mc_cmd_t *cmd, mc_args_t *a)
{
    int          rc;
    char        *opt, *p, *def;
    size_t       i, k, n;
    json_t      *all, *tpl, *e;
    mc_table_t  *t;

    if ((rc = mc_want_pos(cmd, a, 0, 1)) != MC_OK) {
        return rc;
    }
    all = mc_templates_get(a->conf, &rc);
    if (all == NULL) {
        return rc;
    }

    if (a->npos == 0) {
        if (a->conf->json) {
            mc_print_json(all);
            json_decref(all);
            return MC_OK;
        }
        t = mc_table(2, "TEMPLATE", "OPTIONS");
        json_array_foreach(json_object_get(all, "templates"), i, tpl) {
            n = 1;
            json_array_foreach(json_object_get(tpl, "keys"), k, e) {
                n += strlen(mc_str(e, "name")) + 4;
            }
            opt = calloc(1, n);
            if (opt == NULL) {
                exit(MC_SERVER);
            }
            json_array_foreach(json_object_get(tpl, "keys"), k, e) {
                p = opt + strlen(opt);
                sprintf(p, "%s--%s", k ? " " : "", mc_str(e, "name"));
                for (; *p; p++) {
                    if (*p == '_') {
                        *p = '-';
                    }
                }
            }
            mc_table_row(t, mc_str(tpl, "request_type"), opt);
            free(opt);
        }
        mc_table_print(t);
        json_decref(all);
        return MC_OK;
    }

    tpl = mc_template_find(all, a->pos[0]);
    if (tpl == NULL) {
        json_decref(all);
        return mc_usage_error(cmd, "no template \"%s\"", a->pos[0]);
    }
    if (a->conf->json) {
        mc_print_json(tpl);
        json_decref(all);
        return MC_OK;
    }
    t = mc_table(6, "OPTION", "PLIST KEY", "TYPE", "REQUIRED", "DEFAULT",
                 "DOC");
    json_array_foreach(json_object_get(tpl, "keys"), k, e) {
        opt = malloc(strlen(mc_str(e, "name")) + 3);
        if (opt == NULL) {
            exit(MC_SERVER);
        }
        sprintf(opt, "--%s", mc_str(e, "name"));
        for (p = opt; *p; p++) {
            if (*p == '_') {
                *p = '-';
            }
        }
        def = json_object_get(e, "default")
              ? json_dumps(json_object_get(e, "default"),
                           JSON_COMPACT | JSON_ENCODE_ANY)
              : NULL;
        mc_table_row(t, opt, mc_str(e, "plist_key"), mc_str(e, "type"),
                     mc_str(e, "required"), def ? def : "-",
                     mc_str(e, "doc"));
        free(def);
        free(opt);
    }
    mc_table_print(t);
    json_decref(all);
    return MC_OK;
}
