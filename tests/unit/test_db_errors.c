/* db: the one SQLSTATE → gRPC status table of DESIGN.md, case by case, and
 * the text readers (timestamptz, text[]) that every handler relies on. */
#include <errno.h>
#include <stdint.h>
#include <string.h>

#include <criterion/criterion.h>
#include <criterion/new/assert.h>

#include "db/db.h"

TestSuite(db_errors, .timeout = 5);

static const struct {
    const char *sqlstate;
    rpc_status status;
} map_cases[] = {
    {"23505", RPC_ALREADY_EXISTS},      /* unique_violation */
    {"23503", RPC_FAILED_PRECONDITION}, /* foreign_key_violation */
    {"55000", RPC_FAILED_PRECONDITION}, /* object_not_in_prerequisite_state */
    {"23502", RPC_INVALID_ARGUMENT},    /* not_null_violation */
    {"23514", RPC_INVALID_ARGUMENT},    /* check_violation */
    {"22000", RPC_INVALID_ARGUMENT},    /* data_exception */
    {"22012", RPC_INVALID_ARGUMENT},    /* division_by_zero */
    {"22P02", RPC_INVALID_ARGUMENT},    /* invalid_text_representation */
    {"22001", RPC_INVALID_ARGUMENT},    /* string_data_right_truncation */
    {"42501", RPC_PERMISSION_DENIED},   /* insufficient_privilege / RLS WITH CHECK */
    {"57014", RPC_DEADLINE_EXCEEDED},   /* query_canceled (statement_timeout) */
    {"40001", RPC_ABORTED},             /* serialization_failure */
    {"40P01", RPC_ABORTED},             /* deadlock_detected */
    {"08000", RPC_UNAVAILABLE},         /* connection_exception */
    {"08006", RPC_UNAVAILABLE},         /* connection_failure */
    {"08P01", RPC_UNAVAILABLE},         /* protocol_violation */
    {"57P01", RPC_UNAVAILABLE},         /* admin_shutdown */
    {"57P02", RPC_UNAVAILABLE},         /* crash_shutdown */
    {"57P03", RPC_UNAVAILABLE},         /* cannot_connect_now */
    {"53000", RPC_RESOURCE_EXHAUSTED},  /* insufficient_resources */
    {"53100", RPC_RESOURCE_EXHAUSTED},  /* disk_full */
    {"53300", RPC_RESOURCE_EXHAUSTED},  /* too_many_connections */
    /* anything else is INTERNAL */
    {"23000", RPC_INTERNAL}, /* integrity_constraint_violation (generic) */
    {"23P01", RPC_INTERNAL}, /* exclusion_violation: not in the table */
    {"42601", RPC_INTERNAL}, /* syntax_error */
    {"42P01", RPC_INTERNAL}, /* undefined_table */
    {"42502", RPC_INTERNAL}, /* near 42501 but not it */
    {"57000", RPC_INTERNAL}, /* operator_intervention (generic) */
    {"57P04", RPC_INTERNAL}, /* database_dropped */
    {"40002", RPC_INTERNAL}, /* transaction_integrity_constraint_violation */
    {"XX000", RPC_INTERNAL}, /* internal_error */
    {"P0001", RPC_INTERNAL}, /* raise_exception */
    {"", RPC_INTERNAL},
    {"2350", RPC_INTERNAL},
    {"235055", RPC_INTERNAL},
};

Test(db_errors, maps_every_documented_sqlstate)
{
    for (size_t i = 0; i < sizeof(map_cases) / sizeof(map_cases[0]); i++) {
        rpc_status got = db_error_to_status(map_cases[i].sqlstate);

        cr_expect(eq(int, got, map_cases[i].status), "SQLSTATE '%s': got %s, want %s",
                  map_cases[i].sqlstate, rpc_status_name(got),
                  rpc_status_name(map_cases[i].status));
    }
}

Test(db_errors, null_sqlstate_is_internal)
{
    cr_assert(eq(int, db_error_to_status(NULL), RPC_INTERNAL));
}

static const struct {
    const char *in;
    int64_t seconds;
    int32_t nanos;
} ts_cases[] = {
    {"1970-01-01 00:00:00+00", 0, 0},
    {"2026-11-26 14:36:48.489881+00", 1795703808, 489881000},
    {"2000-02-29 12:00:00+05:30", 951805800, 0},
    {"1969-12-31 23:59:59.5-01", 3599, 500000000},
    {"2024-01-01T00:00:00.000001+00", 1704067200, 1000},
    {"0001-01-01 00:00:00+00", -62135596800, 0},
    {"0001-01-01 00:00:00+00 BC", -62167219200, 0},
};

Test(db_errors, parses_timestamptz_text)
{
    for (size_t i = 0; i < sizeof(ts_cases) / sizeof(ts_cases[0]); i++) {
        int64_t s = -1;
        int32_t ns = -1;

        cr_assert(eq(int, db_parse_timestamp(ts_cases[i].in, &s, &ns), 0), "%s", ts_cases[i].in);
        cr_expect(eq(i64, s, ts_cases[i].seconds), "%s", ts_cases[i].in);
        cr_expect(eq(i32, ns, ts_cases[i].nanos), "%s", ts_cases[i].in);
    }
}

Test(db_errors, rejects_bad_timestamps)
{
    static const char *bad[] = {"",
                                "2026-11-26",
                                "2026-13-01 00:00:00+00",
                                "2026-11-26 14:36:48+0x",
                                "now",
                                "2026-11-26 14:36:48+00 AD"};
    int64_t s = 7;
    int32_t ns = 7;

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        cr_expect(eq(int, db_parse_timestamp(bad[i], &s, &ns), -EINVAL), "'%s'", bad[i]);
    cr_expect(eq(i64, s, 7));
    cr_assert(eq(int, db_parse_timestamp("infinity", &s, &ns), 0));
    cr_expect(eq(i64, s, INT64_MAX));
}

Test(db_errors, parses_text_arrays)
{
    arena a;
    char **items = NULL;
    size_t n = 99;

    arena_init(&a, 0, NULL);
    cr_assert(eq(int, db_parse_text_array("{}", &a, &items, &n), 0));
    cr_expect(eq(sz, n, 0));
    cr_assert(eq(
        int, db_parse_text_array("{a,\"b c\",\"q\\\"x\\\\y\",NULL,\"NULL\",\"\"}", &a, &items, &n),
        0));
    cr_assert(eq(sz, n, 6));
    cr_expect(eq(str, items[0], "a"));
    cr_expect(eq(str, items[1], "b c"));
    cr_expect(eq(str, items[2], "q\"x\\y"));
    cr_expect(eq(ptr, items[3], NULL), "an unquoted NULL is a NULL element");
    cr_expect(eq(str, items[4], "NULL"));
    cr_expect(eq(str, items[5], ""));
    cr_assert(eq(int, db_parse_text_array("[0:1]={x,y}", &a, &items, &n), 0));
    cr_expect(eq(sz, n, 2));
    cr_expect(eq(int, db_parse_text_array("{{a},{b}}", &a, &items, &n), -EINVAL));
    cr_expect(eq(int, db_parse_text_array("{a", &a, &items, &n), -EINVAL));
    cr_expect(eq(int, db_parse_text_array("{\"a}", &a, &items, &n), -EINVAL));
    cr_expect(eq(int, db_parse_text_array("a,b", &a, &items, &n), -EINVAL));
    arena_deinit(&a);
}
