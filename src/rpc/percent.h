/* Percent-encoding of grpc-message (PROTOCOL-HTTP2.md "Responses"):
 * bytes %x20-%x24 and %x26-%x7E pass unchanged; everything else, '%'
 * included, becomes "%XX" with upper-case hex. Decoders must never fail. */
#ifndef ARBITER_RPC_PERCENT_H
#define ARBITER_RPC_PERCENT_H

#include <stddef.h>

/* Bytes the full encoding of (|in|, |len|) needs, without the NUL. */
size_t rpc_percent_encoded_len(const char *in, size_t len);

/* Encodes (|in|, |len|) into |out| of |cap| bytes, always NUL-terminated when
 * |cap| > 0, and stores the encoded length (without NUL) in *|out_len|.
 * Returns 0, or -ENOBUFS when the encoding did not fit: |out| then holds the
 * longest prefix that fits without splitting a "%XX" triple or a UTF-8
 * sequence (a clean truncation, usable as is). */
int rpc_percent_encode(const char *in, size_t len, char *out, size_t cap, size_t *out_len);

/* Decodes (|in|, |len|) into |out|, which must hold |len| bytes (decoding
 * never grows; |out| == |in| decodes in place). "%XX" with two hex digits
 * (either case) becomes the byte; any other '%' passes through unchanged.
 * Never fails. Returns the decoded length; writes no NUL. */
size_t rpc_percent_decode(const char *in, size_t len, char *out);

/* The value of hex digit |c| (either case), or -1. */
int rpc_hex_value(unsigned char c);

#endif
