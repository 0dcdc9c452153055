
/*
 * Copyright (C) ngx_mdm contributors
 *
 * The template engine: a JSON object {"request_type": ..., <keys>} into a
 * command plist, every key checked against the template's table; and the
 * table described as JSON (contract T1).  Nothing here touches Redis.
 */


#include "ngx_http_mdm_template.h"


/* bounds of a dictionary given as JSON (Manifest, Configuration, ...) */
#define NGX_HTTP_MDM_TPL_DEPTH   16
#define NGX_HTTP_MDM_TPL_NODES   10000


typedef struct {
    ngx_pool_t                   *pool;
    ngx_http_mdm_template_t      *tpl;
    plist_t                       cmd;
    plist_t                       item;     /* the "Array[]" element */
    ngx_uint_t                    nodes;
    const char                   *err;
} ngx_http_mdm_tpl_build_t;


static const char *ngx_http_mdm_tpl_types[] = {
    "string", "integer", "boolean", "real", "data", "date", "array", "dict"
};

static const char *ngx_http_mdm_tpl_a[] = {
    "a string", "a non-negative integer", "true or false", "a number",
    "base64 data", "a date", "an array", "an object"
};


static ngx_int_t ngx_http_mdm_tpl_keys(ngx_http_mdm_tpl_build_t *b,
    json_t *in);
static ngx_int_t ngx_http_mdm_tpl_put(ngx_http_mdm_tpl_build_t *b,
    ngx_http_mdm_template_key_t *k, json_t *v);
static plist_t ngx_http_mdm_tpl_value(ngx_http_mdm_tpl_build_t *b,
    ngx_http_mdm_template_key_t *k, ngx_uint_t type, json_t *v);
static plist_t ngx_http_mdm_tpl_data(ngx_http_mdm_tpl_build_t *b,
    ngx_http_mdm_template_key_t *k, json_t *v);
static plist_t ngx_http_mdm_tpl_any(ngx_http_mdm_tpl_build_t *b,
    ngx_http_mdm_template_key_t *k, json_t *v, ngx_uint_t depth);
static ngx_int_t ngx_http_mdm_tpl_place(ngx_http_mdm_tpl_build_t *b,
    ngx_http_mdm_template_key_t *k, plist_t node);
static plist_t ngx_http_mdm_tpl_child(plist_t dict, const char *name,
    size_t len, plist_type type);
static ngx_int_t ngx_http_mdm_tpl_choices(ngx_http_mdm_tpl_build_t *b,
    json_t *in);
static ngx_uint_t ngx_http_mdm_tpl_given(json_t *in, const char *names);
static ngx_int_t ngx_http_mdm_tpl_fail(ngx_http_mdm_tpl_build_t *b,
    const char *fmt, ...);
static void ngx_http_mdm_tpl_cleanup(void *data);


ngx_http_mdm_template_t *
ngx_http_mdm_template_find(const char *rtype)
{
    ngx_http_mdm_template_t  *t;

    for (t = ngx_http_mdm_templates; t->request_type; t++) {
        if (ngx_strcmp(t->request_type, rtype) == 0) {
            return t;
        }
    }

    return NULL;
}


plist_t
ngx_http_mdm_template_build(ngx_pool_t *pool, json_t *in,
    ngx_http_mdm_template_t **tpl, const char **err)
{
    plist_t                    root;
    json_t                    *rt;
    ngx_http_mdm_tpl_build_t   b;

    ngx_memzero(&b, sizeof(ngx_http_mdm_tpl_build_t));
    b.pool = pool;

    rt = json_is_object(in) ? json_object_get(in, "request_type") : NULL;

    if (!json_is_string(rt)) {
        *err = "the body is a JSON object with a \"request_type\" string";
        return NULL;
    }

    b.tpl = ngx_http_mdm_template_find(json_string_value(rt));
    if (b.tpl == NULL) {
        (void) ngx_http_mdm_tpl_fail(&b, "unknown request_type \"%*s\": "
                                     "GET /v1/templates lists them",
                                     ngx_min(ngx_strlen(json_string_value(rt)),
                                             64),
                                     json_string_value(rt));
        *err = b.err;
        return NULL;
    }

    *tpl = b.tpl;

    root = plist_new_dict();
    b.cmd = plist_new_dict();
    plist_dict_set_item(b.cmd, "RequestType",
                        plist_new_string(b.tpl->request_type));
    plist_dict_set_item(root, "Command", b.cmd);

    if (ngx_http_mdm_template_own(pool, root) != NGX_OK) {
        *err = "!out of memory";
        return NULL;
    }

    if (ngx_http_mdm_tpl_keys(&b, in) != NGX_OK
        || ngx_http_mdm_tpl_choices(&b, in) != NGX_OK)
    {
        *err = b.err;
        return NULL;
    }

    return root;
}


