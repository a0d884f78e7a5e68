/* Text-format readers for column types that need more than strtoll. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db/db.h"

/* Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant). */
static int64_t days_from_civil(int64_t y, unsigned m, unsigned d)
{
    int64_t era;
    unsigned yoe, doy, doe;

    y -= m <= 2;
    era = (y >= 0 ? y : y - 399) / 400;
    yoe = (unsigned)(y - era * 400);
    doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (int64_t)doe - 719468;
}

/* The proleptic Gregorian date of day |z| since 1970-01-01 (H. Hinnant). */
static void civil_from_days(int64_t z, int64_t *y, unsigned *m, unsigned *d)
{
    int64_t era;
    unsigned doe, yoe, doy, mp;

    z += 719468;
    era = (z >= 0 ? z : z - 146096) / 146097;
    doe = (unsigned)(z - era * 146097);
    yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    mp = (5 * doy + 2) / 153;
    *d = doy - (153 * mp + 2) / 5 + 1;
    *m = mp < 10 ? mp + 3 : mp - 9;
    *y = (int64_t)yoe + era * 400 + (*m <= 2);
}

int db_format_timestamp(int64_t seconds, int32_t nanos, char *buf, size_t len)
{
    int64_t days = seconds / 86400, rem = seconds % 86400, y;
    unsigned m, d;
    int n;

    if (nanos < 0 || nanos > 999999999)
        return -EINVAL;
    if (rem < 0) {
        rem += 86400;
        days--;
    }
    civil_from_days(days, &y, &m, &d);
    if (y < 1 || y > 9999)
        return -EINVAL; /* the range protobuf's Timestamp allows */
    n = snprintf(buf, len, "%04lld-%02u-%02uT%02d:%02d:%02d", (long long)y, m, d, (int)(rem / 3600),
                 (int)(rem / 60 % 60), (int)(rem % 60));
    if (n > 0 && nanos > 0 && (size_t)n < len) {
        char frac[11];
        int k = snprintf(frac, sizeof(frac), ".%09d", (int)nanos);

        while (k > 2 && frac[k - 1] == '0')
            k--;
        n += snprintf(buf + n, len - (size_t)n, "%.*s", k, frac);
    }
    if (n > 0 && (size_t)n < len)
        n += snprintf(buf + n, len - (size_t)n, "Z");
    return n > 0 && (size_t)n < len ? n : -ENOSPC;
}

/* Reads exactly |n| digits (n == 0: one or more) into |out|. */
static const char *digits(const char *s, int n, int64_t *out)
{
    int64_t v = 0;
    int i = 0;

    while (s[i] >= '0' && s[i] <= '9' && (n == 0 || i < n) && i < 12) {
        v = v * 10 + (s[i] - '0');
        i++;
    }
    if (i == 0 || (n != 0 && i != n))
        return NULL;
    *out = v;
    return s + i;
}

/* Fraction ".123456" → nanoseconds; |s| points after the dot. */
static const char *fraction(const char *s, int32_t *nanos)
{
    int32_t v = 0;
    int i = 0;

    while (s[i] >= '0' && s[i] <= '9') {
        if (i < 9)
            v = v * 10 + (s[i] - '0');
        i++;
    }
    if (i == 0)
        return NULL;
    for (int k = i; k < 9; k++)
        v *= 10;
    *nanos = v;
    return s + i;
}

/* "+HH", "+HH:MM" or "+HH:MM:SS" → seconds east of UTC. */
static const char *utc_offset(const char *s, int64_t *off)
{
    int64_t h, m = 0, sec = 0;
    int sign;

    if (*s != '+' && *s != '-')
        return NULL;
    sign = *s == '-' ? -1 : 1;
    s = digits(s + 1, 2, &h);
    if (s != NULL && *s == ':')
        s = digits(s + 1, 2, &m);
    if (s != NULL && *s == ':')
        s = digits(s + 1, 2, &sec);
    if (s == NULL)
        return NULL;
    *off = sign * (h * 3600 + m * 60 + sec);
    return s;
}

