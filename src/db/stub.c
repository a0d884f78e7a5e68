/* Temporary stand-ins so the tree links before the pool lands.
 * DELETE this file when src/db/ is implemented. */
#include <errno.h>
#include <stdlib.h>

#include "db/db.h"
#include "db/migrate.h"
#include "db/pool.h"

int db_pool_new(uv_loop_t *loop, const struct cfg *cfg,
                const struct db_pool_events *events, db_pool **out)
{
    (void)loop; (void)cfg; (void)events; (void)out;
    return -ENOSYS;
}
void db_pool_close(db_pool *pool, void (*done)(void *data), void *data)
{
    (void)pool;
    done(data);
}
void db_pool_free(db_pool *pool) { (void)pool; }
bool db_pool_serving(const db_pool *pool) { (void)pool; return false; }
void db_pool_get_stats(const db_pool *pool, struct db_pool_stats *out)
{
    (void)pool; (void)out;
}
int migrate_main(const struct cfg *cfg) { (void)cfg; return 1; }
