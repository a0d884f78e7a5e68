/* libarbiter: the connection (libuv pipe + nghttp2 client session) and the
 * calls multiplexed on it. See arbiter.h for the contract.
 *
 * Re-entrancy: user callbacks run from inside nghttp2 callbacks (a response
 * ends inside nghttp2_session_mem_recv) and from timers. They may start,
 * cancel or close anything, so every entry point brackets its work with
 * enter()/leave(): while the depth is above zero nothing is flushed and a
 * close request only sets a flag; the outermost leave() flushes the session
 * or performs the close. Calls are freed only from their timer's close
 * callback, i.e. on a later loop iteration, so a call that ended during a
 * callback stays readable until the stack has unwound.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>

#include <nghttp2/nghttp2.h>

#include "arbiter.h"
#include "config.h"
#include "rpc/base64.h"
#include "rpc/frame.h"
#include "rpc/percent.h"
#include "util/status.h"

/* Largest response message accepted (the server's default limit is 4 MiB,
 * but it can be raised). */
#define CLIENT_MAX_MESSAGE (64u << 20)
/* Receive windows: big enough that a 4 MiB answer needs no round trips. */
#define CLIENT_STREAM_WINDOW (8 << 20)
#define CLIENT_CONN_WINDOW (64 << 20)
#define CLIENT_READ_BUF 65536

enum client_state {
    CLIENT_CONNECTING,
    CLIENT_CONNECTED,
    CLIENT_FAILED,  /* transport failed: every call ended, new ones refused */
    CLIENT_CLOSING, /* arbiter_client_close() ran: handles are closing */
};

struct arbiter_client {
    uv_loop_t *loop;          /* borrowed */
    uv_pipe_t pipe;           /* .data = this client */
    uv_connect_t connect_req; /* .data = this client */
    nghttp2_session *session; /* owned; NULL once closed */
    enum client_state state;
    int error; /* negative errno once FAILED */
    int depth; /* nesting of enter()/leave() */
    bool close_requested;
    bool goaway_received; /* the server sent GOAWAY */
    arbiter_call *calls;  /* borrowed list of live calls (owned by themselves) */
    size_t n_calls;
    uint8_t rbuf[CLIENT_READ_BUF];
};

struct arbiter_call {
    arbiter_client *client; /* borrowed */
    arbiter_call *prev, *next;
    int32_t stream_id;
    bool opened; /* HEADERS went out: RST_STREAM allowed */
    bool ended;
    uv_timer_t timer; /* .data = this call; its close frees the call */
    uint8_t *body;    /* owned: prefixed request message */
    size_t body_len, body_off;
    rpc_frame_decoder dec;
    int http_status;    /* 0 until :status arrived */
    int grpc_status;    /* -1 until grpc-status arrived */
    char *grpc_message; /* owned, NUL-terminated, or NULL */
    int encoding;       /* 0 identity, 1 gzip, -1 unsupported */
    uint8_t *resp;      /* owned: last message (unary delivery) */
    size_t resp_len;
    size_t messages;
    arbiter_message_cb on_message;
    arbiter_done_cb on_done;
    void *user;
};

struct write_req {
    uv_write_t req;
    arbiter_client *client;
    uint8_t *data; /* owned */
};

const char *arbiter_status_name(int status)
{
    return rpc_status_name((rpc_status)status);
}

size_t arbiter_client_active_calls(const arbiter_client *client)
{
    return client ? client->n_calls : 0;
}

static void do_close(arbiter_client *c);
static void flush(arbiter_client *c);
static void fail_connection(arbiter_client *c, int err);

/* nghttp2 wants neither to read nor to write once the session is over: it
 * got GOAWAY and its streams are done, or it detected a protocol error
 * (e.g. the peer is not an HTTP/2 server) and queued its own GOAWAY, which
 * flush() has handed to libuv by now. Either way the connection is
 * finished: fail what is left and refuse new calls. */
