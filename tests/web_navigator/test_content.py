"""WebNavigator content: StoreContent (dedupe by server-computed SHA-256,
links and images round-trip), GetContentByUrl (fresh entries only, hits
and misses counted), CacheContent, CleanupExpiredContent, the cache
statistics' arithmetic, and the extraction metrics; with their errors."""
import datetime
import hashlib
import json
import math
import time
import unittest

from webcommon import (ZERO_UUID, Code, WebCase, seconds_between, sql_value, start_server,
                       stop_server, ts_of, utcnow, wn)

HOUR = datetime.timedelta(hours=1)


def setUpModule():
    start_server()


def tearDownModule():
    stop_server()


def sha(text):
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


class Store(WebCase):
    def test_round_trip(self):
        t = self.new_tenant()
        extracted = ts_of(utcnow() - 2 * HOUR)
        links = [wn.Link(url="https://ex.org/b", text="B"), wn.Link(url="https://ex.org/c")]
        images = [wn.Image(url="https://ex.org/i.png", alt="an \"image\"")]
        c = self.store(t, "https://ex.org/a", "h\u00e9llo \u2713 world", ttl_ms=60000,
                       title="A page", links=links, images=images,
                       metadata_json='{"lang": "en", "n": [1, 2]}', status_code=200,
                       content_type="text/html", extracted_at=extracted)
        self.assertRegex(c.id, r"^[0-9a-f-]{36}$")
        self.assertEqual(c.content_hash, sha("h\u00e9llo \u2713 world"))
        self.assertEqual(list(c.links), links)
        self.assertEqual(list(c.images), images)
        self.assertEqual(json.loads(c.metadata_json), {"lang": "en", "n": [1, 2]})
        self.assertEqual(c.extracted_at, extracted)

        got = self.lookup(t, "https://ex.org/a")
        self.assertTrue(got.hit)
        self.assertEqual(got.content, c)
        # fresh until about now + ttl
        self.assertAlmostEqual(seconds_between(got.expires_at, ts_of(utcnow())), 60, delta=10)

    def test_defaults(self):
        t = self.new_tenant()
        before = ts_of(utcnow() - datetime.timedelta(seconds=5))
        c = self.store(t, "https://ex.org/d", "")
        self.assertEqual(c.content_hash, sha(""))
        self.assertEqual((c.title, c.metadata_json, len(c.links), c.status_code), ("", "{}", 0, 0))
        self.assertGreater(c.extracted_at.ToNanoseconds(), before.ToNanoseconds())
        got = self.lookup(t, "https://ex.org/d")
        self.assertAlmostEqual(seconds_between(got.expires_at, ts_of(utcnow())), 86400, delta=60)

    def test_dedupe_by_hash(self):
        t = self.new_tenant()
        a = self.store(t, "https://ex.org/1", "same text", title="first")
        b = self.store(t, "https://ex.org/2", "same text", title="second",
                       links=[wn.Link(url="https://ex.org/x")])
        other = self.store(t, "https://ex.org/3", "other text")
        self.assertEqual(a.id, b.id)
        self.assertEqual(a.content_hash, b.content_hash)
        self.assertNotEqual(other.id, a.id)
        self.assertEqual(sql_value("SELECT count(*) FROM web_content WHERE tenant_id = '%s'" % t),
                         "2")
        # both URLs point at the one row, which has the newest description
        for url in ("https://ex.org/1", "https://ex.org/2"):
            got = self.lookup(t, url)
            self.assertTrue(got.hit)
            self.assertEqual((got.content.id, got.content.url, got.content.title),
                             (a.id, url, "second"))
            self.assertEqual(len(got.content.links), 1)

    def test_restore_refreshes_the_entry(self):
        t = self.new_tenant()
        self.store(t, "https://ex.org/r", "v1", ttl_ms=1)
        time.sleep(0.01)
        self.assertFalse(self.lookup(t, "https://ex.org/r").hit)
        c2 = self.store(t, "https://ex.org/r", "v2")
        got = self.lookup(t, "https://ex.org/r")
        self.assertTrue(got.hit)
        self.assertEqual((got.content.id, got.content.content), (c2.id, "v2"))

    def test_errors(self):
        t = self.new_tenant()
        S = wn.StoreContentRequest
        self.assertCode(Code.INVALID_ARGUMENT, "StoreContent", S(), t, "content")
        self.assertCode(Code.INVALID_ARGUMENT, "StoreContent",
                        S(content=wn.WebContent(content="x")), t, "content.url")
        # 1,000 characters but 3,000 bytes: the database's CHECK names the field
        self.assertCode(Code.INVALID_ARGUMENT, "StoreContent",
                        S(content=wn.WebContent(url="https://ex.org/" + "\u20ac" * 1000)), t,
                        "content.url")
        self.assertCode(Code.INVALID_ARGUMENT, "StoreContent",
                        S(content=wn.WebContent(url="u", metadata_json="[1]")), t,
                        "content.metadata_json")
        self.assertCode(Code.INVALID_ARGUMENT, "StoreContent",
                        S(content=wn.WebContent(url="u", status_code=1000)), t,
                        "content.status_code")
        self.assertCode(Code.INVALID_ARGUMENT, "StoreContent",
                        S(content=wn.WebContent(url="u"), ttl_ms=-1), t, "ttl_ms")
        self.assertCode(Code.INVALID_ARGUMENT, "GetContentByUrl", wn.GetContentByUrlRequest(),
                        t, "url")
        self.assertEqual(sql_value("SELECT count(*) FROM web_content WHERE tenant_id = '%s'" % t),
                         "0")
        msg = self.assertCode(Code.FAILED_PRECONDITION, "StoreContent",
                              S(content=wn.WebContent(url="u")), "no-such-tenant")
        self.assertIn("Admin.CreateTenant", msg)


