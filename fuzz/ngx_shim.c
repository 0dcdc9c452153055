
/*
 * Copyright (C) ngx_mdm contributors
 *
 * A shim of NGINX CORE, not of ngx_mdm: the few nginx core functions and
 * globals that the module's parsers call, so that the fuzz targets link
 * the module's own .c files unchanged without an nginx binary (Debian's
 * nginx-dev ships headers only).  Nothing of ngx_mdm is replaced here:
 * every ngx_http_mdm_* function a target runs is the module's own code.
 *
 * The string functions follow nginx 1.22's src/core/ngx_string.c and
 * src/http/ngx_http_parse.c (same semantics, including their quirks:
 * "%zz" decodes to "zz", base64 stops at the first "=").
 *
 * Pools: every ngx_palloc() is its own malloc(), kept on the pool's list
 * and freed with the pool, which each target destroys after each input.
 * So AddressSanitizer sees the exact bounds of every pool allocation (an
 * nginx pool would hide an overflow into the next allocation), and
 * LeakSanitizer still sees what the module mallocs itself and never
 * frees (OpenSSL, libplist, ngx_alloc).
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_shim.h"


static ngx_log_t         ngx_shim_log;
static ngx_cycle_t       ngx_shim_cycle;
static ngx_time_t        ngx_shim_time;

volatile ngx_cycle_t    *ngx_cycle = &ngx_shim_cycle;
volatile ngx_time_t     *ngx_cached_time = &ngx_shim_time;
ngx_uint_t               ngx_pagesize = 4096;

/* referenced by module code no target reaches (ngx_shim_unreached.c) */
volatile ngx_msec_t      ngx_current_msec;
ngx_event_actions_t      ngx_event_actions;
ngx_rbtree_t             ngx_event_timer_rbtree;
ngx_module_t             ngx_http_core_module;
ngx_module_t             ngx_http_module;


void
ngx_shim_init(void)
{
    /* every level: log lines are formatted (and their arguments read) */
    ngx_shim_log.log_level = NGX_LOG_DEBUG_ALL | NGX_LOG_DEBUG;
    ngx_shim_cycle.log = &ngx_shim_log;
    ngx_shim_time_update();
}


void
ngx_shim_time_update(void)
{
    ngx_shim_time.sec = time(NULL);
    ngx_shim_time.msec = 0;
}


/* as nginx's: month 1-12, the full year (DDM status reports stamp with it) */
void
ngx_gmtime(time_t t, ngx_tm_t *tp)
{
    struct tm  tm;

    gmtime_r(&t, &tm);
    ngx_memzero(tp, sizeof(ngx_tm_t));
    tp->ngx_tm_sec = tm.tm_sec;
    tp->ngx_tm_min = tm.tm_min;
    tp->ngx_tm_hour = tm.tm_hour;
    tp->ngx_tm_mday = tm.tm_mday;
    tp->ngx_tm_mon = tm.tm_mon + 1;
    tp->ngx_tm_year = tm.tm_year + 1900;
    tp->ngx_tm_wday = tm.tm_wday;
}


ngx_log_t *
ngx_shim_log_get(void)
{
    return &ngx_shim_log;
}


/* pools */

ngx_pool_t *
ngx_create_pool(size_t size, ngx_log_t *log)
{
    ngx_pool_t  *p;

    p = calloc(1, sizeof(ngx_pool_t));
    if (p == NULL) {
        return NULL;
    }

    p->log = log ? log : &ngx_shim_log;
    p->max = size;
    p->current = p;

    return p;
}


void
ngx_destroy_pool(ngx_pool_t *pool)
{
    ngx_pool_large_t    *l, *ln;
    ngx_pool_cleanup_t  *c;

    for (c = pool->cleanup; c; c = c->next) {
        if (c->handler) {
            c->handler(c->data);
        }
    }

    for (l = pool->large; l; l = ln) {
        ln = l->next;
        free(l->alloc);
        free(l);
    }

    free(pool);
}


void *
ngx_palloc(ngx_pool_t *pool, size_t size)
{
    ngx_pool_large_t  *l;

    l = malloc(sizeof(ngx_pool_large_t));
    if (l == NULL) {
        return NULL;
    }

    /* malloc(0) may answer NULL: nginx's pools never do */
    l->alloc = malloc(size ? size : 1);
    if (l->alloc == NULL) {
        free(l);
        return NULL;
    }

    l->next = pool->large;
    pool->large = l;

    return l->alloc;
}


