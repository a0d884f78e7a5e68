"""Tenant isolation matrix: for every AgentRegistry method, tenant B can
neither see, list, query, count, update, unregister nor clean up tenant
A's agents, and a write aimed at A's rows changes nothing (checked by
reading as A afterwards); a call without a tenant is rejected and writes
nothing; the same name works in two tenants. Also at the SQL level: the
app role without a tenant setting sees no rows and cannot insert."""
import unittest

from regcommon import harness  # noqa: E402 (regcommon puts it on sys.path)
from regcommon import (Code, RegistryCase, ar, caps, psql, sql_value, start_server,
                       stop_server)

TABLES = ("agents", "agent_capabilities", "agent_performance", "agent_performance_events",
          "agent_load")


def setUpModule():
    start_server()


def tearDownModule():
    stop_server()


class Isolation(RegistryCase):
    def setUp(self):
        super().setUp()
        self.A, self.B = self.new_tenant("a"), self.new_tenant("b")
        self.a1 = self.register(self.A, "shared-name", capabilities=caps(["iso"], ["c"], ["x"]),
                                load=ar.CurrentLoad(active_tasks=2))
        self.a2 = self.register(self.A, "second", capabilities=caps(["iso"]))
        self.call("UpdatePerformance", ar.UpdatePerformanceRequest(
            agent_id=self.a1.id, success=True, quality_score=0.5, latency_ms=10), self.A)
        self.a1 = self.call("GetAgent", ar.GetAgentRequest(id=self.a1.id), self.A)
        self.snapshot = self.view_of_a()

    def view_of_a(self):
        """Everything A can see, to compare before and after."""
        listing = self.call("ListAgents", ar.ListAgentsRequest(), self.A)
        stats = self.call("GetRegistryStats", ar.GetRegistryStatsRequest(), self.A)
        stats.ClearField("last_updated")
        events = sql_value("SELECT count(*) FROM agent_performance_events WHERE tenant_id = '%s'"
                           % self.A)
        return (sorted(a.SerializeToString(deterministic=True) for a in listing.agents),
                stats.SerializeToString(deterministic=True), events)

    def assertAUnchanged(self):
        self.assertEqual(self.view_of_a(), self.snapshot)

    def test_b_cannot_read(self):
        B, a1 = self.B, self.a1
        self.assertCode(Code.NOT_FOUND, "GetAgent", ar.GetAgentRequest(id=a1.id), B)
        self.assertEqual(len(self.call("ListAgents", ar.ListAgentsRequest(), B).agents), 0)
        q = self.call("QueryAgentsByCapability",
                      ar.QueryAgentsByCapabilityRequest(task_type="iso"), B)
        self.assertEqual(len(q.agents), 0)
        q = self.call("QueryAgentsByCapability", ar.QueryAgentsByCapabilityRequest(), B)
        self.assertEqual(len(q.agents), 0)
        s = self.call("GetRegistryStats", ar.GetRegistryStatsRequest(), B)
        self.assertEqual((s.total_agents, s.active_agents, s.idle_agents), (0, 0, 0))

    def test_b_cannot_write(self):
        B, a1 = self.B, self.a1
        self.assertCode(Code.NOT_FOUND, "UpdatePerformance", ar.UpdatePerformanceRequest(
            agent_id=a1.id, success=False, quality_score=0, latency_ms=1), B)
        self.assertCode(Code.NOT_FOUND, "UpdateLoad", ar.UpdateLoadRequest(
            agent_id=a1.id, active_tasks_delta=5), B)
        self.assertFalse(self.call("UnregisterAgent", ar.UnregisterAgentRequest(id=a1.id),
                                   B).removed)
        sql_value("UPDATE agents SET last_active_at = now() - interval '1 day'"
                  " WHERE tenant_id = '%s'" % self.A)
        self.snapshot = self.view_of_a()
        self.assertEqual(self.call("CleanupStaleAgents", ar.CleanupStaleAgentsRequest(
            stale_after_ms=1), B).removed, 0)
        self.assertAUnchanged()

    def test_same_name_and_id_in_two_tenants(self):
        b1 = self.register(self.B, "shared-name")
        self.assertNotEqual(b1.id, self.a1.id)
        # ids are scoped to the tenant: B may even reuse A's id; they stay two agents
        b2 = self.register(self.B, "copy", id=self.a2.id)
        self.assertEqual(b2.id, self.a2.id)
        self.call("UpdateLoad", ar.UpdateLoadRequest(agent_id=self.a2.id,
                                                      active_tasks_delta=7), self.B)
        self.call("UpdatePerformance", ar.UpdatePerformanceRequest(
            agent_id=self.a2.id, success=False, quality_score=0, latency_ms=1), self.B)
        self.assertTrue(self.call("UnregisterAgent", ar.UnregisterAgentRequest(id=self.a2.id),
                                  self.B).removed)
        self.assertAUnchanged()
        self.assertEqual(self.call("GetAgent", ar.GetAgentRequest(id=self.a2.id), self.A).name,
                         "second")

    def test_no_tenant_is_rejected_and_writes_nothing(self):
        before = sql_value("SELECT count(*) FROM agents")
        calls = [
            ("RegisterAgent", ar.RegisterAgentRequest(agent=ar.Agent(name="nobody"))),
            ("GetAgent", ar.GetAgentRequest(id=self.a1.id)),
            ("ListAgents", ar.ListAgentsRequest()),
            ("QueryAgentsByCapability", ar.QueryAgentsByCapabilityRequest()),
            ("UpdatePerformance", ar.UpdatePerformanceRequest(
                agent_id=self.a1.id, quality_score=0, latency_ms=1)),
            ("UpdateLoad", ar.UpdateLoadRequest(agent_id=self.a1.id, active_tasks_delta=3)),
            ("UnregisterAgent", ar.UnregisterAgentRequest(id=self.a1.id)),
            ("GetRegistryStats", ar.GetRegistryStatsRequest()),
            ("CleanupStaleAgents", ar.CleanupStaleAgentsRequest(stale_after_ms=1)),
        ]
        for method, req in calls:
            self.assertCode(Code.INVALID_ARGUMENT, method, req, None, "x-tenant-id")
        self.assertEqual(sql_value("SELECT count(*) FROM agents"), before)
        self.assertAUnchanged()


