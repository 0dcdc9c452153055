
/*
 * Copyright (C) ngx_mdm contributors
 *
 * The OpenSSL work of the DEP token exchange: the RSA-2048 key and the
 * self-signed certificate the admin uploads to Apple's portal, and the
 * decryption of the token file (.p7m) the portal gives back.  Both run in
 * nginx's thread pool: they use only their job, OpenSSL's heap and the
 * thread's own OpenSSL error queue, which they leave empty.
 */


#include "ngx_http_mdm_api_dep.h"

#include <openssl/bn.h>
#include <openssl/cms.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509v3.h>


static ngx_int_t ngx_http_mdm_dep_bio_copy(BIO *bio, ngx_str_t *to,
    size_t max);
static CMS_ContentInfo *ngx_http_mdm_dep_read_cms(ngx_str_t *file);
static ngx_uint_t ngx_http_mdm_dep_has_headers(u_char *p, u_char *last);
static int ngx_http_mdm_dep_no_password(char *buf, int size, int rwflag,
    void *u);


void
ngx_http_mdm_dep_keygen(void *data)
{
    ngx_http_mdm_dep_keygen_t *job = data;

    BIO             *bio;
    X509            *x;
    BIGNUM          *bn;
    EVP_PKEY        *pkey;
    X509_NAME       *name;
    X509V3_CTX       ctx;
    X509_EXTENSION  *ext;

    x = NULL;
    bn = NULL;
    bio = NULL;
    job->err = "cannot make the key and certificate";

    pkey = EVP_RSA_gen(2048);
    if (pkey == NULL) {
        goto done;
    }

    x = X509_new();
    bn = BN_new();
    bio = BIO_new(BIO_s_mem());
    if (x == NULL || bn == NULL || bio == NULL) {
        goto done;
    }

    /*
     * A random serial: Apple's file names its recipient by issuer and
     * serial, and two DEP names with the same CN must not look alike.
     */
    if (X509_set_version(x, 2) != 1
        || BN_rand(bn, 63, BN_RAND_TOP_ANY, BN_RAND_BOTTOM_ANY) != 1
        || BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x)) == NULL
        || X509_gmtime_adj(X509_getm_notBefore(x), -300) == NULL
        || X509_time_adj_ex(X509_getm_notAfter(x), (int) job->days, 0, NULL)
           == NULL)
    {
        goto done;
    }

    name = X509_get_subject_name(x);

    if (X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, job->cn, -1,
                                   -1, 0) != 1
        || X509_set_issuer_name(x, name) != 1
        || X509_set_pubkey(x, pkey) != 1)
    {
        goto done;
    }

    /* as NanoDEP's: the portal encrypts to it */
    X509V3_set_ctx(&ctx, x, x, NULL, NULL, 0);

    ext = X509V3_EXT_conf_nid(NULL, &ctx, NID_key_usage,
                              "critical,digitalSignature,keyEncipherment");
    if (ext == NULL) {
        goto done;
    }

    if (X509_add_ext(x, ext, -1) != 1) {
        X509_EXTENSION_free(ext);
        goto done;
    }

    X509_EXTENSION_free(ext);

    if (X509_sign(x, pkey, EVP_sha256()) == 0
        || PEM_write_bio_X509(bio, x) != 1
        || ngx_http_mdm_dep_bio_copy(bio, &job->cert,
                                     NGX_HTTP_MDM_DEP_CERT_MAX) != NGX_OK
        || PEM_write_bio_PrivateKey(bio, pkey, NULL, NULL, 0, NULL, NULL)
           != 1
        || ngx_http_mdm_dep_bio_copy(bio, &job->key, NGX_HTTP_MDM_DEP_KEY_MAX)
           != NGX_OK)
    {
        goto done;
    }

    job->err = NULL;

done:

    BIO_free(bio);
    BN_free(bn);
    X509_free(x);
    EVP_PKEY_free(pkey);
    ERR_clear_error();
}


void
ngx_http_mdm_dep_decrypt(void *data)
{
    ngx_http_mdm_dep_decrypt_t *job = data;

    BIO              *in, *out;
    X509             *x;
    EVP_PKEY         *pkey;
    CMS_ContentInfo  *cms;

    x = NULL;
    pkey = NULL;
    cms = NULL;
    out = NULL;
    job->client = 0;
    job->err = "the DEP name's stored key or certificate is unreadable";

    in = BIO_new_mem_buf(job->cert.data, (int) job->cert.len);
    if (in == NULL) {
        goto done;
    }

    x = PEM_read_bio_X509(in, NULL, NULL, NULL);
    BIO_free(in);

    in = BIO_new_mem_buf(job->key.data, (int) job->key.len);
    if (in == NULL) {
        goto done;
    }

    pkey = PEM_read_bio_PrivateKey(in, NULL, ngx_http_mdm_dep_no_password,
                                   NULL);
    BIO_free(in);

    if (x == NULL || pkey == NULL) {
        goto done;
    }

    job->client = 1;

    cms = ngx_http_mdm_dep_read_cms(&job->file);
    if (cms == NULL) {
        job->err = "the body is not a token file: S/MIME (.p7m), DER or "
                   "PEM CMS expected";
        goto done;
    }

    if (OBJ_obj2nid(CMS_get0_type(cms)) != NID_pkcs7_enveloped) {
        job->err = "the token file is CMS but not encrypted (EnvelopedData)";
        goto done;
    }

    out = BIO_new(BIO_s_mem());
    if (out == NULL) {
        job->client = 0;
        job->err = "out of memory";
        goto done;
    }

    if (CMS_decrypt(cms, pkey, x, NULL, out, 0) != 1) {
        job->err = "the token file is not encrypted to this DEP name's "
                   "key: upload the certificate of GET "
                   "/v1/dep/tokenpki/NAME to Apple, then the file Apple "
                   "gives for it";
        goto done;
    }

    /* the content is shorter than the file that carries it */
    if (ngx_http_mdm_dep_bio_copy(out, &job->out, job->file.len) != NGX_OK) {
        job->err = "the decrypted token is empty or too large";
        goto done;
    }

    job->err = NULL;

done:

    BIO_free(out);
    CMS_ContentInfo_free(cms);
    EVP_PKEY_free(pkey);
    X509_free(x);
    ERR_clear_error();
}


