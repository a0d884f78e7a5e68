#include "net/conn.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "util/list.h"
#include "util/log.h"

/* A queued write: the request and the buffer it owns (stolen from the
 * connection's pending buffer, so nothing is copied twice). */
struct write_req {
    uv_write_t req;
    net_conn *conn;
    uint8_t *buf; /* owned */
    size_t len;   /* bytes this request accounts for in conn->queued */
};

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    net_conn *c = h->data;
    (void)suggested;
    *buf = uv_buf_init((char *)c->rbuf, (unsigned)c->rbuf_len);
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    net_conn *c = s->data;

    if (nread > 0)
        c->ops->on_read(c, (const uint8_t *)buf->base, (size_t)nread);
    else if (nread < 0 && !c->closing)
        c->ops->on_error(c, (int)nread);
}

/* The supplementary groups of the peer: the kernel answers ERANGE with the
 * size it needs when the buffer is too small. */
static void read_peer_groups(int fd, net_peer *peer)
{
    gid_t small[32];
    socklen_t len = sizeof(small);
    gid_t *buf = small;

    if (getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, buf, &len) < 0) {
        if (errno != ERANGE || (buf = malloc(len)) == NULL)
            return;
        if (getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, buf, &len) < 0) {
            free(buf);
            return;
        }
    }
    if (len > 0 && buf == small) {
        buf = malloc(len);
        if (buf == NULL)
            return;
        memcpy(buf, small, len);
    }
    peer->groups = len > 0 ? buf : NULL;
    peer->ngroups = len / sizeof(gid_t);
    if (len == 0 && buf != small)
        free(buf);
}

static void read_peer_cred(net_conn *c)
{
    struct ucred cred;
    socklen_t len = sizeof(cred);
    uv_os_fd_t fd;

    if (uv_fileno((uv_handle_t *)&c->pipe, &fd) < 0)
        return;
    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) == 0) {
        c->peer.uid = cred.uid;
        c->peer.gid = cred.gid;
        c->peer.pid = cred.pid;
    }
    read_peer_groups(fd, &c->peer);
}

bool net_peer_in_group(const net_peer *peer, gid_t gid)
{
    if (peer->gid == gid)
        return true;
    for (size_t i = 0; i < peer->ngroups; i++)
        if (peer->groups[i] == gid)
            return true;
    return false;
}

static void conn_setup(net_conn *c, const struct net_conn_ops *ops, void *data, uint8_t *rbuf,
                       size_t rbuf_len)
{
    c->ops = ops;
    c->data = data;
    c->rbuf = rbuf;
    c->rbuf_len = rbuf_len;
    c->queued = c->out_len = c->out_cap = 0;
    c->out = NULL;
    c->closing = c->reading = c->paused = false;
    c->peer = (net_peer){.uid = (uid_t)-1, .gid = (gid_t)-1};
}

/* Reads the credentials and starts reading; closes the handle on error. */
static int conn_start(net_conn *c)
{
    int rv;

    read_peer_cred(c);
    rv = uv_read_start((uv_stream_t *)&c->pipe, on_alloc, on_read);
    if (rv < 0) {
        net_conn_close(c);
        return rv;
    }
    c->reading = true;
    return 0;
}

int net_conn_accept(net_conn *c, uv_stream_t *server, const struct net_conn_ops *ops, void *data,
                    uint8_t *rbuf, size_t rbuf_len)
{
    int rv;

    conn_setup(c, ops, data, rbuf, rbuf_len);
    rv = uv_pipe_init(server->loop, &c->pipe, 0);
    if (rv < 0)
        return rv; /* nothing to close */
    c->pipe.data = c;
    rv = uv_accept(server, (uv_stream_t *)&c->pipe);
    if (rv < 0) {
        net_conn_close(c);
        return rv;
    }
    return conn_start(c);
}

