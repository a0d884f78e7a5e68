/* One accepted Unix-socket connection: reads into a fixed buffer and hands
 * the bytes to its owner; writes go through a pending buffer that is
 * written with uv_try_write when the socket is free (no allocation in the
 * common case) and otherwise queued with uv_write. The owner watches
 * net_conn_backlog() to stop producing above a high-water mark and is told
 * through on_drain when it fell again (nghttp2 examples'
 * OUTPUT_WOULDBLOCK_THRESHOLD idea). */
#ifndef ARBITER_NET_CONN_H
#define ARBITER_NET_CONN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <uv.h>

#define NET_CONN_READ_BUF (64 * 1024)
#define NET_CONN_HIGH_WATER (256 * 1024) /* stop producing output above this */
#define NET_CONN_LOW_WATER (64 * 1024)   /* on_drain fires when below this again */

typedef struct net_conn net_conn;

/* Who is on the other end, as the kernel saw it at connect time
 * (SO_PEERCRED, SO_PEERGROUPS). uid (uid_t)-1 when unknown. */
typedef struct net_peer {
    uid_t uid;
    gid_t gid; /* primary group */
    pid_t pid;
    gid_t *groups; /* owned: the supplementary groups; NULL when none */
    size_t ngroups;
} net_peer;

/* True when |peer| has |gid| as its primary or a supplementary group. */
bool net_peer_in_group(const net_peer *peer, gid_t gid);

struct net_conn_ops {
    /* |len| bytes arrived; they are only valid during the call. */
    void (*on_read)(net_conn *c, const uint8_t *data, size_t len);
    /* The peer closed (|err| == UV_EOF) or I/O failed; the owner should
     * close the connection. */
    void (*on_error)(net_conn *c, int err);
    /* The backlog dropped below NET_CONN_LOW_WATER. */
    void (*on_drain)(net_conn *c);
    /* The handle is closed and no callback will follow: the owner may free
     * the memory that embeds |c|. */
    void (*on_close)(net_conn *c);
};

struct net_conn {
    uv_pipe_t pipe;                 /* embedded; pipe.data == this */
    const struct net_conn_ops *ops; /* borrowed, static */
    void *data;                     /* borrowed: the owner */
    net_peer peer;                  /* read at accept */
    size_t queued;                  /* bytes in uv_write requests not yet done */
    uint8_t *out;                   /* owned: pending bytes not yet handed to libuv */
    size_t out_len, out_cap;
    bool closing, reading, paused;
    uint8_t *rbuf; /* borrowed: the read buffer (see accept) */
    size_t rbuf_len;
};

/* Accepts a pending connection of |server| into |c| (caller storage that
 * must stay alive until on_close), reads the peer's credentials and starts
 * reading into |rbuf| (|rbuf_len| bytes, borrowed). libuv calls the
 * allocation and read callbacks back to back and on_read consumes the
 * bytes synchronously, so every connection of one loop may share one
 * buffer. Returns 0 or a negative libuv error; on error the handle is
 * already closing and on_close will run. */
int net_conn_accept(net_conn *c, uv_stream_t *server, const struct net_conn_ops *ops, void *data,
                    uint8_t *rbuf, size_t rbuf_len) __attribute__((warn_unused_result));

/* Like net_conn_accept() for a connected stream socket |fd| that the caller
 * already has (a socketpair end in tests and fuzzers); |c| takes the fd
 * over once this returns 0 or an error after the handle exists. */
int net_conn_open(net_conn *c, uv_loop_t *loop, int fd, const struct net_conn_ops *ops, void *data,
                  uint8_t *rbuf, size_t rbuf_len) __attribute__((warn_unused_result));

/* Copies |len| bytes into the pending buffer. Returns 0 or -ENOMEM. */
int net_conn_append(net_conn *c, const uint8_t *data, size_t len)
    __attribute__((warn_unused_result));

/* Hands the pending bytes to the socket. Returns 0 or a negative libuv
 * error (the owner should then close). */
int net_conn_flush(net_conn *c) __attribute__((warn_unused_result));

/* Bytes pending plus queued in libuv. */
size_t net_conn_backlog(const net_conn *c);

/* Stops or restarts reading (backpressure while the output is full). */
void net_conn_pause(net_conn *c, bool paused);

/* Closes the handle (idempotent); on_close follows from the loop. Pending
 * output is dropped. */
void net_conn_close(net_conn *c);

#endif
