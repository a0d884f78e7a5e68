/* Private to src/db/: the pool object and the functions pool.c and conn.c
 * call on each other. */
#ifndef ARBITER_DB_POOL_PRIV_H
#define ARBITER_DB_POOL_PRIV_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "db/conn.h"
#include "db/db_priv.h"
#include "db/pool.h"

#define DB_CONN_NSTATES 5
#define DB_WAIT_RING 2048
#define DB_MAX_ERROR_CLASSES 32
#define DB_MAX_CANCELS 2          /* PQcancel calls in libuv's thread pool (4 threads) at once */
#define DB_CANCEL_TIMEOUT_MS 2000 /* a connection waits this long for its cancel request */

struct db_pool {
    uv_loop_t *loop;       /* borrowed */
    const struct cfg *cfg; /* borrowed */
    alloc *mem;            /* borrowed: per-connection bookkeeping (NULL: malloc) */
    struct db_pool_events events;
    uint32_t pool_min, pool_max;
    uint32_t depth; /* segments in flight per connection (--pipeline-depth) */
    list_node lists[DB_CONN_NSTATES]; /* one per enum db_conn_state */
    uint32_t n[DB_CONN_NSTATES];
    uint32_t n_conns;  /* allocated connections (any state) */
    list_node waiters; /* FIFO of db_txn */
    uint32_t n_waiting, peak_waiting;
    uv_timer_t maint_timer; /* housekeeping and reconnects */
    uv_timer_t wait_timer;  /* earliest acquire expiry */
    uint64_t wait_due_ms;   /* when wait_timer fires; UINT64_MAX = stopped */
    uv_timer_t retry_timer; /* end of the connect backoff */
    uint64_t tick_ms;
    uint64_t next_conn_id;
    uint64_t rng;
    db_hosts *hosts; /* owned: the conninfo's host list when it has names, else NULL */
    /* health */
    bool ever_ok; /* a connection passed the check once */
    bool down;    /* connecting fails and nothing is live */
    bool fatal;   /* the role check refused to serve */
    bool reported_serving;
    bool warned_bypass;
    char fatal_why[512];
    uint32_t lost_pending; /* lost connections not yet replaced (for reconnects) */
    uint32_t failures;     /* consecutive connect failures */
    uint64_t retry_at_ms;
    /* closing */
    bool closing;
    int handles_open;
    uint32_t n_cancels;
    void (*close_done)(void *data);
    void *close_data;
    /* statistics */
    uint64_t stats_acquired, stats_acquire_timeouts, stats_queue_full;
    uint64_t stats_connect_errors, stats_reconnects;
    struct {
        char sqlclass[3];
        uint64_t count;
    } errors[DB_MAX_ERROR_CLASSES];
    uint32_t n_error_classes;
    uint32_t wait_ring[DB_WAIT_RING]; /* recent acquire waits in microseconds */
    uint64_t wait_pos;
};

/* pool.c */
uint64_t db_pool_rand(db_pool *p);
uint64_t db_pool_tick_ms(const struct cfg *cfg);
uint32_t db_pool_live(const db_pool *p);
void db_pool_maintain(db_pool *p);
void db_pool_dispatch(db_pool *p);
void db_pool_fail_waiters(db_pool *p, rpc_status status, const char *msg);
void db_pool_list_move(db_pool *p, db_conn *c, enum db_conn_state to, bool front);
void db_pool_conn_established(db_pool *p);
void db_pool_connect_failed(db_pool *p);
void db_pool_fatal(db_pool *p, const char *why);
void db_pool_conn_release(db_pool *p, db_conn *c);
void db_pool_conn_freed(db_pool *p);
void db_pool_cancel_finished(db_pool *p);
void db_pool_count_error(db_pool *p, const char *sqlstate);

/* conn.c */
/* Starts a non-blocking connection attempt. Returns 0 or a negative errno. */
int db_conn_open(db_pool *p);
/* Sends |t|'s segment on idle |c| (or fails |t| at once). */
void db_conn_start(db_conn *c, db_txn *t);
/* Forgets in-flight txn |t| of |c| (its owner gave up); its results are
 * drained and dropped, and when it is the only segment in flight a cancel
 * request goes to the backend. */
void db_conn_detach(db_conn *c, db_txn *t);
/* Whether busy |c| can take one more segment behind those in flight: below
 * --pipeline-depth, and its oldest segment was sent a few milliseconds ago
 * at most (never queue behind a slow statement). */
bool db_conn_can_pipeline(const db_conn *c);
/* Closes |c| in any state; an attached txn fails with UNAVAILABLE. */
void db_conn_close(db_conn *c, const char *why);

#endif