/*
 * Unknown keys first, then the keys given, then the defaults: a default
 * of an "Array[]" key joins the element the given keys made, or makes one
 * unless whole elements were given.
 */

static ngx_int_t
ngx_http_mdm_tpl_keys(ngx_http_mdm_tpl_build_t *b, json_t *in)
{
    json_t                       *v, *def;
    ngx_int_t                     rc;
    const char                   *name;
    ngx_http_mdm_template_key_t  *k;

    json_object_foreach(in, name, v) {
        if (ngx_strcmp(name, "request_type") == 0
            || ngx_strcmp(name, "command_uuid") == 0)
        {
            continue;
        }

        for (k = b->tpl->keys; k->name; k++) {
            if (ngx_strcmp(k->name, name) == 0) {
                break;
            }
        }

        if (k->name == NULL) {
            return ngx_http_mdm_tpl_fail(b, "unknown key \"%*s\" for %s: "
                                         "GET /v1/templates lists its keys",
                                         ngx_min(ngx_strlen(name), 64), name,
                                         b->tpl->request_type);
        }
    }

    /* in the table's order, which puts whole array elements first */
    for (k = b->tpl->keys; k->name; k++) {
        v = json_object_get(in, k->name);
        if (v == NULL) {
            continue;
        }

        if (k->needs && json_object_get(in, k->needs) == NULL) {
            return ngx_http_mdm_tpl_fail(b, "%s of %s needs %s", k->name,
                                         b->tpl->request_type, k->needs);
        }

        if (ngx_http_mdm_tpl_put(b, k, v) != NGX_OK) {
            return NGX_ERROR;
        }
    }

    for (k = b->tpl->keys; k->name; k++) {
        if (json_object_get(in, k->name)) {
            continue;
        }

        if (k->def == NULL) {
            if (k->required) {
                return ngx_http_mdm_tpl_fail(b, "%s needs \"%s\" (%s)",
                                             b->tpl->request_type, k->name,
                                             ngx_http_mdm_tpl_a[k->type]);
            }

            continue;
        }

        if (ngx_strstr(k->plist, "[]") && b->item == NULL
            && ngx_http_mdm_tpl_child(b->cmd, k->plist,
                                      ngx_strchr(k->plist, '[') - k->plist,
                                      PLIST_NONE))
        {
            continue;
        }

        def = json_loads(k->def, JSON_DECODE_ANY, NULL);
        if (def == NULL) {
            return ngx_http_mdm_tpl_fail(b, "!bad default of %s", k->name);
        }

        rc = ngx_http_mdm_tpl_put(b, k, def);
        json_decref(def);

        if (rc != NGX_OK) {
            return NGX_ERROR;
        }
    }

    return NGX_OK;
}


static ngx_int_t
ngx_http_mdm_tpl_put(ngx_http_mdm_tpl_build_t *b,
    ngx_http_mdm_template_key_t *k, json_t *v)
{
    plist_t  node;

    node = ngx_http_mdm_tpl_value(b, k, k->type, v);
    if (node == NULL) {
        return NGX_ERROR;
    }

    return ngx_http_mdm_tpl_place(b, k, node);
}


/* v as a plist node of the type, or NULL and b->err */