static void check_session_end(arbiter_client *c)
{
    if (c->state != CLIENT_CONNECTED || nghttp2_session_want_read(c->session) ||
        nghttp2_session_want_write(c->session))
        return;
    fail_connection(c, c->goaway_received ? -ESHUTDOWN : -EPROTO);
}

static void enter(arbiter_client *c)
{
    c->depth++;
}

static void leave(arbiter_client *c)
{
    if (--c->depth > 0)
        return;
    c->depth++;
    if (!c->close_requested) {
        flush(c);
        check_session_end(c);
    }
    if (c->close_requested && c->state != CLIENT_CLOSING)
        do_close(c);
    c->depth--;
}

/* ---- ending calls ------------------------------------------------------ */

static void on_call_timer_closed(uv_handle_t *h)
{
    arbiter_call *call = h->data;

    rpc_frame_decoder_deinit(&call->dec);
    free(call->body);
    free(call->grpc_message);
    free(call->resp);
    free(call);
}

static void call_unlink(arbiter_call *call)
{
    arbiter_client *c = call->client;

    if (call->prev)
        call->prev->next = call->next;
    else
        c->calls = call->next;
    if (call->next)
        call->next->prev = call->prev;
    call->prev = call->next = NULL;
    c->n_calls--;
}

/* Ends |call| once: detaches it from its stream, reports |status| and
 * schedules its memory to be freed. Runs inside enter()/leave(). */
static void call_end(arbiter_call *call, int status, const char *message, int transport_error)
{
    arbiter_client *c = call->client;
    arbiter_result res = {
        .status = status,
        .message = message ? message : "",
        .messages = call->messages,
        .transport_error = transport_error,
    };

    if (call->ended)
        return;
    call->ended = true;
    call_unlink(call);
    uv_timer_stop(&call->timer);
    if (c->session && call->stream_id > 0)
        nghttp2_session_set_stream_user_data(c->session, call->stream_id, NULL);
    if (!call->on_message && status == RPC_OK) {
        res.response = call->resp;
        res.response_len = call->resp_len;
    }
    call->on_done(call, &res, call->user);
    uv_close((uv_handle_t *)&call->timer, on_call_timer_closed);
}

/* Ends every live call with |status|. */
static void end_all(arbiter_client *c, int status, const char *message, int transport_error)
{
    while (c->calls)
        call_end(c->calls, status, message, transport_error);
}

/* Cancels the stream of a live call (RST_STREAM only once it was sent;
 * a stream still queued in nghttp2 is dropped by before_frame_send). */
static void call_reset(arbiter_call *call)
{
    arbiter_client *c = call->client;

    if (c->session && call->opened)
        nghttp2_submit_rst_stream(c->session, NGHTTP2_FLAG_NONE, call->stream_id, NGHTTP2_CANCEL);
}

static void fail_connection(arbiter_client *c, int err)
{
    char msg[160];

    if (c->state == CLIENT_FAILED || c->state == CLIENT_CLOSING)
        return;
    c->state = CLIENT_FAILED;
    c->error = err;
    uv_read_stop((uv_stream_t *)&c->pipe);
    snprintf(msg, sizeof msg, "connection to arbiterd failed: %s", strerror(-err));
    end_all(c, RPC_UNAVAILABLE, msg, err);
}

/* ---- output -------------------------------------------------------------- */

static void on_write_done(uv_write_t *req, int status)
{
    struct write_req *w = (struct write_req *)req;
    arbiter_client *c = w->client;

    free(w->data);
    free(w);
    if (status < 0 && c->state == CLIENT_CONNECTED) {
        enter(c);
        fail_connection(c, status);
        leave(c);
    }
}

