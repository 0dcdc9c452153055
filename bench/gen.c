/*
 * gen: the benchmark's test population, made with OpenSSL.
 *
 *   gen pop -o DIR [-n DEVICES] [-k KEYS] [-m RECORDS] [--idle N]
 *           [--ack N] [--tokenupdate N] [--ddm N] [--fleet C] [--shuffle]
 *           [-j JOBS]
 *       An identity CA, DEVICES device certificates (RSA-2048; KEYS distinct
 *       keys, default one per device: devices beyond KEYS share keys but
 *       every certificate is its own), and signed requests, every one with
 *       its own Mdm-Signature made the way devices make it (detached CMS
 *       SignedData, SHA-256, signed attributes contentType, signingTime,
 *       messageDigest, signer certificate included):
 *         enroll-auth.req   one Authenticate per device
 *         enroll-tu.req     one TokenUpdate per device
 *         idle.req          Idle command reports             (--idle)
 *         ack.req           Acknowledged reports, walking the commands
 *                           BENCH-ACK-00000.. of every device in order
 *                           (--ack, rounded to a multiple of DEVICES)
 *         tokenupdate.req   TokenUpdate check-ins            (--tokenupdate)
 *         ddm-items.req     DeclarativeManagement declaration-items (--ddm)
 *         ddm-status.req    DeclarativeManagement status, an incremental
 *                           report of four declarations and two values
 *                           (--ddm)
 *         fleet-idle.req    (--fleet C) for each of C commands BENCH-FLEET-c,
 *                           every device's Idle (record c * DEVICES + i)
 *         fleet-ack.req     ... and its Acknowledged of BENCH-FLEET-c-k,
 *                           k = i / 10000 (one enqueue call, one UUID, per
 *                           10,000 devices)
 *         tokens.txt        every device's push token (hex), a line each
 *       --shuffle: idle.req visits the devices in a new random order on
 *       every pass (each pass still has every device once).
 *       -m splits RECORDS (default 100000) as idle 1/2, ack 1/4,
 *       tokenupdate 1/4; --ddm (default RECORDS/4) is each DDM file's.
 *       Also ca.pem, ca.key, udids.txt and params (what
 *       it was made with, for caching).
 *
 *   gen enqueue -o FILE --key KEY (--ids FILE | --synthetic PREFIX:COUNT)
 *           [--uuid FMT] [--count R] [--query Q]
 *       R admin API enqueue requests (PUT /v1/enqueue/ID,ID,...?Q) of a
 *       DeviceInformation command, to the ids of FILE (one a line) or to
 *       COUNT made-up ids PREFIX%012d (a UDID-shaped 36 characters with
 *       PREFIX "E3AC0000-0000-4000-8000-"). FMT (printf, %d = 0..R-1)
 *       gives each its CommandUUID; without --uuid the server makes one.
 *
 * GEN_KEYS=FILE: take the device keys from FILE (PEM, at least KEYS of
 * them) instead of making new ones.
 *
 * Record files: each record is "%08zu\n" (the length) followed by that many
 * bytes, one complete HTTP/1.1 request, so a wrk script (bench/replay.lua)
 * and bench/send stream them without parsing.
 *
 * Device i's n-th record of a file is signed at signingTime T - n seconds
 * (T the time gen started) and its body carries BenchSequence n: no two
 * requests share body or signature bytes.  Record i of idle.req and
 * tokenupdate.req is device i % DEVICES; ack.req is command-major (all
 * devices' first command, then all second ones), so one device's reports
 * are DEVICES requests apart and arrive in order.
 */

#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <openssl/cms.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>


#define TOPIC  "com.apple.mgmt.External.e0bd1eac-1f17-4c8e-8a63-dd17d3dd35d9"
#define HOST   "127.0.0.1"

#define PLIST_HEAD \
    "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n" \
    "<!DOCTYPE plist PUBLIC \"-//Apple//DTD PLIST 1.0//EN\" " \
    "\"http://www.apple.com/DTDs/PropertyList-1.0.dtd\">\n" \
    "<plist version=\"1.0\">\n<dict>\n"
#define PLIST_TAIL "</dict>\n</plist>\n"


typedef struct {
    char   *data;
    size_t  len;
    size_t  cap;
} buf_t;


static const char  *prog = "gen";
static time_t       gen_time;


static void
die(const char *fmt, ...)
{
    va_list  ap;

    fprintf(stderr, "%s: ", prog);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    ERR_print_errors_fp(stderr);
    exit(1);
}


static void
buf_reserve(buf_t *b, size_t n)
{
    if (b->len + n + 1 <= b->cap) {
        return;
    }

    while (b->len + n + 1 > b->cap) {
        b->cap = b->cap ? b->cap * 2 : 4096;
    }

    b->data = realloc(b->data, b->cap);
    if (b->data == NULL) {
        die("out of memory");
    }
}


static void
buf_add(buf_t *b, const void *p, size_t n)
{
    buf_reserve(b, n);
    memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = '\0';
}


static void
buf_printf(buf_t *b, const char *fmt, ...)
{
    int      n;
    va_list  ap;

    va_start(ap, fmt);
    n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);

    buf_reserve(b, (size_t) n);

    va_start(ap, fmt);
    vsnprintf(b->data + b->len, (size_t) n + 1, fmt, ap);
    va_end(ap);

    b->len += (size_t) n;
}


