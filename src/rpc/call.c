/* The rpc layer of one gRPC call: validates the request headers, reassembles
 * and decodes the request message into the call's arena, runs the handler,
 * and turns its answer into HTTP/2 frames (headers, messages, trailers, or
 * one trailers-only HEADERS frame for errors found before any answer).
 *
 * States: HEADERS (reading request headers) → READING (headers valid,
 * reading the message) → RUNNING (handler dispatched) → DONE (status
 * decided). A call in DONE waits for nghttp2 to close the stream, which
 * frees it (rpc_call_on_close). */
#include "rpc/call.h"

#include <assert.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <uv.h>

#include "h2/conn.h"
#include "rpc/frame.h"
#include "rpc/metadata.h"
#include "rpc/method.h"
#include "rpc/percent.h"
#include "rpc/server.h"
#include "rpc/timeout.h"
#include "rpc/unknown.h"
#include "util/log.h"

#define CALL_MAX_HEADER_BYTES 16384 /* like SETTINGS_MAX_HEADER_LIST_SIZE */
#define CALL_MAX_METADATA 64        /* distinct custom metadata names */
#define TENANT_RULE "invalid x-tenant-id: 1-64 characters of [A-Za-z0-9_.:-]"
#define CALL_MIN_SEND_LIMIT (64u << 20) /* responses may exceed the request limit */
#define CALL_MAX_UNKNOWN_FIELDS 1024    /* in one request, nested ones included */
#define CALL_DECODE_SLACK (64u << 10)   /* arena room beyond 2 x the message while decoding */
#define CALL_MAX_QUEUED (1u << 20)      /* streamed bytes a peer may leave unread per call */

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
    h2_stream stream; /* embedded: h2's view (stream.conn NULL once closed) */
    list_node link;   /* in the rpc_server's call list */
    rpc_server *rs;   /* borrowed */
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
    size_t queued;    /* bytes of heap chunks not yet pulled */
    uint64_t done_ms; /* uv_now() when the status was decided */
    budget *memory;   /* borrowed: the connection's budget */
    rpc_cancel_fn cancel_fn;
    void *cancel_data;
    bool in_doubt; /* a write of this call may be committing right now */
};

#define HDR(n, v) ((h2_header)H2_HEADER(n, v))

static void header_fail(rpc_call *call, rpc_status status, const char *msg);

static const char *const status_text[RPC_STATUS_COUNT] = {
    "0", "1", "2", "3", "4", "5", "6", "7", "8", "9", "10", "11", "12", "13", "14", "15", "16",
};

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
    now = uv_now(call->rs->loop);
    return call->deadline > now ? call->deadline - now : 0;
}

uint64_t rpc_call_deadline_ms(rpc_call *call)
{
    return call->has_deadline ? call->deadline : UINT64_MAX;
}

uid_t rpc_call_peer_uid(rpc_call *call)
{
    return call->peer_uid;
}

const ProtobufCMessage *rpc_call_request(rpc_call *call)
{
    return call->state == CALL_RUNNING || call->state == CALL_DONE ? call->request : NULL;
}

const char *rpc_call_path(rpc_call *call)
{
    return call->path ? call->path : "";
}

bool rpc_call_is_done(rpc_call *call)
{
    return call->state == CALL_DONE;
}

void rpc_call_set_in_doubt(rpc_call *call, bool in_doubt)
{
    call->in_doubt = in_doubt;
}

bool rpc_call_read_only(rpc_call *call)
{
    return call->method != NULL && (call->method->flags & RPC_READ_ONLY);
}

void rpc_call_on_cancel(rpc_call *call, rpc_cancel_fn fn, void *data)
{
    call->cancel_fn = fn;
    call->cancel_data = data;
}

/* ---- lifecycle -------------------------------------------------------- */

/* The one place the state changes. States only move forward; anything
 * else is a bug in this file, never the peer's doing. */
static void set_state(rpc_call *call, enum call_state to)
{
    static const char *const names[] = {"headers", "reading", "running", "done"};

    assert(to > call->state);
    log_debug("stream %d %s: %s -> %s", call->stream.id, rpc_call_path(call), names[call->state],
              names[to]);
    call->state = to;
}

