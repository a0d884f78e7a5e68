"""AgentRegistry: every method's happy path and each error it documents,
through the real arbiterd and PostgreSQL, from the generated Python stubs."""
import time
import unittest
import uuid

from regcommon import (Code, RegistryCase, ar, caps, dv, sql_value, start_server,
                       stop_server)


def setUpModule():
    start_server()


def tearDownModule():
    stop_server()


class RegisterAgent(RegistryCase):
    def test_defaults_and_capabilities(self):
        t = self.new_tenant()
        before = time.time()
        a = self.register(t, "alpha", model_family="gpt",
                          capabilities=caps(["code", "review", "code"], ["c", "python"]))
        self.assertEqual(str(uuid.UUID(a.id)), a.id)
        self.assertEqual(a.name, "alpha")
        self.assertEqual(a.model_family, "gpt")
        # caller's order, duplicates dropped
        self.assertEqual(list(a.capabilities.task_types), ["code", "review"])
        self.assertEqual(list(a.capabilities.languages), ["c", "python"])
        self.assertEqual(list(a.capabilities.specializations), [])
        # upstream defaults
        self.assertEqual(a.performance.success_rate, 0.8)
        self.assertEqual(a.performance.average_quality, 0.7)
        self.assertEqual(a.performance.average_latency_ms, 5000)
        self.assertEqual(a.performance.task_count, 0)
        self.assertEqual((a.load.active_tasks, a.load.queued_tasks, a.load.capacity),
                         (0, 0, 10))
        self.assertEqual(a.load.utilization_percent, 0)
        self.assertGreater(a.registered_at.ToSeconds(), before - 60)
        self.assertEqual(a.registered_at, a.last_active_at)

    def test_given_id_performance_and_load(self):
        t = self.new_tenant()
        aid = str(uuid.uuid4())
        a = self.register(t, "beta", id=aid,
                          performance=ar.PerformanceHistory(success_rate=0.5, average_quality=0.25,
                                                            average_latency_ms=12, task_count=4),
                          load=ar.CurrentLoad(active_tasks=3, queued_tasks=1, capacity=4))
        self.assertEqual(a.id, aid)
        self.assertEqual(a.performance.task_count, 4)
        self.assertEqual(a.performance.average_quality, 0.25)
        self.assertEqual(a.load.capacity, 4)
        self.assertEqual(a.load.utilization_percent, 75.0)
        got = self.call("GetAgent", ar.GetAgentRequest(id=aid), t)
        self.assertEqual(got, a)

    def test_name_limits(self):
        t = self.new_tenant()
        self.register(t, "n" * 255)
        self.register(t, "\u00e9" * 255)  # characters, not bytes
        for name in ("", "n" * 256):
            self.assertCode(Code.INVALID_ARGUMENT, "RegisterAgent",
                            ar.RegisterAgentRequest(agent=ar.Agent(name=name)), t, "agent.name")

    def test_duplicate_name_and_id(self):
        t = self.new_tenant()
        a = self.register(t, "dup")
        self.assertCode(Code.ALREADY_EXISTS, "RegisterAgent",
                        ar.RegisterAgentRequest(agent=ar.Agent(name="dup")), t, "agent.name")
        self.assertCode(Code.ALREADY_EXISTS, "RegisterAgent",
                        ar.RegisterAgentRequest(agent=ar.Agent(id=a.id, name="other")), t)
        # nothing half-written: still exactly one agent
        stats = self.call("GetRegistryStats", ar.GetRegistryStatsRequest(), t)
        self.assertEqual(stats.total_agents, 1)

    def test_invalid_fields(self):
        t = self.new_tenant()
        bad = [
            (ar.RegisterAgentRequest(), "agent"),
            (ar.RegisterAgentRequest(agent=ar.Agent(name="x", id="not-a-uuid")), "agent.id"),
            (ar.RegisterAgentRequest(agent=ar.Agent(name="x", model_family="m" * 256)),
             "agent.model_family"),
            (ar.RegisterAgentRequest(agent=ar.Agent(name="x", capabilities=caps([""]))),
             "agent.capabilities.task_types[0]"),
            (ar.RegisterAgentRequest(agent=ar.Agent(name="x", capabilities=caps(
                languages=["l%d" % i for i in range(65)]))), "agent.capabilities.languages"),
            (ar.RegisterAgentRequest(agent=ar.Agent(name="x", performance=ar.PerformanceHistory(
                success_rate=1.5))), "agent.performance.success_rate"),
            (ar.RegisterAgentRequest(agent=ar.Agent(name="x", performance=ar.PerformanceHistory(
                average_latency_ms=-1))), "agent.performance.average_latency_ms"),
            (ar.RegisterAgentRequest(agent=ar.Agent(name="x", load=ar.CurrentLoad(
                active_tasks=-1))), "agent.load.active_tasks"),
        ]
        for req, field in bad:
            self.assertCode(Code.INVALID_ARGUMENT, "RegisterAgent", req, t, field)

    def test_unknown_tenant(self):
        self.assertCode(Code.FAILED_PRECONDITION, "RegisterAgent",
                        ar.RegisterAgentRequest(agent=ar.Agent(name="x")), "no-such-tenant",
                        "no-such-tenant")


