
/*
 * Copyright (C) ngx_mdm contributors
 *
 * SCEP (RFC 8894) messages with OpenSSL: read a PKCSReq (SignedData around
 * an EnvelopedData around a PKCS#10 request), issue the certificate, and
 * write the CertRep.  These functions run in nginx's thread pool: they use
 * nothing of nginx, only the job, the read-only CA keys and OpenSSL.
 */


#include "ngx_http_mdm_scep_pki.h"

#include <string.h>

#include <openssl/err.h>
#include <openssl/pkcs7.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>


/* the signed attributes, under 2.16.840.1.113733.1.9 */
enum {
    SCEP_MESSAGE_TYPE = 0,
    SCEP_PKI_STATUS,
    SCEP_FAIL_INFO,
    SCEP_SENDER_NONCE,
    SCEP_RECIPIENT_NONCE,
    SCEP_TRANSACTION_ID,
    SCEP_NOIDS
};

static const char  *scep_oid_text[SCEP_NOIDS] = {
    "2.16.840.1.113733.1.9.2",
    "2.16.840.1.113733.1.9.3",
    "2.16.840.1.113733.1.9.4",
    "2.16.840.1.113733.1.9.5",
    "2.16.840.1.113733.1.9.6",
    "2.16.840.1.113733.1.9.7",
};

static ASN1_OBJECT  *scep_oid[SCEP_NOIDS];

/* configurations holding the OIDs: a reload's new one comes before the old
 * one goes */
static int           scep_oid_refs;


/* messageType values of requests */
#define SCEP_PKCSREQ  "19"

/* the issued certificate starts a little in the past: device clocks lag */
#define SCEP_BACKDATE  300


static void scep_fail(ngx_http_mdm_scep_job_t *job, int status, int info,
    const char *reason);
static int scep_attributes(ngx_http_mdm_scep_job_t *job, CMS_SignerInfo *si);
static int scep_algorithms(ngx_http_mdm_scep_job_t *job, CMS_SignerInfo *si,
    const unsigned char *env, size_t env_len);
static BIO *scep_decrypt(ngx_http_mdm_scep_job_t *job, BIO *env);
static void scep_csr(ngx_http_mdm_scep_job_t *job, BIO *plain);
static X509 *scep_issue(ngx_http_mdm_scep_job_t *job);
static int scep_degenerate(X509 *first, X509 *second, unsigned char **der,
    int *len);
static int scep_certrep(ngx_http_mdm_scep_job_t *job, const unsigned char *env,
    int env_len);


int
ngx_http_mdm_scep_pki_init(void)
{
    int  i;

    for (i = 0; i < SCEP_NOIDS; i++) {
        if (scep_oid[i] == NULL) {
            scep_oid[i] = OBJ_txt2obj(scep_oid_text[i], 1);
            if (scep_oid[i] == NULL) {
                return -1;
            }
        }
    }

    scep_oid_refs++;

    return 0;
}


void
ngx_http_mdm_scep_pki_done(void)
{
    int  i;

    if (--scep_oid_refs > 0) {
        return;
    }

    for (i = 0; i < SCEP_NOIDS; i++) {
        ASN1_OBJECT_free(scep_oid[i]);
        scep_oid[i] = NULL;
    }
}


static void
scep_fail(ngx_http_mdm_scep_job_t *job, int status, int info,
    const char *reason)
{
    job->status = status;
    job->fail_info = info;
    job->reason = reason;
}


/*
 * Step 1.  Order matters for what the answer can be: without a
 * transactionID and a senderNonce there is no CertRep to write (400);
 * with them, every later problem is a CertRep FAILURE.
 */

