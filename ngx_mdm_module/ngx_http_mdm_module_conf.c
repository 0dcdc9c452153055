
/*
 * Copyright (C) ngx_mdm contributors
 *
 * The module's main and location configuration: created with every value
 * unset, the defaults filled in, inherited, and the checks that need more
 * than one directive.
 */


#include "ngx_http_mdm_module_conf.h"
#include "ngx_http_mdm_redis.h"
#include "ngx_http_mdm_identity.h"
#include "ngx_http_mdm_fastsig_shm.h"
#include "ngx_http_mdm_api.h"
#include "ngx_http_mdm_enroll.h"
#include "ngx_http_mdm_scep.h"


void *
ngx_http_mdm_create_main_conf(ngx_conf_t *cf)
{
    ngx_http_mdm_main_conf_t  *mmcf;

    mmcf = ngx_pcalloc(cf->pool, sizeof(ngx_http_mdm_main_conf_t));
    if (mmcf == NULL) {
        return NULL;
    }

    /*
     * set by ngx_pcalloc():
     *
     *     mmcf->host = { 0, NULL };
     *     mmcf->port = 0;
     *     mmcf->unix_socket = 0;
     *     mmcf->db = 0;
     *     mmcf->password = { 0, NULL };
     *     mmcf->configured = 0;
     */

    mmcf->timeout = NGX_CONF_UNSET_MSEC;

    return mmcf;
}


char *
ngx_http_mdm_init_main_conf(ngx_conf_t *cf, void *conf)
{
    ngx_http_mdm_main_conf_t *mmcf = conf;

    ngx_conf_init_msec_value(mmcf->timeout, 1000);

    return ngx_http_mdm_redis_init_conf(cf, mmcf);
}


void *
ngx_http_mdm_create_loc_conf(ngx_conf_t *cf)
{
    ngx_http_mdm_loc_conf_t  *mlcf;

    mlcf = ngx_pcalloc(cf->pool, sizeof(ngx_http_mdm_loc_conf_t));
    if (mlcf == NULL) {
        return NULL;
    }

    /*
     * set by ngx_pcalloc():
     *
     *     mlcf->handler = NULL;
     *     mlcf->api = 0;
     *     mlcf->api_key = { 0, NULL };
     */

    mlcf->checkin = NGX_CONF_UNSET;
    mlcf->identity = NGX_CONF_UNSET_PTR;
    mlcf->ca = NGX_CONF_UNSET_PTR;
    mlcf->skew = NGX_CONF_UNSET;
    mlcf->cert_auth = NGX_CONF_UNSET_UINT;
    mlcf->user_authenticate = NGX_CONF_UNSET_UINT;
    mlcf->identity_cache = NGX_CONF_UNSET_UINT;
    mlcf->identity_verdicts = NGX_CONF_UNSET_UINT;
    mlcf->identity_zone = NGX_CONF_UNSET_PTR;
    mlcf->store_authenticate = NGX_CONF_UNSET;
    mlcf->plist_max_nodes = NGX_CONF_UNSET_UINT;
    mlcf->result_ttl = NGX_CONF_UNSET;
    mlcf->events_max = NGX_CONF_UNSET;
    mlcf->reenroll = NGX_CONF_UNSET_UINT;
    ngx_http_mdm_enroll_create_conf(&mlcf->enroll);

    mlcf->scep = ngx_http_mdm_scep_create_conf(cf);
    if (mlcf->scep == NULL) {
        return NULL;
    }

    mlcf->dep_proxy_timeout = NGX_CONF_UNSET_MSEC;
    mlcf->vpp_timeout = NGX_CONF_UNSET_MSEC;

    return mlcf;
}