static plist_t
ngx_http_mdm_tpl_value(ngx_http_mdm_tpl_build_t *b,
    ngx_http_mdm_template_key_t *k, ngx_uint_t type, json_t *v)
{
    size_t   i;
    json_t  *vals, *e;
    plist_t  node, item;

    if (k->values) {
        vals = json_loads(k->values, 0, NULL);
        for (i = 0; vals && i < json_array_size(vals); i++) {
            if (json_equal(json_array_get(vals, i), v)) {
                break;
            }
        }

        if (vals == NULL || i == json_array_size(vals)) {
            json_decref(vals);
            (void) ngx_http_mdm_tpl_fail(b, "%s of %s is one of %s", k->name,
                                         b->tpl->request_type, k->values);
            return NULL;
        }

        json_decref(vals);
    }

    node = NULL;

    switch (type) {

    case NGX_HTTP_MDM_T_STRING:
        if (json_is_string(v)) {
            node = plist_new_string(json_string_value(v));
        }
        break;

    case NGX_HTTP_MDM_T_INTEGER:
        if (json_is_integer(v) && json_integer_value(v) >= 0) {
            node = plist_new_uint((uint64_t) json_integer_value(v));
        }
        break;

    case NGX_HTTP_MDM_T_BOOLEAN:
        if (json_is_boolean(v)) {
            node = plist_new_bool(json_is_true(v));
        }
        break;

    case NGX_HTTP_MDM_T_REAL:
        if (json_is_number(v)) {
            node = plist_new_real(json_number_value(v));
        }
        break;

    case NGX_HTTP_MDM_T_DATA:
        if (json_is_string(v)) {
            return ngx_http_mdm_tpl_data(b, k, v);
        }
        break;

    case NGX_HTTP_MDM_T_DICT:
        if (json_is_object(v)) {
            return ngx_http_mdm_tpl_any(b, k, v, 0);
        }
        break;

    case NGX_HTTP_MDM_T_ARRAY:
        if (!json_is_array(v)) {
            break;
        }

        node = plist_new_array();

        json_array_foreach(v, i, e) {
            item = ngx_http_mdm_tpl_value(b, k, k->items, e);
            if (item == NULL) {
                plist_free(node);
                return NULL;
            }

            plist_array_append_item(node, item);
        }

        return node;

    default:
        break;
    }

    if (node == NULL) {
        (void) ngx_http_mdm_tpl_fail(b, "%s of %s is %s%s%s", k->name,
                   b->tpl->request_type,
                   (type == k->type) ? "" : "an array of ",
                   (type == k->type) ? ngx_http_mdm_tpl_a[type]
                                     : ngx_http_mdm_tpl_types[type],
                   (type == k->type) ? "" : "s");
    }

    return node;
}


/* base64, the way `base64 FILE` writes it (line breaks allowed) */

static plist_t
ngx_http_mdm_tpl_data(ngx_http_mdm_tpl_build_t *b,
    ngx_http_mdm_template_key_t *k, json_t *v)
{
    u_char       *p;
    size_t        i, n;
    ngx_str_t     src, dst;
    const char   *s;

    s = json_string_value(v);
    n = json_string_length(v);

    src.data = ngx_pnalloc(b->pool, n + 1);
    dst.data = ngx_pnalloc(b->pool, ngx_base64_decoded_length(n) + 1);
    if (src.data == NULL || dst.data == NULL) {
        (void) ngx_http_mdm_tpl_fail(b, "!out of memory");
        return NULL;
    }

    p = src.data;
    for (i = 0; i < n; i++) {
        if (s[i] != '\n' && s[i] != '\r' && s[i] != ' ' && s[i] != '\t') {
            *p++ = s[i];
        }
    }

    src.len = p - src.data;

    if (ngx_decode_base64(&dst, &src) != NGX_OK
        || (k->required && dst.len == 0))
    {
        (void) ngx_http_mdm_tpl_fail(b, "%s of %s is not %sbase64", k->name,
                                     b->tpl->request_type,
                                     k->required ? "non-empty " : "");
        return NULL;
    }

    return plist_new_data((const char *) dst.data, dst.len);
}


/* any JSON but null, bounded in depth and size, as a plist */

static plist_t
ngx_http_mdm_tpl_any(ngx_http_mdm_tpl_build_t *b,
    ngx_http_mdm_template_key_t *k, json_t *v, ngx_uint_t depth)
{
    size_t       i;
    json_t      *e;
    plist_t      node, item;
    const char  *name;

    if (depth > NGX_HTTP_MDM_TPL_DEPTH
        || ++b->nodes > NGX_HTTP_MDM_TPL_NODES)
    {
        (void) ngx_http_mdm_tpl_fail(b, "%s of %s nests deeper than 16 or "
                                     "holds more than 10000 values", k->name,
                                     b->tpl->request_type);
        return NULL;
    }

    switch (json_typeof(v)) {

    case JSON_OBJECT:
        node = plist_new_dict();
        json_object_foreach(v, name, e) {
            item = ngx_http_mdm_tpl_any(b, k, e, depth + 1);
            if (item == NULL) {
                plist_free(node);
                return NULL;
            }

            plist_dict_set_item(node, name, item);
        }
        return node;

    case JSON_ARRAY:
        node = plist_new_array();
        json_array_foreach(v, i, e) {
            item = ngx_http_mdm_tpl_any(b, k, e, depth + 1);
            if (item == NULL) {
                plist_free(node);
                return NULL;
            }

            plist_array_append_item(node, item);
        }
        return node;

    case JSON_STRING:
        return plist_new_string(json_string_value(v));

    case JSON_INTEGER:
        if (json_integer_value(v) >= 0) {
            return plist_new_uint((uint64_t) json_integer_value(v));
        }
        break;

    case JSON_REAL:
        return plist_new_real(json_real_value(v));

    case JSON_TRUE:
    case JSON_FALSE:
        return plist_new_bool(json_is_true(v));

    default:
        break;
    }

    (void) ngx_http_mdm_tpl_fail(b, "%s of %s holds a null or a negative "
                                 "integer, which a plist cannot carry",
                                 k->name, b->tpl->request_type);
    return NULL;
}


