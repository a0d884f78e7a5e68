/* The poll handle of a libpq connection (sock.h). */
#include "db/sock.h"

#include <errno.h>
#include <stdlib.h>

/* A handle left behind when libpq switched sockets: its fd is libpq's. */
static void on_detached_closed(uv_handle_t *h)
{
    free(h->data);
}

int db_sock_watch(db_sock *s, uv_loop_t *loop, PGconn *pg, int events, bool connecting,
                  uv_poll_cb cb, void *owner)
{
    int fd = PQsocket(pg), rv;
    bool restart = connecting;

    if (fd < 0)
        return -EBADF;
    if (s->poll != NULL && fd != s->fd) {
        s->poll->owner = NULL;
        uv_poll_stop(&s->poll->handle);
        uv_close((uv_handle_t *)&s->poll->handle, on_detached_closed);
        s->poll = NULL;
    }
    if (s->poll == NULL) {
        struct db_poll *pp = calloc(1, sizeof(*pp));

        if (pp == NULL)
            return -ENOMEM;
        rv = uv_poll_init(loop, &pp->handle, fd);
        if (rv < 0) {
            free(pp);
            return rv;
        }
        pp->handle.data = pp;
        pp->owner = owner;
        s->poll = pp;
        s->fd = fd;
        restart = true;
    }
    if (!restart && events == s->events)
        return 0;
    s->events = events;
    return uv_poll_start(&s->poll->handle, events, cb);
}

int db_sock_flush(db_sock *s, uv_loop_t *loop, PGconn *pg, uv_poll_cb cb, void *owner)
{
    int r = PQflush(pg);

    if (r < 0)
        return -EIO;
    return db_sock_watch(s, loop, pg, r == 1 ? UV_READABLE | UV_WRITABLE : UV_READABLE, false, cb,
                         owner);
}

int db_sock_connect_step(db_sock *s, uv_loop_t *loop, PGconn *pg, uv_poll_cb cb, void *owner)
{
    switch (PQconnectPoll(pg)) {
    case PGRES_POLLING_READING:
        return db_sock_watch(s, loop, pg, UV_READABLE, true, cb, owner);
    case PGRES_POLLING_WRITING:
        return db_sock_watch(s, loop, pg, UV_WRITABLE, true, cb, owner);
    case PGRES_POLLING_OK:
        return 1;
    default:
        return -ECONNREFUSED;
    }
}

void db_sock_close(db_sock *s, PGconn *finish, uv_close_cb closed)
{
    struct db_poll *pp = s->poll;

    if (pp == NULL)
        return;
    uv_poll_stop(&pp->handle);
    pp->finish = finish;
    uv_close((uv_handle_t *)&pp->handle, closed);
    s->poll = NULL;
}