class GetAgent(RegistryCase):
    def test_get_and_errors(self):
        t = self.new_tenant()
        a = self.register(t, "g")
        self.assertEqual(self.call("GetAgent", ar.GetAgentRequest(id=a.id), t), a)
        self.assertEqual(self.call("GetAgent", ar.GetAgentRequest(id=a.id.upper()), t).id, a.id)
        self.assertCode(Code.NOT_FOUND, "GetAgent", ar.GetAgentRequest(id=str(uuid.uuid4())), t)
        self.assertCode(Code.INVALID_ARGUMENT, "GetAgent", ar.GetAgentRequest(id="x"), t, "id")
        self.assertCode(Code.INVALID_ARGUMENT, "GetAgent", ar.GetAgentRequest(), t, "id")


class ListAgents(RegistryCase):
    def test_order_and_pages(self):
        t = self.new_tenant()
        ids = [self.register(t, "l%d" % i).id for i in range(7)]
        # touching the oldest makes it the most recently active
        self.call("UpdatePerformance", ar.UpdatePerformanceRequest(
            agent_id=ids[0], success=True, quality_score=1, latency_ms=1), t)
        first = self.call("ListAgents", ar.ListAgentsRequest(), t)
        self.assertEqual(len(first.agents), 7)
        self.assertEqual(first.next_page_token, "")
        self.assertEqual(first.agents[0].id, ids[0])
        keys = [(a.last_active_at.ToMicroseconds(), a.id) for a in first.agents]
        self.assertEqual(keys, sorted(keys, reverse=True))
        seen, token, pages = [], "", 0
        while True:
            page = self.call("ListAgents", ar.ListAgentsRequest(page_size=3, page_token=token), t)
            pages += 1
            seen += [a.id for a in page.agents]
            token = page.next_page_token
            if not token:
                break
        self.assertEqual(pages, 3)
        self.assertEqual(seen, [a.id for a in first.agents])

    def test_exact_page_has_no_next_token(self):
        t = self.new_tenant()
        for i in range(4):
            self.register(t, "e%d" % i)
        page = self.call("ListAgents", ar.ListAgentsRequest(page_size=4), t)
        self.assertEqual((len(page.agents), page.next_page_token), (4, ""))

    def test_default_page_size_is_50(self):
        t = self.new_tenant()
        for i in range(51):
            self.register(t, "d%d" % i)
        page = self.call("ListAgents", ar.ListAgentsRequest(), t)
        self.assertEqual(len(page.agents), 50)
        rest = self.call("ListAgents", ar.ListAgentsRequest(page_token=page.next_page_token), t)
        self.assertEqual(len(rest.agents), 1)

    def test_bad_page_size_and_tokens(self):
        t, other = self.new_tenant(), self.new_tenant()
        for i in range(3):
            self.register(t, "b%d" % i)
            self.register(other, "b%d" % i)
        for size in (-1, 1001):
            self.assertCode(Code.INVALID_ARGUMENT, "ListAgents",
                            ar.ListAgentsRequest(page_size=size), t, "page_size")
        self.call("ListAgents", ar.ListAgentsRequest(page_size=1000), t)
        for token in ("garbage!", "AAAA", "x" * 400):
            self.assertCode(Code.INVALID_ARGUMENT, "ListAgents",
                            ar.ListAgentsRequest(page_token=token), t, "page_token")
        token = self.call("ListAgents", ar.ListAgentsRequest(page_size=1), other).next_page_token
        self.assertTrue(token)
        self.assertCode(Code.INVALID_ARGUMENT, "ListAgents",
                        ar.ListAgentsRequest(page_token=token), t, "page_token")
        # a token of another query (Admin.ListTenants) is rejected too
        from regcommon import admin_pb2
        tt = self.admin.ListTenants(admin_pb2.ListTenantsRequest(page_size=1)).next_page_token
        self.assertTrue(tt)
        self.assertCode(Code.INVALID_ARGUMENT, "ListAgents",
                        ar.ListAgentsRequest(page_token=tt), t, "page_token")


