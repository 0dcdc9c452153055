/*
 * Copyright (C) ngx_mdm contributors
 *
 * mdmctl: getting the CSR signed (protocol-ext.md C5).
 *
 *   vendor-sign       with your own MDM vendor certificate: the file the
 *                     Apple Push Certificates Portal takes is base64 of a
 *                     plist {PushCertRequestCSR: base64 CSR DER,
 *                     PushCertCertificateChain: vendor + Apple WWDR +
 *                     Apple root PEM, PushCertSignature: base64 of the
 *                     vendor key's signature of the CSR DER (SHA-256)}
 *   mdmcert-download  the free service signs it: POST {csr, email, key,
 *                     encrypt} with a fresh exchange certificate; the
 *                     answer comes by email, encrypted to it
 *   decrypt           hex (or base64) of that CMS envelope -> the file
 *                     for the portal
 */

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/cms.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>

#include "mdmctl_pki.h"


static int
mc_append(char **buf, size_t *len, const char *s)
{
    char    *nb;
    size_t   n;

    n = strlen(s);
    nb = realloc(*buf, *len + n + 1);
    if (nb == NULL) {
        exit(MC_SERVER);
    }
    memcpy(nb + *len, s, n + 1);
    *buf = nb;
    *len += n;
    return 0;
}


/* the certificate of this file as PEM, appended to the chain */
static int
mc_chain_add(char **chain, size_t *len, const char *path)
{
    X509  *x;
    char  *pem;

    x = mc_load_cert(path);
    if (x == NULL) {
        return -1;
    }
    pem = mc_cert_pem(x);
    X509_free(x);
    if (pem == NULL) {
        mc_ssl_err(path);
        return -1;
    }
    mc_append(chain, len, pem);
    free(pem);
    return 0;
}


/* the three strings need no escaping (base64 and PEM), but a chain file
 * could hold anything around its certificates: it is rebuilt from the
 * parsed certificates above, so it is PEM only */
static char *
mc_request_plist(const char *csr_b64, const char *chain, const char *sig_b64)
{
    char    *p;
    size_t   len;

    p = NULL;
    len = 0;
    mc_append(&p, &len,
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
        "<!DOCTYPE plist PUBLIC \"-//Apple//DTD PLIST 1.0//EN\" "
        "\"http://www.apple.com/DTDs/PropertyList-1.0.dtd\">\n"
        "<plist version=\"1.0\">\n<dict>\n"
        "\t<key>PushCertCertificateChain</key>\n\t<string>");
    mc_append(&p, &len, chain);
    mc_append(&p, &len, "</string>\n\t<key>PushCertRequestCSR</key>\n"
                        "\t<string>");
    mc_append(&p, &len, csr_b64);
    mc_append(&p, &len, "</string>\n\t<key>PushCertSignature</key>\n"
                        "\t<string>");
    mc_append(&p, &len, sig_b64);
    mc_append(&p, &len, "</string>\n</dict>\n</plist>\n");
    return p;
}