static int append(uint8_t **buf, size_t *len, size_t *cap, const uint8_t *p, size_t n)
{
    if (*len + n > *cap) {
        size_t ncap = *cap ? *cap : 16384;
        uint8_t *nb;

        while (ncap < *len + n)
            ncap *= 2;
        nb = realloc(*buf, ncap);
        if (!nb)
            return -ENOMEM;
        *buf = nb;
        *cap = ncap;
    }
    memcpy(*buf + *len, p, n);
    *len += n;
    return 0;
}

static int write_out(arbiter_client *c, uint8_t *data, size_t len)
{
    struct write_req *w = malloc(sizeof *w);
    uv_buf_t b = uv_buf_init((char *)data, (unsigned)len);
    int rv;

    if (!w) {
        free(data);
        return -ENOMEM;
    }
    w->client = c;
    w->data = data;
    rv = uv_write(&w->req, (uv_stream_t *)&c->pipe, &b, 1, on_write_done);
    if (rv < 0) {
        free(data);
        free(w);
    }
    return rv;
}

/* Serializes everything nghttp2 has queued into one uv_write. Only at depth
 * one (called from leave()), because mem_send runs callbacks. */
static void flush(arbiter_client *c)
{
    uint8_t *buf = NULL;
    size_t len = 0, cap = 0;
    int rv = 0;

    if (c->state != CLIENT_CONNECTED)
        return;
    for (;;) {
        const uint8_t *p;
        ssize_t n = nghttp2_session_mem_send(c->session, &p);

        if (n < 0) {
            rv = -EPROTO;
            break;
        }
        if (n == 0)
            break;
        rv = append(&buf, &len, &cap, p, (size_t)n);
        if (rv < 0)
            break;
    }
    if (rv == 0 && len > 0 && c->state == CLIENT_CONNECTED)
        rv = write_out(c, buf, len);
    else
        free(buf);
    if (rv < 0)
        fail_connection(c, rv);
}

/* ---- nghttp2 callbacks ------------------------------------------------- */

static arbiter_call *stream_call(nghttp2_session *s, int32_t stream_id)
{
    arbiter_call *call = nghttp2_session_get_stream_user_data(s, stream_id);

    return call && !call->ended ? call : NULL;
}

static ssize_t read_body(nghttp2_session *s, int32_t stream_id, uint8_t *buf, size_t length,
                         uint32_t *data_flags, nghttp2_data_source *source, void *user_data)
{
    arbiter_call *call = stream_call(s, stream_id);
    size_t n;

    if (!call)
        return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
    n = call->body_len - call->body_off;
    if (n > length)
        n = length;
    memcpy(buf, call->body + call->body_off, n);
    call->body_off += n;
    if (call->body_off == call->body_len)
        *data_flags |= NGHTTP2_DATA_FLAG_EOF;
    return (ssize_t)n;
}

static int on_before_frame_send(nghttp2_session *s, const nghttp2_frame *frame, void *user_data)
{
    arbiter_call *call;

    if (frame->hd.type != NGHTTP2_HEADERS || frame->headers.cat != NGHTTP2_HCAT_REQUEST)
        return 0;
    call = stream_call(s, frame->hd.stream_id);
    if (!call)
        return NGHTTP2_ERR_CANCEL; /* ended while queued: never open it */
    call->opened = true;
    return 0;
}

/* A request HEADERS that nghttp2 could not send (typically: the server
 * sent GOAWAY, so no new stream may start) never opens a stream, so no
 * stream-close callback will end the call: end it here. */
static int on_frame_not_send(nghttp2_session *s, const nghttp2_frame *frame, int error_code,
                             void *user_data)
{
    arbiter_call *call;
    char msg[128];

    if (frame->hd.type != NGHTTP2_HEADERS || frame->headers.cat != NGHTTP2_HCAT_REQUEST)
        return 0;
    call = stream_call(s, frame->hd.stream_id);
    if (!call)
        return 0;
    if (error_code == NGHTTP2_ERR_START_STREAM_NOT_ALLOWED)
        snprintf(msg, sizeof msg, "the server is going away (GOAWAY): the call was not sent");
    else
        snprintf(msg, sizeof msg, "the call could not be sent: %s", nghttp2_strerror(error_code));
    call_end(call, RPC_UNAVAILABLE, msg, 0);
    return 0;
}

