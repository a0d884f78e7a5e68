/* A frame filter in front of nghttp2's input.
 *
 * Why: gRPC C-core clients (grpcio 1.51 among them) may send RST_STREAM for
 * a stream whose HEADERS they never sent when a call is cancelled right
 * after it was started (grpc/grpc#19655). RFC 9113 makes that a connection
 * error and nghttp2 answers GOAWAY(PROTOCOL_ERROR) "RST_STREAM: stream in
 * idle", which fails every other call on the connection. The filter finds
 * frame boundaries in the byte stream and lets the caller drop such frames
 * before nghttp2 sees them; every other byte passes through unchanged and
 * in order, whatever the read boundaries.
 *
 * The filter only tracks framing (the 24-byte client preface, then 9-byte
 * frame headers and payload lengths); nghttp2 still validates everything.
 */
#ifndef ARBITER_H2_FILTER_H
#define ARBITER_H2_FILTER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Asked for every RST_STREAM and WINDOW_UPDATE frame on a client-initiated
 * (odd) stream, after all bytes before it were passed on. Returns true to
 * drop the frame. */
typedef bool (*h2_filter_drop_fn)(void *data, uint8_t type, int32_t stream_id);

/* Receives bytes to pass on. Returns 0, or a negative code that stops
 * h2_filter_feed() and is returned by it. */
typedef int (*h2_filter_pass_fn)(void *data, const uint8_t *bytes, size_t len);

typedef struct h2_filter {
    uint32_t preface_left; /* client preface bytes still to pass */
    uint32_t frame_left;   /* payload bytes left in the current frame */
    bool dropping;         /* the current frame's payload is dropped */
    uint8_t hdr_have;      /* bytes of a split frame header held in hdr */
    uint8_t hdr[9];
    uint64_t dropped; /* frames dropped, for logs and tests */
    h2_filter_drop_fn drop;
    h2_filter_pass_fn pass;
    void *data; /* borrowed, given to both callbacks */
} h2_filter;

/* Initialises |f| for a server connection (expects the client preface).
 * Allocates nothing. */
void h2_filter_init(h2_filter *f, h2_filter_drop_fn drop, h2_filter_pass_fn pass, void *data);

/* Feeds |len| bytes read from the peer. Returns 0, or the first negative
 * code returned by the pass callback. */
int h2_filter_feed(h2_filter *f, const uint8_t *bytes, size_t len);

#endif
