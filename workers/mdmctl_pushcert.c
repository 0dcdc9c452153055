/*
 * Copyright (C) ngx_mdm contributors
 *
 * mdmctl: the push certificate at both ends.  "pushcert request" makes
 * the push key (kept, mode 0600, reused for renewals) and a CSR;
 * "pushcert upload" pairs the certificate Apple's portal gives back with
 * that key and PUTs both to /v1/pushcert; "pushcert show" asks the server
 * about a topic.  Also the PEM/DER and file helpers of mdmctl_pki.h.
 */

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>

#include "mdmctl_pki.h"


void
mc_ssl_err(const char *what)
{
    unsigned long  e;
    char           buf[256];

    e = ERR_get_error();
    if (e) {
        ERR_error_string_n(e, buf, sizeof(buf));
        mc_err("%s: %s", what, buf);
    } else {
        mc_err("%s", what);
    }
    ERR_clear_error();
}


const char *
mc_pc_dir(const mc_cmd_t *cmd, mc_args_t *a)
{
    const char  *d;

    d = mc_opt(cmd, a, "dir");
    if (d == NULL) {
        d = a->conf->pushcert_dir;
    }
    if (d == NULL) {
        mc_err("no pushcert directory: give --dir (HOME is not set)");
    }
    return d;
}


char *
mc_pc_path(const char *dir, const char *file)
{
    char    *p;
    size_t   len;

    len = strlen(dir) + strlen(file) + 2;
    p = malloc(len);
    if (p == NULL) {
        exit(MC_SERVER);
    }
    snprintf(p, len, "%s/%s", dir, file);
    return p;
}


/* mkdir -p, the last part 0700: it holds private keys */
int
mc_pc_mkdir(const char *dir)
{
    char   *p, *s;

    p = mc_strdup(dir);
    for (s = p + 1; *s; s++) {
        if (*s == '/') {
            *s = '\0';
            if (mkdir(p, 0755) != 0 && errno != EEXIST) {
                mc_err("cannot make %s: %s", p, strerror(errno));
                free(p);
                return -1;
            }
            *s = '/';
        }
    }
    free(p);
    if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
        mc_err("cannot make %s: %s", dir, strerror(errno));
        return -1;
    }
    return 0;
}


static BIO *
mc_file_bio(const char *path)
{
    BIO  *b;

    b = BIO_new_file(path, "rb");
    if (b == NULL) {
        mc_err("cannot read %s: %s", path, strerror(errno));
        ERR_clear_error();
    }
    return b;
}


/* a certificate in PEM or DER */
X509 *
mc_load_cert(const char *path)
{
    BIO   *b;
    X509  *x;

    b = mc_file_bio(path);
    if (b == NULL) {
        return NULL;
    }
    x = PEM_read_bio_X509(b, NULL, NULL, NULL);
    if (x == NULL) {
        ERR_clear_error();
        (void) BIO_reset(b);
        x = d2i_X509_bio(b, NULL);
    }
    BIO_free(b);
    if (x == NULL) {
        mc_ssl_err(path);
        mc_err("%s: not a certificate (PEM or DER)", path);
    }
    return x;
}


/* an unencrypted private key in PEM (PKCS#8 or traditional) or DER */
EVP_PKEY *
mc_load_key(const char *path)
{
    BIO       *b;
    EVP_PKEY  *k;

    b = mc_file_bio(path);
    if (b == NULL) {
        return NULL;
    }
    k = PEM_read_bio_PrivateKey(b, NULL, NULL, (void *) "");
    if (k == NULL) {
        ERR_clear_error();
        (void) BIO_reset(b);
        k = d2i_PrivateKey_bio(b, NULL);
    }
    BIO_free(b);
    if (k == NULL) {
        ERR_clear_error();
        mc_err("%s: not an unencrypted private key (PEM or DER)", path);
    }
    return k;
}


X509_REQ *
mc_load_csr(const char *path)
{
    BIO       *b;
    X509_REQ  *r;

    b = mc_file_bio(path);
    if (b == NULL) {
        return NULL;
    }
    r = PEM_read_bio_X509_REQ(b, NULL, NULL, NULL);
    if (r == NULL) {
        ERR_clear_error();
        (void) BIO_reset(b);
        r = d2i_X509_REQ_bio(b, NULL);
    }
    BIO_free(b);
    if (r == NULL) {
        ERR_clear_error();
        mc_err("%s: not a certificate request (PEM or DER)", path);
    }
    return r;
}


