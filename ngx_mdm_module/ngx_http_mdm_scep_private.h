
/*
 * Copyright (C) ngx_mdm contributors
 *
 * What the SCEP request flow (ngx_http_mdm_scep.c) and its thread-pool
 * scheduling (ngx_http_mdm_scep_task.c) share.
 */


#ifndef _NGX_HTTP_MDM_SCEP_PRIVATE_H_INCLUDED_
#define _NGX_HTTP_MDM_SCEP_PRIVATE_H_INCLUDED_


#include "ngx_http_mdm_scep.h"


typedef struct ngx_http_mdm_scep_req_s  ngx_http_mdm_scep_req_t;

typedef void (*ngx_http_mdm_scep_step_pt)(ngx_http_mdm_scep_job_t *job);
typedef void (*ngx_http_mdm_scep_next_pt)(ngx_http_request_t *r,
    ngx_http_mdm_scep_req_t *sr);

struct ngx_http_mdm_scep_req_s {
    ngx_http_mdm_scep_job_t      job;
    ngx_http_mdm_scep_step_pt    step;
    ngx_http_mdm_scep_next_pt    next;
    ngx_http_request_t          *request;
    ngx_uint_t                   onetime;   /* a one-time challenge used */
#if (NGX_THREADS)
    ngx_queue_t                  queue;     /* waiting for a task slot */
    unsigned                     queued:1;
    unsigned                     started:1; /* a step has run: it goes on */
#endif
};


/* ngx_http_mdm_scep_task.c */
ngx_int_t ngx_http_mdm_scep_post(ngx_http_request_t *r,
    ngx_http_mdm_scep_req_t *sr, ngx_http_mdm_scep_step_pt step,
    ngx_http_mdm_scep_next_pt next);
#if (NGX_THREADS)
void ngx_http_mdm_scep_wait_cleanup(void *data);
#endif


#endif /* _NGX_HTTP_MDM_SCEP_PRIVATE_H_INCLUDED_ */