int
mc_cmd_pushcert_vendor_sign(const mc_cmd_t *cmd, mc_args_t *a)
{
    int             rc, dn;
    char           *csr_path, *out_path, *chain, *csr_b64, *sig_b64,
                   *plist, *file;
    size_t          clen, slen;
    X509           *vc;
    X509_REQ       *req;
    EVP_PKEY       *vk;
    EVP_MD_CTX     *md;
    const char     *dir, *v, *vcert, *vkey;
    unsigned char  *der, *sig;

    if ((rc = mc_want_pos(cmd, a, 0, 0)) != MC_OK) {
        return rc;
    }
    vcert = mc_opt(cmd, a, "vendor-cert");
    vkey = mc_opt(cmd, a, "vendor-key");
    if (vcert == NULL || vkey == NULL) {
        return mc_usage_error(cmd, "--vendor-cert and --vendor-key are "
                              "required");
    }
    dir = mc_pc_dir(cmd, a);
    if (dir == NULL) {
        return MC_USAGE;
    }
    v = mc_opt(cmd, a, "csr");
    csr_path = v ? mc_strdup(v) : mc_pc_path(dir, MC_PUSH_CSR);
    v = mc_opt(cmd, a, "out");
    out_path = v ? mc_strdup(v) : mc_pc_path(dir, MC_PUSH_REQ);

    rc = MC_USAGE;
    chain = NULL;
    clen = 0;
    der = NULL;
    sig = NULL;
    csr_b64 = sig_b64 = plist = file = NULL;
    vk = NULL;
    md = NULL;

    req = mc_load_csr(csr_path);
    vc = req ? mc_load_cert(vcert) : NULL;
    vk = vc ? mc_load_key(vkey) : NULL;
    if (vk == NULL) {
        goto done;
    }
    if (X509_check_private_key(vc, vk) != 1) {
        ERR_clear_error();
        mc_err("%s is not the key of %s", vkey, vcert);
        goto done;
    }
    if (X509_REQ_verify(req, X509_REQ_get0_pubkey(req)) != 1) {
        ERR_clear_error();
        mc_err("%s: the CSR's own signature does not verify", csr_path);
        goto done;
    }

    /* the chain: vendor, Apple's intermediate, Apple's root */
    if (mc_chain_add(&chain, &clen, vcert) != 0
        || ((v = mc_opt(cmd, a, "apple-intermediate"))
            && mc_chain_add(&chain, &clen, v) != 0)
        || ((v = mc_opt(cmd, a, "apple-root"))
            && mc_chain_add(&chain, &clen, v) != 0))
    {
        goto done;
    }
    if (!mc_opt(cmd, a, "apple-intermediate")
        || !mc_opt(cmd, a, "apple-root"))
    {
        fprintf(stderr, "mdmctl: warning: without --apple-intermediate and "
                "--apple-root the chain holds only the vendor certificate; "
                "the portal wants all three\n");
    }

    /* the signature of the CSR's DER by the vendor key */
    dn = i2d_X509_REQ(req, &der);
    if (dn <= 0) {
        mc_ssl_err("cannot encode the CSR");
        goto done;
    }
    md = EVP_MD_CTX_new();
    if (md == NULL
        || EVP_DigestSignInit(md, NULL, mc_opt(cmd, a, "sha1")
                                        ? EVP_sha1() : EVP_sha256(),
                              NULL, vk) != 1
        || EVP_DigestSign(md, NULL, &slen, der, dn) != 1
        || (sig = malloc(slen)) == NULL
        || EVP_DigestSign(md, sig, &slen, der, dn) != 1)
    {
        mc_ssl_err("cannot sign the CSR");
        goto done;
    }

    csr_b64 = mc_b64(der, dn);
    sig_b64 = mc_b64(sig, slen);
    plist = mc_request_plist(csr_b64, chain, sig_b64);
    file = mc_b64((unsigned char *) plist, strlen(plist));
    if (mc_write_file(out_path, file, strlen(file), 0644, 1) != 0) {
        goto done;
    }
    printf("request for the portal: %s\n"
           "next: upload it at https://identity.apple.com (Create a "
           "Certificate, or Renew to keep the topic), download the "
           "certificate, then \"mdmctl pushcert upload FILE\"\n", out_path);
    rc = MC_OK;

done:
    EVP_MD_CTX_free(md);
    OPENSSL_free(der);
    free(sig);
    free(csr_b64);
    free(sig_b64);
    free(plist);
    free(file);
    free(chain);
    X509_REQ_free(req);
    X509_free(vc);
    EVP_PKEY_free(vk);
    free(csr_path);
    free(out_path);
    return rc;
}


/* a fresh key and self-signed certificate for the exchange with
 * mdmcert.download (CN mdmcert.download, 365 days); the answer is
 * encrypted to it */
