
/*
 * Copyright (C) ngx_mdm contributors
 *
 * libplist with nginx's memory rules: trees are freed with the request
 * pool, so every error path is leak-free.
 */


#include "ngx_http_mdm_plist.h"


/*
 * Apple's plists nest a few levels; libplist recurses per level when it
 * frees a tree.  Elements of every kind count, <plist> included.
 */
#define NGX_HTTP_MDM_PLIST_DEPTH    128

/*
 * libplist 2.2 decodes each character reference ("&amp;", "&#65;") by
 * moving the rest of its string: time quadratic in a string's length.
 * The sum over strings of references x length is held under this many
 * byte moves (about 10 ms); real messages use a few thousand.
 */
#define NGX_HTTP_MDM_PLIST_ENTITY_WORK  ((uint64_t) 1 << 31)


typedef struct {
    u_char             *pos;
    u_char             *last;
    ngx_uint_t          depth;
    ngx_uint_t          nodes;
    ngx_uint_t          max_nodes;
    uint64_t            entity_work;
} ngx_http_mdm_plist_scan_t;


static const char *ngx_http_mdm_plist_scan(ngx_http_request_t *r,
    ngx_str_t *body, ngx_uint_t max_nodes);
static const char *ngx_http_mdm_plist_text(ngx_http_mdm_plist_scan_t *s,
    u_char *end);
static const char *ngx_http_mdm_plist_markup(ngx_http_mdm_plist_scan_t *s);
static const char *ngx_http_mdm_plist_special(ngx_http_mdm_plist_scan_t *s);
static const char *ngx_http_mdm_plist_tag(ngx_http_mdm_plist_scan_t *s);
static ngx_int_t ngx_http_mdm_plist_until(ngx_http_mdm_plist_scan_t *s,
    const char *end, size_t len, ngx_uint_t quotes);
static ngx_uint_t ngx_http_mdm_plist_name(ngx_http_mdm_plist_scan_t *s);
static void ngx_http_mdm_plist_ws(ngx_http_mdm_plist_scan_t *s);
static void ngx_http_mdm_plist_cleanup(void *data);


plist_t
ngx_http_mdm_plist_parse(ngx_http_request_t *r, ngx_str_t *body)
{
    const char  *reason;

    return ngx_http_mdm_plist_parse_body(r, body, &reason);
}


plist_t
ngx_http_mdm_plist_parse_body(ngx_http_request_t *r, ngx_str_t *body,
    const char **reason)
{
    plist_t                   root;
    ngx_pool_cleanup_t       *cln;
    ngx_http_mdm_loc_conf_t  *mlcf;

    if (body->len == 0 || body->len > NGX_MAX_UINT32_VALUE) {
        *reason = "body is empty or over 4 GB";
        return NULL;
    }

    /*
     * XML only: devices send XML, and libplist 2.2's binary parser takes
     * time quadratic in the nesting depth.
     */
    if (body->len >= 6 && ngx_strncmp(body->data, "bplist", 6) == 0) {
        *reason = "body is a binary plist: only XML plists are accepted";
        return NULL;
    }

    mlcf = ngx_http_get_module_loc_conf(r, ngx_http_mdm_module);

    *reason = ngx_http_mdm_plist_scan(r, body, mlcf->plist_max_nodes);
    if (*reason) {
        return NULL;
    }

    cln = ngx_pool_cleanup_add(r->pool, 0);
    if (cln == NULL) {
        *reason = "out of memory";
        return NULL;
    }

    *reason = "body is not an XML plist dictionary";

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

    *reason = NULL;

    return root;
}


/*
 * What libplist will allocate and how deep it will recurse, known before
 * it runs: every piece of markup is classified as an XML parser would
 * (start, end and empty-element tags with attributes and whitespace,
 * comments, CDATA sections, processing instructions, a DOCTYPE), and
 * counted.  Markup that is not plainly one of these is refused, so that
 * no reading of the body by libplist can nest deeper than what was
 * counted here.  NULL, or why the body is refused.
 */

