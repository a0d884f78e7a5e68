/* verification_load: a closed-loop load driver for Verification.SaveResult
 * and Verification.GetResult through libarbiter, for bench/verification.sh.
 *
 *   verification_load SOCKET TENANT SaveResult|GetResult IDS_FILE SECONDS
 *                     CONNECTIONS STREAMS [EVIDENCE]
 *
 * h2load sends one body over and over; a SaveResult that always names the
 * same request would queue every call on that request's row lock (as it
 * should: results of one request are ordered by it), which measures the
 * lock, not the server. So this driver keeps CONNECTIONS connections with
 * STREAMS calls in flight each, and every new call names the next request
 * id of IDS_FILE (one uuid per line), round robin; SaveResult carries
 * EVIDENCE (default 20) evidence items and one method result. Prints one
 * line: calls, ok, failed, seconds, calls/s, p50 and p99 latency in ms.
 * Exits 1 when any call failed (the first error is printed), 2 on usage. */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "arbiter.h"
#include "verification.pb-c.h"

#define MAX_IDS 4096

struct body {
    uint8_t *data; /* owned */
    size_t len;
};

struct load {
    uv_loop_t loop;
    uv_timer_t timer;
    const char *path;
    arbiter_metadata md;
    struct body *bodies; /* owned, one per request id */
    size_t nbodies, next;
    arbiter_client **clients; /* owned */
    int nclients;
    bool stopping;
    size_t inflight;
    uint64_t started_ns, ended_ns, ok, failed;
    uint32_t *lat_us; /* owned */
    size_t nlat, caplat;
    char first_error[256];
};

/* One stream slot: when its call ends it starts the next on its client. */
struct slot {
    struct load *l;
    arbiter_client *c;
    uint64_t t0;
};

static void start_call(struct slot *s);

static void record(struct load *l, uint64_t us)
{
    uint32_t *p;

    if (l->nlat == l->caplat) {
        l->caplat = l->caplat ? 2 * l->caplat : 65536;
        p = realloc(l->lat_us, l->caplat * sizeof(*p));
        if (p == NULL) {
            l->caplat = l->nlat;
            return;
        }
        l->lat_us = p;
    }
    l->lat_us[l->nlat++] = us > UINT32_MAX ? UINT32_MAX : (uint32_t)us;
}

/* The last call of a stopping run has ended: close everything, so that
 * uv_run() returns. */
static void finish(struct load *l)
{
    l->ended_ns = uv_hrtime();
    for (int i = 0; i < l->nclients; i++)
        arbiter_client_close(l->clients[i]);
    uv_close((uv_handle_t *)&l->timer, NULL);
}

static void on_done(arbiter_call *call, const arbiter_result *r, void *user)
{
    struct slot *s = user;
    struct load *l = s->l;

    (void)call;
    l->inflight--;
    record(l, (uv_hrtime() - s->t0) / 1000);
    if (r->status == 0) {
        l->ok++;
    } else {
        if (l->failed++ == 0)
            snprintf(l->first_error, sizeof(l->first_error), "%s: %s",
                     arbiter_status_name(r->status), r->message);
    }
    if (!l->stopping)
        start_call(s);
    else if (l->inflight == 0)
        finish(l);
}

static void start_call(struct slot *s)
{
    struct load *l = s->l;
    const struct body *b = &l->bodies[l->next++ % l->nbodies];
    struct arbiter_call_opts o = {
        .path = l->path,
        .metadata = &l->md,
        .n_metadata = 1,
        .timeout_ms = 30000,
        .request = b->data,
        .request_len = b->len,
        .on_done = on_done,
        .user = s,
    };

    s->t0 = uv_hrtime();
    if (arbiter_call_start(s->c, &o, NULL) < 0) {
        if (l->failed++ == 0)
            snprintf(l->first_error, sizeof(l->first_error), "cannot start a call");
        return;
    }
    l->inflight++;
}

