/* One HTTP/2 connection: an nghttp2 server session driven with
 * nghttp2_session_mem_recv()/mem_send() over a net_conn, and the streams
 * living on it. Every nghttp2 call of the server is in src/h2.
 *
 * This layer knows HTTP/2 and nothing of gRPC or protobuf. The layer above
 * (rpc) owns each stream's state: it embeds an h2_stream in it and gets
 * the stream's events through an h2_stream_ops table (begin, header fields,
 * DATA, end of stream, close, and pulling the response body); it answers
 * through h2_stream_respond(), h2_stream_trailers() and h2_stream_resume().
 */
#ifndef ARBITER_H2_CONN_H
#define ARBITER_H2_CONN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <uv.h>

#include "net/conn.h"
#include "util/budget.h"
#include "util/list.h"

typedef struct h2_conn h2_conn;

/* A stream as h2 knows it; embedded in the owner's per-stream object. */
typedef struct h2_stream {
    list_node link; /* in the connection's stream list (h2's) */
    h2_conn *conn;  /* borrowed; NULL once the stream closed */
    int32_t id;
} h2_stream;

/* A header field. The name and value must stay valid until the frame is
 * sent unless the matching copy flag is set (then h2 copies them). */
typedef struct h2_header {
    const char *name, *value;
    size_t namelen, valuelen;
    bool copy_value;
} h2_header;

/* H2_HEADER("content-type", "application/grpc"): a header of two literals. */
#define H2_HEADER(n, v)                                                                            \
    {                                                                                              \
        (n), (v), sizeof(n) - 1, sizeof(v) - 1, false                                              \
    }

/* Returned by h2_stream_ops.pull when no body bytes are ready yet. */
#define H2_DEFERRED (-1)

/* What h2 tells the layer above about streams. |data| is
 * h2_config.stream_data. All callbacks but begin get the h2_stream that
 * begin returned. */
struct h2_stream_ops {
    /* A client opened stream |id| on |c| with a request HEADERS frame.
     * Returns the owner's embedded h2_stream, or NULL when out of memory
     * (the stream is then reset). */
    h2_stream *(*begin)(void *data, h2_conn *c, int32_t id);
    /* One request header field as it came off the wire (not NUL-terminated). */
    void (*header)(h2_stream *s, const uint8_t *name, size_t namelen, const uint8_t *value,
                   size_t valuelen);
    /* The request HEADERS are complete. */
    void (*headers_end)(h2_stream *s);
    /* A chunk of request DATA. */
    void (*data)(h2_stream *s, const uint8_t *data, size_t len);
    /* The client half-closed the stream. */
    void (*end_stream)(h2_stream *s);
    /* The stream is closed (|error_code|: the HTTP/2 code), or the
     * connection went away; always last. The owner may free |s|. */
    void (*close)(h2_stream *s, uint32_t error_code);
    /* Fills |buf| with up to |len| response body bytes; returns the count or
     * H2_DEFERRED. Setting *|eof| ends the body without ending the stream:
     * the owner must then have called h2_stream_trailers() (in this call). */
    ssize_t (*pull)(h2_stream *s, uint8_t *buf, size_t len, bool *eof);
};

/* What a connection needs from the server that accepts it. */
typedef struct h2_config {
    uv_loop_t *loop;
    uint32_t max_concurrent_streams;
    const struct h2_stream_ops *stream_ops; /* borrowed, static */
    void *stream_data;                      /* borrowed: passed to begin */
    uint8_t *rbuf;                          /* borrowed: the loop-wide read buffer */
    size_t rbuf_len;
    /* A connection finished closing and was freed. */
    void (*conn_closed)(void *data);
    void *conn_data;
    budget *memory;           /* borrowed: what all connections may pin together */
    size_t conn_memory;       /* what one connection may pin (0: no limit of its own) */
    uint64_t idle_timeout_ms; /* GOAWAY and close after this long without streams (0: never) */
} h2_config;

/* Accepts a pending connection on |listener|, sends the server SETTINGS
 * and links the connection into |conns| (a list head owned by the caller).
 * |cfg| is borrowed for the connection's life. Returns 0 or a negative
 * errno-style code. */
int h2_conn_accept(const h2_config *cfg, uv_stream_t *listener, list_node *conns)
    __attribute__((warn_unused_result));

/* Like h2_conn_accept() for a connected stream socket |fd| (a socketpair
 * end: the request-path fuzzer and tests drive the server without a
 * listener). The connection owns |fd| afterwards. */
int h2_conn_adopt(const h2_config *cfg, int fd, list_node *conns)
    __attribute__((warn_unused_result));

/* The h2_conn of a node of the caller's list. */
h2_conn *h2_conn_from_node(list_node *n);

/* Graceful shutdown, step 1: GOAWAY with the last stream id 2^31-1 (nghttp2
 * shutdown notice) so clients stop opening streams. */
void h2_conn_shutdown_notice(h2_conn *c);

/* Graceful shutdown, step 2: GOAWAY(NO_ERROR) with the last stream id we
 * processed. The connection closes by itself once its streams are done. */
void h2_conn_goaway(h2_conn *c);

/* Closes the connection now: every stream on it gets its close callback. */
void h2_conn_close(h2_conn *c);

/* The peer's uid from SO_PEERCRED ((uid_t)-1 when unknown). */
uid_t h2_conn_peer_uid(const h2_conn *c);

/* The peer's credentials, valid while the connection is open. */
const net_peer *h2_conn_peer(const h2_conn *c);

/* The connection's memory budget (a child of h2_config.memory): the layer
 * above charges what its streams pin (request buffers and arenas, queued
 * answers) to it. */
budget *h2_conn_budget(h2_conn *c);

/* Submits the response HEADERS of stream |s|: |n| fields, with a body that
 * h2 pulls through h2_stream_ops.pull when |body| is true, or ending the
 * stream (trailers-only, or an HTTP error). Returns 0, or -ECANCELED when
 * the stream or connection is gone, or -EIO. */
int h2_stream_respond(h2_stream *s, const h2_header *hdrs, size_t n, bool body);

/* Submits the trailers of stream |s| (from inside h2_stream_ops.pull, when
 * it sets eof). Returns 0, -ECANCELED or -EIO. */
int h2_stream_trailers(h2_stream *s, const h2_header *hdrs, size_t n);

/* More body (or its end) is ready: h2 pulls again. */
void h2_stream_resume(h2_stream *s);

/* Resets stream |s| (RST_STREAM CANCEL): for an answer the peer does not
 * take. The close callback follows. */
void h2_stream_reset(h2_stream *s);

#endif
