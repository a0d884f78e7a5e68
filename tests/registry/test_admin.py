"""Admin from the server's own uid (these tests run as the same user as
the server): pool statistics, server info, tenants."""
import time
import unittest

from regcommon import Code, RegistryCase, admin_pb2, ar, start_server, stop_server
import grpc


def setUpModule():
    start_server(args=["--pool-max", "6", "--pool-min", "2"])


def tearDownModule():
    stop_server()


class AdminInfo(RegistryCase):
    def test_server_info_counts_calls(self):
        info = self.admin.GetServerInfo(admin_pb2.GetServerInfoRequest())
        self.assertTrue(info.version)
        self.assertGreater(info.uptime_seconds, 0)
        self.assertGreaterEqual(info.open_connections, 1)
        self.assertGreaterEqual(info.calls_in_flight, 1)  # this call
        self.assertEqual([s.code for s in info.calls_by_status], list(range(17)))
        self.assertEqual(info.calls_by_status[5].name, "NOT_FOUND")
        before = {s.name: s.count for s in info.calls_by_status}
        t = self.new_tenant()
        with self.assertRaises(grpc.RpcError):
            self.call("GetAgent", ar.GetAgentRequest(id="00000000-0000-0000-0000-000000000000"), t)
        after = self.server_stats()
        self.assertEqual(after["NOT_FOUND"], before["NOT_FOUND"] + 1)
        self.assertGreaterEqual(after["OK"], before["OK"] + 2)  # GetServerInfo, CreateTenant
        info2 = self.admin.GetServerInfo(admin_pb2.GetServerInfoRequest())
        self.assertGreater(info2.calls_total, info.calls_total)

    def test_pool_stats(self):
        t = self.new_tenant()
        self.register(t, "p")
        s = self.admin.GetPoolStats(admin_pb2.GetPoolStatsRequest())
        self.assertEqual((s.min, s.max), (2, 6))
        self.assertTrue(s.database_reachable)
        self.assertEqual(s.status, "healthy")
        self.assertGreaterEqual(s.total, 1)
        self.assertLessEqual(s.total, 6)
        self.assertGreaterEqual(s.acquired, 2)
        self.assertEqual(s.idle + s.busy, s.total - s.connecting)


class Tenants(RegistryCase):
    def test_create_get_list(self):
        stamp = int(time.time() * 1000)
        ids = ["zz-list-%d-%d" % (stamp, i) for i in range(5)]
        for i in ids:
            t = self.admin.CreateTenant(admin_pb2.CreateTenantRequest(id=i, name="n " + i))
            self.assertEqual((t.id, t.name), (i, "n " + i))
            self.assertGreater(t.created_at.seconds, 0)
        got = self.admin.GetTenant(admin_pb2.GetTenantRequest(id=ids[2]))
        self.assertEqual(got.name, "n " + ids[2])
        seen, token = [], ""
        while True:
            page = self.admin.ListTenants(admin_pb2.ListTenantsRequest(page_size=2,
                                                                       page_token=token))
            self.assertLessEqual(len(page.tenants), 2)
            seen += [x.id for x in page.tenants]
            token = page.next_page_token
            if not token:
                break
        self.assertEqual(seen, sorted(seen))
        self.assertEqual(len(seen), len(set(seen)))
        for i in ids:
            self.assertIn(i, seen)

    def test_errors(self):
        tid = self.new_tenant()
        with self.assertRaises(grpc.RpcError) as cm:
            self.admin.CreateTenant(admin_pb2.CreateTenantRequest(id=tid, name="again"))
        self.assertEqual(cm.exception.code(), Code.ALREADY_EXISTS)
        for bad in ("", "has space", "x" * 65, "semi;colon"):
            with self.assertRaises(grpc.RpcError) as cm:
                self.admin.CreateTenant(admin_pb2.CreateTenantRequest(id=bad))
            self.assertEqual(cm.exception.code(), Code.INVALID_ARGUMENT)
            self.assertIn("id", cm.exception.details())
        with self.assertRaises(grpc.RpcError) as cm:
            self.admin.GetTenant(admin_pb2.GetTenantRequest(id="no-such-tenant-here"))
        self.assertEqual(cm.exception.code(), Code.NOT_FOUND)
        for kw in (dict(page_size=-1), dict(page_token="bogus")):
            with self.assertRaises(grpc.RpcError) as cm:
                self.admin.ListTenants(admin_pb2.ListTenantsRequest(**kw))
            self.assertEqual(cm.exception.code(), Code.INVALID_ARGUMENT)


class NoDatabase(unittest.TestCase):
    """A server started without --database-url: Admin still answers, the
    pool reports nothing reachable, and registry calls are UNAVAILABLE."""

    def test_no_database(self):
        from regcommon import harness, admin_pb2_grpc, ar_grpc
        with harness.ArbiterServer(database=False, test_service=False) as srv:
            ch = srv.channel()
            admin = admin_pb2_grpc.AdminStub(ch)
            s = admin.GetPoolStats(admin_pb2.GetPoolStatsRequest())
            self.assertFalse(s.database_reachable)
            self.assertEqual((s.total, s.max), (0, 0))
            self.assertTrue(admin.GetServerInfo(admin_pb2.GetServerInfoRequest()).version)
            with self.assertRaises(grpc.RpcError) as cm:
                ar_grpc.AgentRegistryStub(ch).GetAgent(
                    ar.GetAgentRequest(id="00000000-0000-0000-0000-000000000000"),
                    metadata=[("x-tenant-id", "t")])
            self.assertEqual(cm.exception.code(), Code.UNAVAILABLE)
            with self.assertRaises(grpc.RpcError) as cm:
                admin.CreateTenant(admin_pb2.CreateTenantRequest(id="x"))
            self.assertEqual(cm.exception.code(), Code.UNAVAILABLE)


if __name__ == "__main__":
    unittest.main(verbosity=2)