/* the node where k->plist says (see ngx_http_mdm_template.h) */

static ngx_int_t
ngx_http_mdm_tpl_place(ngx_http_mdm_tpl_build_t *b,
    ngx_http_mdm_template_key_t *k, plist_t node)
{
    char        *item;
    plist_t      arr, dict, e;
    uint32_t     i;
    const char  *p, *br, *dot;

    p = k->plist;
    br = ngx_strchr(p, '[');
    dot = ngx_strchr(p, '.');

    if (br) {
        arr = ngx_http_mdm_tpl_child(b->cmd, p, br - p, PLIST_ARRAY);
        dot = ngx_strchr(br, '.');

        if (br[1] == ']') {
            if (b->item == NULL) {
                b->item = plist_new_dict();
                plist_array_append_item(arr, b->item);
            }

            plist_dict_set_item(b->item, dot + 1, node);
            return NGX_OK;
        }

        item = ngx_pnalloc(b->pool, dot - br - 1);
        if (item == NULL) {
            plist_free(node);
            return ngx_http_mdm_tpl_fail(b, "!out of memory");
        }

        ngx_memcpy(item, br + 1, dot - br - 2);
        item[dot - br - 2] = '\0';

        dict = plist_new_dict();
        plist_dict_set_item(dict, "Item", plist_new_string(item));
        plist_dict_set_item(dict, dot + 1, node);
        plist_array_append_item(arr, dict);
        return NGX_OK;
    }

    if (dot) {
        dict = ngx_http_mdm_tpl_child(b->cmd, p, dot - p, PLIST_DICT);
        plist_dict_set_item(dict, dot + 1, node);
        return NGX_OK;
    }

    /* whole elements of an array the other keys add to */
    arr = plist_dict_get_item(b->cmd, p);

    if (arr && plist_get_node_type(arr) == PLIST_ARRAY
        && plist_get_node_type(node) == PLIST_ARRAY)
    {
        for (i = 0; i < plist_array_get_size(node); i++) {
            e = plist_array_get_item(node, i);
            plist_array_append_item(arr, plist_copy(e));
        }

        plist_free(node);
        return NGX_OK;
    }

    plist_dict_set_item(b->cmd, p, node);
    return NGX_OK;
}


/*
 * Command's member of that name, made when type is not PLIST_NONE and it
 * is missing; with PLIST_NONE: the member or NULL
 */

static plist_t
ngx_http_mdm_tpl_child(plist_t dict, const char *name, size_t len,
    plist_type type)
{
    char     buf[64];
    plist_t  c;

    len = ngx_min(len, sizeof(buf) - 1);
    ngx_memcpy(buf, name, len);
    buf[len] = '\0';

    c = plist_dict_get_item(dict, buf);

    if (c == NULL && type != PLIST_NONE) {
        c = (type == PLIST_ARRAY) ? plist_new_array() : plist_new_dict();
        plist_dict_set_item(dict, buf, c);
    }

    return c;
}