void *
ngx_pnalloc(ngx_pool_t *pool, size_t size)
{
    return ngx_palloc(pool, size);
}


void *
ngx_pcalloc(ngx_pool_t *pool, size_t size)
{
    void  *p;

    p = ngx_palloc(pool, size);
    if (p) {
        ngx_memzero(p, size);
    }

    return p;
}


void *
ngx_pmemalign(ngx_pool_t *pool, size_t size, size_t alignment)
{
    return ngx_palloc(pool, size);
}


ngx_int_t
ngx_pfree(ngx_pool_t *pool, void *p)
{
    ngx_pool_large_t  *l;

    for (l = pool->large; l; l = l->next) {
        if (p == l->alloc) {
            free(l->alloc);
            l->alloc = NULL;
            return NGX_OK;
        }
    }

    return NGX_DECLINED;
}


ngx_pool_cleanup_t *
ngx_pool_cleanup_add(ngx_pool_t *p, size_t size)
{
    ngx_pool_cleanup_t  *c;

    c = ngx_palloc(p, sizeof(ngx_pool_cleanup_t));
    if (c == NULL) {
        return NULL;
    }

    if (size) {
        c->data = ngx_palloc(p, size);
        if (c->data == NULL) {
            return NULL;
        }

    } else {
        c->data = NULL;
    }

    c->handler = NULL;
    c->next = p->cleanup;
    p->cleanup = c;

    return c;
}


void *
ngx_alloc(size_t size, ngx_log_t *log)
{
    return malloc(size);
}


void *
ngx_calloc(size_t size, ngx_log_t *log)
{
    return calloc(1, size ? size : 1);
}


/* arrays (src/core/ngx_array.c: the pool grows them by copying) */

ngx_array_t *
ngx_array_create(ngx_pool_t *p, ngx_uint_t n, size_t size)
{
    ngx_array_t  *a;

    a = ngx_palloc(p, sizeof(ngx_array_t));
    if (a == NULL) {
        return NULL;
    }

    if (ngx_array_init(a, p, n, size) != NGX_OK) {
        return NULL;
    }

    return a;
}


void *
ngx_array_push_n(ngx_array_t *a, ngx_uint_t n)
{
    void        *new;
    ngx_uint_t   nalloc;

    if (a->nelts + n > a->nalloc) {
        nalloc = 2 * ((n >= a->nalloc) ? n : a->nalloc);

        new = ngx_palloc(a->pool, nalloc * a->size);
        if (new == NULL) {
            return NULL;
        }

        ngx_memcpy(new, a->elts, a->nelts * a->size);
        a->elts = new;
        a->nalloc = nalloc;
    }

    new = (u_char *) a->elts + a->size * a->nelts;
    a->nelts += n;

    return new;
}


void *
ngx_array_push(ngx_array_t *a)
{
    return ngx_array_push_n(a, 1);
}


void *
ngx_list_push(ngx_list_t *l)
{
    void             *elt;
    ngx_list_part_t  *last;

    last = l->last;

    if (last->nelts == l->nalloc) {
        last = ngx_palloc(l->pool, sizeof(ngx_list_part_t));
        if (last == NULL) {
            return NULL;
        }

        last->elts = ngx_palloc(l->pool, l->nalloc * l->size);
        if (last->elts == NULL) {
            return NULL;
        }

        last->nelts = 0;
        last->next = NULL;
        l->last->next = last;
        l->last = last;
    }

    elt = (char *) last->elts + l->size * last->nelts;
    last->nelts++;

    return elt;
}


/* strings (src/core/ngx_string.c) */

ngx_int_t
ngx_strncasecmp(u_char *s1, u_char *s2, size_t n)
{
    ngx_uint_t  c1, c2;

    while (n) {
        c1 = (ngx_uint_t) *s1++;
        c2 = (ngx_uint_t) *s2++;

        c1 = (c1 >= 'A' && c1 <= 'Z') ? (c1 | 0x20) : c1;
        c2 = (c2 >= 'A' && c2 <= 'Z') ? (c2 | 0x20) : c2;

        if (c1 == c2) {

            if (c1) {
                n--;
                continue;
            }

            return 0;
        }

        return c1 - c2;
    }

    return 0;
}


ngx_int_t
ngx_strcasecmp(u_char *s1, u_char *s2)
{
    return ngx_strncasecmp(s1, s2, (size_t) -1);
}


/* s2 of n + 1 characters in [s1, last) */

