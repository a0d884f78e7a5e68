#include "rpc/timeout.h"

#include <errno.h>
#include <stdio.h>

#define TIMEOUT_MAX_DIGITS 8
#define TIMEOUT_MAX_VALUE 99999999ULL

/* Converts |v| units to milliseconds, rounding sub-millisecond units up.
 * Returns -EINVAL for an unknown unit. */
static int unit_to_ms(char unit, uint64_t v, uint64_t *ms)
{
    switch (unit) {
    case 'H':
        *ms = v * 3600000u;
        return 0;
    case 'M':
        *ms = v * 60000u;
        return 0;
    case 'S':
        *ms = v * 1000u;
        return 0;
    case 'm':
        *ms = v;
        return 0;
    case 'u':
        *ms = (v + 999u) / 1000u;
        return 0;
    case 'n':
        *ms = (v + 999999u) / 1000000u;
        return 0;
    default:
        return -EINVAL;
    }
}

int rpc_timeout_parse(const char *s, size_t len, uint64_t *ms)
{
    uint64_t v = 0;

    /* 1-8 digits plus the unit; 8 digits keep every product in range. */
    if (!s || len < 2 || len > TIMEOUT_MAX_DIGITS + 1)
        return -EINVAL;
    for (size_t i = 0; i + 1 < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -EINVAL;
        v = v * 10 + (uint64_t)(s[i] - '0');
    }
    return unit_to_ms(s[len - 1], v, ms);
}

int rpc_timeout_format(uint64_t ms, char *out, size_t cap)
{
    static const struct {
        char unit;
        uint64_t ms;
    } units[] = {{'m', 1}, {'S', 1000}, {'M', 60000}, {'H', 3600000}};
    uint64_t v = TIMEOUT_MAX_VALUE;
    char unit = 'H';

    if (cap < TIMEOUT_MAX_DIGITS + 2)
        return -ENOBUFS;
    for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
        /* Round up so the peer never sees a shorter deadline than ours. */
        uint64_t n = ms / units[i].ms + (ms % units[i].ms != 0);
        if (n <= TIMEOUT_MAX_VALUE) {
            v = n;
            unit = units[i].unit;
            break;
        }
    }
    int n = snprintf(out, cap, "%llu%c", (unsigned long long)v, unit);
    if (n < 0 || (size_t)n >= cap)
        return -ENOBUFS;
    return n;
}