class QueryAgentsByCapability(RegistryCase):
    def setUp(self):
        super().setUp()
        self.t = t = self.new_tenant()
        P = ar.PerformanceHistory
        self.a = self.register(t, "qa", capabilities=caps(["code"], ["c", "go"], ["db"]),
                               performance=P(success_rate=0.9, average_quality=0.5,
                                             average_latency_ms=1))
        self.b = self.register(t, "qb", capabilities=caps(["code", "test"], ["python"]),
                               performance=P(success_rate=0.95, average_quality=0.5,
                                             average_latency_ms=1),
                               load=ar.CurrentLoad(active_tasks=9))
        self.c = self.register(t, "qc", capabilities=caps(["test"], ["c"], ["ml"]),
                               performance=P(success_rate=0.5, average_quality=0.5,
                                             average_latency_ms=1))

    def q(self, **kw):
        res = self.call("QueryAgentsByCapability", ar.QueryAgentsByCapabilityRequest(**kw), self.t)
        return [a.name for a in res.agents]

    def test_filters(self):
        self.assertEqual(self.q(), ["qb", "qa", "qc"])  # best success rate first
        self.assertEqual(self.q(task_type="code"), ["qb", "qa"])
        self.assertEqual(self.q(task_type="nope"), [])
        self.assertEqual(self.q(languages=["go", "python"]), ["qb", "qa"])  # any of
        self.assertEqual(self.q(task_type="test", languages=["c"]), ["qc"])  # combine
        self.assertEqual(self.q(specializations=["ml", "db"]), ["qa", "qc"])
        self.assertEqual(self.q(max_utilization_percent=dv(50)), ["qa", "qc"])
        self.assertEqual(self.q(max_utilization_percent=dv(90)), ["qb", "qa", "qc"])
        self.assertEqual(self.q(min_success_rate=dv(0.9)), ["qb", "qa"])
        self.assertEqual(self.q(min_success_rate=dv(0)), ["qb", "qa", "qc"])  # set, zero
        self.assertEqual(self.q(task_type="code", min_success_rate=dv(0.9),
                                max_utilization_percent=dv(10)), ["qa"])
        self.assertEqual(self.q(page_size=1), ["qb"])

    def test_invalid(self):
        for kw, field in ((dict(min_success_rate=dv(1.5)), "min_success_rate"),
                          (dict(max_utilization_percent=dv(-1)), "max_utilization_percent"),
                          (dict(languages=[""]), "languages[0]"),
                          (dict(page_size=1001), "page_size")):
            self.assertCode(Code.INVALID_ARGUMENT, "QueryAgentsByCapability",
                            ar.QueryAgentsByCapabilityRequest(**kw), self.t, field)