static char *
path_join(const char *dir, const char *name)
{
    buf_t  b = { NULL, 0, 0 };

    buf_printf(&b, "%s/%s", dir, name);
    return b.data;
}


static void
write_file(const char *path, const void *data, size_t len)
{
    FILE  *f;

    f = fopen(path, "wb");
    if (f == NULL || fwrite(data, 1, len, f) != len || fclose(f) != 0) {
        die("cannot write %s: %s", path, strerror(errno));
    }
}


/* one record: the length, then a complete HTTP/1.1 request */

static void
add_request(buf_t *out, const char *method, const char *path,
    const char *ctype, const char *extra_headers, const char *sig,
    const char *body, size_t body_len)
{
    buf_t  req = { NULL, 0, 0 };

    buf_printf(&req, "%s %s HTTP/1.1\r\nHost: " HOST "\r\n", method, path);
    if (ctype) {
        buf_printf(&req, "Content-Type: %s\r\n", ctype);
    }
    if (extra_headers) {
        buf_printf(&req, "%s", extra_headers);
    }
    if (sig) {
        buf_printf(&req, "Mdm-Signature: %s\r\n", sig);
    }
    buf_printf(&req, "Content-Length: %zu\r\n\r\n", body_len);
    buf_add(&req, body, body_len);

    buf_printf(out, "%08zu\n", req.len);
    buf_add(out, req.data, req.len);
    free(req.data);
}


/* --- PKI ----------------------------------------------------------- */

static void
add_ext(X509 *cert, X509 *issuer, int nid, const char *value)
{
    X509V3_CTX       ctx;
    X509_EXTENSION  *ext;

    X509V3_set_ctx(&ctx, issuer, cert, NULL, NULL, 0);
    ext = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
    if (ext == NULL || !X509_add_ext(cert, ext, -1)) {
        die("extension %s", OBJ_nid2sn(nid));
    }
    X509_EXTENSION_free(ext);
}


static EVP_PKEY *
new_key(void)
{
    EVP_PKEY  *k;

    k = EVP_RSA_gen(2048);
    if (k == NULL) {
        die("RSA key generation failed");
    }
    return k;
}


static X509 *
new_cert(EVP_PKEY *key, const char *cn, long serial, X509 *ca,
    EVP_PKEY *ca_key)
{
    X509       *x;
    X509_NAME  *name;

    x = X509_new();
    if (x == NULL) {
        die("X509_new");
    }

    X509_set_version(x, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(x), serial);

    /* valid from a year before generation (signingTimes go back from it)
     * for ten years after it: the cache lives */
    X509_time_adj_ex(X509_getm_notBefore(x), -365, 0, &gen_time);
    X509_time_adj_ex(X509_getm_notAfter(x), 3650, 0, &gen_time);

    name = X509_NAME_new();
    if (ca == NULL) {
        X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC,
                                   (const unsigned char *) "ngx_mdm bench",
                                   -1, -1, 0);
    }
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                               (const unsigned char *) cn, -1, -1, 0);
    X509_set_subject_name(x, name);
    X509_set_issuer_name(x, ca ? X509_get_subject_name(ca) : name);
    X509_NAME_free(name);

    X509_set_pubkey(x, key);

    if (ca == NULL) {
        add_ext(x, x, NID_basic_constraints, "critical,CA:TRUE");
        add_ext(x, x, NID_key_usage, "critical,keyCertSign,cRLSign");
        add_ext(x, x, NID_subject_key_identifier, "hash");

    } else {
        /* like an Apple SCEP identity */
        add_ext(x, ca, NID_basic_constraints, "critical,CA:FALSE");
        add_ext(x, ca, NID_key_usage,
                "critical,digitalSignature,keyEncipherment");
        add_ext(x, ca, NID_ext_key_usage, "clientAuth");
        add_ext(x, ca, NID_authority_key_identifier, "keyid");
    }

    if (!X509_sign(x, ca_key ? ca_key : key, EVP_sha256())) {
        die("X509_sign");
    }

    return x;
}


/* --- parallel work ------------------------------------------------- */

/*
 * Runs fn(lo, hi, out) for [0, total) split in jobs contiguous ranges in
 * forked children, each writing its part; the parts are concatenated in
 * order into path.
 */
typedef void (*work_fn)(size_t lo, size_t hi, buf_t *out, void *arg);

