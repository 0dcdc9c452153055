/*
 * Copyright (C) ngx_mdm contributors
 *
 * libcurl's multi interface on the libev loop.  HTTP/2 with multiplexing:
 * requests to one host with one client certificate share a connection, a
 * few when the server's concurrent-stream limit is reached.
 */

#include <stdlib.h>
#include <string.h>

#include "mdm_worker.h"


typedef struct {
    ev_io        io;
    curl_socket_t fd;
    mw_curl_t   *curl;
} mw_sock_t;


struct mw_curl_s {
    mw_ctx_t    *ctx;
    CURLM       *multi;
    ev_timer     timer;
    int          running;
};


static int mw_http_socket(CURL *e, curl_socket_t s, int what, void *userp,
    void *socketp);
static int mw_http_timer(CURLM *m, long timeout_ms, void *userp);
static void mw_http_io(struct ev_loop *loop, ev_io *w, int revents);
static void mw_http_timeout(struct ev_loop *loop, ev_timer *w, int revents);
static void mw_http_finished(mw_curl_t *c);
static size_t mw_http_write(char *ptr, size_t size, size_t n, void *userdata);
static size_t mw_http_header(char *ptr, size_t size, size_t n,
    void *userdata);


int
mw_http_init(mw_ctx_t *ctx)
{
    mw_curl_t  *c;

    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        return -1;
    }

    c = calloc(1, sizeof(mw_curl_t));
    if (c == NULL) {
        curl_global_cleanup();
        return -1;
    }

    c->ctx = ctx;
    ctx->curl = c;

    c->multi = curl_multi_init();
    if (c->multi == NULL) {
        return -1;
    }

    curl_multi_setopt(c->multi, CURLMOPT_SOCKETFUNCTION, mw_http_socket);
    curl_multi_setopt(c->multi, CURLMOPT_SOCKETDATA, c);
    curl_multi_setopt(c->multi, CURLMOPT_TIMERFUNCTION, mw_http_timer);
    curl_multi_setopt(c->multi, CURLMOPT_TIMERDATA, c);
    curl_multi_setopt(c->multi, CURLMOPT_PIPELINING, CURLPIPE_MULTIPLEX);
    curl_multi_setopt(c->multi, CURLMOPT_MAX_HOST_CONNECTIONS, 4L);
    curl_multi_setopt(c->multi, CURLMOPT_MAX_CONCURRENT_STREAMS, 1000L);

    ev_timer_init(&c->timer, mw_http_timeout, 0., 0.);
    c->timer.data = c;

    return 0;
}


void
mw_http_cleanup(mw_ctx_t *ctx)
{
    mw_curl_t  *c = ctx->curl;

    if (c == NULL) {
        curl_global_cleanup();
        return;
    }

    ev_timer_stop(ctx->loop, &c->timer);

    if (c->multi) {
        curl_multi_cleanup(c->multi);
    }

    free(c);
    ctx->curl = NULL;

    curl_global_cleanup();
}


mw_http_t *
mw_http_new(mw_ctx_t *ctx, mw_http_done_pt done, void *data)
{
    mw_http_t  *h;

    h = calloc(1, sizeof(mw_http_t));
    if (h == NULL) {
        return NULL;
    }

    h->easy = curl_easy_init();
    if (h->easy == NULL) {
        free(h);
        return NULL;
    }

    h->ctx = ctx;
    h->done = done;
    h->data = data;

    curl_easy_setopt(h->easy, CURLOPT_PRIVATE, h);
    curl_easy_setopt(h->easy, CURLOPT_ERRORBUFFER, h->error);
    curl_easy_setopt(h->easy, CURLOPT_WRITEFUNCTION, mw_http_write);
    curl_easy_setopt(h->easy, CURLOPT_WRITEDATA, h);
    curl_easy_setopt(h->easy, CURLOPT_HEADERFUNCTION, mw_http_header);
    curl_easy_setopt(h->easy, CURLOPT_HEADERDATA, h);
    curl_easy_setopt(h->easy, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h->easy, CURLOPT_TIMEOUT, 30L);
    curl_easy_setopt(h->easy, CURLOPT_CONNECTTIMEOUT, 10L);

    return h;
}


int
mw_http_start(mw_http_t *h)
{
    h->status = 0;
    h->body_len = 0;
    h->apns_id[0] = '\0';
    h->error[0] = '\0';

    curl_easy_setopt(h->easy, CURLOPT_HTTPHEADER, h->headers);

    if (curl_multi_add_handle(h->ctx->curl->multi, h->easy) != CURLM_OK) {
        return -1;
    }

    h->ctx->curl->running++;

    return 0;
}