static int on_frame_recv(nghttp2_session *s, const nghttp2_frame *frame, void *user_data)
{
    arbiter_client *c = user_data;

    if (frame->hd.type == NGHTTP2_GOAWAY)
        c->goaway_received = true;
    return 0;
}

static bool name_is(const uint8_t *name, size_t len, const char *lit)
{
    return len == strlen(lit) && memcmp(name, lit, len) == 0;
}

/* Parses a decimal number of at most 9 digits; -1 when malformed. */
static int parse_small_uint(const uint8_t *v, size_t len)
{
    int n = 0;

    if (len == 0 || len > 9)
        return -1;
    for (size_t i = 0; i < len; i++) {
        if (v[i] < '0' || v[i] > '9')
            return -1;
        n = n * 10 + (v[i] - '0');
    }
    return n;
}

static int on_header(nghttp2_session *s, const nghttp2_frame *frame, const uint8_t *name,
                     size_t namelen, const uint8_t *value, size_t valuelen, uint8_t flags,
                     void *user_data)
{
    arbiter_call *call = stream_call(s, frame->hd.stream_id);

    if (!call)
        return 0;
    if (name_is(name, namelen, ":status")) {
        call->http_status = parse_small_uint(value, valuelen);
    } else if (name_is(name, namelen, "grpc-status")) {
        int st = parse_small_uint(value, valuelen);

        call->grpc_status = st < 0 ? RPC_UNKNOWN : st;
    } else if (name_is(name, namelen, "grpc-message")) {
        char *m = malloc(valuelen + 1);

        if (!m)
            return NGHTTP2_ERR_CALLBACK_FAILURE;
        m[rpc_percent_decode((const char *)value, valuelen, m)] = '\0';
        free(call->grpc_message);
        call->grpc_message = m;
    } else if (name_is(name, namelen, "grpc-encoding")) {
        if (name_is(value, valuelen, "identity"))
            call->encoding = 0;
        else
            call->encoding = name_is(value, valuelen, "gzip") ? 1 : -1;
    }
    return 0;
}

/* Ends |call| with a client-side protocol error and resets its stream. */
static void call_fail(arbiter_call *call, int status, const char *message)
{
    call_reset(call);
    call_end(call, status, message, 0);
}

static int deliver(arbiter_call *call, const uint8_t *data, size_t len)
{
    uint8_t *copy;

    call->messages++;
    if (call->on_message) {
        call->on_message(call, data, len, call->user);
        return 0;
    }
    copy = malloc(len ? len : 1);
    if (!copy)
        return -ENOMEM;
    if (len)
        memcpy(copy, data, len);
    free(call->resp);
    call->resp = copy;
    call->resp_len = len;
    return 0;
}

/* Hands one framed message to the call, decompressing it if needed. */
static int handle_message(arbiter_call *call, const rpc_frame_msg *msg)
{
    uint8_t *plain = NULL;
    size_t plain_len = 0;
    int rv;

    if (!msg->compressed)
        return deliver(call, msg->data, msg->len);
    if (call->encoding != 1)
        return -EPROTO;
    rv = rpc_frame_gunzip(msg->data, msg->len, CLIENT_MAX_MESSAGE, &plain, &plain_len);
    if (rv < 0)
        return rv;
    rv = deliver(call, plain, plain_len);
    free(plain);
    return rv;
}

