#include "h2/conn.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <nghttp2/nghttp2.h>

#include "h2/filter.h"
#include "net/conn.h"
#include "util/log.h"

/* Flow control: a 4 MiB message must not crawl through 64 KiB windows, so
 * each stream may have 8 MiB in flight and the connection 16 MiB. */
#define H2_STREAM_WINDOW (8 << 20)
#define H2_CONN_WINDOW (16 << 20)
/* Counted like SETTINGS_MAX_HEADER_LIST_SIZE (name + value + 32 per field);
 * PROTOCOL-HTTP2.md suggests 8 KiB, we allow twice that. */
#define H2_MAX_HEADER_LIST 16384

struct h2_conn {
    net_conn net;             /* embedded socket; net.data == this */
    uv_prepare_t flusher;     /* runs mem_send before the loop blocks again */
    const h2_config *cfg;     /* borrowed */
    nghttp2_session *session; /* owned; NULL once closing */
    h2_filter filter;         /* in front of session: drops idle-stream RSTs */
    list_node link;           /* in the owner's connection list */
    list_node streams;        /* h2_stream list (one per open stream) */
    budget memory;            /* what this peer's streams pin; parent cfg->memory */
    uv_timer_t idle;          /* --idle-connection-timeout-ms */
    int open_handles;         /* net + flusher + idle timer; freed when all closed */
    bool closing, flush_pending, idle_goaway;
};

static void conn_close(h2_conn *c);
static void on_flush(uv_prepare_t *h);
static void want_flush(h2_conn *c);

h2_conn *h2_conn_from_node(list_node *n)
{
    return container_of(n, h2_conn, link);
}

const net_peer *h2_conn_peer(const h2_conn *c)
{
    return &c->net.peer;
}

uid_t h2_conn_peer_uid(const h2_conn *c)
{
    return c->net.peer.uid;
}

budget *h2_conn_budget(h2_conn *c)
{
    return &c->memory;
}

/* How long after an idle connection is closed once its GOAWAY left. */
#define IDLE_CLOSE_GRACE_MS 1000

static void on_idle(uv_timer_t *t)
{
    h2_conn *c = t->data;

    if (c->closing)
        return;
    if (c->idle_goaway) { /* the peer did not hang up after the GOAWAY */
        conn_close(c);
        return;
    }
    log_debug("conn %p: idle for %llu ms: GOAWAY", (void *)c,
              (unsigned long long)c->cfg->idle_timeout_ms);
    c->idle_goaway = true;
    nghttp2_submit_goaway(c->session, NGHTTP2_FLAG_NONE,
                          nghttp2_session_get_last_proc_stream_id(c->session), NGHTTP2_NO_ERROR,
                          (const uint8_t *)"idle", 4);
    want_flush(c);
    uv_timer_start(&c->idle, on_idle, IDLE_CLOSE_GRACE_MS, 0);
}

/* Starts the idle clock when the last stream went (or at accept). */
static void idle_clock(h2_conn *c)
{
    if (c->cfg->idle_timeout_ms == 0 || c->closing || c->idle_goaway)
        return;
    if (list_empty(&c->streams))
        uv_timer_start(&c->idle, on_idle, c->cfg->idle_timeout_ms, 0);
    else
        uv_timer_stop(&c->idle);
}

static void want_flush(h2_conn *c)
{
    if (c->flush_pending || c->closing)
        return;
    /* A prepare handle runs right before the loop polls again, so every
     * answer produced in this iteration (reads, timers, database results)
     * leaves in one write, and none waits behind a blocking poll. */
    c->flush_pending = true;
    uv_prepare_start(&c->flusher, on_flush);
}

/* Pulls frames from nghttp2 into the output buffer until nghttp2 has
 * nothing more or the backlog reached the high-water mark. Returns 1 when
 * it stopped at the mark, 0 when nghttp2 is drained, -1 after closing. */
static int pull_frames(h2_conn *c)
{
    const uint8_t *p;
    ssize_t n;

    while (net_conn_backlog(&c->net) < NET_CONN_HIGH_WATER) {
        n = nghttp2_session_mem_send(c->session, &p);
        if (n < 0) {
            log_debug("conn %p: mem_send: %s", (void *)c, nghttp2_strerror((int)n));
            conn_close(c);
            return -1;
        }
        if (n == 0)
            return 0;
        if (net_conn_append(&c->net, p, (size_t)n) < 0) {
            conn_close(c);
            return -1;
        }
    }
    return 1;
}

