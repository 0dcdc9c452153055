
/*
 * Copyright (C) ngx_mdm contributors
 *
 * libplist with nginx's memory rules: trees are freed with the request
 * pool, so every error path is leak-free.
 */


#include "ngx_http_mdm_plist.h"


/* Apple's plists nest a few levels; libplist recurses per level */
#define NGX_HTTP_MDM_PLIST_DEPTH  128


static ngx_uint_t ngx_http_mdm_plist_shallow(ngx_str_t *body);
static void ngx_http_mdm_plist_cleanup(void *data);


plist_t
ngx_http_mdm_plist_parse(ngx_http_request_t *r, ngx_str_t *body)
{
    plist_t              root;
    ngx_pool_cleanup_t  *cln;

    if (body->len == 0 || body->len > NGX_MAX_UINT32_VALUE
        || !ngx_http_mdm_plist_shallow(body))
    {
        return NULL;
    }

    cln = ngx_pool_cleanup_add(r->pool, 0);
    if (cln == NULL) {
        return NULL;
    }

    /*
     * XML only: the protocol is XML, and libplist 2.2's binary parser
     * takes time quadratic in the nesting depth.
     */
    root = NULL;
    plist_from_xml((const char *) body->data, (uint32_t) body->len, &root);

    if (root == NULL) {
        return NULL;
    }

    cln->handler = ngx_http_mdm_plist_cleanup;
    cln->data = root;

    if (plist_get_node_type(root) != PLIST_DICT) {
        return NULL;
    }

    return root;
}


/*
 * Counts opening <array> and <dict> tags against closing ones; anything
 * deeper than NGX_HTTP_MDM_PLIST_DEPTH, or a binary plist, is refused
 * before libplist recurses into it.
 */

static ngx_uint_t
ngx_http_mdm_plist_shallow(ngx_str_t *body)
{
    u_char      *p, *last;
    ngx_uint_t   depth;

    p = body->data;
    last = body->data + body->len;
    depth = 0;

    if (body->len >= 6 && ngx_strncmp(p, "bplist", 6) == 0) {
        return 0;
    }

    while (p < last) {
        p = ngx_strlchr(p, last, '<');
        if (p == NULL) {
            break;
        }

        p++;

        if (last - p >= 6 && (ngx_strncmp(p, "array>", 6) == 0
                              || ngx_strncmp(p, "dict>", 5) == 0))
        {
            if (++depth > NGX_HTTP_MDM_PLIST_DEPTH) {
                return 0;
            }

        } else if (last - p >= 6 && (ngx_strncmp(p, "/array", 6) == 0
                                     || ngx_strncmp(p, "/dict", 5) == 0))
        {
            if (depth) {
                depth--;
            }
        }
    }

    return 1;
}


static void
ngx_http_mdm_plist_cleanup(void *data)
{
    plist_free(data);
}


ngx_int_t
ngx_http_mdm_plist_string(plist_t dict, const char *key, ngx_str_t *out)
{
    uint64_t     len;
    plist_t      node;
    const char  *p;

    node = plist_dict_get_item(dict, key);
    if (node == NULL) {
        return NGX_DECLINED;
    }

    if (plist_get_node_type(node) != PLIST_STRING) {
        return NGX_ERROR;
    }

    p = plist_get_string_ptr(node, &len);
    if (p == NULL) {
        return NGX_ERROR;
    }

    out->data = (u_char *) p;
    out->len = (size_t) len;

    return NGX_OK;
}


ngx_int_t
ngx_http_mdm_plist_data(ngx_pool_t *pool, plist_t dict, const char *key,
    ngx_str_t *out)
{
    char      *buf;
    plist_t    node;
    uint64_t   len;

    node = plist_dict_get_item(dict, key);
    if (node == NULL) {
        return NGX_DECLINED;
    }

    if (plist_get_node_type(node) != PLIST_DATA) {
        return NGX_ERROR;
    }

    buf = NULL;
    len = 0;
    plist_get_data_val(node, &buf, &len);

    out->len = (size_t) len;
    out->data = ngx_pnalloc(pool, len ? len : 1);

    if (out->data != NULL && len) {
        ngx_memcpy(out->data, buf, len);
    }

    free(buf);

    return out->data ? NGX_OK : NGX_ERROR;
}


ngx_int_t
ngx_http_mdm_plist_bool(plist_t dict, const char *key, ngx_uint_t *out)
{
    uint8_t  b;
    plist_t  node;

    node = plist_dict_get_item(dict, key);
    if (node == NULL) {
        return NGX_DECLINED;
    }

    if (plist_get_node_type(node) != PLIST_BOOLEAN) {
        return NGX_ERROR;
    }

    plist_get_bool_val(node, &b);
    *out = b ? 1 : 0;

    return NGX_OK;
}


ngx_int_t
ngx_http_mdm_plist_xml(ngx_pool_t *pool, plist_t p, ngx_str_t *out)
{
    char      *xml;
    uint32_t   len;

    xml = NULL;
    len = 0;
    plist_to_xml(p, &xml, &len);

    if (xml == NULL) {
        return NGX_ERROR;
    }

    out->len = len;
    out->data = ngx_pnalloc(pool, len);

    if (out->data != NULL) {
        ngx_memcpy(out->data, xml, len);
    }

    plist_to_xml_free(xml);

    return out->data ? NGX_OK : NGX_ERROR;
}