u_char *
ngx_strlcasestrn(u_char *s1, u_char *last, u_char *s2, size_t n)
{
    ngx_uint_t  c1, c2;

    c2 = (ngx_uint_t) *s2++;
    c2 = (c2 >= 'A' && c2 <= 'Z') ? (c2 | 0x20) : c2;
    last -= n;

    do {
        do {
            if (s1 >= last) {
                return NULL;
            }

            c1 = (ngx_uint_t) *s1++;

            c1 = (c1 >= 'A' && c1 <= 'Z') ? (c1 | 0x20) : c1;

        } while (c1 != c2);

    } while (ngx_strncasecmp(s1, s2, n) != 0);

    return --s1;
}


u_char *
ngx_strnstr(u_char *s1, char *s2, size_t len)
{
    u_char  c1, c2;
    size_t  n;

    c2 = *(u_char *) s2++;

    n = ngx_strlen(s2);

    do {
        do {
            if (len-- == 0) {
                return NULL;
            }

            c1 = *s1++;

            if (c1 == 0) {
                return NULL;
            }

        } while (c1 != c2);

        if (n > len) {
            return NULL;
        }

    } while (ngx_strncmp(s1, (u_char *) s2, n) != 0);

    return --s1;
}


u_char *
ngx_cpystrn(u_char *dst, u_char *src, size_t n)
{
    if (n == 0) {
        return dst;
    }

    while (--n) {
        *dst = *src;

        if (*dst == '\0') {
            return dst;
        }

        dst++;
        src++;
    }

    *dst = '\0';

    return dst;
}


u_char *
ngx_pstrdup(ngx_pool_t *pool, ngx_str_t *src)
{
    u_char  *dst;

    dst = ngx_pnalloc(pool, src->len);
    if (dst == NULL) {
        return NULL;
    }

    ngx_memcpy(dst, src->data, src->len);

    return dst;
}


ngx_int_t
ngx_atoi(u_char *line, size_t n)
{
    ngx_int_t  value, cutoff, cutlim;

    if (n == 0) {
        return NGX_ERROR;
    }

    cutoff = NGX_MAX_INT_T_VALUE / 10;
    cutlim = NGX_MAX_INT_T_VALUE % 10;

    for (value = 0; n--; line++) {
        if (*line < '0' || *line > '9') {
            return NGX_ERROR;
        }

        if (value >= cutoff && (value > cutoff || *line - '0' > cutlim)) {
            return NGX_ERROR;
        }

        value = value * 10 + (*line - '0');
    }

    return value;
}


ngx_int_t
ngx_hextoi(u_char *line, size_t n)
{
    u_char     c, ch;
    ngx_int_t  value, cutoff;

    if (n == 0) {
        return NGX_ERROR;
    }

    cutoff = NGX_MAX_INT_T_VALUE / 16;

    for (value = 0; n--; line++) {
        if (value > cutoff) {
            return NGX_ERROR;
        }

        ch = *line;

        if (ch >= '0' && ch <= '9') {
            value = value * 16 + (ch - '0');
            continue;
        }

        c = (u_char) (ch | 0x20);

        if (c >= 'a' && c <= 'f') {
            value = value * 16 + (c - 'a' + 10);
            continue;
        }

        return NGX_ERROR;
    }

    return value;
}


u_char *
ngx_hex_dump(u_char *dst, u_char *src, size_t len)
{
    static u_char  hex[] = "0123456789abcdef";

    while (len--) {
        *dst++ = hex[*src >> 4];
        *dst++ = hex[*src++ & 0xf];
    }

    return dst;
}


void
ngx_encode_base64(ngx_str_t *dst, ngx_str_t *src)
{
    u_char         *d, *s;
    size_t          len;
    static u_char   basis[] =
            "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

    len = src->len;
    s = src->data;
    d = dst->data;

    while (len > 2) {
        *d++ = basis[(s[0] >> 2) & 0x3f];
        *d++ = basis[((s[0] & 3) << 4) | (s[1] >> 4)];
        *d++ = basis[((s[1] & 0x0f) << 2) | (s[2] >> 6)];
        *d++ = basis[s[2] & 0x3f];

        s += 3;
        len -= 3;
    }

    if (len) {
        *d++ = basis[(s[0] >> 2) & 0x3f];

        if (len == 1) {
            *d++ = basis[(s[0] & 3) << 4];
            *d++ = '=';

        } else {
            *d++ = basis[((s[0] & 3) << 4) | (s[1] >> 4)];
            *d++ = basis[(s[1] & 0x0f) << 2];
        }

        *d++ = '=';
    }

    dst->len = d - dst->data;
}