void
ngx_http_mdm_scep_decode(ngx_http_mdm_scep_job_t *job)
{
    BIO                        *content, *plain;
    STACK_OF(X509)             *signers;
    CMS_ContentInfo            *cms;
    const unsigned char        *p;
    STACK_OF(CMS_SignerInfo)   *sis;

    job->status = NGX_HTTP_MDM_SCEP_OK;
    content = NULL;
    plain = NULL;

    p = job->der;
    cms = d2i_CMS_ContentInfo(NULL, &p, (long) job->der_len);

    if (cms == NULL || p != job->der + job->der_len
        || OBJ_obj2nid(CMS_get0_type(cms)) != NID_pkcs7_signed)
    {
        scep_fail(job, NGX_HTTP_MDM_SCEP_MALFORMED, 0,
                  "not a CMS SignedData message");
        goto done;
    }

    sis = CMS_get0_SignerInfos(cms);
    if (sis == NULL || sk_CMS_SignerInfo_num(sis) != 1) {
        scep_fail(job, NGX_HTTP_MDM_SCEP_MALFORMED, 0,
                  "not exactly one signer");
        goto done;
    }

    if (scep_attributes(job, sk_CMS_SignerInfo_value(sis, 0)) != 0) {
        goto done;
    }

    content = BIO_new(BIO_s_mem());
    if (content == NULL) {
        scep_fail(job, NGX_HTTP_MDM_SCEP_ERROR, 0, "out of memory");
        goto done;
    }

    /*
     * The signer of a PKCSReq is a throw-away self-signed certificate:
     * the signature proves the message is whole, not who sent it (the
     * challenge does that).
     */
    if (CMS_verify(cms, NULL, NULL, NULL, content,
                   CMS_NO_SIGNER_CERT_VERIFY | CMS_BINARY) != 1)
    {
        scep_fail(job, NGX_HTTP_MDM_SCEP_FAIL,
                  NGX_HTTP_MDM_SCEP_BAD_MESSAGE_CHECK,
                  "the message signature does not verify");
        goto done;
    }

    signers = CMS_get0_signers(cms);
    if (signers == NULL || sk_X509_num(signers) != 1) {
        sk_X509_free(signers);
        scep_fail(job, NGX_HTTP_MDM_SCEP_FAIL,
                  NGX_HTTP_MDM_SCEP_BAD_MESSAGE_CHECK,
                  "no signer certificate");
        goto done;
    }

    job->signer = sk_X509_value(signers, 0);
    X509_up_ref(job->signer);
    sk_X509_free(signers);

    {
        char  *data;
        long   n;

        n = BIO_get_mem_data(content, &data);

        if (scep_algorithms(job, sk_CMS_SignerInfo_value(sis, 0),
                            (unsigned char *) data, n > 0 ? n : 0)
            != 0)
        {
            goto done;
        }
    }

    plain = scep_decrypt(job, content);
    if (plain == NULL) {
        goto done;
    }

    scep_csr(job, plain);

done:

    BIO_free(plain);
    BIO_free(content);
    CMS_ContentInfo_free(cms);
    ERR_clear_error();
}


/* messageType, transactionID, senderNonce: all three, single-valued */

