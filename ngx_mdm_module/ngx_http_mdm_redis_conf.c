
/*
 * Copyright (C) ngx_mdm contributors
 *
 * Configuration of the Redis connection: the mdm_redis directive and how
 * its address is resolved once the whole http{} block is read.
 */


#include "ngx_http_mdm_redis.h"


static ngx_int_t ngx_http_mdm_redis_numeric(ngx_conf_t *cf,
    ngx_http_mdm_main_conf_t *mmcf, ngx_str_t *host);
static ngx_int_t ngx_http_mdm_redis_set_host(ngx_pool_t *pool,
    ngx_http_mdm_main_conf_t *mmcf, struct sockaddr *sa, socklen_t socklen);
static char *ngx_http_mdm_redis_sentinels(ngx_conf_t *cf,
    ngx_http_mdm_main_conf_t *mmcf, ngx_str_t *list);
static ngx_int_t ngx_http_mdm_redis_wait_param(ngx_http_mdm_main_conf_t *mmcf,
    ngx_str_t *v);


/*
 * mdm_redis ADDRESS [db=N] [password=P] [timeout=T]
 * mdm_redis sentinel=HOST:PORT[,HOST:PORT...] master=NAME
 *           [sentinel_password=P] [db=N] [password=P] [timeout=T]
 * either with [wait=N[,TIMEOUT]]
 */

char *
ngx_http_mdm_redis_directive(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_mdm_main_conf_t *mmcf = conf;

    u_char     *p;
    ngx_str_t  *value, s;
    ngx_int_t   n;
    ngx_msec_t  limit;
    ngx_url_t   u;
    ngx_uint_t  i;

    if (mmcf->configured) {
        return "is duplicate";
    }

    value = cf->args->elts;

    if (ngx_strncmp(value[1].data, "sentinel=", 9) == 0) {
        s.data = value[1].data + 9;
        s.len = value[1].len - 9;

        if (ngx_http_mdm_redis_sentinels(cf, mmcf, &s) != NGX_CONF_OK) {
            return NGX_CONF_ERROR;
        }

    } else if (ngx_strncmp(value[1].data, "unix:", 5) == 0) {
        mmcf->unix_socket = 1;
        mmcf->host.len = value[1].len - 5;
        mmcf->host.data = ngx_pnalloc(cf->pool, mmcf->host.len + 1);
        if (mmcf->host.data == NULL) {
            return NGX_CONF_ERROR;
        }
        p = ngx_cpymem(mmcf->host.data, value[1].data + 5, mmcf->host.len);
        *p = '\0';

    } else {
        /*
         * hiredis resolves names with a blocking getaddrinfo(), which an
         * nginx worker must not call: it is handed a numeric address.  A
         * host name is resolved at each connect with the http{} resolver,
         * or else once, here in the master (see init_conf).
         */
        ngx_memzero(&u, sizeof(ngx_url_t));
        u.url = value[1];
        u.default_port = 6379;
        u.no_resolve = 1;

        if (ngx_parse_url(cf->pool, &u) != NGX_OK || u.host.len == 0) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid redis address \"%V\"%s%s",
                               &value[1], u.err ? ": " : "",
                               u.err ? u.err : "");
            return NGX_CONF_ERROR;
        }

        mmcf->port = u.no_port ? 6379 : u.port;

        if (ngx_http_mdm_redis_numeric(cf, mmcf, &u.host) != NGX_OK) {
            return NGX_CONF_ERROR;
        }
    }

    for (i = 2; i < cf->args->nelts; i++) {

        if (ngx_strncmp(value[i].data, "db=", 3) == 0) {
            n = ngx_atoi(value[i].data + 3, value[i].len - 3);
            if (n == NGX_ERROR) {
                goto invalid;
            }
            mmcf->db = n;
            continue;
        }

        if (ngx_strncmp(value[i].data, "master=", 7) == 0
            && value[i].len > 7)
        {
            mmcf->master_name.len = value[i].len - 7;
            mmcf->master_name.data = value[i].data + 7;
            continue;
        }

        if (ngx_strncmp(value[i].data, "wait=", 5) == 0) {
            if (ngx_http_mdm_redis_wait_param(mmcf, &value[i]) != NGX_OK) {
                goto invalid;
            }

            continue;
        }

        if (ngx_strncmp(value[i].data, "sentinel_password=", 18) == 0) {
            mmcf->sentinel_password.len = value[i].len - 18;
            mmcf->sentinel_password.data = value[i].data + 18;
            continue;
        }

        if (ngx_strncmp(value[i].data, "password=", 9) == 0) {
            mmcf->password.len = value[i].len - 9;
            mmcf->password.data = value[i].data + 9;
            continue;
        }

        if (ngx_strncmp(value[i].data, "timeout=", 8) == 0) {
            s.len = value[i].len - 8;
            s.data = value[i].data + 8;
            mmcf->timeout = ngx_parse_time(&s, 0);
            if (mmcf->timeout == (ngx_msec_t) NGX_ERROR
                || mmcf->timeout == 0)
            {
                goto invalid;
            }
            continue;
        }

        goto invalid;
    }

    if ((mmcf->sentinels == NULL) != (mmcf->master_name.len == 0)) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"sentinel=\" and \"master=\" go together: the "
                           "sentinels are asked for that master's address");
        return NGX_CONF_ERROR;
    }

    if (mmcf->wait_replicas) {
        /* the default call timeout is 1s (init_main_conf) */
        limit = (mmcf->timeout == NGX_CONF_UNSET_MSEC) ? 1000 : mmcf->timeout;

        if (mmcf->wait_timeout == 0) {
            mmcf->wait_timeout = limit / 2;
        }

        if (mmcf->wait_timeout >= limit) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "the WAIT time of \"wait=\" must be shorter "
                               "than \"timeout=\", which bounds the whole "
                               "call");
            return NGX_CONF_ERROR;
        }
    }

    mmcf->configured = 1;

    return NGX_CONF_OK;

