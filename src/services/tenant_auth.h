/* Tenants bound to peers (--tenant-auth=peer), in the spirit of
 * PostgreSQL's pg_ident maps: the tenant_grants table
 * (migrations/0008_tenant_grants.sql) maps a uid or a gid to the tenants
 * that peers with it may name in x-tenant-id. The server keeps a snapshot
 * of the table in memory, so the check (rpc_server.tenant_auth, run while
 * a call's headers are read) needs no database work:
 *
 *   - the server's own uid and root may act for any tenant (they can read
 *     the server's configuration, database URL included, anyway);
 *   - any other peer needs a grant for its uid, its primary gid or one of
 *     its supplementary gids (SO_PEERCRED, SO_PEERGROUPS);
 *   - until the first snapshot is read, calls naming a tenant are
 *     UNAVAILABLE; a snapshot that cannot be refreshed is kept.
 *
 * Admin.GrantTenant and Admin.RevokeTenant change the snapshot as soon as
 * their transaction commits, before they answer; changes made through
 * another server sharing the database arrive with the next refresh
 * (--tenant-grants-refresh-ms). */
#ifndef ARBITER_SERVICES_TENANT_AUTH_H
#define ARBITER_SERVICES_TENANT_AUTH_H

#include <stdbool.h>
#include <stdint.h>

#include "services/svc.h"

struct tenant_auth;

enum tenant_principal { TENANT_UID = 0, TENANT_GID = 1 };

/* Starts enforcing on env->rpc when env->cfg asks for it (and logs the
 * mode either way). Returns 0 or -ENOMEM. */
int tenant_auth_start(svc_env *env);

/* The database became reachable: read the grants now. */
void tenant_auth_serving(svc_env *env, bool serving);

/* Shutdown began: no more refreshes. */
void tenant_auth_shutdown(svc_env *env);

/* Frees the snapshot (after the loop ended). */
void tenant_auth_stop(svc_env *env);

/* A grant was added (|granted|) or removed, committed: the snapshot
 * follows at once. */
void tenant_auth_changed(svc_env *env, const char *tenant, enum tenant_principal kind,
                         uint32_t id, bool granted);

#endif
