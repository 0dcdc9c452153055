
/*
 * Copyright (C) ngx_mdm contributors
 *
 * The SCEP CA's requests (RFC 8894): GetCACaps, GetCACert and PKIOperation
 * (POST, or GET with the message in the query).  A PKCSReq goes
 *
 *   decode (thread) -> Redis: consume the challenge, take a serial
 *   -> issue and sign (thread) -> Redis: record the certificate -> answer
 *
 * The private-key work runs in nginx's thread pool so a burst of
 * enrollments does not stall the devices served by the same worker; the
 * scheduling of those tasks is in ngx_http_mdm_scep_task.c.
 */


#include "ngx_http_mdm_scep_private.h"
#include "ngx_http_mdm_redis.h"
#include "ngx_http_mdm_request.h"
#include "ngx_http_mdm_response.h"
#include "ngx_http_mdm_scripts.h"
#include "ngx_http_mdm_util.h"

#include <openssl/crypto.h>
#include <openssl/rand.h>


/* RFC 8894 section 3.5.2; SHA-1 and DES3 for older Apple clients */
#define NGX_HTTP_MDM_SCEP_CAPS                                               \
    "POSTPKIOperation\nSHA-1\nSHA-256\nSHA-512\nAES\nDES3\nSCEPStandard\n"

#define NGX_HTTP_MDM_SCEP_PKI_TYPE  "application/x-pki-message"

/* how long a record outlives its certificate (contract E2) */
#define NGX_HTTP_MDM_SCEP_KEEP  (30 * 86400)


static ngx_int_t ngx_http_mdm_scep_get_message(ngx_http_request_t *r,
    ngx_str_t *der);
static void ngx_http_mdm_scep_body(ngx_http_request_t *r);
static ngx_int_t ngx_http_mdm_scep_start(ngx_http_request_t *r,
    ngx_str_t *der);
static void ngx_http_mdm_scep_job_cleanup(void *data);
static void ngx_http_mdm_scep_decoded(ngx_http_request_t *r,
    ngx_http_mdm_scep_req_t *sr);
static void ngx_http_mdm_scep_issued(ngx_http_request_t *r,
    redisReply *reply, const char *err);
static void ngx_http_mdm_scep_replied(ngx_http_request_t *r,
    ngx_http_mdm_scep_req_t *sr);
static void ngx_http_mdm_scep_recorded(ngx_http_request_t *r,
    redisReply *reply, const char *err);
static ngx_int_t ngx_http_mdm_scep_fail(ngx_http_request_t *r,
    ngx_http_mdm_scep_req_t *sr, int info, const char *reason);
static ngx_int_t ngx_http_mdm_scep_refuse(ngx_http_request_t *r,
    ngx_uint_t status, const char *reason);
static ngx_int_t ngx_http_mdm_scep_send_reply(ngx_http_request_t *r,
    ngx_http_mdm_scep_req_t *sr);
static ngx_http_mdm_scep_req_t *ngx_http_mdm_scep_get(ngx_http_request_t *r);


static const char  *ngx_http_mdm_scep_fail_names[] = {
    "badAlg", "badMessageCheck", "badRequest", "badTime", "badCertId"
};


ngx_int_t
ngx_http_mdm_scep_handler(ngx_http_request_t *r)
{
    ngx_int_t                  rc;
    ngx_str_t                  op, der, caps;
    ngx_http_mdm_loc_conf_t   *mlcf;
    ngx_http_mdm_scep_conf_t  *scf;

    mlcf = ngx_http_get_module_loc_conf(r, ngx_http_mdm_module);
    scf = mlcf->scep;

    if (!(r->method & (NGX_HTTP_GET|NGX_HTTP_POST))) {
        return ngx_http_mdm_scep_refuse(r, NGX_HTTP_NOT_ALLOWED,
                                        "method is not GET or POST");
    }

    if (ngx_http_arg(r, (u_char *) "operation", 9, &op) != NGX_OK) {
        return ngx_http_mdm_scep_refuse(r, NGX_HTTP_BAD_REQUEST,
                                        "no \"operation\" argument");
    }

    if (op.len == 12 && ngx_strncmp(op.data, "PKIOperation", 12) == 0) {

        if (r->method == NGX_HTTP_POST) {
            rc = ngx_http_read_client_request_body(r, ngx_http_mdm_scep_body);

            if (rc >= NGX_HTTP_SPECIAL_RESPONSE) {
                return rc;
            }

            return NGX_DONE;
        }

        rc = ngx_http_discard_request_body(r);
        if (rc != NGX_OK) {
            return rc;
        }

        rc = ngx_http_mdm_scep_get_message(r, &der);
        if (rc != NGX_OK) {
            return rc;
        }

        /* as reading a body would: the steps below finalize once */
        r->main->count++;

        rc = ngx_http_mdm_scep_start(r, &der);
        if (rc != NGX_DONE) {
            ngx_http_finalize_request(r, rc);
        }

        return NGX_DONE;
    }

    rc = ngx_http_discard_request_body(r);
    if (rc != NGX_OK) {
        return rc;
    }

    if (op.len == 9 && ngx_strncmp(op.data, "GetCACaps", 9) == 0) {
        ngx_str_set(&caps, NGX_HTTP_MDM_SCEP_CAPS);
        return ngx_http_mdm_send(r, NGX_HTTP_OK, "text/plain", &caps);
    }

    /* "message" names a CA; there is one */
    if (op.len == 9 && ngx_strncmp(op.data, "GetCACert", 9) == 0) {
        return ngx_http_mdm_send(r, NGX_HTTP_OK,
                                 scf->ra ? "application/x-x509-ca-ra-cert"
                                         : "application/x-x509-ca-cert",
                                 &scf->cacert);
    }

    return ngx_http_mdm_scep_refuse(r, NGX_HTTP_BAD_REQUEST,
                                    "unknown \"operation\"");
}


