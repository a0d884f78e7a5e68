"""Concurrency: 200 concurrent RecordProviderRequest calls for one provider
lose no count; concurrent StoreResults of overlapping batches agree on one
id per content, count every content as inserted exactly once and never
deadlock; of concurrent forward moves of one query exactly one wins;
concurrent cache hits are all counted."""
import random
import unittest

from kcommon import (KnowledgeCase, harness, kn, kn_grpc, result, sql_value, start_server,
                     stop_server)

import grpc


def setUpModule():
    start_server()


def tearDownModule():
    stop_server()


class Concurrency(KnowledgeCase):
    def stubs(self, n=4):
        """|n| stubs on their own connections, so calls really overlap."""
        import regcommon
        return [kn_grpc.KnowledgeStub(regcommon.SERVER.channel()) for _ in range(n)]

    def fan_out(self, method, requests, tenant):
        stubs = self.stubs()
        md = harness.tenant_md(tenant)
        futures = [getattr(stubs[i % len(stubs)], method).future(r, metadata=md, timeout=60)
                   for i, r in enumerate(requests)]
        return [f.exception() or f.result() for f in futures]

    def db_minute(self):
        return sql_value("SELECT date_trunc('minute', now())")

    def test_200_concurrent_provider_requests(self):
        t = self.new_tenant()
        rnd = random.Random(9)
        reqs = [kn.RecordProviderRequestRequest(name="google", success=rnd.random() < 0.75,
                                                latency_ms=rnd.uniform(1, 500), error="e%d" % i)
                for i in range(200)]
        minute = self.db_minute()
        out = self.fan_out("RecordProviderRequest", reqs, t)
        same_minute = self.db_minute() == minute
        for r in out:
            self.assertNotIsInstance(r, grpc.RpcError, r)
        # every call saw a distinct state: none was lost or merged
        self.assertEqual(sorted(r.total_requests for r in out), list(range(1, 201)))
        h = self.call("GetProviderHealth", kn.GetProviderHealthRequest(name="google"), t)
        self.assertEqual(h.total_requests, 200)
        self.assertEqual(h.total_failures, sum(not r.success for r in reqs))
        if same_minute:
            self.assertEqual(h.requests_this_minute, 200)
        self.assertLessEqual(h.requests_this_minute, 200)
        self.assertGreater(h.requests_this_hour, 0)
        self.assertGreaterEqual(h.error_rate, 0)
        self.assertLessEqual(h.error_rate, 1)

    def test_overlapping_store_results(self):
        t = self.new_tenant()
        q = self.store_query(t)
        contents = ["shared content %d" % i for i in range(40)]
        rnd = random.Random(3)
        batches = []
        for _ in range(16):
            pick = rnd.sample(contents, 25)
            batches.append(pick)
        reqs = [kn.StoreResultsRequest(query_id=q.id, results=[result(c) for c in b])
                for b in batches]
        out = self.fan_out("StoreResults", reqs, t)
        ids = {}
        for batch, r in zip(batches, out):
            self.assertNotIsInstance(r, grpc.RpcError, r)
            self.assertEqual(r.inserted + r.duplicates, len(batch))
            for c, i in zip(batch, r.result_ids):
                self.assertEqual(ids.setdefault(c, i), i, c)
        distinct = set(c for b in batches for c in b)
        self.assertEqual(sum(r.inserted for r in out), len(distinct))
        self.assertEqual(sql_value("SELECT count(*) FROM search_results WHERE tenant_id = '%s'"
                                   % t), str(len(distinct)))

    def test_one_forward_move_wins(self):
        t = self.new_tenant()
        q = self.store_query(t)
        reqs = [kn.UpdateQueryStatusRequest(id=q.id, status=kn.QUERY_STATUS_PROCESSING)] * 10
        out = self.fan_out("UpdateQueryStatus", reqs, t)
        ok = [r for r in out if not isinstance(r, grpc.RpcError)]
        self.assertEqual(len(ok), 1)
        for r in out:
            if isinstance(r, grpc.RpcError):
                self.assertEqual(r.code(), grpc.StatusCode.FAILED_PRECONDITION)

    def test_concurrent_hits_are_counted(self):
        t = self.new_tenant()
        self.put(t, "hot", '{"v": 1}')
        out = self.fan_out("GetCached", [kn.GetCachedRequest(key="hot")] * 100
                           + [kn.GetCachedRequest(key="cold")] * 20, t)
        self.assertEqual(sum(1 for r in out if r.hit), 100)
        self.assertEqual(sorted(r.entry.access_count for r in out if r.hit), list(range(1, 101)))
        s = self.stats(t)
        self.assertEqual((s.hits, s.misses), (100, 20))
        self.assertAlmostEqual(s.hit_rate, 100 / 120, delta=1e-12)


if __name__ == "__main__":
    unittest.main(verbosity=2)