static h2_stream *on_begin(void *data, h2_conn *conn, int32_t stream_id)
{
    rpc_server *rs = data;
    rpc_call *call = alloc_calloc(rs->mem, 1, sizeof(*call));

    if (!call)
        return NULL;
    call->rs = rs;
    call->state = CALL_HEADERS;
    call->peer_uid = h2_conn_peer_uid(conn);
    call->memory = h2_conn_budget(conn);
    /* While the request is read and decoded, its arena may hold about twice
     * the message (protobuf-c's copies); the handler's answer may need more
     * (dispatch raises the cap). Every block is charged to the connection's
     * budget, which the server's caps in turn. */
    arena_init(&call->arena, (size_t)rs->max_message_bytes * 2 + CALL_DECODE_SLACK, rs->mem);
    arena_set_budget(&call->arena, call->memory);
    rpc_metadata_init(&call->md, &call->arena, CALL_MAX_METADATA, CALL_MAX_HEADER_BYTES);
    rpc_frame_decoder_init(&call->dec, rs->max_message_bytes);
    rpc_frame_decoder_set_budget(&call->dec, call->memory);
    list_push(&rs->calls, &call->link);
    rs->stats.calls_in_flight++;
    if (budget_exhausted(call->memory))
        header_fail(call, RPC_RESOURCE_EXHAUSTED,
                    "this connection or the server holds too much memory now; try again later");
    return &call->stream;
}

/* Frees a streamed chunk and gives its bytes back. */
static void free_chunk(rpc_call *call, struct out_chunk *o)
{
    call->queued -= o->len;
    budget_release(call->memory, o->len);
    alloc_free(call->rs->mem, o);
}

/* Frees everything the call holds but the struct itself, giving the
 * connection's budget back: the connection may be freed before the call
 * (whose timer closes later). */
static void release_memory(rpc_call *call)
{
    struct out_chunk *o, *next;

    for (o = call->out_head; o; o = next) {
        next = o->next;
        if (o->heap)
            free_chunk(call, o);
    }
    call->out_head = call->out_tail = NULL;
    rpc_frame_decoder_deinit(&call->dec);
    arena_deinit(&call->arena);
    call->memory = NULL;
}

static void on_timer_closed(uv_handle_t *h)
{
    rpc_call *call = h->data;

    alloc_free(call->rs->mem, call);
}

/* Runs the cancel hook once, if the handler left one. */
static void run_hook(rpc_call *call)
{
    rpc_cancel_fn fn = call->cancel_fn;

    call->cancel_fn = NULL;
    if (fn)
        fn(call->cancel_data);
}

/* Counts a finished call by its final status. */
static void count_call(rpc_server *rs, rpc_status status)
{
    rs->stats.calls_by_status[(unsigned)status < RPC_STATUS_COUNT ? status : RPC_UNKNOWN]++;
    rs->stats.calls_total++;
    rs->stats.calls_in_flight--;
}

static void on_close(h2_stream *s, uint32_t error_code)
{
    rpc_call *call = container_of(s, rpc_call, stream);

    list_remove(&call->link);
    if (call->state != CALL_DONE) {
        /* The client reset the stream or went away before an answer. */
        bool running = call->state == CALL_RUNNING;
        set_state(call, CALL_DONE);
        call->status = RPC_CANCELLED;
        log_debug("call %s on stream %d cancelled by the client (h2 error %u)", rpc_call_path(call),
                  call->stream.id, error_code);
        if (running)
            run_hook(call);
    }
    count_call(call->rs, call->status);
    release_memory(call);
    if (call->timer_used) {
        uv_timer_stop(&call->timer);
        uv_close((uv_handle_t *)&call->timer, on_timer_closed);
        return;
    }
    alloc_free(call->rs->mem, call);
}

/* ---- answering -------------------------------------------------------- */

/* The grpc-status header of the call's final status. */
static h2_header status_header(const rpc_call *call)
{
    const char *v = status_text[call->status];

    return (h2_header){"grpc-status", v, 11, strlen(v), false};
}

/* The grpc-message header (the arena copy lives until the call is freed,
 * after the frame left), if there is a message. */
static size_t message_header(const rpc_call *call, h2_header *out)
{
    if (!call->message)
        return 0;
    *out = (h2_header){"grpc-message", call->message, 12, strlen(call->message), false};
    return 1;
}