static int on_data_chunk(nghttp2_session *s, uint8_t flags, int32_t stream_id, const uint8_t *data,
                         size_t len, void *user_data)
{
    arbiter_call *call = stream_call(s, stream_id);
    rpc_frame_msg msg;

    while (call && !call->ended) {
        int rv = rpc_frame_decoder_feed(&call->dec, &data, &len, &msg);

        if (rv == 0)
            break;
        if (rv > 0)
            rv = handle_message(call, &msg);
        if (rv == -EMSGSIZE)
            call_fail(call, RPC_RESOURCE_EXHAUSTED, "response message larger than the limit");
        else if (rv == -ENOMEM)
            call_fail(call, RPC_RESOURCE_EXHAUSTED, "out of memory for the response");
        else if (rv < 0)
            call_fail(call, RPC_INTERNAL, "malformed response message");
    }
    return 0;
}

/* The status of a stream that closed without grpc-status (gRPC
 * doc/http-grpc-status-mapping.md and PROTOCOL-HTTP2.md RST_STREAM). */
static int status_without_trailers(const arbiter_call *call, uint32_t error_code, char *msg,
                                   size_t cap)
{
    int h = call->http_status;

    if (h != 0 && h != 200) {
        snprintf(msg, cap, "HTTP status %d from the server", h);
        if (h == 400)
            return RPC_INTERNAL;
        if (h == 401)
            return RPC_UNAUTHENTICATED;
        if (h == 403)
            return RPC_PERMISSION_DENIED;
        if (h == 404)
            return RPC_UNIMPLEMENTED;
        return (h == 429 || h == 502 || h == 503 || h == 504) ? RPC_UNAVAILABLE : RPC_UNKNOWN;
    }
    if (error_code != NGHTTP2_NO_ERROR) {
        snprintf(msg, cap, "stream reset by the server (%s)", nghttp2_http2_strerror(error_code));
        if (error_code == NGHTTP2_REFUSED_STREAM)
            return RPC_UNAVAILABLE;
        if (error_code == NGHTTP2_CANCEL)
            return RPC_CANCELLED;
        return error_code == NGHTTP2_ENHANCE_YOUR_CALM ? RPC_RESOURCE_EXHAUSTED : RPC_INTERNAL;
    }
    snprintf(msg, cap, "the server closed the stream without grpc-status");
    return RPC_INTERNAL;
}

static int on_stream_close(nghttp2_session *s, int32_t stream_id, uint32_t error_code,
                           void *user_data)
{
    arbiter_call *call = stream_call(s, stream_id);
    char msg[128];
    int st;

    if (!call)
        return 0;
    if (call->grpc_status < 0) {
        st = status_without_trailers(call, error_code, msg, sizeof msg);
        call_end(call, st, msg, 0);
    } else if (call->grpc_status == RPC_OK && rpc_frame_decoder_finish(&call->dec) < 0) {
        call_end(call, RPC_INTERNAL, "the response ended inside a message", 0);
    } else {
        call_end(call, call->grpc_status, call->grpc_message, 0);
    }
    return 0;
}

static int session_create(arbiter_client *c)
{
    nghttp2_session_callbacks *cbs = NULL;
    nghttp2_option *opt = NULL;
    nghttp2_settings_entry iv[] = {
        {NGHTTP2_SETTINGS_ENABLE_PUSH, 0},
        {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, CLIENT_STREAM_WINDOW},
    };
    int rv = -ENOMEM;

    if (nghttp2_session_callbacks_new(&cbs) != 0 || nghttp2_option_new(&opt) != 0)
        goto out;
    nghttp2_session_callbacks_set_on_header_callback(cbs, on_header);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs, on_data_chunk);
    nghttp2_session_callbacks_set_on_stream_close_callback(cbs, on_stream_close);
    nghttp2_session_callbacks_set_before_frame_send_callback(cbs, on_before_frame_send);
    nghttp2_session_callbacks_set_on_frame_not_send_callback(cbs, on_frame_not_send);
    nghttp2_session_callbacks_set_on_frame_recv_callback(cbs, on_frame_recv);
    /* gRPC servers answer trailers-only and odd header sets; we check
     * :status and grpc-status ourselves. */
    nghttp2_option_set_no_http_messaging(opt, 1);
    if (nghttp2_session_client_new2(&c->session, cbs, c, opt) != 0)
        goto out;
    if (nghttp2_submit_settings(c->session, NGHTTP2_FLAG_NONE, iv, 2) != 0 ||
        nghttp2_session_set_local_window_size(c->session, NGHTTP2_FLAG_NONE, 0,
                                              CLIENT_CONN_WINDOW) != 0) {
        nghttp2_session_del(c->session);
        c->session = NULL;
        goto out;
    }
    rv = 0;
