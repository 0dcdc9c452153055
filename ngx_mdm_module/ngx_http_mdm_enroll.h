
/*
 * Copyright (C) ngx_mdm contributors
 */


#ifndef _NGX_HTTP_MDM_ENROLL_H_INCLUDED_
#define _NGX_HTTP_MDM_ENROLL_H_INCLUDED_


#include "ngx_http_mdm_module.h"

#include <openssl/evp.h>


#define NGX_HTTP_MDM_PROFILE_TYPE  "application/x-apple-aspen-config"

struct ngx_http_mdm_enroll_signer_s {
    X509                       *cert;
    EVP_PKEY                   *key;
    STACK_OF(X509)             *chain;       /* the rest of CERT's file */
};


/* what a generated profile is made of, besides the configuration */
typedef struct {
    ngx_str_t                   topic;
    ngx_str_t                   challenge;   /* one-time, or the static one */
    ngx_str_t                   scheme;      /* for the default URLs */
    ngx_str_t                   host;
    ngx_uint_t                  nosign;      /* for InstallProfile */
} ngx_http_mdm_profile_in_t;


/* mdm_enroll: GET a profile; POST (or GET with device info) for ADE */
ngx_int_t ngx_http_mdm_enroll_handler(ngx_http_request_t *r);

/* create and merge for the mdm_enroll_* part of the location conf */
void ngx_http_mdm_enroll_create_conf(ngx_http_mdm_enroll_conf_t *conf);
char *ngx_http_mdm_enroll_merge_conf(ngx_conf_t *cf,
    ngx_http_mdm_enroll_conf_t *prev, ngx_http_mdm_enroll_conf_t *conf);

char *ngx_http_mdm_enroll_directive(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
char *ngx_http_mdm_enroll_sign_directive(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
char *ngx_http_mdm_enroll_ca_cert_directive(ngx_conf_t *cf,
    ngx_command_t *cmd, void *conf);
char *ngx_http_mdm_enroll_device_ca_directive(ngx_conf_t *cf,
    ngx_command_t *cmd, void *conf);

/* thread-safe CMS signing: DER into *out (OPENSSL_malloc), length or -1 */
int ngx_http_mdm_enroll_sign_der(ngx_http_mdm_enroll_signer_t *signer,
    u_char *data, size_t len, u_char **out);

/* a random (version 4) UUID, upper case, NUL-terminated, into buf[37] */
ngx_int_t ngx_http_mdm_enroll_uuid(u_char *buf);

/*
 * The profile (XML plist, then CMS SignedData with mdm_enroll_sign), built
 * with libplist into the pool.  *reason says what failed.
 */
ngx_int_t ngx_http_mdm_enroll_profile(ngx_pool_t *pool, ngx_log_t *log,
    ngx_http_mdm_enroll_conf_t *ecf, ngx_http_mdm_profile_in_t *in,
    ngx_str_t *out);

/* the renewal endpoint of the admin API: POST /v1/renew/ID[,ID...] */
#define NGX_HTTP_MDM_RENEW_MAX_IDS  100

/*
 * ADE: the MachineInfo plist of a CMS SignedData (attached) verified
 * against mdm_enroll_device_ca, parsed by the hardened parser.  NGX_OK,
 * NGX_DECLINED with *reason (a 400), NGX_ERROR.
 */
ngx_int_t ngx_http_mdm_enroll_machineinfo(ngx_http_request_t *r,
    ngx_http_mdm_enroll_conf_t *ecf, ngx_str_t *der, plist_t *out,
    const char **reason);


#endif /* _NGX_HTTP_MDM_ENROLL_H_INCLUDED_ */
