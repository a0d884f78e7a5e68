/* The rpc layer of one gRPC call: validates the request headers, reassembles
 * and decodes the request message into the call's arena, runs the handler,
 * and turns its answer into HTTP/2 frames (headers, messages, trailers, or
 * one trailers-only HEADERS frame for errors found before any answer).
 *
 * States: HEADERS (reading request headers) → READING (headers valid,
 * reading the message) → RUNNING (handler dispatched) → DONE (status
 * decided). A call in DONE waits for nghttp2 to close the stream, which
 * frees it (rpc_call_on_close). */
#include "rpc/call_priv.h"

#include <assert.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <nghttp2/nghttp2.h>
#include <uv.h>

#include "h2/conn.h"
#include "rpc/frame.h"
#include "rpc/metadata.h"
#include "rpc/method.h"
#include "rpc/percent.h"
#include "rpc/timeout.h"
#include "server.h"
#include "util/log.h"

#define CALL_MAX_HEADER_BYTES 16384 /* like SETTINGS_MAX_HEADER_LIST_SIZE */
#define CALL_MAX_METADATA 64        /* distinct custom metadata names */
#define TENANT_RULE "invalid x-tenant-id: 1-64 characters of [A-Za-z0-9_.:-]"
#define CALL_MIN_SEND_LIMIT (64u << 20) /* responses may exceed the request limit */

enum call_state { CALL_HEADERS, CALL_READING, CALL_RUNNING, CALL_DONE };

enum encoding { ENC_IDENTITY, ENC_GZIP, ENC_UNSUPPORTED };

/* Bits of rpc_call.seen: request headers that were present and valid. */
enum {
    SEEN_POST = 1 << 0,
    SEEN_GRPC_CT = 1 << 1,
    SEEN_TE = 1 << 2,
    SEEN_METHOD = 1 << 3, /* any :method at all */
};

/* One serialised response message waiting for nghttp2 to pull it. */
struct out_chunk {
    struct out_chunk *next;
    const uint8_t *data;
    size_t len, off;
    bool heap; /* malloc'd together with its data (streamed messages) */
};

struct rpc_call {
    list_node link;     /* in the connection's call list */
    struct server *srv; /* borrowed */
    h2_conn *conn;      /* borrowed; NULL once the stream closed */
    int32_t stream_id;
    enum call_state state;
    arena arena;              /* owned: request, metadata, unary answers */
    rpc_metadata md;          /* custom metadata, in the arena */
    rpc_frame_decoder dec;    /* owned: request message reassembly */
    const rpc_method *method; /* borrowed from the method table */
    const char *path;         /* arena copy of :path (NUL-terminated) */
    size_t path_len;          /* its wire length (it may contain a NUL) */
    unsigned seen;
    size_t header_bytes;
    rpc_status hdr_status; /* first header problem (RPC_OK: none) */
    const char *hdr_msg;   /* static string */
    enum encoding encoding;
    bool has_deadline, timer_used, headers_sent, accept_enc;
    uint64_t timeout_ms, deadline; /* deadline in uv_now() milliseconds */
    uv_timer_t timer;              /* embedded; used only with grpc-timeout */
    uid_t peer_uid;
    const char *tenant, *user, *session;
    const ProtobufCMessage *request; /* in the arena */
    unsigned nmsgs;
    rpc_status status;   /* final status once DONE */
    const char *message; /* arena copy of the status message, or NULL */
    struct out_chunk *out_head, *out_tail;
    rpc_cancel_fn cancel_fn;
    void *cancel_data;
};

static const char *const status_text[RPC_STATUS_COUNT] = {
    "0", "1", "2", "3", "4", "5", "6", "7", "8", "9", "10", "11", "12", "13", "14", "15", "16",
};

#define NV(n, v)                                                                                   \
    {                                                                                              \
        (uint8_t *)(n), (uint8_t *)(v), sizeof(n) - 1, sizeof(v) - 1,                              \
            NGHTTP2_NV_FLAG_NO_COPY_NAME | NGHTTP2_NV_FLAG_NO_COPY_VALUE                           \
    }