int db_parse_timestamp(const char *s, int64_t *seconds, int32_t *nanos)
{
    int64_t y, mo, d, h, mi, se, off = 0;
    int32_t ns = 0;
    const char *p = s;

    if (strcmp(s, "infinity") == 0 || strcmp(s, "-infinity") == 0) {
        *seconds = s[0] == '-' ? INT64_MIN : INT64_MAX;
        *nanos = 0;
        return 0;
    }
    p = digits(p, 0, &y);
    if (p == NULL || *p++ != '-' || (p = digits(p, 2, &mo)) == NULL || *p++ != '-' ||
        (p = digits(p, 2, &d)) == NULL || (*p != ' ' && *p != 'T'))
        return -EINVAL;
    p++;
    if ((p = digits(p, 2, &h)) == NULL || *p++ != ':' || (p = digits(p, 2, &mi)) == NULL ||
        *p++ != ':' || (p = digits(p, 2, &se)) == NULL)
        return -EINVAL;
    if (*p == '.' && (p = fraction(p + 1, &ns)) == NULL)
        return -EINVAL;
    if (*p == 'Z')
        p++;
    else if ((*p == '+' || *p == '-') && (p = utc_offset(p, &off)) == NULL)
        return -EINVAL;
    if (strcmp(p, " BC") == 0)
        y = 1 - y; /* 1 BC is year 0 */
    else if (*p != '\0')
        return -EINVAL;
    if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 24 || mi > 59 || se > 60)
        return -EINVAL;
    *seconds =
        days_from_civil(y, (unsigned)mo, (unsigned)d) * 86400 + h * 3600 + mi * 60 + se - off;
    *nanos = ns;
    return 0;
}

/* Scans one element starting at |p| into |out| (arena copy; NULL for an
 * unquoted NULL). Returns the position after it, or NULL when malformed or
 * out of memory (|*err| set). */
static const char *array_elem(const char *p, arena *a, char **out, int *err)
{
    size_t len = 0;
    const char *q;
    char *buf;

    if (*p == '"') {
        for (q = p + 1; *q && *q != '"'; q++, len++)
            if (*q == '\\' && *++q == '\0')
                break;
        if (*q != '"')
            goto bad;
        buf = arena_alloc(a, len + 1);
        if (buf == NULL)
            goto oom;
        len = 0;
        for (q = p + 1; *q != '"'; q++)
            buf[len++] = *q == '\\' ? *++q : *q;
        *out = buf;
        return q + 1;
    }
    for (q = p; *q && *q != ',' && *q != '}'; q++)
        if (*q == '{' || *q == '"' || *q == '\\')
            goto bad;
    if (q == p)
        goto bad;
    if (q - p == 4 && strncasecmp(p, "NULL", 4) == 0) {
        *out = NULL;
        return q;
    }
    *out = arena_strndup(a, p, (size_t)(q - p));
    if (*out == NULL)
        goto oom;
    return q;
bad:
    *err = -EINVAL;
    return NULL;
oom:
    *err = -ENOMEM;
    return NULL;
}

int db_parse_text_array(const char *s, arena *a, char ***items, size_t *n)
{
    size_t cap = 1, count = 0;
    char **v;
    int err = 0;
    const char *p;

    if (s[0] == '[') { /* "[0:1]={...}": non-default bounds */
        s = strchr(s, '=');
        if (s == NULL)
            return -EINVAL;
        s++;
    }
    if (s[0] != '{')
        return -EINVAL;
    for (p = s; *p; p++)
        cap += *p == ',';
    v = arena_alloc(a, cap * sizeof(char *));
    if (v == NULL)
        return -ENOMEM;
    p = s + 1;
    if (*p == '}') {
        p++;
    } else {
        for (;;) {
            if (count >= cap)
                return -EINVAL;
            p = array_elem(p, a, &v[count++], &err);
            if (p == NULL)
                return err;
            if (*p == '}') {
                p++;
                break;
            }
            if (*p++ != ',')
                return -EINVAL;
        }
    }
    if (*p != '\0')
        return -EINVAL;
    *items = v;
    *n = count;
    return 0;
}

size_t db_array_quote(const char *v, char *out)
{
    size_t n = 2;

    if (v == NULL) {
        if (out != NULL)
            memcpy(out, "NULL", 4);
        return 4;
    }
    for (const char *s = v; *s; s++)
        n += (*s == '"' || *s == '\\') ? 2 : 1;
    if (out == NULL)
        return n;
    *out++ = '"';
    for (; *v; v++) {
        if (*v == '"' || *v == '\\')
            *out++ = '\\';
        *out++ = *v;
    }
    *out = '"';
    return n;
}