invalid:

    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                       "invalid parameter \"%V\"", &value[i]);
    return NGX_CONF_ERROR;
}


/*
 * "HOST:PORT,HOST:PORT": each resolved here, in the master, once (the
 * sentinels are the stable part of a Sentinel setup; the master they name
 * is asked for at every connect)
 */

static char *
ngx_http_mdm_redis_sentinels(ngx_conf_t *cf, ngx_http_mdm_main_conf_t *mmcf,
    ngx_str_t *list)
{
    u_char                     *p, *last, *comma;
    ngx_url_t                   u;
    ngx_uint_t                  i;
    ngx_http_mdm_redis_addr_t  *a;

    mmcf->sentinels = ngx_array_create(cf->pool, 3,
                                       sizeof(ngx_http_mdm_redis_addr_t));
    if (mmcf->sentinels == NULL) {
        return NGX_CONF_ERROR;
    }

    p = list->data;
    last = list->data + list->len;

    while (p < last) {
        comma = ngx_strlchr(p, last, ',');
        if (comma == NULL) {
            comma = last;
        }

        ngx_memzero(&u, sizeof(ngx_url_t));
        u.url.data = p;
        u.url.len = comma - p;
        u.default_port = 26379;

        if (u.url.len == 0 || ngx_parse_url(cf->pool, &u) != NGX_OK
            || u.naddrs == 0)
        {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid sentinel address \"%V\"%s%s",
                               &u.url, u.err ? ": " : "",
                               u.err ? u.err : "");
            return NGX_CONF_ERROR;
        }

        for (i = 0; i < u.naddrs; i++) {
            a = ngx_array_push(mmcf->sentinels);
            if (a == NULL) {
                return NGX_CONF_ERROR;
            }

            a->host.data = ngx_pnalloc(cf->pool, NGX_SOCKADDR_STRLEN + 1);
            if (a->host.data == NULL) {
                return NGX_CONF_ERROR;
            }

            a->host.len = ngx_sock_ntop(u.addrs[i].sockaddr,
                                        u.addrs[i].socklen, a->host.data,
                                        NGX_SOCKADDR_STRLEN, 0);
            a->host.data[a->host.len] = '\0';
            a->port = ngx_inet_get_port(u.addrs[i].sockaddr);
        }

        p = comma + 1;
    }

    if (mmcf->sentinels->nelts == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0, "no sentinel address");
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


/* "wait=N" or "wait=N,TIME": N replicas (1..16), TIME for WAIT */

