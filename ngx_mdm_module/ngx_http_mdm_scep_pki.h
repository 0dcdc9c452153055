
/*
 * Copyright (C) ngx_mdm contributors
 */


#ifndef _NGX_HTTP_MDM_SCEP_PKI_H_INCLUDED_
#define _NGX_HTTP_MDM_SCEP_PKI_H_INCLUDED_


/*
 * The OpenSSL side of the SCEP CA.  Nothing here touches nginx: the two
 * steps run in a thread pool, so they use only the job and OpenSSL's heap.
 */

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <openssl/cms.h>
#include <openssl/x509.h>


/* job->status */
#define NGX_HTTP_MDM_SCEP_OK         0
#define NGX_HTTP_MDM_SCEP_MALFORMED  1   /* 400: nothing to answer to */
#define NGX_HTTP_MDM_SCEP_FAIL       2   /* CertRep FAILURE, fail_info */
#define NGX_HTTP_MDM_SCEP_ERROR      3   /* 500: our side failed */

/* failInfo, RFC 8894 section 3.2.1.4.5 */
#define NGX_HTTP_MDM_SCEP_BAD_ALG            0
#define NGX_HTTP_MDM_SCEP_BAD_MESSAGE_CHECK  1
#define NGX_HTTP_MDM_SCEP_BAD_REQUEST        2
#define NGX_HTTP_MDM_SCEP_BAD_TIME           3
#define NGX_HTTP_MDM_SCEP_BAD_CERT_ID        4

#define NGX_HTTP_MDM_SCEP_TXID_MAX       128
#define NGX_HTTP_MDM_SCEP_NONCE_MAX      64
#define NGX_HTTP_MDM_SCEP_CHALLENGE_MAX  255
#define NGX_HTTP_MDM_SCEP_SUBJECT_MAX    512


typedef struct {
    X509                    *ca_cert;
    EVP_PKEY                *ca_key;
    X509                    *ra_cert;    /* NULL: the CA answers itself */
    EVP_PKEY                *ra_key;
} ngx_http_mdm_scep_keys_t;


typedef struct {
    /* in */
    const ngx_http_mdm_scep_keys_t  *keys;
    const unsigned char     *der;        /* the pkiMessage */
    size_t                   der_len;
    time_t                   now;
    time_t                   validity;   /* seconds */
    int                      min_rsa_bits; /* smaller device keys: badAlg */
    uint64_t                 serial;     /* from Redis, before issuing */

    /* what decoding found */
    int                      status;
    int                      fail_info;
    const char              *reason;     /* static text, for the log */
    char                     txid[NGX_HTTP_MDM_SCEP_TXID_MAX + 1];
    unsigned char            nonce[NGX_HTTP_MDM_SCEP_NONCE_MAX];
    size_t                   nonce_len;
    const EVP_MD            *md;         /* the request's digest */
    const EVP_CIPHER        *cipher;     /* the request's envelope cipher */
    X509                    *signer;
    X509_REQ                *csr;
    char                     challenge[NGX_HTTP_MDM_SCEP_CHALLENGE_MAX + 1];
    size_t                   challenge_len;
    char                     subject[NGX_HTTP_MDM_SCEP_SUBJECT_MAX + 1];

    /* what issuing made */
    unsigned char           *reply;      /* DER CertRep, OPENSSL_malloc'ed */
    size_t                   reply_len;
    char                     sha256[65]; /* of the issued certificate */
    time_t                   not_after;

    /* scratch of the thread: how long the private-key work took */
    double                   ms;
} ngx_http_mdm_scep_job_t;


/* once per process, before any job: the SCEP attribute OIDs */
int ngx_http_mdm_scep_pki_init(void);
/* once per successful init, when that configuration is freed */
void ngx_http_mdm_scep_pki_done(void);

/* step 1: verify, decrypt, parse the request (any thread) */
void ngx_http_mdm_scep_decode(ngx_http_mdm_scep_job_t *job);

/*
 * step 2: issue when status is OK (serial set), then build the CertRep for
 * the status (SUCCESS or FAILURE); an internal failure sets status ERROR
 */
void ngx_http_mdm_scep_reply(ngx_http_mdm_scep_job_t *job);

void ngx_http_mdm_scep_job_free(ngx_http_mdm_scep_job_t *job);

/* the GetCACert answer: the CA's DER, or CA and RA as degenerate SignedData */
int ngx_http_mdm_scep_cacert(const ngx_http_mdm_scep_keys_t *keys,
    unsigned char **der, size_t *len);


#endif /* _NGX_HTTP_MDM_SCEP_PKI_H_INCLUDED_ */
