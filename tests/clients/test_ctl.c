/* arbiterctl's request builder and JSON printer (clients/c/ctl.h), without
 * a server: argument syntax, type parsing and its errors, and the proto3
 * JSON mapping of the output. */
#include <errno.h>
#include <math.h>
#include <string.h>

#include <criterion/criterion.h>
#include <criterion/new/assert.h>

#include "admin.pb-c.h"
#include "agent_registry.pb-c.h"
#include "ctl.h"
#include "health.pb-c.h"
#include "testing.pb-c.h"

static arena a;
static char err[512];

static void setup(void)
{
    arena_init(&a, 0, NULL);
    err[0] = '\0';
}

static void teardown(void)
{
    arena_deinit(&a);
}

TestSuite(ctl, .init = setup, .fini = teardown, .timeout = 10);

static ProtobufCMessage *build(const ProtobufCMessageDescriptor *d, const char *const *args,
                               int *rv)
{
    ProtobufCMessage *m = ctl_msg_new(d, &a);

    *rv = 0;
    for (size_t i = 0; args[i] && *rv == 0; i++)
        *rv = ctl_msg_assign(m, args[i], &a, err, sizeof err);
    return m;
}

/* The JSON text of |m| (json-c's plain form), copied into the arena. */
static const char *json_of(const ProtobufCMessage *m)
{
    struct json_object *j = ctl_msg_to_json(m);
    const char *s =
        arena_strdup(&a, json_object_to_json_string_ext(j, JSON_C_TO_STRING_PLAIN |
                                                               JSON_C_TO_STRING_NOSLASHESCAPE));

    json_object_put(j);
    return s;
}

Test(ctl, resolves_short_full_and_path_names)
{
    const ProtobufCServiceDescriptor *s;
    const ProtobufCMethodDescriptor *m;
    const char *names[] = {"AgentRegistry.GetAgent", "arbiter.v1.AgentRegistry.GetAgent",
                           "/arbiter.v1.AgentRegistry/GetAgent",
                           "arbiter.v1.AgentRegistry/GetAgent"};

    for (size_t i = 0; i < 4; i++) {
        cr_assert(eq(int, ctl_resolve_method(names[i], &s, &m), 0), "%s", names[i]);
        cr_assert(eq(str, (char *)s->name, "arbiter.v1.AgentRegistry"));
        cr_assert(eq(str, (char *)m->name, "GetAgent"));
    }
    cr_assert(eq(int, ctl_resolve_method("grpc.health.v1.Health.Check", &s, &m), 0));
    cr_assert(eq(ptr, (void *)s, (void *)&grpc__health__v1__health__descriptor));
    cr_assert(eq(int, ctl_resolve_method("Admin.ListTenants", &s, &m), 0));
    cr_assert(eq(int, ctl_resolve_method("Nope.GetAgent", &s, &m), -ENOENT));
    cr_assert(eq(int, ctl_resolve_method("AgentRegistry.Nope", &s, &m), -ESRCH));
    cr_assert(eq(int, ctl_resolve_method("AgentRegistry", &s, &m), -EINVAL));
    cr_assert(eq(int, ctl_resolve_method("AgentRegistry.", &s, &m), -EINVAL));
}

Test(ctl, dotted_paths_build_nested_messages_and_repeat)
{
    const char *args[] = {"agent.name=a1",
                          "agent.capabilities.languages=c",
                          "agent.capabilities.languages=python",
                          "agent.load.capacity=7",
                          "agent.performance.task_count=-9000000000",
                          NULL};
    int rv;
    Arbiter__V1__RegisterAgentRequest *r = (Arbiter__V1__RegisterAgentRequest *)build(
        &arbiter__v1__register_agent_request__descriptor, args, &rv);

    cr_assert(eq(int, rv, 0), "%s", err);
    cr_assert(eq(str, r->agent->name, "a1"));
    cr_assert(eq(sz, r->agent->capabilities->n_languages, 2));
    cr_assert(eq(str, r->agent->capabilities->languages[1], "python"));
    cr_assert(eq(i32, r->agent->load->capacity, 7));
    cr_assert(eq(i64, r->agent->performance->task_count, -9000000000LL));
    cr_assert(eq(ptr, r->agent->registered_at, NULL), "untouched messages stay unset");
}

