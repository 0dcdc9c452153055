
/*
 * Copyright (C) ngx_mdm contributors
 *
 * The module's own directive handlers: the ones the command table in
 * ngx_http_mdm_module.c names that nginx's slot functions cannot do.
 */


#include "ngx_http_mdm_directives.h"
#include "ngx_http_mdm_api.h"
#include "ngx_http_mdm_fastsig_shm.h"


static ngx_int_t ngx_http_mdm_identity_zone(ngx_conf_t *cf,
    ngx_http_mdm_loc_conf_t *mlcf, ngx_str_t *value);


/* mdm_checkin, mdm_connect, mdm_server: cmd->post is the content handler */

char *
ngx_http_mdm_handler_directive(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_mdm_loc_conf_t *mlcf = conf;

    ngx_http_core_loc_conf_t  *clcf;

    if (mlcf->checkin != NGX_CONF_UNSET) {
        return (mlcf->handler == cmd->post) ? "is duplicate"
               : "conflicts with another mdm_checkin, mdm_connect or "
                 "mdm_server in this location";
    }

    mlcf->checkin = 1;
    mlcf->handler = cmd->post;

    clcf = ngx_http_conf_get_module_loc_conf(cf, ngx_http_core_module);
    clcf->handler = (ngx_http_handler_pt) cmd->post;

    return NGX_CONF_OK;
}


char *
ngx_http_mdm_api(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_mdm_loc_conf_t *mlcf = conf;

    ngx_http_core_loc_conf_t  *clcf;

    if (mlcf->api) {
        return "is duplicate";
    }

    mlcf->api = 1;

    clcf = ngx_http_conf_get_module_loc_conf(cf, ngx_http_core_module);
    clcf->handler = ngx_http_mdm_api_handler;

    return NGX_CONF_OK;
}


/* the key from a file (kept out of nginx.conf), without trailing space */

char *
ngx_http_mdm_api_key_file(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_mdm_loc_conf_t *mlcf = conf;

    ssize_t          n;
    ngx_fd_t         fd;
    ngx_str_t       *value, name;
    ngx_file_info_t  fi;

    if (mlcf->api_key.data) {
        return "is duplicate";
    }

    value = cf->args->elts;
    name = value[1];

    if (ngx_conf_full_name(cf->cycle, &name, 1) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    fd = ngx_open_file(name.data, NGX_FILE_RDONLY, NGX_FILE_OPEN, 0);
    if (fd == NGX_INVALID_FILE) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, ngx_errno,
                           "cannot open mdm_api_key_file \"%V\"", &name);
        return NGX_CONF_ERROR;
    }

    if (ngx_fd_info(fd, &fi) == NGX_FILE_ERROR
        || ngx_file_size(&fi) > 4096)
    {
        ngx_close_file(fd);
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "mdm_api_key_file \"%V\" is unreadable or over "
                           "4 KB", &name);
        return NGX_CONF_ERROR;
    }

    mlcf->api_key.data = ngx_pnalloc(cf->pool, 4096);
    if (mlcf->api_key.data == NULL) {
        ngx_close_file(fd);
        return NGX_CONF_ERROR;
    }

    n = ngx_read_fd(fd, mlcf->api_key.data, 4096);
    ngx_close_file(fd);

    while (n > 0 && (mlcf->api_key.data[n - 1] == '\n'
                     || mlcf->api_key.data[n - 1] == '\r'
                     || mlcf->api_key.data[n - 1] == ' '))
    {
        n--;
    }

    if (n <= 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "mdm_api_key_file \"%V\" is empty", &name);
        return NGX_CONF_ERROR;
    }

    mlcf->api_key.len = n;

    return NGX_CONF_OK;
}


/* mdm_plist_max_nodes N: at least one element, the root dictionary */

char *
ngx_http_mdm_plist_max_nodes(ngx_conf_t *cf, void *post, void *data)
{
    ngx_uint_t  *np = data;

    if (*np == 0) {
        return "must be at least 1";
    }

    return NGX_CONF_OK;
}


/* mdm_identity_cache [N] [verdicts=M | zone=NAME:SIZE] | off */

