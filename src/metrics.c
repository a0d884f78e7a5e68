#include "metrics.h"

#include <stdlib.h>

#include "db/pool.h"
#include "util/status.h"
#include "util/strbuf.h"

#define METRICS_MAX (16u << 20)

static void render_calls(strbuf *t, const struct rpc_stats *s, double uptime)
{
    strbuf_puts(t, "# HELP arbiterd_calls_total gRPC calls finished, by final status.\n"
                   "# TYPE arbiterd_calls_total counter\n");
    for (int i = 0; i < RPC_STATUS_COUNT; i++)
        strbuf_printf(t, "arbiterd_calls_total{code=\"%s\"} %llu\n",
                      rpc_status_name((rpc_status)i), (unsigned long long)s->calls_by_status[i]);
    strbuf_printf(t,
                  "# HELP arbiterd_calls_in_flight gRPC calls running now.\n"
                  "# TYPE arbiterd_calls_in_flight gauge\narbiterd_calls_in_flight %u\n"
                  "# HELP arbiterd_connections_open HTTP/2 connections open now.\n"
                  "# TYPE arbiterd_connections_open gauge\narbiterd_connections_open %u\n"
                  "# HELP arbiterd_uptime_seconds Seconds since start.\n"
                  "# TYPE arbiterd_uptime_seconds gauge\narbiterd_uptime_seconds %.3f\n",
                  (unsigned)s->calls_in_flight, (unsigned)s->open_connections, uptime);
}

static void render_pool_counters(strbuf *t, const struct db_pool_stats *p)
{
    const struct {
        const char *name, *help;
        uint64_t v;
    } c[] = {
        {"acquired", "Connections handed to calls.", p->acquired},
        {"acquire_timeouts", "Calls that waited too long for a connection.", p->acquire_timeouts},
        {"queue_full_rejections", "Calls refused because the wait queue was full.",
         p->queue_full_rejections},
        {"connect_errors", "Failed connection attempts.", p->connect_errors},
        {"reconnects", "Connections replaced after a failure.", p->reconnects},
    };
    for (size_t i = 0; i < sizeof(c) / sizeof(c[0]); i++)
        strbuf_printf(t,
                      "# HELP arbiterd_pool_%s_total %s\n# TYPE arbiterd_pool_%s_total counter\n"
                      "arbiterd_pool_%s_total %llu\n",
                      c[i].name, c[i].help, c[i].name, c[i].name, (unsigned long long)c[i].v);
    strbuf_puts(t, "# HELP arbiterd_pool_errors_total Database errors by SQLSTATE class.\n"
                   "# TYPE arbiterd_pool_errors_total counter\n");
    for (uint32_t i = 0; i < p->n_error_classes && i < 32; i++)
        strbuf_printf(t, "arbiterd_pool_errors_total{class=\"%.2s\"} %llu\n",
                      p->errors_by_class[i].sqlclass,
                      (unsigned long long)p->errors_by_class[i].count);
}

static void render_pool(strbuf *t, const struct db_pool *pool)
{
    struct db_pool_stats p;

    if (!pool)
        return;
    db_pool_get_stats(pool, &p);
    strbuf_printf(
        t,
        "# HELP arbiterd_pool_connections Pool connections by state.\n"
        "# TYPE arbiterd_pool_connections gauge\n"
        "arbiterd_pool_connections{state=\"idle\"} %u\n"
        "arbiterd_pool_connections{state=\"busy\"} %u\n"
        "arbiterd_pool_connections{state=\"connecting\"} %u\n"
        "# TYPE arbiterd_pool_min gauge\narbiterd_pool_min %u\n"
        "# TYPE arbiterd_pool_max gauge\narbiterd_pool_max %u\n"
        "# HELP arbiterd_pool_waiting Calls waiting for a connection.\n"
        "# TYPE arbiterd_pool_waiting gauge\narbiterd_pool_waiting %u\n"
        "# TYPE arbiterd_pool_peak_waiting gauge\narbiterd_pool_peak_waiting %u\n"
        "# TYPE arbiterd_pool_utilization_percent gauge\n"
        "arbiterd_pool_utilization_percent %.1f\n"
        "# TYPE arbiterd_pool_reachable gauge\narbiterd_pool_reachable %d\n"
        "# HELP arbiterd_pool_acquire_wait_ms Time calls waited for a connection.\n"
        "# TYPE arbiterd_pool_acquire_wait_ms summary\n"
        "arbiterd_pool_acquire_wait_ms{quantile=\"0.5\"} %.3f\n"
        "arbiterd_pool_acquire_wait_ms{quantile=\"0.95\"} %.3f\n"
        "arbiterd_pool_acquire_wait_ms{quantile=\"0.99\"} %.3f\n",
        (unsigned)p.idle, (unsigned)p.busy, (unsigned)p.connecting, (unsigned)p.min,
        (unsigned)p.max, (unsigned)p.waiting, (unsigned)p.peak_waiting, p.utilization_percent,
        p.reachable ? 1 : 0, p.acquire_wait_p50_ms, p.acquire_wait_p95_ms, p.acquire_wait_p99_ms);
    render_pool_counters(t, &p);
}

/* An info metric: which vector functions the database has; the label is
 * the database's own description, less what a label value cannot hold. */
char *metrics_render(const struct rpc_stats *calls, double uptime_seconds,
                     const struct db_pool *pool, svc_env *env, size_t *len)
{
    size_t n;
    const struct svc_service *const *all = svc_services(&n);
    strbuf t;

    strbuf_init(&t, METRICS_MAX, NULL);
    render_calls(&t, calls, uptime_seconds);
    render_pool(&t, pool);
    for (size_t i = 0; env != NULL && i < n; i++)
        if (all[i]->metrics)
            all[i]->metrics(env, &t);
    return strbuf_take(&t, len);
}
