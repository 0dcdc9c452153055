/*
 * fleetsim: the APNs mock and the device simulator of the mass-command
 * benchmark (bench/fleet.sh), in one process so that a push reaches "its
 * device" without a hop.
 *
 *   fleetsim --port P --cert SERVER.pem --key SERVER.key --client-ca CA.pem
 *            --topic TOPIC --nginx HOST:PORT --pop DIR
 *            [--concurrency C] [--seed S] [--timeout SECONDS]
 *            [--rst-limit BURST:RATE]
 *
 * APNs side: HTTP/2 over TLS on 127.0.0.1:P (nghttp2, OpenSSL, libev), as
 * strict as Apple's provider API where mdm-worker could get it wrong: ALPN
 * must pick h2 (no HTTP/1.1), the client must present a certificate that
 * verifies against CA.pem, SETTINGS_MAX_CONCURRENT_STREAMS 1000; a request
 * is 200 only when it is a POST to /3/device/<64 hex> with apns-topic =
 * TOPIC, apns-push-type mdm, a body of 1..4096 bytes with "mdm" in it;
 * otherwise 400/404/405/413 with {"reason": ...} as APNs answers, and an
 * unknown token is 410 Unregistered.  Each 200 is a device woken up.
 *
 * Device side: the pushed token names the device (DIR/tokens.txt, line i =
 * device i); woken devices wait in a pool from which C "devices at once"
 * (default 200) take one at random: it sends its pre-signed Idle
 * (DIR/fleet-idle.req, record c * N + i) to nginx over a keep-alive
 * HTTP/1.1 connection, expects the command BENCH-FLEET-c-k in the answer,
 * then sends its pre-signed Acknowledged (DIR/fleet-ack.req).
 *
 * Control on stdin, one line each:
 *   go C        a round for command C begins: N pushes expected
 *   go C hold   the same, but the devices wait until all N are pushed (the
 *               fan-out measured alone, without the devices' load)
 *   quit
 * When every device of the round has acknowledged (or --timeout seconds,
 * default 600, after "go"), one line on stdout:
 *   ROUND c=C devices=N go=T first_push=T last_push=T last_ack=T
 *         pushes=.. dup_pushes=.. bad_pushes=.. idle_ok=.. idle_nocmd=..
 *         ack_ok=.. http_errors=.. conn_errors=.. max_pending=..
 *         apns_closed=.. (APNs connections closed so far) done=0|1
 * (T: unix seconds with microseconds).  Pushes outside a round are
 * answered 200 and counted in the next ROUND line as "stray".
 */

#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include <ev.h>
#include <nghttp2/nghttp2.h>
#include <openssl/err.h>
#include <openssl/ssl.h>


static void
die(const char *fmt, ...)
{
    va_list  ap;

    fprintf(stderr, "fleetsim: ");
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    ERR_print_errors_fp(stderr);
    exit(1);
}


static double
wall(void)
{
    struct timeval  tv;

    gettimeofday(&tv, NULL);
    return (double) tv.tv_sec + (double) tv.tv_usec / 1e6;
}


static void
nonblock(int fd)
{
    int  one = 1;

    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}


/* --- the population ------------------------------------------------ */

typedef struct {
    const char  *data;
    size_t       len;
    size_t      *off;        /* start of each request */
    size_t      *rlen;
    size_t       count;
} recfile_t;

static struct ev_loop  *loop;
static size_t           devices;
static recfile_t        idle_recs, ack_recs;
static char           **token_of;        /* [devices], 64 hex */
static uint32_t        *tok_table;       /* open addressing: device + 1 */
static size_t           tok_mask;
static const char      *topic;


static void
load_records(recfile_t *r, const char *path)
{
    int          fd;
    struct stat  st;
    size_t       pos, cap, n;

    fd = open(path, O_RDONLY);
    if (fd < 0 || fstat(fd, &st) != 0) {
        die("cannot read %s", path);
    }
    r->len = (size_t) st.st_size;
    r->data = r->len ? mmap(NULL, r->len, PROT_READ, MAP_PRIVATE, fd, 0) : "";
    if (r->data == MAP_FAILED) {
        die("mmap %s", path);
    }
    close(fd);

    cap = 1024;
    r->off = malloc(cap * sizeof(size_t));
    r->rlen = malloc(cap * sizeof(size_t));
    for (pos = 0; pos + 9 <= r->len; pos += 9 + n) {
        n = strtoul(r->data + pos, NULL, 10);
        if (r->count == cap) {
            cap *= 2;
            r->off = realloc(r->off, cap * sizeof(size_t));
            r->rlen = realloc(r->rlen, cap * sizeof(size_t));
        }
        if (r->off == NULL || r->rlen == NULL || pos + 9 + n > r->len) {
            die("%s: bad record at %zu", path, pos);
        }
        r->off[r->count] = pos + 9;
        r->rlen[r->count] = n;
        r->count++;
    }
}


static uint32_t
tok_hash(const char *t)
{
    uint32_t  h = 2166136261u;
    int       i;

    for (i = 0; i < 64; i++) {
        h = (h ^ (unsigned char) t[i]) * 16777619u;
    }
    return h;
}