#define ACCEPT_ENCODING "identity,gzip"

/* ---- accessors (rpc/call.h) ------------------------------------------- */

arena *rpc_call_arena(rpc_call *call)
{
    return &call->arena;
}

void *rpc_call_alloc(rpc_call *call, size_t n)
{
    return arena_alloc(&call->arena, n);
}

struct server *rpc_call_server(rpc_call *call)
{
    return call->srv;
}

const char *rpc_call_metadata(rpc_call *call, const char *name, size_t *len)
{
    return rpc_metadata_get(&call->md, name, strlen(name), len);
}

const char *rpc_call_tenant(rpc_call *call)
{
    return call->tenant;
}

const char *rpc_call_user(rpc_call *call)
{
    return call->user;
}

const char *rpc_call_session(rpc_call *call)
{
    return call->session;
}

uint64_t rpc_call_remaining_ms(rpc_call *call)
{
    uint64_t now;

    if (!call->has_deadline)
        return UINT64_MAX;
    now = uv_now(call->srv->loop);
    return call->deadline > now ? call->deadline - now : 0;
}

uid_t rpc_call_peer_uid(rpc_call *call)
{
    return call->peer_uid;
}

const char *rpc_call_path(rpc_call *call)
{
    return call->path ? call->path : "";
}

bool rpc_call_is_done(rpc_call *call)
{
    return call->state == CALL_DONE;
}

void rpc_call_on_cancel(rpc_call *call, rpc_cancel_fn fn, void *data)
{
    call->cancel_fn = fn;
    call->cancel_data = data;
}

list_node *rpc_call_node(rpc_call *call)
{
    return &call->link;
}

rpc_call *rpc_call_from_node(list_node *n)
{
    return container_of(n, rpc_call, link);
}

/* ---- lifecycle -------------------------------------------------------- */

/* The one place the state changes. States only move forward; anything
 * else is a bug in this file, never the peer's doing. */
static void set_state(rpc_call *call, enum call_state to)
{
    static const char *const names[] = {"headers", "reading", "running", "done"};

    assert(to > call->state);
    log_debug("stream %d %s: %s -> %s", call->stream_id, rpc_call_path(call), names[call->state],
              names[to]);
    call->state = to;
}

rpc_call *rpc_call_begin(struct server *srv, h2_conn *conn, int32_t stream_id, list_node *calls)
{
    rpc_call *call = calloc(1, sizeof(*call));
    size_t limit = (size_t)srv->cfg->max_message_bytes * 4;

    if (!call)
        return NULL;
    call->srv = srv;
    call->conn = conn;
    call->stream_id = stream_id;
    call->state = CALL_HEADERS;
    call->peer_uid = h2_conn_peer_uid(conn);
    /* The arena holds the request, a decoded copy of large fields and the
     * answer; the cap stops a handler bug from eating the machine. */
    arena_init(&call->arena, limit < CALL_MIN_SEND_LIMIT ? CALL_MIN_SEND_LIMIT : limit);
    rpc_metadata_init(&call->md, &call->arena, CALL_MAX_METADATA, CALL_MAX_HEADER_BYTES);
    rpc_frame_decoder_init(&call->dec, srv->cfg->max_message_bytes);
    list_push(calls, &call->link);
    srv->stats.calls_in_flight++;
    return call;
}

static void free_call(rpc_call *call)
{
    struct out_chunk *o, *next;

    for (o = call->out_head; o; o = next) {
        next = o->next;
        if (o->heap)
            free(o);
    }
    rpc_frame_decoder_deinit(&call->dec);
    arena_deinit(&call->arena);
    free(call);
}

static void on_timer_closed(uv_handle_t *h)
{
    free_call(h->data);
}

/* Runs the cancel hook once, if the handler left one. */
static void run_hook(rpc_call *call)
{
    rpc_cancel_fn fn = call->cancel_fn;

    call->cancel_fn = NULL;
    if (fn)
        fn(call, call->cancel_data);
}

