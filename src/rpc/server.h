/* What the rpc layer needs to serve calls: the method table, the limits,
 * the call statistics and the list of live calls. The server object above
 * owns one and hands rpc_server_stream_ops() to the h2 layer, which then
 * feeds every stream to the rpc layer. This is the narrow interface of
 * rpc: it never sees the server object. */
#ifndef ARBITER_RPC_SERVER_H
#define ARBITER_RPC_SERVER_H

#include <stdint.h>
#include <sys/types.h>
#include <uv.h>

#include "h2/conn.h"
#include "rpc/method.h"
#include "util/alloc.h"
#include "util/arena.h"
#include "util/list.h"
#include "util/status.h"

struct rpc_stats {
    uint64_t calls_by_status[RPC_STATUS_COUNT];
    uint64_t calls_total;
    uint32_t calls_in_flight;
    uint32_t open_connections; /* kept by whoever accepts the connections */
};

/* Whether the peer on a call may act for |tenant| (the x-tenant-id it
 * named). Returns RPC_OK, or the status to answer with before the request
 * is read and |*why| (static, or in |a|) as its message. */
typedef rpc_status (*rpc_tenant_auth_fn)(void *data, const net_peer *peer, const char *tenant,
                                         arena *a, const char **why);

typedef struct rpc_server {
    uv_loop_t *loop;                /* borrowed */
    alloc *mem;                     /* borrowed: calls, arenas, decoders (NULL: malloc) */
    uint32_t max_message_bytes;     /* request limit (--max-message-bytes) */
    uid_t admin_uid;                /* RPC_ADMIN_ONLY methods: this uid or root */
    rpc_tenant_auth_fn tenant_auth; /* NULL: any peer may name any tenant */
    void *tenant_auth_data;
    rpc_methods methods; /* owned */
    struct rpc_stats stats;
    list_node calls;           /* every live call (rpc_call), for rpc_server_cancel_calls() */
    uint64_t write_timeout_ms; /* an answered call the peer does not take is reset */
    uv_timer_t sweep;          /* looks for such calls now and then */
    bool sweeping;
} rpc_server;

/* Initialises |r| on caller storage with an empty method table. */
void rpc_server_init(rpc_server *r, uv_loop_t *loop, uint32_t max_message_bytes, uid_t admin_uid,
                     alloc *mem);

/* Starts resetting answered calls whose answer the peer has not taken
 * within |write_timeout_ms| (a peer that does not read, or keeps its flow
 * control window at zero, would otherwise pin them for ever). 0: never. */
void rpc_server_start(rpc_server *r, uint64_t write_timeout_ms);

/* Stops that (closes its timer); call before the loop runs out. */
void rpc_server_stop(rpc_server *r);

/* Internal to rpc (call.c): the write timeout's timer callback, resetting
 * calls answered longer ago than that which the peer has not taken. */
void rpc_server_sweep(uv_timer_t *t);

/* Frees the method table. Every call must be gone (the connections closed). */
void rpc_server_deinit(rpc_server *r);

/* The stream callbacks for h2_config.stream_ops; h2_config.stream_data must
 * be the rpc_server. */
const struct h2_stream_ops *rpc_server_stream_ops(void);

/* Ends every call still running with |status| and |msg| (their cancel
 * hooks run), e.g. at the end of the shutdown grace. */
void rpc_server_cancel_calls(rpc_server *r, rpc_status status, const char *msg);

#endif