static void
parallel(const char *path, size_t total, int jobs, work_fn fn, void *arg)
{
    int     j, status, failed;
    char    part[4096];
    pid_t  *pids;
    FILE   *out, *in;
    size_t  n;
    char    chunk[1 << 16];

    if (jobs < 1) {
        jobs = 1;
    }
    if ((size_t) jobs > total) {
        jobs = total ? (int) total : 1;
    }

    pids = calloc((size_t) jobs, sizeof(pid_t));
    if (pids == NULL) {
        die("out of memory");
    }

    fflush(NULL);

    for (j = 0; j < jobs; j++) {
        pids[j] = fork();
        if (pids[j] < 0) {
            die("fork: %s", strerror(errno));
        }

        if (pids[j] == 0) {
            buf_t   b = { NULL, 0, 0 };
            size_t  lo = total * (size_t) j / (size_t) jobs;
            size_t  hi = total * (size_t) (j + 1) / (size_t) jobs;

            fn(lo, hi, &b, arg);
            snprintf(part, sizeof(part), "%s.part%d", path, j);
            write_file(part, b.data ? b.data : "", b.len);
            _exit(0);
        }
    }

    failed = 0;
    for (j = 0; j < jobs; j++) {
        if (waitpid(pids[j], &status, 0) < 0
            || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
        {
            failed = 1;
        }
    }
    if (failed) {
        die("a worker failed while making %s", path);
    }

    out = fopen(path, "wb");
    if (out == NULL) {
        die("cannot write %s: %s", path, strerror(errno));
    }

    for (j = 0; j < jobs; j++) {
        snprintf(part, sizeof(part), "%s.part%d", path, j);
        in = fopen(part, "rb");
        if (in == NULL) {
            die("cannot read %s", part);
        }
        while ((n = fread(chunk, 1, sizeof(chunk), in)) > 0) {
            if (fwrite(chunk, 1, n, out) != n) {
                die("cannot write %s", path);
            }
        }
        fclose(in);
        unlink(part);
    }

    if (fclose(out) != 0) {
        die("cannot write %s", path);
    }

    free(pids);
}


/* --- the population ------------------------------------------------ */

typedef struct {
    size_t      devices;
    size_t      keys;
    X509       *ca;
    EVP_PKEY   *ca_key;
    EVP_PKEY  **key;          /* [keys] */
    X509      **cert;         /* [devices] */
    char       *keys_path;
    char       *certs_path;
    int         shuffle;      /* idle.req: a random device order a pass */
} pop_t;


static void
udid(char *out, size_t i)
{
    /* the shape of a macOS UDID */
    snprintf(out, 37, "B3AC0000-0000-4000-8000-%012llX",
             (unsigned long long) (i & 0xffffffffffffULL));
}


static void
keys_work(size_t lo, size_t hi, buf_t *out, void *arg)
{
    size_t     i;
    BIO       *mem;
    EVP_PKEY  *k;
    BUF_MEM   *bm;

    (void) arg;
    mem = BIO_new(BIO_s_mem());

    for (i = lo; i < hi; i++) {
        k = new_key();
        PEM_write_bio_PrivateKey(mem, k, NULL, NULL, 0, NULL, NULL);
        EVP_PKEY_free(k);
    }

    BIO_get_mem_ptr(mem, &bm);
    buf_add(out, bm->data, bm->length);
    BIO_free(mem);
}


static void
certs_work(size_t lo, size_t hi, buf_t *out, void *arg)
{
    pop_t    *p = arg;
    size_t    i;
    char      cn[64];
    BIO      *mem;
    X509     *x;
    BUF_MEM  *bm;

    mem = BIO_new(BIO_s_mem());

    for (i = lo; i < hi; i++) {
        snprintf(cn, sizeof(cn), "bench device %zu", i);
        x = new_cert(p->key[i % p->keys], cn, (long) i + 2, p->ca, p->ca_key);
        PEM_write_bio_X509(mem, x);
        X509_free(x);
    }

    BIO_get_mem_ptr(mem, &bm);
    buf_add(out, bm->data, bm->length);
    BIO_free(mem);
}


static void
load_keys(pop_t *p)
{
    size_t  i;
    FILE   *f;

    p->key = calloc(p->keys, sizeof(EVP_PKEY *));
    f = fopen(p->keys_path, "rb");
    if (p->key == NULL || f == NULL) {
        die("cannot read %s", p->keys_path);
    }
    for (i = 0; i < p->keys; i++) {
        p->key[i] = PEM_read_PrivateKey(f, NULL, NULL, NULL);
        if (p->key[i] == NULL) {
            die("%s: key %zu missing", p->keys_path, i);
        }
    }
    fclose(f);
}


static void
load_certs(pop_t *p)
{
    size_t  i;
    FILE   *f;

    p->cert = calloc(p->devices, sizeof(X509 *));
    f = fopen(p->certs_path, "rb");
    if (p->cert == NULL || f == NULL) {
        die("cannot read %s", p->certs_path);
    }
    for (i = 0; i < p->devices; i++) {
        p->cert[i] = PEM_read_X509(f, NULL, NULL, NULL);
        if (p->cert[i] == NULL) {
            die("%s: certificate %zu missing", p->certs_path, i);
        }
    }
    fclose(f);
}


/* base64 of a detached CMS SignedData over body, as a device makes it */

static char *
mdm_sign(pop_t *p, size_t dev, time_t signing_time, const char *body,
    size_t len)
{
    int               n;
    char             *b64;
    unsigned char    *der;
    BIO              *in;
    ASN1_TIME        *t;
    CMS_SignerInfo   *si;
    CMS_ContentInfo  *cms;
    const int         flags = CMS_DETACHED | CMS_BINARY;

    cms = CMS_sign(NULL, NULL, NULL, NULL, flags | CMS_PARTIAL);
    if (cms == NULL) {
        die("CMS_sign");
    }

    si = CMS_add1_signer(cms, p->cert[dev], p->key[dev % p->keys],
                         EVP_sha256(), flags | CMS_NOSMIMECAP);
    if (si == NULL) {
        die("CMS_add1_signer");
    }

    /* CMS_final adds signingTime = now unless it is there already */
    t = ASN1_TIME_set(NULL, signing_time);
    if (t == NULL
        || !CMS_signed_add1_attr_by_NID(si, NID_pkcs9_signingTime, t->type,
                                        t, -1))
    {
        die("signingTime");
    }
    ASN1_TIME_free(t);

    in = BIO_new_mem_buf(body, (int) len);
    if (in == NULL || !CMS_final(cms, in, NULL, flags)) {
        die("CMS_final");
    }
    BIO_free(in);

    der = NULL;
    n = i2d_CMS_ContentInfo(cms, &der);
    if (n <= 0) {
        die("i2d_CMS_ContentInfo");
    }
    CMS_ContentInfo_free(cms);

    b64 = malloc(((size_t) n + 2) / 3 * 4 + 1);
    if (b64 == NULL) {
        die("out of memory");
    }
    EVP_EncodeBlock((unsigned char *) b64, der, n);
    OPENSSL_free(der);

    return b64;
}


static void
add_signed(buf_t *out, pop_t *p, size_t dev, size_t seq, const char *path,
    const char *ctype, buf_t *body)
{
    char  *sig;

    sig = mdm_sign(p, dev, gen_time - (time_t) seq, body->data, body->len);
    add_request(out, "PUT", path, ctype, "User-Agent: MDM/1.0\r\n", sig,
                body->data, body->len);
    free(sig);
}


#define CHECKIN  "application/x-apple-aspen-mdm-checkin"
#define CONNECT  "application/x-apple-aspen-mdm"


static void
auth_work(size_t lo, size_t hi, buf_t *out, void *arg)
{
    pop_t   *p = arg;
    size_t   i;
    char     u[37];
    buf_t    body = { NULL, 0, 0 };

    for (i = lo; i < hi; i++) {
        udid(u, i);
        body.len = 0;
        buf_printf(&body, PLIST_HEAD
            "\t<key>BuildVersion</key>\n\t<string>23C71</string>\n"
            "\t<key>DeviceName</key>\n\t<string>Bench Mac %zu</string>\n"
            "\t<key>MessageType</key>\n\t<string>Authenticate</string>\n"
            "\t<key>Model</key>\n\t<string>Mac14,2</string>\n"
            "\t<key>ModelName</key>\n\t<string>MacBook Air</string>\n"
            "\t<key>OSVersion</key>\n\t<string>14.2.1</string>\n"
            "\t<key>ProductName</key>\n\t<string>Mac14,2</string>\n"
            "\t<key>SerialNumber</key>\n\t<string>C02B%08zu</string>\n"
            "\t<key>Topic</key>\n\t<string>" TOPIC "</string>\n"
            "\t<key>UDID</key>\n\t<string>%s</string>\n"
            PLIST_TAIL, i, i, u);
        add_signed(out, p, i, 0, "/mdm/checkin", CHECKIN, &body);
    }

    free(body.data);
}


/* a device's push token and magic are its own and stay the same */
static void
push_token(unsigned char *tok, size_t dev)
{
    size_t  k;

    for (k = 0; k < 32; k++) {
        tok[k] = (unsigned char) ((dev * 2654435761u) >> (k % 24)) ^ (k * 37);
    }
}


static void
token_update_body(buf_t *body, size_t dev, const size_t *seq)
{
    char           u[37];
    unsigned char  tok[32], b64[64];

    udid(u, dev);

    push_token(tok, dev);
    EVP_EncodeBlock(b64, tok, sizeof(tok));

    body->len = 0;
    buf_printf(body, PLIST_HEAD
        "\t<key>AwaitingConfiguration</key>\n\t<false/>\n");
    if (seq) {
        buf_printf(body, "\t<key>BenchSequence</key>\n"
                         "\t<integer>%zu</integer>\n", *seq);
    }
    buf_printf(body,
        "\t<key>MessageType</key>\n\t<string>TokenUpdate</string>\n"
        "\t<key>PushMagic</key>\n\t<string>%08zX-BFFA-40F6-89FA-B60752EB63C2"
        "</string>\n"
        "\t<key>Token</key>\n\t<data>\n\t%s\n\t</data>\n"
        "\t<key>Topic</key>\n\t<string>" TOPIC "</string>\n"
        "\t<key>UDID</key>\n\t<string>%s</string>\n"
        PLIST_TAIL, dev, b64, u);
}


static void
tu_enroll_work(size_t lo, size_t hi, buf_t *out, void *arg)
{
    pop_t   *p = arg;
    size_t   i;
    buf_t    body = { NULL, 0, 0 };

    for (i = lo; i < hi; i++) {
        token_update_body(&body, i, NULL);
        add_signed(out, p, i, 0, "/mdm/checkin", CHECKIN, &body);
    }

    free(body.data);
}


static void
tu_work(size_t lo, size_t hi, buf_t *out, void *arg)
{
    pop_t   *p = arg;
    size_t   i, dev, seq;
    buf_t    body = { NULL, 0, 0 };

    for (i = lo; i < hi; i++) {
        dev = i % p->devices;
        seq = i / p->devices + 1;
        token_update_body(&body, dev, &seq);
        add_signed(out, p, dev, seq, "/mdm/checkin", CHECKIN, &body);
    }

    free(body.data);
}


/*
 * --shuffle: pass n of idle.req visits the devices in the order of a
 * Fisher-Yates permutation seeded by n, the same in every job
 */
static size_t *
pass_order(pop_t *p, size_t pass, size_t *order)
{
    size_t    i, j, t;
    uint64_t  x;

    if (order == NULL) {
        order = malloc(p->devices * sizeof(size_t));
        if (order == NULL) {
            die("out of memory");
        }
    }
    for (i = 0; i < p->devices; i++) {
        order[i] = i;
    }
    x = 0x9E3779B97F4A7C15ULL * (pass + 1);
    for (i = p->devices - 1; i > 0; i--) {
        /* xorshift64*: any fair shuffle does */
        x ^= x >> 12; x ^= x << 25; x ^= x >> 27;
        j = (size_t) ((x * 2685821657736338717ULL) % (i + 1));
        t = order[i]; order[i] = order[j]; order[j] = t;
    }
    return order;
}


static void
idle_work(size_t lo, size_t hi, buf_t *out, void *arg)
{
    pop_t   *p = arg;
    size_t   i, dev, seq, pass, *order = NULL;
    size_t   have = (size_t) -1;
    char     u[37];
    buf_t    body = { NULL, 0, 0 };

    for (i = lo; i < hi; i++) {
        dev = i % p->devices;
        seq = i / p->devices + 1;
        if (p->shuffle) {
            pass = i / p->devices;
            if (pass != have) {
                order = pass_order(p, pass, order);
                have = pass;
            }
            dev = order[dev];
        }
        udid(u, dev);
        body.len = 0;
        buf_printf(&body, PLIST_HEAD
            "\t<key>BenchSequence</key>\n\t<integer>%zu</integer>\n"
            "\t<key>Status</key>\n\t<string>Idle</string>\n"
            "\t<key>UDID</key>\n\t<string>%s</string>\n"
            PLIST_TAIL, seq, u);
        add_signed(out, p, dev, seq, "/mdm/connect", CONNECT, &body);
    }

    free(order);
    free(body.data);
}


static void
ack_work(size_t lo, size_t hi, buf_t *out, void *arg)
{
    pop_t   *p = arg;
    size_t   i, dev, cmd;
    char     u[37];
    buf_t    body = { NULL, 0, 0 };

    for (i = lo; i < hi; i++) {
        dev = i % p->devices;
        cmd = i / p->devices;
        udid(u, dev);
        body.len = 0;
        buf_printf(&body, PLIST_HEAD
            "\t<key>CommandUUID</key>\n\t<string>BENCH-ACK-%05zu</string>\n"
            "\t<key>Status</key>\n\t<string>Acknowledged</string>\n"
            "\t<key>UDID</key>\n\t<string>%s</string>\n"
            PLIST_TAIL, cmd, u);
        add_signed(out, p, dev, cmd + 1, "/mdm/connect", CONNECT, &body);
    }

    free(body.data);
}


/* DDM check-ins: what a device sends after the DeclarativeManagement command */

static void
ddm_body(buf_t *body, size_t dev, size_t seq, int status)
{
    char   u[37];
    char   b64[2048];
    buf_t  json = { NULL, 0, 0 };

    udid(u, dev);

    body->len = 0;
    buf_printf(body, PLIST_HEAD
        "\t<key>BenchSequence</key>\n\t<integer>%zu</integer>\n", seq);

    if (status) {
        /* the four declarations bench/run.sh gives every device */
        buf_printf(&json, "{\"StatusItems\":{\"management\":{\"declarations\":{"
            "\"activations\":[{\"active\":true,\"identifier\":"
            "\"bench.activation\",\"valid\":\"valid\",\"server-token\":"
            "\"%032zx\"}],\"configurations\":[{\"active\":true,"
            "\"identifier\":\"bench.passcode\",\"valid\":\"valid\","
            "\"server-token\":\"%032zx\"},{\"active\":true,\"identifier\":"
            "\"bench.status\",\"valid\":\"valid\",\"server-token\":"
            "\"%032zx\"}],\"assets\":[],\"management\":[{\"active\":false,"
            "\"identifier\":\"bench.properties\",\"valid\":\"valid\","
            "\"server-token\":\"%032zx\"}]}},\"device\":{\"operating-system\":"
            "{\"version\":\"14.2.%zu\",\"build-version\":\"23C%zu\"}}},"
            "\"Errors\":[]}", seq, seq + 1, seq + 2, seq + 3, seq, seq);
        EVP_EncodeBlock((unsigned char *) b64, (unsigned char *) json.data,
                        (int) json.len);
        buf_printf(body, "\t<key>Data</key>\n\t<data>%s</data>\n", b64);
        free(json.data);
    }

    buf_printf(body,
        "\t<key>Endpoint</key>\n\t<string>%s</string>\n"
        "\t<key>MessageType</key>\n\t<string>DeclarativeManagement</string>\n"
        "\t<key>UDID</key>\n\t<string>%s</string>\n"
        PLIST_TAIL, status ? "status" : "declaration-items", u);
}


static void
ddm_work(size_t lo, size_t hi, buf_t *out, void *arg, int status)
{
    pop_t   *p = arg;
    size_t   i, dev, seq;
    buf_t    body = { NULL, 0, 0 };

    for (i = lo; i < hi; i++) {
        dev = i % p->devices;
        seq = i / p->devices + 1;
        ddm_body(&body, dev, seq, status);
        add_signed(out, p, dev, seq, "/mdm/checkin", CHECKIN, &body);
    }

    free(body.data);
}


static void
ddm_items_work(size_t lo, size_t hi, buf_t *out, void *arg)
{
    ddm_work(lo, hi, out, arg, 0);
}


static void
ddm_status_work(size_t lo, size_t hi, buf_t *out, void *arg)
{
    ddm_work(lo, hi, out, arg, 1);
}


/*
 * the mass-command benchmark (bench/fleet.sh): for command c, every
 * device's Idle (record c * DEVICES + i) and its Acknowledged of
 * BENCH-FLEET-c-k, k = i / 10,000: the enqueue API takes 10,000 ids a
 * call and a CommandUUID once, so a fleet-wide command is one call (and
 * one UUID) per 10,000 devices.  BenchSequence 100000 + c keeps these
 * bodies and signatures apart from idle.req's
 */
#define FLEET_SEQ       100000
#define FLEET_PER_CALL  10000

static void
fleet_idle_work(size_t lo, size_t hi, buf_t *out, void *arg)
{
    pop_t   *p = arg;
    size_t   i, dev, cmd;
    char     u[37];
    buf_t    body = { NULL, 0, 0 };

    for (i = lo; i < hi; i++) {
        dev = i % p->devices;
        cmd = i / p->devices;
        udid(u, dev);
        body.len = 0;
        buf_printf(&body, PLIST_HEAD
            "\t<key>BenchSequence</key>\n\t<integer>%zu</integer>\n"
            "\t<key>Status</key>\n\t<string>Idle</string>\n"
            "\t<key>UDID</key>\n\t<string>%s</string>\n"
            PLIST_TAIL, FLEET_SEQ + cmd, u);
        add_signed(out, p, dev, FLEET_SEQ + 2 * cmd, "/mdm/connect", CONNECT,
                   &body);
    }

    free(body.data);
}


static void
fleet_ack_work(size_t lo, size_t hi, buf_t *out, void *arg)
{
    pop_t   *p = arg;
    size_t   i, dev, cmd;
    char     u[37];
    buf_t    body = { NULL, 0, 0 };

    for (i = lo; i < hi; i++) {
        dev = i % p->devices;
        cmd = i / p->devices;
        udid(u, dev);
        body.len = 0;
        buf_printf(&body, PLIST_HEAD
            "\t<key>CommandUUID</key>\n\t<string>BENCH-FLEET-%zu-%zu"
            "</string>\n"
            "\t<key>Status</key>\n\t<string>Acknowledged</string>\n"
            "\t<key>UDID</key>\n\t<string>%s</string>\n"
            PLIST_TAIL, cmd, dev / FLEET_PER_CALL, u);
        add_signed(out, p, dev, FLEET_SEQ + 2 * cmd + 1, "/mdm/connect",
                   CONNECT, &body);
    }

    free(body.data);
}


static long
num_arg(const char *s, const char *what)
{
    char  *end;
    long   v;

    errno = 0;
    v = strtol(s, &end, 10);
    if (errno || *end || v < 0) {
        die("bad %s: %s", what, s);
    }
    return v;
}


static double
now_s(void)
{
    struct timespec  ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double) ts.tv_sec + (double) ts.tv_nsec / 1e9;
}


