"""Pool statistics as Admin.GetPoolStats reports them (DESIGN.md "The
pool"): sizes, waiting and peak, acquisitions and their wait percentiles,
acquire timeouts, queue-full rejections, errors by SQLSTATE class,
reconnects, utilization and the healthy / degraded (>75 %) / unhealthy
(>90 %) status word."""
import time
import unittest

import grpc

import dbtest
from dbtest import INSERT_THEN_FAIL, SERVING, SETTINGS, SLEEP, future_code
from arbiter.v1 import admin_pb2, admin_pb2_grpc


class Stats(unittest.TestCase):
    def stats(self, c):
        return admin_pb2_grpc.AdminStub(c.channel).GetPoolStats(
            admin_pb2.GetPoolStatsRequest(), timeout=5)

    def wait_stats(self, c, pred, timeout=3.0):
        t0 = time.monotonic()
        while True:
            s = self.stats(c)
            if pred(s) or time.monotonic() - t0 > timeout:
                return s
            time.sleep(0.02)

    def test_counters_and_status_word(self):
        # A warm pool of 5, so that the queue bound (2) is all that counts.
        with dbtest.ArbiterServer(["--pool-min", "5", "--pool-max", "5", "--pool-queue", "2",
                                   "--acquire-timeout-ms", "300"]) as srv:
            c = dbtest.Client(srv)
            c.wait_health(SERVING)
            s = self.wait_stats(c, lambda s: s.idle == 5)
            self.assertEqual((s.min, s.max, s.total, s.idle, s.busy), (5, 5, 5, 5, 0))
            self.assertEqual(s.status, "healthy")
            self.assertTrue(s.database_reachable)

            # 4 of 5 busy: 80 % → degraded
            four = [c.probe_future(SLEEP, sleep_ms=800) for _ in range(4)]
            s = self.wait_stats(c, lambda s: s.busy == 4)
            self.assertEqual(s.busy, 4)
            self.assertAlmostEqual(s.utilization_percent, 80.0)
            self.assertEqual(s.status, "degraded")
            # 5 of 5: unhealthy; then 2 wait, the next 2 are rejected
            more = [c.probe_future(SLEEP, sleep_ms=800) for _ in range(3)]
            s = self.wait_stats(c, lambda s: s.busy == 5 and s.waiting == 2)
            self.assertEqual((s.busy, s.waiting), (5, 2))
            self.assertEqual(s.status, "unhealthy")
            for _ in range(2):
                self.assertEqual(c.probe_code(SETTINGS)[0],
                                 grpc.StatusCode.RESOURCE_EXHAUSTED)
            codes = [future_code(f) for f in four + more]
            # the two waiters gave up after the 300 ms acquire timeout
            self.assertEqual(codes.count(grpc.StatusCode.OK), 5, codes)
            self.assertEqual(codes.count(grpc.StatusCode.UNAVAILABLE), 2, codes)

            with self.assertRaises(grpc.RpcError):
                c.probe(INSERT_THEN_FAIL, marker="stats-1")
            s = self.stats(c)
            self.assertEqual(s.queue_full_rejections, 2)
            self.assertEqual(s.acquire_timeouts, 2)
            self.assertEqual(s.peak_waiting, 2)
            self.assertEqual(s.waiting, 0)
            self.assertGreaterEqual(s.acquired, 6)
            self.assertEqual({e.sqlstate_class: e.count for e in s.errors_by_class}.get("22"), 1)
            self.assertLessEqual(s.acquire_wait_p50_ms, s.acquire_wait_p95_ms)
            self.assertLessEqual(s.acquire_wait_p95_ms, s.acquire_wait_p99_ms)
            self.assertLess(s.acquire_wait_p99_ms, 5000)

    def test_waits_show_in_percentiles_and_reconnects_are_counted(self):
        with dbtest.ArbiterServer(["--pool-min", "1", "--pool-max", "1"]) as srv:
            c = dbtest.Client(srv)
            c.wait_health(SERVING)
            # services may use the pool when it starts serving (KnowledgeGraph
            # asks which vector functions the database has)
            before = self.stats(c).acquired
            # 10 calls through one connection: most of them wait ~100 ms or more
            fs = [c.probe_future(SLEEP, sleep_ms=100) for _ in range(10)]
            self.assertTrue(all(future_code(f) == grpc.StatusCode.OK for f in fs))
            s = self.stats(c)
            self.assertEqual(s.acquired - before, 10)
            self.assertGreater(s.acquire_wait_p95_ms, 300)
            self.assertGreater(s.acquire_wait_p50_ms, 50)
            self.assertEqual(s.reconnects, 0)
            dbtest.psql("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                        "WHERE application_name = 'arbiterd'")
            s = self.wait_stats(c, lambda s: s.reconnects == 1 and s.idle == 1)
            self.assertEqual((s.reconnects, s.idle, s.total), (1, 1, 1))
            self.assertEqual(c.probe(SETTINGS, tenant="x").tenant, "x")


if __name__ == "__main__":
    unittest.main(verbosity=2)
