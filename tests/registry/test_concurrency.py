"""100 concurrent UpdatePerformance calls on one agent lose none: the
running averages and task count equal a sequential run of the same
samples on another agent (and the client-side computation)."""
import random
import unittest

from regcommon import RegistryCase, ar, sql_value, start_server, stop_server

N = 100


def setUpModule():
    start_server()


def tearDownModule():
    stop_server()


class Concurrency(RegistryCase):
    def test_100_concurrent_updates(self):
        t = self.new_tenant()
        conc = self.register(t, "concurrent")
        seq = self.register(t, "sequential")
        rnd = random.Random(4)
        samples = [(rnd.random() < 0.7, rnd.random(), rnd.uniform(1, 10000)) for _ in range(N)]

        def req(agent, s):
            return ar.UpdatePerformanceRequest(agent_id=agent.id, success=s[0], quality_score=s[1],
                                               latency_ms=s[2], tokens_used=1, task_type="c")

        for s in samples:
            self.call("UpdatePerformance", req(seq, s), t)
        # All 100 in flight at once, spread over 4 connections.
        stubs = [self.reg] + [type(self.reg)(self.channel_new()) for _ in range(3)]
        md = [("x-tenant-id", t)]
        futures = [stubs[i % len(stubs)].UpdatePerformance.future(req(conc, s), metadata=md,
                                                                   timeout=60)
                   for i, s in enumerate(samples)]
        counts = sorted(f.result().performance.task_count for f in futures)
        self.assertEqual(counts, list(range(1, N + 1)))  # each saw a distinct state

        a = self.call("GetAgent", ar.GetAgentRequest(id=conc.id), t).performance
        b = self.call("GetAgent", ar.GetAgentRequest(id=seq.id), t).performance
        sr, q, lat = 0.8, 0.7, 5000.0
        for n, s in enumerate(samples):
            sr = (sr * n + (1 if s[0] else 0)) / (n + 1)
            q = (q * n + s[1]) / (n + 1)
            lat = (lat * n + s[2]) / (n + 1)
        self.assertEqual((a.task_count, b.task_count), (N, N))
        for got, want, tol in ((a.success_rate, b.success_rate, 1e-9),
                               (a.average_quality, b.average_quality, 1e-9),
                               (a.average_latency_ms, b.average_latency_ms, 1e-9),
                               (b.success_rate, sr, 1e-12), (b.average_quality, q, 1e-12),
                               (b.average_latency_ms, lat, 1e-9)):
            self.assertAlmostEqual(got, want, delta=tol)
        self.assertEqual(sql_value("SELECT count(*) FROM agent_performance_events"
                                   " WHERE agent_id = '%s'" % conc.id), str(N))

    def channel_new(self):
        from regcommon import SERVER
        # a local subchannel pool: really another connection
        return SERVER.channel(**{"grpc.use_local_subchannel_pool": 1})


if __name__ == "__main__":
    unittest.main(verbosity=2)
