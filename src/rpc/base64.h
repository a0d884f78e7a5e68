/* Base64 (RFC 4648 §4, standard alphabet) for "-bin" metadata. Receivers
 * must accept padded and unpadded values and split duplicate headers that
 * were joined with ',' (PROTOCOL-HTTP2.md "Custom-Metadata"); senders emit
 * unpadded values. */
#ifndef ARBITER_RPC_BASE64_H
#define ARBITER_RPC_BASE64_H

#include <stddef.h>
#include <stdint.h>

#include "util/arena.h"

/* An upper bound on the bytes rpc_base64_decode() produces from |len| input
 * characters. */
size_t rpc_base64_decoded_max(size_t len);

/* Decodes the header value (|in|, |len|): one or more base64 parts separated
 * by ',' (optional spaces or tabs around each part), each padded or not;
 * the parts' bytes are concatenated into |out| of |cap| bytes and the total
 * stored in *|out_len|. An empty value or part decodes to nothing. Returns 0,
 * -EINVAL for a character outside the alphabet, misplaced or excess '=',
 * or a part whose length is impossible (4k+1 characters, or padded and not
 * a multiple of 4), or -ENOBUFS when |cap| is too small (a cap of
 * rpc_base64_decoded_max(len) always suffices). *|out_len| is written only
 * on success; |out| may hold garbage on failure. */
int rpc_base64_decode(const char *in, size_t len, uint8_t *out, size_t cap, size_t *out_len)
    __attribute__((warn_unused_result));

/* rpc_base64_decode() into arena memory with a NUL appended (not counted in
 * *|out_len|). Returns 0, -EINVAL or -ENOMEM; outputs written only on
 * success. */
int rpc_base64_decode_arena(arena *a, const char *in, size_t len, uint8_t **out, size_t *out_len)
    __attribute__((warn_unused_result));

/* Characters rpc_base64_encode() writes for |n| bytes (unpadded, no NUL). */
size_t rpc_base64_encoded_len(size_t n);

/* Encodes |n| bytes of |in| without padding into |out| of |cap| bytes,
 * NUL-terminated, and stores the length (without NUL) in *|out_len|.
 * Returns 0, or -ENOBUFS when |cap| < rpc_base64_encoded_len(n) + 1. */
int rpc_base64_encode(const uint8_t *in, size_t n, char *out, size_t cap, size_t *out_len)
    __attribute__((warn_unused_result));

#endif