void rpc_call_on_close(rpc_call *call, uint32_t error_code)
{
    list_remove(&call->link);
    call->conn = NULL;
    if (call->state != CALL_DONE) {
        /* The client reset the stream or went away before an answer. */
        bool running = call->state == CALL_RUNNING;
        set_state(call, CALL_DONE);
        call->status = RPC_CANCELLED;
        log_debug("call %s on stream %d cancelled by the client (h2 error %u)", rpc_call_path(call),
                  call->stream_id, error_code);
        if (running)
            run_hook(call);
    }
    server_count_call(call->srv, call->status);
    if (call->timer_used) {
        uv_timer_stop(&call->timer);
        uv_close((uv_handle_t *)&call->timer, on_timer_closed);
        return;
    }
    free_call(call);
}

/* ---- answering -------------------------------------------------------- */

/* Trailers-only: ":status 200", content-type and the status in one HEADERS
 * frame with END_STREAM, for errors before any answer started. */
static void submit_trailers_only(rpc_call *call, nghttp2_session *s, const char *msg)
{
    nghttp2_nv nva[5] = {
        NV(":status", "200"),
        NV("content-type", "application/grpc"),
        NV("grpc-status", "0"),
    };
    size_t n = 3;

    nva[2].value = (uint8_t *)status_text[call->status];
    nva[2].valuelen = strlen(status_text[call->status]);
    if (msg) {
        nva[n] = (nghttp2_nv)NV("grpc-message", "");
        nva[n].value = (uint8_t *)msg;
        nva[n].valuelen = strlen(msg);
        nva[n++].flags = NGHTTP2_NV_FLAG_NO_COPY_NAME;
    }
    if (call->accept_enc)
        nva[n++] = (nghttp2_nv)NV("grpc-accept-encoding", ACCEPT_ENCODING);
    if (nghttp2_submit_response(s, call->stream_id, nva, n, NULL) != 0)
        log_debug("stream %d: cannot submit trailers-only", call->stream_id);
}

/* Percent-encodes |msg| into the arena (NULL when there is none). */
static const char *encode_message(rpc_call *call, const char *msg)
{
    size_t len, n;
    char *out;

    if (!msg || !*msg)
        return NULL;
    len = rpc_percent_encoded_len(msg, strlen(msg));
    if (len > 4096)
        len = 4096; /* a status message is for humans; cap what we send */
    out = arena_alloc(&call->arena, len + 1);
    if (!out)
        return NULL;
    (void)rpc_percent_encode(msg, strlen(msg), out, len + 1, &n); /* clean cut if capped */
    return out;
}

/* Decides the final status and tells nghttp2: trailers-only if nothing was
 * answered yet, else the data provider ends with EOF and the trailers. */
static void answer(rpc_call *call, rpc_status status, const char *msg)
{
    nghttp2_session *s;

    set_state(call, CALL_DONE);
    /* A handler bug must not index past the status table. */
    call->status = (unsigned)status < RPC_STATUS_COUNT ? status : RPC_UNKNOWN;
    call->message = encode_message(call, msg);
    call->cancel_fn = NULL;
    if (call->timer_used)
        uv_timer_stop(&call->timer);
    if (!call->conn)
        return;
    s = h2_conn_session(call->conn);
    if (!s)
        return;
    if (!call->headers_sent)
        submit_trailers_only(call, s, call->message);
    else
        nghttp2_session_resume_data(s, call->stream_id);
    h2_conn_want_flush(call->conn);
}

/* An HTTP error without a gRPC body (415, 405): just a status line. */
static void answer_http(rpc_call *call, const char *code)
{
    nghttp2_nv nva[1] = {NV(":status", "415")};

    set_state(call, CALL_DONE);
    call->status = RPC_UNKNOWN;
    nva[0].value = (uint8_t *)code;
    nva[0].valuelen = strlen(code);
    if (nghttp2_submit_response(h2_conn_session(call->conn), call->stream_id, nva, 1, NULL))
        log_debug("stream %d: cannot submit HTTP %s", call->stream_id, code);
    h2_conn_want_flush(call->conn);
}

