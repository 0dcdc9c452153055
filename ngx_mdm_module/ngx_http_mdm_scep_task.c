
/*
 * Copyright (C) ngx_mdm contributors
 *
 * The SCEP CA's private-key steps in nginx's thread pool: at most
 * mdm_scep_concurrency tasks per worker, the other requests waiting their
 * turn (mdm_scep_queue), a full queue answered 503 with Retry-After.
 */


#include "ngx_http_mdm_scep_private.h"
#include "ngx_http_mdm_util.h"

#if (NGX_THREADS)
#include <ngx_thread_pool.h>
#endif


#if (NGX_THREADS)

/*
 * This worker's SCEP tasks in the thread pool, at most
 * mdm_scep_concurrency; the requests waiting for one, FIFO, at most
 * mdm_scep_queue new ones (a request already started never waits behind
 * new ones and is never refused: its challenge may be consumed).
 */
static ngx_uint_t   ngx_http_mdm_scep_running;
static ngx_uint_t   ngx_http_mdm_scep_waiting;
static ngx_queue_t  ngx_http_mdm_scep_waitq;

#define NGX_HTTP_MDM_SCEP_RETRY_AFTER  "2"

#endif


#if (NGX_THREADS)
static ngx_int_t ngx_http_mdm_scep_run(ngx_http_request_t *r,
    ngx_http_mdm_scep_req_t *sr);
static ngx_int_t ngx_http_mdm_scep_busy(ngx_http_request_t *r);
static void ngx_http_mdm_scep_dispatch(void);
static void ngx_http_mdm_scep_thread(void *data, ngx_log_t *log);
static void ngx_http_mdm_scep_thread_done(ngx_event_t *ev);
#endif


/*
 * Runs step on the job in the thread pool, then next in the worker; when
 * this worker has mdm_scep_concurrency tasks running already, the request
 * waits its turn.  The request is "blocked" while its task runs: nginx
 * does not free it under the thread.  Without a pool, both run here and
 * now.  Returns NGX_DONE or a status.
 */

ngx_int_t
ngx_http_mdm_scep_post(ngx_http_request_t *r, ngx_http_mdm_scep_req_t *sr,
    ngx_http_mdm_scep_step_pt step, ngx_http_mdm_scep_next_pt next)
{
#if (NGX_THREADS)
    ngx_http_mdm_loc_conf_t   *mlcf;
    ngx_http_mdm_scep_conf_t  *scf;
#endif

    sr->step = step;
    sr->next = next;

#if (NGX_THREADS)
    mlcf = ngx_http_get_module_loc_conf(r, ngx_http_mdm_module);
    scf = mlcf->scep;

    if (scf->thread_pool) {
        if (ngx_http_mdm_scep_waitq.next == NULL) {
            ngx_queue_init(&ngx_http_mdm_scep_waitq);
        }

        if (ngx_http_mdm_scep_running < scf->concurrency) {
            return ngx_http_mdm_scep_run(r, sr);
        }

        if (sr->started) {
            /* work already begun goes first, and is never refused */
            ngx_queue_insert_head(&ngx_http_mdm_scep_waitq, &sr->queue);

        } else if (ngx_http_mdm_scep_waiting >= scf->queue) {
            return ngx_http_mdm_scep_busy(r);

        } else {
            ngx_queue_insert_tail(&ngx_http_mdm_scep_waitq, &sr->queue);
        }

        ngx_http_mdm_scep_waiting++;
        sr->queued = 1;

        ngx_log_debug2(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                       "mdm scep: waits, %ui running, %ui waiting",
                       ngx_http_mdm_scep_running, ngx_http_mdm_scep_waiting);

        return NGX_DONE;
    }
#endif

    step(&sr->job);
    next(r, sr);

    return NGX_DONE;
}


#if (NGX_THREADS)

