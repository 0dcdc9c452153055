
/*
 * Copyright (C) ngx_mdm contributors
 *
 * Target "scep": a SCEP PKIOperation body (RFC 8894 pkiMessage: a
 * SignedData around an EnvelopedData around a PKCS#10 request) through the
 * module's two steps, ngx_http_mdm_scep_decode() (verify, decrypt, parse)
 * and, for what it decoded, ngx_http_mdm_scep_reply() (issue or refuse,
 * build the CertRep), with the test CA of t/vectors/scep/micromdm-scep that
 * can decrypt its PKCSReq.der.
 */


#include "fuzz_request.h"
#include "ngx_http_mdm_scep_pki.h"

#include <openssl/err.h>
#include <openssl/pem.h>


static ngx_http_mdm_scep_keys_t  keys;
static time_t                    now;
static uint64_t                  runs, decoded, failed, issued;


static void
fuzz_report(void)
{
    fprintf(stderr, "scep: %llu inputs, decoded %llu, CertRep FAILURE %llu, "
            "issued %llu\n", (unsigned long long) runs,
            (unsigned long long) decoded, (unsigned long long) failed,
            (unsigned long long) issued);
}


int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
    FILE  *f;

    ngx_shim_init();

    f = fopen(FUZZ_VECTORS "/scep/micromdm-scep/testca/ca.pem", "r");
    fuzz_check(f != NULL);
    keys.ca_cert = PEM_read_X509(f, NULL, NULL, NULL);
    fclose(f);

    f = fopen(FUZZ_VECTORS "/scep/micromdm-scep/testca/ca.key", "r");
    fuzz_check(f != NULL);
    /* encrypted with an empty passphrase */
    keys.ca_key = PEM_read_PrivateKey(f, NULL, NULL, (void *) "");
    fclose(f);

    fuzz_check(keys.ca_cert && keys.ca_key);
    fuzz_check(ngx_http_mdm_scep_pki_init() == 0);

    /* the vectors' CA expired in 2026: the CA's clock is a day into it */
    now = fuzz_asn1_time(X509_get0_notBefore(keys.ca_cert)) + 86400;

    atexit(fuzz_report);

    return 0;
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    unsigned char            *der;
    ngx_http_mdm_scep_job_t   job;

    runs++;

    /* exactly size bytes, for AddressSanitizer */
    der = malloc(size ? size : 1);
    fuzz_check(der != NULL);
    if (size) {
        memcpy(der, data, size);
    }

    memset(&job, 0, sizeof(job));
    job.keys = &keys;
    job.der = der;
    job.der_len = size;
    job.now = now;
    job.validity = 86400;
    job.serial = 2;

    ngx_http_mdm_scep_decode(&job);

    fuzz_check(job.status == NGX_HTTP_MDM_SCEP_OK
               || job.status == NGX_HTTP_MDM_SCEP_MALFORMED
               || job.status == NGX_HTTP_MDM_SCEP_FAIL
               || job.status == NGX_HTTP_MDM_SCEP_ERROR);

    if (job.status != NGX_HTTP_MDM_SCEP_OK) {
        fuzz_check(job.reason != NULL);

        if (getenv("FUZZ_VERBOSE")) {
            fprintf(stderr, "scep: status %d: %s\n", job.status, job.reason);
        }
    }

    fuzz_check(strlen(job.txid) <= NGX_HTTP_MDM_SCEP_TXID_MAX
               && job.nonce_len <= NGX_HTTP_MDM_SCEP_NONCE_MAX
               && job.challenge_len <= NGX_HTTP_MDM_SCEP_CHALLENGE_MAX
               && strlen(job.subject) <= NGX_HTTP_MDM_SCEP_SUBJECT_MAX);

    if (job.status == NGX_HTTP_MDM_SCEP_OK) {
        decoded++;
        fuzz_check(job.csr != NULL && job.signer != NULL);
    }

    /* what the module answers: a CertRep for OK and FAIL */
    if (job.status == NGX_HTTP_MDM_SCEP_OK
        || job.status == NGX_HTTP_MDM_SCEP_FAIL)
    {
        failed += (job.status == NGX_HTTP_MDM_SCEP_FAIL);

        ngx_http_mdm_scep_reply(&job);

        if (job.status != NGX_HTTP_MDM_SCEP_ERROR) {
            fuzz_check(job.reply != NULL && job.reply_len > 0);
            issued += (job.status == NGX_HTTP_MDM_SCEP_OK);
        }
    }

    ngx_http_mdm_scep_job_free(&job);
    free(der);
    ERR_clear_error();

    return 0;
}
