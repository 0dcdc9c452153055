/*
 * A fast webhook receiver for load tests: plain HTTP/1.1 on 127.0.0.1,
 * one thread, epoll, keep-alive, pipelining, Content-Length bodies (a
 * chunked request is answered 411 and closed).  t/servers/webhook.pl logs
 * more (headers, timing) but tops out at a few thousand requests a second
 * on a loaded machine; this one is for the throughput and soak tests.
 *
 *   fasthook --port N --log FILE [--status CODE] [--pid FILE]
 *
 * Every request body is appended to --log followed by "\n" (the worker's
 * bodies are compact JSON: one line each).  The log is flushed after every
 * batch of ready connections, so a reader sees each answered request.
 * Answers: --status (default 200), "Content-Length: 0".  SIGUSR1 switches
 * to 503 for everything, SIGUSR2 back.  SIGTERM/SIGINT: flush, exit 0.
 *
 * Built by t/MDMWebhook.pm with the system cc.
 */

#define _GNU_SOURCE

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>


typedef struct {
    int      fd;
    char    *in;
    size_t   len, size;
    char    *out;
    size_t   olen, osize;
    int      close_after;
} conn_t;


static volatile sig_atomic_t  running = 1, fail_mode = 0;
static int                    status_ok = 200;
static FILE                  *logf;


static void
on_signal(int sig)
{
    if (sig == SIGUSR1) {
        fail_mode = 1;
    } else if (sig == SIGUSR2) {
        fail_mode = 0;
    } else {
        running = 0;
    }
}


static int
grow(char **p, size_t *size, size_t need)
{
    char    *n;
    size_t   s = *size ? *size : 4096;

    while (s < need) {
        s *= 2;
    }

    if (s == *size) {
        return 0;
    }

    n = realloc(*p, s);
    if (n == NULL) {
        return -1;
    }

    *p = n;
    *size = s;
    return 0;
}


static void
conn_close(int ep, conn_t *c)
{
    epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
    free(c->in);
    free(c->out);
    free(c);
}


static int
reply(conn_t *c, int status, int close_after)
{
    char        buf[160];
    int         n;
    const char *text = status == 200 ? "OK"
                       : status == 411 ? "Length Required"
                       : status == 400 ? "Bad Request"
                       : status == 503 ? "Service Unavailable" : "Status";

    n = snprintf(buf, sizeof(buf),
                 "HTTP/1.1 %d %s\r\nContent-Length: 0\r\n%s\r\n", status,
                 text, close_after ? "Connection: close\r\n" : "");

    if (grow(&c->out, &c->osize, c->olen + (size_t) n) != 0) {
        return -1;
    }

    memcpy(c->out + c->olen, buf, (size_t) n);
    c->olen += (size_t) n;
    c->close_after |= close_after;

    return 0;
}


/* the value of header NAME in HEAD (NUL-terminated), or NULL */
static const char *
header(const char *head, const char *name)
{
    size_t       n = strlen(name);
    const char  *p = head;

    while ((p = strstr(p, "\r\n")) != NULL) {
        p += 2;
        if (strncasecmp(p, name, n) == 0 && p[n] == ':') {
            p += n + 1;
            while (*p == ' ' || *p == '\t') {
                p++;
            }
            return p;
        }
    }

    return NULL;
}


/* answers every complete request in the buffer; -1: close now */
static int
parse(conn_t *c)
{
    char        *end, *h;
    const char  *v;
    size_t       hlen, blen, used = 0;
    int          close_req;

    while (!c->close_after) {
        end = memmem(c->in + used, c->len - used, "\r\n\r\n", 4);
        if (end == NULL) {
            if (c->len - used > 1 << 20) {
                return -1;
            }
            break;
        }

        hlen = (size_t) (end - (c->in + used)) + 4;
        h = strndup(c->in + used, hlen - 2);
        if (h == NULL) {
            return -1;
        }

        close_req = (v = header(h, "Connection")) != NULL
                    && strncasecmp(v, "close", 5) == 0;
        close_req |= strstr(h, " HTTP/1.0\r\n") != NULL
                     && !((v = header(h, "Connection")) != NULL
                          && strncasecmp(v, "keep-alive", 10) == 0);

        if (header(h, "Transfer-Encoding") != NULL) {
            free(h);
            reply(c, 411, 1);
            break;
        }

        v = header(h, "Content-Length");
        blen = v ? strtoul(v, NULL, 10) : 0;
        free(h);

        if (c->len - used < hlen + blen) {
            break;
        }

        fwrite(c->in + used + hlen, 1, blen, logf);
        fputc('\n', logf);

        if (reply(c, fail_mode ? 503 : status_ok, close_req) != 0) {
            return -1;
        }

        used += hlen + blen;
    }

    memmove(c->in, c->in + used, c->len - used);
    c->len -= used;

    return 0;
}