/* Trailers-only: ":status 200", content-type and the status in one HEADERS
 * frame with END_STREAM, for errors before any answer started. */
static void submit_trailers_only(rpc_call *call)
{
    h2_header hdrs[5] = {HDR(":status", "200"), HDR("content-type", "application/grpc")};
    size_t n = 2;

    hdrs[n++] = status_header(call);
    n += message_header(call, &hdrs[n]);
    if (call->accept_enc)
        hdrs[n++] = HDR("grpc-accept-encoding", ACCEPT_ENCODING);
    (void)h2_stream_respond(&call->stream, hdrs, n, false);
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
    set_state(call, CALL_DONE);
    call->done_ms = uv_now(call->rs->loop);
    /* A handler bug must not index past the status table. */
    call->status = (unsigned)status < RPC_STATUS_COUNT ? status : RPC_UNKNOWN;
    call->message = encode_message(call, msg);
    call->cancel_fn = NULL;
    if (call->timer_used)
        uv_timer_stop(&call->timer);
    if (!call->headers_sent)
        submit_trailers_only(call);
    else
        h2_stream_resume(&call->stream);
}

/* An HTTP error without a gRPC body (415, 405): just a status line. */
static void answer_http(rpc_call *call, const char *code)
{
    h2_header hdr = {":status", code, 7, strlen(code), false};

    set_state(call, CALL_DONE);
    call->status = RPC_UNKNOWN;
    (void)h2_stream_respond(&call->stream, &hdr, 1, false);
}

static void submit_trailers(rpc_call *call)
{
    h2_header hdrs[2] = {status_header(call)};
    size_t n = 1 + message_header(call, &hdrs[1]);

    (void)h2_stream_trailers(&call->stream, hdrs, n);
}

static ssize_t on_pull(h2_stream *s, uint8_t *buf, size_t len, bool *eof)
{
    rpc_call *call = container_of(s, rpc_call, stream);
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
            free_chunk(call, o);
    }
    if (!call->out_head && call->state == CALL_DONE) {
        /* Everything sent: end the body without END_STREAM, which the
         * trailers HEADERS frame carries. */
        *eof = true;
        submit_trailers(call);
        return (ssize_t)n;
    }
    return n ? (ssize_t)n : H2_DEFERRED;
}

/* Queues a serialised message and makes sure the response headers (with
 * the data provider that pulls the queue) are submitted. */
static int enqueue(rpc_call *call, struct out_chunk *o)
{
    static const h2_header hdrs[] = {
        H2_HEADER(":status", "200"),
        H2_HEADER("content-type", "application/grpc"),
        H2_HEADER("grpc-accept-encoding", ACCEPT_ENCODING),
    };

    if (call->out_tail)
        call->out_tail->next = o;
    else
        call->out_head = o;
    call->out_tail = o;
    if (!call->headers_sent) {
        if (h2_stream_respond(&call->stream, hdrs, 3, true) < 0)
            return -EIO;
        call->headers_sent = true;
    } else {
        h2_stream_resume(&call->stream);
    }
    return 0;
}

static size_t send_limit(const rpc_call *call)
{
    size_t lim = call->rs->max_message_bytes;
    return lim < CALL_MIN_SEND_LIMIT ? CALL_MIN_SEND_LIMIT : lim;
}