char *
ngx_http_mdm_identity_cache(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_mdm_loc_conf_t *mlcf = conf;

    ngx_int_t   n, m;
    ngx_str_t  *value;
    ngx_uint_t  i;

    if (mlcf->identity_cache != NGX_CONF_UNSET_UINT
        || mlcf->identity_zone != NGX_CONF_UNSET_PTR)
    {
        return "is duplicate";
    }

    value = cf->args->elts;

    if (ngx_strcmp(value[1].data, "off") == 0 && cf->args->nelts == 2) {
        mlcf->identity_cache = 0;
        return NGX_CONF_OK;
    }

    i = 1;

    if (ngx_strlchr(value[1].data, value[1].data + value[1].len, '=')
        == NULL)
    {
        n = ngx_atoi(value[1].data, value[1].len);
        if (n == NGX_ERROR || n == 0 || n > 10000000) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid mdm_identity_cache \"%V\": a number "
                               "of certificates up to 10000000, or \"off\"",
                               &value[1]);
            return NGX_CONF_ERROR;
        }

        mlcf->identity_cache = n;
        i = 2;
    }

    for ( /* void */ ; i < cf->args->nelts; i++) {

        if (mlcf->identity_zone != NGX_CONF_UNSET_PTR) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "mdm_identity_cache takes one of "
                               "\"verdicts=\" (per worker) and \"zone=\" "
                               "(shared by the workers), not \"%V\" as well",
                               &value[i]);
            return NGX_CONF_ERROR;
        }

        if (ngx_strncmp(value[i].data, "zone=", 5) == 0) {
            if (ngx_http_mdm_identity_zone(cf, mlcf, &value[i]) != NGX_OK) {
                return NGX_CONF_ERROR;
            }

            continue;
        }

        m = NGX_ERROR;

        if (ngx_strncmp(value[i].data, "verdicts=", 9) == 0) {
            m = ngx_atoi(value[i].data + 9, value[i].len - 9);
        }

        if (m == NGX_ERROR || m > 100000000) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid mdm_identity_cache parameter "
                               "\"%V\": \"zone=NAME:SIZE\", or "
                               "\"verdicts=\" and a number up to 100000000",
                               &value[i]);
            return NGX_CONF_ERROR;
        }

        /* the verdict table of each worker, as before the zones */
        mlcf->identity_verdicts = m;
        mlcf->identity_zone = NULL;
    }

    return NGX_CONF_OK;
}


/* zone=NAME:SIZE: the verdicts in shared memory */

static ngx_int_t
ngx_http_mdm_identity_zone(ngx_conf_t *cf, ngx_http_mdm_loc_conf_t *mlcf,
    ngx_str_t *value)
{
    u_char     *p, *last;
    ssize_t     size;
    ngx_str_t   name, s;

    name.data = value->data + 5;
    last = value->data + value->len;

    p = ngx_strlchr(name.data, last, ':');
    if (p == NULL || p == name.data || p + 1 == last) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid mdm_identity_cache \"%V\": "
                           "\"zone=NAME:SIZE\", e.g. \"zone=mdm_ids:64m\"",
                           value);
        return NGX_ERROR;
    }

    name.len = p - name.data;

    /* the name is a label of the metrics: kept plain */
    for (p = name.data; p < name.data + name.len; p++) {
        if (!(isalnum(*p) || *p == '_' || *p == '-' || *p == '.')) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid mdm_identity_cache zone name "
                               "\"%V\": letters, digits, \"_\", \"-\" "
                               "and \".\"", &name);
            return NGX_ERROR;
        }
    }

    s.data = name.data + name.len + 1;
    s.len = last - s.data;

    size = ngx_parse_size(&s);
    if (size == NGX_ERROR || size < NGX_HTTP_MDM_FASTSIG_SHM_MIN) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid mdm_identity_cache zone size \"%V\": "
                           "at least 32k (a verdict takes 128 bytes)", &s);
        return NGX_ERROR;
    }

    mlcf->identity_zone = ngx_http_mdm_fastsig_shm_add(cf, &name, size);

    return (mlcf->identity_zone == NULL) ? NGX_ERROR : NGX_OK;
}
