/* The rpc layer's side of a call, for the h2 layer that feeds it (private
 * to rpc/call.c and h2/conn.c; handlers use rpc/call.h only).
 *
 * Order of events for one stream: rpc_call_begin() when the request's
 * HEADERS begin, rpc_call_on_header() per field, rpc_call_on_headers_end(),
 * rpc_call_on_data() per DATA chunk, rpc_call_on_end_stream() when the
 * client half-closed, and always last rpc_call_on_close() when nghttp2
 * closed the stream (or the connection went away), which frees the call.
 */
#ifndef ARBITER_RPC_CALL_PRIV_H
#define ARBITER_RPC_CALL_PRIV_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "rpc/call.h"
#include "rpc/status.h"
#include "util/list.h"

struct server;
struct h2_conn;

/* Creates the call of a new stream (its arena, header state and message
 * decoder) and links it into |calls| (the connection's list). Returns NULL
 * when out of memory. */
rpc_call *rpc_call_begin(struct server *srv, struct h2_conn *conn, int32_t stream_id,
                         list_node *calls);

/* The node linking a call into its connection's list, and back. */
list_node *rpc_call_node(rpc_call *call);
rpc_call *rpc_call_from_node(list_node *n);

/* One request header field as it came off the wire (not NUL-terminated).
 * Problems are remembered and answered at rpc_call_on_headers_end(). */
void rpc_call_on_header(rpc_call *call, const uint8_t *name, size_t namelen, const uint8_t *value,
                        size_t valuelen);

/* The request HEADERS are complete: validates them (415 for a wrong
 * content-type, trailers-only errors for the rest) and arms the deadline. */
void rpc_call_on_headers_end(rpc_call *call);

/* A chunk of request DATA: reassembles and decodes messages. */
void rpc_call_on_data(rpc_call *call, const uint8_t *data, size_t len);

/* The client half-closed the stream: runs the handler (or answers the
 * request error found on the way). */
void rpc_call_on_end_stream(rpc_call *call);

/* Ends a call that is still running with |status| (the server's shutdown
 * timeout, UNAVAILABLE): answers it and runs its cancel hook. */
void rpc_call_cancel(rpc_call *call, rpc_status status, const char *msg);

/* The stream is closed (|error_code| is the HTTP/2 code; the connection
 * may be gone): unlinks the call, runs the cancel hook if the handler had
 * not finished, counts the call and frees it. */
void rpc_call_on_close(rpc_call *call, uint32_t error_code);

/* Fills |buf| with up to |len| response bytes for nghttp2's data provider;
 * sets NGHTTP2_DATA_FLAG_EOF | NO_END_STREAM and submits the trailers once
 * the call finished and everything was pulled. Returns the byte count or
 * NGHTTP2_ERR_DEFERRED when nothing is ready yet. */
ssize_t rpc_call_pull(rpc_call *call, uint8_t *buf, size_t len, uint32_t *data_flags);

#endif
