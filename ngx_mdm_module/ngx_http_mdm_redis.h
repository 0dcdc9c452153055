
/*
 * Copyright (C) ngx_mdm contributors
 */


#ifndef _NGX_HTTP_MDM_REDIS_H_INCLUDED_
#define _NGX_HTTP_MDM_REDIS_H_INCLUDED_


#include "ngx_http_mdm_module.h"

#include <hiredis/hiredis.h>


/*
 * Called exactly once per accepted call: with the reply, or with reply NULL
 * and err naming why Redis failed (timed out, connection lost).  The reply
 * is freed when the handler returns.  The handler finalizes the request;
 * the Redis layer then runs the connection's posted requests.
 */
typedef void (*ngx_http_mdm_redis_done_pt)(ngx_http_request_t *r,
    redisReply *reply, const char *err);


/*
 * Runs script number "script" (ngx_http_mdm_scripts.h) with EVALSHA, falling
 * back to EVAL once on NOSCRIPT.  args holds the keys, then the arguments.
 * Returns NGX_OK when the call is on its way, NGX_DECLINED when Redis is not
 * reachable right now (answer 503 at once), NGX_ERROR on allocation failure.
 */
ngx_int_t ngx_http_mdm_redis_eval(ngx_http_request_t *r, ngx_uint_t script,
    ngx_uint_t nkeys, ngx_array_t *args, ngx_http_mdm_redis_done_pt done);

ngx_int_t ngx_http_mdm_redis_init_process(ngx_cycle_t *cycle);
void ngx_http_mdm_redis_exit_process(ngx_cycle_t *cycle);

/* with the whole http{} block read: how a host name is resolved */
char *ngx_http_mdm_redis_init_conf(ngx_conf_t *cf,
    ngx_http_mdm_main_conf_t *mmcf);

char *ngx_http_mdm_redis_directive(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);


#endif /* _NGX_HTTP_MDM_REDIS_H_INCLUDED_ */
