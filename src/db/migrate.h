/* `arbiterd migrate [--status]`: applies the pending migrations/NNNN_*.sql
 * files in order, each in its own transaction, under a pg_advisory_lock,
 * recording version, name, SHA-256 and time in arbiter_schema_migrations.
 * Connects with cfg->migrate_database_url (the owner role). This is a
 * one-shot command, not the event loop, so it uses blocking libpq calls. */
#ifndef ARBITER_DB_MIGRATE_H
#define ARBITER_DB_MIGRATE_H

#include "util/cfg.h"

/* Returns the process exit code: 0 on success, 1 on a database or
 * migration error (message printed), 2 on bad configuration. */
int migrate_main(const struct cfg *cfg);

#endif