int rpc_call_send(rpc_call *call, const ProtobufCMessage *msg)
{
    size_t size, len;
    struct out_chunk *o;
    int rv;

    if (call->state == CALL_DONE || !call->stream.conn)
        return -ECANCELED;
    size = rpc_frame_packed_size(msg);
    if (size - RPC_FRAME_PREFIX_LEN > send_limit(call))
        return -EMSGSIZE;
    /* A peer that does not read must not make the queue grow without end. */
    if (call->queued > CALL_MAX_QUEUED || !budget_charge(call->memory, size))
        return -ENOBUFS;
    /* Streamed messages live outside the arena so that a long stream does
     * not grow it: each is freed once nghttp2 pulled it. */
    o = alloc_malloc(call->rs->mem, sizeof(*o) + size);
    if (!o) {
        budget_release(call->memory, size);
        return -ENOMEM;
    }
    rv = rpc_frame_pack_to(msg, send_limit(call), (uint8_t *)(o + 1), size, &len);
    if (rv < 0) {
        budget_release(call->memory, size);
        alloc_free(call->rs->mem, o);
        return rv == -EMSGSIZE ? -EMSGSIZE : -ENOMEM;
    }
    budget_release(call->memory, size - len); /* charge what was packed */
    *o = (struct out_chunk){.data = (uint8_t *)(o + 1), .len = len, .heap = true};
    call->queued += len;
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

    if (call->state == CALL_DONE || !call->stream.conn)
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

static void call_cancel(rpc_call *call, rpc_status status, const char *msg)
{
    rpc_cancel_fn fn = call->cancel_fn;
    void *data = call->cancel_data;
    bool running = call->state == CALL_RUNNING;

    if (call->state == CALL_DONE)
        return;
    /* A write that may be committing right now has an unknown outcome:
     * UNAVAILABLE would invite a retry that repeats it (DESIGN.md). */
    if (status == RPC_UNAVAILABLE && call->in_doubt) {
        status = RPC_UNKNOWN;
        msg = "the server shut down while this call's transaction was committing; its outcome "
              "is unknown";
    }
    /* Answer first, so a hook that calls rpc_call_finish() finds the call
     * done; then let the handler detach. */
    answer(call, status, msg);
    if (running && fn)
        fn(data);
}

void rpc_server_sweep(uv_timer_t *t)
{
    rpc_server *rs = t->data;
    uint64_t now = uv_now(rs->loop);
    list_node *n, *next;

    for (n = rs->calls.next; n != &rs->calls; n = next) {
        rpc_call *call = container_of(n, rpc_call, link);

        next = n->next;
        if (call->state == CALL_DONE && now - call->done_ms >= rs->write_timeout_ms) {
            log_debug("call %s on stream %d: answer not taken for %llu ms, resetting",
                      rpc_call_path(call), call->stream.id,
                      (unsigned long long)rs->write_timeout_ms);
            call->done_ms = now; /* once per period at most, until it closes */
            h2_stream_reset(&call->stream);
        }
    }
}

void rpc_server_cancel_calls(rpc_server *rs, rpc_status status, const char *msg)
{
    list_node *n, *next;

    for (n = rs->calls.next; n != &rs->calls; n = next) {
        next = n->next; /* a hook may finish (not free) other calls */
        call_cancel(container_of(n, rpc_call, link), status, msg);
    }
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

static void on_header(h2_stream *s, const uint8_t *name, size_t nl, const uint8_t *v, size_t vl)
{
    rpc_call *call = container_of(s, rpc_call, stream);

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

/* x-tenant-id (validated, and allowed for the peer when the server binds
 * tenants to peers), x-user-id and x-session-id. */
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
    if (call->tenant && call->hdr_status == RPC_OK && call->rs->tenant_auth && call->stream.conn) {
        const char *why = "";
        rpc_status st =
            call->rs->tenant_auth(call->rs->tenant_auth_data, h2_conn_peer(call->stream.conn),
                                  call->tenant, &call->arena, &why);
        if (st != RPC_OK)
            header_fail(call, st, why);
    }
}

static void on_deadline(uv_timer_t *t)
{
    rpc_call *call = t->data;

    log_debug("call %s on stream %d: deadline exceeded", rpc_call_path(call), call->stream.id);
    call_cancel(call, RPC_DEADLINE_EXCEEDED, "deadline exceeded");
}

static void arm_deadline(rpc_call *call)
{
    uv_loop_t *loop = call->rs->loop;

    call->deadline = uv_now(loop) + call->timeout_ms;
    uv_timer_init(loop, &call->timer);
    call->timer.data = call;
    call->timer_used = true;
    uv_timer_start(&call->timer, on_deadline, call->timeout_ms, 0);
}

/* Validation order: HTTP-level problems (405, 415) first, as they mean the
 * peer is not speaking gRPC at all; then te, the method, header problems
 * and the tenant, each answered trailers-only. */
/* Admin-only methods: the server's own uid or root (SO_PEERCRED), checked
 * here for every such method before anything else happens. */
static bool peer_allowed(rpc_call *call)
{
    if (!(call->method->flags & RPC_ADMIN_ONLY) || call->peer_uid == 0 ||
        call->peer_uid == call->rs->admin_uid)
        return true;
    answer(call, RPC_PERMISSION_DENIED,
           arena_printf(&call->arena,
                        "%s is only for the server's own uid or root (caller uid %ld)",
                        call->method->service->short_name, (long)call->peer_uid));
    return false;
}

static void on_headers_end(h2_stream *s)
{
    rpc_call *call = container_of(s, rpc_call, stream);

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
    if (call->hdr_status == RPC_RESOURCE_EXHAUSTED) {
        /* Out of memory reading the headers: the path may be lost too. */
        answer(call, call->hdr_status, call->hdr_msg);
        return;
    }
    if (call->path)
        call->method = rpc_methods_find(&call->rs->methods, call->path, call->path_len);
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
    if (!peer_allowed(call))
        return;
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

/* protobuf-c keeps every unknown field, at about 70 bytes each: a request
 * padded with them would pin far more memory than its size. Answers
 * RESOURCE_EXHAUSTED and returns true when there are too many. */
static bool too_many_unknown(rpc_call *call, const ProtobufCMessageDescriptor *desc,
                             const uint8_t *data, size_t len)
{
    if (rpc_count_unknown_fields(desc, data, len, CALL_MAX_UNKNOWN_FIELDS) <=
        CALL_MAX_UNKNOWN_FIELDS)
        return false;
    answer(call, RPC_RESOURCE_EXHAUSTED, "request message with too many unknown fields");
    return true;
}

/* Unpacks one message (decompressing it first if flagged) into the arena. */
static void on_message(rpc_call *call, const rpc_frame_msg *msg)
{
    const ProtobufCMessageDescriptor *desc = call->method->method->input;
    ProtobufCAllocator *pba = arena_protobuf_allocator(&call->arena);
    uint8_t *plain = NULL;
    size_t plain_len = 0;
    int rv;

    if (++call->nmsgs > 1) {
        answer(call, RPC_UNIMPLEMENTED, "more than one request message for a unary method");
        return;
    }
    if (!msg->compressed) {
        if (too_many_unknown(call, desc, msg->data, msg->len))
            return;
        call->request = protobuf_c_message_unpack(desc, pba, msg->len, msg->data);
    } else if (call->encoding != ENC_GZIP) {
        answer(call, RPC_INTERNAL, "compressed message without grpc-encoding");
        return;
    } else {
        rv = rpc_frame_gunzip(msg->data, msg->len, call->rs->max_message_bytes, &plain, &plain_len);
        if (rv < 0) {
            answer(call, rv == -EMSGSIZE ? RPC_RESOURCE_EXHAUSTED : RPC_INTERNAL,
                   rv == -EMSGSIZE ? "decompressed message too large" : "bad gzip message");
            return;
        }
        if (!too_many_unknown(call, desc, plain, plain_len))
            call->request = protobuf_c_message_unpack(desc, pba, plain_len, plain);
        free(plain);
        if (call->state == CALL_DONE)
            return;
    }
    if (call->request)
        return;
    if (call->arena.refused)
        answer(call, RPC_RESOURCE_EXHAUSTED, "request message too large to decode");
    else
        answer(call, RPC_INTERNAL, "cannot parse request message");
}

static void on_data(h2_stream *s, const uint8_t *data, size_t len)
{
    rpc_call *call = container_of(s, rpc_call, stream);
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
        if (rv == -ENOBUFS || rv == -ENOMEM) {
            answer(call, RPC_RESOURCE_EXHAUSTED,
                   rv == -ENOBUFS ? "this connection or the server holds too "
                                    "much memory now; try again later"
                                  : "out of memory");
            return;
        }
        if (rv < 0) {
            answer(call, RPC_INTERNAL, "malformed request message");
            return;
        }
        on_message(call, &msg);
    }
}

static void on_end_stream(h2_stream *s)
{
    rpc_call *call = container_of(s, rpc_call, stream);

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
    /* The answer may be larger than the request (a page of a listing). */
    call->arena.limit = send_limit(call) * 2;
    set_state(call, CALL_RUNNING);
    call->method->handler(call, call->request, call->method->data);
}

static const struct h2_stream_ops stream_ops = {
    .begin = on_begin,
    .header = on_header,
    .headers_end = on_headers_end,
    .data = on_data,
    .end_stream = on_end_stream,
    .close = on_close,
    .pull = on_pull,
};

const struct h2_stream_ops *rpc_server_stream_ops(void)
{
    return &stream_ops;
}