Test(ctl, packs_what_grpc_expects)
{
    const char *args[] = {"agent.name=a1", "agent.capabilities.languages=c", NULL};
    uint8_t buf[256];
    size_t n;
    int rv;
    ProtobufCMessage *m = build(&arbiter__v1__register_agent_request__descriptor, args, &rv);
    Arbiter__V1__RegisterAgentRequest *back;

    cr_assert(eq(int, rv, 0));
    n = protobuf_c_message_pack(m, buf);
    back = arbiter__v1__register_agent_request__unpack(NULL, n, buf);
    cr_assert(ne(ptr, back, NULL));
    cr_assert(eq(str, back->agent->name, "a1"));
    cr_assert(eq(str, back->agent->capabilities->languages[0], "c"));
    arbiter__v1__register_agent_request__free_unpacked(back, NULL);
}

Test(ctl, scalar_types_parse_and_range_check)
{
    struct {
        const char *arg;
        int rv;
    } cases[] = {
        {"active_tasks_delta=-5", 0},
        {"active_tasks_delta=2147483647", 0},
        {"active_tasks_delta=2147483648", -EINVAL},
        {"active_tasks_delta=12abc", -EINVAL},
        {"active_tasks_delta=", -EINVAL},
        {"agent_id=anything at all", 0},
        {"agent_idd=x", -ENOENT},
        {"agentId=camel", 0},
        {"agent_id.sub=x", -EINVAL},
        {"agent_id[0]=x", -EINVAL},
        {"no equals sign", -EINVAL},
        {"=x", -EINVAL},
    };

    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        ProtobufCMessage *m = ctl_msg_new(&arbiter__v1__update_load_request__descriptor, &a);

        cr_assert(eq(int, ctl_msg_assign(m, cases[i].arg, &a, err, sizeof err), cases[i].rv),
                  "%s: %s", cases[i].arg, err);
    }
}

Test(ctl, bools_doubles_and_int64)
{
    const char *args[] = {"success=true", "quality_score=0.25", "latency_ms=1e3",
                          "tokens_used=9223372036854775807", NULL};
    int rv;
    Arbiter__V1__UpdatePerformanceRequest *r = (Arbiter__V1__UpdatePerformanceRequest *)build(
        &arbiter__v1__update_performance_request__descriptor, args, &rv);

    cr_assert(eq(int, rv, 0), "%s", err);
    cr_assert(eq(int, r->success, 1));
    cr_assert(eq(dbl, r->quality_score, 0.25));
    cr_assert(eq(dbl, r->latency_ms, 1000.0));
    cr_assert(eq(i64, r->tokens_used, INT64_MAX));
    cr_assert(eq(int, ctl_msg_assign(&r->base, "success=maybe", &a, err, sizeof err), -EINVAL));
    cr_assert(eq(int, ctl_msg_assign(&r->base, "success=0", &a, err, sizeof err), 0));
    cr_assert(eq(int, r->success, 0));
    cr_assert(eq(int,
                 ctl_msg_assign(&r->base, "tokens_used=9223372036854775808", &a, err, sizeof err),
                 -EINVAL));
}

Test(ctl, enums_by_name_or_number)
{
    Arbiter__V1__DbProbeRequest *r =
        (Arbiter__V1__DbProbeRequest *)ctl_msg_new(&arbiter__v1__db_probe_request__descriptor, &a);

    cr_assert(eq(int, ctl_msg_assign(&r->base, "kind=SLEEP", &a, err, sizeof err), 0));
    cr_assert(eq(int, r->kind, ARBITER__V1__DB_PROBE_REQUEST__KIND__SLEEP));
    cr_assert(eq(int, ctl_msg_assign(&r->base, "kind=4", &a, err, sizeof err), 0));
    cr_assert(eq(int, r->kind, 4));
    cr_assert(eq(int, ctl_msg_assign(&r->base, "kind=NAPPING", &a, err, sizeof err), -EINVAL));
}

Test(ctl, bytes_are_base64)
{
    Arbiter__V1__EchoRequest *r =
        (Arbiter__V1__EchoRequest *)ctl_msg_new(&arbiter__v1__echo_request__descriptor, &a);

    cr_assert(eq(int, ctl_msg_assign(&r->base, "payload=AAEC/w", &a, err, sizeof err), 0));
    cr_assert(eq(sz, r->payload.len, 4));
    cr_assert(eq(int, memcmp(r->payload.data, "\x00\x01\x02\xff", 4), 0));
    cr_assert(
        eq(int, ctl_msg_assign(&r->base, "payload=not base64!", &a, err, sizeof err), -EINVAL));
}