static ngx_int_t
ngx_http_mdm_tpl_choices(ngx_http_mdm_tpl_build_t *b, json_t *in)
{
    plist_t                   arr;
    ngx_http_mdm_template_t  *t;

    t = b->tpl;

    if (t->one_of && ngx_http_mdm_tpl_given(in, t->one_of) != 1) {
        return ngx_http_mdm_tpl_fail(b, "%s takes exactly one of: %s",
                                     t->request_type, t->one_of);
    }

    if (t->any_of && ngx_http_mdm_tpl_given(in, t->any_of) == 0) {
        return ngx_http_mdm_tpl_fail(b, "%s takes at least one of: %s",
                                     t->request_type, t->any_of);
    }

    if (t->nonempty) {
        arr = plist_dict_get_item(b->cmd, t->nonempty);

        if (arr == NULL || plist_array_get_size(arr) == 0) {
            return ngx_http_mdm_tpl_fail(b, "%s needs at least one element "
                                         "of %s: give one of its keys",
                                         t->request_type, t->nonempty);
        }
    }

    return NGX_OK;
}


/* how many of the space-separated names in is given */

static ngx_uint_t
ngx_http_mdm_tpl_given(json_t *in, const char *names)
{
    char         buf[64];
    size_t       len;
    ngx_uint_t   n;
    const char  *p, *end;

    n = 0;

    for (p = names; *p; p = *end ? end + 1 : end) {
        end = ngx_strchr(p, ' ');
        if (end == NULL) {
            end = p + ngx_strlen(p);
        }

        len = ngx_min((size_t) (end - p), sizeof(buf) - 1);
        ngx_memcpy(buf, p, len);
        buf[len] = '\0';

        if (json_object_get(in, buf)) {
            n++;
        }
    }

    return n;
}


/* b->err from the format (ngx_sprintf's), NUL-terminated; NGX_ERROR */

static ngx_int_t
ngx_http_mdm_tpl_fail(ngx_http_mdm_tpl_build_t *b, const char *fmt, ...)
{
    u_char   *p, *last;
    va_list   ap;

    p = ngx_pnalloc(b->pool, 512);
    if (p == NULL) {
        b->err = "!out of memory";
        return NGX_ERROR;
    }

    va_start(ap, fmt);
    last = ngx_vslprintf(p, p + 511, fmt, ap);
    va_end(ap);

    *last = '\0';
    b->err = (const char *) p;

    return NGX_ERROR;
}


ngx_int_t
ngx_http_mdm_template_own(ngx_pool_t *pool, plist_t p)
{
    ngx_pool_cleanup_t  *cln;

    cln = ngx_pool_cleanup_add(pool, 0);
    if (cln == NULL) {
        plist_free(p);
        return NGX_ERROR;
    }

    cln->handler = ngx_http_mdm_tpl_cleanup;
    cln->data = p;

    return NGX_OK;
}


static void
ngx_http_mdm_tpl_cleanup(void *data)
{
    plist_free(data);
}


/* contract T1 */

json_t *
ngx_http_mdm_template_describe(void)
{
    json_t                       *all, *t, *keys, *k, *def;
    ngx_http_mdm_template_t      *tpl;
    ngx_http_mdm_template_key_t  *key;

    all = json_array();

    for (tpl = ngx_http_mdm_templates; all && tpl->request_type; tpl++) {
        keys = json_array();
        t = json_pack("{s:s, s:s, s:o*}", "request_type", tpl->request_type,
                      "doc", tpl->doc, "keys", keys);

        if (t && tpl->one_of) {
            json_object_set_new(t, "one_of", json_string(tpl->one_of));
        }

        if (t && tpl->any_of) {
            json_object_set_new(t, "any_of", json_string(tpl->any_of));
        }

        if (t == NULL || json_array_append_new(all, t) != 0) {
            json_decref(all);
            return NULL;
        }

        for (key = tpl->keys; key->name; key++) {
            def = key->def ? json_loads(key->def, JSON_DECODE_ANY, NULL) : json_null();

            k = json_pack("{s:s, s:s, s:s, s:b, s:o*, s:s}",
                          "name", key->name, "plist_key", key->plist,
                          "type", ngx_http_mdm_tpl_types[key->type],
                          "required", (int) key->required,
                          "default", def, "doc", key->doc);

            if (k && key->type == NGX_HTTP_MDM_T_ARRAY) {
                json_object_set_new(k, "items", json_string(
                                    ngx_http_mdm_tpl_types[key->items]));
            }

            if (k && key->values) {
                json_object_set_new(k, "enum", json_loads(key->values, 0,
                                                          NULL));
            }

            if (k && key->needs) {
                json_object_set_new(k, "needs", json_string(key->needs));
            }

            if (k == NULL || json_array_append_new(keys, k) != 0) {
                json_decref(all);
                return NULL;
            }
        }
    }

    return all ? json_pack("{s:o}", "templates", all) : NULL;
}