/* Moves nghttp2's output to the socket. When the socket takes a whole
 * high-water batch at once (no write request, so no drain callback will
 * follow), pulls again: stopping there stalled large answers until the
 * peer happened to send something. */
static void flush(h2_conn *c)
{
    int more;

    do {
        more = pull_frames(c);
        if (more < 0)
            return;
        if (net_conn_flush(&c->net) < 0) {
            conn_close(c);
            return;
        }
    } while (more && net_conn_backlog(&c->net) < NET_CONN_LOW_WATER);
    /* Stop reading while the peer does not read our answers. */
    net_conn_pause(&c->net, net_conn_backlog(&c->net) >= NET_CONN_HIGH_WATER);
    if (!nghttp2_session_want_read(c->session) && !nghttp2_session_want_write(c->session) &&
        net_conn_backlog(&c->net) == 0)
        conn_close(c);
}

static void on_flush(uv_prepare_t *h)
{
    h2_conn *c = h->data;

    uv_prepare_stop(h);
    c->flush_pending = false;
    if (!c->closing)
        flush(c);
}

/* h2_filter: a frame for a client stream nghttp2 has never seen (idle).
 * grpc-core clients send RST_STREAM for calls cancelled before their
 * HEADERS left (grpc/grpc#19655); nghttp2 would answer with a connection
 * error that fails every other call, so such frames are dropped. */
static bool filter_drop(void *data, uint8_t type, int32_t stream_id)
{
    h2_conn *c = data;

    if (c->closing || nghttp2_session_find_stream(c->session, stream_id))
        return false;
    if (stream_id <= nghttp2_session_get_last_proc_stream_id(c->session))
        return false;
    log_debug("conn %p: dropped frame type %u for idle stream %d", (void *)c, type, stream_id);
    return true;
}

static int filter_pass(void *data, const uint8_t *bytes, size_t len)
{
    h2_conn *c = data;
    ssize_t rv;

    if (c->closing)
        return -ECANCELED;
    rv = nghttp2_session_mem_recv(c->session, bytes, len);
    if (rv < 0) {
        /* Fatal for the session only (a bad preface, a flood, OOM); other
         * connections are unaffected. */
        log_debug("conn %p: mem_recv: %s", (void *)c, nghttp2_strerror((int)rv));
        conn_close(c);
        return -EPROTO;
    }
    return 0;
}

static void on_net_read(net_conn *n, const uint8_t *data, size_t len)
{
    h2_conn *c = n->data;

    if (h2_filter_feed(&c->filter, data, len) < 0)
        return;
    want_flush(c);
}

static void on_net_error(net_conn *n, int err)
{
    h2_conn *c = n->data;

    if (err != UV_EOF && err != UV_ECONNRESET)
        log_debug("conn %p: %s", (void *)c, uv_strerror(err));
    conn_close(c);
}

static void on_net_drain(net_conn *n)
{
    h2_conn *c = n->data;
    if (!c->closing)
        flush(c);
}

static void handle_closed(h2_conn *c)
{
    const h2_config *cfg = c->cfg;

    if (--c->open_handles > 0)
        return;
    free(c);
    if (cfg->conn_closed != NULL)
        cfg->conn_closed(cfg->conn_data);
}

static void on_net_close(net_conn *n)
{
    handle_closed(n->data);
}

static void on_flusher_close(uv_handle_t *h)
{
    handle_closed(h->data);
}

static void on_idle_close(uv_handle_t *h)
{
    handle_closed(h->data);
}

static const struct net_conn_ops net_ops = {
    .on_read = on_net_read,
    .on_error = on_net_error,
    .on_drain = on_net_drain,
    .on_close = on_net_close,
};

/* Unlinks |st| and tells its owner that it closed. */
static void stream_closed(h2_conn *c, h2_stream *st, uint32_t error_code)
{
    list_remove(&st->link);
    st->conn = NULL;
    c->cfg->stream_ops->close(st, error_code);
    idle_clock(c);
}