static int
mc_make_exchange(const char *dir, char **cert_pem)
{
    int             rc;
    BIO            *b;
    char           *kpath, *cpath, *p, *old;
    long            n;
    X509           *x;
    EVP_PKEY       *k;
    X509_NAME      *name;
    X509_EXTENSION *ext;
    unsigned char   serial[16];
    BIGNUM         *bn;

    kpath = mc_pc_path(dir, MC_XCHG_KEY);
    cpath = mc_pc_path(dir, MC_XCHG_CERT);
    rc = MC_USAGE;
    x = NULL;
    b = NULL;

    /* an earlier exchange's key still opens its email: kept aside */
    if (access(kpath, F_OK) == 0) {
        old = mc_pc_path(dir, MC_XCHG_KEY ".old");
        (void) rename(kpath, old);
        free(old);
        old = mc_pc_path(dir, MC_XCHG_CERT ".old");
        (void) rename(cpath, old);
        free(old);
    }

    k = EVP_RSA_gen(2048);
    x = X509_new();
    name = X509_get_subject_name(x);
    bn = NULL;
    if (k == NULL || x == NULL
        || RAND_bytes(serial, sizeof(serial)) != 1
        || (serial[0] &= 0x7f, 0)
        || (bn = BN_bin2bn(serial, sizeof(serial), NULL)) == NULL
        || BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x)) == NULL
        || !X509_set_version(x, 2)
        || !X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8,
                                       (const unsigned char *)
                                       "mdmcert.download", -1, -1, 0)
        || !X509_set_issuer_name(x, name)
        || X509_gmtime_adj(X509_getm_notBefore(x), 0) == NULL
        || X509_gmtime_adj(X509_getm_notAfter(x), 365L * 86400) == NULL
        || !X509_set_pubkey(x, k))
    {
        BN_free(bn);
        mc_ssl_err("cannot make the exchange certificate");
        goto done;
    }
    BN_free(bn);
    ext = X509V3_EXT_conf_nid(NULL, NULL, NID_key_usage,
                              "critical,digitalSignature,keyEncipherment,"
                              "dataEncipherment");
    if (ext == NULL || !X509_add_ext(x, ext, -1)) {
        X509_EXTENSION_free(ext);
        mc_ssl_err("cannot make the exchange certificate");
        goto done;
    }
    X509_EXTENSION_free(ext);
    if (!X509_sign(x, k, EVP_sha256())) {
        mc_ssl_err("cannot sign the exchange certificate");
        goto done;
    }

    b = BIO_new(BIO_s_mem());
    if (b == NULL || !PEM_write_bio_PrivateKey(b, k, NULL, NULL, 0, NULL,
                                               NULL))
    {
        mc_ssl_err("cannot encode the exchange key");
        goto done;
    }
    n = BIO_get_mem_data(b, &p);
    if (mc_write_file(kpath, p, n, 0600, 0) != 0) {
        goto done;
    }
    *cert_pem = mc_cert_pem(x);
    if (*cert_pem == NULL
        || mc_write_file(cpath, *cert_pem, strlen(*cert_pem), 0644, 1) != 0)
    {
        goto done;
    }
    rc = MC_OK;

done:
    BIO_free(b);
    X509_free(x);
    EVP_PKEY_free(k);
    free(kpath);
    free(cpath);
    return rc;
}


