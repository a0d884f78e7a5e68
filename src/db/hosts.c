/* The host list of a conninfo and its lookup off the loop (see hosts.h). */
#include "db/hosts.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <libpq-fe.h>

/* One entry of the conninfo's host list. */
struct host_entry {
    char *host;   /* owned */
    char *port;   /* owned; NULL when one port (or none) serves every entry */
    bool is_name; /* needs a lookup */
    bool numeric; /* an IPv4/IPv6 literal: passed as hostaddr too */
};

struct db_hosts {
    struct host_entry *items; /* owned */
    size_t n;
};

/* A growable comma-separated list being built. */
struct list_buf {
    char *p;
    size_t len, cap, items;
    bool failed;
};

static void list_add(struct list_buf *b, const char *item)
{
    size_t n = strlen(item), need = b->len + n + 2;

    if (b->failed)
        return;
    if (need > b->cap) {
        size_t cap = b->cap ? b->cap : 64;
        char *p;

        while (cap < need)
            cap *= 2;
        p = realloc(b->p, cap);
        if (p == NULL) {
            b->failed = true;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
    if (b->items++ > 0)
        b->p[b->len++] = ',';
    memcpy(b->p + b->len, item, n);
    b->len += n;
    b->p[b->len] = '\0';
}

/* Splits |s| at commas into a new array of new strings (empty entries
 * kept, as libpq keeps them). Returns the count or -ENOMEM. */
static long split(const char *s, char ***out)
{
    size_t n = 1, i = 0;
    const char *p;
    char **v;

    for (p = s; *p; p++)
        n += *p == ',';
    v = calloc(n, sizeof(*v));
    if (v == NULL)
        return -ENOMEM;
    for (p = s;; i++) {
        size_t len = strcspn(p, ",");

        v[i] = strndup(p, len);
        if (v[i] == NULL) {
            while (i > 0)
                free(v[--i]);
            free(v);
            return -ENOMEM;
        }
        if (p[len] == '\0')
            break;
        p += len + 1;
    }
    *out = v;
    return (long)n;
}

static void free_strings(char **v, long n)
{
    for (long i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

static bool is_numeric(const char *h)
{
    unsigned char buf[sizeof(struct in6_addr)];

    return inet_pton(AF_INET, h, buf) == 1 || inet_pton(AF_INET6, h, buf) == 1;
}

/* A socket directory, an abstract socket or the default (empty). */
static bool is_socket(const char *h)
{
    return h[0] == '\0' || h[0] == '/' || h[0] == '@';
}

/* The value of |keyword| in |opts|, else the environment variable |env|;
 * NULL when neither is set or both are empty. */
static const char *option(const PQconninfoOption *opts, const char *keyword, const char *env)
{
    const char *v = NULL;

    for (const PQconninfoOption *o = opts; o->keyword != NULL; o++)
        if (strcmp(o->keyword, keyword) == 0)
            v = o->val;
    if (v == NULL || v[0] == '\0')
        v = getenv(env);
    return v != NULL && v[0] != '\0' ? v : NULL;
}

/* Builds the entries from the host and port lists; takes the strings. */
static int build(db_hosts *h, char **hosts, long nhosts, char **ports, long nports)
{
    bool any_name = false;

    h->items = calloc((size_t)nhosts, sizeof(*h->items));
    if (h->items == NULL)
        return -ENOMEM;
    for (long i = 0; i < nhosts; i++) {
        struct host_entry *e = &h->items[h->n++];

        e->host = hosts[i];
        hosts[i] = NULL;
        e->numeric = is_numeric(e->host);
        e->is_name = !e->numeric && !is_socket(e->host);
        any_name |= e->is_name;
        if (nports == nhosts && nhosts > 1) {
            e->port = ports[i];
            ports[i] = NULL;
        }
    }
    return any_name ? 1 : 0;
}

int db_hosts_parse(const char *conninfo, db_hosts **out)
{
    PQconninfoOption *opts;
    char *err = NULL, **hosts = NULL, **ports = NULL;
    const char *host, *port;
    long nhosts = 0, nports = 0;
    db_hosts *h = NULL;
    int rv = 0;

    *out = NULL;
    opts = PQconninfoParse(conninfo, &err);
    if (opts == NULL) {
        PQfreemem(err);
        return err != NULL ? -EINVAL : -ENOMEM;
    }
    host = option(opts, "host", "PGHOST");
    port = option(opts, "port", "PGPORT");
    /* With hostaddr libpq looks nothing up; without a host it uses the
     * default socket directory. */
    if (option(opts, "hostaddr", "PGHOSTADDR") != NULL || host == NULL)
        goto done;
    nhosts = split(host, &hosts);
    nports = port != NULL ? split(port, &ports) : 0;
    if (nhosts < 0 || nports < 0) {
        rv = -ENOMEM;
        goto done;
    }
    /* A port list that does not match is libpq's error to report; it
     * reports it before any lookup. */
    if (nports > 1 && nports != nhosts)
        goto done;
    h = calloc(1, sizeof(*h));
    rv = h != NULL ? build(h, hosts, nhosts, ports, nports) : -ENOMEM;
    if (rv == 1) {
        *out = h;
        h = NULL;
        rv = 0;
    }
done:
    db_hosts_free(h);
    if (nhosts > 0)
        free_strings(hosts, nhosts);
    if (nports > 0)
        free_strings(ports, nports);
    PQconninfoFree(opts);
    return rv;
}

void db_hosts_free(db_hosts *h)
{
    if (h == NULL)
        return;
    for (size_t i = 0; i < h->n; i++) {
        free(h->items[i].host);
        free(h->items[i].port);
    }
    free(h->items);
    free(h);
}

const char *db_hosts_name(const db_hosts *h)
{
    for (size_t i = 0; i < h->n; i++)
        if (h->items[i].is_name)
            return h->items[i].host;
    return "";
}

int db_hosts_lookup_system(const char *name, char (*addrs)[DB_HOST_ADDR_LEN], size_t max, size_t *n)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
    struct addrinfo *res = NULL;
    int rv = getaddrinfo(name, NULL, &hints, &res);

    *n = 0;
    if (rv != 0)
        return rv == EAI_MEMORY ? -ENOMEM : -ENOENT;
    for (struct addrinfo *ai = res; ai != NULL && *n < max; ai = ai->ai_next) {
        const void *a;

        if (ai->ai_family == AF_INET6)
            a = &((const struct sockaddr_in6 *)(const void *)ai->ai_addr)->sin6_addr;
        else if (ai->ai_family == AF_INET)
            a = &((const struct sockaddr_in *)(const void *)ai->ai_addr)->sin_addr;
        else
            continue;
        if (inet_ntop(ai->ai_family, a, addrs[*n], DB_HOST_ADDR_LEN) != NULL)
            (*n)++;
    }
    freeaddrinfo(res);
    return 0;
}

/* Appends one target entry. */
static void target_add(struct list_buf *host, struct list_buf *addr, struct list_buf *port,
                       const struct host_entry *e, const char *hostaddr)
{
    list_add(host, e->host);
    list_add(addr, hostaddr);
    if (e->port != NULL)
        list_add(port, e->port);
}

int db_hosts_resolve(const db_hosts *h, db_lookup_fn lookup, struct db_hosts_target *out)
{
    struct list_buf host = {0}, addr = {0}, port = {0};
    char addrs[DB_HOSTS_MAX][DB_HOST_ADDR_LEN];
    size_t count = 0, n;

    for (size_t i = 0; i < h->n && count < DB_HOSTS_MAX; i++) {
        const struct host_entry *e = &h->items[i];

        if (!e->is_name) {
            target_add(&host, &addr, &port, e, e->numeric ? e->host : "");
            count++;
            continue;
        }
        n = 0;
        if (lookup(e->host, addrs, DB_HOSTS_MAX - count, &n) == -ENOMEM)
            host.failed = true;
        for (size_t k = 0; k < n && !host.failed; k++, count++)
            target_add(&host, &addr, &port, e, addrs[k]);
    }
    if (host.failed || addr.failed || port.failed || count == 0) {
        free(host.p);
        free(addr.p);
        free(port.p);
        return count == 0 && !host.failed ? -ENOENT : -ENOMEM;
    }
    *out = (struct db_hosts_target){
        .host = host.p, .hostaddr = addr.p, .port = port.p, .count = count};
    return 0;
}

void db_hosts_target_deinit(struct db_hosts_target *t)
{
    free(t->host);
    free(t->hostaddr);
    free(t->port);
    memset(t, 0, sizeof(*t));
}