/* Closes every stream (their owners hear of it), the session and the
 * handles. */
static void conn_close(h2_conn *c)
{
    if (c->closing)
        return;
    c->closing = true;
    while (!list_empty(&c->streams))
        stream_closed(c, container_of(c->streams.next, h2_stream, link), NGHTTP2_CANCEL);
    nghttp2_session_del(c->session);
    c->session = NULL;
    list_remove(&c->link);
    net_conn_close(&c->net);
    uv_close((uv_handle_t *)&c->flusher, on_flusher_close);
    uv_close((uv_handle_t *)&c->idle, on_idle_close);
}

void h2_conn_close(h2_conn *c)
{
    conn_close(c);
}

/* ---- nghttp2 callbacks ------------------------------------------------ */

static h2_stream *stream_of(nghttp2_session *s, int32_t stream_id)
{
    return nghttp2_session_get_stream_user_data(s, stream_id);
}

static int on_begin_headers(nghttp2_session *s, const nghttp2_frame *frame, void *user_data)
{
    h2_conn *c = user_data;
    h2_stream *st;

    if (frame->hd.type != NGHTTP2_HEADERS || frame->headers.cat != NGHTTP2_HCAT_REQUEST)
        return 0;
    st = c->cfg->stream_ops->begin(c->cfg->stream_data, c, frame->hd.stream_id);
    if (!st) {
        /* Out of memory: REFUSED_STREAM tells the client that nothing was
         * processed, so it may retry (gRPC reports it as UNAVAILABLE). The
         * stream has no owner; its later frames are ignored. */
        nghttp2_submit_rst_stream(s, NGHTTP2_FLAG_NONE, frame->hd.stream_id,
                                  NGHTTP2_REFUSED_STREAM);
        return 0;
    }
    st->conn = c;
    st->id = frame->hd.stream_id;
    list_push(&c->streams, &st->link);
    idle_clock(c);
    nghttp2_session_set_stream_user_data(s, frame->hd.stream_id, st);
    return 0;
}

static int on_header(nghttp2_session *s, const nghttp2_frame *frame, const uint8_t *name,
                     size_t namelen, const uint8_t *value, size_t valuelen, uint8_t flags,
                     void *user_data)
{
    h2_conn *c = user_data;
    h2_stream *st = stream_of(s, frame->hd.stream_id);

    (void)flags;
    /* Request trailers (HEADERS after DATA) carry nothing gRPC uses. */
    if (st && frame->hd.type == NGHTTP2_HEADERS && frame->headers.cat == NGHTTP2_HCAT_REQUEST)
        c->cfg->stream_ops->header(st, name, namelen, value, valuelen);
    return 0;
}

static int on_frame_recv(nghttp2_session *s, const nghttp2_frame *frame, void *user_data)
{
    h2_conn *c = user_data;
    h2_stream *st;

    if (frame->hd.type != NGHTTP2_HEADERS && frame->hd.type != NGHTTP2_DATA)
        return 0;
    /* Callbacks may run after the stream closed: no owner, nothing to do. */
    st = stream_of(s, frame->hd.stream_id);
    if (!st)
        return 0;
    if (frame->hd.type == NGHTTP2_HEADERS && frame->headers.cat == NGHTTP2_HCAT_REQUEST)
        c->cfg->stream_ops->headers_end(st);
    if (frame->hd.flags & NGHTTP2_FLAG_END_STREAM)
        c->cfg->stream_ops->end_stream(st);
    return 0;
}

static int on_data_chunk(nghttp2_session *s, uint8_t flags, int32_t stream_id, const uint8_t *data,
                         size_t len, void *user_data)
{
    h2_conn *c = user_data;
    h2_stream *st = stream_of(s, stream_id);

    (void)flags;
    if (st)
        c->cfg->stream_ops->data(st, data, len);
    return 0;
}

static int on_stream_close(nghttp2_session *s, int32_t stream_id, uint32_t error_code,
                           void *user_data)
{
    h2_stream *st = stream_of(s, stream_id);

    if (st) {
        nghttp2_session_set_stream_user_data(s, stream_id, NULL);
        stream_closed(user_data, st, error_code);
    }
    return 0;
}

