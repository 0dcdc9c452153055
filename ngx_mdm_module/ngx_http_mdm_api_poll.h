
/*
 * Copyright (C) ngx_mdm contributors
 *
 * Waiting for the worker's reply to a job (the DEP proxy's, contract D4;
 * VPP's token and sync jobs, contract V2): nginx never blocks, a timer
 * polls a script operation that GETDELs the reply key, 20 to 50 ms apart
 * (250 ms after 2 s: each poll takes some request memory), until the
 * timeout: 504.
 */


#ifndef _NGX_HTTP_MDM_API_POLL_H_INCLUDED_
#define _NGX_HTTP_MDM_API_POLL_H_INCLUDED_


#include "ngx_http_mdm_api_private.h"


typedef struct ngx_http_mdm_api_poll_s  ngx_http_mdm_api_poll_t;

/* the reply (a Redis string): what to finalize with */
typedef ngx_int_t (*ngx_http_mdm_api_poll_answer_pt)(ngx_http_request_t *r,
    ngx_http_mdm_api_poll_t *pl, redisReply *reply);


/* a waiting call; found again through its pool cleanup */
struct ngx_http_mdm_api_poll_s {
    ngx_http_request_t               *request;
    ngx_event_t                       timer;
    ngx_uint_t                        script;   /* whose op polls */
    const char                       *op;       /* ARGV op, now, "", id:
                                                   {1, reply} or {0} */
    const char                       *kind;     /* "DEP proxy call", logs */
    const char                       *owner;    /* "DEP name", logs */
    const char                       *late;     /* the 504's message */
    const char                       *directive; /* the timeout's, logs */
    ngx_str_t                         name;     /* DEP or VPP name */
    ngx_str_t                         what;     /* "POST /profile", logs */
    u_char                            id[33];   /* the job's, 32 hex */
    ngx_msec_t                        started;
    ngx_msec_t                        timeout;
    ngx_msec_t                        interval;
    ngx_http_mdm_api_poll_answer_pt   answer;
};


/* the request's waiter (made with a fresh random id when create) */
ngx_http_mdm_api_poll_t *ngx_http_mdm_api_poll_state(ngx_http_request_t *r,
    ngx_uint_t create);

/*
 * The done handler of the script call that queued the job: {202, ...}
 * starts the polls, anything else ({status, JSON}) is answered.
 */
void ngx_http_mdm_api_poll_queued(ngx_http_request_t *r, redisReply *reply,
    const char *err);

/* a script's {status, JSON body} answered (any family's) */
ngx_int_t ngx_http_mdm_api_script_reply(ngx_http_request_t *r,
    redisReply *reply, const char *err);


#endif /* _NGX_HTTP_MDM_API_POLL_H_INCLUDED_ */