ngx_int_t
ngx_decode_base64(ngx_str_t *dst, ngx_str_t *src)
{
    size_t          len;
    u_char         *d, *s;
    static u_char   basis[256];
    static int      ready;
    ngx_uint_t      i;
    static u_char   alphabet[] =
            "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

    if (!ready) {
        ngx_memset(basis, 77, sizeof(basis));
        for (i = 0; i < 64; i++) {
            basis[alphabet[i]] = (u_char) i;
        }
        ready = 1;
    }

    for (len = 0; len < src->len; len++) {
        if (src->data[len] == '=') {
            break;
        }

        if (basis[src->data[len]] == 77) {
            return NGX_ERROR;
        }
    }

    if (len % 4 == 1) {
        return NGX_ERROR;
    }

    s = src->data;
    d = dst->data;

    while (len > 3) {
        *d++ = (u_char) (basis[s[0]] << 2 | basis[s[1]] >> 4);
        *d++ = (u_char) (basis[s[1]] << 4 | basis[s[2]] >> 2);
        *d++ = (u_char) (basis[s[2]] << 6 | basis[s[3]]);

        s += 4;
        len -= 4;
    }

    if (len > 1) {
        *d++ = (u_char) (basis[s[0]] << 2 | basis[s[1]] >> 4);
    }

    if (len > 2) {
        *d++ = (u_char) (basis[s[1]] << 4 | basis[s[2]] >> 2);
    }

    dst->len = d - dst->data;

    return NGX_OK;
}


/* type 0 only (all the module uses): every %XX decoded, bad ones dropped */

void
ngx_unescape_uri(u_char **dst, u_char **src, size_t size, ngx_uint_t type)
{
    u_char  *d, *s, ch, c, decoded;
    enum {
        sw_usual = 0,
        sw_quoted,
        sw_quoted_second
    } state;

    if (type != 0) {
        abort();
    }

    d = *dst;
    s = *src;

    state = 0;
    decoded = 0;

    while (size--) {

        ch = *s++;

        switch (state) {
        case sw_usual:
            if (ch == '%') {
                state = sw_quoted;
                break;
            }

            *d++ = ch;
            break;

        case sw_quoted:

            if (ch >= '0' && ch <= '9') {
                decoded = (u_char) (ch - '0');
                state = sw_quoted_second;
                break;
            }

            c = (u_char) (ch | 0x20);
            if (c >= 'a' && c <= 'f') {
                decoded = (u_char) (c - 'a' + 10);
                state = sw_quoted_second;
                break;
            }

            /* the invalid quoted character */

            state = sw_usual;

            *d++ = ch;

            break;

        case sw_quoted_second:

            state = sw_usual;

            if (ch >= '0' && ch <= '9') {
                ch = (u_char) ((decoded << 4) + (ch - '0'));
                *d++ = ch;
                break;
            }

            c = (u_char) (ch | 0x20);
            if (c >= 'a' && c <= 'f') {
                ch = (u_char) ((decoded << 4) + (c - 'a') + 10);
                *d++ = ch;
                break;
            }

            /* the invalid quoted character */

            break;
        }
    }

    *dst = d;
    *src = s;
}


/* src/core/ngx_inet.c */

ngx_int_t
ngx_cidr_match(struct sockaddr *sa, ngx_array_t *cidrs)
{
    u_char           *p;
    in_addr_t         inaddr;
    ngx_cidr_t       *cidr;
    ngx_uint_t        i, n;
#if (NGX_HAVE_INET6)
    struct in6_addr  *inaddr6;
#endif

    inaddr = 0;
#if (NGX_HAVE_INET6)
    inaddr6 = NULL;
#endif

    switch (sa->sa_family) {
#if (NGX_HAVE_INET6)
    case AF_INET6:
        inaddr6 = &((struct sockaddr_in6 *) sa)->sin6_addr;
        break;
#endif
    default:
        inaddr = ((struct sockaddr_in *) sa)->sin_addr.s_addr;
        break;
    }

    cidr = cidrs->elts;

    for (i = 0; i < cidrs->nelts; i++) {

        if (cidr[i].family != sa->sa_family) {
            continue;
        }

        switch (cidr[i].family) {
#if (NGX_HAVE_INET6)
        case AF_INET6:
            p = inaddr6->s6_addr;

            for (n = 0; n < 16; n++) {
                if ((p[n] & cidr[i].u.in6.mask.s6_addr[n])
                    != cidr[i].u.in6.addr.s6_addr[n])
                {
                    goto next;
                }
            }

            return NGX_OK;
#endif
        default:
            (void) p;
            (void) n;

            if ((inaddr & cidr[i].u.in.mask) == cidr[i].u.in.addr) {
                return NGX_OK;
            }

            break;
        }

#if (NGX_HAVE_INET6)
    next:
#endif
        continue;
    }

    return NGX_DECLINED;
}