/* gRPC: "if the server sends trailers before the client's END_STREAM, it
 * should follow them with RST_STREAM(NO_ERROR)" so the client stops
 * sending. Doing it once the END_STREAM frame really left keeps the order. */
static int on_frame_send(nghttp2_session *s, const nghttp2_frame *frame, void *user_data)
{
    int32_t id = frame->hd.stream_id;

    (void)user_data;
    if ((frame->hd.type == NGHTTP2_HEADERS || frame->hd.type == NGHTTP2_DATA) &&
        (frame->hd.flags & NGHTTP2_FLAG_END_STREAM) &&
        nghttp2_session_get_stream_remote_close(s, id) == 0)
        nghttp2_submit_rst_stream(s, NGHTTP2_FLAG_NONE, id, NGHTTP2_NO_ERROR);
    return 0;
}

/* The data source of every response body: the stream owner's pull. */
static ssize_t read_body(nghttp2_session *session, int32_t stream_id, uint8_t *buf, size_t length,
                         uint32_t *data_flags, nghttp2_data_source *source, void *user_data)
{
    h2_conn *c = user_data;
    bool eof = false;
    ssize_t n;

    (void)session;
    (void)stream_id;
    n = c->cfg->stream_ops->pull(source->ptr, buf, length, &eof);
    if (n == H2_DEFERRED)
        return NGHTTP2_ERR_DEFERRED;
    if (eof)
        *data_flags |= NGHTTP2_DATA_FLAG_EOF | NGHTTP2_DATA_FLAG_NO_END_STREAM;
    return n;
}

/* ---- answering --------------------------------------------------------- */

#define H2_MAX_RESPONSE_HEADERS 8

/* Converts |hdrs| for nghttp2; literal names are never copied. */
static size_t to_nv(const h2_header *hdrs, size_t n, nghttp2_nv *nva)
{
    if (n > H2_MAX_RESPONSE_HEADERS)
        n = H2_MAX_RESPONSE_HEADERS;
    for (size_t i = 0; i < n; i++) {
        nva[i] = (nghttp2_nv){
            .name = (uint8_t *)hdrs[i].name,
            .value = (uint8_t *)hdrs[i].value,
            .namelen = hdrs[i].namelen,
            .valuelen = hdrs[i].valuelen,
            .flags = NGHTTP2_NV_FLAG_NO_COPY_NAME |
                     (hdrs[i].copy_value ? 0 : NGHTTP2_NV_FLAG_NO_COPY_VALUE),
        };
    }
    return n;
}

static bool stream_live(const h2_stream *s)
{
    return s->conn != NULL && !s->conn->closing;
}

int h2_stream_respond(h2_stream *s, const h2_header *hdrs, size_t n, bool body)
{
    nghttp2_nv nva[H2_MAX_RESPONSE_HEADERS];
    nghttp2_data_provider dp = {.source.ptr = s, .read_callback = read_body};

    if (!stream_live(s))
        return -ECANCELED;
    n = to_nv(hdrs, n, nva);
    if (nghttp2_submit_response(s->conn->session, s->id, nva, n, body ? &dp : NULL) != 0) {
        log_debug("stream %d: cannot submit a response", s->id);
        return -EIO;
    }
    want_flush(s->conn);
    return 0;
}

int h2_stream_trailers(h2_stream *s, const h2_header *hdrs, size_t n)
{
    nghttp2_nv nva[H2_MAX_RESPONSE_HEADERS];

    if (!stream_live(s))
        return -ECANCELED;
    n = to_nv(hdrs, n, nva);
    if (nghttp2_submit_trailer(s->conn->session, s->id, nva, n) != 0) {
        log_debug("stream %d: cannot submit trailers", s->id);
        return -EIO;
    }
    want_flush(s->conn);
    return 0;
}

void h2_stream_resume(h2_stream *s)
{
    if (!stream_live(s))
        return;
    nghttp2_session_resume_data(s->conn->session, s->id);
    want_flush(s->conn);
}

void h2_stream_reset(h2_stream *s)
{
    if (!stream_live(s))
        return;
    nghttp2_submit_rst_stream(s->conn->session, NGHTTP2_FLAG_NONE, s->id, NGHTTP2_CANCEL);
    want_flush(s->conn);
}

/* ---- session setup ---------------------------------------------------- */