static void submit_trailers(rpc_call *call, nghttp2_session *s)
{
    nghttp2_nv nva[2] = {NV("grpc-status", "0"), NV("grpc-message", "")};
    size_t n = 1;

    nva[0].value = (uint8_t *)status_text[call->status];
    nva[0].valuelen = strlen(status_text[call->status]);
    if (call->message) {
        nva[1].value = (uint8_t *)call->message;
        nva[1].valuelen = strlen(call->message);
        nva[1].flags = NGHTTP2_NV_FLAG_NO_COPY_NAME;
        n = 2;
    }
    if (nghttp2_submit_trailer(s, call->stream_id, nva, n) != 0)
        log_debug("stream %d: cannot submit trailers", call->stream_id);
}

ssize_t rpc_call_pull(rpc_call *call, uint8_t *buf, size_t len, uint32_t *data_flags)
{
    size_t n = 0;

    while (n < len && call->out_head) {
        struct out_chunk *o = call->out_head;
        size_t k = o->len - o->off;
        if (k > len - n)
            k = len - n;
        memcpy(buf + n, o->data + o->off, k);
        n += k;
        o->off += k;
        if (o->off < o->len)
            break;
        call->out_head = o->next;
        if (!call->out_head)
            call->out_tail = NULL;
        if (o->heap)
            free(o);
    }
    if (!call->out_head && call->state == CALL_DONE && call->conn) {
        /* Everything sent: end the body without END_STREAM, which the
         * trailers HEADERS frame carries. */
        *data_flags |= NGHTTP2_DATA_FLAG_EOF | NGHTTP2_DATA_FLAG_NO_END_STREAM;
        submit_trailers(call, h2_conn_session(call->conn));
        return (ssize_t)n;
    }
    return n ? (ssize_t)n : NGHTTP2_ERR_DEFERRED;
}

/* Queues a serialised message and makes sure the response headers (with
 * the data provider that pulls the queue) are submitted. */
static int enqueue(rpc_call *call, struct out_chunk *o)
{
    static const nghttp2_nv hdrs[] = {
        NV(":status", "200"),
        NV("content-type", "application/grpc"),
        NV("grpc-accept-encoding", ACCEPT_ENCODING),
    };
    nghttp2_session *s = h2_conn_session(call->conn);
    nghttp2_data_provider dp = {.source.ptr = call, .read_callback = h2_read_response};

    if (call->out_tail)
        call->out_tail->next = o;
    else
        call->out_head = o;
    call->out_tail = o;
    if (!call->headers_sent) {
        if (nghttp2_submit_response(s, call->stream_id, hdrs, 3, &dp) != 0)
            return -EIO;
        call->headers_sent = true;
    } else {
        nghttp2_session_resume_data(s, call->stream_id);
    }
    h2_conn_want_flush(call->conn);
    return 0;
}

static size_t send_limit(const rpc_call *call)
{
    size_t lim = call->srv->cfg->max_message_bytes;
    return lim < CALL_MIN_SEND_LIMIT ? CALL_MIN_SEND_LIMIT : lim;
}

int rpc_call_send(rpc_call *call, const ProtobufCMessage *msg)
{
    size_t size, len;
    struct out_chunk *o;
    int rv;

    if (call->state == CALL_DONE || !call->conn)
        return -ECANCELED;
    size = rpc_frame_packed_size(msg);
    if (size - RPC_FRAME_PREFIX_LEN > send_limit(call))
        return -EMSGSIZE;
    /* Streamed messages live outside the arena so that a long stream does
     * not grow it: each is freed once nghttp2 pulled it. */
    o = malloc(sizeof(*o) + size);
    if (!o)
        return -ENOMEM;
    rv = rpc_frame_pack_to(msg, send_limit(call), (uint8_t *)(o + 1), size, &len);
    if (rv < 0) {
        free(o);
        return rv == -EMSGSIZE ? -EMSGSIZE : -ENOMEM;
    }
    *o = (struct out_chunk){.data = (uint8_t *)(o + 1), .len = len, .heap = true};
    /* On failure the chunk stays queued and is freed with the call. */
    return enqueue(call, o);
}

