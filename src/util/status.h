/* gRPC status codes (grpc/grpc doc/statuscodes.md): the vocabulary of
 * outcomes that the rpc layer answers and the database layer maps its
 * errors to (DESIGN.md's one table), so it lives beside both, in util. A
 * separate type from the project's negative error codes: the two never mix. */
#ifndef ARBITER_UTIL_STATUS_H
#define ARBITER_UTIL_STATUS_H

typedef enum rpc_status {
    RPC_OK = 0,
    RPC_CANCELLED = 1,
    RPC_UNKNOWN = 2,
    RPC_INVALID_ARGUMENT = 3,
    RPC_DEADLINE_EXCEEDED = 4,
    RPC_NOT_FOUND = 5,
    RPC_ALREADY_EXISTS = 6,
    RPC_PERMISSION_DENIED = 7,
    RPC_RESOURCE_EXHAUSTED = 8,
    RPC_FAILED_PRECONDITION = 9,
    RPC_ABORTED = 10,
    RPC_OUT_OF_RANGE = 11,
    RPC_UNIMPLEMENTED = 12,
    RPC_INTERNAL = 13,
    RPC_UNAVAILABLE = 14,
    RPC_DATA_LOSS = 15,
    RPC_UNAUTHENTICATED = 16,
} rpc_status;

#define RPC_STATUS_COUNT 17

/* "OK", "CANCELLED", ... ; "UNKNOWN" for out-of-range values. */
const char *rpc_status_name(rpc_status s);

#endif
