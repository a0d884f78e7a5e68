/* The services layer: what every service gets from the server (svc_env),
 * the list of services the server walks, and the helpers a hand-written
 * handler shares with the method tables (svc_table.h).
 *
 * A service is a struct svc_service: start registers its methods (a table
 * of svc_method entries, see svc_table.h and README.md), and the optional
 * hooks hear of the database's serving state, of shutdown, and free what
 * start allocated. server.c knows no service by name. */
#ifndef ARBITER_SERVICES_SVC_H
#define ARBITER_SERVICES_SVC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "db/db.h"
#include "rpc/call.h"
#include "rpc/server.h"
#include "util/cfg.h"
#include "util/list.h"

struct db_pool;
struct health;
struct tenant_auth;
struct orchestrator;
struct strbuf;

/* What services may use. Owned by the server; services read it and keep
 * their own state in the fields named for them. */
typedef struct svc_env {
    uv_loop_t *loop;       /* borrowed */
    const struct cfg *cfg; /* borrowed */
    rpc_server *rpc;       /* borrowed: method table, call statistics */
    struct db_pool *pool;  /* borrowed; NULL without a database */
    uint64_t started_at_ms;
    list_node entries;               /* compiled table entries (svc_table.c), owned */
    struct health *health;           /* owned by the Health service */
    struct tenant_auth *tenant_auth; /* owned by Admin; NULL unless --tenant-auth=peer */
    char *vector_impl;               /* owned by KnowledgeGraph: the database's vector functions, or NULL */
    struct orchestrator *orchestrator; /* owned by the Orchestrator service */
} svc_env;

struct svc_service {
    const char *name;
    int (*start)(svc_env *env); /* registers the methods; 0 or -errno (logged) */
    void (*serving_changed)(svc_env *env, bool serving);
    void (*shutdown)(svc_env *env); /* shutdown began: end long-lived streams */
    void (*stop)(svc_env *env);     /* frees what start allocated */
    /* appends the service's Prometheus text to a scrape (optional) */
    void (*metrics)(svc_env *env, struct strbuf *out);
};

/* Every service, in registration order, and their count. */
const struct svc_service *const *svc_services(size_t *n);

/* Initialises |env| on caller storage. */
void svc_env_init(svc_env *env, uv_loop_t *loop, const struct cfg *cfg, rpc_server *rpc);

/* Frees the compiled method tables (after every service stopped). */
void svc_env_deinit(svc_env *env);

/* ---- helpers for handlers ------------------------------------------------ */

/* A transaction for |call| on the environment's pool: the call's arena,
 * identity, deadline and cancel hook. NULL when out of memory, and then
 * |call| is already finished with RESOURCE_EXHAUSTED. */
db_txn *svc_txn_new(rpc_call *call, const svc_env *env);

/* Finishes |call| with RESOURCE_EXHAUSTED "out of memory". */
void svc_oom(rpc_call *call);

/* Zeroed array of |n| elements of |size| in the call's arena (NULL when
 * |n| is 0 or out of memory). */
void *svc_alloc_array(rpc_call *call, size_t n, size_t size);

#endif