static void
load_tokens(const char *path)
{
    FILE    *f;
    char     line[256];
    size_t   cap = 1024, i, slot, size;

    f = fopen(path, "r");
    token_of = malloc(cap * sizeof(char *));
    if (f == NULL || token_of == NULL) {
        die("cannot read %s", path);
    }
    while (fgets(line, sizeof(line), f)) {
        if (strlen(line) < 64) {
            continue;
        }
        if (devices == cap) {
            cap *= 2;
            token_of = realloc(token_of, cap * sizeof(char *));
            if (token_of == NULL) {
                die("out of memory");
            }
        }
        token_of[devices++] = strndup(line, 64);
    }
    fclose(f);

    for (size = 1024; size < devices * 2; size *= 2) { /* void */ }
    tok_mask = size - 1;
    tok_table = calloc(size, sizeof(uint32_t));
    if (tok_table == NULL) {
        die("out of memory");
    }
    for (i = 0; i < devices; i++) {
        for (slot = tok_hash(token_of[i]) & tok_mask; tok_table[slot];
             slot = (slot + 1) & tok_mask) { /* void */ }
        tok_table[slot] = (uint32_t) i + 1;
    }
}


static long
device_of(const char *t, size_t len)
{
    size_t  slot;

    if (len != 64) {
        return -1;
    }
    for (slot = tok_hash(t) & tok_mask; tok_table[slot];
         slot = (slot + 1) & tok_mask)
    {
        if (memcmp(token_of[tok_table[slot] - 1], t, 64) == 0) {
            return (long) tok_table[slot] - 1;
        }
    }
    return -1;
}


/* --- a round ---------------------------------------------------------- */

static struct {
    int       active;
    int       hold;                  /* devices wait for the last push */
    long      cmd;
    long      unique;                /* devices pushed at least once */
    double    go, first_push, last_push, last_ack;
    long      pushes, dup_pushes, bad_pushes, stray, idle_ok, idle_nocmd;
    long      ack_ok, http_errors, conn_errors, acked, max_pending;
    uint8_t  *pushed;                /* [devices] */
    size_t   *pending;               /* woken, not taken yet */
    size_t    npending;
    char      uuid[64];
    size_t    uuid_len;
} round_;

static double  round_timeout = 600;
static long    h2_closed;             /* APNs connections closed */
static ev_timer  round_timer;

static void slots_kick(void);


static void
round_report(int done)
{
    printf("ROUND c=%ld devices=%zu go=%.6f first_push=%.6f last_push=%.6f "
           "last_ack=%.6f pushes=%ld dup_pushes=%ld bad_pushes=%ld stray=%ld "
           "idle_ok=%ld idle_nocmd=%ld ack_ok=%ld http_errors=%ld "
           "conn_errors=%ld max_pending=%ld apns_closed=%ld done=%d\n",
           round_.cmd, devices, round_.go, round_.first_push,
           round_.last_push, round_.last_ack, round_.pushes,
           round_.dup_pushes, round_.bad_pushes, round_.stray,
           round_.idle_ok, round_.idle_nocmd, round_.ack_ok,
           round_.http_errors, round_.conn_errors, round_.max_pending,
           h2_closed, done);
    fflush(stdout);
    round_.active = 0;
    round_.stray = 0;
    ev_timer_stop(loop, &round_timer);
}


static void
round_timeout_cb(struct ev_loop *l, ev_timer *t, int revents)
{
    (void) l; (void) t; (void) revents;
    if (round_.active) {
        round_report(0);
    }
}


static void
round_start(long cmd, int hold)
{
    long  stray = round_.stray;

    memset(round_.pushed, 0, devices);
    round_.npending = 0;
    round_.cmd = cmd;
    round_.go = wall();
    round_.first_push = round_.last_push = round_.last_ack = 0;
    round_.pushes = round_.dup_pushes = round_.bad_pushes = 0;
    round_.idle_ok = round_.idle_nocmd = round_.ack_ok = 0;
    round_.http_errors = round_.conn_errors = round_.acked = 0;
    round_.max_pending = 0;
    round_.unique = 0;
    round_.hold = hold;
    round_.stray = stray;
    round_.uuid_len = (size_t) snprintf(round_.uuid, sizeof(round_.uuid),
                                        "BENCH-FLEET-%ld-", cmd);
    if ((size_t) (cmd + 1) * devices > idle_recs.count
        || (size_t) (cmd + 1) * devices > ack_recs.count)
    {
        die("command %ld: the population has %zu Idle records for %zu "
            "devices", cmd, idle_recs.count, devices);
    }
    round_.active = 1;
    ev_timer_set(&round_timer, round_timeout, 0);
    ev_timer_start(loop, &round_timer);
}


/* a push for this token arrived and was answered 200 */
static void
device_woken(long dev)
{
    double  now = wall();

    if (!round_.active) {
        round_.stray++;
        return;
    }
    round_.pushes++;
    if (round_.pushed[dev]) {
        round_.dup_pushes++;
        return;
    }
    round_.pushed[dev] = 1;
    if (++round_.unique == (long) devices) {
        round_.hold = 0;
    }
    if (round_.first_push == 0) {
        round_.first_push = now;
    }
    round_.last_push = now;
    round_.pending[round_.npending++] = (size_t) dev;
    if ((long) round_.npending > round_.max_pending) {
        round_.max_pending = (long) round_.npending;
    }
    if (!round_.hold) {
        slots_kick();
    }
}