Test(ctl, wrappers_take_their_plain_value)
{
    const char *args[] = {"min_success_rate=0.5", "max_utilization_percent.value=80", NULL};
    int rv;
    Arbiter__V1__QueryAgentsByCapabilityRequest *r =
        (Arbiter__V1__QueryAgentsByCapabilityRequest *)build(
            &arbiter__v1__query_agents_by_capability_request__descriptor, args, &rv);

    cr_assert(eq(int, rv, 0), "%s", err);
    cr_assert(eq(dbl, r->min_success_rate->value, 0.5));
    cr_assert(eq(dbl, r->max_utilization_percent->value, 80.0));
    cr_assert(eq(str, (char *)json_of(&r->base),
                 "{\"task_type\":\"\",\"languages\":[],\"specializations\":[],"
                 "\"max_utilization_percent\":80,\"min_success_rate\":0.5,\"page_size\":0}"));
    /* A bad value leaves the wrapper unset. */
    r = (Arbiter__V1__QueryAgentsByCapabilityRequest *)ctl_msg_new(
        &arbiter__v1__query_agents_by_capability_request__descriptor, &a);
    cr_assert(
        eq(int, ctl_msg_assign(&r->base, "min_success_rate=high", &a, err, sizeof err), -EINVAL));
    cr_assert(eq(ptr, r->min_success_rate, NULL));
}

Test(ctl, timestamps_parse_rfc3339)
{
    struct {
        const char *arg;
        int64_t secs;
        int32_t nanos;
    } ok[] = {
        {"agent.registered_at=1970-01-01T00:00:00Z", 0, 0},
        {"agent.registered_at=2026-11-26T14:35:09.5Z", 1795703709, 500000000},
        {"agent.registered_at=2026-11-26T15:35:09.000000001+01:00", 1795703709, 1},
        {"agent.registered_at=2026-11-26t14:35:09z", 1795703709, 0},
    };
    const char *bad[] = {"agent.registered_at=2026-11-26", "agent.registered_at=yesterday",
                         "agent.registered_at=2026-13-01T00:00:00Z",
                         "agent.registered_at=2026-11-26T14:35:09.1234567890Z"};

    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        Arbiter__V1__RegisterAgentRequest *r = (Arbiter__V1__RegisterAgentRequest *)ctl_msg_new(
            &arbiter__v1__register_agent_request__descriptor, &a);

        cr_assert(eq(int, ctl_msg_assign(&r->base, ok[i].arg, &a, err, sizeof err), 0), "%s",
                  ok[i].arg);
        cr_assert(eq(i64, r->agent->registered_at->seconds, ok[i].secs), "%s", ok[i].arg);
        cr_assert(eq(i32, r->agent->registered_at->nanos, ok[i].nanos), "%s", ok[i].arg);
    }
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        ProtobufCMessage *m = ctl_msg_new(&arbiter__v1__register_agent_request__descriptor, &a);

        cr_assert(eq(int, ctl_msg_assign(m, bad[i], &a, err, sizeof err), -EINVAL), "%s", bad[i]);
    }
}

Test(ctl, messages_need_fields_or_braces)
{
    Arbiter__V1__RegisterAgentRequest *r = (Arbiter__V1__RegisterAgentRequest *)ctl_msg_new(
        &arbiter__v1__register_agent_request__descriptor, &a);

    cr_assert(eq(int, ctl_msg_assign(&r->base, "agent=a1", &a, err, sizeof err), -EINVAL));
    cr_assert(ne(ptr, strstr(err, "agent.<field>"), NULL), "%s", err);
    cr_assert(eq(int, ctl_msg_assign(&r->base, "agent={}", &a, err, sizeof err), 0));
    cr_assert(ne(ptr, r->agent, NULL));
}