int net_conn_open(net_conn *c, uv_loop_t *loop, int fd, const struct net_conn_ops *ops, void *data,
                  uint8_t *rbuf, size_t rbuf_len)
{
    int rv;

    conn_setup(c, ops, data, rbuf, rbuf_len);
    rv = uv_pipe_init(loop, &c->pipe, 0);
    if (rv < 0)
        return rv;
    c->pipe.data = c;
    rv = uv_pipe_open(&c->pipe, fd);
    if (rv < 0) {
        net_conn_close(c);
        return rv;
    }
    return conn_start(c);
}

int net_conn_append(net_conn *c, const uint8_t *data, size_t len)
{
    if (c->out_cap - c->out_len < len) {
        size_t cap = c->out_cap ? c->out_cap : 16384;
        while (cap - c->out_len < len)
            cap *= 2;
        uint8_t *p = realloc(c->out, cap);
        if (!p)
            return -ENOMEM;
        c->out = p;
        c->out_cap = cap;
    }
    memcpy(c->out + c->out_len, data, len);
    c->out_len += len;
    return 0;
}

size_t net_conn_backlog(const net_conn *c)
{
    return c->out_len + c->queued;
}

static void on_write(uv_write_t *req, int status)
{
    struct write_req *w = container_of(req, struct write_req, req);
    net_conn *c = w->conn;

    c->queued -= w->len;
    free(w->buf);
    free(w);
    if (c->closing)
        return;
    if (status < 0) {
        c->ops->on_error(c, status);
        return;
    }
    if (net_conn_backlog(c) < NET_CONN_LOW_WATER)
        c->ops->on_drain(c);
}

/* Queues out[off..out_len) with uv_write, handing the buffer over. */
static int queue_rest(net_conn *c, size_t off)
{
    struct write_req *w = malloc(sizeof(*w));
    uv_buf_t b;
    int rv;

    if (!w)
        return UV_ENOMEM;
    w->conn = c;
    w->buf = c->out;
    w->len = c->out_len - off;
    b = uv_buf_init((char *)c->out + off, (unsigned)w->len);
    c->out = NULL;
    c->out_len = c->out_cap = 0;
    rv = uv_write(&w->req, (uv_stream_t *)&c->pipe, &b, 1, on_write);
    if (rv < 0) {
        free(w->buf);
        free(w);
        return rv;
    }
    c->queued += w->len;
    return 0;
}

int net_conn_flush(net_conn *c)
{
    int n = 0;

    if (c->closing || c->out_len == 0)
        return 0;
    /* Try the socket directly first: for small answers on an idle socket
     * this writes everything without allocating a request. libuv refuses
     * (EAGAIN) while earlier writes are queued, which keeps the order. */
    if (c->queued == 0) {
        uv_buf_t b = uv_buf_init((char *)c->out, (unsigned)c->out_len);
        n = uv_try_write((uv_stream_t *)&c->pipe, &b, 1);
        if (n == UV_EAGAIN)
            n = 0;
        if (n < 0)
            return n;
        if ((size_t)n == c->out_len) {
            c->out_len = 0;
            return 0;
        }
    }
    return queue_rest(c, (size_t)n);
}

void net_conn_pause(net_conn *c, bool paused)
{
    if (c->closing || paused == c->paused)
        return;
    c->paused = paused;
    if (paused)
        uv_read_stop((uv_stream_t *)&c->pipe);
    else if (uv_read_start((uv_stream_t *)&c->pipe, on_alloc, on_read) < 0)
        c->ops->on_error(c, UV_EIO);
}

static void on_closed(uv_handle_t *h)
{
    net_conn *c = h->data;

    free(c->out);
    c->out = NULL;
    free(c->peer.groups);
    c->peer.groups = NULL;
    c->peer.ngroups = 0;
    c->ops->on_close(c);
}

void net_conn_close(net_conn *c)
{
    if (c->closing)
        return;
    c->closing = true;
    uv_close((uv_handle_t *)&c->pipe, on_closed);
}