/*
 * GET ...&message=BASE64: only %XX escapes are undone.  macOS sends "+"
 * and "/" literally, so "+" is not a space here; line breaks some clients
 * put into long base64 are dropped.
 */

static ngx_int_t
ngx_http_mdm_scep_get_message(ngx_http_request_t *r, ngx_str_t *der)
{
    u_char     *p, *q, *last;
    ngx_str_t   arg, b64;

    if (ngx_http_arg(r, (u_char *) "message", 7, &arg) != NGX_OK
        || arg.len == 0)
    {
        return ngx_http_mdm_scep_refuse(r, NGX_HTTP_BAD_REQUEST,
                                        "PKIOperation without a message");
    }

    /* plus 0: a "+" of the base64 stays a "+" */
    if (ngx_http_mdm_unescape(r->pool, &arg, &b64, 0) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    last = b64.data + b64.len;

    for (p = b64.data, q = b64.data; p < last; p++) {
        if (*p != '\r' && *p != '\n') {
            *q++ = *p;
        }
    }

    b64.len = q - b64.data;

    der->data = ngx_pnalloc(r->pool, ngx_base64_decoded_length(b64.len));
    if (der->data == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (ngx_decode_base64(der, &b64) != NGX_OK || der->len == 0) {
        return ngx_http_mdm_scep_refuse(r, NGX_HTTP_BAD_REQUEST,
                                        "the message is not base64");
    }

    return NGX_OK;
}


static void
ngx_http_mdm_scep_body(ngx_http_request_t *r)
{
    ngx_int_t  rc;
    ngx_str_t  der;

    rc = ngx_http_mdm_request_body(r, &der);

    if (rc == NGX_OK) {
        rc = ngx_http_mdm_scep_start(r, &der);

    } else {
        rc = ngx_http_mdm_scep_refuse(r, rc == NGX_DECLINED
                                         ? NGX_HTTP_BAD_REQUEST
                                         : NGX_HTTP_INTERNAL_SERVER_ERROR,
                                      rc == NGX_DECLINED
                                         ? "empty body"
                                         : "cannot read the body");
    }

    if (rc != NGX_DONE) {
        ngx_http_finalize_request(r, rc);
    }
}


/* returns NGX_DONE when the steps run (they finalize), or a status */

static ngx_int_t
ngx_http_mdm_scep_start(ngx_http_request_t *r, ngx_str_t *der)
{
    ngx_http_mdm_ctx_t        *ctx;
    ngx_pool_cleanup_t        *cln;
    ngx_http_mdm_scep_req_t   *sr;
    ngx_http_mdm_loc_conf_t   *mlcf;
    ngx_http_mdm_scep_conf_t  *scf;

    mlcf = ngx_http_get_module_loc_conf(r, ngx_http_mdm_module);
    scf = mlcf->scep;

    /* the module's ctx, so that $mdm_* variables work here too */
    ctx = ngx_pcalloc(r->pool, sizeof(ngx_http_mdm_ctx_t));
    sr = ngx_pcalloc(r->pool, sizeof(ngx_http_mdm_scep_req_t));
    cln = ngx_pool_cleanup_add(r->pool, 0);

    if (ctx == NULL || sr == NULL || cln == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_str_set(&ctx->message_type, "PKIOperation");
    ctx->scep = sr;
    ngx_http_set_ctx(r, ctx, ngx_http_mdm_module);

    sr->request = r;
    sr->job.keys = scf->keys;
    sr->job.der = der->data;
    sr->job.der_len = der->len;
    sr->job.now = ngx_time();
    sr->job.validity = scf->validity;
    sr->job.min_rsa_bits = (int) scf->min_rsa_bits;

    cln->handler = ngx_http_mdm_scep_job_cleanup;
    cln->data = &sr->job;

#if (NGX_THREADS)
    /* a request freed while it waits leaves the wait queue */
    cln = ngx_pool_cleanup_add(r->pool, 0);
    if (cln == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    cln->handler = ngx_http_mdm_scep_wait_cleanup;
    cln->data = sr;
#endif

    return ngx_http_mdm_scep_post(r, sr, ngx_http_mdm_scep_decode,
                                  ngx_http_mdm_scep_decoded);
}


static void
ngx_http_mdm_scep_job_cleanup(void *data)
{
    ngx_http_mdm_scep_job_free(data);
}


static ngx_http_mdm_scep_req_t *
ngx_http_mdm_scep_get(ngx_http_request_t *r)
{
    ngx_http_mdm_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_mdm_module);

    return ctx->scep;
}


/* the request is read: refuse, answer a FAILURE, or go to Redis */

static void
ngx_http_mdm_scep_decoded(ngx_http_request_t *r, ngx_http_mdm_scep_req_t *sr)
{
    ngx_int_t                  rc;
    ngx_str_t                 *a;
    ngx_array_t               *args;
    ngx_http_mdm_scep_job_t   *job;
    ngx_http_mdm_loc_conf_t   *mlcf;
    ngx_http_mdm_scep_conf_t  *scf;

    mlcf = ngx_http_get_module_loc_conf(r, ngx_http_mdm_module);
    scf = mlcf->scep;
    job = &sr->job;

    switch (job->status) {

    case NGX_HTTP_MDM_SCEP_MALFORMED:
        rc = ngx_http_mdm_scep_refuse(r, NGX_HTTP_BAD_REQUEST, job->reason);
        goto finalize;

    case NGX_HTTP_MDM_SCEP_ERROR:
        rc = ngx_http_mdm_scep_refuse(r, NGX_HTTP_INTERNAL_SERVER_ERROR,
                                      job->reason);
        goto finalize;

    case NGX_HTTP_MDM_SCEP_FAIL:
        rc = ngx_http_mdm_scep_post(r, sr, ngx_http_mdm_scep_reply,
                                    ngx_http_mdm_scep_replied);
        goto finalize;
    }

    /* the static challenge, in constant time; else a one-time one */
    if (scf->challenge.len && job->challenge_len == scf->challenge.len
        && CRYPTO_memcmp(job->challenge, scf->challenge.data,
                         scf->challenge.len) == 0)
    {
        sr->onetime = 0;

    } else if (job->challenge_len) {
        sr->onetime = 1;

    } else if (!scf->challenge_required) {
        /* mdm_scep_challenge_required off: nginx's access rules vouch */
        sr->onetime = 0;

    } else {
        rc = ngx_http_mdm_scep_fail(r, sr, NGX_HTTP_MDM_SCEP_BAD_REQUEST,
                                    "no challengePassword");
        goto finalize;
    }

    args = ngx_array_create(r->pool, 4, sizeof(ngx_str_t));
    a = args ? ngx_array_push_n(args, 4) : NULL;
    if (a == NULL) {
        rc = NGX_HTTP_INTERNAL_SERVER_ERROR;
        goto finalize;
    }

    /* KEYS: the challenge, the serial counter; ARGV: "issue", consume */
    if (sr->onetime) {
        a[0].len = sizeof(MDM_KEY_SCEP_CHALLENGE) - 1 + job->challenge_len;
        a[0].data = ngx_pnalloc(r->pool, a[0].len);
        if (a[0].data == NULL) {
            rc = NGX_HTTP_INTERNAL_SERVER_ERROR;
            goto finalize;
        }

        ngx_sprintf(a[0].data, MDM_KEY_SCEP_CHALLENGE "%s", job->challenge);

    } else {
        ngx_str_set(&a[0], MDM_KEY_SCEP_SERIAL);
    }

    ngx_str_set(&a[1], MDM_KEY_SCEP_SERIAL);
    ngx_str_set(&a[2], "issue");

    if (sr->onetime) {
        ngx_str_set(&a[3], "1");
    } else {
        ngx_str_set(&a[3], "0");
    }

    rc = ngx_http_mdm_redis_eval(r, NGX_HTTP_MDM_SCRIPT_SCEP, 2, args,
                                 ngx_http_mdm_scep_issued);

    if (rc == NGX_DECLINED) {
        rc = ngx_http_mdm_scep_refuse(r, NGX_HTTP_SERVICE_UNAVAILABLE,
                                      "redis is not connected");

    } else if (rc != NGX_OK) {
        rc = NGX_HTTP_INTERNAL_SERVER_ERROR;

    } else {
        return;
    }

finalize:

    if (rc != NGX_DONE) {
        ngx_http_finalize_request(r, rc);
    }
}


/* {"ok", serial} or {"err", "challenge"} */

static void
ngx_http_mdm_scep_issued(ngx_http_request_t *r, redisReply *reply,
    const char *err)
{
    off_t                     serial;
    ngx_int_t                 rc;
    redisReply               *e;
    ngx_http_mdm_scep_req_t  *sr;

    sr = ngx_http_mdm_scep_get(r);

    if (reply == NULL || reply->type != REDIS_REPLY_ARRAY
        || reply->elements != 2
        || reply->element[0]->type != REDIS_REPLY_STRING
        || reply->element[1]->type != REDIS_REPLY_STRING)
    {
        rc = ngx_http_mdm_scep_refuse(r, NGX_HTTP_SERVICE_UNAVAILABLE,
                                      err ? err : "unexpected redis reply");
        ngx_http_finalize_request(r, rc);
        return;
    }

    e = reply->element[1];

    if (reply->element[0]->len == 3
        && ngx_strncmp(reply->element[0]->str, "err", 3) == 0)
    {
        rc = ngx_http_mdm_scep_fail(r, sr, NGX_HTTP_MDM_SCEP_BAD_REQUEST,
                                    "wrong, used or expired challenge");
        if (rc != NGX_DONE) {
            ngx_http_finalize_request(r, rc);
        }

        return;
    }

    serial = ngx_atoof((u_char *) e->str, e->len);
    if (serial <= 0) {
        rc = ngx_http_mdm_scep_refuse(r, NGX_HTTP_INTERNAL_SERVER_ERROR,
                                      "mdm:scep:serial is not a number");
        ngx_http_finalize_request(r, rc);
        return;
    }

    sr->job.serial = (uint64_t) serial;

    rc = ngx_http_mdm_scep_post(r, sr, ngx_http_mdm_scep_reply,
                                ngx_http_mdm_scep_replied);
    if (rc != NGX_DONE) {
        ngx_http_finalize_request(r, rc);
    }
}


/* a refusal the device hears of as a CertRep FAILURE */

static ngx_int_t
ngx_http_mdm_scep_fail(ngx_http_request_t *r, ngx_http_mdm_scep_req_t *sr,
    int info, const char *reason)
{
    sr->job.status = NGX_HTTP_MDM_SCEP_FAIL;
    sr->job.fail_info = info;
    sr->job.reason = reason;

    return ngx_http_mdm_scep_post(r, sr, ngx_http_mdm_scep_reply,
                                  ngx_http_mdm_scep_replied);
}


/* the CertRep is signed: a FAILURE goes out, a SUCCESS is recorded first */

static void
ngx_http_mdm_scep_replied(ngx_http_request_t *r, ngx_http_mdm_scep_req_t *sr)
{
    u_char                   *p;
    ngx_int_t                 rc;
    ngx_str_t                *a;
    ngx_time_t               *tp;
    ngx_array_t              *args;
    ngx_http_mdm_scep_job_t  *job;

    job = &sr->job;

    if (job->status == NGX_HTTP_MDM_SCEP_ERROR) {
        rc = ngx_http_mdm_scep_refuse(r, NGX_HTTP_INTERNAL_SERVER_ERROR,
                                      job->reason);
        ngx_http_finalize_request(r, rc);
        return;
    }

    if (job->status == NGX_HTTP_MDM_SCEP_FAIL) {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "mdm: SCEP PKCSReq refused with a CertRep FAILURE "
                      "(%s): %s, transaction \"%s\", subject \"%s\"",
                      ngx_http_mdm_scep_fail_names[job->fail_info],
                      job->reason, job->txid, job->subject);

        ngx_http_finalize_request(r, ngx_http_mdm_scep_send_reply(r, sr));
        return;
    }

    /*
     * KEYS: the record, the index; ARGV: "record", serial, subject,
     * notAfter (s), sha256, issued at (ms), now (s), kept after notAfter (s)
     */
    args = ngx_array_create(r->pool, 10, sizeof(ngx_str_t));
    a = args ? ngx_array_push_n(args, 10) : NULL;
    p = ngx_pnalloc(r->pool, sizeof(MDM_KEY_SCEP_CERT) + 5 * NGX_OFF_T_LEN);

    if (a == NULL || p == NULL) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    tp = ngx_timeofday();

    a[0].data = p;
    p = ngx_sprintf(p, MDM_KEY_SCEP_CERT "%uL", job->serial);
    a[0].len = p - a[0].data;
    ngx_str_set(&a[1], MDM_KEY_SCEP_CERTS);
    ngx_str_set(&a[2], "record");
    a[3].data = a[0].data + sizeof(MDM_KEY_SCEP_CERT) - 1;
    a[3].len = a[0].len - (sizeof(MDM_KEY_SCEP_CERT) - 1);
    a[4].data = (u_char *) job->subject;
    a[4].len = ngx_strlen(job->subject);
    a[5].data = p;
    p = ngx_sprintf(p, "%T", job->not_after);
    a[5].len = p - a[5].data;
    a[6].data = (u_char *) job->sha256;
    a[6].len = 64;
    a[7].data = p;
    p = ngx_sprintf(p, "%M", (ngx_msec_t) (tp->sec * 1000 + tp->msec));
    a[7].len = p - a[7].data;
    a[8].data = p;
    p = ngx_sprintf(p, "%T", tp->sec);
    a[8].len = p - a[8].data;
    a[9].data = p;
    p = ngx_sprintf(p, "%d", NGX_HTTP_MDM_SCEP_KEEP);
    a[9].len = p - a[9].data;

    rc = ngx_http_mdm_redis_eval(r, NGX_HTTP_MDM_SCRIPT_SCEP, 2, args,
                                 ngx_http_mdm_scep_recorded);

    if (rc == NGX_OK) {
        return;
    }

    rc = (rc == NGX_DECLINED)
         ? ngx_http_mdm_scep_refuse(r, NGX_HTTP_SERVICE_UNAVAILABLE,
                                    "redis is not connected")
         : NGX_HTTP_INTERNAL_SERVER_ERROR;

    ngx_http_finalize_request(r, rc);
}


static void
ngx_http_mdm_scep_recorded(ngx_http_request_t *r, redisReply *reply,
    const char *err)
{
    ngx_int_t                 rc;
    ngx_http_mdm_scep_req_t  *sr;

    sr = ngx_http_mdm_scep_get(r);

    /*
     * Not answered unless recorded: an issued certificate nobody can list
     * or revoke is worse than a device that retries.
     */
    if (reply == NULL || reply->type != REDIS_REPLY_ARRAY
        || reply->elements < 1
        || reply->element[0]->type != REDIS_REPLY_STRING
        || reply->element[0]->len != 2)
    {
        rc = ngx_http_mdm_scep_refuse(r, NGX_HTTP_SERVICE_UNAVAILABLE,
                                      err ? err
                                          : "cannot record the certificate");
        ngx_http_finalize_request(r, rc);
        return;
    }

    ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                  "mdm: SCEP issued serial %uL to \"%s\", transaction "
                  "\"%s\", sha256 %s", sr->job.serial, sr->job.subject,
                  sr->job.txid, sr->job.sha256);

    ngx_http_finalize_request(r, ngx_http_mdm_scep_send_reply(r, sr));
}


static ngx_int_t
ngx_http_mdm_scep_send_reply(ngx_http_request_t *r,
    ngx_http_mdm_scep_req_t *sr)
{
    ngx_str_t  body;

    body.len = sr->job.reply_len;
    body.data = ngx_pnalloc(r->pool, body.len);
    if (body.data == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_memcpy(body.data, sr->job.reply, body.len);

    return ngx_http_mdm_send(r, NGX_HTTP_OK, NGX_HTTP_MDM_SCEP_PKI_TYPE,
                             &body);
}


/* one line, at "error" like every refused device request; the status */

static ngx_int_t
ngx_http_mdm_scep_refuse(ngx_http_request_t *r, ngx_uint_t status,
    const char *reason)
{
    ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                  "mdm: SCEP request refused (%ui): %s", status, reason);

    return status;
}


/* contract E1: 32 random bytes, base64url without padding */

ngx_int_t
ngx_http_mdm_challenge_new(ngx_http_request_t *r, ngx_str_t *out)
{
    u_char     raw[32];
    ngx_str_t  src;

    if (RAND_bytes(raw, sizeof(raw)) != 1) {
        return NGX_ERROR;
    }

    out->data = ngx_pnalloc(r->pool, ngx_base64_encoded_length(sizeof(raw)));
    if (out->data == NULL) {
        return NGX_ERROR;
    }

    src.data = raw;
    src.len = sizeof(raw);

    ngx_encode_base64url(out, &src);

    return NGX_OK;
}
