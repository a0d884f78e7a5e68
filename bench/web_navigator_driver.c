/* Closed-loop load for bench/web_navigator.sh: WebNavigator calls through
 * libarbiter (C, libuv, nghttp2: as light a client as h2load), with a
 * request body chosen per call, which h2load cannot do.
 *
 *   web_navigator_driver SOCKET TENANT CONNECTIONS STREAMS LIMIT MODE ARGS...
 *     LIMIT  "10s" (run for 10 seconds) or "5000" (that many calls)
 *     MODE   acquire DOMAINS MAX_REQUESTS WINDOW_MS
 *              AcquireRateLimit; the domain of each call is "<n>", n uniform
 *              in 1..DOMAINS (1: one hot domain)
 *            claim TRAVERSAL_ID MAX LEASE_MS
 *              ClaimNodes of one traversal
 *
 * CONNECTIONS x STREAMS calls are kept in flight; each answer starts the
 * next call on its connection. Like h2load, calls carry no grpc-timeout
 * (a deadline costs the server a timer per call). Prints one line:
 *   calls=N ok=N failed=N seconds=S rate=R p50_ms=X p99_ms=Y allowed=A nodes=K
 * and the first failure's status on stderr. Exit 0 when no call failed. */
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "arbiter.h"
#include "web_navigator.pb-c.h"

#define MAX_LATENCIES (1u << 22)

struct load {
    uv_loop_t loop;
    arbiter_client **clients; /* owned */
    int nclients;
    const char *tenant; /* borrowed (argv) */
    const char *path;
    bool claim;
    /* Pre-serialized request bodies; acquire picks one per call. */
    uint8_t **bodies; /* owned */
    size_t *lens;     /* owned */
    uint32_t nbodies;
    uint64_t rng;
    /* Limits: a deadline (ns, 0: none) or a number of calls. */
    uint64_t end_ns, max_calls;
    uint64_t started, ok, failed, allowed, nodes, t0;
    int inflight;
    uint32_t *lat_us; /* owned; the first MAX_LATENCIES calls */
    uint64_t nlat;
    int first_error;
};

/* One in-flight slot: its connection and when its call started. */
struct slot {
    struct load *l;
    int client;
    uint64_t t0;
};

static uint64_t next_random(struct load *l)
{
    l->rng ^= l->rng << 13; /* xorshift64 */
    l->rng ^= l->rng >> 7;
    l->rng ^= l->rng << 17;
    return l->rng;
}

static void start_call(struct slot *s);
static void report(struct load *l);

static void count_answer(struct load *l, const arbiter_result *r)
{
    if (l->claim) {
        Arbiter__V1__ClaimNodesResponse *m =
            arbiter__v1__claim_nodes_response__unpack(NULL, r->response_len, r->response);

        if (m != NULL)
            l->nodes += m->n_nodes;
        arbiter__v1__claim_nodes_response__free_unpacked(m, NULL);
        return;
    }
    Arbiter__V1__AcquireRateLimitResponse *m =
        arbiter__v1__acquire_rate_limit_response__unpack(NULL, r->response_len, r->response);

    if (m != NULL && m->allowed)
        l->allowed++;
    arbiter__v1__acquire_rate_limit_response__free_unpacked(m, NULL);
}

static void on_done(arbiter_call *call, const arbiter_result *r, void *user)
{
    struct slot *s = user;
    struct load *l = s->l;
    uint64_t now = uv_hrtime();

    (void)call;
    if (l->nlat < MAX_LATENCIES)
        l->lat_us[l->nlat++] = (uint32_t)((now - s->t0) / 1000);
    if (r->status == 0) {
        l->ok++;
        count_answer(l, r);
    } else {
        if (l->failed++ == 0) {
            l->first_error = r->status;
            fprintf(stderr, "first failure: %s: %s\n", arbiter_status_name(r->status), r->message);
        }
    }
    l->inflight--;
    if ((l->end_ns == 0 || now < l->end_ns) && (l->max_calls == 0 || l->started < l->max_calls)) {
        start_call(s);
        return;
    }
    if (l->inflight == 0) { /* the last answer: report, then let the loop end */
        report(l);
        for (int c = 0; c < l->nclients; c++)
            arbiter_client_close(l->clients[c]);
    }
}

static void start_call(struct slot *s)
{
    struct load *l = s->l;
    uint32_t i = l->nbodies > 1 ? (uint32_t)(next_random(l) % l->nbodies) : 0;
    arbiter_metadata md = {.key = "x-tenant-id", .value = l->tenant};
    struct arbiter_call_opts o = {
        .path = l->path,
        .metadata = &md,
        .n_metadata = 1,
        .timeout_ms = 0, /* as h2load: no grpc-timeout, no deadline timers */
        .request = l->bodies[i],
        .request_len = l->lens[i],
        .on_done = on_done,
        .user = s,
    };

    s->t0 = uv_hrtime();
    l->started++;
    if (arbiter_call_start(l->clients[s->client], &o, NULL) != 0) {
        l->failed++;
        fprintf(stderr, "cannot start a call\n");
        return;
    }
    l->inflight++;
}

static int add_body(struct load *l, const ProtobufCMessage *m)
{
    size_t n = protobuf_c_message_get_packed_size(m);

    l->bodies[l->nbodies] = malloc(n + 1);
    if (l->bodies[l->nbodies] == NULL)
        return -1;
    l->lens[l->nbodies] = protobuf_c_message_pack(m, l->bodies[l->nbodies]);
    l->nbodies++;
    return 0;
}

