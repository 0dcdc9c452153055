
/*
 * Copyright (C) ngx_mdm contributors
 *
 * ngx_http_mdm_module: an Apple MDM server inside nginx.  This file holds
 * the module's definition: the directive table, the configuration and
 * process hooks nginx calls.  The configuration itself is in
 * ngx_http_mdm_module_conf.c, the directives' own handlers in
 * ngx_http_mdm_directives.c; the work is in the files named after it.
 */


#include "ngx_http_mdm_module.h"
#include "ngx_http_mdm_module_conf.h"
#include "ngx_http_mdm_directives.h"
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