out:
    nghttp2_option_del(opt);
    nghttp2_session_callbacks_del(cbs);
    return rv;
}

/* ---- connection ---------------------------------------------------------- */

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    arbiter_client *c = h->data;

    *buf = uv_buf_init((char *)c->rbuf, sizeof c->rbuf);
}

static void on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf)
{
    arbiter_client *c = stream->data;

    if (nread == 0 || c->state != CLIENT_CONNECTED)
        return;
    enter(c);
    if (nread < 0) {
        fail_connection(c, nread == UV_EOF ? -ECONNRESET : (int)nread);
    } else if (nghttp2_session_mem_recv(c->session, (const uint8_t *)buf->base, (size_t)nread) <
               0) {
        fail_connection(c, -EPROTO);
    }
    leave(c);
}

static void on_connect(uv_connect_t *req, int status)
{
    arbiter_client *c = req->data;
    int rv;

    if (c->state != CLIENT_CONNECTING)
        return; /* closed meanwhile (status is UV_ECANCELED) */
    enter(c);
    if (status < 0) {
        fail_connection(c, status);
    } else {
        c->state = CLIENT_CONNECTED;
        rv = uv_read_start((uv_stream_t *)&c->pipe, on_alloc, on_read);
        if (rv < 0)
            fail_connection(c, rv);
    }
    leave(c);
}

static void on_pipe_closed(uv_handle_t *h)
{
    free(h->data);
}

/* Ends the calls and closes the handles. Runs at depth one only. */
static void do_close(arbiter_client *c)
{
    c->state = CLIENT_CLOSING;
    end_all(c, RPC_CANCELLED, "the client was closed", 0);
    uv_read_stop((uv_stream_t *)&c->pipe);
    nghttp2_session_del(c->session);
    c->session = NULL;
    uv_close((uv_handle_t *)&c->pipe, on_pipe_closed);
}

int arbiter_client_new(uv_loop_t *loop, const char *socket_path, arbiter_client **out)
{
    struct sockaddr_un sun;
    arbiter_client *c;
    int rv;

    if (!loop || !socket_path || !out || !*socket_path)
        return -EINVAL;
    if (strlen(socket_path) >= sizeof sun.sun_path)
        return -ENAMETOOLONG;
    c = calloc(1, sizeof *c);
    if (!c)
        return -ENOMEM;
    c->loop = loop;
    rv = session_create(c);
    if (rv < 0)
        goto err_session;
    rv = uv_pipe_init(loop, &c->pipe, 0);
    if (rv < 0)
        goto err_pipe;
    c->pipe.data = c;
    c->connect_req.data = c;
    c->state = CLIENT_CONNECTING;
    uv_pipe_connect(&c->connect_req, &c->pipe, socket_path, on_connect);
    *out = c;
    return 0;

err_pipe:
    nghttp2_session_del(c->session);
err_session:
    free(c);
    return rv;
}

void arbiter_client_close(arbiter_client *client)
{
    if (!client || client->close_requested)
        return;
    client->close_requested = true;
    enter(client);
    leave(client);
}

/* ---- calls --------------------------------------------------------------- */

static bool metadata_key_ok(const char *k)
{
    if (!k || !*k || strncmp(k, "grpc-", 5) == 0)
        return false;
    for (const char *p = k; *p; p++) {
        if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '-' || *p == '_' ||
              *p == '.'))
            return false;
    }
    return true;
}

