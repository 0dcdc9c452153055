
/*
 * Copyright (C) ngx_mdm contributors
 *
 * What the two halves of the Redis connection share: its state (one per
 * worker process) and the few connection functions the call path uses.
 */


#ifndef _NGX_HTTP_MDM_REDIS_PRIVATE_H_INCLUDED_
#define _NGX_HTTP_MDM_REDIS_PRIVATE_H_INCLUDED_


#include "ngx_http_mdm_redis.h"
#include "ngx_http_mdm_scripts.h"

#include <hiredis/async.h>


typedef struct ngx_http_mdm_redis_ticket_s  ngx_http_mdm_redis_ticket_t;

/* one call of a request; lives in r->pool */
typedef struct {
    ngx_http_request_t             *request;
    ngx_http_mdm_redis_done_pt      done;
    ngx_http_mdm_redis_ticket_t    *ticket;
    ngx_event_t                     timer;
    int                             argc;
    const char                    **argv;
    size_t                         *argvlen;
    ngx_uint_t                      script;
    redisReply                     *held;    /* the reply, awaiting WAIT */
    ngx_queue_t                     wq;      /* in wait_next or wait_sent */
    unsigned                        waiting:1;
    ngx_msec_t                      started; /* for the metrics */
    unsigned                        retried:1;
} ngx_http_mdm_redis_op_t;


/*
 * hiredis's privdata.  It is on the heap because the reply may arrive after
 * the request pool is gone: the request and hiredis each hold one reference,
 * and "op" is NULL once the request no longer waits for the reply.
 */
struct ngx_http_mdm_redis_ticket_s {
    ngx_http_mdm_redis_op_t        *op;
    ngx_uint_t                      refs;
    ngx_http_mdm_redis_ticket_t    *next;   /* in the free list */
};

typedef struct {
    redisAsyncContext              *ac;
    ngx_http_mdm_main_conf_t       *conf;
    ngx_log_t                      *log;
    ngx_event_t                     reconnect;
    ngx_event_t                     connect_timer;
    ngx_msec_t                      backoff;
    ngx_uint_t                      setup_pending; /* AUTH, SELECT replies */
    unsigned                        connected:1;
    unsigned                        setup_failed:1;
    unsigned                        exiting:1;
    unsigned                        down_logged:1;
    unsigned                        unusable_logged:1;
    unsigned                        draining:1;   /* failover reply seen */
    unsigned                        ready_once:1; /* reconnects count after */
    ngx_resolver_ctx_t             *resolving;
    ngx_uint_t                      next_addr;    /* of a resolved name */
    ngx_http_mdm_redis_ticket_t    *free_tickets;
    ngx_uint_t                      nfree_tickets;
    u_char                         *buf;          /* commands are written */
    size_t                          buf_size;
    redisAsyncContext              *sac;          /* asking a sentinel */
    ngx_event_t                     sentinel_timer;
    ngx_uint_t                      sentinel_next;
    ngx_uint_t                      sentinel_tries;
    u_char                          master[NGX_SOCKADDR_STRLEN + 1];
    ngx_queue_t                     wait_next;    /* held, no WAIT sent yet */
    ngx_queue_t                     wait_sent;    /* held, the WAIT is out */
    unsigned                        wait_out:1;
} ngx_http_mdm_redis_t;


extern ngx_http_mdm_redis_t  ngx_http_mdm_redis;


/* ngx_http_mdm_redis.c */
ngx_uint_t ngx_http_mdm_redis_failover(redisReply *reply);
ngx_str_t *ngx_http_mdm_redis_shown(void);
void ngx_http_mdm_redis_drop(const char *why);
void ngx_http_mdm_redis_lost(const char *why);
void ngx_http_mdm_redis_connect_to(const char *host, in_port_t port);
ngx_int_t ngx_http_mdm_redis_attach(redisAsyncContext *ac);

/* ngx_http_mdm_redis_sentinel.c */
void ngx_http_mdm_redis_sentinel_ask(void);
void ngx_http_mdm_redis_sentinel_timeout(ngx_event_t *ev);
void ngx_http_mdm_redis_sentinel_close(void);

/* ngx_http_mdm_redis_call.c */
void ngx_http_mdm_redis_calls_free(void);
void ngx_http_mdm_redis_finish(ngx_http_mdm_redis_op_t *op,
    redisReply *reply, const char *err);
void ngx_http_mdm_redis_release(ngx_http_mdm_redis_ticket_t *t);

/* ngx_http_mdm_redis_wait.c */
void ngx_http_mdm_redis_wait_init(void);
ngx_int_t ngx_http_mdm_redis_wait_hold(ngx_http_mdm_redis_op_t *op,
    redisReply *reply);
void ngx_http_mdm_redis_wait_forget(ngx_http_mdm_redis_op_t *op);


#endif /* _NGX_HTTP_MDM_REDIS_PRIVATE_H_INCLUDED_ */
