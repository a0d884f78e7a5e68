/* libarbiter: an asynchronous gRPC client for arbiterd on one libuv loop.
 *
 * One arbiter_client is one HTTP/2 connection (h2c, prior knowledge) to the
 * server's Unix socket, driven through nghttp2's mem_recv/mem_send API from
 * the caller's loop. Any number of calls run concurrently on it, each one
 * HTTP/2 stream; the server's MAX_CONCURRENT_STREAMS is honoured by nghttp2,
 * which queues streams above it. Calls may be started right after
 * arbiter_client_new(), before the connection is up: their frames are sent
 * once it is.
 *
 * Every call ends exactly once through its done callback, with a gRPC
 * status: the server's, or one the library made up (DEADLINE_EXCEEDED when
 * the local deadline passes, CANCELLED on arbiter_call_cancel() or client
 * close, UNAVAILABLE when the connection fails, INTERNAL for a malformed
 * answer). Nothing here blocks and nothing is global; all callbacks run on
 * the client's loop. As with any libuv program, the application should
 * ignore SIGPIPE (a server that hangs up mid-write is then a transport
 * error, not a dead process).
 *
 * Minimal use:
 *
 *     arbiter_client *c;
 *     arbiter_client_new(loop, "/run/arbiterd.sock", &c);
 *     struct arbiter_call_opts o = {
 *         .path = "/grpc.health.v1.Health/Check",
 *         .request = bytes, .request_len = n,
 *         .timeout_ms = 1000, .on_done = done, .user = ctx,
 *     };
 *     arbiter_call_start(c, &o, NULL);
 *     uv_run(loop, UV_RUN_DEFAULT);   // done() runs; then close the client
 */
#ifndef ARBITER_CLIENT_ARBITER_H
#define ARBITER_CLIENT_ARBITER_H

#include <stddef.h>
#include <stdint.h>

#include <protobuf-c/protobuf-c.h>
#include <uv.h>

typedef struct arbiter_client arbiter_client;
typedef struct arbiter_call arbiter_call;

/* One request metadata entry. Keys are lowercase ASCII; a key ending in
 * "-bin" has its value sent base64-encoded (value_len bytes of binary).
 * For other keys value is a NUL-terminated string and value_len may be 0
 * (then strlen(value) is used). */
typedef struct arbiter_metadata {
    const char *key;   /* borrowed for the duration of arbiter_call_start() */
    const char *value; /* borrowed for the duration of arbiter_call_start() */
    size_t value_len;
} arbiter_metadata;

/* How a call ended. Every pointer is borrowed and valid only during the
 * done callback. */
typedef struct arbiter_result {
    int status;              /* gRPC status code, 0 = OK (see rpc/status.h) */
    const char *message;     /* grpc-message, percent-decoded; never NULL */
    const uint8_t *response; /* last response message when the call has no
                              * on_message callback; else NULL */
    size_t response_len;
    size_t messages; /* number of response messages received */
    /* 0, or the negative errno of a transport failure (connect, read,
     * write, HTTP/2 protocol error). When set, status is UNAVAILABLE and
     * the server may never have seen the call. */
    int transport_error;
} arbiter_result;

/* Called for each response message of a (server-streaming) call, in order.
 * |data| is borrowed until the callback returns. The callback may cancel
 * the call or start new ones. */
typedef void (*arbiter_message_cb)(arbiter_call *call, const uint8_t *data, size_t len, void *user);

/* Called exactly once when the call ends. After it returns the call handle
 * is invalid. The callback may start new calls or close the client. */
typedef void (*arbiter_done_cb)(arbiter_call *call, const arbiter_result *result, void *user);

struct arbiter_call_opts {
    const char *path;                 /* "/pkg.Service/Method"; copied */
    const arbiter_metadata *metadata; /* optional; copied */
    size_t n_metadata;
    uint64_t timeout_ms;    /* 0 = no deadline; else sent as grpc-timeout and
                             * enforced locally (DEADLINE_EXCEEDED) */
    const uint8_t *request; /* serialized request message; copied */
    size_t request_len;
    arbiter_message_cb on_message; /* optional: streaming delivery */
    arbiter_done_cb on_done;       /* required */
    void *user;                    /* passed to both callbacks */
};

/* Creates a client on |loop| and starts connecting to the Unix socket at
 * |socket_path| (copied). On success stores the client in |*out| and returns
 * 0; a connection failure is reported later to every call (status
 * UNAVAILABLE, transport_error set). Returns -EINVAL for a NULL argument or
 * an empty path, -ENAMETOOLONG for a path that does not fit sun_path,
 * -ENOMEM, or another negative errno from libuv. The caller must end it
 * with arbiter_client_close(). A client whose connection failed stays
 * failed (new calls get -EPIPE): close it and create a new one. */
int arbiter_client_new(uv_loop_t *loop, const char *socket_path, arbiter_client **out)
    __attribute__((warn_unused_result));

/* Ends every unfinished call with CANCELLED (their done callbacks run
 * before this returns, unless called from inside a callback of this client,
 * in which case they run right after that callback), closes the connection
 * and frees the client once libuv has closed its handles: keep running the
 * loop. |client| must not be used afterwards. NULL is a no-op. */
void arbiter_client_close(arbiter_client *client);

/* Starts a call. The request bytes, path and metadata are copied, so the
 * caller may free them on return. On success stores the call handle in
 * |*out| (when out is not NULL; the handle is borrowed and valid until the
 * done callback returns) and returns 0. Returns -EINVAL for a missing path
 * or callback or a bad metadata key, -EPIPE when the client is closing or
 * its connection has failed, -ENOMEM, or -EPROTO when nghttp2 refuses the
 * stream (e.g. stream ids exhausted). On error no callback will run. */
int arbiter_call_start(arbiter_client *client, const struct arbiter_call_opts *opts,
                       arbiter_call **out) __attribute__((warn_unused_result));

/* Same as arbiter_call_start() with the request given as a protobuf-c
 * message, serialized here. opts->request is ignored. */
int arbiter_call_start_message(arbiter_client *client, const struct arbiter_call_opts *opts,
                               const ProtobufCMessage *request, arbiter_call **out)
    __attribute__((warn_unused_result));

/* Cancels |call|: sends RST_STREAM(CANCEL) and ends it with CANCELLED (its
 * done callback runs before this returns). A call that already ended, or is
 * ending, is left alone. */
void arbiter_call_cancel(arbiter_call *call);

/* Number of calls started and not yet ended. */
size_t arbiter_client_active_calls(const arbiter_client *client);

/* "OK", "CANCELLED", ... "UNAUTHENTICATED"; "UNKNOWN" out of range. */
const char *arbiter_status_name(int status);

#endif
