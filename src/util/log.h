/* Leveled logging to stderr. The level is one of the two globals the
 * project allows (the other is the stop flag in main.c). */
#ifndef ARBITER_UTIL_LOG_H
#define ARBITER_UTIL_LOG_H

enum log_level { LOG_ERROR = 0, LOG_WARN = 1, LOG_INFO = 2, LOG_DEBUG = 3 };

extern enum log_level log_level_current;

/* Parses "error", "warn", "info" or "debug". Returns 0 and sets *out, or
 * -EINVAL for anything else. */
int log_level_parse(const char *s, enum log_level *out);

/* "error", "warn", "info" or "debug". */
const char *log_level_name(enum log_level level);

void log_write(enum log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define log_error(...) log_write(LOG_ERROR, __VA_ARGS__)
#define log_warn(...) log_write(LOG_WARN, __VA_ARGS__)
#define log_info(...)                                                                              \
    do {                                                                                           \
        if (log_level_current >= LOG_INFO)                                                         \
            log_write(LOG_INFO, __VA_ARGS__);                                                      \
    } while (0)
#define log_debug(...)                                                                             \
    do {                                                                                           \
        if (log_level_current >= LOG_DEBUG)                                                        \
            log_write(LOG_DEBUG, __VA_ARGS__);                                                     \
    } while (0)

#endif