/* --- the device side: HTTP/1.1 to nginx ------------------------------ */

typedef struct {
    int       fd;
    ev_io     rio, wio;
    long      dev;                 /* -1: free */
    int       step;                /* 0 Idle, 1 Acknowledged */
    int       tries;
    const char *out;
    size_t    out_len, out_sent;
    char     *in;
    size_t    in_len, in_cap;
} slot_t;

static slot_t             *slots;
static int                 nslots = 200;
static struct sockaddr_in  nginx_addr;
static uint64_t            rng = 0x2545F4914F6CDD1DULL;


static uint64_t
rand64(void)
{
    rng ^= rng >> 12; rng ^= rng << 25; rng ^= rng >> 27;
    return rng * 2685821657736338717ULL;
}


static void slot_io(struct ev_loop *l, ev_io *w, int revents);
static void slot_send(slot_t *s);


static void
slot_close(slot_t *s)
{
    if (s->fd >= 0) {
        ev_io_stop(loop, &s->rio);
        ev_io_stop(loop, &s->wio);
        close(s->fd);
        s->fd = -1;
    }
    s->in_len = 0;
}


static int
slot_connect(slot_t *s)
{
    s->fd = socket(AF_INET, SOCK_STREAM, 0);
    if (s->fd < 0) {
        return -1;
    }
    nonblock(s->fd);
    if (connect(s->fd, (struct sockaddr *) &nginx_addr, sizeof(nginx_addr))
        != 0 && errno != EINPROGRESS)
    {
        close(s->fd);
        s->fd = -1;
        return -1;
    }
    ev_io_init(&s->rio, slot_io, s->fd, EV_READ);
    ev_io_init(&s->wio, slot_io, s->fd, EV_WRITE);
    s->rio.data = s->wio.data = s;
    ev_io_start(loop, &s->rio);
    return 0;
}


static void
slot_request(slot_t *s)
{
    recfile_t  *r = s->step == 0 ? &idle_recs : &ack_recs;
    size_t      i = (size_t) round_.cmd * devices + (size_t) s->dev;

    s->out = r->data + r->off[i];
    s->out_len = r->rlen[i];
    s->out_sent = 0;
    s->in_len = 0;
    if (s->fd < 0 && slot_connect(s) != 0) {
        die("cannot connect to nginx: %s", strerror(errno));
    }
    slot_send(s);
}


static void
slot_send(slot_t *s)
{
    ssize_t  n;

    while (s->out_sent < s->out_len) {
        n = send(s->fd, s->out + s->out_sent, s->out_len - s->out_sent,
                 MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EAGAIN || errno == ENOTCONN) {
                ev_io_start(loop, &s->wio);
                return;
            }
            if (errno == EINTR) {
                continue;
            }
            return;              /* the read side sees the error */
        }
        s->out_sent += (size_t) n;
    }
    ev_io_stop(loop, &s->wio);
}


/* the next woken device, at random among those waiting */
static void
slot_take(slot_t *s)
{
    size_t  k;

    s->dev = -1;
    if (!round_.active || round_.npending == 0) {
        return;
    }
    k = (size_t) (rand64() % round_.npending);
    s->dev = (long) round_.pending[k];
    round_.pending[k] = round_.pending[--round_.npending];
    s->step = 0;
    s->tries = 0;
    slot_request(s);
}


static void
slots_kick(void)
{
    int  i;

    for (i = 0; i < nslots && round_.npending; i++) {
        if (slots[i].dev < 0) {
            slot_take(&slots[i]);
        }
    }
}


/* the length of a complete answer in s->in, 0 if not complete yet */
static size_t
answer_len(slot_t *s, int *status, const char **body, size_t *body_len)
{
    char        *end, *v;
    size_t       hlen, clen;

    if (s->in_len < 12) {
        return 0;
    }
    s->in[s->in_len] = '\0';
    end = memmem(s->in, s->in_len, "\r\n\r\n", 4);
    if (end == NULL) {
        return 0;
    }
    hlen = (size_t) (end - s->in) + 4;
    *status = atoi(s->in + 9);
    *end = '\0';
    v = strcasestr(s->in, "\r\ncontent-length:");
    *end = '\r';
    if (v == NULL) {
        /* nginx's answers to these requests all carry a length */
        die("an answer without Content-Length: %.200s", s->in);
    }
    clen = strtoul(v + 17, NULL, 10);
    if (s->in_len < hlen + clen) {
        return 0;
    }
    *body = s->in + hlen;
    *body_len = clen;
    return hlen + clen;
}


static void
slot_answered(slot_t *s, int status, const char *body, size_t body_len)
{
    if (status != 200) {
        round_.http_errors++;
        if (round_.http_errors <= 5) {
            fprintf(stderr, "fleetsim: device %ld step %d answered %d: "
                    "%.*s\n", s->dev, s->step, status,
                    (int) (body_len > 200 ? 200 : body_len), body);
        }
        s->dev = -1;             /* given up: the round will not finish */
        slot_take(s);
        return;
    }

    if (s->step == 0) {
        if (memmem(body, body_len, round_.uuid, round_.uuid_len)) {
            round_.idle_ok++;
        } else {
            round_.idle_nocmd++;
        }
        s->step = 1;
        s->tries = 0;
        slot_request(s);
        return;
    }

    round_.ack_ok++;
    round_.acked++;
    round_.last_ack = wall();
    if ((size_t) round_.acked == devices) {
        round_report(1);
        s->dev = -1;
        return;
    }
    slot_take(s);
}


