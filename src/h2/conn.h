/* One HTTP/2 connection: an nghttp2 server session driven with
 * nghttp2_session_mem_recv()/mem_send() over a net_conn, and the list of
 * gRPC calls (one per stream) living on it. This layer knows HTTP/2 and
 * hands header fields, DATA and stream ends to the rpc layer
 * (rpc/call_priv.h); it has no protobuf in it. */
#ifndef ARBITER_H2_CONN_H
#define ARBITER_H2_CONN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <nghttp2/nghttp2.h>
#include <uv.h>

#include "util/list.h"

struct server;
typedef struct h2_conn h2_conn;

/* Accepts a pending connection on |listener| for |srv|, sends the server
 * SETTINGS and links the connection into |conns| (a list head owned by the
 * server). Returns 0 or a negative errno-style code. */
int h2_conn_accept(struct server *srv, uv_stream_t *listener, list_node *conns)
    __attribute__((warn_unused_result));

/* Like h2_conn_accept() for a connected stream socket |fd| (a socketpair
 * end: the request-path fuzzer and tests drive the server without a
 * listener). The connection owns |fd| afterwards. */
int h2_conn_adopt(struct server *srv, int fd, list_node *conns) __attribute__((warn_unused_result));

/* The h2_conn of a node of the server's list. */
h2_conn *h2_conn_from_node(list_node *n);

/* Graceful shutdown, step 1: GOAWAY with the last stream id 2^31-1 (nghttp2
 * shutdown notice) so clients stop opening streams. */
void h2_conn_shutdown_notice(h2_conn *c);

/* Graceful shutdown, step 2: GOAWAY(NO_ERROR) with the last stream id we
 * processed. The connection closes by itself once its streams are done. */
void h2_conn_goaway(h2_conn *c);

/* Ends every call on the connection that is still running with |status|
 * (an rpc_status) and |msg|, running their cancel hooks. */
void h2_conn_cancel_calls(h2_conn *c, int status, const char *msg);

/* Closes the connection now: every call on it is cancelled and freed. */
void h2_conn_close(h2_conn *c);

/* The peer's uid from SO_PEERCRED ((uid_t)-1 when unknown). */
uid_t h2_conn_peer_uid(const h2_conn *c);

/* For the rpc layer: the session (borrowed; NULL once closing) and a
 * request to run mem_send soon (coalesces every answer produced in one
 * loop iteration into one write). */
nghttp2_session *h2_conn_session(h2_conn *c);
void h2_conn_want_flush(h2_conn *c);

/* nghttp2 data source read callback for response bodies: pulls from the
 * rpc_call stored in source->ptr (see rpc_call_pull). */
ssize_t h2_read_response(nghttp2_session *session, int32_t stream_id, uint8_t *buf, size_t length,
                         uint32_t *data_flags, nghttp2_data_source *source, void *user_data);

#endif
