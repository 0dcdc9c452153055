
/*
 * Copyright (C) ngx_mdm contributors
 */


#ifndef _NGX_HTTP_MDM_SCEP_H_INCLUDED_
#define _NGX_HTTP_MDM_SCEP_H_INCLUDED_


#include "ngx_http_mdm_module.h"
#include "ngx_http_mdm_scep_pki.h"


/* a certificate and its key, as one directive names them */
typedef struct {
    X509                        *cert;
    EVP_PKEY                    *key;
} ngx_http_mdm_scep_pair_t;


/* what the SCEP directives set; mlcf->scep points here */
typedef struct {
    ngx_flag_t                   enabled;     /* mdm_scep */
    ngx_http_mdm_scep_pair_t    *ca;          /* mdm_scep_ca */
    ngx_http_mdm_scep_pair_t    *ra;          /* mdm_scep_ra */
    time_t                       validity;    /* mdm_scep_validity */
    ngx_str_t                    challenge;   /* mdm_scep_challenge(_file) */
    time_t                       challenge_ttl; /* mdm_scep_challenge_ttl */
    ngx_str_t                    pool_name;   /* mdm_scep_thread_pool */
    ngx_uint_t                   min_rsa_bits; /* mdm_scep_min_rsa_bits */
    ngx_flag_t                   challenge_required;
                                 /* mdm_scep_challenge_required */
    ngx_uint_t                   concurrency; /* mdm_scep_concurrency */
    ngx_uint_t                   queue;       /* mdm_scep_queue */

    /* made at merge, for a location with mdm_scep */
    ngx_http_mdm_scep_keys_t    *keys;
    ngx_str_t                    cacert;      /* the GetCACert answer */
    void                        *thread_pool; /* NULL: in the worker */
} ngx_http_mdm_scep_conf_t;


void *ngx_http_mdm_scep_create_conf(ngx_conf_t *cf);
char *ngx_http_mdm_scep_merge_conf(ngx_conf_t *cf,
    ngx_http_mdm_scep_conf_t *prev, ngx_http_mdm_scep_conf_t *conf);

/* directive handlers: conf is the module's loc conf */
char *ngx_http_mdm_scep_directive(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
char *ngx_http_mdm_scep_pair_directive(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
char *ngx_http_mdm_scep_sec_slot(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
char *ngx_http_mdm_scep_str_slot(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
char *ngx_http_mdm_scep_num_slot(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
char *ngx_http_mdm_scep_flag_slot(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
char *ngx_http_mdm_scep_challenge_file(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);

ngx_int_t ngx_http_mdm_scep_handler(ngx_http_request_t *r);

/* a fresh one-time challenge (contract E1): 32 random bytes, base64url */
ngx_int_t ngx_http_mdm_challenge_new(ngx_http_request_t *r, ngx_str_t *out);


#endif /* _NGX_HTTP_MDM_SCEP_H_INCLUDED_ */