static bool key_is_bin(const char *k)
{
    size_t n = strlen(k);

    return n > 4 && strcmp(k + n - 4, "-bin") == 0;
}

static nghttp2_nv make_nv(const char *name, const char *value, size_t value_len)
{
    nghttp2_nv nv = {
        .name = (uint8_t *)name,
        .value = (uint8_t *)value,
        .namelen = strlen(name),
        .valuelen = value_len,
        .flags = NGHTTP2_NV_FLAG_NONE,
    };
    return nv;
}

/* Writes the gRPC timeout header value: at most 8 digits plus a unit. */
static void format_timeout(uint64_t ms, char *out, size_t cap)
{
    if (ms <= 99999999u)
        snprintf(out, cap, "%llum", (unsigned long long)ms);
    else if (ms / 1000 + 1 <= 99999999u)
        snprintf(out, cap, "%lluS", (unsigned long long)(ms / 1000 + 1));
    else
        snprintf(out, cap, "99999999H");
}

/* Base64-encodes every "-bin" metadata value into |bins| (owned by the
 * caller, one entry per metadata item, NULL for text values). */
static int encode_bins(const struct arbiter_call_opts *o, char **bins)
{
    for (size_t i = 0; i < o->n_metadata; i++) {
        const arbiter_metadata *m = &o->metadata[i];
        size_t vlen = m->value_len ? m->value_len : strlen(m->value);
        size_t cap, olen;

        if (!key_is_bin(m->key))
            continue;
        cap = rpc_base64_encoded_len(vlen) + 1;
        bins[i] = malloc(cap);
        if (!bins[i])
            return -ENOMEM;
        if (rpc_base64_encode((const uint8_t *)m->value, vlen, bins[i], cap, &olen) < 0)
            return -ENOMEM;
    }
    return 0;
}

/* Submits the HEADERS (and the body through a data provider) of |call|.
 * Returns the stream id or a negative errno. */
static int32_t submit(arbiter_client *c, arbiter_call *call, const struct arbiter_call_opts *o)
{
    size_t n = 0, cap = 8 + o->n_metadata;
    nghttp2_nv *nva = calloc(cap, sizeof *nva);
    char **bins = calloc(o->n_metadata + 1, sizeof *bins);
    char timeout[32];
    nghttp2_data_provider prd = {.source.ptr = call, .read_callback = read_body};
    int32_t id = -ENOMEM;

    if (!nva || !bins || encode_bins(o, bins) < 0)
        goto out;
    nva[n++] = make_nv(":method", "POST", 4);
    nva[n++] = make_nv(":scheme", "http", 4);
    nva[n++] = make_nv(":path", o->path, strlen(o->path));
    nva[n++] = make_nv(":authority", "localhost", 9);
    nva[n++] = make_nv("te", "trailers", 8);
    nva[n++] = make_nv("content-type", "application/grpc", 16);
    nva[n++] =
        make_nv("user-agent", "arbiter-c/" ARBITER_VERSION, strlen("arbiter-c/" ARBITER_VERSION));
    if (o->timeout_ms > 0) {
        format_timeout(o->timeout_ms, timeout, sizeof timeout);
        nva[n++] = make_nv("grpc-timeout", timeout, strlen(timeout));
    }
    for (size_t i = 0; i < o->n_metadata; i++) {
        const arbiter_metadata *m = &o->metadata[i];
        const char *v = bins[i] ? bins[i] : m->value;
        size_t vlen = bins[i] ? strlen(bins[i]) : (m->value_len ? m->value_len : strlen(v));

        nva[n++] = make_nv(m->key, v, vlen);
    }
    id = nghttp2_submit_request(c->session, NULL, nva, n, &prd, call);
    if (id < 0)
        id = id == NGHTTP2_ERR_NOMEM ? -ENOMEM : -EPROTO;
out:
    for (size_t i = 0; bins && i < o->n_metadata; i++)
        free(bins[i]);
    free(bins);
    free(nva);
    return id;
}