static const char *
ngx_http_mdm_plist_scan(ngx_http_request_t *r, ngx_str_t *body,
    ngx_uint_t max_nodes)
{
    u_char                     *lt, *msg;
    const char                 *reason;
    ngx_http_mdm_plist_scan_t   s;

    ngx_memzero(&s, sizeof(ngx_http_mdm_plist_scan_t));

    s.pos = body->data;
    s.last = body->data + body->len;
    s.max_nodes = max_nodes;

    while (s.pos < s.last) {
        lt = ngx_strlchr(s.pos, s.last, '<');

        reason = ngx_http_mdm_plist_text(&s, lt ? lt : s.last);
        if (reason) {
            return reason;
        }

        if (lt == NULL) {
            break;
        }

        s.pos = lt + 1;

        if (++s.nodes > s.max_nodes) {
            msg = ngx_pnalloc(r->pool, 80);
            if (msg == NULL) {
                return "body has too many elements";
            }

            ngx_snprintf(msg, 80, "body has more than %ui elements "
                         "(mdm_plist_max_nodes)%Z", s.max_nodes);
            return (const char *) msg;
        }

        reason = ngx_http_mdm_plist_markup(&s);
        if (reason) {
            return reason;
        }
    }

    if (s.depth) {
        return "body has unclosed elements";
    }

    return NULL;
}


/* character data up to end: what decoding its references will cost */

static const char *
ngx_http_mdm_plist_text(ngx_http_mdm_plist_scan_t *s, u_char *end)
{
    u_char    *p;
    uint64_t   n;

    n = 0;

    for (p = s->pos; p < end; p++) {
        p = ngx_strlchr(p, end, '&');
        if (p == NULL) {
            break;
        }
        n++;
    }

    s->entity_work += n * (uint64_t) (end - s->pos);

    if (s->entity_work > NGX_HTTP_MDM_PLIST_ENTITY_WORK) {
        return "body has too many character references (&...;) in long "
               "strings";
    }

    return NULL;
}


/* s->pos is just past a '<' */

static const char *
ngx_http_mdm_plist_markup(ngx_http_mdm_plist_scan_t *s)
{
    if (s->pos == s->last) {
        return "body ends inside markup";
    }

    switch (*s->pos) {

    case '?':
        /*
         * <?xml version="1.0"?>: libplist skips double-quoted text while
         * it looks for "?>", so the first "?>" must not be quoted
         */
        s->pos++;
        if (ngx_http_mdm_plist_until(s, "?>", 2, 1) != NGX_OK) {
            return "body has a processing instruction the plist pre-scan "
                   "cannot classify";
        }
        return NULL;

    case '!':
        return ngx_http_mdm_plist_special(s);

    default:
        return ngx_http_mdm_plist_tag(s);
    }
}


/* s->pos is at the '!' of a comment, a CDATA section or a DOCTYPE */

static const char *
ngx_http_mdm_plist_special(ngx_http_mdm_plist_scan_t *s)
{
    u_char  *p;
    size_t   len;

    len = s->last - s->pos;

    if (len >= 3 && ngx_strncmp(s->pos, "!--", 3) == 0) {
        s->pos += 3;
        if (ngx_http_mdm_plist_until(s, "-->", 3, 0) != NGX_OK) {
            return "body has an unterminated comment";
        }
        return NULL;
    }

    if (len >= 8 && ngx_strncmp(s->pos, "![CDATA[", 8) == 0) {
        s->pos += 8;
        if (ngx_http_mdm_plist_until(s, "]]>", 3, 0) != NGX_OK) {
            return "body has an unterminated CDATA section";
        }
        return NULL;
    }

    if (len >= 8 && ngx_strncmp(s->pos, "!DOCTYPE", 8) == 0) {
        /*
         * Apple's <!DOCTYPE plist PUBLIC "..." "...">; an internal subset
         * ("[...]") could declare entities, and is refused
         */
        p = s->pos;
        s->pos += 8;

        if (ngx_http_mdm_plist_until(s, ">", 1, 1) != NGX_OK
            || ngx_strlchr(p, s->pos, '[') != NULL
            || ngx_strlchr(p, s->pos, '<') != NULL)
        {
            return "body has a DOCTYPE the plist pre-scan cannot classify";
        }

        return NULL;
    }

    return "body has <! markup that is not a comment, CDATA or DOCTYPE";
}