static void
step(const char *what, size_t n, double t0)
{
    fprintf(stderr, "gen: %-28s %8zu in %6.1f s\n", what, n, now_s() - t0);
}


static int
cmd_pop(int argc, char **argv)
{
    int          c, jobs;
    long         records, idle, ack, tu, ddm, fleet;
    char        *dir, *tmp, *path, u[37];
    double       t0;
    pop_t        p;
    buf_t        b = { NULL, 0, 0 };
    size_t       i;
    FILE        *f;
    struct stat  st;

    static struct option  opts[] = {
        { "idle", required_argument, NULL, 'I' },
        { "ack", required_argument, NULL, 'A' },
        { "tokenupdate", required_argument, NULL, 'T' },
        { "ddm", required_argument, NULL, 'D' },
        { "fleet", required_argument, NULL, 'F' },
        { "shuffle", no_argument, NULL, 'S' },
        { NULL, 0, NULL, 0 }
    };

    memset(&p, 0, sizeof(p));
    fleet = 0;
    dir = NULL;
    p.devices = 1000;
    records = 100000;
    idle = ack = tu = ddm = -1;
    jobs = (int) sysconf(_SC_NPROCESSORS_ONLN);

    while ((c = getopt_long(argc, argv, "o:n:k:m:j:", opts, NULL)) != -1) {
        switch (c) {
        case 'o': dir = optarg; break;
        case 'n': p.devices = (size_t) num_arg(optarg, "-n"); break;
        case 'k': p.keys = (size_t) num_arg(optarg, "-k"); break;
        case 'm': records = num_arg(optarg, "-m"); break;
        case 'j': jobs = (int) num_arg(optarg, "-j"); break;
        case 'I': idle = num_arg(optarg, "--idle"); break;
        case 'A': ack = num_arg(optarg, "--ack"); break;
        case 'T': tu = num_arg(optarg, "--tokenupdate"); break;
        case 'D': ddm = num_arg(optarg, "--ddm"); break;
        case 'F': fleet = num_arg(optarg, "--fleet"); break;
        case 'S': p.shuffle = 1; break;
        default: return 2;
        }
    }

    if (dir == NULL || p.devices == 0) {
        die("pop needs -o DIR and -n > 0");
    }
    if (p.keys == 0 || p.keys > p.devices) {
        p.keys = p.devices;
    }
    if (idle < 0) idle = records / 2;
    if (ack < 0) ack = records / 4;
    if (tu < 0) tu = records - records / 2 - records / 4;
    ack = ack / (long) p.devices * (long) p.devices;
    if (ddm < 0) ddm = records / 4;

    /* made in DIR.tmp, renamed when complete: a cache is whole or absent */
    b.len = 0;
    buf_printf(&b, "%s.tmp", dir);
    tmp = strdup(b.data);
    if (stat(tmp, &st) == 0) {
        b.len = 0;
        buf_printf(&b, "rm -rf '%s'", tmp);
        if (system(b.data) != 0) {
            die("cannot remove %s", tmp);
        }
    }
    if (mkdir(tmp, 0755) != 0) {
        die("mkdir %s: %s", tmp, strerror(errno));
    }

    gen_time = time(NULL);

    /* the CA */
    t0 = now_s();
    p.ca_key = new_key();
    p.ca = new_cert(p.ca_key, "ngx_mdm bench identity CA", 1, NULL, NULL);
    path = path_join(tmp, "ca.pem");
    f = fopen(path, "wb");
    if (f == NULL || !PEM_write_X509(f, p.ca) || fclose(f) != 0) {
        die("cannot write %s", path);
    }
    free(path);
    path = path_join(tmp, "ca.key");
    f = fopen(path, "wb");
    if (f == NULL
        || !PEM_write_PrivateKey(f, p.ca_key, NULL, NULL, 0, NULL, NULL)
        || fclose(f) != 0)
    {
        die("cannot write %s", path);
    }
    free(path);

    p.keys_path = path_join(tmp, "keys.pem");
    if (getenv("GEN_KEYS") && access(getenv("GEN_KEYS"), R_OK) == 0) {
        /* keys made before (bench/lib.sh keeps them): at least KEYS */
        b.len = 0;
        buf_printf(&b, "cp '%s' '%s'", getenv("GEN_KEYS"), p.keys_path);
        if (system(b.data) != 0) {
            die("cannot copy %s", getenv("GEN_KEYS"));
        }
    } else {
        parallel(p.keys_path, p.keys, jobs, keys_work, &p);
    }
    load_keys(&p);
    step("RSA-2048 device keys", p.keys, t0);

    t0 = now_s();
    p.certs_path = path_join(tmp, "certs.pem");
    parallel(p.certs_path, p.devices, jobs, certs_work, &p);
    load_certs(&p);
    step("device certificates", p.devices, t0);

    b.len = 0;
    for (i = 0; i < p.devices; i++) {
        udid(u, i);
        buf_printf(&b, "%s\n", u);
    }
    path = path_join(tmp, "udids.txt");
    write_file(path, b.data, b.len);
    free(path);

    b.len = 0;
    for (i = 0; i < p.devices; i++) {
        unsigned char  tok[32];
        size_t         k;

        push_token(tok, i);
        for (k = 0; k < sizeof(tok); k++) {
            buf_printf(&b, "%02x", tok[k]);
        }
        buf_printf(&b, "\n");
    }
    path = path_join(tmp, "tokens.txt");
    write_file(path, b.data, b.len);
    free(path);

#define RECORDS(name, count, fn)                                           \
    t0 = now_s();                                                          \
    path = path_join(tmp, name);                                           \
    parallel(path, (size_t) (count), jobs, fn, &p);                        \
    free(path);                                                            \
    step("signed " name, (size_t) (count), t0)

    RECORDS("enroll-auth.req", p.devices, auth_work);
    RECORDS("enroll-tu.req", p.devices, tu_enroll_work);
    RECORDS("idle.req", idle, idle_work);
    RECORDS("ack.req", ack, ack_work);
    RECORDS("tokenupdate.req", tu, tu_work);
    RECORDS("ddm-items.req", ddm, ddm_items_work);
    RECORDS("ddm-status.req", ddm, ddm_status_work);
    RECORDS("fleet-idle.req", (size_t) fleet * p.devices, fleet_idle_work);
    RECORDS("fleet-ack.req", (size_t) fleet * p.devices, fleet_ack_work);

    b.len = 0;
    buf_printf(&b, "devices=%zu\nkeys=%zu\nidle=%ld\nack=%ld\n"
                   "ack_commands=%ld\ntokenupdate=%ld\nddm=%ld\n"
                   "fleet=%ld\nshuffle=%d\ngenerated=%ld\n",
               p.devices, p.keys, idle, ack, ack / (long) p.devices, tu, ddm,
               fleet, p.shuffle, (long) gen_time);
    path = path_join(tmp, "params");
    write_file(path, b.data, b.len);
    free(path);

    b.len = 0;
    buf_printf(&b, "rm -rf '%s' && mv '%s' '%s'", dir, tmp, dir);
    if (system(b.data) != 0) {
        die("cannot move %s to %s", tmp, dir);
    }

    return 0;
}