static int
scep_attributes(ngx_http_mdm_scep_job_t *job, CMS_SignerInfo *si)
{
    int           i;
    ASN1_STRING  *type, *txid, *nonce;

    type = CMS_signed_get0_data_by_OBJ(si, scep_oid[SCEP_MESSAGE_TYPE], -3,
                                       V_ASN1_PRINTABLESTRING);
    txid = CMS_signed_get0_data_by_OBJ(si, scep_oid[SCEP_TRANSACTION_ID], -3,
                                       V_ASN1_PRINTABLESTRING);
    nonce = CMS_signed_get0_data_by_OBJ(si, scep_oid[SCEP_SENDER_NONCE], -3,
                                        V_ASN1_OCTET_STRING);

    if (type == NULL || txid == NULL || nonce == NULL) {
        scep_fail(job, NGX_HTTP_MDM_SCEP_MALFORMED, 0,
                  "no messageType, transactionID or senderNonce");
        return -1;
    }

    if (ASN1_STRING_length(txid) < 1
        || ASN1_STRING_length(txid) > NGX_HTTP_MDM_SCEP_TXID_MAX
        || ASN1_STRING_length(nonce) < 8
        || ASN1_STRING_length(nonce) > NGX_HTTP_MDM_SCEP_NONCE_MAX)
    {
        scep_fail(job, NGX_HTTP_MDM_SCEP_MALFORMED, 0,
                  "transactionID or senderNonce of a bad size");
        return -1;
    }

    memcpy(job->txid, ASN1_STRING_get0_data(txid), ASN1_STRING_length(txid));
    job->txid[ASN1_STRING_length(txid)] = '\0';

    /* it goes into the log and back: printable ASCII only */
    for (i = 0; job->txid[i]; i++) {
        if (job->txid[i] < 0x20 || job->txid[i] > 0x7e) {
            break;
        }
    }

    if (i != ASN1_STRING_length(txid)) {
        scep_fail(job, NGX_HTTP_MDM_SCEP_MALFORMED, 0,
                  "transactionID is not printable ASCII");
        return -1;
    }

    job->nonce_len = ASN1_STRING_length(nonce);
    memcpy(job->nonce, ASN1_STRING_get0_data(nonce), job->nonce_len);

    /* answered with the request's digest, known good for this client */
    job->md = EVP_sha256();

    if (ASN1_STRING_length(type) != 2
        || memcmp(ASN1_STRING_get0_data(type), SCEP_PKCSREQ, 2) != 0)
    {
        scep_fail(job, NGX_HTTP_MDM_SCEP_FAIL, NGX_HTTP_MDM_SCEP_BAD_REQUEST,
                  "messageType is not PKCSReq (19)");
        return -1;
    }

    return 0;
}


/* the request's digest and envelope cipher, which the answer reuses */

static int
scep_algorithms(ngx_http_mdm_scep_job_t *job, CMS_SignerInfo *si,
    const unsigned char *env, size_t env_len)
{
    int                   nid;
    PKCS7                *p7;
    X509_ALGOR           *dig;
    const unsigned char  *p;

    CMS_SignerInfo_get0_algs(si, NULL, NULL, &dig, NULL);

    nid = dig ? OBJ_obj2nid(dig->algorithm) : NID_undef;

    switch (nid) {
    case NID_sha1:
    case NID_sha256:
    case NID_sha384:
    case NID_sha512:
        job->md = EVP_get_digestbynid(nid);
        break;
    default:
        scep_fail(job, NGX_HTTP_MDM_SCEP_FAIL, NGX_HTTP_MDM_SCEP_BAD_ALG,
                  "unsupported digest");
        return -1;
    }

    /*
     * CMS has no getter for the content-encryption algorithm; PKCS7's
     * structures are public.
     */
    p = env;
    p7 = d2i_PKCS7(NULL, &p, (long) env_len);

    if (p7 == NULL || !PKCS7_type_is_enveloped(p7)
        || p7->d.enveloped == NULL || p7->d.enveloped->enc_data == NULL
        || p7->d.enveloped->enc_data->algorithm == NULL)
    {
        PKCS7_free(p7);
        scep_fail(job, NGX_HTTP_MDM_SCEP_FAIL,
                  NGX_HTTP_MDM_SCEP_BAD_MESSAGE_CHECK,
                  "the signed content is not an EnvelopedData");
        return -1;
    }

    nid = OBJ_obj2nid(p7->d.enveloped->enc_data->algorithm->algorithm);
    PKCS7_free(p7);

    switch (nid) {
    case NID_aes_128_cbc:
    case NID_aes_192_cbc:
    case NID_aes_256_cbc:
    case NID_des_ede3_cbc:
        job->cipher = EVP_get_cipherbynid(nid);
        break;
    default:
        job->cipher = NULL;
    }

    if (job->cipher == NULL) {
        scep_fail(job, NGX_HTTP_MDM_SCEP_FAIL, NGX_HTTP_MDM_SCEP_BAD_ALG,
                  "unsupported envelope cipher (AES-CBC or DES3 only)");
        return -1;
    }

    return 0;
}