static ngx_int_t
ngx_http_mdm_redis_wait_param(ngx_http_mdm_main_conf_t *mmcf, ngx_str_t *v)
{
    u_char     *p, *last, *comma;
    ngx_int_t   n;
    ngx_str_t   t;

    p = v->data + 5;
    last = v->data + v->len;

    comma = ngx_strlchr(p, last, ',');

    n = ngx_atoi(p, (comma ? comma : last) - p);
    if (n < 1 || n > 16) {
        return NGX_ERROR;
    }

    mmcf->wait_replicas = n;

    if (comma) {
        t.data = comma + 1;
        t.len = last - t.data;

        mmcf->wait_timeout = ngx_parse_time(&t, 0);
        if (mmcf->wait_timeout == (ngx_msec_t) NGX_ERROR
            || mmcf->wait_timeout == 0)
        {
            return NGX_ERROR;
        }
    }

    return NGX_OK;
}


/* a numeric address goes to mmcf->host as it is; a name to mmcf->name */

static ngx_int_t
ngx_http_mdm_redis_numeric(ngx_conf_t *cf, ngx_http_mdm_main_conf_t *mmcf,
    ngx_str_t *host)
{
    ngx_str_t   h;
    ngx_addr_t  addr;

    h = *host;

    if (h.len > 2 && h.data[0] == '[' && h.data[h.len - 1] == ']') {
        h.data++;
        h.len -= 2;
    }

    if (ngx_parse_addr(cf->pool, &addr, h.data, h.len) == NGX_OK) {
        return ngx_http_mdm_redis_set_host(cf->pool, mmcf, addr.sockaddr,
                                           addr.socklen);
    }

    mmcf->name.data = ngx_pnalloc(cf->pool, h.len + 1);
    if (mmcf->name.data == NULL) {
        return NGX_ERROR;
    }

    *ngx_cpymem(mmcf->name.data, h.data, h.len) = '\0';
    mmcf->name.len = h.len;

    return NGX_OK;
}


static ngx_int_t
ngx_http_mdm_redis_set_host(ngx_pool_t *pool, ngx_http_mdm_main_conf_t *mmcf,
    struct sockaddr *sa, socklen_t socklen)
{
    mmcf->host.data = ngx_pnalloc(pool, NGX_SOCKADDR_STRLEN + 1);
    if (mmcf->host.data == NULL) {
        return NGX_ERROR;
    }

    mmcf->host.len = ngx_sock_ntop(sa, socklen, mmcf->host.data,
                                   NGX_SOCKADDR_STRLEN, 0);
    mmcf->host.data[mmcf->host.len] = '\0';

    return NGX_OK;
}


/*
 * A host name is resolved by nginx's resolver at every (re)connect when
 * http{} has a "resolver"; without one, here, once, in the master (a DNS
 * change then needs a reload).
 */

char *
ngx_http_mdm_redis_init_conf(ngx_conf_t *cf, ngx_http_mdm_main_conf_t *mmcf)
{
    ngx_url_t                  u;
    ngx_http_core_loc_conf_t  *clcf;

    if (!mmcf->configured || mmcf->name.len == 0) {
        return NGX_CONF_OK;
    }

    clcf = ngx_http_conf_get_module_loc_conf(cf, ngx_http_core_module);

    if (clcf->resolver && clcf->resolver->connections.nelts) {
        mmcf->resolver = clcf->resolver;
        mmcf->resolver_timeout = clcf->resolver_timeout
                                 == NGX_CONF_UNSET_MSEC
                                 ? 30000 : clcf->resolver_timeout;
        ngx_str_set(&mmcf->host, "");
        return NGX_CONF_OK;
    }

    ngx_memzero(&u, sizeof(ngx_url_t));
    u.url = mmcf->name;
    u.default_port = mmcf->port;

    if (ngx_parse_url(cf->pool, &u) != NGX_OK || u.naddrs == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "cannot resolve redis host \"%V\"%s%s",
                           &mmcf->name, u.err ? ": " : "",
                           u.err ? u.err : "");
        return NGX_CONF_ERROR;
    }

    if (ngx_http_mdm_redis_set_host(cf->pool, mmcf, u.addrs[0].sockaddr,
                                    u.addrs[0].socklen)
        != NGX_OK)
    {
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}
