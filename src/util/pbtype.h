/* Facts about protobuf-c field types that the server's generic code
 * (services) and the CLI client (arbiterctl) share. */
#ifndef ARBITER_UTIL_PBTYPE_H
#define ARBITER_UTIL_PBTYPE_H

#include <stddef.h>

#include <protobuf-c/protobuf-c.h>

/* The size of one value of type |t| in a generated message struct (a
 * pointer for strings and messages). */
size_t pbtype_size(ProtobufCType t);

#endif