/* to the RA when there is one (clients encrypt to it), else the CA */

static BIO *
scep_decrypt(ngx_http_mdm_scep_job_t *job, BIO *content)
{
    BIO                             *plain;
    CMS_ContentInfo                 *env;
    const ngx_http_mdm_scep_keys_t  *k;

    k = job->keys;

    env = d2i_CMS_bio(content, NULL);
    plain = BIO_new(BIO_s_mem());

    if (env == NULL || plain == NULL) {
        CMS_ContentInfo_free(env);
        BIO_free(plain);
        scep_fail(job, NGX_HTTP_MDM_SCEP_FAIL,
                  NGX_HTTP_MDM_SCEP_BAD_MESSAGE_CHECK,
                  "cannot read the EnvelopedData");
        return NULL;
    }

    if ((k->ra_cert == NULL
         || CMS_decrypt(env, k->ra_key, k->ra_cert, NULL, plain, CMS_BINARY)
            != 1)
        && CMS_decrypt(env, k->ca_key, k->ca_cert, NULL, plain, CMS_BINARY)
           != 1)
    {
        CMS_ContentInfo_free(env);
        BIO_free(plain);
        scep_fail(job, NGX_HTTP_MDM_SCEP_FAIL,
                  NGX_HTTP_MDM_SCEP_BAD_MESSAGE_CHECK,
                  "cannot decrypt the envelope with the CA (or RA) key");
        return NULL;
    }

    CMS_ContentInfo_free(env);

    return plain;
}


static void
scep_csr(ngx_http_mdm_scep_job_t *job, BIO *plain)
{
    int              i, bits;
    BIO             *b;
    char            *data;
    long             n;
    EVP_PKEY        *pub;
    X509_NAME       *name;
    ASN1_TYPE       *t;
    X509_ATTRIBUTE  *attr;

    job->csr = d2i_X509_REQ_bio(plain, NULL);
    if (job->csr == NULL) {
        scep_fail(job, NGX_HTTP_MDM_SCEP_FAIL, NGX_HTTP_MDM_SCEP_BAD_REQUEST,
                  "the envelope holds no PKCS#10 request");
        return;
    }

    /* the subject first: every later refusal names it in the log */
    name = X509_REQ_get_subject_name(job->csr);
    b = BIO_new(BIO_s_mem());

    if (b && X509_NAME_print_ex(b, name, 0, XN_FLAG_RFC2253) >= 0) {
        n = BIO_get_mem_data(b, &data);
        n = n > NGX_HTTP_MDM_SCEP_SUBJECT_MAX ? NGX_HTTP_MDM_SCEP_SUBJECT_MAX
                                              : n;
        memcpy(job->subject, data, n > 0 ? n : 0);
        job->subject[n > 0 ? n : 0] = '\0';
    }

    BIO_free(b);

    pub = X509_REQ_get0_pubkey(job->csr);

    if (pub == NULL || X509_REQ_verify(job->csr, pub) != 1) {
        scep_fail(job, NGX_HTTP_MDM_SCEP_FAIL,
                  NGX_HTTP_MDM_SCEP_BAD_MESSAGE_CHECK,
                  "the certificate request's signature does not verify");
        return;
    }

    if (X509_cmp_time(X509_get0_notAfter(job->keys->ca_cert), &job->now)
        < 0)
    {
        scep_fail(job, NGX_HTTP_MDM_SCEP_FAIL, NGX_HTTP_MDM_SCEP_BAD_REQUEST,
                  "the CA certificate has expired");
        return;
    }

    bits = EVP_PKEY_get_bits(pub);

    if (EVP_PKEY_get_base_id(pub) == EVP_PKEY_RSA
        ? bits < job->min_rsa_bits
        : (EVP_PKEY_get_base_id(pub) != EVP_PKEY_EC || bits < 256))
    {
        scep_fail(job, NGX_HTTP_MDM_SCEP_FAIL, NGX_HTTP_MDM_SCEP_BAD_ALG,
                  "the device key is not RSA of mdm_scep_min_rsa_bits or "
                  "more, nor EC");
        return;
    }

    if (X509_NAME_entry_count(name) == 0) {
        scep_fail(job, NGX_HTTP_MDM_SCEP_FAIL, NGX_HTTP_MDM_SCEP_BAD_REQUEST,
                  "the certificate request has an empty subject");
        return;
    }

    i = X509_REQ_get_attr_by_NID(job->csr, NID_pkcs9_challengePassword, -1);
    if (i < 0) {
        return;
    }

    attr = X509_REQ_get_attr(job->csr, i);
    t = attr ? X509_ATTRIBUTE_get0_type(attr, 0) : NULL;

    if (t == NULL
        || (t->type != V_ASN1_PRINTABLESTRING && t->type != V_ASN1_UTF8STRING
            && t->type != V_ASN1_IA5STRING && t->type != V_ASN1_T61STRING)
        || t->value.asn1_string->length > NGX_HTTP_MDM_SCEP_CHALLENGE_MAX)
    {
        scep_fail(job, NGX_HTTP_MDM_SCEP_FAIL, NGX_HTTP_MDM_SCEP_BAD_REQUEST,
                  "the challengePassword is not a string of up to 255 bytes");
        return;
    }

    job->challenge_len = t->value.asn1_string->length;
    memcpy(job->challenge, t->value.asn1_string->data, job->challenge_len);
    job->challenge[job->challenge_len] = '\0';
}