Test(ctl, unknown_field_names_the_valid_ones)
{
    ProtobufCMessage *m = ctl_msg_new(&arbiter__v1__create_tenant_request__descriptor, &a);

    cr_assert(eq(int, ctl_msg_assign(m, "nmae=x", &a, err, sizeof err), -ENOENT));
    cr_assert(eq(str, err,
                 "unknown field 'nmae' in arbiter.v1.CreateTenantRequest "
                 "(fields: id, name)"));
}

Test(ctl, repeated_messages_take_an_index)
{
    ProtobufCMessage *m = ctl_msg_new(&arbiter__v1__list_agents_response__descriptor, &a);
    Arbiter__V1__ListAgentsResponse *r = (Arbiter__V1__ListAgentsResponse *)m;

    cr_assert(eq(int, ctl_msg_assign(m, "agents[0].name=a", &a, err, sizeof err), 0), "%s", err);
    cr_assert(eq(int, ctl_msg_assign(m, "agents[0].id=1", &a, err, sizeof err), 0));
    cr_assert(eq(int, ctl_msg_assign(m, "agents[1].name=b", &a, err, sizeof err), 0));
    cr_assert(eq(int, ctl_msg_assign(m, "agents[3].name=d", &a, err, sizeof err), -EINVAL));
    cr_assert(eq(int, ctl_msg_assign(m, "agents.model_family=m", &a, err, sizeof err), 0));
    cr_assert(eq(sz, r->n_agents, 2));
    cr_assert(eq(str, r->agents[0]->id, "1"));
    cr_assert(eq(str, r->agents[1]->name, "b"));
    cr_assert(eq(str, r->agents[1]->model_family, "m"), "no index: the last element");
}

Test(ctl, json_mapping)
{
    Arbiter__V1__Agent ag = ARBITER__V1__AGENT__INIT;
    Arbiter__V1__PerformanceHistory perf = ARBITER__V1__PERFORMANCE_HISTORY__INIT;
    Google__Protobuf__Timestamp ts = GOOGLE__PROTOBUF__TIMESTAMP__INIT;
    Google__Protobuf__Timestamp ts2 = GOOGLE__PROTOBUF__TIMESTAMP__INIT;

    ag.id = "id1";
    ag.name = "quote\" and /slash";
    ag.performance = &perf;
    perf.success_rate = 0.8;
    perf.average_quality = NAN;
    perf.average_latency_ms = -INFINITY;
    perf.task_count = 12345678901234LL;
    ag.registered_at = &ts;
    ts.seconds = 1795703709;
    ts.nanos = 120000000;
    ag.last_active_at = &ts2;
    ts2.seconds = 0;
    ts2.nanos = 1000;
    cr_assert(eq(str, (char *)json_of(&ag.base),
                 "{\"id\":\"id1\",\"name\":\"quote\\\" and /slash\",\"model_family\":\"\","
                 "\"performance\":{\"success_rate\":0.8,\"average_quality\":\"NaN\","
                 "\"average_latency_ms\":\"-Infinity\",\"task_count\":\"12345678901234\"},"
                 "\"registered_at\":\"2026-11-26T14:35:09.120Z\","
                 "\"last_active_at\":\"1970-01-01T00:00:00.000001Z\"}"));
}

Test(ctl, json_enums_bools_and_bytes)
{
    Grpc__Health__V1__HealthCheckResponse h = GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__INIT;
    Arbiter__V1__UnregisterAgentResponse u = ARBITER__V1__UNREGISTER_AGENT_RESPONSE__INIT;
    Arbiter__V1__EchoResponse e = ARBITER__V1__ECHO_RESPONSE__INIT;

    h.status = GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__NOT_SERVING;
    cr_assert(eq(str, (char *)json_of(&h.base), "{\"status\":\"NOT_SERVING\"}"));
    h.status = 42;
    cr_assert(eq(str, (char *)json_of(&h.base), "{\"status\":42}"));
    cr_assert(eq(str, (char *)json_of(&u.base), "{\"removed\":false}"));
    e.payload.data = (uint8_t *)"\x00\x01\x02\xff";
    e.payload.len = 4;
    e.bin_value.data = (uint8_t *)"ab";
    e.bin_value.len = 2;
    cr_assert(eq(str, (char *)json_of(&e.base),
                 "{\"text\":\"\",\"payload\":\"AAEC/w==\",\"tenant_id\":\"\",\"user_id\":\"\","
                 "\"session_id\":\"\",\"bin_value\":\"YWI=\"}"));
}