static int
flush_out(int ep, conn_t *c)
{
    ssize_t             n;
    struct epoll_event  ev;

    while (c->olen) {
        n = write(c->fd, c->out, c->olen);
        if (n < 0) {
            if (errno == EAGAIN || errno == EINTR) {
                break;
            }
            return -1;
        }
        memmove(c->out, c->out + n, c->olen - (size_t) n);
        c->olen -= (size_t) n;
    }

    if (c->olen == 0 && c->close_after) {
        return -1;
    }

    ev.events = EPOLLIN | (c->olen ? EPOLLOUT : 0);
    ev.data.ptr = c;
    epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);

    return 0;
}


int
main(int argc, char **argv)
{
    int                  i, ls, ep, fd, n, eof, port = 0, one = 1;
    conn_t              *c;
    ssize_t              r;
    const char          *log = NULL, *pid = NULL;
    struct sigaction     sa;
    struct sockaddr_in   sin;
    struct epoll_event   ev, evs[256];

    for (i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--port") == 0) {
            port = atoi(argv[i + 1]);
        } else if (strcmp(argv[i], "--log") == 0) {
            log = argv[i + 1];
        } else if (strcmp(argv[i], "--status") == 0) {
            status_ok = atoi(argv[i + 1]);
        } else if (strcmp(argv[i], "--pid") == 0) {
            pid = argv[i + 1];
        }
    }

    if (port <= 0 || log == NULL) {
        fprintf(stderr, "usage: %s --port N --log FILE [--status N] "
                "[--pid FILE]\n", argv[0]);
        return 2;
    }

    logf = fopen(log, "a");
    if (logf == NULL) {
        perror(log);
        return 1;
    }
    setvbuf(logf, NULL, _IOFBF, 1 << 20);

    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGUSR1, &sa, NULL);
    sigaction(SIGUSR2, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    ls = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    memset(&sin, 0, sizeof(sin));
    sin.sin_family = AF_INET;
    sin.sin_port = htons((unsigned short) port);
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);

    if (bind(ls, (struct sockaddr *) &sin, sizeof(sin)) != 0
        || listen(ls, 1024) != 0)
    {
        perror("listen");
        return 1;
    }

    if (pid) {
        FILE  *f = fopen(pid, "w");
        if (f) {
            fprintf(f, "%d\n", (int) getpid());
            fclose(f);
        }
    }

    ep = epoll_create1(0);
    ev.events = EPOLLIN;
    ev.data.ptr = NULL;
    epoll_ctl(ep, EPOLL_CTL_ADD, ls, &ev);

    printf("listening 127.0.0.1:%d\n", port);
    fflush(stdout);

    while (running) {
        n = epoll_wait(ep, evs, 256, 200);

        for (i = 0; i < n; i++) {
            c = evs[i].data.ptr;

            if (c == NULL) {
                while ((fd = accept4(ls, NULL, NULL, SOCK_NONBLOCK)) >= 0) {
                    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one,
                               sizeof(one));
                    c = calloc(1, sizeof(conn_t));
                    if (c == NULL) {
                        close(fd);
                        continue;
                    }
                    c->fd = fd;
                    ev.events = EPOLLIN;
                    ev.data.ptr = c;
                    epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
                }
                continue;
            }

            if (evs[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR)) {
                eof = 0;

                for ( ;; ) {
                    if (grow(&c->in, &c->size, c->len + 65536) != 0) {
                        break;
                    }
                    r = read(c->fd, c->in + c->len, 65536);
                    if (r > 0) {
                        c->len += (size_t) r;
                        continue;
                    }
                    if (r < 0 && (errno == EAGAIN || errno == EINTR)) {
                        break;
                    }
                    eof = 1;
                    break;
                }

                if (parse(c) != 0) {
                    conn_close(ep, c);
                    continue;
                }

                c->close_after |= eof;
            }

            if (flush_out(ep, c) != 0) {
                conn_close(ep, c);
            }
        }

        fflush(logf);
    }

    fflush(logf);
    if (pid) {
        unlink(pid);
    }

    return 0;
}