char *
ngx_http_mdm_merge_loc_conf(ngx_conf_t *cf, void *parent, void *child)
{
    ngx_http_mdm_loc_conf_t *prev = parent;
    ngx_http_mdm_loc_conf_t *conf = child;

    ngx_str_t                        name;
    ngx_http_mdm_identity_source_t  *src;
    ngx_http_mdm_main_conf_t        *mmcf;

    /* the handler is per location: mdm_checkin is not inherited */
    ngx_conf_init_value(conf->checkin, 0);

    if (conf->identity == NGX_CONF_UNSET_PTR) {
        if (prev->identity != NGX_CONF_UNSET_PTR) {
            conf->identity = prev->identity;

        } else {
            /* devices sign their messages unless the profile says not to */
            conf->identity = ngx_array_create(cf->pool, 1,
                                   sizeof(ngx_http_mdm_identity_source_t));
            src = conf->identity ? ngx_array_push(conf->identity) : NULL;
            if (src == NULL) {
                return NGX_CONF_ERROR;
            }

            src->type = NGX_HTTP_MDM_ID_SIGNATURE;
            ngx_str_null(&src->header);
            src->from = NULL;
        }
    }

    ngx_conf_merge_ptr_value(conf->ca, prev->ca, NULL);
    ngx_conf_merge_sec_value(conf->skew, prev->skew, 300);
    ngx_conf_merge_uint_value(conf->cert_auth, prev->cert_auth,
                              NGX_HTTP_MDM_CERT_AUTH_ON);
    ngx_conf_merge_uint_value(conf->user_authenticate,
                              prev->user_authenticate,
                              NGX_HTTP_MDM_UA_DECLINE);
    ngx_conf_merge_str_value(conf->api_key, prev->api_key, "");
    ngx_conf_merge_uint_value(conf->identity_cache, prev->identity_cache,
                              10000);
    ngx_conf_merge_uint_value(conf->identity_verdicts,
                              prev->identity_verdicts, 100000);
    ngx_conf_merge_value(conf->store_authenticate, prev->store_authenticate,
                         0);
    ngx_conf_merge_uint_value(conf->plist_max_nodes, prev->plist_max_nodes,
                              100000);
    ngx_conf_merge_sec_value(conf->result_ttl, prev->result_ttl, 2592000);
    ngx_conf_merge_value(conf->events_max, prev->events_max, 1000000);
    ngx_conf_merge_uint_value(conf->reenroll, prev->reenroll,
                              NGX_HTTP_MDM_REENROLL_ANY);

    if (ngx_http_mdm_enroll_merge_conf(cf, &prev->enroll, &conf->enroll)
        != NGX_CONF_OK)
    {
        return NGX_CONF_ERROR;
    }

    if (ngx_http_mdm_scep_merge_conf(cf, prev->scep, conf->scep)
        != NGX_CONF_OK)
    {
        return NGX_CONF_ERROR;
    }

    if (ngx_http_mdm_api_dep_merge_conf(cf, prev, conf) != NGX_CONF_OK) {
        return NGX_CONF_ERROR;
    }

    if (ngx_http_mdm_api_vpp_merge_conf(cf, prev, conf) != NGX_CONF_OK) {
        return NGX_CONF_ERROR;
    }

    if (conf->events_max < 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "mdm_events_max must be 0 (no cap) or more");
        return NGX_CONF_ERROR;
    }

    mmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_mdm_module);

    /*
     * Verdicts are shared by the workers unless "verdicts=" keeps them per
     * worker: in the zone named, or the default one (README)
     */
    ngx_conf_merge_ptr_value(conf->identity_zone, prev->identity_zone,
                             NGX_CONF_UNSET_PTR);

    if (conf->identity_zone == NGX_CONF_UNSET_PTR) {
        conf->identity_zone = NULL;

        if (mmcf->configured) {
            ngx_str_set(&name, NGX_HTTP_MDM_FASTSIG_SHM_NAME);

            conf->identity_zone = ngx_http_mdm_fastsig_shm_add(cf, &name,
                                            NGX_HTTP_MDM_FASTSIG_SHM_SIZE);
            if (conf->identity_zone == NULL) {
                return NGX_CONF_ERROR;
            }
        }
    }

    /*
     * One cache per worker, as large as the largest device location wants:
     * the levels above them only pass their settings down.
     */
    if (conf->checkin) {
        mmcf->identity_cache = ngx_max(mmcf->identity_cache,
                                       conf->identity_cache);
    }

    if (conf->checkin && conf->identity_cache && conf->identity_zone == NULL) {
        mmcf->identity_verdicts = ngx_max(mmcf->identity_verdicts,
                                          conf->identity_verdicts);
    }

    if (conf->api && !mmcf->configured) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "mdm_api needs \"mdm_redis\" in http{}");
        return NGX_CONF_ERROR;
    }

    if (!conf->checkin) {
        return NGX_CONF_OK;
    }

    if (!mmcf->configured) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "mdm_checkin, mdm_connect and mdm_server need "
                           "\"mdm_redis\" in http{}");
        return NGX_CONF_ERROR;
    }

    if (conf->identity->nelts && conf->ca == NULL) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "mdm_checkin, mdm_connect and mdm_server need "
                           "\"mdm_identity_ca\" to verify devices (or "
                           "\"mdm_identity off\")");
        return NGX_CONF_ERROR;
    }

    if (conf->identity->nelts == 0) {
        if (conf->cert_auth != NGX_HTTP_MDM_CERT_AUTH_OFF) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "\"mdm_identity off\" needs "
                               "\"mdm_cert_auth off\": there is no "
                               "certificate to bind");
            return NGX_CONF_ERROR;
        }

        ngx_conf_log_error(NGX_LOG_WARN, cf, 0,
                           "device requests without device identity: any "
                           "client can act as any device");
    }

    return NGX_CONF_OK;
}
