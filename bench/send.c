/*
 * send: sends every request of record files (see gen.c) to HOST:PORT over
 * CONC keep-alive connections, each file in order and completely before the
 * next one starts, and counts the answers.  For the set-up steps of the
 * benchmark (enrollment, enqueues) and for sanity checks, not for timing.
 *
 *   send [-c CONC] [-n LIMIT] [-p] [-a] HOST:PORT FILE...
 *     -c  connections (default 16)
 *     -n  only the first LIMIT records of each file
 *     -p  print every answer (status line, then the body) to stdout
 *     -a  any status is fine (default: exit 1 unless every answer is 2xx)
 */

#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>


typedef struct {
    const char  *data;
    size_t       len;
} rec_t;

typedef struct {
    int          fd;
    long         rec;           /* the record in flight, -1 for none */
    size_t       sent;          /* bytes of it written */
    char        *in;            /* the answer so far */
    size_t       in_len;
    size_t       in_cap;
    int          close_after;
} conn_t;


static struct sockaddr_in  addr;
static int                 print_answers;
static long                status_count[600];
static long                first_bad = -1;


static void
die(const char *fmt, const char *arg)
{
    fprintf(stderr, "send: ");
    fprintf(stderr, fmt, arg);
    fprintf(stderr, "\n");
    exit(1);
}


static double
now_s(void)
{
    struct timespec  ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double) ts.tv_sec + (double) ts.tv_nsec / 1e9;
}


static int
conn_open(conn_t *c)
{
    int  one = 1;

    c->fd = socket(AF_INET, SOCK_STREAM, 0);
    if (c->fd < 0) {
        die("socket: %s", strerror(errno));
    }
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (connect(c->fd, (struct sockaddr *) &addr, sizeof(addr)) != 0) {
        die("connect: %s", strerror(errno));
    }
    fcntl(c->fd, F_SETFL, O_NONBLOCK);
    c->in_len = 0;
    c->close_after = 0;
    return 0;
}


/* a header's value (case-insensitive name) within [p, end), or NULL */
static const char *
header(const char *p, const char *end, const char *name, size_t *len)
{
    size_t       n = strlen(name);
    const char  *eol, *v;

    p = memchr(p, '\n', (size_t) (end - p));      /* past the status line */
    while (p && ++p < end) {
        eol = memchr(p, '\n', (size_t) (end - p));
        if (eol == NULL || eol - p <= 1) {
            return NULL;
        }
        if ((size_t) (eol - p) > n && p[n] == ':'
            && strncasecmp(p, name, n) == 0)
        {
            v = p + n + 1;
            while (*v == ' ') v++;
            *len = (size_t) (eol - v);
            if (*len && v[*len - 1] == '\r') (*len)--;
            return v;
        }
        p = eol;
    }
    return NULL;
}


/*
 * Whether c->in holds a complete answer: returns its length and sets
 * *status, *body, *body_len; 0 when more is needed.
 */
static size_t
answer_complete(conn_t *c, int *status, const char **body, size_t *body_len)
{
    char        *end, *p, *q;
    const char  *v;
    size_t       hlen, vlen, clen, chunk, out;

    if (c->in_len < 12) {
        return 0;
    }

    end = memmem(c->in, c->in_len, "\r\n\r\n", 4);
    if (end == NULL) {
        return 0;
    }
    hlen = (size_t) (end - c->in) + 4;

    *status = atoi(c->in + 9);

    v = header(c->in, end + 2, "Connection", &vlen);
    c->close_after = (v && vlen == 5 && strncasecmp(v, "close", 5) == 0);

    v = header(c->in, end + 2, "Transfer-Encoding", &vlen);
    if (v && vlen >= 7 && strncasecmp(v, "chunked", 7) == 0) {
        /* decode in place after the headers */
        p = c->in + hlen;
        out = hlen;
        for ( ;; ) {
            q = memmem(p, c->in_len - (size_t) (p - c->in), "\r\n", 2);
            if (q == NULL) {
                return 0;
            }
            chunk = strtoul(p, NULL, 16);
            if ((size_t) (q + 2 - c->in) + chunk + 2 > c->in_len) {
                return 0;
            }
            if (chunk == 0) {
                /* no trailers from nginx */
                *body = c->in + hlen;
                *body_len = out - hlen;
                return (size_t) (q + 4 - c->in);
            }
            memmove(c->in + out, q + 2, chunk);
            out += chunk;
            p = q + 2 + chunk + 2;
        }
    }

    v = header(c->in, end + 2, "Content-Length", &vlen);
    clen = v ? strtoul(v, NULL, 10) : 0;
    if (c->in_len < hlen + clen) {
        return 0;
    }

    *body = c->in + hlen;
    *body_len = clen;
    return hlen + clen;
}


