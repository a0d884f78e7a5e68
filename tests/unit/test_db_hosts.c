/* db hosts: which conninfos need a lookup off the loop, and how a host list
 * expands into one libpq entry per address, in order (issue 7: the first
 * address of "localhost" was ::1, which refused, and only it was tried). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>
#include <criterion/new/assert.h>

#include "db/hosts.h"

TestSuite(db_hosts, .timeout = 5);

/* A fake resolver: "dual" is ::1 then 127.0.0.1, "many" has three IPv4
 * addresses, "gone" does not resolve. */
static int fake_lookup(const char *name, char (*addrs)[DB_HOST_ADDR_LEN], size_t max, size_t *n)
{
    static const char *const dual[] = {"::1", "127.0.0.1"};
    static const char *const many[] = {"10.0.0.1", "10.0.0.2", "10.0.0.3"};
    const char *const *v = NULL;
    size_t k = 0;

    if (strcmp(name, "dual") == 0) {
        v = dual;
        k = 2;
    } else if (strcmp(name, "many") == 0) {
        v = many;
        k = 3;
    } else {
        return -ENOENT;
    }
    for (*n = 0; *n < k && *n < max; (*n)++)
        strcpy(addrs[*n], v[*n]);
    return 0;
}

static db_hosts *parse_ok(const char *conninfo)
{
    db_hosts *h = (db_hosts *)1;

    cr_assert(eq(int, db_hosts_parse(conninfo, &h), 0), "%s", conninfo);
    return h;
}

Test(db_hosts, no_lookup_for_sockets_numbers_or_hostaddr)
{
    static const char *const cases[] = {
        "dbname=x",
        "host=/run/postgresql dbname=x",
        "host=127.0.0.1 port=5432",
        "host=::1",
        "host=/tmp,10.1.2.3 port=5432",
        "host=db.example hostaddr=10.0.0.9",
        "postgresql:///arbiter?host=/tmp",
    };

    unsetenv("PGHOST");
    unsetenv("PGHOSTADDR");
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        cr_expect(eq(ptr, parse_ok(cases[i]), NULL), "%s needs no lookup", cases[i]);
}

Test(db_hosts, rejects_a_bad_conninfo)
{
    db_hosts *h = NULL;

    cr_expect(eq(int, db_hosts_parse("host=", &h), 0));
    cr_expect(eq(int, db_hosts_parse("nonsense without equals", &h), -EINVAL));
    cr_expect(eq(ptr, h, NULL));
}

Test(db_hosts, every_address_of_a_name_in_order)
{
    db_hosts *h = parse_ok("host=dual port=6000 dbname=x");
    struct db_hosts_target t;

    cr_assert(ne(ptr, h, NULL));
    cr_expect(eq(str, (char *)db_hosts_name(h), "dual"));
    cr_assert(eq(int, db_hosts_resolve(h, fake_lookup, &t), 0));
    cr_expect(eq(str, t.host, "dual,dual"));
    cr_expect(eq(str, t.hostaddr, "::1,127.0.0.1"));
    cr_expect(eq(ptr, t.port, NULL), "one port serves every entry");
    cr_expect(eq(sz, t.count, 2));
    db_hosts_target_deinit(&t);
    db_hosts_free(h);
}

Test(db_hosts, lists_keep_order_and_per_host_ports)
{
    db_hosts *h = parse_ok("host=/tmp,many,10.9.9.9,dual port=1,2,3,4");
    struct db_hosts_target t;

    cr_assert(eq(int, db_hosts_resolve(h, fake_lookup, &t), 0));
    cr_expect(eq(str, t.host, "/tmp,many,many,many,10.9.9.9,dual,dual"));
    cr_expect(eq(str, t.hostaddr, ",10.0.0.1,10.0.0.2,10.0.0.3,10.9.9.9,::1,127.0.0.1"));
    cr_expect(eq(str, t.port, "1,2,2,2,3,4,4"));
    cr_expect(eq(sz, t.count, 7));
    db_hosts_target_deinit(&t);
    db_hosts_free(h);
}

Test(db_hosts, unresolvable_names_are_dropped)
{
    db_hosts *h = parse_ok("host=gone,dual");
    struct db_hosts_target t;

    cr_assert(eq(int, db_hosts_resolve(h, fake_lookup, &t), 0));
    cr_expect(eq(str, t.host, "dual,dual"));
    db_hosts_target_deinit(&t);
    db_hosts_free(h);

    h = parse_ok("host=gone");
    cr_expect(eq(int, db_hosts_resolve(h, fake_lookup, &t), -ENOENT));
    db_hosts_free(h);
}

Test(db_hosts, pghost_is_the_fallback)
{
    db_hosts *h;

    setenv("PGHOST", "dual", 1);
    h = parse_ok("dbname=x");
    unsetenv("PGHOST");
    cr_assert(ne(ptr, h, NULL));
    db_hosts_free(h);
}

Test(db_hosts, mismatched_port_list_is_left_to_libpq)
{
    cr_expect(eq(ptr, parse_ok("host=dual,many port=1,2,3"), NULL));
}
