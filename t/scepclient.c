/*
 * A SCEP client for the tests (t/scep*.t), built by them with OpenSSL.  It
 * makes PKCSReq messages the way Apple devices do (a throw-away RSA key, a
 * self-signed signer certificate, the CSR in an EnvelopedData to the CA,
 * all in a SignedData with the SCEP attributes) and checks CertRep answers
 * in full.
 *
 *   scepclient req DIR CA.pem CN CHALLENGE CIPHER MD [OPTION...]
 *       CHALLENGE "-" for none; CIPHER aes128|aes192|aes256|des3|des;
 *       MD sha1|sha256|sha512.  OPTIONs: badcsrsig (the CSR's signature is
 *       broken), wrongrecip (the envelope is for someone else), tamper (a
 *       byte of the signed message flipped), type=N (messageType),
 *       bits=N (key size, default 2048), keydir=DIR (reuse DIR's key).
 *       Writes DIR/key.pem, DIR/signer.pem, DIR/txid, DIR/nonce, DIR/req.der.
 *
 *   scepclient rep DIR SIGNER.pem REP.der [ISSUER.pem]
 *       Verifies that SIGNER.pem (the CA, or the RA) signed the CertRep and
 *       prints what it found, one "name=value" a line; on SUCCESS decrypts
 *       the envelope with DIR/key.pem and writes the issued DIR/cert.pem;
 *       without DIR/key.pem (a recorded request) it names the envelope's
 *       recipients and prints decrypted=0.
 *       Exits 1 with a message on stderr when anything is wrong.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/cms.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/pkcs7.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>


static ASN1_OBJECT  *oid_type, *oid_status, *oid_fail, *oid_snonce,
                    *oid_rnonce, *oid_txid;


static void
die(const char *what)
{
    fprintf(stderr, "scepclient: %s\n", what);
    ERR_print_errors_fp(stderr);
    exit(1);
}


static void
spew(const char *dir, const char *name, const void *data, size_t len)
{
    char   path[4096];
    FILE  *f;

    snprintf(path, sizeof(path), "%s/%s", dir, name);
    f = fopen(path, "wb");
    if (f == NULL || fwrite(data, 1, len, f) != len || fclose(f) != 0) {
        die(path);
    }
}


static unsigned char *
slurp(const char *path, long *len)
{
    FILE           *f;
    unsigned char  *buf;

    f = fopen(path, "rb");
    if (f == NULL) {
        die(path);
    }

    buf = malloc(1 << 20);
    *len = (long) fread(buf, 1, 1 << 20, f);
    fclose(f);

    return buf;
}


static void *
pem_file(const char *path, int key)
{
    BIO   *b;
    void  *x;

    b = BIO_new_file(path, "r");
    if (b == NULL) {
        die(path);
    }

    x = key ? (void *) PEM_read_bio_PrivateKey(b, NULL, NULL, (void *) "")
            : (void *) PEM_read_bio_X509(b, NULL, NULL, NULL);
    BIO_free(b);

    if (x == NULL) {
        die(path);
    }

    return x;
}


static void
hex(const unsigned char *p, size_t n, char *out)
{
    size_t  i;

    for (i = 0; i < n; i++) {
        sprintf(out + 2 * i, "%02x", p[i]);
    }

    out[2 * n] = '\0';
}


static X509_REQ *
make_csr(EVP_PKEY *key, const char *cn, const char *challenge,
    const EVP_MD *md, int badsig)
{
    X509_REQ                  *req;
    X509_NAME                 *name;
    X509_EXTENSION            *ku;
    STACK_OF(X509_EXTENSION)  *exts;
    const ASN1_BIT_STRING     *sig;

    req = X509_REQ_new();
    name = X509_NAME_new();

    X509_NAME_add_entry_by_txt(name, "O", MBSTRING_UTF8,
                               (unsigned char *) "ngx_mdm tests", -1, -1, 0);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8,
                               (unsigned char *) cn, -1, -1, 0);
    X509_REQ_set_subject_name(req, name);
    X509_NAME_free(name);
    X509_REQ_set_pubkey(req, key);

    if (strcmp(challenge, "-") != 0
        && !X509_REQ_add1_attr_by_NID(req, NID_pkcs9_challengePassword,
                                      MBSTRING_UTF8,
                                      (unsigned char *) challenge, -1))
    {
        die("challengePassword");
    }

    /* what an Apple profile's "Key Usage 5" asks for */
    exts = sk_X509_EXTENSION_new_null();
    ku = X509V3_EXT_conf_nid(NULL, NULL, NID_key_usage,
                             "critical,digitalSignature,keyEncipherment");
    sk_X509_EXTENSION_push(exts, ku);
    X509_REQ_add_extensions(req, exts);
    sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);

    if (X509_REQ_sign(req, key, md) <= 0) {
        die("X509_REQ_sign");
    }

    if (badsig) {
        X509_REQ_get0_signature(req, &sig, NULL);
        ((ASN1_BIT_STRING *) sig)->data[10] ^= 0x01;
    }

    return req;
}