class UpdatePerformance(RegistryCase):
    def test_running_averages_and_event(self):
        t = self.new_tenant()
        a = self.register(t, "p")
        samples = [(True, 0.9, 100.0), (False, 0.3, 50.5), (True, 0.6, 1000.0)]
        sr, q, lat, n = 0.8, 0.7, 5000.0, 0
        last = a.last_active_at.ToMicroseconds()
        for ok, quality, latency in samples:
            got = self.call("UpdatePerformance", ar.UpdatePerformanceRequest(
                agent_id=a.id, success=ok, quality_score=quality, latency_ms=latency,
                tokens_used=7, task_type="code", task_id="task-1"), t)
            sr = (sr * n + (1 if ok else 0)) / (n + 1)
            q = (q * n + quality) / (n + 1)
            lat = (lat * n + latency) / (n + 1)
            n += 1
            self.assertEqual(got.performance.task_count, n)
            self.assertAlmostEqual(got.performance.success_rate, sr, delta=1e-12)
            self.assertAlmostEqual(got.performance.average_quality, q, delta=1e-12)
            self.assertAlmostEqual(got.performance.average_latency_ms, lat, delta=1e-9)
            self.assertGreaterEqual(got.last_active_at.ToMicroseconds(), last)
            last = got.last_active_at.ToMicroseconds()
        self.assertGreater(last, a.last_active_at.ToMicroseconds())
        events = sql_value("SELECT count(*), sum(tokens_used), bool_and(task_id = 'task-1')"
                           " FROM agent_performance_events WHERE agent_id = '%s'" % a.id)
        self.assertEqual(events, "3|21|t")

    def test_errors(self):
        t = self.new_tenant()
        a = self.register(t, "pe")
        R = ar.UpdatePerformanceRequest
        self.assertCode(Code.NOT_FOUND, "UpdatePerformance",
                        R(agent_id=str(uuid.uuid4()), quality_score=0.5), t)
        for req, field in ((R(agent_id=a.id, quality_score=1.5), "quality_score"),
                           (R(agent_id=a.id, quality_score=-0.1), "quality_score"),
                           (R(agent_id=a.id, quality_score=0.5, latency_ms=-1), "latency_ms"),
                           (R(agent_id=a.id, tokens_used=-1), "tokens_used"),
                           (R(agent_id="nope"), "agent_id")):
            self.assertCode(Code.INVALID_ARGUMENT, "UpdatePerformance", req, t, field)
        got = self.call("GetAgent", ar.GetAgentRequest(id=a.id), t)
        self.assertEqual(got.performance.task_count, 0)


class UpdateLoad(RegistryCase):
    def test_clamp_and_utilization(self):
        t = self.new_tenant()
        a = self.register(t, "u", load=ar.CurrentLoad(capacity=4))
        U = ar.UpdateLoadRequest
        got = self.call("UpdateLoad", U(agent_id=a.id, active_tasks_delta=3,
                                        queued_tasks_delta=2), t)
        self.assertEqual((got.load.active_tasks, got.load.queued_tasks), (3, 2))
        self.assertEqual(got.load.utilization_percent, 75.0)
        got = self.call("UpdateLoad", U(agent_id=a.id, active_tasks_delta=5), t)
        self.assertEqual((got.load.active_tasks, got.load.utilization_percent), (8, 100.0))
        got = self.call("UpdateLoad", U(agent_id=a.id, active_tasks_delta=-20,
                                        queued_tasks_delta=-20), t)
        self.assertEqual((got.load.active_tasks, got.load.queued_tasks), (0, 0))
        self.assertEqual(got.load.utilization_percent, 0.0)
        got = self.call("UpdateLoad", U(agent_id=a.id, active_tasks_delta=2**31 - 1), t)
        got = self.call("UpdateLoad", U(agent_id=a.id, active_tasks_delta=2**31 - 1), t)
        self.assertEqual(got.load.active_tasks, 2**31 - 1)

    def test_errors(self):
        t = self.new_tenant()
        self.assertCode(Code.NOT_FOUND, "UpdateLoad",
                        ar.UpdateLoadRequest(agent_id=str(uuid.uuid4()), active_tasks_delta=1), t)
        self.assertCode(Code.INVALID_ARGUMENT, "UpdateLoad", ar.UpdateLoadRequest(), t,
                        "agent_id")