char *
mc_cert_pem(X509 *x)
{
    BIO     *b;
    char    *p, *out;
    long     n;

    b = BIO_new(BIO_s_mem());
    if (b == NULL || !PEM_write_bio_X509(b, x)) {
        BIO_free(b);
        return NULL;
    }
    n = BIO_get_mem_data(b, &p);
    out = malloc(n + 1);
    if (out) {
        memcpy(out, p, n);
        out[n] = '\0';
    }
    BIO_free(b);
    return out;
}


/* base64 with or without line breaks; NULL if it is not */
unsigned char *
mc_unb64(const char *s, size_t *len)
{
    int             n, pad;
    char           *clean;
    size_t          i, k;
    unsigned char  *out;

    clean = malloc(strlen(s) + 1);
    if (clean == NULL) {
        exit(MC_SERVER);
    }
    for (i = 0, k = 0; s[i]; i++) {
        if (s[i] != '\n' && s[i] != '\r' && s[i] != ' ' && s[i] != '\t') {
            clean[k++] = s[i];
        }
    }
    clean[k] = '\0';
    if (k == 0 || k % 4) {
        free(clean);
        return NULL;
    }
    out = malloc(k / 4 * 3 + 1);
    if (out == NULL) {
        exit(MC_SERVER);
    }
    n = EVP_DecodeBlock(out, (unsigned char *) clean, (int) k);
    if (n < 0) {
        free(clean);
        free(out);
        return NULL;
    }
    pad = (clean[k - 1] == '=') + (clean[k - 2] == '=');
    free(clean);
    *len = n - pad;
    return out;
}


static int
mc_write_key(const char *path, EVP_PKEY *k)
{
    BIO     *b;
    char    *p;
    long     n;
    int      rc;

    b = BIO_new(BIO_s_mem());
    if (b == NULL || !PEM_write_bio_PrivateKey(b, k, NULL, NULL, 0, NULL,
                                               NULL))
    {
        BIO_free(b);
        mc_ssl_err("cannot encode the key");
        return -1;
    }
    n = BIO_get_mem_data(b, &p);
    rc = mc_write_file(path, p, n, 0600, 0);
    OPENSSL_cleanse(p, n);
    BIO_free(b);
    return rc;
}


/*
 * The push key (made if there is none, or a new one with new_key: the
 * old is renamed push.key.old) and a new CSR for it: emailAddress, O, C,
 * CN=mdm-push, SHA-256.  A renewal reuses the key.
 */
int
mc_make_push_csr(const char *dir, const char *email, const char *org,
    const char *country, int new_key)
{
    int         rc;
    BIO        *b;
    char       *kpath, *cpath, *old, *p;
    long        n;
    X509_REQ   *req;
    EVP_PKEY   *k;
    X509_NAME  *name;

    if (mc_pc_mkdir(dir) != 0) {
        return MC_USAGE;
    }
    kpath = mc_pc_path(dir, MC_PUSH_KEY);
    cpath = mc_pc_path(dir, MC_PUSH_CSR);
    rc = MC_USAGE;
    req = NULL;
    k = NULL;

    if (new_key && access(kpath, F_OK) == 0) {
        old = mc_pc_path(dir, MC_PUSH_KEY ".old");
        if (rename(kpath, old) != 0) {
            mc_err("cannot rename %s: %s", kpath, strerror(errno));
            free(old);
            goto done;
        }
        fprintf(stderr, "mdmctl: the old push key is now %s\n", old);
        free(old);
    }

    if (access(kpath, F_OK) == 0) {
        k = mc_load_key(kpath);
        if (k == NULL) {
            goto done;
        }
        fprintf(stderr, "mdmctl: using the existing push key %s\n", kpath);
    } else {
        k = EVP_RSA_gen(2048);
        if (k == NULL) {
            mc_ssl_err("cannot make an RSA key");
            goto done;
        }
        if (mc_write_key(kpath, k) != 0) {
            goto done;
        }
    }

    req = X509_REQ_new();
    name = X509_NAME_new();
    if (req == NULL || name == NULL) {
        X509_NAME_free(name);
        goto done;
    }
    if (!X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8,
                                    (const unsigned char *) "mdm-push",
                                    -1, -1, 0)
        || (org && !X509_NAME_add_entry_by_txt(name, "O", MBSTRING_UTF8,
                                               (const unsigned char *) org,
                                               -1, -1, 0))
        || !X509_NAME_add_entry_by_txt(name, "C", MBSTRING_UTF8,
                                       (const unsigned char *) country,
                                       -1, -1, 0)
        || !X509_NAME_add_entry_by_txt(name, "emailAddress", MBSTRING_UTF8,
                                       (const unsigned char *) email,
                                       -1, -1, 0)
        || !X509_REQ_set_subject_name(req, name)
        || !X509_REQ_set_version(req, 0)
        || !X509_REQ_set_pubkey(req, k)
        || !X509_REQ_sign(req, k, EVP_sha256()))
    {
        X509_NAME_free(name);
        mc_ssl_err("cannot make the CSR");
        goto done;
    }
    X509_NAME_free(name);

    b = BIO_new(BIO_s_mem());
    if (b == NULL || !PEM_write_bio_X509_REQ(b, req)) {
        BIO_free(b);
        mc_ssl_err("cannot encode the CSR");
        goto done;
    }
    n = BIO_get_mem_data(b, &p);
    if (mc_write_file(cpath, p, n, 0644, 1) != 0) {
        BIO_free(b);
        goto done;
    }
    BIO_free(b);
    rc = MC_OK;