static void
slot_io(struct ev_loop *l, ev_io *w, int revents)
{
    slot_t      *s = w->data;
    ssize_t      n;
    size_t       used;
    int          status;
    const char  *body;
    size_t       body_len;

    (void) l;

    if (revents & EV_WRITE) {
        slot_send(s);
        return;
    }

    for ( ;; ) {
        if (s->in_cap - s->in_len < 65536) {
            s->in_cap = s->in_cap ? s->in_cap * 2 : 131072;
            s->in = realloc(s->in, s->in_cap + 1);
            if (s->in == NULL) {
                die("out of memory");
            }
        }
        n = recv(s->fd, s->in + s->in_len, s->in_cap - s->in_len, 0);
        if (n > 0) {
            s->in_len += (size_t) n;
            continue;
        }
        if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
            break;
        }
        /* closed or failed: again on a new connection (an idle one
         * closed by nginx, e.g. at its restart, is no error) */
        slot_close(s);
        if (s->dev >= 0 && round_.active) {
            round_.conn_errors++;
            if (++s->tries > 3) {
                die("device %ld: the connection to nginx failed 3 times",
                    s->dev);
            }
            slot_request(s);
        }
        return;
    }

    used = answer_len(s, &status, &body, &body_len);
    if (used == 0) {
        return;
    }
    if (s->dev < 0) {
        die("an answer nobody asked for");
    }
    slot_answered(s, status, body, body_len);
    (void) used;
}


/* --- the APNs side: HTTP/2 over TLS ----------------------------------- */

typedef struct {
    int32_t   id;
    char      path[128];
    size_t    path_len;
    int       post;
    int       topic_ok;
    int       type_ok;
    char      apns_id[40];
    size_t    body_len;
    int       body_mdm;
} h2stream_t;

typedef struct {
    int                fd;
    SSL               *ssl;
    int                handshaken;
    ev_io              rio, wio;
    nghttp2_session   *h2;
    char              *pending;       /* TLS-unwritten output */
    size_t             pend_len, pend_cap;
} h2conn_t;

static SSL_CTX  *sctx;

/*
 * nghttp2's defence against "rapid reset" (CVE-2023-44487, in Debian's
 * 1.52.0-1+deb12u1 and later): every RST_STREAM received takes a token from
 * a bucket of 1,000 refilled at 33/s, and an empty bucket ends the session
 * with GOAWAY INTERNAL_ERROR.  libcurl 7.88.1 resets every stream that ended
 * normally (http2_handle_stream_close() clears stream->closed, then
 * http2_data_done() resets any stream not "closed"; seen here: 19,719
 * RST_STREAM for 20,000 pushes), so a busy mdm-worker empties the bucket
 * after about 1,070 pushes.  --rst-limit
 * BURST:RATE sets the bucket (a large one measures the push path without
 * the reconnections).
 */
static nghttp2_option  *h2_opt;


static void h2_close_why(h2conn_t *c, int line);
#define h2_close(c)  h2_close_why(c, __LINE__)
static void h2_flush(h2conn_t *c);


static int
h2_on_begin_headers(nghttp2_session *h2, const nghttp2_frame *frame,
    void *user)
{
    h2stream_t  *st;

    (void) user;
    if (frame->hd.type != NGHTTP2_HEADERS
        || frame->headers.cat != NGHTTP2_HCAT_REQUEST)
    {
        return 0;
    }
    st = calloc(1, sizeof(h2stream_t));
    if (st == NULL) {
        return NGHTTP2_ERR_CALLBACK_FAILURE;
    }
    st->id = frame->hd.stream_id;
    nghttp2_session_set_stream_user_data(h2, st->id, st);
    return 0;
}


#define HDR_IS(n, l, s)  ((l) == sizeof(s) - 1 && memcmp(n, s, l) == 0)

static int
h2_on_header(nghttp2_session *h2, const nghttp2_frame *frame,
    const uint8_t *name, size_t namelen, const uint8_t *value,
    size_t valuelen, uint8_t flags, void *user)
{
    h2stream_t  *st;

    (void) flags; (void) user;
    st = nghttp2_session_get_stream_user_data(h2, frame->hd.stream_id);
    if (st == NULL) {
        return 0;
    }
    if (HDR_IS(name, namelen, ":path")) {
        st->path_len = valuelen < sizeof(st->path) - 1
                       ? valuelen : sizeof(st->path) - 1;
        memcpy(st->path, value, st->path_len);
    } else if (HDR_IS(name, namelen, ":method")) {
        st->post = HDR_IS(value, valuelen, "POST");
    } else if (HDR_IS(name, namelen, "apns-topic")) {
        st->topic_ok = valuelen == strlen(topic)
                       && memcmp(value, topic, valuelen) == 0;
    } else if (HDR_IS(name, namelen, "apns-push-type")) {
        st->type_ok = HDR_IS(value, valuelen, "mdm");
    } else if (HDR_IS(name, namelen, "apns-id") && valuelen < 40) {
        memcpy(st->apns_id, value, valuelen);
    }
    return 0;
}