class UnregisterAgent(RegistryCase):
    def test_removes_everything(self):
        t = self.new_tenant()
        a = self.register(t, "gone", capabilities=caps(["x"], ["y"], ["z"]))
        self.call("UpdatePerformance", ar.UpdatePerformanceRequest(
            agent_id=a.id, success=True, quality_score=1, latency_ms=1), t)
        res = self.call("UnregisterAgent", ar.UnregisterAgentRequest(id=a.id), t)
        self.assertTrue(res.removed)
        self.assertCode(Code.NOT_FOUND, "GetAgent", ar.GetAgentRequest(id=a.id), t)
        left = sql_value(" UNION ALL ".join(
            "SELECT count(*) FROM %s WHERE agent_id = '%s'" % (tbl, a.id)
            for tbl in ("agent_capabilities", "agent_performance",
                        "agent_performance_events", "agent_load")))
        self.assertEqual(left.split(), ["0", "0", "0", "0"])
        res = self.call("UnregisterAgent", ar.UnregisterAgentRequest(id=a.id), t)
        self.assertFalse(res.removed)
        self.assertCode(Code.INVALID_ARGUMENT, "UnregisterAgent", ar.UnregisterAgentRequest(),
                        t, "id")


class Stats(RegistryCase):
    def test_stats(self):
        t = self.new_tenant()
        empty = self.call("GetRegistryStats", ar.GetRegistryStatsRequest(), t)
        self.assertEqual((empty.total_agents, empty.active_agents, empty.idle_agents), (0, 0, 0))
        self.assertEqual(empty.average_success_rate, 0)
        P = ar.PerformanceHistory
        self.register(t, "s1", performance=P(success_rate=0.5, average_quality=0.5),
                      load=ar.CurrentLoad(active_tasks=5))
        self.register(t, "s2", performance=P(success_rate=1.0, average_quality=0.5),
                      load=ar.CurrentLoad(active_tasks=10, capacity=20))
        self.register(t, "s3", performance=P(success_rate=0.0, average_quality=0.5))
        s = self.call("GetRegistryStats", ar.GetRegistryStatsRequest(), t)
        self.assertEqual((s.total_agents, s.active_agents, s.idle_agents), (3, 2, 1))
        self.assertAlmostEqual(s.average_utilization_percent, (50 + 50 + 0) / 3, delta=1e-9)
        self.assertAlmostEqual(s.average_success_rate, 0.5, delta=1e-12)
        self.assertAlmostEqual(s.last_updated.ToSeconds(), time.time(), delta=120)


class Cleanup(RegistryCase):
    def test_removes_only_stale(self):
        t = self.new_tenant()
        old = self.register(t, "old")
        fresh = self.register(t, "fresh")
        sql_value("UPDATE agents SET last_active_at = now() - interval '2 hours'"
                  " WHERE id = '%s'" % old.id)
        res = self.call("CleanupStaleAgents", ar.CleanupStaleAgentsRequest(
            stale_after_ms=3600 * 1000), t)
        self.assertEqual(res.removed, 1)
        self.assertCode(Code.NOT_FOUND, "GetAgent", ar.GetAgentRequest(id=old.id), t)
        self.call("GetAgent", ar.GetAgentRequest(id=fresh.id), t)
        for ms in (0, -5):
            self.assertCode(Code.INVALID_ARGUMENT, "CleanupStaleAgents",
                            ar.CleanupStaleAgentsRequest(stale_after_ms=ms), t, "stale_after_ms")


if __name__ == "__main__":
    unittest.main(verbosity=2)