void rpc_call_finish(rpc_call *call, rpc_status status, const char *message)
{
    if (call->state == CALL_DONE)
        return;
    answer(call, status, message);
}

void rpc_call_finishf(rpc_call *call, rpc_status status, const char *fmt, ...)
{
    char buf[512];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    rpc_call_finish(call, status, buf);
}

void rpc_call_reply(rpc_call *call, const ProtobufCMessage *msg)
{
    struct out_chunk *o;
    uint8_t *buf;
    size_t len;
    int rv;

    if (call->state == CALL_DONE || !call->conn)
        return;
    /* A unary answer lives in the arena: no malloc of its own. */
    rv = rpc_frame_pack_arena(msg, send_limit(call), &call->arena, &buf, &len);
    o = rv == 0 ? arena_alloc(&call->arena, sizeof(*o)) : NULL;
    if (!o) {
        answer(call, rv == -EMSGSIZE ? RPC_RESOURCE_EXHAUSTED : RPC_INTERNAL,
               rv == -EMSGSIZE ? "response message too large" : "cannot encode response");
        return;
    }
    *o = (struct out_chunk){.data = buf, .len = len};
    if (enqueue(call, o) < 0) {
        answer(call, RPC_INTERNAL, "cannot submit response");
        return;
    }
    answer(call, RPC_OK, NULL);
}

void rpc_call_cancel(rpc_call *call, rpc_status status, const char *msg)
{
    rpc_cancel_fn fn = call->cancel_fn;
    void *data = call->cancel_data;
    bool running = call->state == CALL_RUNNING;

    if (call->state == CALL_DONE)
        return;
    /* Answer first, so a hook that calls rpc_call_finish() finds the call
     * done; then let the handler detach. */
    answer(call, status, msg);
    if (running && fn)
        fn(call, data);
}

/* ---- request headers -------------------------------------------------- */

/* Remembers the first problem; it is answered when the headers are done. */
static void header_fail(rpc_call *call, rpc_status status, const char *msg)
{
    if (call->hdr_status == RPC_OK) {
        call->hdr_status = status;
        call->hdr_msg = msg;
    }
}

static bool name_is(const uint8_t *name, size_t len, const char *lit)
{
    size_t n = strlen(lit);
    return len == n && memcmp(name, lit, n) == 0;
}

static void on_pseudo(rpc_call *call, const uint8_t *name, size_t nl, const uint8_t *v, size_t vl)
{
    if (name_is(name, nl, ":method")) {
        call->seen |= SEEN_METHOD;
        if (vl == 4 && memcmp(v, "POST", 4) == 0)
            call->seen |= SEEN_POST;
    } else if (name_is(name, nl, ":path")) {
        call->path = arena_strndup(&call->arena, (const char *)v, vl);
        call->path_len = vl;
        if (!call->path)
            header_fail(call, RPC_RESOURCE_EXHAUSTED, "out of memory");
    }
    /* :scheme and :authority are not checked: gRPC clients send a path,
     * nothing or an empty authority over Unix sockets. */
}

static void on_encoding(rpc_call *call, const uint8_t *v, size_t vl)
{
    if (vl == 8 && memcmp(v, "identity", 8) == 0)
        call->encoding = ENC_IDENTITY;
    else if (vl == 4 && memcmp(v, "gzip", 4) == 0)
        call->encoding = ENC_GZIP;
    else
        call->encoding = ENC_UNSUPPORTED;
}

/* Headers that are not metadata: transport headers and reserved grpc-*. */
static bool is_transport_header(const uint8_t *name, size_t nl)
{
    static const char *const skip[] = {
        "user-agent", "host",       "content-length",   "accept-encoding",
        "connection", "keep-alive", "proxy-connection", "transfer-encoding",
        "upgrade",
    };
    if (nl >= 5 && memcmp(name, "grpc-", 5) == 0)
        return true;
    for (size_t i = 0; i < sizeof(skip) / sizeof(skip[0]); i++) {
        if (name_is(name, nl, skip[i]))
            return true;
    }
    return false;
}

