/* Private to the Orchestrator service (orchestrator*.c): the state the
 * service keeps in svc_env between calls, and what its files call on each
 * other.
 *
 *   orchestrator.c        the method table, the service's hooks, tenants,
 *                         the change hints (local wake-ups and NOTIFY)
 *   orchestrator_poll.c   DequeueTasks: the long poll
 *   orchestrator_watch.c  WatchQueue: streams fed from the outbox
 *   orchestrator_house.c  the housekeeping: lease rescue, outbox pruning
 *
 * How a change travels. A call that changes a task commits, then its
 * committed hook (or the handler) calls orch_changed(): long polls of that
 * tenant waiting here wake up at once, WatchQueue streams of that tenant
 * read the outbox, and a hint "<A|C> <n> <tenant>" goes out as NOTIFY on
 * the LISTEN connection, debounced (at most one per tenant every
 * HINT_DEBOUNCE_MS), so that other servers on the same database do the
 * same. NOTIFY is never sent inside a task's transaction: PostgreSQL
 * serialises the commits of notifying transactions. Without a LISTEN
 * connection, and as a safety net with one, waits and streams poll. */
#ifndef ARBITER_SERVICES_ORCHESTRATOR_H
#define ARBITER_SERVICES_ORCHESTRATOR_H

#include <stdbool.h>
#include <stdint.h>

#include <uv.h>

#include "db/db.h"
#include "db/listen.h"
#include "orchestrator.pb-c.h"
#include "services/svc_map.h"
#include "services/svc_table.h"
#include "util/arena.h"
#include "util/list.h"

#define ORCH_TENANT_MAX 64
#define ORCH_POLL_UP_MS 1000    /* safety polling while notifications flow */
#define ORCH_POLL_DOWN_MS 250   /* polling without a LISTEN connection */
#define ORCH_TICK_MS 250        /* the housekeeping timer */
#define ORCH_RETENTION_MS 60000 /* outbox rows are pruned after this */

/* What the server knows about one tenant's queue. Created on first use
 * (a long poll, a stream), freed by the housekeeping once nothing used it
 * for a while; a dequeue in flight holds no reference and looks its
 * tenant up again by id and serial when it returns. */
struct orch_tenant {
    list_node link; /* in orchestrator.tenants */
    char id[ORCH_TENANT_MAX + 1];
    uint64_t serial;    /* unique per state ever created */
    uint64_t gen;       /* tasks became available this many times */
    list_node waiters;  /* struct orch_waiter, long polls waiting */
    list_node watchers; /* struct orch_watcher, WatchQueue streams */
    char *cursor;       /* owned: pg_snapshot of the last outbox read; NULL: none yet */
    bool fetching, fetch_again;
    uint64_t fetched_ms; /* last successful outbox read */
    uint64_t used_ms;    /* last use, for freeing */
};

struct orchestrator {
    svc_env *env; /* borrowed */
    uv_loop_t *loop;
    list_node tenants; /* struct orch_tenant */
    uint64_t serials;
    const char *listen_url; /* borrowed (cfg); NULL: polling only */
    db_listen *listen;      /* owned; opened at the first use of the service */
    bool listen_up, listen_was_up, pool_was_down;
    uv_timer_t wait_timer;  /* ends of long polls and their polling */
    uint64_t wait_due_ms;   /* when it fires */
    uv_timer_t house_timer; /* ORCH_TICK_MS: housekeeping, stream polling */
    uv_timer_t hint_timer;  /* debounce of the NOTIFY hints */
    uv_timer_t reap_timer;  /* frees finished jobs on the next turn of the loop */
    uv_timer_t step_timer;  /* the housekeeping's next transaction, next turn */
    bool timers;            /* the timers exist (there is a database) */
    bool shutting_down;
    list_node hints;    /* struct orch_hint: tenants to NOTIFY about */
    list_node finished; /* struct orch_job, to be freed */
    uint64_t hint_seq;
    unsigned ticks;
    bool house_running;
    struct orch_job *house_job; /* a round waiting for its next step (step_timer) */
    bool house_queued;          /* this round waits for a connection like a call */
    uint64_t house_ok_ms;       /* the last round that ran to its end */
    svc_map *event_map;         /* owned: outbox rows to QueueEvent */
    /* counters for the metrics */
    uint64_t rescued_queued, rescued_dead, pruned, hints_sent, notifications;
};

/* A transaction of the server's own (no call): its arena, its tenant. */
struct orch_job {
    list_node link; /* in orchestrator.finished once done */
    struct orchestrator *o;
    arena arena;
    char tenant[ORCH_TENANT_MAX + 1]; /* "" for none */
    char **ids;                       /* housekeeping: tenants to visit (arena) */
    size_t nids, next;
};

/* orchestrator.c */
/* The service is in use: opens the LISTEN connection if it is not open
 * (a server whose Orchestrator nobody calls keeps no extra connection). */
void orch_use(struct orchestrator *o);
struct orch_tenant *orch_tenant_find(struct orchestrator *o, const char *id);
/* Finds or creates; NULL when out of memory. */
struct orch_tenant *orch_tenant_get(struct orchestrator *o, const char *id);
/* Tasks of |tenant| changed (|available|: some may be dequeued now): the
 * effects here and the hint to other servers. */
void orch_changed(struct orchestrator *o, const char *tenant, bool available);
/* A job (heap) for |tenant| (NULL: none); NULL when out of memory. */
struct orch_job *orch_job_new(struct orchestrator *o, const char *tenant);
/* Frees |j| on the next turn of the loop: a done callback may call it,
 * although the pool still reads the transaction after the callback. */
void orch_job_free(struct orch_job *j);
/* A transaction of |j| on the pool, bounded by a 10 s deadline; NULL when
 * out of memory. |background|: the housekeeping's, which takes an idle
 * connection or none (db.h), so it never delays a call. */
db_txn *orch_job_txn(struct orch_job *j, const char *tenant, bool background);
/* The polling period now: ORCH_POLL_UP_MS while notifications flow. */
uint64_t orch_poll_ms(const struct orchestrator *o);

/* orchestrator_poll.c */
void orch_dequeue(rpc_call *call, const ProtobufCMessage *request, void *data);
void orch_wake_waiters(struct orchestrator *o, struct orch_tenant *t);
void orch_wake_all(struct orchestrator *o);
void orch_end_waits(struct orchestrator *o); /* shutdown: every long poll answers empty */

/* orchestrator_watch.c */
void orch_watch(rpc_call *call, const ProtobufCMessage *request, void *data);
/* Reads the tenant's outbox into its streams (one read at a time). */
void orch_fetch(struct orchestrator *o, struct orch_tenant *t);
void orch_fetch_all(struct orchestrator *o);
/* Tells every live stream to read the state again (a resync event). */
void orch_resync_all(struct orchestrator *o);
void orch_end_watches(struct orchestrator *o); /* shutdown: UNAVAILABLE */

/* orchestrator_house.c */
void orch_house_tick(struct orchestrator *o);
void orch_house_step(uv_timer_t *h); /* step_timer's callback */

#endif