void
mw_http_free(mw_http_t *h)
{
    curl_easy_cleanup(h->easy);
    curl_slist_free_all(h->headers);
    free(h);
}


int
mw_http_inflight(mw_ctx_t *ctx)
{
    return ctx->curl ? ctx->curl->running : 0;
}


static int
mw_http_socket(CURL *e, curl_socket_t s, int what, void *userp,
    void *socketp)
{
    int         events;
    mw_sock_t  *sock = socketp;
    mw_curl_t  *c = userp;

    (void) e;

    if (what == CURL_POLL_REMOVE) {
        if (sock) {
            ev_io_stop(c->ctx->loop, &sock->io);
            curl_multi_assign(c->multi, s, NULL);
            free(sock);
        }
        return 0;
    }

    events = ((what & CURL_POLL_IN) ? EV_READ : 0)
             | ((what & CURL_POLL_OUT) ? EV_WRITE : 0);

    if (sock == NULL) {
        sock = calloc(1, sizeof(mw_sock_t));
        if (sock == NULL) {
            return -1;
        }

        sock->fd = s;
        sock->curl = c;
        ev_io_init(&sock->io, mw_http_io, s, events);
        sock->io.data = sock;
        curl_multi_assign(c->multi, s, sock);

    } else {
        ev_io_stop(c->ctx->loop, &sock->io);
        ev_io_set(&sock->io, s, events);
    }

    ev_io_start(c->ctx->loop, &sock->io);

    return 0;
}


static int
mw_http_timer(CURLM *m, long timeout_ms, void *userp)
{
    mw_curl_t  *c = userp;

    (void) m;

    ev_timer_stop(c->ctx->loop, &c->timer);

    if (timeout_ms >= 0) {
        ev_timer_set(&c->timer, timeout_ms / 1000., 0.);
        ev_timer_start(c->ctx->loop, &c->timer);
    }

    return 0;
}


static void
mw_http_io(struct ev_loop *loop, ev_io *w, int revents)
{
    int         running, action;
    mw_sock_t  *sock = w->data;
    mw_curl_t  *c = sock->curl;

    (void) loop;

    action = ((revents & EV_READ) ? CURL_CSELECT_IN : 0)
             | ((revents & EV_WRITE) ? CURL_CSELECT_OUT : 0);

    /* the call may free sock (CURL_POLL_REMOVE) */
    curl_multi_socket_action(c->multi, sock->fd, action, &running);
    mw_http_finished(c);
}


static void
mw_http_timeout(struct ev_loop *loop, ev_timer *w, int revents)
{
    int         running;
    mw_curl_t  *c = w->data;

    (void) loop;
    (void) revents;

    curl_multi_socket_action(c->multi, CURL_SOCKET_TIMEOUT, 0, &running);
    mw_http_finished(c);
}


static void
mw_http_finished(mw_curl_t *c)
{
    int         left;
    CURL       *e;
    CURLMsg    *msg;
    mw_http_t  *h;

    while ((msg = curl_multi_info_read(c->multi, &left)) != NULL) {
        if (msg->msg != CURLMSG_DONE) {
            continue;
        }

        e = msg->easy_handle;
        curl_easy_getinfo(e, CURLINFO_PRIVATE, (char **) &h);

        h->result = msg->data.result;
        curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &h->status);

        curl_multi_remove_handle(c->multi, e);
        c->running--;

        h->done(h);
    }
}


/* only the start of a body is kept: APNs answers a short JSON */

static size_t
mw_http_write(char *ptr, size_t size, size_t n, void *userdata)
{
    size_t      len = size * n, room;
    mw_http_t  *h = userdata;

    room = sizeof(h->body) - 1 - h->body_len;
    if (len < room) {
        room = len;
    }

    memcpy(h->body + h->body_len, ptr, room);
    h->body_len += room;
    h->body[h->body_len] = '\0';

    return len;
}


static size_t
mw_http_header(char *ptr, size_t size, size_t n, void *userdata)
{
    size_t      len = size * n, v;
    mw_http_t  *h = userdata;

    if (len > 9 && strncasecmp(ptr, "apns-id:", 8) == 0) {
        for (v = 8; v < len && ptr[v] == ' '; v++) { /* void */ }

        snprintf(h->apns_id, sizeof(h->apns_id), "%.*s",
                 (int) (len - v), ptr + v);
        h->apns_id[strcspn(h->apns_id, "\r\n")] = '\0';
    }

    return len;
}