static int opts_check(const arbiter_client *c, const struct arbiter_call_opts *o)
{
    if (!c || !o || !o->on_done || !o->path || o->path[0] != '/')
        return -EINVAL;
    if (o->request_len > UINT32_MAX || (o->request_len && !o->request))
        return -EINVAL;
    for (size_t i = 0; i < o->n_metadata; i++) {
        if (!metadata_key_ok(o->metadata[i].key) || !o->metadata[i].value)
            return -EINVAL;
    }
    if (c->close_requested || c->state == CLIENT_FAILED || c->state == CLIENT_CLOSING)
        return -EPIPE;
    return 0;
}

static void on_deadline(uv_timer_t *t)
{
    arbiter_call *call = t->data;
    arbiter_client *c = call->client;

    enter(c);
    call_reset(call);
    call_end(call, RPC_DEADLINE_EXCEEDED, "deadline exceeded (client side)", 0);
    leave(c);
}

static arbiter_call *call_new(arbiter_client *c, const struct arbiter_call_opts *o)
{
    arbiter_call *call = calloc(1, sizeof *call);

    if (!call)
        return NULL;
    call->body = malloc(RPC_FRAME_PREFIX_LEN + o->request_len);
    if (!call->body) {
        free(call);
        return NULL;
    }
    rpc_frame_write_prefix(call->body, false, (uint32_t)o->request_len);
    if (o->request_len)
        memcpy(call->body + RPC_FRAME_PREFIX_LEN, o->request, o->request_len);
    call->body_len = RPC_FRAME_PREFIX_LEN + o->request_len;
    call->client = c;
    call->grpc_status = -1;
    call->on_message = o->on_message;
    call->on_done = o->on_done;
    call->user = o->user;
    rpc_frame_decoder_init(&call->dec, CLIENT_MAX_MESSAGE);
    uv_timer_init(c->loop, &call->timer);
    call->timer.data = call;
    return call;
}

int arbiter_call_start(arbiter_client *client, const struct arbiter_call_opts *opts,
                       arbiter_call **out)
{
    arbiter_call *call;
    int32_t id;
    int rv = opts_check(client, opts);

    if (rv < 0)
        return rv;
    call = call_new(client, opts);
    if (!call)
        return -ENOMEM;
    id = submit(client, call, opts);
    if (id < 0) {
        call->ended = true;
        uv_close((uv_handle_t *)&call->timer, on_call_timer_closed);
        return (int)id;
    }
    call->stream_id = id;
    call->next = client->calls;
    if (client->calls)
        client->calls->prev = call;
    client->calls = call;
    client->n_calls++;
    if (opts->timeout_ms > 0)
        uv_timer_start(&call->timer, on_deadline, opts->timeout_ms, 0);
    if (out)
        *out = call;
    enter(client);
    leave(client);
    return 0;
}

int arbiter_call_start_message(arbiter_client *client, const struct arbiter_call_opts *opts,
                               const ProtobufCMessage *request, arbiter_call **out)
{
    struct arbiter_call_opts o;
    size_t len;
    uint8_t *buf;
    int rv;

    if (!opts || !request)
        return -EINVAL;
    len = protobuf_c_message_get_packed_size(request);
    buf = malloc(len ? len : 1);
    if (!buf)
        return -ENOMEM;
    protobuf_c_message_pack(request, buf);
    o = *opts;
    o.request = buf;
    o.request_len = len;
    rv = arbiter_call_start(client, &o, out);
    free(buf);
    return rv;
}

void arbiter_call_cancel(arbiter_call *call)
{
    arbiter_client *c;

    if (!call || call->ended)
        return;
    c = call->client;
    enter(c);
    call_reset(call);
    call_end(call, RPC_CANCELLED, "cancelled by the client", 0);
    leave(c);
}
