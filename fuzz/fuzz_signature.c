
/*
 * Copyright (C) ngx_mdm contributors
 *
 * Target "signature": the whole Mdm-Signature identity as a request goes
 * through it, ngx_http_mdm_identity_verify() with mdm_identity signature
 * and the certificate cache on: the base64 header, the fast path, and on
 * its NGX_DECLINED the full path (ngx_http_mdm_identity_source.c's CMS
 * parse and ngx_http_mdm_identity.c's chain check), which stores what it
 * accepts for the fast path of the next inputs.
 *
 * Input as for "fastsig" (2 bytes body length, body, DER); when the top
 * bit of the length is set, the rest goes into the header as it is, not
 * base64-encoded, so the decoder sees any bytes too.
 *
 * Differential: an accepted request must be a signature that OpenSSL's
 * CMS_verify() accepts with the test CA over the same body, of one
 * detached signer, whose certificate is the one the module reports and
 * one of the two of fuzz/pki.  The other way round (OpenSSL accepts, the
 * module refuses: the module's skew rule on signingTime and its
 * client-auth purpose are stricter) is counted, printed at exit.
 */


#include "fuzz_request.h"
#include "ngx_http_mdm_identity.h"
#include "ngx_http_mdm_fastsig.h"

#include <openssl/cms.h>
#include <openssl/err.h>


static ngx_http_mdm_loc_conf_t          mlcf;
static ngx_http_mdm_ca_t                ca;
static ngx_array_t                      sources;
static ngx_http_mdm_identity_source_t   source;
static u_char                           known[2][64];
static uint64_t                         runs, accepted, ref_ok, stricter;


static void
fuzz_report(void)
{
    fprintf(stderr, "signature: %llu inputs, module accepted %llu, OpenSSL "
            "accepted %llu, refused by the module only %llu\n",
            (unsigned long long) runs, (unsigned long long) accepted,
            (unsigned long long) ref_ok, (unsigned long long) stricter);
}


int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
    int            i;
    X509          *x;
    u_char         md[32];
    unsigned int   n;
    const char    *names[] = { "rsa.pem", "ec.pem" };

    ngx_shim_init();
    fuzz_conf_defaults(&mlcf);
    fuzz_ca_init(&ca);

    source.type = NGX_HTTP_MDM_ID_SIGNATURE;
    sources.elts = &source;
    sources.nelts = 1;
    sources.size = sizeof(ngx_http_mdm_identity_source_t);
    sources.nalloc = 1;

    mlcf.ca = &ca;
    mlcf.identity = &sources;
    mlcf.identity_cache = 1;
    mlcf.identity_verdicts = 16;

    fuzz_check(ngx_http_mdm_fastsig_init((ngx_cycle_t *) ngx_cycle, 1, 16)
               == NGX_OK);

    for (i = 0; i < 2; i++) {
        x = fuzz_pki_cert(names[i]);
        fuzz_check(X509_digest(x, EVP_sha256(), md, &n) == 1);
        ngx_hex_dump(known[i], md, n);
        X509_free(x);
    }

    atexit(fuzz_report);

    return 0;
}


/* OpenSSL's own verdict: 1 accepted, one detached signer, hex set */

static int
fuzz_openssl(ngx_str_t *der, ngx_str_t *body, u_char *hex)
{
    int                        ok;
    BIO                       *content, *mem;
    u_char                     md[32];
    unsigned int               n;
    const u_char              *q;
    CMS_ContentInfo           *cms;
    STACK_OF(X509)            *signers;
    STACK_OF(CMS_SignerInfo)  *sis;

    q = der->data;
    cms = d2i_CMS_ContentInfo(NULL, &q, (long) der->len);
    if (cms == NULL) {
        return 0;
    }

    sis = CMS_get0_SignerInfos(cms);

    ok = OBJ_obj2nid(CMS_get0_type(cms)) == NID_pkcs7_signed
         && CMS_is_detached(cms)
         && sis != NULL && sk_CMS_SignerInfo_num(sis) == 1;

    if (ok) {
        content = BIO_new(BIO_f_null());
        mem = BIO_new_mem_buf(body->data, (int) body->len);
        fuzz_check(content && mem);
        BIO_push(content, mem);

        ok = CMS_verify(cms, NULL, ca.store, content, NULL, CMS_BINARY) == 1;

        BIO_free_all(content);
    }

    if (ok) {
        signers = CMS_get0_signers(cms);
        fuzz_check(signers != NULL && sk_X509_num(signers) == 1);
        fuzz_check(X509_digest(sk_X509_value(signers, 0), EVP_sha256(), md,
                               &n) == 1);
        ngx_hex_dump(hex, md, n);
        sk_X509_free(signers);
    }

    CMS_ContentInfo_free(cms);

    return ok;
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int                       ref;
    size_t                    blen;
    u_char                    hex[64];
    ngx_int_t                 rc;
    ngx_str_t                 body, der, value;
    ngx_uint_t                raw;
    const char               *reason;
    ngx_http_request_t       *r;
    ngx_http_mdm_identity_t   id;

    if (size < 2) {
        return 0;
    }

    raw = data[0] & 0x80;
    blen = ((data[0] & 0x7f) << 8) | data[1];
    if (blen > size - 2) {
        blen = size - 2;
    }

    r = fuzz_request(&mlcf);
    runs++;

    body.len = blen;
    body.data = fuzz_copy(r->pool, data + 2, blen);
    der.len = size - 2 - blen;
    der.data = fuzz_copy(r->pool, data + 2 + blen, der.len);

    if (raw) {
        value = der;

    } else {
        /* EVP_EncodeBlock() writes a NUL after the text */
        value.data = ngx_pnalloc(r->pool,
                                 ngx_base64_encoded_length(der.len) + 1);
        fuzz_check(value.data != NULL);
        value.len = EVP_EncodeBlock(value.data, der.data, (int) der.len);
        /* the exact size, for AddressSanitizer */
        value.data = fuzz_copy(r->pool, value.data, value.len);
    }

    fuzz_check(fuzz_header(r, "mdm-signature", value.data, value.len)
               == NGX_OK);

    ngx_memzero(&id, sizeof(ngx_http_mdm_identity_t));
    reason = NULL;

    rc = ngx_http_mdm_identity_verify(r, &mlcf, &body, &id, &reason);
    ERR_clear_error();

    fuzz_check(rc == NGX_OK || rc == NGX_DECLINED || rc == NGX_ERROR);

    ref = raw ? 0 : fuzz_openssl(&der, &body, hex);
    ERR_clear_error();
    ref_ok += ref;

    if (rc == NGX_DECLINED) {
        fuzz_check(reason != NULL);
    }

    if (rc == NGX_OK) {
        accepted++;

        if (raw || !ref || ngx_memcmp(hex, id.sha256, 64) != 0
            || (ngx_memcmp(id.sha256, known[0], 64) != 0
                && ngx_memcmp(id.sha256, known[1], 64) != 0))
        {
            fprintf(stderr, "signature: DIFFERENTIAL MISMATCH: the module "
                    "accepted (%s, certificate %.64s), OpenSSL %s\n",
                    id.source, id.sha256, ref ? "named another signer"
                                              : "rejected");
            abort();
        }

    } else if (ref) {
        stricter++;
    }

    fuzz_request_done(r);

    return 0;
}