static int
h2_on_data(nghttp2_session *h2, uint8_t flags, int32_t stream_id,
    const uint8_t *data, size_t len, void *user)
{
    h2stream_t  *st;

    (void) flags; (void) user;
    st = nghttp2_session_get_stream_user_data(h2, stream_id);
    if (st == NULL) {
        return 0;
    }
    if (st->body_len < 4096 && memmem(data, len, "\"mdm\"", 5)) {
        st->body_mdm = 1;
    }
    st->body_len += len;
    return 0;
}


static ssize_t
h2_body_read(nghttp2_session *h2, int32_t stream_id, uint8_t *buf,
    size_t length, uint32_t *data_flags, nghttp2_data_source *source,
    void *user)
{
    const char  *s = source->ptr;
    size_t       n = strlen(s);

    (void) h2; (void) stream_id; (void) user;
    if (n > length) {
        n = length;
    }
    memcpy(buf, s, n);
    *data_flags |= NGHTTP2_DATA_FLAG_EOF;
    return (ssize_t) n;
}


static void
h2_answer(nghttp2_session *h2, h2stream_t *st)
{
    const char            *status = "200", *reason = NULL;
    long                   dev = -1;
    char                   apns_id[40];
    nghttp2_nv             nv[3];
    nghttp2_data_provider  dp;
    static char            bodies[8][64];
    static int             nb;
    char                  *body;

    if (!st->post) {
        status = "405"; reason = "MethodNotAllowed";
    } else if (st->path_len < 10 || memcmp(st->path, "/3/device/", 10) != 0) {
        status = "404"; reason = "BadPath";
    } else if (st->body_len == 0) {
        status = "400"; reason = "PayloadEmpty";
    } else if (st->body_len > 4096) {
        status = "413"; reason = "PayloadTooLarge";
    } else if (!st->topic_ok) {
        status = "400"; reason = "TopicDisallowed";
    } else if (!st->type_ok) {
        status = "400"; reason = "InvalidPushType";
    } else if (!st->body_mdm) {
        status = "400"; reason = "BadPayload";
    } else if ((dev = device_of(st->path + 10, st->path_len - 10)) < 0) {
        status = "410"; reason = "Unregistered";
    }

    if (st->apns_id[0]) {
        memcpy(apns_id, st->apns_id, sizeof(apns_id));
    } else {
        uint64_t a = rand64(), b = rand64();
        snprintf(apns_id, sizeof(apns_id),
                 "%08X-%04X-4%03X-8%03X-%012llX", (unsigned) (a >> 32),
                 (unsigned) (a >> 16) & 0xffff, (unsigned) a & 0xfff,
                 (unsigned) (b >> 48) & 0xfff,
                 (unsigned long long) (b & 0xffffffffffffULL));
    }

    nv[0] = (nghttp2_nv) { (uint8_t *) ":status", (uint8_t *) status, 7, 3,
                           NGHTTP2_NV_FLAG_NONE };
    nv[1] = (nghttp2_nv) { (uint8_t *) "apns-id", (uint8_t *) apns_id, 7,
                           strlen(apns_id), NGHTTP2_NV_FLAG_NONE };

    if (reason == NULL) {
        nghttp2_submit_response(h2, st->id, nv, 2, NULL);
        device_woken(dev);
        return;
    }

    if (round_.active) {
        round_.bad_pushes++;
    }
    /* a small ring: the data provider reads it when the frame goes out,
     * long before eight more error answers are made */
    body = bodies[nb++ % 8];
    snprintf(body, 64, "{\"reason\":\"%s\"}", reason);
    nv[2] = (nghttp2_nv) { (uint8_t *) "content-type",
                           (uint8_t *) "application/json", 12, 16,
                           NGHTTP2_NV_FLAG_NONE };
    dp.source.ptr = body;
    dp.read_callback = h2_body_read;
    nghttp2_submit_response(h2, st->id, nv, 3, &dp);
}


static int
h2_on_frame(nghttp2_session *h2, const nghttp2_frame *frame, void *user)
{
    h2stream_t  *st;

    (void) user;
    if (frame->hd.type == NGHTTP2_GOAWAY) {
        fprintf(stderr, "fleetsim: GOAWAY from the client: %s\n",
                nghttp2_http2_strerror(frame->goaway.error_code));
    }
    if ((frame->hd.type == NGHTTP2_HEADERS || frame->hd.type == NGHTTP2_DATA)
        && (frame->hd.flags & NGHTTP2_FLAG_END_STREAM))
    {
        st = nghttp2_session_get_stream_user_data(h2, frame->hd.stream_id);
        if (st) {
            h2_answer(h2, st);
        }
    }
    return 0;
}


static int
h2_on_send(nghttp2_session *h2, const nghttp2_frame *frame, void *user)
{
    (void) h2; (void) user;
    if (frame->hd.type == NGHTTP2_GOAWAY) {
        fprintf(stderr, "fleetsim: GOAWAY to the client: %s %.*s\n",
                nghttp2_http2_strerror(frame->goaway.error_code),
                (int) frame->goaway.opaque_data_len,
                (const char *) frame->goaway.opaque_data);
    }
    return 0;
}


