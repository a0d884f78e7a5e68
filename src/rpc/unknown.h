/* Counting the unknown fields of a request before it is decoded.
 * protobuf-c keeps every unknown field (about 70 bytes of memory for a
 * 2-byte field), so a small request padded with them decodes into a huge
 * one; the rpc layer refuses a request carrying more than a few instead. */
#ifndef ARBITER_RPC_UNKNOWN_H
#define ARBITER_RPC_UNKNOWN_H

#include <stddef.h>
#include <stdint.h>

#include <protobuf-c/protobuf-c.h>

/* Unknown fields of |data| (|len| bytes of wire format) as a message of
 * |desc|, in it and in every known sub-message, counted up to |max| + 1
 * (counting stops there). Malformed input ends the count: the decoder
 * reports it. Nesting deeper than 32 levels counts as over |max|. */
size_t rpc_count_unknown_fields(const ProtobufCMessageDescriptor *desc, const uint8_t *data,
                                size_t len, size_t max);

#endif