/*
 * The file as Apple's portal gives it (MIME headers, then base64 of BER),
 * or raw DER/BER, PEM ("-----BEGIN CMS-----" or PKCS7), or bare base64.
 */

static CMS_ContentInfo *
ngx_http_mdm_dep_read_cms(ngx_str_t *file)
{
    BIO              *in, *b64;
    u_char           *p, *last;
    CMS_ContentInfo  *cms;

    p = file->data;
    last = p + file->len;

    while (p < last && (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n'))
    {
        p++;
    }

    if (p == last || last - p > INT_MAX) {
        return NULL;
    }

    in = BIO_new_mem_buf(p, (int) (last - p));
    if (in == NULL) {
        return NULL;
    }

    if (*p == 0x30) {
        cms = d2i_CMS_bio(in, NULL);

    } else if (last - p > 10 && ngx_strncmp(p, "-----BEGIN", 10) == 0) {
        cms = PEM_read_bio_CMS(in, NULL, NULL, NULL);

    } else if (ngx_http_mdm_dep_has_headers(p, last)) {
        cms = SMIME_read_CMS(in, NULL);

    } else {
        b64 = BIO_new(BIO_f_base64());
        if (b64 == NULL) {
            BIO_free(in);
            return NULL;
        }

        if (ngx_strlchr(p, last, '\n') == NULL) {
            BIO_set_flags(b64, BIO_FLAGS_BASE64_NO_NL);
        }

        in = BIO_push(b64, in);
        cms = d2i_CMS_bio(in, NULL);
    }

    BIO_free_all(in);

    return cms;
}


/* the first line is a MIME header ("Content-Type: ...", "MIME-Version:") */

static ngx_uint_t
ngx_http_mdm_dep_has_headers(u_char *p, u_char *last)
{
    u_char  *s;

    for (s = p; s < last && *s != ':' && *s != '\n'; s++) {
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z')
              || (*s >= '0' && *s <= '9') || *s == '-'))
        {
            return 0;
        }
    }

    return s > p && s < last && *s == ':';
}


/*
 * The JSON of a decrypted token, in place: Apple's plain text has MIME
 * headers ("Content-Type: text/plain;charset=UTF-8", ...) and a blank
 * line, then the JSON hard-wrapped at about 78 columns, even inside its
 * strings, sometimes between "-----BEGIN MESSAGE-----" and "-----END
 * MESSAGE-----" lines.  The lines are joined with nothing between them.
 * NULL, or why the content is no token.
 */

const char *
ngx_http_mdm_dep_unwrap(ngx_str_t *content, ngx_str_t *json)
{
    u_char  *p, *last, *eol, *w, *begin, *end;

    static u_char  bm[] = "-----BEGIN MESSAGE-----";
    static u_char  em[] = "-----END MESSAGE-----";

    p = content->data;
    last = p + content->len;

    while (p < last && (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n'))
    {
        p++;
    }

    /* the headers end at the first empty line */
    if (p < last && *p != '{' && *p != '-') {
        if (!ngx_http_mdm_dep_has_headers(p, last)) {
            return "the decrypted token is neither JSON nor MIME text";
        }

        for ( ;; ) {
            eol = ngx_strlchr(p, last, '\n');
            if (eol == NULL) {
                return "the decrypted token has MIME headers and no body";
            }

            if (eol == p || (eol == p + 1 && *p == '\r')) {
                p = eol + 1;
                break;
            }

            p = eol + 1;
        }
    }

    begin = ngx_strlcasestrn(p, last, bm, sizeof(bm) - 2);

    if (begin) {
        p = begin + sizeof(bm) - 1;
        end = ngx_strlcasestrn(p, last, em, sizeof(em) - 2);
        if (end == NULL) {
            return "the decrypted token has -----BEGIN MESSAGE----- and no "
                   "-----END MESSAGE-----";
        }

        last = end;
    }

    /* joined: CR and LF dropped, in place (the writer never overtakes) */
    for (w = p, begin = p; begin < last; begin++) {
        if (*begin != '\r' && *begin != '\n') {
            *w++ = *begin;
        }
    }

    last = w;

    while (p < last && (*p == ' ' || *p == '\t')) {
        p++;
    }

    while (last > p && (last[-1] == ' ' || last[-1] == '\t')) {
        last--;
    }

    if (p == last) {
        return "the decrypted token is empty";
    }

    json->data = p;
    json->len = last - p;

    return NULL;
}


/* what was written to the memory BIO into to (max bytes), BIO emptied */

static ngx_int_t
ngx_http_mdm_dep_bio_copy(BIO *bio, ngx_str_t *to, size_t max)
{
    char  *data;
    long   len;

    len = BIO_get_mem_data(bio, &data);
    if (len <= 0 || (size_t) len > max) {
        return NGX_ERROR;
    }

    ngx_memcpy(to->data, data, len);
    to->len = len;

    (void) BIO_reset(bio);

    return NGX_OK;
}


static int
ngx_http_mdm_dep_no_password(char *buf, int size, int rwflag, void *u)
{
    return -1;
}