class Cache(WebCase):
    def hit_count(self, t, url):
        return int(sql_value("SELECT hit_count FROM web_cache WHERE tenant_id = '%s'"
                             " AND url = '%s'" % (t, url)))

    def test_miss_absent_and_expired(self):
        t = self.new_tenant()
        got = self.lookup(t, "https://ex.org/none")
        self.assertFalse(got.hit)
        self.assertFalse(got.HasField("content"))
        self.assertFalse(got.HasField("expires_at"))
        self.store(t, "https://ex.org/old", "old", ttl_ms=1)
        time.sleep(0.01)
        got = self.lookup(t, "https://ex.org/old")
        self.assertFalse(got.hit)
        self.assertFalse(got.HasField("content"))
        self.assertEqual(self.hit_count(t, "https://ex.org/old"), 0)
        stats = self.call("GetContentCacheStats", wn.GetContentCacheStatsRequest(), t)
        self.assertEqual((stats.hits, stats.misses), (0, 2))

    def test_hit_bumps_hit_count(self):
        t = self.new_tenant()
        self.store(t, "https://ex.org/h", "h")
        for _ in range(3):
            self.assertTrue(self.lookup(t, "https://ex.org/h").hit)
        self.assertEqual(self.hit_count(t, "https://ex.org/h"), 3)

    def test_cache_content(self):
        t = self.new_tenant()
        c = self.store(t, "https://ex.org/src", "cached body")
        self.lookup(t, "https://ex.org/src")
        r = self.call("CacheContent", wn.CacheContentRequest(url="https://ex.org/alias",
                                                             content_id=c.id, ttl_ms=3600000), t)
        self.assertEqual((r.url, r.content_id), ("https://ex.org/alias", c.id))
        self.assertAlmostEqual(seconds_between(r.expires_at, ts_of(utcnow())), 3600, delta=10)
        got = self.lookup(t, "https://ex.org/alias")
        self.assertTrue(got.hit)
        self.assertEqual((got.content.id, got.content.url, got.content.content),
                         (c.id, "https://ex.org/alias", "cached body"))
        # repointing an entry starts its hit count afresh
        c2 = self.store(t, "https://ex.org/other", "other body")
        self.call("CacheContent", wn.CacheContentRequest(url="https://ex.org/src",
                                                         content_id=c2.id), t)
        self.assertEqual(self.hit_count(t, "https://ex.org/src"), 0)
        self.assertEqual(self.lookup(t, "https://ex.org/src").content.content, "other body")

    def test_cache_content_errors(self):
        t = self.new_tenant()
        C = wn.CacheContentRequest
        self.assertCode(Code.FAILED_PRECONDITION, "CacheContent",
                        C(url="https://ex.org/x", content_id=ZERO_UUID), t, "content_id")
        self.assertCode(Code.INVALID_ARGUMENT, "CacheContent",
                        C(url="https://ex.org/x", content_id="nope"), t, "content_id")
        self.assertCode(Code.INVALID_ARGUMENT, "CacheContent", C(content_id=ZERO_UUID), t,
                        "url")
        self.assertEqual(sql_value("SELECT count(*) FROM web_cache WHERE tenant_id = '%s'" % t),
                         "0")

    def test_cleanup(self):
        t = self.new_tenant()
        gone = self.store(t, "https://ex.org/gone", "gone body", ttl_ms=1)
        shared = self.store(t, "https://ex.org/s1", "shared body", ttl_ms=1)
        self.store(t, "https://ex.org/s2", "shared body")  # fresh: keeps the content
        keep = self.store(t, "https://ex.org/keep", "kept body")
        metric = self.call("StoreExtractionMetrics", wn.StoreExtractionMetricsRequest(
            content_id=gone.id, total_ms=5), t)
        tr = self.traversal(t, "https://ex.org/gone")
        node = self.claim(t, tr.id, 1)[0]
        self.call("UpdateNode", wn.UpdateNodeRequest(node_id=node.id, status=wn.NODE_STATUS_DONE,
                                                     content_id=gone.id), t)
        time.sleep(0.01)
        r = self.call("CleanupExpiredContent", wn.CleanupExpiredContentRequest(), t)
        self.assertEqual((r.removed, r.removed_content), (2, 1))
        ids = sql_value("SELECT string_agg(id::text, ',' ORDER BY id) FROM web_content"
                        " WHERE tenant_id = '%s'" % t).split(",")
        self.assertEqual(sorted(ids), sorted([shared.id, keep.id]))
        # what pointed at the removed content keeps its row, without the reference
        self.assertEqual(sql_value("SELECT content_id IS NULL FROM web_extraction_metrics"
                                   " WHERE id = '%s'" % metric.id), "t")
        self.assertEqual(sql_value("SELECT content_id IS NULL FROM web_crawl_nodes"
                                   " WHERE id = '%s'" % node.id), "t")
        self.assertTrue(self.lookup(t, "https://ex.org/s2").hit)
        r = self.call("CleanupExpiredContent", wn.CleanupExpiredContentRequest(), t)
        self.assertEqual((r.removed, r.removed_content), (0, 0))

    def test_stats_arithmetic(self):
        t = self.new_tenant()
        empty = self.call("GetContentCacheStats", wn.GetContentCacheStatsRequest(), t)
        self.assertEqual(empty, wn.GetContentCacheStatsResponse())
        now = utcnow()
        ages = [0.5, 3, 8, 20, 30, 50]  # hours: one per bucket, two older
        bodies = ["body %d \u00e9" % i for i in range(len(ages))]
        for i, (age, body) in enumerate(zip(ages, bodies)):
            self.store(t, "https://ex.org/p%d" % i, body,
                       extracted_at=ts_of(now - datetime.timedelta(hours=age)))
        self.store(t, "https://ex.org/expired", "expired body", ttl_ms=1)
        time.sleep(0.01)
        hits = ["https://ex.org/p0", "https://ex.org/p0", "https://ex.org/p3",
                "https://ex.org/p5"]
        misses = ["https://ex.org/expired", "https://ex.org/nothing", "https://ex.org/nothing"]
        for url in hits:
            self.assertTrue(self.lookup(t, url).hit)
        for url in misses:
            self.assertFalse(self.lookup(t, url).hit)
        s = self.call("GetContentCacheStats", wn.GetContentCacheStatsRequest(), t)
        self.assertEqual(s.total_pages, len(ages))
        self.assertEqual(s.cache_size_bytes,
                         sum(len(b.encode()) for b in bodies + ["expired body"]))
        self.assertEqual((s.hits, s.misses), (4, 3))
        self.assertAlmostEqual(s.hit_rate, 4 / 7, places=12)
        self.assertEqual((s.under_1h, s.under_6h, s.under_12h, s.under_24h, s.older),
                         (1, 1, 1, 1, 2))
        self.assertEqual(s.under_1h + s.under_6h + s.under_12h + s.under_24h + s.older,
                         s.total_pages)
        self.call("CleanupExpiredContent", wn.CleanupExpiredContentRequest(), t)
        s = self.call("GetContentCacheStats", wn.GetContentCacheStatsRequest(), t)
        self.assertEqual(s.cache_size_bytes, sum(len(b.encode()) for b in bodies))
        self.assertEqual((s.hits, s.misses), (4, 3))  # counters survive the cleanup

    def test_counters_under_concurrency(self):
        t = self.new_tenant()
        self.store(t, "https://ex.org/c", "c")
        stubs = [self.web] + [self.extra_stub() for _ in range(3)]
        md = [("x-tenant-id", t)]
        futures = [stubs[i % 4].GetContentByUrl.future(
            wn.GetContentByUrlRequest(url="https://ex.org/c" if i % 3 else "https://ex.org/n"),
            metadata=md, timeout=60) for i in range(300)]
        outcomes = [f.result().hit for f in futures]
        s = self.call("GetContentCacheStats", wn.GetContentCacheStatsRequest(), t)
        self.assertEqual((s.hits, s.misses), (outcomes.count(True), outcomes.count(False)))
        self.assertEqual((s.hits, s.misses), (200, 100))