class SqlLevel(unittest.TestCase):
    """The app role itself, with no tenant setting, through psql."""

    @classmethod
    def setUpClass(cls):
        harness.skip_without_database()
        cls.app = harness.database_url()
        sql_value("INSERT INTO tenants (id, name) VALUES ('sql-a', 'a') ON CONFLICT DO NOTHING")
        sql_value("BEGIN; SELECT set_config('app.current_tenant', 'sql-a', true);"
                  " INSERT INTO agents (name) VALUES ('sql-agent') ON CONFLICT DO NOTHING; COMMIT;",
                  cls.app)

    def test_no_setting_sees_nothing(self):
        for tbl in TABLES + ("agent_view",):
            self.assertEqual(sql_value("SELECT count(*) FROM %s" % tbl, self.app), "0", tbl)
        # the '' a reverted setting leaves behind denies as well
        self.assertEqual(sql_value("SELECT set_config('app.current_tenant', '', false) IS NULL;"
                                   " SELECT count(*) FROM agents", self.app).split()[-1], "0")
        self.assertEqual(sql_value("BEGIN; SELECT set_config('app.current_tenant', 'sql-a', true);"
                                   " SELECT count(*) FROM agents WHERE name = 'sql-agent'; COMMIT;",
                                   self.app).split()[-1], "1")

    def test_no_setting_cannot_insert(self):
        rc, _, err = psql("INSERT INTO agents (tenant_id, name) VALUES ('sql-a', 'sneaky')",
                          self.app, check=False)
        self.assertNotEqual(rc, 0)
        self.assertIn("row-level security", err)
        rc, _, err = psql("INSERT INTO agents (name) VALUES ('sneaky')", self.app, check=False)
        self.assertNotEqual(rc, 0)  # tenant_id defaults to NULL: not null violation

    def test_other_tenant_cannot_insert_or_move_rows(self):
        sql_value("INSERT INTO tenants (id, name) VALUES ('sql-b', 'b') ON CONFLICT DO NOTHING")
        rc, _, err = psql("BEGIN; SELECT set_config('app.current_tenant', 'sql-b', true);"
                          " INSERT INTO agents (tenant_id, name) VALUES ('sql-a', 'x'); COMMIT;",
                          self.app, check=False)
        self.assertIn("row-level security", err)
        rc, out, err = psql("BEGIN; SELECT set_config('app.current_tenant', 'sql-a', true);"
                            " UPDATE agents SET tenant_id = 'sql-b' WHERE name = 'sql-agent';"
                            " COMMIT;", self.app, check=False)
        self.assertIn("row-level security", err)

    def test_app_role_is_not_privileged(self):
        row = sql_value("SELECT rolsuper, rolbypassrls FROM pg_roles WHERE rolname = current_user",
                        self.app)
        self.assertEqual(row, "f|f")
        owned = sql_value("SELECT count(*) FROM pg_tables WHERE tableowner = current_user",
                          self.app)
        self.assertEqual(owned, "0")


if __name__ == "__main__":
    unittest.main(verbosity=2)