int
mc_cmd_pushcert_mdmcert(const mc_cmd_t *cmd, mc_args_t *a)
{
    int          rc, r;
    char        *csr_path, *csr_pem, *xchg, *csr_b64, *x_b64, *text;
    size_t       len;
    json_t      *body, *ans;
    mc_resp_t    resp;
    const char  *dir, *email, *url, *key, *country, *reason;
    const char  *hdrs[] = { "Content-Type: application/json",
                            "Accept: application/json", NULL };

    if ((rc = mc_want_pos(cmd, a, 0, 0)) != MC_OK) {
        return rc;
    }
    email = mc_opt(cmd, a, "email");
    if (email == NULL || strchr(email, '@') == NULL) {
        return mc_usage_error(cmd, "--email ADDRESS is required (the one "
                              "registered at mdmcert.download)");
    }
    url = mc_opt(cmd, a, "url") ? mc_opt(cmd, a, "url") : a->conf->mdmcert_url;
    if (strncmp(url, "https://", 8) != 0 && strncmp(url, "http://", 7) != 0)
    {
        return mc_usage_error(cmd, "--url is an http(s) URL");
    }
    key = mc_opt(cmd, a, "api-key") ? mc_opt(cmd, a, "api-key")
                                    : a->conf->mdmcert_api_key;
    if (key == NULL || *key == '\0') {
        return mc_usage_error(cmd, "no mdmcert.download API key: give "
                              "--api-key, MDMCERT_API_KEY or "
                              "\"mdmcert_api_key\" (the service's "
                              "maintainers issue one per MDM project)");
    }
    country = mc_opt(cmd, a, "country") ? mc_opt(cmd, a, "country") : "US";
    dir = mc_pc_dir(cmd, a);
    if (dir == NULL) {
        return MC_USAGE;
    }

    /* the CSR of "pushcert request", or a new one */
    csr_path = mc_pc_path(dir, MC_PUSH_CSR);
    if (access(csr_path, F_OK) != 0) {
        rc = mc_make_push_csr(dir, email, mc_opt(cmd, a, "org"), country,
                              0);
        if (rc != MC_OK) {
            free(csr_path);
            return rc;
        }
    }
    csr_pem = mc_read_file(csr_path, &len);
    if (csr_pem == NULL || strstr(csr_pem, "BEGIN CERTIFICATE REQUEST")
                           == NULL)
    {
        mc_err("%s: not a PEM CSR", csr_path);
        free(csr_pem);
        free(csr_path);
        return MC_USAGE;
    }
    free(csr_path);

    xchg = NULL;
    rc = mc_make_exchange(dir, &xchg);
    if (rc != MC_OK) {
        free(xchg);
        free(csr_pem);
        return rc;
    }

    csr_b64 = mc_b64((unsigned char *) csr_pem, len);
    x_b64 = mc_b64((unsigned char *) xchg, strlen(xchg));
    free(csr_pem);
    free(xchg);
    body = json_pack("{s:s, s:s, s:s, s:s}", "csr", csr_b64, "email", email,
                     "key", key, "encrypt", x_b64);
    free(csr_b64);
    free(x_b64);
    text = json_dumps(body, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(body);
    if (text == NULL) {
        exit(MC_SERVER);
    }

    r = mc_http(a->conf, "POST", url, NULL, hdrs, text, strlen(text), &resp);
    free(text);
    if (r != 0) {
        return MC_SERVER;
    }

    ans = json_loadb(resp.body, resp.len, 0, NULL);
    reason = json_string_value(json_object_get(ans, "reason"));
    if (resp.status == 200 && json_is_string(json_object_get(ans, "result"))
        && strcmp(json_string_value(json_object_get(ans, "result")),
                  "success") == 0)
    {
        if (a->conf->json) {
            mc_print_json(ans);
        } else {
            printf("sent to %s: the signed request comes by email to %s, "
                   "encrypted to %s/%s\nnext: \"mdmctl pushcert decrypt "
                   "FILE\" on the attachment\n", url, email, dir,
                   MC_XCHG_CERT);
        }
        rc = MC_OK;
    } else {
        mc_err("%s: HTTP %ld: %s", url, resp.status,
               reason ? reason : (resp.len < 300 ? resp.body
                                                 : "(no reason given)"));
        if (a->conf->json && ans) {
            mc_print_json(ans);
        }
        rc = (resp.status >= 500 || resp.status < 200) ? MC_SERVER
                                                       : MC_REFUSED;
    }
    json_decref(ans);
    mc_resp_free(&resp);
    return rc;
}


static int
mc_hexval(int c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    c = tolower(c);
    return (c >= 'a' && c <= 'f') ? c - 'a' + 10 : -1;
}


/* the attachment: hex (what the service sends), else base64, else DER */
static unsigned char *
mc_decode_attachment(const char *s, size_t n, size_t *len)
{
    size_t          i, k, digits;
    unsigned char  *out;

    digits = 0;
    for (i = 0; i < n; i++) {
        if (mc_hexval((unsigned char) s[i]) >= 0) {
            digits++;
        } else if (!isspace((unsigned char) s[i])) {
            break;
        }
    }
    if (i == n && digits && digits % 2 == 0) {
        out = malloc(digits / 2);
        if (out == NULL) {
            exit(MC_SERVER);
        }
        for (i = 0, k = 0; i < n; i++) {
            if (isspace((unsigned char) s[i])) {
                continue;
            }
            if (k % 2 == 0) {
                out[k / 2] = mc_hexval((unsigned char) s[i]) << 4;
            } else {
                out[k / 2] |= mc_hexval((unsigned char) s[i]);
            }
            k++;
        }
        *len = digits / 2;
        return out;
    }

    out = (strlen(s) == n) ? mc_unb64(s, len) : NULL;
    if (out) {
        return out;
    }
    out = malloc(n ? n : 1);
    if (out == NULL) {
        exit(MC_SERVER);
    }
    memcpy(out, s, n);
    *len = n;
    return out;
}


int
mc_cmd_pushcert_decrypt(const mc_cmd_t *cmd, mc_args_t *a)
{
    int                   rc;
    BIO                  *in, *out;
    char                 *data, *kpath, *cpath, *out_path, *p;
    long                  n;
    size_t                len, dlen;
    X509                 *x;
    EVP_PKEY             *k;
    CMS_ContentInfo      *cms;
    const char           *dir, *v;
    unsigned char        *der;
    const unsigned char  *dp;

    if ((rc = mc_want_pos(cmd, a, 1, 1)) != MC_OK) {
        return rc;
    }
    dir = mc_pc_dir(cmd, a);
    if (dir == NULL) {
        return MC_USAGE;
    }
    data = mc_read_file(a->pos[0], &len);
    if (data == NULL) {
        mc_err("cannot read %s: %s", a->pos[0], strerror(errno));
        return MC_USAGE;
    }
    der = mc_decode_attachment(data, len, &dlen);
    free(data);

    kpath = mc_pc_path(dir, MC_XCHG_KEY);
    cpath = mc_pc_path(dir, MC_XCHG_CERT);
    v = mc_opt(cmd, a, "out");
    out_path = v ? mc_strdup(v) : mc_pc_path(dir, MC_PUSH_REQ);
    rc = MC_USAGE;
    out = NULL;
    in = NULL;
    cms = NULL;

    x = mc_load_cert(cpath);
    k = x ? mc_load_key(kpath) : NULL;
    if (k == NULL) {
        mc_err("the exchange key of \"pushcert mdmcert-download\" is "
               "needed (%s)", kpath);
        goto done;
    }

    dp = der;
    cms = d2i_CMS_ContentInfo(NULL, &dp, (long) dlen);
    if (cms == NULL) {
        mc_ssl_err("not a CMS message (hex, base64 or DER)");
        goto done;
    }
    out = BIO_new(BIO_s_mem());
    if (out == NULL || CMS_decrypt(cms, k, x, NULL, out, 0) != 1) {
        mc_ssl_err("cannot decrypt it with the exchange key: was it "
                   "made for the latest mdmcert-download (the previous "
                   "key is mdmcert.key.old)?");
        goto done;
    }
    n = BIO_get_mem_data(out, &p);
    if (mc_write_file(out_path, p, n, 0644, 1) != 0) {
        goto done;
    }
    printf("request for the portal: %s\n"
           "next: upload it at https://identity.apple.com, download the "
           "certificate, then \"mdmctl pushcert upload FILE\"\n", out_path);
    rc = MC_OK;

done:
    BIO_free(in);
    BIO_free(out);
    CMS_ContentInfo_free(cms);
    X509_free(x);
    EVP_PKEY_free(k);
    free(der);
    free(kpath);
    free(cpath);
    free(out_path);
    return rc;
}
