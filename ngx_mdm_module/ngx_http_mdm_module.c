
/*
 * Copyright (C) ngx_mdm contributors
 *
 * ngx_http_mdm_module: an Apple MDM server inside nginx.  This file holds
 * the directives, the configuration and the process hooks; the work is in
 * the files named after it.
 */


#include "ngx_http_mdm_module.h"
#include "ngx_http_mdm_redis.h"
#include "ngx_http_mdm_metrics.h"
#include "ngx_http_mdm_scripts.h"
#include "ngx_http_mdm_checkin.h"
#include "ngx_http_mdm_asset.h"
#include "ngx_http_mdm_connect.h"
#include "ngx_http_mdm_api.h"
#include "ngx_http_mdm_identity.h"
#include "ngx_http_mdm_variables.h"
#include "ngx_http_mdm_fastsig.h"
#include "ngx_http_mdm_fastsig_shm.h"
#include "ngx_http_mdm_enroll.h"
#include "ngx_http_mdm_scep.h"


static ngx_int_t ngx_http_mdm_preconfiguration(ngx_conf_t *cf);
static ngx_int_t ngx_http_mdm_postconfiguration(ngx_conf_t *cf);
static void *ngx_http_mdm_create_main_conf(ngx_conf_t *cf);
static char *ngx_http_mdm_init_main_conf(ngx_conf_t *cf, void *conf);
static void *ngx_http_mdm_create_loc_conf(ngx_conf_t *cf);
static char *ngx_http_mdm_merge_loc_conf(ngx_conf_t *cf, void *parent,
    void *child);
static char *ngx_http_mdm_handler_directive(ngx_conf_t *cf,
    ngx_command_t *cmd, void *conf);