static void add_metadata(rpc_call *call, const uint8_t *name, size_t nl, const uint8_t *v,
                         size_t vl)
{
    int rv = rpc_metadata_add(&call->md, (const char *)name, nl, (const char *)v, vl);

    if (rv == -E2BIG || rv == -ENOMEM)
        header_fail(call, RPC_RESOURCE_EXHAUSTED, "request metadata too large");
    else if (rv < 0 && name_is(name, nl, "x-tenant-id"))
        header_fail(call, RPC_INVALID_ARGUMENT, TENANT_RULE);
    else if (rv < 0)
        header_fail(call, RPC_INTERNAL, "invalid request metadata");
}

void rpc_call_on_header(rpc_call *call, const uint8_t *name, size_t nl, const uint8_t *v, size_t vl)
{
    if (call->state != CALL_HEADERS)
        return;
    call->header_bytes += nl + vl + RPC_METADATA_ENTRY_OVERHEAD;
    if (call->header_bytes > CALL_MAX_HEADER_BYTES) {
        header_fail(call, RPC_RESOURCE_EXHAUSTED, "request headers too large");
        return;
    }
    if (nl > 0 && name[0] == ':') {
        on_pseudo(call, name, nl, v, vl);
    } else if (name_is(name, nl, "content-type")) {
        if (rpc_content_type_is_grpc((const char *)v, vl))
            call->seen |= SEEN_GRPC_CT;
    } else if (name_is(name, nl, "te")) {
        if (rpc_te_has_trailers((const char *)v, vl))
            call->seen |= SEEN_TE;
    } else if (name_is(name, nl, "grpc-timeout")) {
        if (rpc_timeout_parse((const char *)v, vl, &call->timeout_ms) < 0)
            header_fail(call, RPC_INTERNAL, "malformed grpc-timeout");
        else
            call->has_deadline = true;
    } else if (name_is(name, nl, "grpc-encoding")) {
        on_encoding(call, v, vl);
    } else if (!is_transport_header(name, nl)) {
        add_metadata(call, name, nl, v, vl);
    }
}

/* x-tenant-id (validated), x-user-id and x-session-id. */
static void read_identity(rpc_call *call)
{
    size_t len;

    call->tenant = rpc_metadata_get(&call->md, "x-tenant-id", 11, &len);
    if (call->tenant && !rpc_tenant_valid(call->tenant, len))
        header_fail(call, RPC_INVALID_ARGUMENT, TENANT_RULE);
    else if (!call->tenant && call->method && (call->method->flags & RPC_NEEDS_TENANT))
        header_fail(call, RPC_INVALID_ARGUMENT, "missing x-tenant-id metadata");
    call->user = rpc_metadata_get(&call->md, "x-user-id", 9, NULL);
    call->session = rpc_metadata_get(&call->md, "x-session-id", 12, NULL);
}

static void on_deadline(uv_timer_t *t)
{
    rpc_call *call = t->data;

    log_debug("call %s on stream %d: deadline exceeded", rpc_call_path(call), call->stream_id);
    rpc_call_cancel(call, RPC_DEADLINE_EXCEEDED, "deadline exceeded");
}

static void arm_deadline(rpc_call *call)
{
    uv_loop_t *loop = call->srv->loop;

    call->deadline = uv_now(loop) + call->timeout_ms;
    uv_timer_init(loop, &call->timer);
    call->timer.data = call;
    call->timer_used = true;
    uv_timer_start(&call->timer, on_deadline, call->timeout_ms, 0);
}

/* Validation order: HTTP-level problems (405, 415) first, as they mean the
 * peer is not speaking gRPC at all; then te, the method, header problems
 * and the tenant, each answered trailers-only. */