/* step 2 */

void
ngx_http_mdm_scep_reply(ngx_http_mdm_scep_job_t *job)
{
    int               inner_len, env_len;
    BIO              *in;
    X509             *x;
    unsigned char    *inner, *env;
    STACK_OF(X509)   *recips;
    CMS_ContentInfo  *cms;

    inner = NULL;
    env = NULL;
    env_len = 0;
    x = NULL;
    in = NULL;
    cms = NULL;
    recips = NULL;

    if (job->status == NGX_HTTP_MDM_SCEP_OK) {
        x = scep_issue(job);

        if (x == NULL
            || scep_degenerate(x, NULL, &inner, &inner_len) != 0
            || (in = BIO_new_mem_buf(inner, inner_len)) == NULL
            || (recips = sk_X509_new_null()) == NULL
            || !sk_X509_push(recips, job->signer))
        {
            goto failed;
        }

        /* to the device's throw-away key, with the cipher it chose */
        cms = CMS_encrypt(recips, in, job->cipher, CMS_BINARY);
        if (cms == NULL) {
            goto failed;
        }

        env_len = i2d_CMS_ContentInfo(cms, &env);
        if (env_len <= 0) {
            goto failed;
        }
    }

    if (scep_certrep(job, env, env_len) != 0) {
        goto failed;
    }

    goto done;

failed:

    scep_fail(job, NGX_HTTP_MDM_SCEP_ERROR, 0,
              "cannot issue or sign (OpenSSL failed)");

done:

    sk_X509_free(recips);
    CMS_ContentInfo_free(cms);
    BIO_free(in);
    OPENSSL_free(inner);
    OPENSSL_free(env);
    X509_free(x);
    ERR_clear_error();
}


