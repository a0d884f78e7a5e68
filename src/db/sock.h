/* Private to src/db/: the uv_poll_t that watches a libpq connection's
 * socket, shared by the pool's connections (conn.c) and the LISTEN
 * connection (listen.c).
 *
 * libpq may switch sockets while it connects (the next host of a list),
 * so the handle follows PQsocket(): a new number gets a new handle (the
 * old one closes on its own, libpq closed its socket), and while
 * connecting the handle is always restarted, which re-registers the fd
 * even when libpq reopened the same number. Handles are heap allocated so
 * that an old one can close while a new one starts; only one handle per
 * fd is ever active (libuv's rule). The owner closes the handle before
 * PQfinish, so the fd number cannot be reused while libuv still knows it. */
#ifndef ARBITER_DB_SOCK_H
#define ARBITER_DB_SOCK_H

#include <libpq-fe.h>
#include <stdbool.h>
#include <uv.h>

struct db_poll {
    uv_poll_t handle; /* handle.data is this struct */
    void *owner;      /* borrowed; NULL once detached */
    PGconn *finish;   /* owned when set: PQfinish once the handle closed */
};

typedef struct db_sock {
    struct db_poll *poll; /* owned; NULL until the socket is known */
    int fd;
    int events; /* UV_READABLE / UV_WRITABLE currently polled */
} db_sock;

/* Polls PQsocket(|pg|) for |events|, calling |cb| with the handle of a
 * db_poll whose owner is |owner|. |connecting|: restart the handle even
 * when nothing changed. Returns 0, -EBADF (no socket), -ENOMEM or a libuv
 * error. */
int db_sock_watch(db_sock *s, uv_loop_t *loop, PGconn *pg, int events, bool connecting,
                  uv_poll_cb cb, void *owner);

/* Sends what libpq buffered; polls for readability, and for writability
 * while some output is left. Returns 0, -EIO or as db_sock_watch(). */
int db_sock_flush(db_sock *s, uv_loop_t *loop, PGconn *pg, uv_poll_cb cb, void *owner);

/* One step of libpq's non-blocking connect: polls for what PQconnectPoll()
 * waits for. Returns 1 once connected, 0 while connecting, or a negative
 * code when the attempt failed (PQerrorMessage() says why). */
int db_sock_connect_step(db_sock *s, uv_loop_t *loop, PGconn *pg, uv_poll_cb cb, void *owner);

/* Stops and closes the handle (if any) with |closed| as its close
 * callback (handle.data is the db_poll, which the callback frees), after
 * handing it |finish| (may be NULL). Leaves |s| without a handle. */
void db_sock_close(db_sock *s, PGconn *finish, uv_close_cb closed);

#endif