static void
answered(long rec, int status, const char *answer, const char *body,
    size_t body_len)
{
    const char  *eol;

    if (status < 0 || status >= 600) {
        status = 0;
    }
    status_count[status]++;

    if ((status < 200 || status > 299) && first_bad < 0) {
        first_bad = rec;
        eol = strstr(answer, "\r\n");
        fprintf(stderr, "send: record %ld answered %.*s: %.*s\n", rec,
                eol ? (int) (eol - answer) : 20, answer,
                (int) (body_len > 300 ? 300 : body_len), body);
    }

    if (print_answers) {
        eol = strstr(answer, "\r\n");
        printf("%.*s\n%.*s\n", eol ? (int) (eol - answer) : 20, answer,
               (int) body_len, body);
    }
}


static rec_t *
load(const char *path, long *n, long limit)
{
    int          fd;
    long         cap;
    char        *data, *p, *end;
    size_t       len;
    rec_t       *r;
    struct stat  st;

    fd = open(path, O_RDONLY);
    if (fd < 0 || fstat(fd, &st) != 0) {
        die("cannot read %s", path);
    }

    *n = 0;
    if (st.st_size == 0) {
        close(fd);
        return NULL;
    }

    data = mmap(NULL, (size_t) st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (data == MAP_FAILED) {
        die("cannot map %s", path);
    }

    cap = 1024;
    r = malloc(sizeof(rec_t) * (size_t) cap);
    p = data;
    end = data + st.st_size;

    while (p < end && (limit < 0 || *n < limit)) {
        if (end - p < 9 || p[8] != '\n') {
            die("%s: not a record file", path);
        }
        len = strtoul(p, NULL, 10);
        p += 9;
        if ((size_t) (end - p) < len) {
            die("%s: truncated", path);
        }
        if (*n == cap) {
            cap *= 2;
            r = realloc(r, sizeof(rec_t) * (size_t) cap);
        }
        r[*n].data = p;
        r[*n].len = len;
        (*n)++;
        p += len;
    }

    return r;
}


int
main(int argc, char **argv)
{
    int             opt, nconn, any, i, status, active;
    long            limit, n, next, done, bad, k;
    char           *colon;
    rec_t          *recs;
    conn_t         *conns, *c;
    size_t          alen, blen;
    ssize_t         w;
    double          t0, dt;
    const char     *body;
    struct pollfd  *pfd;

    nconn = 16;
    limit = -1;
    any = 0;

    while ((opt = getopt(argc, argv, "c:n:pa")) != -1) {
        switch (opt) {
        case 'c': nconn = atoi(optarg); break;
        case 'n': limit = atol(optarg); break;
        case 'p': print_answers = 1; break;
        case 'a': any = 1; break;
        default:
            fprintf(stderr, "usage: send [-c CONC] [-n LIMIT] [-p] [-a] "
                            "HOST:PORT FILE...\n");
            return 2;
        }
    }

    if (argc - optind < 2 || nconn < 1) {
        fprintf(stderr, "usage: send [-c CONC] [-n LIMIT] [-p] [-a] "
                        "HOST:PORT FILE...\n");
        return 2;
    }

    colon = strrchr(argv[optind], ':');
    if (colon == NULL) {
        die("bad address %s", argv[optind]);
    }
    *colon = '\0';
    addr.sin_family = AF_INET;
    addr.sin_port = htons((unsigned short) atoi(colon + 1));
    if (inet_pton(AF_INET, argv[optind], &addr.sin_addr) != 1) {
        die("bad address %s", argv[optind]);
    }

    conns = calloc((size_t) nconn, sizeof(conn_t));
    pfd = calloc((size_t) nconn, sizeof(struct pollfd));
    for (i = 0; i < nconn; i++) {
        conns[i].fd = -1;
        conns[i].rec = -1;
    }

    bad = 0;

    for (optind++; optind < argc; optind++) {
        recs = load(argv[optind], &n, limit);
        memset(status_count, 0, sizeof(status_count));
        first_bad = -1;
        next = done = 0;
        t0 = now_s();

        while (done < n) {
            active = 0;
            for (i = 0; i < nconn; i++) {
                c = &conns[i];
                if (c->rec < 0 && next < n) {
                    if (c->fd < 0) {
                        conn_open(c);
                    }
                    c->rec = next++;
                    c->sent = 0;
                    c->in_len = 0;
                }
                pfd[i].fd = c->rec >= 0 ? c->fd : -1;
                pfd[i].events = c->rec >= 0
                    ? (c->sent < recs[c->rec].len ? POLLOUT : POLLIN) : 0;
                pfd[i].revents = 0;
                active += c->rec >= 0;
            }

            if (active == 0) {
                break;
            }

            if (poll(pfd, (nfds_t) nconn, 10000) <= 0) {
                die("no progress for 10 s (%s)", argv[optind]);
            }

            for (i = 0; i < nconn; i++) {
                c = &conns[i];
                if (pfd[i].revents == 0 || c->rec < 0) {
                    continue;
                }

                if (c->sent < recs[c->rec].len) {
                    w = write(c->fd, recs[c->rec].data + c->sent,
                              recs[c->rec].len - c->sent);
                    if (w < 0 && errno != EAGAIN) {
                        /* closed under us: send it again on a new one */
                        close(c->fd);
                        conn_open(c);
                        c->sent = 0;
                        continue;
                    }
                    if (w > 0) {
                        c->sent += (size_t) w;
                    }
                    continue;
                }

                if (c->in_cap - c->in_len < 65536) {
                    c->in_cap = c->in_cap ? c->in_cap * 2 : 131072;
                    c->in = realloc(c->in, c->in_cap);
                }
                w = read(c->fd, c->in + c->in_len, c->in_cap - c->in_len - 1);
                if (w < 0 && errno == EAGAIN) {
                    continue;
                }
                if (w <= 0) {
                    if (c->in_len == 0) {
                        /* keep-alive closed before answering: again */
                        close(c->fd);
                        conn_open(c);
                        c->sent = 0;
                        continue;
                    }
                    die("connection closed mid-answer (%s)", argv[optind]);
                }
                c->in_len += (size_t) w;
                c->in[c->in_len] = '\0';

                alen = answer_complete(c, &status, &body, &blen);
                if (alen == 0) {
                    continue;
                }

                answered(c->rec, status, c->in, body, blen);
                done++;
                c->rec = -1;
                if (c->close_after) {
                    close(c->fd);
                    c->fd = -1;
                }
            }
        }

        dt = now_s() - t0;
        fprintf(stderr, "send: %s: %ld requests in %.2f s (%.0f/s):",
                argv[optind], n, dt, dt > 0 ? (double) n / dt : 0.0);
        for (k = 0; k < 600; k++) {
            if (status_count[k]) {
                fprintf(stderr, " %ld x %ld", status_count[k], k);
                if (k < 200 || k > 299) {
                    bad += status_count[k];
                }
            }
        }
        fprintf(stderr, "\n");
        fflush(stdout);
    }

    return (bad && !any) ? 1 : 0;
}