void rpc_call_on_headers_end(rpc_call *call)
{
    if (call->state != CALL_HEADERS)
        return;
    if (!(call->seen & SEEN_GRPC_CT)) {
        answer_http(call, "415");
        return;
    }
    if (!(call->seen & SEEN_POST)) {
        answer_http(call, "405");
        return;
    }
    if (!(call->seen & SEEN_TE)) {
        answer(call, RPC_INTERNAL, "te: trailers is required");
        return;
    }
    if (call->path)
        call->method = rpc_methods_find(&call->srv->methods, call->path, call->path_len);
    if (!call->method) {
        /* Name the path, as grpc-go does; percent-encoding makes any byte
         * of it safe in grpc-message. */
        answer(call, RPC_UNIMPLEMENTED,
               arena_printf(&call->arena, "unknown method %s", rpc_call_path(call)));
        return;
    }
    if (call->encoding == ENC_UNSUPPORTED) {
        call->accept_enc = true;
        header_fail(call, RPC_UNIMPLEMENTED, "unsupported grpc-encoding");
    }
    read_identity(call);
    if (call->hdr_status != RPC_OK) {
        answer(call, call->hdr_status, call->hdr_msg);
        return;
    }
    set_state(call, CALL_READING);
    if (call->has_deadline)
        arm_deadline(call);
}

/* ---- request messages ------------------------------------------------- */

/* Unpacks one message (decompressing it first if flagged) into the arena. */
static void on_message(rpc_call *call, const rpc_frame_msg *msg)
{
    const ProtobufCMessageDescriptor *desc = call->method->method->input;
    ProtobufCAllocator *alloc = arena_protobuf_allocator(&call->arena);
    uint8_t *plain = NULL;
    size_t plain_len = 0;
    int rv;

    if (++call->nmsgs > 1) {
        answer(call, RPC_UNIMPLEMENTED, "more than one request message for a unary method");
        return;
    }
    if (!msg->compressed) {
        call->request = protobuf_c_message_unpack(desc, alloc, msg->len, msg->data);
    } else if (call->encoding != ENC_GZIP) {
        answer(call, RPC_INTERNAL, "compressed message without grpc-encoding");
        return;
    } else {
        rv = rpc_frame_gunzip(msg->data, msg->len, call->srv->cfg->max_message_bytes, &plain,
                              &plain_len);
        if (rv < 0) {
            answer(call, rv == -EMSGSIZE ? RPC_RESOURCE_EXHAUSTED : RPC_INTERNAL,
                   rv == -EMSGSIZE ? "decompressed message too large" : "bad gzip message");
            return;
        }
        call->request = protobuf_c_message_unpack(desc, alloc, plain_len, plain);
        free(plain);
    }
    if (!call->request)
        answer(call, RPC_INTERNAL, "cannot parse request message");
}

void rpc_call_on_data(rpc_call *call, const uint8_t *data, size_t len)
{
    rpc_frame_msg msg;
    int rv;

    while (call->state == CALL_READING && len > 0) {
        rv = rpc_frame_decoder_feed(&call->dec, &data, &len, &msg);
        if (rv == 0)
            return;
        if (rv == -EMSGSIZE) {
            answer(call, RPC_RESOURCE_EXHAUSTED, "request message larger than --max-message-bytes");
            return;
        }
        if (rv < 0) {
            answer(call, rv == -ENOMEM ? RPC_RESOURCE_EXHAUSTED : RPC_INTERNAL,
                   "malformed request message");
            return;
        }
        on_message(call, &msg);
    }
}

void rpc_call_on_end_stream(rpc_call *call)
{
    if (call->state != CALL_READING)
        return;
    if (rpc_frame_decoder_finish(&call->dec) < 0) {
        answer(call, RPC_INTERNAL, "request stream ended inside a message");
        return;
    }
    if (call->nmsgs == 0) {
        answer(call, RPC_INTERNAL, "no request message");
        return;
    }
    rpc_frame_decoder_deinit(&call->dec); /* the message is decoded; drop its buffer */
    set_state(call, CALL_RUNNING);
    call->method->handler(call, call->request, call->method->data);
}
