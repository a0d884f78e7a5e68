/* The Unix-socket listener: binds cfg->socket_path, replacing a stale
 * socket file that no process answers on and refusing one that a live
 * server answers on; the file is created with the configured mode. */
#ifndef ARBITER_NET_LISTENER_H
#define ARBITER_NET_LISTENER_H

#include <stdbool.h>
#include <stddef.h>
#include <uv.h>

typedef struct net_listener net_listener;

struct net_listener {
    uv_pipe_t pipe;                         /* embedded; pipe.data == this */
    void (*on_connection)(net_listener *l); /* a connection is pending: accept it */
    void (*on_close)(net_listener *l);      /* the handle is closed (may be NULL) */
    void *data;                             /* borrowed: the owner */
    char path[108];                         /* the bound path, for unlink */
    bool bound, closing, opened;
};

/* Binds and listens on |path| with permissions |mode|. Returns 0, -EADDRINUSE
 * when a live server answers on |path|, or another negative errno; on error
 * |err| receives a one-line description, and when the handle had been made
 * (|closing| is then set) it is closed and on_close follows. */
int net_listener_open(net_listener *l, uv_loop_t *loop, const char *path, unsigned mode, char *err,
                      size_t errlen) __attribute__((warn_unused_result));

/* Accepts the pending connection and closes it at once (the owner is at
 * its connection cap): the peer sees its connection end. */
void net_listener_reject(net_listener *l);

/* Closes the handle and removes the socket file (idempotent); on_close
 * follows from the loop. */
void net_listener_close(net_listener *l);

#endif