/* Time is up: the calls in flight finish, no new one starts. */
static void on_timer(uv_timer_t *t)
{
    struct load *l = t->data;

    l->stopping = true;
    if (l->inflight == 0)
        finish(l);
}

static bool pack(const ProtobufCMessage *m, struct body *out)
{
    out->len = protobuf_c_message_get_packed_size(m);
    out->data = malloc(out->len ? out->len : 1);
    if (out->data == NULL)
        return false;
    protobuf_c_message_pack(m, out->data);
    return true;
}

/* SaveResultRequest for |id| with |n| evidence items, as a client sends it. */
static bool save_result_body(char *id, int n, struct body *out)
{
    Arbiter__V1__SaveResultRequest req = ARBITER__V1__SAVE_RESULT_REQUEST__INIT;
    Arbiter__V1__VerificationResult res = ARBITER__V1__VERIFICATION_RESULT__INIT;
    Arbiter__V1__MethodResult mr = ARBITER__V1__METHOD_RESULT__INIT, *mrs[1] = {&mr};
    Arbiter__V1__Evidence *ev = calloc((size_t)n, sizeof(*ev));
    Arbiter__V1__Evidence **evp = calloc((size_t)n, sizeof(*evp));
    char(*content)[64] = calloc((size_t)n, sizeof(*content));
    char *reasoning[] = {(char *)"bench"};
    static char *sources[] = {"encyclopedia", "news", "paper", "forum", "registry"};
    bool ok = ev != NULL && evp != NULL && content != NULL;

    for (int i = 0; ok && i < n; i++) {
        arbiter__v1__evidence__init(&ev[i]);
        snprintf(content[i], sizeof(content[i]), "evidence %d for the benchmark claim", i);
        ev[i].source = sources[i % 5];
        ev[i].content = content[i];
        ev[i].strength = 0.5;
        ev[i].credibility = 0.75;
        ev[i].relevance = 0.25;
        ev[i].supports = i % 2 == 0;
        ev[i].method = (char *)"fact-check";
        evp[i] = &ev[i];
    }
    mr.method = (char *)"fact-check";
    mr.verdict = ARBITER__V1__VERDICT__VERDICT_VERIFIED_TRUE;
    mr.confidence = 0.9;
    mr.processing_time_ms = 12;
    mr.evidence_count = n;
    res.request_id = id;
    res.verdict = ARBITER__V1__VERDICT__VERDICT_VERIFIED_TRUE;
    res.confidence = 0.8;
    res.n_reasoning = 1;
    res.reasoning = reasoning;
    res.n_evidence = (size_t)n;
    res.evidence = evp;
    res.n_method_results = 1;
    res.method_results = mrs;
    res.processing_time_ms = 100;
    req.result = &res;
    ok = ok && pack(&req.base, out);
    free(content);
    free(evp);
    free(ev);
    return ok;
}

static bool get_result_body(char *id, struct body *out)
{
    Arbiter__V1__GetResultRequest req = ARBITER__V1__GET_RESULT_REQUEST__INIT;

    req.request_id = id;
    return pack(&req.base, out);
}

/* One body per line of |file|. */
static bool read_bodies(struct load *l, const char *file, bool save, int evidence)
{
    FILE *f = fopen(file, "r");
    char line[128];

    l->bodies = calloc(MAX_IDS, sizeof(*l->bodies));
    if (f == NULL || l->bodies == NULL)
        return false;
    while (l->nbodies < MAX_IDS && fgets(line, sizeof(line), f) != NULL) {
        line[strcspn(line, "\r\n")] = '\0';
        if (line[0] == '\0')
            continue;
        if (!(save ? save_result_body(line, evidence, &l->bodies[l->nbodies])
                   : get_result_body(line, &l->bodies[l->nbodies])))
            break;
        l->nbodies++;
    }
    fclose(f);
    return l->nbodies > 0;
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

    return x < y ? -1 : x > y;
}