static int
h2_on_invalid(nghttp2_session *h2, const nghttp2_frame *frame,
    int lib_error_code, void *user)
{
    (void) h2; (void) user;
    fprintf(stderr, "fleetsim: invalid frame type %d on stream %d: %s\n",
            frame->hd.type, frame->hd.stream_id,
            nghttp2_strerror(lib_error_code));
    return 0;
}


/* nghttp2 says here why it ends a session (GOAWAY without opaque data) */
static int
h2_on_error(nghttp2_session *h2, int lib_error_code, const char *msg,
    size_t len, void *user)
{
    (void) h2; (void) user;
    fprintf(stderr, "fleetsim: nghttp2: %s (%.*s)\n",
            nghttp2_strerror(lib_error_code), (int) len, msg);
    return 0;
}


/* an answer nghttp2 could not send, and why (a HEADER_COMP ends the
 * session with a GOAWAY INTERNAL_ERROR) */
static int
h2_on_not_sent(nghttp2_session *h2, const nghttp2_frame *frame,
    int lib_error_code, void *user)
{
    (void) h2; (void) user;
    fprintf(stderr, "fleetsim: frame type %d on stream %d not sent: %s\n",
            frame->hd.type, frame->hd.stream_id,
            nghttp2_strerror(lib_error_code));
    return 0;
}


static int
h2_on_close(nghttp2_session *h2, int32_t stream_id, uint32_t error_code,
    void *user)
{
    (void) error_code; (void) user;
    free(nghttp2_session_get_stream_user_data(h2, stream_id));
    nghttp2_session_set_stream_user_data(h2, stream_id, NULL);
    return 0;
}


static int
h2_write_pending(h2conn_t *c)
{
    int  n;

    while (c->pend_len) {
        n = SSL_write(c->ssl, c->pending, (int) c->pend_len);
        if (n <= 0) {
            int e = SSL_get_error(c->ssl, n);
            if (e == SSL_ERROR_WANT_WRITE || e == SSL_ERROR_WANT_READ) {
                ev_io_start(loop, &c->wio);
                return 0;
            }
            return -1;
        }
        memmove(c->pending, c->pending + n, c->pend_len - (size_t) n);
        c->pend_len -= (size_t) n;
    }
    ev_io_stop(loop, &c->wio);
    return 0;
}


static void
h2_flush(h2conn_t *c)
{
    const uint8_t  *data;
    ssize_t         n;

    for ( ;; ) {
        n = nghttp2_session_mem_send(c->h2, &data);
        if (n < 0) {
            fprintf(stderr, "fleetsim: nghttp2 send: %s\n",
                    nghttp2_strerror((int) n));
            h2_close(c);
            return;
        }
        if (n == 0) {
            break;
        }
        if (c->pend_len + (size_t) n > c->pend_cap) {
            while (c->pend_len + (size_t) n > c->pend_cap) {
                c->pend_cap = c->pend_cap ? c->pend_cap * 2 : 65536;
            }
            c->pending = realloc(c->pending, c->pend_cap);
            if (c->pending == NULL) {
                die("out of memory");
            }
        }
        memcpy(c->pending + c->pend_len, data, (size_t) n);
        c->pend_len += (size_t) n;
        if (c->pend_len >= 65536 && h2_write_pending(c) != 0) {
            h2_close(c);
            return;
        }
    }
    if (h2_write_pending(c) != 0) {
        h2_close(c);
        return;
    }
    if (!nghttp2_session_want_read(c->h2) && !nghttp2_session_want_write(c->h2)
        && c->pend_len == 0)
    {
        h2_close(c);
    }
}


static void
h2_close_why(h2conn_t *c, int line)
{
    unsigned long  e = ERR_peek_error();

    if (h2_closed++ < 50) {
        fprintf(stderr, "fleetsim: APNs connection closed at line %d (%s)\n", line,
                e ? ERR_reason_error_string(e) : "no TLS error");
    }
    ERR_clear_error();
    ev_io_stop(loop, &c->rio);
    ev_io_stop(loop, &c->wio);
    if (c->h2) {
        nghttp2_session_del(c->h2);
    }
    SSL_free(c->ssl);
    close(c->fd);
    free(c->pending);
    free(c);
}


static int
h2_start(h2conn_t *c)
{
    const unsigned char      *alpn;
    unsigned int              alpn_len;
    nghttp2_session_callbacks *cb;
    nghttp2_settings_entry    iv[] = {
        { NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, 1000 },
    };

    SSL_get0_alpn_selected(c->ssl, &alpn, &alpn_len);
    if (alpn_len != 2 || memcmp(alpn, "h2", 2) != 0) {
        fprintf(stderr, "fleetsim: a client without ALPN h2\n");
        return -1;
    }

    nghttp2_session_callbacks_new(&cb);
    nghttp2_session_callbacks_set_on_begin_headers_callback(cb,
                                                    h2_on_begin_headers);
    nghttp2_session_callbacks_set_on_header_callback(cb, h2_on_header);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb, h2_on_data);
    nghttp2_session_callbacks_set_on_frame_recv_callback(cb, h2_on_frame);
    nghttp2_session_callbacks_set_on_stream_close_callback(cb, h2_on_close);
    nghttp2_session_callbacks_set_on_frame_send_callback(cb, h2_on_send);
    nghttp2_session_callbacks_set_on_invalid_frame_recv_callback(cb,
                                                            h2_on_invalid);
    nghttp2_session_callbacks_set_error_callback2(cb, h2_on_error);
    nghttp2_session_callbacks_set_on_frame_not_send_callback(cb,
                                                            h2_on_not_sent);
    if (nghttp2_session_server_new2(&c->h2, cb, c, h2_opt) != 0) {
        die("nghttp2_session_server_new");
    }
    nghttp2_session_callbacks_del(cb);
    nghttp2_submit_settings(c->h2, NGHTTP2_FLAG_NONE, iv, 1);
    return 0;
}


