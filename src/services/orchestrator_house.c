/* The Orchestrator's housekeeping, every other tick of its timer: one
 * transaction without a tenant asks which tenants have expired leases or
 * outbox rows past the retention (orchestrator_due_tenants looks at one
 * tenant at a time: row-level security hides the rest), then each of
 * those tenants gets a transaction of its own, one after the other:
 * expired leases back to QUEUED (or DEAD), old outbox rows pruned. A
 * failure ends the round; the next tick starts over.
 *
 * The rounds are background work of the pool (db.h): they take only a
 * connection calls can spare, so they never delay a call. When that left
 * them without a round for STARVED_MS (a pool busy all the time), the next
 * round waits for a connection like a call, so leases are still rescued.
 * Each step starts on the next turn of the loop: inside a transaction's
 * callback its connection is still busy, and would not count as spare. */
#include <stdlib.h>
#include <string.h>

#include "db/pool.h"
#include "services/orchestrator.h"
#include "util/log.h"

#define RESCUE_LIMIT 1000 /* leases per tenant and round */
#define STARVED_MS 5000

static const db_stmt due_stmt = {
    .name = "orch_due_tenants",
    .sql = "SELECT t FROM orchestrator_due_tenants($1::bigint) AS t",
    .nparams = 1,
};

static const db_stmt rescue_stmt = {
    .name = "orch_rescue",
    .sql = "SELECT status FROM orchestrator_rescue($1::integer)",
    .nparams = 1,
};

static const db_stmt prune_stmt = {
    .name = "orch_prune",
    .sql = "SELECT orchestrator_prune_events($1::bigint)",
    .nparams = 1,
};

static void next_tenant(struct orch_job *j);

static void done(struct orch_job *j, bool completed)
{
    if (completed)
        j->o->house_ok_ms = uv_now(j->o->loop);
    j->o->house_running = false;
    j->o->house_job = NULL;
    orch_job_free(j);
}

/* Runs next_tenant() on the next turn of the loop. */
static void step_later(struct orch_job *j)
{
    if (!j->o->timers) {
        done(j, false); /* shutting down */
        return;
    }
    j->o->house_job = j;
    uv_timer_start(&j->o->step_timer, orch_house_step, 0, 0);
}

void orch_house_step(uv_timer_t *h)
{
    struct orchestrator *o = h->data;
    struct orch_job *j = o->house_job;

    /* From here the round belongs to its transaction's callback: only a
     * round between two steps is house_job (which shutdown may free). */
    o->house_job = NULL;
    if (j != NULL)
        next_tenant(j);
}

static void on_tenant_done(db_txn *txn, void *data)
{
    struct orch_job *j = data;
    struct orchestrator *o = j->o;
    const char *tenant = j->ids[j->next];
    int64_t pruned = 0;
    uint64_t queued = 0, dead = 0;

    if (db_txn_status(txn) != RPC_OK) {
        log_debug("orchestrator: housekeeping of %s failed: %s", tenant, db_txn_message(txn));
        done(j, false);
        return;
    }
    for (int i = 0; i < db_rows(txn, 0); i++) {
        if (strcmp(db_text(txn, 0, i, 0), "QUEUED") == 0)
            queued++;
        else
            dead++;
    }
    (void)db_int64(txn, 1, 0, 0, &pruned);
    o->rescued_queued += queued;
    o->rescued_dead += dead;
    o->pruned += (uint64_t)pruned;
    if (queued + dead > 0) {
        log_info("orchestrator: tenant %s: %llu expired lease(s) taken back, %llu task(s) DEAD",
                 tenant, (unsigned long long)queued, (unsigned long long)dead);
        orch_changed(o, tenant, queued > 0);
    }
    j->next++;
    step_later(j);
}

static void next_tenant(struct orch_job *j)
{
    db_txn *txn;

    if (j->next >= j->nids || j->o->shutting_down) {
        done(j, j->next >= j->nids);
        return;
    }
    txn = orch_job_txn(j, j->ids[j->next], !j->o->house_queued);
    if (txn == NULL) {
        done(j, false);
        return;
    }
    db_txn_stmt(txn, &rescue_stmt);
    db_param_int64(txn, RESCUE_LIMIT);
    db_txn_stmt(txn, &prune_stmt);
    db_param_int64(txn, ORCH_RETENTION_MS);
    db_txn_run(txn, on_tenant_done, j);
}

static void on_due(db_txn *txn, void *data)
{
    struct orch_job *j = data;
    int n = db_rows(txn, 0);

    if (db_txn_status(txn) != RPC_OK) {
        log_debug("orchestrator: housekeeping: %s", db_txn_message(txn));
        done(j, false);
        return;
    }
    j->ids = n > 0 ? arena_alloc(&j->arena, (size_t)n * sizeof(char *)) : NULL;
    for (int i = 0; i < n && j->ids != NULL; i++) {
        char *id = arena_strdup(&j->arena, db_text(txn, 0, i, 0));

        if (id == NULL)
            break; /* out of memory: the rest waits for the next round */
        j->ids[j->nids++] = id;
    }
    step_later(j);
}

void orch_house_tick(struct orchestrator *o)
{
    struct orch_job *j;
    db_txn *txn;

    if (o->house_running || o->shutting_down || o->env->pool == NULL ||
        !db_pool_serving(o->env->pool))
        return;
    if (o->house_ok_ms == 0)
        o->house_ok_ms = uv_now(o->loop);
    o->house_queued = uv_now(o->loop) - o->house_ok_ms > STARVED_MS;
    j = orch_job_new(o, NULL);
    txn = j ? orch_job_txn(j, NULL, !o->house_queued) : NULL;
    if (txn == NULL) {
        orch_job_free(j);
        return;
    }
    o->house_running = true;
    db_txn_stmt(txn, &due_stmt);
    db_param_int64(txn, ORCH_RETENTION_MS);
    db_txn_run(txn, on_due, j);
}
