/* One gRPC call as a handler sees it.
 *
 * Lifetime. The rpc layer creates a call when a request's headers and its
 * one message have arrived, decodes the message into the call's arena and
 * runs the method's handler. The handler answers now or later (from a
 * database callback) with rpc_call_reply() or rpc_call_finish(), and may
 * first stream messages with rpc_call_send() if the method is
 * server-streaming.
 *
 * A call can end before its handler answers: the client resets the stream
 * or disconnects, the deadline passes (the rpc layer answers
 * DEADLINE_EXCEEDED itself), or the server shuts down. Then the hook set
 * with rpc_call_on_cancel() runs exactly once, synchronously; it must
 * detach everything that still points at the call (leave the pool's wait
 * queue, drop an in-flight query's result, leave a watcher list). After the
 * hook has run, or after the handler called rpc_call_finish(), the handler
 * must not touch the call again: its memory (and its arena) may be freed
 * as soon as control returns to the loop.
 *
 * Memory. Everything a handler allocates for the call comes from
 * rpc_call_alloc() and friends and is freed with the call. Handlers never
 * free the request, the metadata or arena memory.
 */
#ifndef ARBITER_RPC_CALL_H
#define ARBITER_RPC_CALL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <protobuf-c/protobuf-c.h>

#include "util/arena.h"
#include "util/status.h"

typedef struct rpc_call rpc_call;
struct server;

/* The call's arena (owned by the call). */
arena *rpc_call_arena(rpc_call *call);

/* Zeroed memory from the call's arena; NULL when out of memory. */
void *rpc_call_alloc(rpc_call *call, size_t n);

/* Custom metadata by lower-case name, or NULL when absent. For names ending
 * in "-bin" the value is already base64-decoded; |len| (may be NULL)
 * receives its length. The value is NUL-terminated and lives in the arena. */
const char *rpc_call_metadata(rpc_call *call, const char *name, size_t *len);

/* x-tenant-id, x-user-id and x-session-id, or NULL when absent. The tenant
 * id was already validated (1-64 chars of [A-Za-z0-9_.:-]). */
const char *rpc_call_tenant(rpc_call *call);
const char *rpc_call_user(rpc_call *call);
const char *rpc_call_session(rpc_call *call);

/* Milliseconds left until the call's deadline (0 when already past), or
 * UINT64_MAX when the client sent no grpc-timeout. */
uint64_t rpc_call_remaining_ms(rpc_call *call);

/* The deadline in the loop's uv_now() time, or UINT64_MAX without one. */
uint64_t rpc_call_deadline_ms(rpc_call *call);

/* The peer's uid from SO_PEERCRED. */
uid_t rpc_call_peer_uid(rpc_call *call);

/* The decoded request (in the arena); NULL before the handler runs. */
const ProtobufCMessage *rpc_call_request(rpc_call *call);

/* "/pkg.Service/Method", for logs. */
const char *rpc_call_path(rpc_call *call);

/* True once the call was cancelled (hook ran) or finished. */
bool rpc_call_is_done(rpc_call *call);

/* Sets the hook that runs once, with |data|, if the call ends before the
 * handler finishes it. Replaces an earlier hook; NULL clears it. */
typedef void (*rpc_cancel_fn)(void *data);
void rpc_call_on_cancel(rpc_call *call, rpc_cancel_fn fn, void *data);

/* Whether the method changes nothing (RPC_READ_ONLY). */
bool rpc_call_read_only(rpc_call *call);

/* Marks that a write of the call may be committing right now (its commit
 * was sent and has not been answered). If the server must give up on the
 * call then (the end of the shutdown grace), it answers UNKNOWN rather than
 * UNAVAILABLE, so that no retry repeats a write that may have happened. */
void rpc_call_set_in_doubt(rpc_call *call, bool in_doubt);

/* Sends one response message (serialised now; |msg| may be freed or reused
 * afterwards). For unary methods use rpc_call_reply() instead.
 * Returns 0, -ECANCELED when the call is already done, -ENOMEM, -EMSGSIZE
 * when the message is over the size limit, or -ENOBUFS when the peer has
 * not taken what was sent before (over 1 MiB queued, or the connection's
 * memory budget spent): a stream should end then rather than buffer. */
int rpc_call_send(rpc_call *call, const ProtobufCMessage *msg);

/* Ends the call with |status| and an optional human-readable |message|
 * (copied; percent-encoded on the wire). For RPC_OK without a prior
 * rpc_call_send() on a unary method, use rpc_call_reply(). A no-op when the
 * call is already done. Clears the cancel hook without running it. */
void rpc_call_finish(rpc_call *call, rpc_status status, const char *message);

/* printf-style rpc_call_finish(). */
void rpc_call_finishf(rpc_call *call, rpc_status status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Unary success: sends |msg| and finishes with OK. If sending fails the
 * call finishes with INTERNAL or RESOURCE_EXHAUSTED instead. */
void rpc_call_reply(rpc_call *call, const ProtobufCMessage *msg);

#endif
