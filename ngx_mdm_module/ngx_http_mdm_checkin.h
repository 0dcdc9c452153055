
/*
 * Copyright (C) ngx_mdm contributors
 */


#ifndef _NGX_HTTP_MDM_CHECKIN_H_INCLUDED_
#define _NGX_HTTP_MDM_CHECKIN_H_INCLUDED_


#include "ngx_http_mdm_module.h"

#include <hiredis/hiredis.h>


/* the content handler of mdm_checkin */
ngx_int_t ngx_http_mdm_checkin_handler(ngx_http_request_t *r);

/* a check-in whose body has been read */
ngx_int_t ngx_http_mdm_checkin_process(ngx_http_request_t *r);

/*
 * Appends the retention settings every device script takes after the
 * device argv: mdm_events_max, mdm_result_ttl (seconds).
 */
ngx_int_t ngx_http_mdm_retention_args(ngx_http_request_t *r,
    ngx_array_t *args);

/*
 * A device script's refusal of the device itself, {"err", "blocked"} or
 * {"err", "forbidden", reason}: the status to answer (403, logged once;
 * never 401, which would make the device unenroll), or NGX_DECLINED when
 * the reply is something else.
 */
ngx_int_t ngx_http_mdm_refused(ngx_http_request_t *r,
    ngx_http_mdm_ctx_t *ctx, redisReply *reply);


#endif /* _NGX_HTTP_MDM_CHECKIN_H_INCLUDED_ */