/* src/http/ngx_http_parse.c */

ngx_int_t
ngx_http_arg(ngx_http_request_t *r, u_char *name, size_t len, ngx_str_t *value)
{
    u_char  *p, *last;

    if (r->args.len == 0) {
        return NGX_DECLINED;
    }

    p = r->args.data;
    last = p + r->args.len;

    for ( /* void */ ; p < last; p++) {

        /* we need '=' after name, so drop one char from last */

        p = ngx_strlcasestrn(p, last - 1, name, len - 1);

        if (p == NULL) {
            return NGX_DECLINED;
        }

        if ((p == r->args.data || *(p - 1) == '&') && *(p + len) == '=') {

            value->data = p + len + 1;

            p = ngx_strlchr(p, last, '&');

            if (p == NULL) {
                p = r->args.data + r->args.len;
            }

            value->len = p - value->data;

            return NGX_OK;
        }
    }

    return NGX_DECLINED;
}


/*
 * ngx_vslprintf() with nginx's conversions: %[0][width][x|X][u][m]
 * then V v s * O T M z i d l D L p c Z N %; "%*s" takes the length first.
 */

static u_char *
ngx_shim_num(u_char *buf, u_char *last, uint64_t ui64, u_char zero,
    ngx_uint_t hexadecimal, ngx_uint_t width)
{
    u_char          *p, temp[NGX_INT64_LEN + 1];
    size_t           len;
    static u_char    hex[] = "0123456789abcdef";
    static u_char    HEX[] = "0123456789ABCDEF";

    p = temp + NGX_INT64_LEN;

    if (hexadecimal == 0) {
        do {
            *--p = (u_char) (ui64 % 10 + '0');
        } while (ui64 /= 10);

    } else {
        do {
            *--p = (hexadecimal == 1 ? hex : HEX)[(uint32_t) (ui64 & 0xf)];
        } while (ui64 >>= 4);
    }

    len = (temp + NGX_INT64_LEN) - p;

    while (len++ < width && buf < last) {
        *buf++ = zero;
    }

    len = (temp + NGX_INT64_LEN) - p;

    if (buf + len > last) {
        len = last - buf;
    }

    return ngx_cpymem(buf, p, len);
}


