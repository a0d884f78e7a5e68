/* gRPC Length-Prefixed-Message codec (PROTOCOL-HTTP2.md "Message framing"):
 *
 *     Compressed-Flag (1 byte, 0 or 1) | Message-Length (u32 BE) | Message
 *
 * The decoder is incremental: the h2 layer feeds it every DATA chunk exactly
 * as nghttp2 hands it over (on_data_chunk_recv_callback), split anywhere,
 * several messages per chunk, and takes the complete messages out one by
 * one. A declared length over the limit is rejected as soon as the 5-byte
 * prefix is known, before a single payload byte is buffered. No socket, no
 * loop: everything here is pure and table-testable.
 */
#ifndef ARBITER_RPC_FRAME_H
#define ARBITER_RPC_FRAME_H

#include <stdbool.h>

#include "util/budget.h"
#include <stddef.h>
#include <stdint.h>

#include <protobuf-c/protobuf-c.h>

#include "util/arena.h"

#define RPC_FRAME_PREFIX_LEN 5

/* The largest payload the 4-byte length can describe. */
#define RPC_FRAME_MAX_LEN ((size_t)UINT32_MAX)

enum rpc_frame_state {
    RPC_FRAME_PREFIX,  /* reading the 5-byte prefix (0..4 bytes held) */
    RPC_FRAME_PAYLOAD, /* reading the payload of a known length */
    RPC_FRAME_FAILED,  /* sticky error, see rpc_frame_decoder.error */
};

/* Decoder state. Treat the fields as private (|messages| may be read);
 * they are public only so the decoder can live on caller storage (embedded
 * in the h2 stream). */
typedef struct rpc_frame_decoder {
    enum rpc_frame_state state;
    int error;      /* negative errno once FAILED, else 0 */
    size_t max_len; /* largest accepted payload */
    uint8_t prefix[RPC_FRAME_PREFIX_LEN];
    size_t prefix_have; /* prefix bytes held */
    bool compressed;    /* flag of the message being read */
    size_t msg_len;     /* payload length of the message being read */
    uint8_t *buf;       /* owned: partial payload; cap <= msg_len */
    budget *budget;     /* borrowed: charged for |buf| (NULL: none) */
    size_t buf_have, buf_cap;
    uint64_t messages; /* complete messages returned so far */
} rpc_frame_decoder;

/* One complete message. |data| is borrowed: it points either into the input
 * chunk (when the message lay whole inside it) or into the decoder's buffer,
 * and stays valid until the next rpc_frame_decoder_feed() or _deinit() call
 * on the decoder, or until the input chunk is gone, whichever comes first.
 * Copy (or unpack) it before then. |data| may be NULL when |len| is 0. */
typedef struct rpc_frame_msg {
    const uint8_t *data;
    size_t len;
    bool compressed; /* Compressed-Flag was 1: the payload is grpc-encoding */
} rpc_frame_msg;

/* Initialises a decoder on caller storage that accepts payloads of at most
 * |max_len| bytes (clamped to RPC_FRAME_MAX_LEN). Allocates nothing. */
void rpc_frame_decoder_init(rpc_frame_decoder *d, size_t max_len);

/* Charges the decoder's buffer to |b| from now on; a message that |b| cannot
 * hold fails with -ENOBUFS. */
void rpc_frame_decoder_set_budget(rpc_frame_decoder *d, budget *b);

/* Frees the decoder's buffer. The decoder may be reused after _init(). */
void rpc_frame_decoder_deinit(rpc_frame_decoder *d);

/* Consumes bytes from the chunk (*|data|, *|len|) and advances both past
 * what it consumed. It stops right after the first complete message:
 *
 *   1        a message is complete and stored in |msg|; bytes may remain
 *            in the chunk: call again with the advanced pointer.
 *   0        the whole chunk was consumed without completing a message
 *            (*|len| is now 0); |msg| is untouched.
 *  -EMSGSIZE a prefix declared a length over max_len (nothing buffered);
 *            answer RESOURCE_EXHAUSTED.
 *  -EPROTO   a prefix had a Compressed-Flag other than 0 or 1; answer
 *            INTERNAL.
 *  -ENOMEM   the payload buffer could not grow.
 *
 * Errors are sticky: every later call returns the same code and consumes
 * nothing. The decoder never checks whether a compressed message is allowed
 * (that depends on grpc-encoding, which the caller knows): it reports the
 * flag in |msg|. The typical caller:
 *
 *     for (;;) {
 *         int rv = rpc_frame_decoder_feed(d, &p, &n, &msg);
 *         if (rv <= 0)
 *             return rv;          // 0: wait for the next DATA chunk
 *         handle(&msg);
 *     }
 *
 * The buffer grows with the bytes that actually arrived (never beyond the
 * declared length, so never beyond max_len): a peer that declares 4 MiB
 * and sends 10 bytes costs about 10 bytes. Messages that lie whole inside
 * one chunk are returned without copying. */
