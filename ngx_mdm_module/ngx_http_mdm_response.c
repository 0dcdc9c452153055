
/*
 * Copyright (C) ngx_mdm contributors
 */


#include "ngx_http_mdm_response.h"
#include "ngx_http_mdm_plist.h"


ngx_int_t
ngx_http_mdm_send(ngx_http_request_t *r, ngx_uint_t status, const char *type,
    ngx_str_t *body)
{
    ngx_int_t    rc;
    ngx_buf_t   *b;
    ngx_chain_t  out;

    r->headers_out.status = status;

    if (body == NULL || body->len == 0) {
        /* a zero-size memory buffer makes nginx log "zero size buf" */
        r->headers_out.content_length_n = 0;
        r->header_only = 1;
        return ngx_http_send_header(r);
    }

    r->headers_out.content_length_n = body->len;
    r->headers_out.content_type.data = (u_char *) type;
    r->headers_out.content_type.len = ngx_strlen(type);
    r->headers_out.content_type_len = r->headers_out.content_type.len;

    rc = ngx_http_send_header(r);

    if (rc == NGX_ERROR || rc > NGX_OK || r->header_only) {
        return rc;
    }

    b = ngx_calloc_buf(r->pool);
    if (b == NULL) {
        return NGX_ERROR;
    }

    b->pos = body->data;
    b->last = body->data + body->len;
    b->memory = 1;
    b->last_buf = (r == r->main) ? 1 : 0;
    b->last_in_chain = 1;

    out.buf = b;
    out.next = NULL;

    return ngx_http_output_filter(r, &out);
}


ngx_int_t
ngx_http_mdm_send_plist(ngx_http_request_t *r, plist_t p)
{
    ngx_str_t  xml;

    if (ngx_http_mdm_plist_xml(r->pool, p, &xml) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return ngx_http_mdm_send(r, NGX_HTTP_OK, "application/xml", &xml);
}