static void
h2_io(struct ev_loop *l, ev_io *w, int revents)
{
    h2conn_t  *c = w->data;
    uint8_t    buf[65536];
    int        n, e;
    ssize_t    rv;

    (void) l; (void) revents;

    if (!c->handshaken) {
        n = SSL_do_handshake(c->ssl);
        if (n != 1) {
            e = SSL_get_error(c->ssl, n);
            if (e == SSL_ERROR_WANT_READ) {
                ev_io_stop(loop, &c->wio);
                return;
            }
            if (e == SSL_ERROR_WANT_WRITE) {
                ev_io_start(loop, &c->wio);
                return;
            }
            fprintf(stderr, "fleetsim: TLS handshake failed\n");
            ERR_print_errors_fp(stderr);
            h2_close(c);
            return;
        }
        c->handshaken = 1;
        ev_io_stop(loop, &c->wio);
        if (h2_start(c) != 0) {
            h2_close(c);
            return;
        }
        h2_flush(c);
        return;
    }

    if (w == &c->wio) {
        if (h2_write_pending(c) != 0) {
            h2_close(c);
        }
        return;
    }

    for ( ;; ) {
        n = SSL_read(c->ssl, buf, sizeof(buf));
        if (n <= 0) {
            e = SSL_get_error(c->ssl, n);
            if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
                break;
            }
            h2_close(c);
            return;
        }
        if ((rv = nghttp2_session_mem_recv(c->h2, buf, (size_t) n)) < 0) {
            fprintf(stderr, "fleetsim: nghttp2 recv: %s\n",
                    nghttp2_strerror((int) rv));
            h2_close(c);
            return;
        }
    }
    h2_flush(c);
}


static void
h2_accept(struct ev_loop *l, ev_io *w, int revents)
{
    int        fd;
    h2conn_t  *c;

    (void) l; (void) revents;
    while ((fd = accept(w->fd, NULL, NULL)) >= 0) {
        nonblock(fd);
        c = calloc(1, sizeof(h2conn_t));
        if (c == NULL) {
            die("out of memory");
        }
        c->fd = fd;
        c->ssl = SSL_new(sctx);
        SSL_set_fd(c->ssl, fd);
        SSL_set_accept_state(c->ssl);
        ev_io_init(&c->rio, h2_io, fd, EV_READ);
        ev_io_init(&c->wio, h2_io, fd, EV_WRITE);
        c->rio.data = c->wio.data = c;
        ev_io_start(loop, &c->rio);
    }
}


static int
alpn_select(SSL *ssl, const unsigned char **out, unsigned char *outlen,
    const unsigned char *in, unsigned int inlen, void *arg)
{
    (void) ssl; (void) arg;
    /* h2 or nothing: APNs speaks no HTTP/1.1 */
    if (nghttp2_select_next_protocol((unsigned char **) out, outlen, in,
                                     inlen) == 1)
    {
        return SSL_TLSEXT_ERR_OK;
    }
    return SSL_TLSEXT_ERR_ALERT_FATAL;
}


/* --- control ------------------------------------------------------------ */

static void
control(struct ev_loop *l, ev_io *w, int revents)
{
    static char  line[256];
    static size_t len;
    ssize_t      n;
    char        *nl, *end;
    long         cmd;

    (void) revents;
    n = read(w->fd, line + len, sizeof(line) - 1 - len);
    if (n <= 0) {
        ev_break(l, EVBREAK_ALL);
        return;
    }
    len += (size_t) n;
    line[len] = '\0';
    while ((nl = strchr(line, '\n')) != NULL) {
        *nl = '\0';
        if (strncmp(line, "go ", 3) == 0) {
            cmd = strtol(line + 3, &end, 10);
            round_start(cmd, strcmp(end, " hold") == 0);
        } else if (strcmp(line, "quit") == 0) {
            ev_break(l, EVBREAK_ALL);
        }
        len -= (size_t) (nl + 1 - line);
        memmove(line, nl + 1, len + 1);
    }
}