/* --- admin API requests ------------------------------------------- */

static int
cmd_enqueue(int argc, char **argv)
{
    int           c;
    long          count, r, k, n_syn;
    char         *out_path, *key, *ids_path, *synthetic, *uuid_fmt, *query;
    char         *colon, line[256], uuid[128];
    buf_t         ids = { NULL, 0, 0 }, out = { NULL, 0, 0 };
    buf_t         body = { NULL, 0, 0 }, path = { NULL, 0, 0 };
    buf_t         auth = { NULL, 0, 0 };
    FILE         *f;
    size_t        len;
    unsigned char b64[512];

    static struct option  opts[] = {
        { "key", required_argument, NULL, 'K' },
        { "ids", required_argument, NULL, 'i' },
        { "synthetic", required_argument, NULL, 's' },
        { "uuid", required_argument, NULL, 'u' },
        { "count", required_argument, NULL, 'c' },
        { "query", required_argument, NULL, 'q' },
        { NULL, 0, NULL, 0 }
    };

    out_path = key = ids_path = synthetic = uuid_fmt = NULL;
    query = "nopush=1";
    count = 1;

    while ((c = getopt_long(argc, argv, "o:", opts, NULL)) != -1) {
        switch (c) {
        case 'o': out_path = optarg; break;
        case 'K': key = optarg; break;
        case 'i': ids_path = optarg; break;
        case 's': synthetic = optarg; break;
        case 'u': uuid_fmt = optarg; break;
        case 'c': count = num_arg(optarg, "--count"); break;
        case 'q': query = optarg; break;
        default: return 2;
        }
    }

    if (out_path == NULL || key == NULL || (!ids_path == !synthetic)) {
        die("enqueue needs -o FILE, --key KEY and one of --ids/--synthetic");
    }

    if (ids_path) {
        f = fopen(ids_path, "r");
        if (f == NULL) {
            die("cannot read %s", ids_path);
        }
        while (fgets(line, sizeof(line), f)) {
            len = strcspn(line, "\r\n");
            if (len == 0) {
                continue;
            }
            if (ids.len) {
                buf_add(&ids, ",", 1);
            }
            buf_add(&ids, line, len);
        }
        fclose(f);

    } else {
        colon = strrchr(synthetic, ':');
        if (colon == NULL) {
            die("--synthetic PREFIX:COUNT");
        }
        *colon = '\0';
        n_syn = num_arg(colon + 1, "--synthetic count");
        for (k = 0; k < n_syn; k++) {
            buf_printf(&ids, "%s%s%012ld", k ? "," : "", synthetic, k);
        }
    }

    snprintf(line, sizeof(line), "nanomdm:%s", key);
    EVP_EncodeBlock(b64, (unsigned char *) line, (int) strlen(line));
    buf_printf(&auth, "Authorization: Basic %s\r\n", b64);

    for (r = 0; r < count; r++) {
        body.len = 0;
        buf_printf(&body, PLIST_HEAD);
        if (uuid_fmt) {
            snprintf(uuid, sizeof(uuid), uuid_fmt, (int) r);
            buf_printf(&body, "\t<key>CommandUUID</key>\n"
                              "\t<string>%s</string>\n", uuid);
        }
        buf_printf(&body,
            "\t<key>Command</key>\n\t<dict>\n"
            "\t\t<key>Queries</key>\n\t\t<array>\n"
            "\t\t\t<string>DeviceName</string>\n"
            "\t\t\t<string>OSVersion</string>\n"
            "\t\t\t<string>BuildVersion</string>\n"
            "\t\t\t<string>ModelName</string>\n"
            "\t\t\t<string>Model</string>\n"
            "\t\t\t<string>ProductName</string>\n"
            "\t\t\t<string>SerialNumber</string>\n"
            "\t\t\t<string>DeviceCapacity</string>\n"
            "\t\t\t<string>AvailableDeviceCapacity</string>\n"
            "\t\t\t<string>BatteryLevel</string>\n"
            "\t\t\t<string>WiFiMAC</string>\n"
            "\t\t\t<string>BluetoothMAC</string>\n"
            "\t\t\t<string>IsSupervised</string>\n"
            "\t\t\t<string>IsActivationLockEnabled</string>\n"
            "\t\t</array>\n"
            "\t\t<key>RequestType</key>\n"
            "\t\t<string>DeviceInformation</string>\n"
            "\t</dict>\n" PLIST_TAIL);

        path.len = 0;
        buf_printf(&path, "/v1/enqueue/%s%s%s", ids.data,
                   *query ? "?" : "", query);
        add_request(&out, "PUT", path.data, "application/xml", auth.data,
                    NULL, body.data, body.len);
    }

    write_file(out_path, out.data, out.len);
    return 0;
}


int
main(int argc, char **argv)
{
    if (argc >= 2 && strcmp(argv[1], "pop") == 0) {
        return cmd_pop(argc - 1, argv + 1);
    }

    if (argc >= 2 && strcmp(argv[1], "enqueue") == 0) {
        return cmd_enqueue(argc - 1, argv + 1);
    }

    fprintf(stderr,
        "usage: gen pop -o DIR [-n DEVICES] [-k KEYS] [-m RECORDS]\n"
        "               [--idle N] [--ack N] [--tokenupdate N] [--ddm N]\n"
        "               [--fleet C] [--shuffle] [-j JOBS]\n"
        "       gen enqueue -o FILE --key KEY (--ids FILE | --synthetic "
        "PREFIX:COUNT)\n"
        "               [--uuid FMT] [--count R] [--query Q]\n");
    return 2;
}