static double pct_ms(const struct load *l, double q)
{
    size_t i = (size_t)(q * (double)l->nlat);

    if (l->nlat == 0)
        return 0;
    return l->lat_us[i < l->nlat ? i : l->nlat - 1] / 1000.0;
}

static int report(struct load *l)
{
    double secs = (double)(l->ended_ns - l->started_ns) / 1e9;

    qsort(l->lat_us, l->nlat, sizeof(*l->lat_us), cmp_u32);
    printf("calls %" PRIu64 " ok %" PRIu64 " failed %" PRIu64 " seconds %.3f rate %.1f"
           " p50_ms %.3f p99_ms %.3f\n",
           l->ok + l->failed, l->ok, l->failed, secs, (double)l->ok / secs, pct_ms(l, 0.50),
           pct_ms(l, 0.99));
    if (l->failed > 0)
        fprintf(stderr, "verification_load: %" PRIu64 " calls failed, the first: %s\n", l->failed,
                l->first_error);
    return l->failed > 0 ? 1 : 0;
}

static int run(struct load *l, const char *socket, uint64_t ms, int conns, int streams)
{
    struct slot *slots = calloc((size_t)conns * (size_t)streams, sizeof(*slots));

    l->clients = calloc((size_t)conns, sizeof(*l->clients));
    if (slots == NULL || l->clients == NULL || uv_loop_init(&l->loop) < 0)
        return 2;
    uv_timer_init(&l->loop, &l->timer);
    l->timer.data = l;
    l->started_ns = uv_hrtime();
    for (int i = 0; i < conns; i++) {
        if (arbiter_client_new(&l->loop, socket, &l->clients[i]) < 0)
            return 2;
        l->nclients++;
        for (int k = 0; k < streams; k++) {
            struct slot *s = &slots[i * streams + k];

            s->l = l;
            s->c = l->clients[i];
            start_call(s);
        }
    }
    uv_timer_start(&l->timer, on_timer, ms, 0);
    uv_run(&l->loop, UV_RUN_DEFAULT);
    free(slots);
    return report(l);
}

/* A decimal argument within [lo, hi], or -1. */
static long arg_long(const char *s, long lo, long hi)
{
    char *end;
    long v;

    errno = 0;
    v = strtol(s, &end, 10);
    return errno != 0 || end == s || *end != '\0' || v < lo || v > hi ? -1 : v;
}

int main(int argc, char **argv)
{
    struct load l = {.md = {.key = "x-tenant-id"}};
    long secs, conns, streams, evidence;
    bool save;
    int rv;

    if (argc < 8 || argc > 9) {
        fprintf(stderr,
                "usage: %s SOCKET TENANT SaveResult|GetResult IDS_FILE SECONDS"
                " CONNECTIONS STREAMS [EVIDENCE]\n",
                argv[0]);
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    save = strcmp(argv[3], "SaveResult") == 0;
    secs = arg_long(argv[5], 1, 3600);
    conns = arg_long(argv[6], 1, 1000);
    streams = arg_long(argv[7], 1, 1000);
    evidence = argc == 9 ? arg_long(argv[8], 0, 1000) : 20;
    if ((!save && strcmp(argv[3], "GetResult") != 0) || secs < 0 || conns < 0 || streams < 0 ||
        evidence < 0) {
        fprintf(stderr, "verification_load: bad argument\n");
        return 2;
    }
    l.path = save ? "/arbiter.v1.Verification/SaveResult" : "/arbiter.v1.Verification/GetResult";
    l.md.value = argv[2];
    if (!read_bodies(&l, argv[4], save, (int)evidence)) {
        fprintf(stderr, "verification_load: no request ids in %s\n", argv[4]);
        return 2;
    }
    rv = run(&l, argv[1], (uint64_t)secs * 1000, (int)conns, (int)streams);
    for (size_t i = 0; i < l.nbodies; i++)
        free(l.bodies[i].data);
    free(l.bodies);
    free(l.clients);
    free(l.lat_us);
    uv_loop_close(&l.loop);
    return rv;
}