static X509 *
scep_issue(ngx_http_mdm_scep_job_t *job)
{
    int                        i;
    X509                      *x, *ca;
    time_t                     not_after;
    struct tm                  tm;
    unsigned int               n;
    unsigned char              md[EVP_MAX_MD_SIZE];
    X509V3_CTX                 v3;
    X509_EXTENSION            *ext;
    STACK_OF(X509_EXTENSION)  *exts;

    static const char  *hex = "0123456789abcdef";

    static const struct {
        int          nid;
        const char  *value;
    } add[] = {
        { NID_basic_constraints, "critical,CA:FALSE" },
        { NID_key_usage, "critical,digitalSignature,keyEncipherment" },
        { NID_ext_key_usage, "clientAuth" },
        { NID_subject_key_identifier, "hash" },
        { NID_authority_key_identifier, "keyid" },
    };

    ca = job->keys->ca_cert;

    /* never beyond the CA's own notAfter */
    not_after = job->now + job->validity;

    if (ASN1_TIME_to_tm(X509_get0_notAfter(ca), &tm) == 1
        && timegm(&tm) < not_after)
    {
        not_after = timegm(&tm);
    }

    x = X509_new();

    if (x == NULL
        || !X509_set_version(x, X509_VERSION_3)
        || !ASN1_INTEGER_set_uint64(X509_get_serialNumber(x), job->serial)
        || !X509_set_issuer_name(x, X509_get_subject_name(ca))
        || !X509_set_subject_name(x, X509_REQ_get_subject_name(job->csr))
        || X509_time_adj_ex(X509_getm_notBefore(x), 0, -SCEP_BACKDATE,
                            &job->now) == NULL
        || ASN1_TIME_set(X509_getm_notAfter(x), not_after) == NULL
        || !X509_set_pubkey(x, X509_REQ_get0_pubkey(job->csr)))
    {
        X509_free(x);
        return NULL;
    }

    X509V3_set_ctx(&v3, ca, x, NULL, NULL, 0);

    for (i = 0; i < (int) (sizeof(add) / sizeof(add[0])); i++) {
        ext = X509V3_EXT_conf_nid(NULL, &v3, add[i].nid, add[i].value);

        /* no key identifier in the CA: no authorityKeyIdentifier */
        if (ext == NULL && add[i].nid == NID_authority_key_identifier) {
            ERR_clear_error();
            continue;
        }

        if (ext == NULL || !X509_add_ext(x, ext, -1)) {
            X509_EXTENSION_free(ext);
            X509_free(x);
            return NULL;
        }

        X509_EXTENSION_free(ext);
    }

    /* the names a profile's SubjectAltName asked for */
    exts = X509_REQ_get_extensions(job->csr);

    for (i = 0; i < sk_X509_EXTENSION_num(exts); i++) {
        ext = sk_X509_EXTENSION_value(exts, i);

        if (OBJ_obj2nid(X509_EXTENSION_get_object(ext))
            == NID_subject_alt_name
            && !X509_add_ext(x, ext, -1))
        {
            sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
            X509_free(x);
            return NULL;
        }
    }

    sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);

    if (X509_sign(x, job->keys->ca_key, EVP_sha256()) <= 0
        || X509_digest(x, EVP_sha256(), md, &n) != 1)
    {
        X509_free(x);
        return NULL;
    }

    for (i = 0; i < (int) n; i++) {
        job->sha256[2 * i] = hex[md[i] >> 4];
        job->sha256[2 * i + 1] = hex[md[i] & 0xf];
    }

    job->sha256[2 * n] = '\0';
    job->not_after = not_after;

    return x;
}


/* a certificates-only SignedData (RFC 8894 "degenerate") */

static int
scep_degenerate(X509 *first, X509 *second, unsigned char **der, int *len)
{
    PKCS7  *p7;

    *der = NULL;

    p7 = PKCS7_new();

    if (p7 == NULL
        || !PKCS7_set_type(p7, NID_pkcs7_signed)
        || !PKCS7_content_new(p7, NID_pkcs7_data)
        || !PKCS7_add_certificate(p7, first)
        || (second && !PKCS7_add_certificate(p7, second)))
    {
        PKCS7_free(p7);
        return -1;
    }

    *len = i2d_PKCS7(p7, der);
    PKCS7_free(p7);

    return *len > 0 ? 0 : -1;
}


/*
 * The CertRep: SignedData by the RA (or CA) with the SCEP attributes; a
 * SUCCESS carries the envelope, a FAILURE no content at all.
 */

