/* The one mapping from PostgreSQL errors to gRPC statuses (DESIGN.md,
 * "Errors: one mapping, one place"). */
#include <string.h>

#include "db/db.h"
#include "db/db_priv.h"

static bool is_class(const char *s, const char *cls)
{
    return s[0] == cls[0] && s[1] == cls[1];
}

rpc_status db_error_to_status(const char *s)
{
    if (s == NULL || strlen(s) != 5)
        return RPC_INTERNAL;
    if (strcmp(s, "23505") == 0)
        return RPC_ALREADY_EXISTS;
    if (strcmp(s, "23503") == 0 || strcmp(s, "55000") == 0)
        return RPC_FAILED_PRECONDITION;
    if (strcmp(s, "23502") == 0 || strcmp(s, "23514") == 0 || is_class(s, "22"))
        return RPC_INVALID_ARGUMENT;
    if (strcmp(s, "42501") == 0)
        return RPC_PERMISSION_DENIED;
    if (strcmp(s, "57014") == 0)
        return RPC_DEADLINE_EXCEEDED;
    if (strcmp(s, "40001") == 0 || strcmp(s, "40P01") == 0)
        return RPC_ABORTED;
    if (is_class(s, "08") || strcmp(s, "57P01") == 0 || strcmp(s, "57P02") == 0 ||
        strcmp(s, "57P03") == 0)
        return RPC_UNAVAILABLE;
    if (is_class(s, "53"))
        return RPC_RESOURCE_EXHAUSTED;
    return RPC_INTERNAL;
}

const char *db_status_text(rpc_status s)
{
    switch (s) {
    case RPC_ALREADY_EXISTS:
        return "already exists";
    case RPC_FAILED_PRECONDITION:
        return "a referenced row does not exist";
    case RPC_INVALID_ARGUMENT:
        return "invalid value";
    case RPC_PERMISSION_DENIED:
        return "permission denied";
    case RPC_DEADLINE_EXCEEDED:
        return "statement timeout";
    case RPC_ABORTED:
        return "transaction conflict, safe to retry";
    case RPC_UNAVAILABLE:
        return "database unavailable";
    case RPC_RESOURCE_EXHAUSTED:
        return "database out of resources";
    case RPC_NOT_FOUND:
        return "not found";
    default:
        return "database error";
    }
}
