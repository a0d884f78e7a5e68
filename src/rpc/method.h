/* The method table: maps ":path" to a handler. Built at start-up from
 * protobuf-c service descriptors; a service registers each method in one
 * line:
 *
 *     rpc_methods_add(t, &grpc__health__v1__health__descriptor, "Check",
 *                     health_check, RPC_UNARY, srv);
 */
#ifndef ARBITER_RPC_METHOD_H
#define ARBITER_RPC_METHOD_H

#include <protobuf-c/protobuf-c.h>
#include <stddef.h>

#include "rpc/call.h"

/* A handler gets the decoded request (in the call's arena) and the |data|
 * given at registration. It must eventually finish the call, or have
 * set a cancel hook that the rpc layer will run. */
typedef void (*rpc_handler_fn)(rpc_call *call, const ProtobufCMessage *request, void *data);

enum rpc_method_flags {
    RPC_UNARY = 0,
    RPC_SERVER_STREAMING = 1 << 0,
    RPC_NEEDS_TENANT = 1 << 1, /* missing x-tenant-id → INVALID_ARGUMENT */
    RPC_ADMIN_ONLY = 1 << 2,   /* callers other than rpc_server.admin_uid and root →
                                  PERMISSION_DENIED before the request is read */
    RPC_READ_ONLY = 1 << 3,    /* changes nothing: safe to repeat, may run on a replica */
};

typedef struct rpc_method {
    char *path;                                /* owned: "/pkg.Svc/Method" */
    const ProtobufCServiceDescriptor *service; /* borrowed, static */
    const ProtobufCMethodDescriptor *method;   /* borrowed, static */
    rpc_handler_fn handler;
    unsigned flags;
    void *data; /* borrowed */
} rpc_method;

typedef struct rpc_methods {
    rpc_method *items; /* owned, sorted by path after the first lookup */
    size_t len, cap;
    int sorted;
} rpc_methods;

void rpc_methods_init(rpc_methods *t);
void rpc_methods_deinit(rpc_methods *t);

/* Registers |method_name| of |service|. Returns 0, -ENOENT when the service
 * has no such method, -EEXIST when it is already registered, -ENOMEM. */
int rpc_methods_add(rpc_methods *t, const ProtobufCServiceDescriptor *service,
                    const char *method_name, rpc_handler_fn handler, unsigned flags, void *data)
    __attribute__((warn_unused_result));

/* Looks up a ":path" given as (ptr, len) bytes from the wire. Returns the
 * method or NULL. */
const rpc_method *rpc_methods_find(rpc_methods *t, const char *path, size_t len);

#endif
