/* The LISTEN connection: one PostgreSQL connection outside the call pool
 * (src/db opens every connection), for wake-up hints between transactions
 * and between servers. It LISTENs on one channel, tells its owner about
 * each notification, sends the owner's NOTIFYs, and reconnects on its own
 * with capped, jittered backoff (100 ms to 5 s) when the connection breaks.
 *
 * Everything is non-blocking on the loop, like the pool: a uv_poll_t on
 * PQsocket(), host names resolved on the libuv thread pool (db/hosts.h).
 * NOTIFYs that queue up while one is in flight leave together, as one
 * statement: SELECT pg_notify(channel, p) FROM unnest($2::text[]) p.
 *
 * Notifications are hints, never data: one may be lost while the
 * connection is down, so the owner hears of every loss and of every
 * (re)start (up_changed) and must catch up on its own then. The
 * connection runs in autocommit and keeps no transaction open, so it
 * needs a direct connection: not PgBouncer in transaction mode, where
 * LISTEN does not survive the transaction. */
#ifndef ARBITER_DB_LISTEN_H
#define ARBITER_DB_LISTEN_H

#include <stdbool.h>
#include <uv.h>

typedef struct db_listen db_listen;

struct db_listen_events {
    /* A notification on the channel. |own| is true when this connection
     * sent it (the owner already knows). |payload| lives for the call. */
    void (*notified)(void *data, const char *payload, bool own);
    /* Listening began (|up|; notifications flow from now on), or the
     * connection was lost (notifications from now on are missed until
     * the next up). */
    void (*up_changed)(void *data, bool up);
    void *data;
};

/* Starts connecting to |conninfo| and LISTENing on |channel| (an
 * identifier of at most 63 bytes). |ev| is copied; the strings are
 * copied. Returns 0, -EINVAL for a conninfo libpq cannot parse or a bad
 * channel name, or -ENOMEM. */
int db_listen_new(uv_loop_t *loop, const char *conninfo, const char *channel,
                  const struct db_listen_events *ev, db_listen **out)
    __attribute__((warn_unused_result));

/* Whether libpq can parse |conninfo| (and its host list): 0 or -EINVAL,
 * or -ENOMEM. Connects nowhere. */
int db_listen_check(const char *conninfo) __attribute__((warn_unused_result));

/* True while LISTENing. */
bool db_listen_is_up(const db_listen *l);

/* Sends NOTIFY |payload| (at most 7,999 bytes; copied) on the channel, now
 * or with the statement in flight's successors. Returns 0, -ENOTCONN while
 * not LISTENing (the hint is dropped: listeners catch up by polling),
 * -ENOBUFS when 4,096 are already waiting, -EINVAL for a payload too
 * long, or -ENOMEM. */
int db_listen_notify(db_listen *l, const char *payload);

/* Closes the connection and every handle; |l| frees itself once the loop
 * ran their close callbacks. No callback runs after this. NULL: no-op. */
void db_listen_close(db_listen *l);

#endif