u_char *
ngx_vslprintf(u_char *buf, u_char *last, const char *fmt, va_list args)
{
    u_char       *p, zero;
    size_t        len, slen;
    int64_t       i64;
    uint64_t      ui64;
    ngx_str_t    *v;
    ngx_uint_t    width, sign, hex, frac_width;

    while (*fmt && buf < last) {

        if (*fmt != '%') {
            *buf++ = *fmt++;
            continue;
        }

        i64 = 0;
        ui64 = 0;

        zero = (u_char) ((*++fmt == '0') ? '0' : ' ');
        width = 0;
        sign = 1;
        hex = 0;
        frac_width = 0;
        slen = (size_t) -1;

        while (*fmt >= '0' && *fmt <= '9') {
            width = width * 10 + (*fmt++ - '0');
        }

        for ( ;; ) {
            switch (*fmt) {

            case 'u':
                sign = 0;
                fmt++;
                continue;

            case 'm':
                fmt++;
                continue;

            case 'X':
                hex = 2;
                sign = 0;
                fmt++;
                continue;

            case 'x':
                hex = 1;
                sign = 0;
                fmt++;
                continue;

            case '.':
                fmt++;
                while (*fmt >= '0' && *fmt <= '9') {
                    frac_width = frac_width * 10 + (*fmt++ - '0');
                }
                break;

            case '*':
                slen = va_arg(args, size_t);
                fmt++;
                continue;

            default:
                break;
            }

            break;
        }

        switch (*fmt) {

        case 'V':
            v = va_arg(args, ngx_str_t *);
            len = ngx_min(((size_t) (last - buf)), v->len);
            buf = ngx_cpymem(buf, v->data, len);
            fmt++;
            continue;

        case 'v':
            (void) va_arg(args, void *);
            fmt++;
            continue;

        case 's':
            p = va_arg(args, u_char *);

            if (slen == (size_t) -1) {
                while (*p && buf < last) {
                    *buf++ = *p++;
                }

            } else {
                len = ngx_min(((size_t) (last - buf)), slen);
                buf = ngx_cpymem(buf, p, len);
            }

            fmt++;
            continue;

        case 'O':
            i64 = (int64_t) va_arg(args, off_t);
            sign = 1;
            break;

        case 'P':
            i64 = (int64_t) va_arg(args, ngx_pid_t);
            sign = 1;
            break;

        case 'T':
            i64 = (int64_t) va_arg(args, time_t);
            sign = 1;
            break;

        case 'M':
            i64 = (int64_t) va_arg(args, ngx_msec_t);
            sign = 0;
            ui64 = (uint64_t) i64;
            break;

        case 'z':
            if (sign) {
                i64 = (int64_t) va_arg(args, ssize_t);
            } else {
                ui64 = (uint64_t) va_arg(args, size_t);
            }
            break;

        case 'i':
            if (sign) {
                i64 = (int64_t) va_arg(args, ngx_int_t);
            } else {
                ui64 = (uint64_t) va_arg(args, ngx_uint_t);
            }
            break;

        case 'd':
            if (sign) {
                i64 = (int64_t) va_arg(args, int);
            } else {
                ui64 = (uint64_t) va_arg(args, u_int);
            }
            break;

        case 'l':
            if (sign) {
                i64 = (int64_t) va_arg(args, long);
            } else {
                ui64 = (uint64_t) va_arg(args, u_long);
            }
            break;

        case 'D':
            if (sign) {
                i64 = (int64_t) va_arg(args, int32_t);
            } else {
                ui64 = (uint64_t) va_arg(args, uint32_t);
            }
            break;

        case 'L':
            if (sign) {
                i64 = va_arg(args, int64_t);
            } else {
                ui64 = va_arg(args, uint64_t);
            }
            break;

        case 'A':
            if (sign) {
                i64 = (int64_t) va_arg(args, ngx_atomic_int_t);
            } else {
                ui64 = (uint64_t) va_arg(args, ngx_atomic_uint_t);
            }
            break;

        case 'f':
            (void) va_arg(args, double);
            (void) frac_width;
            fmt++;
            continue;

        case 'p':
            ui64 = (uintptr_t) va_arg(args, void *);
            hex = 2;
            sign = 0;
            zero = '0';
            width = 2 * sizeof(void *);
            break;

        case 'c':
            *buf++ = (u_char) va_arg(args, int);
            fmt++;
            continue;

        case 'Z':
            *buf++ = '\0';
            fmt++;
            continue;

        case 'N':
            *buf++ = LF;
            fmt++;
            continue;

        case '%':
            *buf++ = '%';
            fmt++;
            continue;

        default:
            *buf++ = *fmt++;
            continue;
        }

        if (sign) {
            if (i64 < 0) {
                *buf++ = '-';
                ui64 = (uint64_t) -(i64 + 1) + 1;

            } else {
                ui64 = (uint64_t) i64;
            }
        }

        buf = ngx_shim_num(buf, last, ui64, zero, hex, width);

        fmt++;
    }

    return buf;
}


u_char * ngx_cdecl
ngx_sprintf(u_char *buf, const char *fmt, ...)
{
    u_char   *p;
    va_list   args;

    va_start(args, fmt);
    p = ngx_vslprintf(buf, (void *) -1, fmt, args);
    va_end(args);

    return p;
}


u_char * ngx_cdecl
ngx_snprintf(u_char *buf, size_t max, const char *fmt, ...)
{
    u_char   *p;
    va_list   args;

    va_start(args, fmt);
    p = ngx_vslprintf(buf, buf + max, fmt, args);
    va_end(args);

    return p;
}


u_char * ngx_cdecl
ngx_slprintf(u_char *buf, u_char *last, const char *fmt, ...)
{
    u_char   *p;
    va_list   args;

    va_start(args, fmt);
    p = ngx_vslprintf(buf, last, fmt, args);
    va_end(args);

    return p;
}


/* log lines are formatted into a scratch buffer and dropped */

void
ngx_log_error_core(ngx_uint_t level, ngx_log_t *log, ngx_err_t err,
    const char *fmt, ...)
{
    u_char   buf[NGX_MAX_ERROR_STR];
    va_list  args;

    va_start(args, fmt);
    (void) ngx_vslprintf(buf, buf + sizeof(buf), fmt, args);
    va_end(args);
}