done:
    X509_REQ_free(req);
    EVP_PKEY_free(k);
    free(kpath);
    free(cpath);
    return rc;
}


static int
mc_country_ok(const char *c)
{
    return strlen(c) == 2 && c[0] >= 'A' && c[0] <= 'Z' && c[1] >= 'A'
           && c[1] <= 'Z';
}


int
mc_cmd_pushcert_request(const mc_cmd_t *cmd, mc_args_t *a)
{
    int          rc;
    const char  *dir, *email, *org, *country;

    if ((rc = mc_want_pos(cmd, a, 0, 0)) != MC_OK) {
        return rc;
    }
    email = mc_opt(cmd, a, "email");
    org = mc_opt(cmd, a, "org");
    country = mc_opt(cmd, a, "country");
    country = country ? country : "US";
    if (email == NULL || strchr(email, '@') == NULL) {
        return mc_usage_error(cmd, "--email ADDRESS is required");
    }
    if (org && *org == '\0') {
        return mc_usage_error(cmd, "--org is empty");
    }
    if (!mc_country_ok(country)) {
        return mc_usage_error(cmd, "--country is two capital letters");
    }
    dir = mc_pc_dir(cmd, a);
    if (dir == NULL) {
        return MC_USAGE;
    }

    rc = mc_make_push_csr(dir, email, org, country,
                          mc_opt(cmd, a, "force") != NULL);
    if (rc != MC_OK) {
        return rc;
    }
    printf("push key: %s/%s (keep it: renewals and uploads use it)\n"
           "CSR:      %s/%s\n"
           "next: have it signed, with \"mdmctl pushcert vendor-sign\" or "
           "\"mdmctl pushcert mdmcert-download\"\n",
           dir, MC_PUSH_KEY, dir, MC_PUSH_CSR);
    return MC_OK;
}


/* the UID of the certificate's subject: the push topic */
static char *
mc_cert_topic(X509 *x)
{
    int               i;
    char             *s;
    X509_NAME        *n;
    ASN1_STRING      *d;
    unsigned char    *u;

    n = X509_get_subject_name(x);
    i = X509_NAME_get_index_by_NID(n, NID_userId, -1);
    if (i < 0) {
        return NULL;
    }
    d = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(n, i));
    if (ASN1_STRING_to_UTF8(&u, d) < 0) {
        return NULL;
    }
    s = mc_strdup((char *) u);
    OPENSSL_free(u);
    return s;
}