/*
 * s->pos is just past the '<' of a tag: </name S?>, <name (S attr)* S?>
 * or <name (S attr)* S?/>, where attr is name S? = S? "value" and the
 * value holds none of < > " (libplist would read those differently).
 */

static const char *
ngx_http_mdm_plist_tag(ngx_http_mdm_plist_scan_t *s)
{
    u_char  *q;

    if (*s->pos == '/') {
        s->pos++;

        if (!ngx_http_mdm_plist_name(s)) {
            return "body has an end tag the plist pre-scan cannot classify";
        }

        ngx_http_mdm_plist_ws(s);

        if (s->pos == s->last || *s->pos != '>') {
            return "body has an end tag the plist pre-scan cannot classify";
        }

        s->pos++;

        if (s->depth == 0) {
            return "body has an end tag without a start tag";
        }

        s->depth--;

        return NULL;
    }

    if (!ngx_http_mdm_plist_name(s)) {
        return "body has a tag the plist pre-scan cannot classify";
    }

    for ( ;; ) {
        q = s->pos;
        ngx_http_mdm_plist_ws(s);

        if (s->pos == s->last) {
            break;
        }

        if (*s->pos == '>') {
            s->pos++;

            if (++s->depth > NGX_HTTP_MDM_PLIST_DEPTH) {
                return "body nests deeper than 128 elements";
            }

            return NULL;
        }

        if (*s->pos == '/') {
            if (s->last - s->pos < 2 || s->pos[1] != '>') {
                break;
            }

            s->pos += 2;
            return NULL;
        }

        /* an attribute, after whitespace */
        if (q == s->pos || !ngx_http_mdm_plist_name(s)) {
            break;
        }

        ngx_http_mdm_plist_ws(s);

        if (s->pos == s->last || *s->pos++ != '=') {
            break;
        }

        ngx_http_mdm_plist_ws(s);

        if (s->pos == s->last || *s->pos++ != '"') {
            break;
        }

        while (s->pos < s->last && *s->pos != '"' && *s->pos != '<'
               && *s->pos != '>')
        {
            s->pos++;
        }

        if (s->pos == s->last || *s->pos++ != '"') {
            break;
        }
    }

    return "body has a tag the plist pre-scan cannot classify";
}


/*
 * Moves s->pos past the first occurrence of end; with quotes, that
 * occurrence must not be inside double quotes.
 */

static ngx_int_t
ngx_http_mdm_plist_until(ngx_http_mdm_plist_scan_t *s, const char *end,
    size_t len, ngx_uint_t quotes)
{
    u_char      *p;
    ngx_uint_t   n;

    p = ngx_strlcasestrn(s->pos, s->last, (u_char *) end, len - 1);
    if (p == NULL) {
        return NGX_DECLINED;
    }

    if (quotes) {
        n = 0;

        for ( /* void */ ; s->pos < p; s->pos++) {
            n += (*s->pos == '"');
        }

        if (n % 2) {
            return NGX_DECLINED;
        }
    }

    s->pos = p + len;

    return NGX_OK;
}


/* an XML name, ASCII only: [A-Za-z_:][A-Za-z0-9_:.-]* */

static ngx_uint_t
ngx_http_mdm_plist_name(ngx_http_mdm_plist_scan_t *s)
{
    u_char  c, *start;

    start = s->pos;

    while (s->pos < s->last) {
        c = *s->pos;

        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'
            || c == ':'
            || (s->pos > start
                && ((c >= '0' && c <= '9') || c == '.' || c == '-')))
        {
            s->pos++;
            continue;
        }

        break;
    }

    return s->pos > start;
}


static void
ngx_http_mdm_plist_ws(ngx_http_mdm_plist_scan_t *s)
{
    while (s->pos < s->last
           && (*s->pos == ' ' || *s->pos == '\t' || *s->pos == '\r'
               || *s->pos == '\n'))
    {
        s->pos++;
    }
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