/* The request bodies of MODE ARGS... (argv from MODE on). */
static int make_bodies(struct load *l, char **argv, int argc)
{
    uint32_t n = 1;

    if (argc != 4)
        return -1;
    l->claim = strcmp(argv[0], "claim") == 0;
    if (!l->claim && strcmp(argv[0], "acquire") != 0)
        return -1;
    if (!l->claim)
        n = (uint32_t)strtoul(argv[1], NULL, 10);
    if (n == 0 || n > 1000000)
        return -1;
    l->bodies = calloc(n, sizeof(*l->bodies));
    l->lens = calloc(n, sizeof(*l->lens));
    if (l->bodies == NULL || l->lens == NULL)
        return -1;
    if (l->claim) {
        Arbiter__V1__ClaimNodesRequest r = ARBITER__V1__CLAIM_NODES_REQUEST__INIT;

        l->path = "/arbiter.v1.WebNavigator/ClaimNodes";
        r.traversal_id = argv[1];
        r.max = (int32_t)strtol(argv[2], NULL, 10);
        r.lease_ms = strtoll(argv[3], NULL, 10);
        return add_body(l, &r.base);
    }
    l->path = "/arbiter.v1.WebNavigator/AcquireRateLimit";
    for (uint32_t i = 1; i <= n; i++) {
        Arbiter__V1__AcquireRateLimitRequest r = ARBITER__V1__ACQUIRE_RATE_LIMIT_REQUEST__INIT;
        char domain[16];

        snprintf(domain, sizeof(domain), "%u", i);
        r.domain = domain;
        r.max_requests = (int32_t)strtol(argv[2], NULL, 10);
        r.window_ms = strtoll(argv[3], NULL, 10);
        if (add_body(l, &r.base) != 0)
            return -1;
    }
    return 0;
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

    return x < y ? -1 : x > y;
}

static void report(struct load *l)
{
    double secs = (double)(uv_hrtime() - l->t0) / 1e9;
    double p50 = 0, p99 = 0;

    if (l->nlat > 0) {
        qsort(l->lat_us, l->nlat, sizeof(*l->lat_us), cmp_u32);
        p50 = l->lat_us[(l->nlat - 1) / 2] / 1000.0;
        p99 = l->lat_us[(l->nlat - 1) * 99 / 100] / 1000.0;
    }
    printf("calls=%llu ok=%llu failed=%llu seconds=%.3f rate=%.1f p50_ms=%.3f p99_ms=%.3f"
           " allowed=%llu nodes=%llu\n",
           (unsigned long long)(l->ok + l->failed), (unsigned long long)l->ok,
           (unsigned long long)l->failed, secs, (double)(l->ok + l->failed) / secs, p50, p99,
           (unsigned long long)l->allowed, (unsigned long long)l->nodes);
}

static int run(struct load *l, const char *socket, int streams)
{
    int nslots = l->nclients * streams;
    struct slot *slots = calloc((size_t)nslots, sizeof(*slots));

    if (slots == NULL)
        return -1;
    for (int c = 0; c < l->nclients; c++)
        if (arbiter_client_new(&l->loop, socket, &l->clients[c]) != 0)
            return -1;
    l->t0 = uv_hrtime();
    if (l->end_ns != 0)
        l->end_ns += l->t0;
    for (int i = 0; i < nslots && (l->max_calls == 0 || l->started < l->max_calls); i++) {
        slots[i] = (struct slot){.l = l, .client = i % l->nclients};
        start_call(&slots[i]);
    }
    if (l->inflight == 0) { /* nothing could start */
        report(l);
        for (int c = 0; c < l->nclients; c++)
            arbiter_client_close(l->clients[c]);
    }
    uv_run(&l->loop, UV_RUN_DEFAULT); /* until the last answer closed the clients */
    free(slots);
    return 0;
}

int main(int argc, char **argv)
{
    struct load l = {.rng = 0x9e3779b97f4a7c15ull};
    int streams, rv;
    size_t limit_len;

    if (argc < 7) {
        fprintf(stderr, "usage: %s SOCKET TENANT CONNECTIONS STREAMS LIMIT MODE ARGS...\n",
                argv[0]);
        return 2;
    }
    l.tenant = argv[2];
    l.nclients = atoi(argv[3]);
    streams = atoi(argv[4]);
    limit_len = strlen(argv[5]);
    if (limit_len > 0 && argv[5][limit_len - 1] == 's')
        l.end_ns = strtoull(argv[5], NULL, 10) * 1000000000ull;
    else
        l.max_calls = strtoull(argv[5], NULL, 10);
    l.clients = calloc((size_t)(l.nclients > 0 ? l.nclients : 1), sizeof(*l.clients));
    l.lat_us = malloc(MAX_LATENCIES * sizeof(*l.lat_us));
    if (l.nclients < 1 || streams < 1 || (l.end_ns == 0 && l.max_calls == 0) || !l.clients ||
        !l.lat_us || make_bodies(&l, argv + 6, argc - 6) != 0) {
        fprintf(stderr, "web_navigator_driver: bad arguments\n");
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    uv_loop_init(&l.loop);
    rv = run(&l, argv[1], streams);
    uv_loop_close(&l.loop);
    for (uint32_t i = 0; i < l.nbodies; i++)
        free(l.bodies[i]);
    free(l.bodies);
    free(l.lens);
    free(l.lat_us);
    free(l.clients);
    return rv == 0 && l.failed == 0 ? 0 : 1;
}
