"""WebNavigator rate limits: AcquireRateLimit creates the row, counts only
allowed requests, starts a new window after window_ms and honours a
backoff; 1,000 concurrent acquires for one domain with max_requests 100
let exactly 100 through; GetRateLimit, SetBackoff and ResetRateLimit with
their errors."""
import threading
import time
import unittest

from webcommon import (Code, WebCase, seconds_between, sql_value, start_server, stop_server,
                       ts_of, utcnow, wn)


def setUpModule():
    # A small pool, so that the 1,000 calls queue in the server too.
    start_server(args=["--pool-max", "4"])


def tearDownModule():
    stop_server()


class Acquire(WebCase):
    def test_counts_and_denies(self):
        t = self.new_tenant()
        first = self.acquire(t, "Example.ORG", 3, 60000)
        self.assertTrue(first.allowed)
        rl = first.rate_limit
        self.assertEqual((rl.domain, rl.requests_in_window, rl.max_requests, rl.window_ms),
                         ("example.org", 1, 3, 60000))
        self.assertEqual(seconds_between(rl.window_reset_at, rl.window_started_at), 60)
        self.assertEqual(rl.last_request_at, rl.window_started_at)
        self.assertFalse(rl.HasField("backoff_until"))
        self.assertEqual(first.retry_after_ms, 0)
        for n in (2, 3):
            r = self.acquire(t, "example.org", 3, 60000)
            self.assertTrue(r.allowed)
            self.assertEqual(r.rate_limit.requests_in_window, n)
            self.assertEqual(r.rate_limit.window_started_at, rl.window_started_at)
        denied = self.acquire(t, "example.org", 3, 60000)
        self.assertFalse(denied.allowed)
        self.assertEqual(denied.rate_limit.requests_in_window, 3)  # not counted
        self.assertGreater(denied.retry_after_ms, 50000)
        self.assertLessEqual(denied.retry_after_ms, 60000)
        got = self.call("GetRateLimit", wn.GetRateLimitRequest(domain="EXAMPLE.org"), t)
        self.assertEqual(got.rate_limit, denied.rate_limit)
        # the default window is a minute
        d = self.acquire(t, "default.example", 1)
        self.assertEqual(d.rate_limit.window_ms, 60000)

    def test_1000_concurrent_exactly_max(self):
        t = self.new_tenant()
        stubs = [self.web] + [self.extra_stub() for _ in range(3)]
        md = [("x-tenant-id", t)]
        req = wn.AcquireRateLimitRequest(domain="hot.example", max_requests=100, window_ms=600000)
        futures = [stubs[i % 4].AcquireRateLimit.future(req, metadata=md, timeout=120)
                   for i in range(1000)]
        results = [f.result() for f in futures]
        allowed = [r for r in results if r.allowed]
        self.assertEqual(len(allowed), 100)
        # each allowed call saw a distinct count: 1..100
        self.assertEqual(sorted(r.rate_limit.requests_in_window for r in allowed),
                         list(range(1, 101)))
        self.assertTrue(all(r.retry_after_ms > 0 for r in results if not r.allowed))
        got = self.call("GetRateLimit", wn.GetRateLimitRequest(domain="hot.example"), t)
        self.assertEqual(got.rate_limit.requests_in_window, 100)
        self.assertEqual(sql_value("SELECT count(*) FROM web_rate_limits WHERE tenant_id = '%s'"
                                   % t), "1")

    def test_window_resets(self):
        t = self.new_tenant()
        a = self.acquire(t, "w.example", 2, 1000)
        self.assertTrue(self.acquire(t, "w.example", 2, 1000).allowed)
        denied = self.acquire(t, "w.example", 2, 1000)
        self.assertFalse(denied.allowed)
        self.assertLessEqual(denied.retry_after_ms, 1000)
        time.sleep(max(denied.retry_after_ms, 1) / 1000 + 0.05)
        r = self.acquire(t, "w.example", 2, 1000)
        self.assertTrue(r.allowed)
        self.assertEqual(r.rate_limit.requests_in_window, 1)
        self.assertGreaterEqual(seconds_between(r.rate_limit.window_started_at,
                                                a.rate_limit.window_started_at), 1.0)

    def test_backoff_honoured(self):
        t = self.new_tenant()
        self.assertTrue(self.acquire(t, "b.example", 100).allowed)
        b = self.call("SetBackoff", wn.SetBackoffRequest(domain="B.example", backoff_ms=1500,
                                                         reason="429 Too Many Requests"), t)
        self.assertEqual(b.rate_limit.backoff_reason, "429 Too Many Requests")
        self.assertAlmostEqual(seconds_between(b.rate_limit.backoff_until, ts_of(utcnow())), 1.5,
                               delta=0.5)
        # concurrent callers during the backoff: none passes, none is counted
        md = [("x-tenant-id", t)]
        req = wn.AcquireRateLimitRequest(domain="b.example", max_requests=100)
        futures = [self.web.AcquireRateLimit.future(req, metadata=md, timeout=60)
                   for _ in range(50)]
        results = [f.result() for f in futures]
        self.assertFalse(any(r.allowed for r in results))
        self.assertTrue(all(0 < r.retry_after_ms <= 1500 for r in results))
        self.assertEqual(results[-1].rate_limit.requests_in_window, 1)
        time.sleep(max(r.retry_after_ms for r in results) / 1000 + 0.05)
        after = self.acquire(t, "b.example", 100)
        self.assertTrue(after.allowed)
        self.assertEqual(after.rate_limit.requests_in_window, 2)
        self.assertFalse(after.rate_limit.HasField("backoff_until"))
        self.assertEqual(after.rate_limit.backoff_reason, "")

    def test_backoff_zero_lifts(self):
        t = self.new_tenant()
        self.acquire(t, "z.example", 10)
        self.call("SetBackoff", wn.SetBackoffRequest(domain="z.example", backoff_ms=60000,
                                                     reason="slow down"), t)
        self.assertFalse(self.acquire(t, "z.example", 10).allowed)
        r = self.call("SetBackoff", wn.SetBackoffRequest(domain="z.example", reason="x"), t)
        self.assertFalse(r.rate_limit.HasField("backoff_until"))
        self.assertEqual(r.rate_limit.backoff_reason, "")
        self.assertTrue(self.acquire(t, "z.example", 10).allowed)

    def test_reset(self):
        t = self.new_tenant()
        for _ in range(3):
            self.acquire(t, "r.example", 2)
        self.call("SetBackoff", wn.SetBackoffRequest(domain="r.example", backoff_ms=60000), t)
        r = self.call("ResetRateLimit", wn.ResetRateLimitRequest(domain="r.example"), t)
        self.assertEqual(r.rate_limit.requests_in_window, 0)
        self.assertFalse(r.rate_limit.HasField("backoff_until"))
        self.assertEqual((r.rate_limit.max_requests, r.rate_limit.window_ms), (2, 60000))
        self.assertTrue(self.acquire(t, "r.example", 2).allowed)
        self.assertTrue(self.acquire(t, "r.example", 2).allowed)
        self.assertFalse(self.acquire(t, "r.example", 2).allowed)

    def test_a_lower_limit_applies_at_once(self):
        t = self.new_tenant()
        for _ in range(3):
            self.assertTrue(self.acquire(t, "l.example", 10).allowed)
        r = self.acquire(t, "l.example", 2)
        self.assertFalse(r.allowed)
        self.assertEqual((r.rate_limit.requests_in_window, r.rate_limit.max_requests), (3, 2))

    def test_errors(self):
        t = self.new_tenant()
        A = wn.AcquireRateLimitRequest
        self.assertCode(Code.INVALID_ARGUMENT, "AcquireRateLimit", A(domain="x.org"), t,
                        "max_requests")
        self.assertCode(Code.INVALID_ARGUMENT, "AcquireRateLimit",
                        A(domain="x.org", max_requests=1, window_ms=-5), t, "window_ms")
        self.assertCode(Code.INVALID_ARGUMENT, "AcquireRateLimit", A(max_requests=1), t,
                        "domain")
        self.assertCode(Code.INVALID_ARGUMENT, "AcquireRateLimit",
                        A(domain="x" * 254, max_requests=1), t, "domain")
        for method, req in (("GetRateLimit", wn.GetRateLimitRequest(domain="none.example")),
                            ("SetBackoff", wn.SetBackoffRequest(domain="none.example",
                                                                backoff_ms=10)),
                            ("ResetRateLimit", wn.ResetRateLimitRequest(domain="none.example"))):
            self.assertCode(Code.NOT_FOUND, method, req, t)
        self.assertCode(Code.INVALID_ARGUMENT, "SetBackoff",
                        wn.SetBackoffRequest(domain="x.org", backoff_ms=-1), t, "backoff_ms")
        self.assertEqual(sql_value("SELECT count(*) FROM web_rate_limits WHERE tenant_id = '%s'"
                                   % t), "0")


class Domains(WebCase):
    def test_many_domains_concurrently(self):
        """Threads hammering 20 domains at once: every domain ends at exactly
        its maximum, whatever the interleaving."""
        t = self.new_tenant()
        stubs = [self.web] + [self.extra_stub() for _ in range(3)]
        md = [("x-tenant-id", t)]
        counts = {}
        lock = threading.Lock()

        def worker(k):
            for i in range(60):
                d = "d%d.example" % ((i + k) % 20)
                r = stubs[k].AcquireRateLimit(wn.AcquireRateLimitRequest(
                    domain=d, max_requests=5), metadata=md, timeout=60)
                if r.allowed:
                    with lock:
                        counts[d] = counts.get(d, 0) + 1

        threads = [threading.Thread(target=worker, args=(k,)) for k in range(4)]
        for th in threads:
            th.start()
        for th in threads:
            th.join()
        self.assertEqual(counts, {"d%d.example" % i: 5 for i in range(20)})


if __name__ == "__main__":
    unittest.main(verbosity=2)