int
mc_cmd_pushcert_upload(const mc_cmd_t *cmd, mc_args_t *a)
{
    int          rc;
    BIO         *b;
    char        *kpath, *pem, *body, *p, *topic, *cpath;
    long         n;
    size_t       len;
    X509        *x;
    json_t      *j;
    EVP_PKEY    *k;
    const char  *dir;

    if ((rc = mc_want_pos(cmd, a, 1, 1)) != MC_OK) {
        return rc;
    }
    dir = mc_pc_dir(cmd, a);
    if (dir == NULL) {
        return MC_USAGE;
    }
    kpath = mc_opt(cmd, a, "key") ? mc_strdup(mc_opt(cmd, a, "key"))
                                  : mc_pc_path(dir, MC_PUSH_KEY);

    x = mc_load_cert(a->pos[0]);
    k = x ? mc_load_key(kpath) : NULL;
    if (x == NULL || k == NULL) {
        X509_free(x);
        free(kpath);
        return MC_USAGE;
    }
    if (X509_check_private_key(x, k) != 1) {
        ERR_clear_error();
        mc_err("%s is not the certificate of the key %s: upload the "
               "certificate made from this key's CSR (--key FILE for "
               "another key)", a->pos[0], kpath);
        X509_free(x);
        EVP_PKEY_free(k);
        free(kpath);
        return MC_USAGE;
    }
    topic = mc_cert_topic(x);
    if (topic == NULL || strncmp(topic, "com.apple.mgmt.", 15) != 0) {
        mc_err("%s has no push topic (subject UID com.apple.mgmt.…): not "
               "an MDM push certificate", a->pos[0]);
        free(topic);
        X509_free(x);
        EVP_PKEY_free(k);
        free(kpath);
        return MC_USAGE;
    }
    free(topic);
    free(kpath);

    /* the certificate PEM, then the key PEM, as the server takes them */
    pem = mc_cert_pem(x);
    b = BIO_new(BIO_s_mem());
    if (pem == NULL || b == NULL
        || !PEM_write_bio_PrivateKey(b, k, NULL, NULL, 0, NULL, NULL))
    {
        mc_ssl_err("cannot encode the certificate and key");
        free(pem);
        BIO_free(b);
        X509_free(x);
        EVP_PKEY_free(k);
        return MC_USAGE;
    }
    EVP_PKEY_free(k);
    n = BIO_get_mem_data(b, &p);
    len = strlen(pem) + n;
    body = malloc(len + 1);
    if (body == NULL) {
        exit(MC_SERVER);
    }
    memcpy(body, pem, strlen(pem));
    memcpy(body + strlen(pem), p, n);
    body[len] = '\0';
    BIO_free(b);
    X509_free(x);

    j = mc_api(a->conf, "PUT", mc_opt(cmd, a, "force") ? "/v1/pushcert?force=1"
                                              : "/v1/pushcert",
               body, len, &rc);
    OPENSSL_cleanse(body, len);
    free(body);
    if (j == NULL) {
        free(pem);
        return rc;
    }

    /* kept, so "pushcert show" knows the topic */
    if (mc_pc_mkdir(dir) == 0) {
        cpath = mc_pc_path(dir, MC_PUSH_CERT);
        (void) mc_write_file(cpath, pem, strlen(pem), 0644, 1);
        free(cpath);
    }
    free(pem);

    if (a->conf->json) {
        mc_print_json(j);
    } else {
        printf("stored: topic %s, expires %s\n", mc_str(j, "topic"),
               mc_str(j, "not_after"));
    }
    json_decref(j);
    return rc;
}


int
mc_cmd_pushcert_show(const mc_cmd_t *cmd, mc_args_t *a)
{
    int          rc;
    char        *topic, *esc, *path, *cpath;
    size_t       len;
    X509        *x;
    json_t      *j;
    const char  *dir;

    if ((rc = mc_want_pos(cmd, a, 0, 1)) != MC_OK) {
        return rc;
    }
    if (a->npos == 1) {
        topic = mc_strdup(a->pos[0]);
    } else {
        dir = mc_pc_dir(cmd, a);
        if (dir == NULL) {
            return MC_USAGE;
        }
        cpath = mc_pc_path(dir, MC_PUSH_CERT);
        x = mc_load_cert(cpath);
        topic = x ? mc_cert_topic(x) : NULL;
        X509_free(x);
        if (topic == NULL) {
            mc_err("no topic: give one, or upload with \"mdmctl pushcert "
                   "upload\" first (it keeps %s)", cpath);
            free(cpath);
            return MC_USAGE;
        }
        free(cpath);
    }

    esc = mc_escape(topic);
    free(topic);
    len = strlen(esc) + 32;
    path = malloc(len);
    if (path == NULL) {
        exit(MC_SERVER);
    }
    snprintf(path, len, "/v1/pushcert?topic=%s", esc);
    free(esc);
    j = mc_api(a->conf, "GET", path, NULL, 0, &rc);
    free(path);
    if (j == NULL) {
        return rc;
    }
    if (a->conf->json) {
        mc_print_json(j);
    } else {
        printf("topic %s, expires %s\n", mc_str(j, "topic"),
               mc_str(j, "not_after"));
    }
    json_decref(j);
    return rc;
}