static char *ngx_http_mdm_api(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_mdm_api_key_file(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_mdm_identity_cache(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static ngx_int_t ngx_http_mdm_identity_zone(ngx_conf_t *cf,
    ngx_http_mdm_loc_conf_t *mlcf, ngx_str_t *value);
static char *ngx_http_mdm_plist_max_nodes(ngx_conf_t *cf, void *post,
    void *data);
static ngx_int_t ngx_http_mdm_init_process(ngx_cycle_t *cycle);
static void ngx_http_mdm_exit_process(ngx_cycle_t *cycle);


static ngx_conf_enum_t  ngx_http_mdm_cert_auth_modes[] = {
    { ngx_string("off"), NGX_HTTP_MDM_CERT_AUTH_OFF },
    { ngx_string("on"), NGX_HTTP_MDM_CERT_AUTH_ON },
    { ngx_string("retro"), NGX_HTTP_MDM_CERT_AUTH_RETRO },
    { ngx_null_string, 0 }
};


static ngx_conf_enum_t  ngx_http_mdm_reenroll_modes[] = {
    { ngx_string("any"), NGX_HTTP_MDM_REENROLL_ANY },
    { ngx_string("bound"), NGX_HTTP_MDM_REENROLL_BOUND },
    { ngx_string("unenrolled"), NGX_HTTP_MDM_REENROLL_UNENROLLED },
    { ngx_null_string, 0 }
};


static ngx_conf_enum_t  ngx_http_mdm_user_authenticate_modes[] = {
    { ngx_string("decline"), NGX_HTTP_MDM_UA_DECLINE },
    { ngx_string("allow"), NGX_HTTP_MDM_UA_ALLOW },
    { ngx_null_string, 0 }
};


static ngx_conf_post_handler_pt  ngx_http_mdm_plist_max_nodes_p =
    ngx_http_mdm_plist_max_nodes;


static ngx_command_t  ngx_http_mdm_commands[] = {

    { ngx_string("mdm_metrics"),
      NGX_HTTP_LOC_CONF|NGX_CONF_NOARGS,
      ngx_http_mdm_metrics_directive,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("mdm_redis"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_1MORE,
      ngx_http_mdm_redis_directive,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("mdm_checkin"),
      NGX_HTTP_LOC_CONF|NGX_CONF_NOARGS,
      ngx_http_mdm_handler_directive,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      ngx_http_mdm_checkin_handler },

    { ngx_string("mdm_connect"),
      NGX_HTTP_LOC_CONF|NGX_CONF_NOARGS,
      ngx_http_mdm_handler_directive,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      ngx_http_mdm_connect_handler },

    { ngx_string("mdm_server"),
      NGX_HTTP_LOC_CONF|NGX_CONF_NOARGS,
      ngx_http_mdm_handler_directive,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      ngx_http_mdm_server_handler },

    { ngx_string("mdm_asset"),
      NGX_HTTP_LOC_CONF|NGX_CONF_NOARGS,
      ngx_http_mdm_handler_directive,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      ngx_http_mdm_asset_handler },

    { ngx_string("mdm_api"),
      NGX_HTTP_LOC_CONF|NGX_CONF_NOARGS,
      ngx_http_mdm_api,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("mdm_api_key"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_mdm_loc_conf_t, api_key),
      NULL },

    { ngx_string("mdm_api_key_file"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_mdm_api_key_file,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("mdm_identity"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_1MORE,
      ngx_http_mdm_identity_directive,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("mdm_identity_ca"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_mdm_identity_ca_directive,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("mdm_identity_cache"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE123,
      ngx_http_mdm_identity_cache,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("mdm_plist_max_nodes"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_num_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_mdm_loc_conf_t, plist_max_nodes),
      &ngx_http_mdm_plist_max_nodes_p },

    { ngx_string("mdm_signature_skew"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_sec_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_mdm_loc_conf_t, skew),
      NULL },

    { ngx_string("mdm_cert_auth"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_enum_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_mdm_loc_conf_t, cert_auth),
      &ngx_http_mdm_cert_auth_modes },

    { ngx_string("mdm_store_authenticate"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_FLAG,
      ngx_conf_set_flag_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_mdm_loc_conf_t, store_authenticate),
      NULL },

    { ngx_string("mdm_user_authenticate"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_enum_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_mdm_loc_conf_t, user_authenticate),
      &ngx_http_mdm_user_authenticate_modes },

    { ngx_string("mdm_result_ttl"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_sec_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_mdm_loc_conf_t, result_ttl),
      NULL },

    { ngx_string("mdm_events_max"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_num_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_mdm_loc_conf_t, events_max),
      NULL },

    { ngx_string("mdm_reenroll"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_enum_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_mdm_loc_conf_t, reenroll),
      &ngx_http_mdm_reenroll_modes },

    { ngx_string("mdm_enroll"),
      NGX_HTTP_LOC_CONF|NGX_CONF_NOARGS,
      ngx_http_mdm_enroll_directive,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("mdm_enroll_server_url"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_mdm_loc_conf_t, enroll.server_url),
      NULL },

    { ngx_string("mdm_enroll_checkin_url"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_mdm_loc_conf_t, enroll.checkin_url),
      NULL },

    { ngx_string("mdm_enroll_scep_url"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_mdm_loc_conf_t, enroll.scep_url),
      NULL },

    { ngx_string("mdm_enroll_organization"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_mdm_loc_conf_t, enroll.organization),
      NULL },

    { ngx_string("mdm_enroll_name"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_mdm_loc_conf_t, enroll.name),
      NULL },

    { ngx_string("mdm_enroll_machineinfo_ttl"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_sec_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_mdm_loc_conf_t, enroll.machineinfo_ttl),
      NULL },

    { ngx_string("mdm_enroll_thread_pool"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_mdm_loc_conf_t, enroll.thread_pool_name),
      NULL },

    { ngx_string("mdm_enroll_sign"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE2,
      ngx_http_mdm_enroll_sign_directive,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("mdm_enroll_ca_cert"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_mdm_enroll_ca_cert_directive,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("mdm_enroll_device_ca"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_mdm_enroll_device_ca_directive,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("mdm_scep"),
      NGX_HTTP_LOC_CONF|NGX_CONF_NOARGS,
      ngx_http_mdm_scep_directive,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("mdm_scep_ca"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE2,
      ngx_http_mdm_scep_pair_directive,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_mdm_scep_conf_t, ca),
      NULL },

    { ngx_string("mdm_scep_ra"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE2,
      ngx_http_mdm_scep_pair_directive,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_mdm_scep_conf_t, ra),
      NULL },

    { ngx_string("mdm_scep_validity"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_mdm_scep_sec_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_mdm_scep_conf_t, validity),
      NULL },

    { ngx_string("mdm_scep_challenge"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_mdm_scep_str_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_mdm_scep_conf_t, challenge),
      NULL },

    { ngx_string("mdm_scep_challenge_file"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_mdm_scep_challenge_file,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("mdm_scep_challenge_ttl"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_mdm_scep_sec_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_mdm_scep_conf_t, challenge_ttl),
      NULL },

    { ngx_string("mdm_scep_min_rsa_bits"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_mdm_scep_num_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_mdm_scep_conf_t, min_rsa_bits),
      NULL },

    { ngx_string("mdm_scep_challenge_required"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_FLAG,
      ngx_http_mdm_scep_flag_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_mdm_scep_conf_t, challenge_required),
      NULL },

    { ngx_string("mdm_scep_concurrency"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_mdm_scep_num_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_mdm_scep_conf_t, concurrency),
      NULL },

    { ngx_string("mdm_scep_queue"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_mdm_scep_num_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_mdm_scep_conf_t, queue),
      NULL },

    { ngx_string("mdm_scep_thread_pool"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_mdm_scep_str_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_mdm_scep_conf_t, pool_name),
      NULL },

    { ngx_string("mdm_dep_proxy_timeout"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_msec_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_mdm_loc_conf_t, dep_proxy_timeout),
      NULL },

    { ngx_string("mdm_dep_thread_pool"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_mdm_loc_conf_t, dep_pool_name),
      NULL },

    { ngx_string("mdm_vpp_timeout"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_msec_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_mdm_loc_conf_t, vpp_timeout),
      NULL },

    { ngx_string("mdm_vpp_notify"),
      NGX_HTTP_LOC_CONF|NGX_CONF_NOARGS,
      ngx_http_mdm_vpp_notify_directive,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

      ngx_null_command
};


static ngx_http_module_t  ngx_http_mdm_module_ctx = {
    ngx_http_mdm_preconfiguration,         /* preconfiguration */
    ngx_http_mdm_postconfiguration,        /* postconfiguration */

    ngx_http_mdm_create_main_conf,         /* create main configuration */
    ngx_http_mdm_init_main_conf,           /* init main configuration */

    NULL,                                  /* create server configuration */
    NULL,                                  /* merge server configuration */

    ngx_http_mdm_create_loc_conf,          /* create location configuration */
    ngx_http_mdm_merge_loc_conf            /* merge location configuration */
};


ngx_module_t  ngx_http_mdm_module = {
    NGX_MODULE_V1,
    &ngx_http_mdm_module_ctx,              /* module context */
    ngx_http_mdm_commands,                 /* module directives */
    NGX_HTTP_MODULE,                       /* module type */
    NULL,                                  /* init master */
    NULL,                                  /* init module */
    ngx_http_mdm_init_process,             /* init process */
    NULL,                                  /* init thread */
    NULL,                                  /* exit thread */
    ngx_http_mdm_exit_process,             /* exit process */
    NULL,                                  /* exit master */
    NGX_MODULE_V1_PADDING
};


static ngx_int_t
ngx_http_mdm_preconfiguration(ngx_conf_t *cf)
{
    return ngx_http_mdm_add_variables(cf);
}


static ngx_int_t
ngx_http_mdm_postconfiguration(ngx_conf_t *cf)
{
    if (ngx_http_mdm_metrics_init(cf) != NGX_OK) {
        return NGX_ERROR;
    }

    return ngx_http_mdm_scripts_init(cf->log);
}


static void *
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


static char *
ngx_http_mdm_init_main_conf(ngx_conf_t *cf, void *conf)
{
    ngx_http_mdm_main_conf_t *mmcf = conf;

    ngx_conf_init_msec_value(mmcf->timeout, 1000);

    return ngx_http_mdm_redis_init_conf(cf, mmcf);
}


static void *
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


static char *
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


/* mdm_checkin, mdm_connect, mdm_server: cmd->post is the content handler */

static char *
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


static char *
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

static char *
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

static char *
ngx_http_mdm_plist_max_nodes(ngx_conf_t *cf, void *post, void *data)
{
    ngx_uint_t  *np = data;

    if (*np == 0) {
        return "must be at least 1";
    }

    return NGX_CONF_OK;
}


/* mdm_identity_cache [N] [verdicts=M | zone=NAME:SIZE] | off */

static char *
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


static ngx_int_t
ngx_http_mdm_init_process(ngx_cycle_t *cycle)
{
    ngx_http_mdm_main_conf_t  *mmcf;

    /* cache manager and loader processes never serve devices */
    if (ngx_process == NGX_PROCESS_HELPER) {
        return NGX_OK;
    }

    mmcf = ngx_http_cycle_get_module_main_conf(cycle, ngx_http_mdm_module);

    if (mmcf && mmcf->configured
        && ngx_http_mdm_fastsig_init(cycle, mmcf->identity_cache,
                                     mmcf->identity_verdicts)
           != NGX_OK)
    {
        return NGX_ERROR;
    }

    return ngx_http_mdm_redis_init_process(cycle);
}


static void
ngx_http_mdm_exit_process(ngx_cycle_t *cycle)
{
    ngx_http_mdm_redis_exit_process(cycle);
    ngx_http_mdm_fastsig_exit();
}
