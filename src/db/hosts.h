/* Private to src/db/: the host list of a conninfo, and its name lookup.
 *
 * libpq resolves host names inside PQconnectStartParams()/PQconnectPoll()
 * with a blocking getaddrinfo(), which would stall the loop. So the pool
 * parses the conninfo's host (and port) list once; when an entry is a name,
 * every new connection first runs db_hosts_resolve() on the libuv thread
 * pool, which expands each name into one entry per address, in the order
 * getaddrinfo() returns them, and hands libpq matching host/hostaddr/port
 * lists. libpq then tries the entries one after the other, exactly as it
 * does for the addresses of a name it resolves itself (IPv6 and IPv4 of
 * "localhost", several A records): the first address may refuse. */
#ifndef ARBITER_DB_HOSTS_H
#define ARBITER_DB_HOSTS_H

#include <stddef.h>

#define DB_HOSTS_MAX 64     /* entries after expansion; more addresses are dropped */
#define DB_HOST_ADDR_LEN 46 /* INET6_ADDRSTRLEN */

typedef struct db_hosts db_hosts;

/* What libpq gets instead of the conninfo's host list: comma-separated
 * lists of equal length (port may be NULL: the conninfo's single port, or
 * the default, applies to every entry). hostaddr entries are "" for
 * socket directories, which need no lookup. All owned. */
struct db_hosts_target {
    char *host;
    char *hostaddr;
    char *port;
    size_t count;
};

/* Looks up |name|: writes up to |max| numeric addresses into |addrs| in the
 * order they should be tried and stores their count in *|n|. Returns 0 or a
 * negative code. Blocking (db_hosts_lookup_system uses getaddrinfo). */
typedef int (*db_lookup_fn)(const char *name, char (*addrs)[DB_HOST_ADDR_LEN], size_t max,
                            size_t *n);
int db_hosts_lookup_system(const char *name, char (*addrs)[DB_HOST_ADDR_LEN], size_t max,
                           size_t *n);

/* Parses the host, hostaddr and port lists of |conninfo| (PGHOST, PGPORT
 * and PGHOSTADDR as fallbacks, as libpq does). Sets *|out| to NULL when
 * libpq needs no lookup (no name at all, or hostaddr given), else to a new
 * list. Returns 0, -EINVAL (not a conninfo) or -ENOMEM. */
int db_hosts_parse(const char *conninfo, db_hosts **out) __attribute__((warn_unused_result));
void db_hosts_free(db_hosts *h);

/* A name of the list, for logs (the first one that needs a lookup). */
const char *db_hosts_name(const db_hosts *h);

/* Expands |h| with |lookup| into |out| (fills every field on success).
 * Names that do not resolve are dropped. Returns 0, -ENOENT when no entry
 * is left, or -ENOMEM. Blocking: run it on the thread pool. Reads |h| only,
 * so several lookups may run at once. */
int db_hosts_resolve(const db_hosts *h, db_lookup_fn lookup, struct db_hosts_target *out)
    __attribute__((warn_unused_result));
void db_hosts_target_deinit(struct db_hosts_target *t);

#endif