static X509 *
make_signer(EVP_PKEY *key, const EVP_MD *md)
{
    X509       *x;
    X509_NAME  *name;

    x = X509_new();
    name = X509_NAME_new();
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8,
                               (unsigned char *) "SCEP SIGNER", -1, -1, 0);
    X509_set_version(x, X509_VERSION_3);
    ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
    X509_set_subject_name(x, name);
    X509_set_issuer_name(x, name);
    X509_NAME_free(name);
    X509_gmtime_adj(X509_getm_notBefore(x), -60);
    X509_gmtime_adj(X509_getm_notAfter(x), 86400);
    X509_set_pubkey(x, key);

    if (X509_sign(x, key, md) <= 0) {
        die("X509_sign");
    }

    return x;
}


static int
req(int argc, char **argv)
{
    int                  i, n, len, envlen, bits, badsig, wrongrecip, tamper;
    BIO                 *in;
    X509                *ca, *signer;
    FILE                *f;
    char                 txid[41], noncehex[33], path[4096];
    const char          *dir, *type, *keydir;
    X509_REQ            *csr;
    EVP_PKEY            *key;
    unsigned char        nonce[16], md[20], *der, *envder, *p;
    CMS_SignerInfo      *si;
    CMS_ContentInfo     *env, *cms;
    STACK_OF(X509)      *recips;
    const EVP_MD        *dig;
    const EVP_CIPHER    *cipher;

    if (argc < 8) {
        die("usage: req DIR CA.pem CN CHALLENGE CIPHER MD [OPTION...]");
    }

    dir = argv[2];
    ca = pem_file(argv[3], 0);

    cipher = strcmp(argv[6], "aes128") == 0 ? EVP_aes_128_cbc()
             : strcmp(argv[6], "aes192") == 0 ? EVP_aes_192_cbc()
             : strcmp(argv[6], "aes256") == 0 ? EVP_aes_256_cbc()
             : strcmp(argv[6], "des3") == 0 ? EVP_des_ede3_cbc()
             : strcmp(argv[6], "des") == 0 ? EVP_CIPHER_fetch(NULL, "DES-CBC",
                                                              "provider=legacy")
             : NULL;
    dig = strcmp(argv[7], "sha1") == 0 ? EVP_sha1()
          : strcmp(argv[7], "sha256") == 0 ? EVP_sha256()
          : strcmp(argv[7], "sha512") == 0 ? EVP_sha512() : NULL;

    if (cipher == NULL || dig == NULL) {
        die("unknown cipher or digest (for des: the legacy provider)");
    }

    bits = 2048;
    badsig = wrongrecip = tamper = 0;
    type = "19";
    keydir = NULL;

    for (i = 8; i < argc; i++) {
        if (strcmp(argv[i], "badcsrsig") == 0) {
            badsig = 1;
        } else if (strcmp(argv[i], "wrongrecip") == 0) {
            wrongrecip = 1;
        } else if (strcmp(argv[i], "tamper") == 0) {
            tamper = 1;
        } else if (strncmp(argv[i], "type=", 5) == 0) {
            type = argv[i] + 5;
        } else if (strncmp(argv[i], "bits=", 5) == 0) {
            bits = atoi(argv[i] + 5);
        } else if (strncmp(argv[i], "keydir=", 7) == 0) {
            keydir = argv[i] + 7;
        } else {
            die(argv[i]);
        }
    }

    if (keydir) {
        snprintf(path, sizeof(path), "%s/key.pem", keydir);
        key = pem_file(path, 1);
    } else {
        key = EVP_RSA_gen(bits);
    }

    if (key == NULL) {
        die("EVP_RSA_gen");
    }

    csr = make_csr(key, argv[4], argv[5], dig, badsig);
    signer = make_signer(key, dig);

    /* the CSR, enveloped to the CA */
    der = NULL;
    len = i2d_X509_REQ(csr, &der);
    in = BIO_new_mem_buf(der, len);
    recips = sk_X509_new_null();
    sk_X509_push(recips, wrongrecip ? signer : ca);

    env = CMS_encrypt(recips, in, cipher, CMS_BINARY);
    if (env == NULL) {
        die("CMS_encrypt");
    }

    BIO_free(in);
    OPENSSL_free(der);
    der = NULL;
    len = i2d_CMS_ContentInfo(env, &der);
    in = BIO_new_mem_buf(der, len);

    /* transactionID: hex SHA-1 of the public key, as Apple clients do */
    p = NULL;
    n = i2d_PUBKEY(key, &p);
    SHA1(p, n, md);
    OPENSSL_free(p);
    hex(md, 20, txid);
    RAND_bytes(nonce, sizeof(nonce));
    hex(nonce, sizeof(nonce), noncehex);

    cms = CMS_sign(NULL, NULL, NULL, NULL, CMS_PARTIAL | CMS_BINARY);
    si = CMS_add1_signer(cms, signer, key, dig, CMS_BINARY | CMS_NOSMIMECAP);

    if (si == NULL
        || !CMS_signed_add1_attr_by_OBJ(si, oid_type, V_ASN1_PRINTABLESTRING,
                                        type, (int) strlen(type))
        || !CMS_signed_add1_attr_by_OBJ(si, oid_txid, V_ASN1_PRINTABLESTRING,
                                        txid, 40)
        || !CMS_signed_add1_attr_by_OBJ(si, oid_snonce, V_ASN1_OCTET_STRING,
                                        nonce, sizeof(nonce))
        || CMS_final(cms, in, NULL, CMS_BINARY) != 1)
    {
        die("CMS_sign");
    }

    envder = der;
    envlen = len;
    der = NULL;
    len = i2d_CMS_ContentInfo(cms, &der);

    /*
     * A byte of the signed envelope's ciphertext flipped on the way: the
     * DER stays well-formed, the signature no longer matches.
     */
    if (tamper) {
        for (i = 0; i + envlen <= len; i++) {
            if (memcmp(der + i, envder, envlen) == 0) {
                break;
            }
        }

        if (i + envlen > len) {
            die("the envelope is not in the message");
        }

        der[i + envlen - 20] ^= 0x01;
    }

    OPENSSL_free(envder);

    spew(dir, "req.der", der, len);
    spew(dir, "txid", txid, 40);
    spew(dir, "nonce", noncehex, 32);

    snprintf(path, sizeof(path), "%s/key.pem", dir);
    f = fopen(path, "w");
    PEM_write_PrivateKey(f, key, NULL, NULL, 0, NULL, NULL);
    fclose(f);
    snprintf(path, sizeof(path), "%s/signer.pem", dir);
    f = fopen(path, "w");
    PEM_write_X509(f, signer);
    fclose(f);

    return 0;
}