static int
scep_certrep(ngx_http_mdm_scep_job_t *job, const unsigned char *env,
    int env_len)
{
    int                              ok, len, flags;
    BIO                             *in;
    char                             info[2];
    X509                            *cert;
    EVP_PKEY                        *key;
    unsigned char                    nonce[16], *der;
    CMS_SignerInfo                  *si;
    CMS_ContentInfo                 *cms;
    const char                      *status;
    const ngx_http_mdm_scep_keys_t  *k;

    k = job->keys;
    cert = k->ra_cert ? k->ra_cert : k->ca_cert;
    key = k->ra_cert ? k->ra_key : k->ca_key;

    ok = (job->status == NGX_HTTP_MDM_SCEP_OK);
    status = ok ? "0" : "2";
    flags = CMS_BINARY | CMS_PARTIAL | (ok ? 0 : CMS_DETACHED);

    in = BIO_new_mem_buf(ok ? env : (const unsigned char *) "", ok ? env_len
                                                                   : 0);
    cms = CMS_sign(NULL, NULL, NULL, NULL, flags);
    si = cms ? CMS_add1_signer(cms, cert, key, job->md,
                               CMS_BINARY | CMS_NOSMIMECAP)
             : NULL;

    info[0] = (char) ('0' + job->fail_info);
    info[1] = '\0';

    if (in == NULL || si == NULL
        || RAND_bytes(nonce, sizeof(nonce)) != 1
        || !CMS_signed_add1_attr_by_OBJ(si, scep_oid[SCEP_MESSAGE_TYPE],
                                        V_ASN1_PRINTABLESTRING, "3", 1)
        || !CMS_signed_add1_attr_by_OBJ(si, scep_oid[SCEP_PKI_STATUS],
                                        V_ASN1_PRINTABLESTRING, status, 1)
        || (!ok
            && !CMS_signed_add1_attr_by_OBJ(si, scep_oid[SCEP_FAIL_INFO],
                                            V_ASN1_PRINTABLESTRING, info, 1))
        || !CMS_signed_add1_attr_by_OBJ(si, scep_oid[SCEP_TRANSACTION_ID],
                                        V_ASN1_PRINTABLESTRING, job->txid,
                                        (int) strlen(job->txid))
        || !CMS_signed_add1_attr_by_OBJ(si, scep_oid[SCEP_SENDER_NONCE],
                                        V_ASN1_OCTET_STRING, nonce,
                                        sizeof(nonce))
        || !CMS_signed_add1_attr_by_OBJ(si, scep_oid[SCEP_RECIPIENT_NONCE],
                                        V_ASN1_OCTET_STRING, job->nonce,
                                        (int) job->nonce_len)
        || CMS_final(cms, in, NULL, CMS_BINARY) != 1)
    {
        BIO_free(in);
        CMS_ContentInfo_free(cms);
        return -1;
    }

    der = NULL;
    len = i2d_CMS_ContentInfo(cms, &der);

    BIO_free(in);
    CMS_ContentInfo_free(cms);

    if (len <= 0) {
        return -1;
    }

    job->reply = der;
    job->reply_len = len;

    return 0;
}


void
ngx_http_mdm_scep_job_free(ngx_http_mdm_scep_job_t *job)
{
    X509_free(job->signer);
    X509_REQ_free(job->csr);
    OPENSSL_free(job->reply);

    job->signer = NULL;
    job->csr = NULL;
    job->reply = NULL;
}


int
ngx_http_mdm_scep_cacert(const ngx_http_mdm_scep_keys_t *keys,
    unsigned char **der, size_t *len)
{
    int  n;

    *der = NULL;

    if (keys->ra_cert) {
        if (scep_degenerate(keys->ra_cert, keys->ca_cert, der, &n) != 0) {
            return -1;
        }

    } else {
        n = i2d_X509(keys->ca_cert, der);
        if (n <= 0) {
            return -1;
        }
    }

    *len = n;

    return 0;
}
