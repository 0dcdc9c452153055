
/*
 * Copyright (C) ngx_mdm contributors
 */


#ifndef _NGX_HTTP_MDM_MODULE_H_INCLUDED_
#define _NGX_HTTP_MDM_MODULE_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include <openssl/x509.h>
#include <plist/plist.h>

#include "ngx_mdm_keys.h"


#define NGX_HTTP_MDM_VERSION  "0.1.0"

/* where a device certificate may come from (mdm_identity) */
#define NGX_HTTP_MDM_ID_SIGNATURE  1
#define NGX_HTTP_MDM_ID_TLS        2
#define NGX_HTTP_MDM_ID_HEADER     3

/* mdm_cert_auth */
#define NGX_HTTP_MDM_CERT_AUTH_OFF    0
#define NGX_HTTP_MDM_CERT_AUTH_ON     1
#define NGX_HTTP_MDM_CERT_AUTH_RETRO  2

/* mdm_reenroll */
#define NGX_HTTP_MDM_REENROLL_ANY         0
#define NGX_HTTP_MDM_REENROLL_BOUND       1
#define NGX_HTTP_MDM_REENROLL_UNENROLLED  2

/* mdm_user_authenticate */
#define NGX_HTTP_MDM_UA_DECLINE  0
#define NGX_HTTP_MDM_UA_ALLOW    1


typedef struct {
    ngx_uint_t                  type;
    ngx_str_t                   header;      /* lowercased, for type HEADER */
    ngx_array_t                *from;        /* of ngx_cidr_t; NULL: any */
} ngx_http_mdm_identity_source_t;


typedef struct {
    X509_STORE                 *store;       /* trusted roots */
    STACK_OF(X509)             *untrusted;   /* configured intermediates */
    ngx_str_t                   file;
    u_char                      fingerprint[32]; /* SHA-256 of the certs */
} ngx_http_mdm_ca_t;


/* a Sentinel's address: numeric, NUL-terminated for hiredis */
typedef struct {
    ngx_str_t                   host;
    in_port_t                   port;
} ngx_http_mdm_redis_addr_t;


typedef struct {
    ngx_str_t                   host;        /* numeric address, or unix path */
    in_port_t                   port;
    ngx_str_t                   name;        /* a host name given instead */
    ngx_resolver_t             *resolver;    /* resolves it at each connect */
    ngx_msec_t                  resolver_timeout;
    ngx_uint_t                  unix_socket; /* unsigned  unix_socket:1; */
    ngx_uint_t                  db;
    ngx_str_t                   password;
    ngx_msec_t                  timeout;
    ngx_uint_t                  configured;
    ngx_uint_t                  metrics;     /* some location serves them */
    ngx_uint_t                  identity_cache; /* entries, per worker */
    ngx_uint_t                  identity_verdicts;
    ngx_array_t                *identity_zones; /* of ngx_shm_zone_t * */
    ngx_array_t                *sentinels;   /* of ngx_http_mdm_redis_addr_t */
    ngx_str_t                   master_name; /* the sentinels' master */
    ngx_str_t                   sentinel_password;
    ngx_uint_t                  wait_replicas;  /* wait=N: WAIT after calls */
    ngx_msec_t                  wait_timeout;
} ngx_http_mdm_main_conf_t;


/* mdm_enroll and its settings (ngx_http_mdm_enroll.c) */
typedef struct ngx_http_mdm_enroll_signer_s  ngx_http_mdm_enroll_signer_t;

typedef struct {
    ngx_flag_t                  enabled;     /* an mdm_enroll location */
    ngx_str_t                   server_url;
    ngx_str_t                   checkin_url;
    ngx_str_t                   scep_url;
    ngx_str_t                   organization;
    ngx_str_t                   name;
    time_t                      machineinfo_ttl;
    ngx_str_t                  *ca_der;      /* mdm_enroll_ca_cert */
    ngx_http_mdm_enroll_signer_t  *signer;   /* mdm_enroll_sign */
    X509_STORE                 *device_ca;   /* NULL with "off" */
    ngx_int_t                   device_ca_set; /* 0, 1 file, 2 off */
    ngx_str_t                   thread_pool_name;
    void                       *thread_pool; /* ngx_thread_pool_t: signs */
} ngx_http_mdm_enroll_conf_t;


typedef struct {
    ngx_flag_t                  checkin;     /* a device location */
    void                       *handler;     /* its content handler */
    ngx_flag_t                  api;         /* mdm_api */
    ngx_array_t                *identity;    /* of ngx_http_mdm_identity_source_t;
                                                empty array = mdm_identity off */
    ngx_http_mdm_ca_t          *ca;
    time_t                      skew;
    ngx_uint_t                  cert_auth;
    ngx_uint_t                  user_authenticate;
    ngx_str_t                   api_key;     /* mdm_api_key(_file) */
    ngx_uint_t                  identity_cache; /* entries; 0: off */
    ngx_uint_t                  identity_verdicts;
    ngx_shm_zone_t             *identity_zone; /* shared verdicts; NULL:
                                                  private (verdicts=) */
    ngx_flag_t                  store_authenticate;
    ngx_uint_t                  plist_max_nodes;
    time_t                      result_ttl;  /* mdm_result_ttl */
    ngx_int_t                   events_max;  /* mdm_events_max */
    ngx_uint_t                  reenroll;    /* mdm_reenroll */
    ngx_http_mdm_enroll_conf_t  enroll;      /* mdm_enroll_* */
    void                       *scep;        /* ngx_http_mdm_scep_conf_t */
    ngx_msec_t                  dep_proxy_timeout; /* mdm_dep_proxy_timeout */
    ngx_str_t                   dep_pool_name;     /* mdm_dep_thread_pool */
    void                       *dep_thread_pool;   /* NULL: in the worker */
    ngx_msec_t                  vpp_timeout;       /* mdm_vpp_timeout */
} ngx_http_mdm_loc_conf_t;


/* what a request has learnt about the device, for the variables and logs */
typedef struct {
    ngx_str_t                   message_type;
    ngx_str_t                   enrollment_id;
    ngx_str_t                   enrollment_type;
    ngx_str_t                   device_id;   /* device-channel id (hash tag) */
    ngx_str_t                   user_suffix; /* ":<user>" on user channels */
    ngx_str_t                   udid;
    ngx_str_t                   command_uuid; /* of a command report */

    ngx_str_t                   body;
    plist_t                     plist;

    /* the bound identity */
    u_char                      cert_hash[64];
    ngx_uint_t                  has_cert;
    time_t                      cert_not_after;

    void                       *scep;        /* a SCEP PKIOperation's state */
} ngx_http_mdm_ctx_t;


extern ngx_module_t  ngx_http_mdm_module;


#endif /* _NGX_HTTP_MDM_MODULE_H_INCLUDED_ */