int
main(int argc, char **argv)
{
    int                 c, lfd, one = 1, port = 0;
    char               *cert = NULL, *key = NULL, *ca = NULL, *pop = NULL;
    char               *ngx = NULL, *colon, path[4096];
    struct sockaddr_in  sa;
    ev_io               accept_w, control_w;

    static struct option  opts[] = {
        { "port", required_argument, NULL, 'p' },
        { "cert", required_argument, NULL, 'c' },
        { "key", required_argument, NULL, 'k' },
        { "client-ca", required_argument, NULL, 'a' },
        { "topic", required_argument, NULL, 't' },
        { "nginx", required_argument, NULL, 'n' },
        { "pop", required_argument, NULL, 'o' },
        { "concurrency", required_argument, NULL, 'C' },
        { "seed", required_argument, NULL, 's' },
        { "timeout", required_argument, NULL, 'T' },
        { "rst-limit", required_argument, NULL, 'R' },
        { NULL, 0, NULL, 0 }
    };

    if (nghttp2_option_new(&h2_opt) != 0) {
        die("nghttp2_option_new");
    }
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'p': port = atoi(optarg); break;
        case 'c': cert = optarg; break;
        case 'k': key = optarg; break;
        case 'a': ca = optarg; break;
        case 't': topic = optarg; break;
        case 'n': ngx = optarg; break;
        case 'o': pop = optarg; break;
        case 'C': nslots = atoi(optarg); break;
        case 's': rng ^= strtoull(optarg, NULL, 10) * 0x9E3779B97F4A7C15ULL;
                  break;
        case 'T': round_timeout = atof(optarg); break;
        case 'R': {
            char               *end;
            unsigned long long  burst, rate;

            burst = strtoull(optarg, &end, 10);
            if (*end != ':' || burst == 0) {
                die("--rst-limit BURST:RATE, e.g. 1000000:100000");
            }
            rate = strtoull(end + 1, &end, 10);
            if (*end != '\0') {
                die("--rst-limit BURST:RATE, e.g. 1000000:100000");
            }
            nghttp2_option_set_stream_reset_rate_limit(h2_opt, burst, rate);
            break;
        }
        default: return 2;
        }
    }
    if (!port || !cert || !key || !ca || !topic || !ngx || !pop
        || nslots < 1)
    {
        die("usage: fleetsim --port P --cert PEM --key PEM --client-ca PEM "
            "--topic T --nginx HOST:PORT --pop DIR [--concurrency C] "
            "[--seed S] [--timeout S] [--rst-limit BURST:RATE]");
    }
    signal(SIGPIPE, SIG_IGN);

    snprintf(path, sizeof(path), "%s/tokens.txt", pop);
    load_tokens(path);
    snprintf(path, sizeof(path), "%s/fleet-idle.req", pop);
    load_records(&idle_recs, path);
    snprintf(path, sizeof(path), "%s/fleet-ack.req", pop);
    load_records(&ack_recs, path);
    round_.pushed = calloc(devices, 1);
    round_.pending = calloc(devices, sizeof(size_t));
    if (devices == 0 || round_.pushed == NULL || round_.pending == NULL) {
        die("no devices in %s", pop);
    }

    colon = strrchr(ngx, ':');
    if (colon == NULL) {
        die("--nginx HOST:PORT");
    }
    *colon = '\0';
    memset(&nginx_addr, 0, sizeof(nginx_addr));
    nginx_addr.sin_family = AF_INET;
    nginx_addr.sin_port = htons((uint16_t) atoi(colon + 1));
    if (inet_pton(AF_INET, ngx, &nginx_addr.sin_addr) != 1) {
        die("--nginx: bad address %s", ngx);
    }

    sctx = SSL_CTX_new(TLS_server_method());
    if (sctx == NULL
        || SSL_CTX_use_certificate_chain_file(sctx, cert) != 1
        || SSL_CTX_use_PrivateKey_file(sctx, key, SSL_FILETYPE_PEM) != 1
        || SSL_CTX_load_verify_locations(sctx, ca, NULL) != 1)
    {
        die("TLS set-up (%s, %s, %s)", cert, key, ca);
    }
    SSL_CTX_set_min_proto_version(sctx, TLS1_2_VERSION);
    /* the output buffer grows and moves between the retries of a write */
    SSL_CTX_set_mode(sctx, SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER
                           | SSL_MODE_ENABLE_PARTIAL_WRITE);
    /* the push certificate is required, as APNs requires it */
    SSL_CTX_set_verify(sctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT,
                       NULL);
    SSL_CTX_set_alpn_select_cb(sctx, alpn_select, NULL);

    lfd = socket(AF_INET, SOCK_STREAM, 0);
    setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t) port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(lfd, (struct sockaddr *) &sa, sizeof(sa)) != 0
        || listen(lfd, 128) != 0)
    {
        die("cannot listen on 127.0.0.1:%d: %s", port, strerror(errno));
    }
    nonblock(lfd);

    slots = calloc((size_t) nslots, sizeof(slot_t));
    if (slots == NULL) {
        die("out of memory");
    }
    for (c = 0; c < nslots; c++) {
        slots[c].fd = -1;
        slots[c].dev = -1;
    }

    loop = EV_DEFAULT;
    ev_timer_init(&round_timer, round_timeout_cb, round_timeout, 0);
    ev_io_init(&accept_w, h2_accept, lfd, EV_READ);
    ev_io_start(loop, &accept_w);
    ev_io_init(&control_w, control, 0, EV_READ);
    ev_io_start(loop, &control_w);

    fprintf(stderr, "fleetsim: APNs mock on 127.0.0.1:%d, %zu devices, "
            "%d at once against %s:%s\n", port, devices, nslots, ngx,
            colon + 1);
    ev_run(loop, 0);
    return 0;
}