int rpc_frame_decoder_feed(rpc_frame_decoder *d, const uint8_t **data, size_t *len,
                           rpc_frame_msg *msg) __attribute__((warn_unused_result));

/* End-of-stream check, for when END_STREAM arrives. Returns 0 when the
 * decoder sits on a message boundary (nothing partial held), -EPROTO when
 * the stream ended inside a prefix or a payload (answer INTERNAL), or the
 * sticky error of a failed decoder. Does not change the decoder. The
 * message count (zero or several for a unary method) is the caller's
 * check: see rpc_frame_decoder.messages. */
int rpc_frame_decoder_finish(const rpc_frame_decoder *d) __attribute__((warn_unused_result));

/* True when the decoder holds no partial prefix or payload. */
bool rpc_frame_decoder_idle(const rpc_frame_decoder *d);

/* Writes the 5-byte prefix for a payload of |len| bytes to |out|. */
void rpc_frame_write_prefix(uint8_t out[RPC_FRAME_PREFIX_LEN], bool compressed, uint32_t len);

/* Serialises |msg| (uncompressed) with its prefix into |buf| of |cap| bytes
 * and stores the total length (prefix + payload) in *|out_len|. Returns 0,
 * -EMSGSIZE when the packed message is over |max_len| (or UINT32_MAX), or
 * -ENOBUFS when |cap| is too small (see rpc_frame_packed_size()), or -EPROTO
 * if protobuf-c packed a different size than it announced (a bug). Writes
 * *|out_len| only on success. */
int rpc_frame_pack_to(const ProtobufCMessage *msg, size_t max_len, uint8_t *buf, size_t cap,
                      size_t *out_len) __attribute__((warn_unused_result));

/* Bytes rpc_frame_pack_to() needs for |msg|: RPC_FRAME_PREFIX_LEN plus the
 * packed size. */
size_t rpc_frame_packed_size(const ProtobufCMessage *msg);

/* Like rpc_frame_pack_to() into a fresh malloc'd buffer that the caller
 * owns and frees with free(). Returns 0, -EMSGSIZE or -ENOMEM; *|out| and
 * *|out_len| are written only on success. */
int rpc_frame_pack_new(const ProtobufCMessage *msg, size_t max_len, uint8_t **out, size_t *out_len)
    __attribute__((warn_unused_result));

/* Like rpc_frame_pack_new() into arena memory (freed with the arena). */
int rpc_frame_pack_arena(const ProtobufCMessage *msg, size_t max_len, arena *a, uint8_t **out,
                         size_t *out_len) __attribute__((warn_unused_result));

/* Decompresses one gzip (RFC 1952, grpc-encoding "gzip") message of |in_len|
 * bytes into a fresh malloc'd buffer (caller frees with free()) of at most
 * |max_len| bytes. Safe against decompression bombs: output stops at the
 * cap. Returns 0, -EMSGSIZE when the output would exceed |max_len| (answer
 * RESOURCE_EXHAUSTED), -EPROTO when the input is not one complete, valid
 * gzip member (corrupt, truncated or followed by trailing bytes; answer
 * INTERNAL), or -ENOMEM. *|out| and *|out_len| are
 * written only on success; *|out| is non-NULL even for empty output. */
int rpc_frame_gunzip(const uint8_t *in, size_t in_len, size_t max_len, uint8_t **out,
                     size_t *out_len) __attribute__((warn_unused_result));

/* Compresses |in_len| bytes as one gzip member into a fresh malloc'd buffer
 * (caller frees). Returns 0, -EMSGSIZE when |in_len| is over 2 GiB, or
 * -ENOMEM; outputs written only on success. */
int rpc_frame_gzip(const uint8_t *in, size_t in_len, uint8_t **out, size_t *out_len)
    __attribute__((warn_unused_result));

#endif