static ngx_int_t
ngx_http_mdm_scep_run(ngx_http_request_t *r, ngx_http_mdm_scep_req_t *sr)
{
    ngx_thread_task_t         *task;
    ngx_http_mdm_loc_conf_t   *mlcf;
    ngx_http_mdm_scep_conf_t  *scf;

    mlcf = ngx_http_get_module_loc_conf(r, ngx_http_mdm_module);
    scf = mlcf->scep;

    task = ngx_thread_task_alloc(r->pool, 0);
    if (task == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    task->ctx = sr;
    task->handler = ngx_http_mdm_scep_thread;
    task->event.data = sr;
    task->event.handler = ngx_http_mdm_scep_thread_done;

    if (ngx_thread_task_post(scf->thread_pool, task) != NGX_OK) {
        /* the pool's queue is full: nginx logged it */
        return NGX_HTTP_SERVICE_UNAVAILABLE;
    }

    ngx_http_mdm_scep_running++;
    sr->started = 1;
    r->main->blocked++;

    return NGX_DONE;
}


/*
 * The wait queue is full: 503 with Retry-After, before anything was
 * consumed.  SCEP clients (Apple's included) retry a failed request; a
 * CertRep FAILURE would instead end the enrollment for good.
 */

static ngx_int_t
ngx_http_mdm_scep_busy(ngx_http_request_t *r)
{
    ngx_table_elt_t  *h;

    h = ngx_list_push(&r->headers_out.headers);
    if (h == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    h->hash = 1;
    ngx_str_set(&h->key, "Retry-After");
    ngx_str_set(&h->value, NGX_HTTP_MDM_SCEP_RETRY_AFTER);

    ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                  "mdm: SCEP request refused (503): busy, %ui private-key "
                  "tasks running and %ui requests waiting in this worker "
                  "(mdm_scep_concurrency, mdm_scep_queue)",
                  ngx_http_mdm_scep_running, ngx_http_mdm_scep_waiting);

    return NGX_HTTP_SERVICE_UNAVAILABLE;
}


/* a task slot is free: the next waiting requests take it */

static void
ngx_http_mdm_scep_dispatch(void)
{
    ngx_int_t                  rc;
    ngx_queue_t               *q;
    ngx_connection_t          *c;
    ngx_http_request_t        *r;
    ngx_http_mdm_loc_conf_t   *mlcf;
    ngx_http_mdm_scep_req_t   *sr;
    ngx_http_mdm_scep_conf_t  *scf;

    while (!ngx_queue_empty(&ngx_http_mdm_scep_waitq)) {
        q = ngx_queue_head(&ngx_http_mdm_scep_waitq);
        sr = ngx_queue_data(q, ngx_http_mdm_scep_req_t, queue);
        r = sr->request;

        mlcf = ngx_http_get_module_loc_conf(r, ngx_http_mdm_module);
        scf = mlcf->scep;

        if (ngx_http_mdm_scep_running >= scf->concurrency) {
            return;
        }

        ngx_queue_remove(q);
        ngx_http_mdm_scep_waiting--;
        sr->queued = 0;

        rc = ngx_http_mdm_scep_run(r, sr);

        if (rc != NGX_DONE) {
            c = r->connection;
            ngx_http_finalize_request(r, rc);
            ngx_http_run_posted_requests(c);
        }
    }
}


void
ngx_http_mdm_scep_wait_cleanup(void *data)
{
    ngx_http_mdm_scep_req_t  *sr = data;

    if (sr->queued) {
        ngx_queue_remove(&sr->queue);
        ngx_http_mdm_scep_waiting--;
        sr->queued = 0;
    }
}


static void
ngx_http_mdm_scep_thread(void *data, ngx_log_t *log)
{
    ngx_http_mdm_scep_req_t  *sr = data;

    sr->step(&sr->job);

    ngx_http_mdm_thread_task_end();
}


static void
ngx_http_mdm_scep_thread_done(ngx_event_t *ev)
{
    ngx_connection_t         *c;
    ngx_http_request_t       *r;
    ngx_http_mdm_scep_req_t  *sr;

    sr = ev->data;
    r = sr->request;
    c = r->connection;

    ngx_http_set_log_request(c->log, r);

    r->main->blocked--;
    ngx_http_mdm_scep_running--;

    /* its next step, if any, runs before those waiting (see _post) */
    sr->next(r, sr);

    ngx_http_run_posted_requests(c);

    ngx_http_mdm_scep_dispatch();
}

#endif