def percentile_cont(values, p):
    v = sorted(values)
    pos = p * (len(v) - 1)
    lo = math.floor(pos)
    hi = min(lo + 1, len(v) - 1)
    return v[lo] + (pos - lo) * (v[hi] - v[lo])


class Extraction(WebCase):
    def test_metrics_and_stats(self):
        t = self.new_tenant()
        c = self.store(t, "https://ex.org/m", "m")
        rows = [(12.5, 200, True, True), (40, 200, False, True), (7, 301, False, False),
                (90, 404, True, False), (300, 503, False, True), (1, 0, False, False),
                (55.25, 200, False, True)]
        for i, (total, code, bad, ssl) in enumerate(rows):
            r = self.call("StoreExtractionMetrics", wn.StoreExtractionMetricsRequest(
                content_id=c.id if i % 2 else "", total_ms=total, fetch_ms=total / 2,
                parse_ms=1, sanitize_ms=0.5, status_code=code, content_type="text/html",
                ssl_verified=ssl, malicious_detected=bad, sanitized=bad), t)
            self.assertRegex(r.id, r"^[0-9a-f-]{36}$")
            self.assertTrue(r.HasField("recorded_at"))
        s = self.call("GetExtractionStats", wn.GetExtractionStatsRequest(), t)
        totals = [r[0] for r in rows]
        self.assertEqual(s.count, len(rows))
        self.assertAlmostEqual(s.p50_total_ms, percentile_cont(totals, 0.5), places=9)
        self.assertAlmostEqual(s.p95_total_ms, percentile_cont(totals, 0.95), places=9)
        self.assertAlmostEqual(s.average_total_ms, sum(totals) / len(totals), places=9)
        self.assertEqual(s.malicious_count, 2)
        self.assertEqual(s.sanitized_count, 2)
        self.assertEqual(s.ssl_verified_count, 4)
        self.assertEqual(dict(s.by_status_class), {"2xx": 3, "3xx": 1, "4xx": 1, "5xx": 1,
                                                   "other": 1})
        later = self.call("GetExtractionStats", wn.GetExtractionStatsRequest(
            since=ts_of(utcnow() + HOUR)), t)
        self.assertEqual(later, wn.GetExtractionStatsResponse())
        earlier = self.call("GetExtractionStats", wn.GetExtractionStatsRequest(
            since=ts_of(utcnow() - HOUR)), t)
        self.assertEqual(earlier.count, len(rows))

    def test_errors(self):
        t = self.new_tenant()
        M = wn.StoreExtractionMetricsRequest
        self.assertCode(Code.FAILED_PRECONDITION, "StoreExtractionMetrics",
                        M(content_id=ZERO_UUID, total_ms=1), t, "content_id")
        self.assertCode(Code.INVALID_ARGUMENT, "StoreExtractionMetrics",
                        M(content_id="x", total_ms=1), t, "content_id")
        self.assertCode(Code.INVALID_ARGUMENT, "StoreExtractionMetrics", M(total_ms=-1), t,
                        "total_ms")
        self.assertCode(Code.INVALID_ARGUMENT, "StoreExtractionMetrics",
                        M(total_ms=float("nan")), t, "total_ms")
        self.assertCode(Code.INVALID_ARGUMENT, "StoreExtractionMetrics", M(status_code=-1), t,
                        "status_code")
        self.assertEqual(self.call("GetExtractionStats", wn.GetExtractionStatsRequest(), t).count,
                         0)


if __name__ == "__main__":
    unittest.main(verbosity=2)