static int session_new(h2_conn *c)
{
    nghttp2_session_callbacks *cbs = NULL;
    nghttp2_option *opt = NULL;
    int rv;

    rv = nghttp2_session_callbacks_new(&cbs);
    if (rv == 0)
        rv = nghttp2_option_new(&opt);
    if (rv == 0) {
        nghttp2_session_callbacks_set_on_begin_headers_callback(cbs, on_begin_headers);
        nghttp2_session_callbacks_set_on_header_callback(cbs, on_header);
        nghttp2_session_callbacks_set_on_frame_recv_callback(cbs, on_frame_recv);
        nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs, on_data_chunk);
        nghttp2_session_callbacks_set_on_stream_close_callback(cbs, on_stream_close);
        nghttp2_session_callbacks_set_on_frame_send_callback(cbs, on_frame_send);
        /* gRPC clients send odd :authority values over Unix sockets (a
         * path, empty, none): validate the gRPC headers ourselves. */
        nghttp2_option_set_no_http_messaging(opt, 1);
        rv = nghttp2_session_server_new2(&c->session, cbs, c, opt);
    }
    nghttp2_option_del(opt);
    nghttp2_session_callbacks_del(cbs);
    return rv;
}

static int send_settings(h2_conn *c)
{
    const nghttp2_settings_entry iv[] = {
        {NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, c->cfg->max_concurrent_streams},
        {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, H2_STREAM_WINDOW},
        {NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, H2_MAX_HEADER_LIST},
    };
    int rv = nghttp2_submit_settings(c->session, NGHTTP2_FLAG_NONE, iv, 3);

    if (rv == 0)
        rv =
            nghttp2_session_set_local_window_size(c->session, NGHTTP2_FLAG_NONE, 0, H2_CONN_WINDOW);
    return rv;
}

/* Creates a connection around a socket: from |listener| (accept) or, when
 * |listener| is NULL, the connected |fd|. */
static int conn_new(const h2_config *cfg, uv_stream_t *listener, int fd, list_node *conns)
{
    h2_conn *c = calloc(1, sizeof(*c));
    int rv;

    if (!c)
        return -ENOMEM;
    c->cfg = cfg;
    budget_init(&c->memory, cfg->conn_memory, cfg->memory);
    h2_filter_init(&c->filter, filter_drop, filter_pass, c);
    list_init(&c->streams);
    list_init(&c->link);
    /* If accepting fails after the handle exists, its close callback frees
     * |c| through handle_closed(), so count it as the one open handle. */
    c->open_handles = 1;
    c->closing = true;
    rv = listener ? net_conn_accept(&c->net, listener, &net_ops, c, cfg->rbuf, cfg->rbuf_len)
                  : net_conn_open(&c->net, cfg->loop, fd, &net_ops, c, cfg->rbuf, cfg->rbuf_len);
    if (rv < 0) {
        if (!c->net.closing)
            free(c);
        return rv;
    }
    c->closing = false;
    c->open_handles = 3;
    uv_prepare_init(cfg->loop, &c->flusher);
    c->flusher.data = c;
    uv_timer_init(cfg->loop, &c->idle);
    c->idle.data = c;
    list_push(conns, &c->link);
    if (session_new(c) != 0 || send_settings(c) != 0) {
        conn_close(c);
        return -ENOMEM;
    }
    want_flush(c);
    idle_clock(c);
    return 0;
}

int h2_conn_accept(const h2_config *cfg, uv_stream_t *listener, list_node *conns)
{
    return conn_new(cfg, listener, -1, conns);
}

int h2_conn_adopt(const h2_config *cfg, int fd, list_node *conns)
{
    return conn_new(cfg, NULL, fd, conns);
}

void h2_conn_shutdown_notice(h2_conn *c)
{
    if (c->closing)
        return;
    nghttp2_submit_shutdown_notice(c->session);
    want_flush(c);
}

void h2_conn_goaway(h2_conn *c)
{
    if (c->closing)
        return;
    nghttp2_submit_goaway(c->session, NGHTTP2_FLAG_NONE,
                          nghttp2_session_get_last_proc_stream_id(c->session), NGHTTP2_NO_ERROR,
                          NULL, 0);
    want_flush(c);
}