/* a single-valued signed attribute as text (hex for octet strings) */

static int
attr(CMS_SignerInfo *si, ASN1_OBJECT *oid, int type, char *out, size_t size)
{
    ASN1_STRING  *s;

    s = CMS_signed_get0_data_by_OBJ(si, oid, -3, type);
    if (s == NULL) {
        return 0;
    }

    if ((size_t) ASN1_STRING_length(s) * 2 + 1 > size) {
        die("attribute too long");
    }

    if (type == V_ASN1_OCTET_STRING) {
        hex(ASN1_STRING_get0_data(s), ASN1_STRING_length(s), out);
    } else {
        memcpy(out, ASN1_STRING_get0_data(s), ASN1_STRING_length(s));
        out[ASN1_STRING_length(s)] = '\0';
    }

    return 1;
}


static int
rep(int argc, char **argv)
{
    int                   i;
    BIO                  *content, *plain, *empty;
    long                  len;
    char                  path[4096], buf[512], *data;
    FILE                 *f;
    X509                 *signer, *me, *x, *got;
    PKCS7                *p7, *envp7;
    EVP_PKEY             *key;
    X509_ALGOR           *dig;
    const char           *dir;
    unsigned char        *der;
    STACK_OF(X509)       *certs;
    CMS_SignerInfo       *si;
    CMS_ContentInfo      *cms, *env;
    const unsigned char  *p;

    if (argc != 5 && argc != 6) {
        die("usage: rep DIR SIGNER.pem REP.der [ISSUER.pem]");
    }

    dir = argv[2];
    signer = pem_file(argv[3], 0);
    der = slurp(argv[4], &len);

    p = der;
    cms = d2i_CMS_ContentInfo(NULL, &p, len);
    if (cms == NULL || OBJ_obj2nid(CMS_get0_type(cms)) != NID_pkcs7_signed) {
        die("the answer is not a CMS SignedData");
    }

    certs = sk_X509_new_null();
    sk_X509_push(certs, signer);
    content = BIO_new(BIO_s_mem());
    empty = BIO_new_mem_buf("", 0);

    /* only the given certificate may have signed it */
    if (CMS_verify(cms, certs, NULL, CMS_is_detached(cms) ? empty : NULL,
                   content,
                   CMS_NO_SIGNER_CERT_VERIFY | CMS_NOINTERN | CMS_BINARY)
        != 1)
    {
        die("the CertRep is not signed by the given certificate");
    }

    si = sk_CMS_SignerInfo_value(CMS_get0_SignerInfos(cms), 0);
    CMS_SignerInfo_get0_algs(si, NULL, NULL, &dig, NULL);
    printf("digest=%s\n", OBJ_nid2sn(OBJ_obj2nid(dig->algorithm)));
    printf("detached=%d\n", CMS_is_detached(cms));

    if (attr(si, oid_type, V_ASN1_PRINTABLESTRING, buf, sizeof(buf))) {
        printf("messageType=%s\n", buf);
    }
    if (attr(si, oid_status, V_ASN1_PRINTABLESTRING, buf, sizeof(buf))) {
        printf("pkiStatus=%s\n", buf);
    }
    if (attr(si, oid_fail, V_ASN1_PRINTABLESTRING, buf, sizeof(buf))) {
        printf("failInfo=%s\n", buf);
    }
    if (attr(si, oid_txid, V_ASN1_PRINTABLESTRING, buf, sizeof(buf))) {
        printf("transactionID=%s\n", buf);
    }
    if (attr(si, oid_rnonce, V_ASN1_OCTET_STRING, buf, sizeof(buf))) {
        printf("recipientNonce=%s\n", buf);
    }
    if (attr(si, oid_snonce, V_ASN1_OCTET_STRING, buf, sizeof(buf))) {
        printf("senderNonce=%s\n", buf);
    }

    len = BIO_get_mem_data(content, &data);
    printf("content=%ld\n", len);

    if (len == 0) {
        return 0;
    }

    /* a SUCCESS: the envelope is for our signer certificate */
    p = (unsigned char *) data;
    envp7 = d2i_PKCS7(NULL, &p, len);
    if (envp7 == NULL || !PKCS7_type_is_enveloped(envp7)) {
        die("the content is not an EnvelopedData");
    }
    printf("envelope=%s\n", OBJ_nid2sn(OBJ_obj2nid(
                    envp7->d.enveloped->enc_data->algorithm->algorithm)));

    /*
     * Whom it is for: the recipient's issuer and serial, for a request made
     * elsewhere (a recorded vector) whose key the test does not have.
     */
    for (i = 0; i < sk_PKCS7_RECIP_INFO_num(envp7->d.enveloped->recipientinfo);
         i++)
    {
        PKCS7_RECIP_INFO  *ri;
        BIGNUM            *bn;
        char              *dec;

        ri = sk_PKCS7_RECIP_INFO_value(envp7->d.enveloped->recipientinfo, i);
        X509_NAME_oneline(ri->issuer_and_serial->issuer, buf, sizeof(buf));
        bn = ASN1_INTEGER_to_BN(ri->issuer_and_serial->serial, NULL);
        dec = bn ? BN_bn2hex(bn) : NULL;
        printf("recipient=%s serial=%s\n", buf, dec ? dec : "?");
        OPENSSL_free(dec);
        BN_free(bn);
    }

    snprintf(path, sizeof(path), "%s/key.pem", dir);
    f = fopen(path, "r");
    if (f == NULL) {
        printf("decrypted=0\n");
        return 0;
    }

    fclose(f);
    key = pem_file(path, 1);
    snprintf(path, sizeof(path), "%s/signer.pem", dir);
    me = pem_file(path, 0);

    env = d2i_CMS_bio(content, NULL);
    plain = BIO_new(BIO_s_mem());
    if (env == NULL || CMS_decrypt(env, key, me, NULL, plain, CMS_BINARY) != 1)
    {
        die("cannot decrypt the envelope with our key");
    }

    len = BIO_get_mem_data(plain, &data);
    p = (unsigned char *) data;
    p7 = d2i_PKCS7(NULL, &p, len);
    if (p7 == NULL || !PKCS7_type_is_signed(p7)
        || p7->d.sign->signer_info == NULL
        || sk_PKCS7_SIGNER_INFO_num(p7->d.sign->signer_info) != 0)
    {
        die("the envelope holds no degenerate SignedData");
    }

    got = NULL;
    printf("certs=%d\n", sk_X509_num(p7->d.sign->cert));

    for (i = 0; i < sk_X509_num(p7->d.sign->cert); i++) {
        x = sk_X509_value(p7->d.sign->cert, i);
        if (EVP_PKEY_eq(X509_get0_pubkey(x), key) == 1) {
            got = x;
        }
    }

    if (got == NULL) {
        die("no certificate for our key in the answer");
    }

    printf("pubkey_match=1\n");
    x = argc == 6 ? pem_file(argv[5], 0) : signer;
    printf("issuer_signed=%d\n",
           X509_verify(got, X509_get0_pubkey(x)) == 1);

    snprintf(path, sizeof(path), "%s/cert.pem", dir);
    f = fopen(path, "w");
    PEM_write_X509(f, got);
    fclose(f);

    return 0;
}


int
main(int argc, char **argv)
{
    oid_type = OBJ_txt2obj("2.16.840.1.113733.1.9.2", 1);
    oid_status = OBJ_txt2obj("2.16.840.1.113733.1.9.3", 1);
    oid_fail = OBJ_txt2obj("2.16.840.1.113733.1.9.4", 1);
    oid_snonce = OBJ_txt2obj("2.16.840.1.113733.1.9.5", 1);
    oid_rnonce = OBJ_txt2obj("2.16.840.1.113733.1.9.6", 1);
    oid_txid = OBJ_txt2obj("2.16.840.1.113733.1.9.7", 1);

    if (argc > 1 && strcmp(argv[1], "req") == 0) {
        return req(argc, argv);
    }

    if (argc > 1 && strcmp(argv[1], "rep") == 0) {
        return rep(argc, argv);
    }

    die("usage: scepclient req|rep ...");
    return 1;
}
