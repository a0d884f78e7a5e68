"""Tenant isolation matrix for WebNavigator: tenant B can neither see nor
change tenant A's content, cache entries, counters, metrics, rate limits,
traversals or nodes through any of the 17 methods, nor reference A's rows
from its own; every A row is byte-for-byte the same afterwards (read as
superuser). The same URL, content, domain and start URL live side by side
in two tenants. A call without a tenant is refused and writes nothing. At
the SQL level the app role without a tenant setting sees and inserts
nothing."""
import unittest

from webcommon import (Code, WebCase, harness, psql, sql_value, start_server, stop_server,
                       wn)

TABLES = ("web_content", "web_cache", "web_cache_counters", "web_extraction_metrics",
          "web_rate_limits", "web_traversals", "web_crawl_nodes")


def setUpModule():
    start_server()


def tearDownModule():
    stop_server()


def snapshot(tenant):
    """Every row of |tenant| in every web table, as text (superuser, one
    query): {table: rows}."""
    sql = " UNION ALL ".join(
        "SELECT '%s', string_agg(x::text, ' ' ORDER BY x::text) FROM %s x"
        " WHERE tenant_id = '%s'" % (tbl, tbl, tenant) for tbl in TABLES)
    return dict(line.split("|", 1) for line in sql_value(sql).splitlines())


def total_rows():
    return sql_value(" UNION ALL ".join("SELECT count(*) FROM %s" % t for t in TABLES))


class Isolation(WebCase):
    def setUp(self):
        super().setUp()
        self.A, self.B = self.new_tenant("a"), self.new_tenant("b")
        A = self.A
        self.content = self.store(A, "https://shared.example/page", "A's text",
                                  links=[wn.Link(url="https://shared.example/l")])
        self.store(A, "https://a.example/expired", "A's old text", ttl_ms=1)
        self.lookup(A, "https://shared.example/page")
        self.lookup(A, "https://a.example/none")
        self.call("StoreExtractionMetrics", wn.StoreExtractionMetricsRequest(
            content_id=self.content.id, total_ms=10, status_code=200), A)
        self.acquire(A, "shared.example", 5)
        self.call("SetBackoff", wn.SetBackoffRequest(domain="shared.example", backoff_ms=600000,
                                                     reason="A's backoff"), A)
        self.trav = self.traversal(A, "https://shared.example/")
        self.add(A, self.trav.id, [("https://shared.example/x", 1)])
        self.node = self.claim(A, self.trav.id, 1)[0]
        self.before = snapshot(A)
        self.assertTrue(all(self.before.values()), self.before)  # A has rows everywhere

    def assertAUnchanged(self):
        self.assertEqual(snapshot(self.A), self.before)

    def test_b_cannot_read(self):
        B = self.B
        miss = self.lookup(B, "https://shared.example/page")
        self.assertFalse(miss.hit)
        self.assertFalse(miss.HasField("content"))
        stats = self.call("GetContentCacheStats", wn.GetContentCacheStatsRequest(), B)
        self.assertEqual((stats.total_pages, stats.cache_size_bytes, stats.hits), (0, 0, 0))
        self.assertEqual(stats.misses, 1)  # B's own miss just now, not A's
        self.assertEqual(self.call("GetExtractionStats", wn.GetExtractionStatsRequest(), B).count,
                         0)
        self.assertCode(Code.NOT_FOUND, "GetRateLimit",
                        wn.GetRateLimitRequest(domain="shared.example"), B)
        self.assertCode(Code.NOT_FOUND, "GetTraversal", wn.GetTraversalRequest(id=self.trav.id),
                        B)
        self.assertCode(Code.NOT_FOUND, "ClaimNodes",
                        wn.ClaimNodesRequest(traversal_id=self.trav.id, max=10), B)
        self.assertAUnchanged()

    def test_b_cannot_write(self):
        B, trav, node = self.B, self.trav, self.node
        for method, req in (
                ("SetBackoff", wn.SetBackoffRequest(domain="shared.example", backoff_ms=1)),
                ("ResetRateLimit", wn.ResetRateLimitRequest(domain="shared.example")),
                ("AddNodes", wn.AddNodesRequest(traversal_id=trav.id, nodes=[
                    wn.CrawlNode(url="https://b.example/", depth=1)])),
                ("UpdateNode", wn.UpdateNodeRequest(node_id=node.id, status=wn.NODE_STATUS_DONE)),
                ("UpdateTraversalStatus", wn.UpdateTraversalStatusRequest(
                    id=trav.id, status=wn.TRAVERSAL_STATUS_CANCELLED))):
            self.assertCode(Code.NOT_FOUND, method, req, B)
        # references to A's rows from B's own are unknown references
        self.assertCode(Code.FAILED_PRECONDITION, "CacheContent", wn.CacheContentRequest(
            url="https://b.example/", content_id=self.content.id), B, "content_id")
        self.assertCode(Code.FAILED_PRECONDITION, "StoreExtractionMetrics",
                        wn.StoreExtractionMetricsRequest(content_id=self.content.id), B,
                        "content_id")
        btrav = self.traversal(B, "https://b.example/")
        bnode = self.claim(B, btrav.id, 1)[0]
        self.assertCode(Code.FAILED_PRECONDITION, "AddNodes", wn.AddNodesRequest(
            traversal_id=btrav.id, nodes=[wn.CrawlNode(url="https://b.example/y", depth=1,
                                                       parent_id=node.id)]), B,
            "nodes.parent_id")
        self.assertCode(Code.FAILED_PRECONDITION, "UpdateNode", wn.UpdateNodeRequest(
            node_id=bnode.id, status=wn.NODE_STATUS_DONE, content_id=self.content.id), B,
            "content_id")
        # B's cleanup leaves A's expired entry alone
        r = self.call("CleanupExpiredContent", wn.CleanupExpiredContentRequest(), B)
        self.assertEqual((r.removed, r.removed_content), (0, 0))
        self.assertAUnchanged()

    def test_same_keys_side_by_side(self):
        B = self.B
        b = self.store(B, "https://shared.example/page", "A's text")
        self.assertEqual(b.content_hash, self.content.content_hash)
        self.assertNotEqual(b.id, self.content.id)  # dedupe is per tenant
        self.assertEqual(len(self.lookup(B, "https://shared.example/page").content.links), 0)
        r = self.acquire(B, "shared.example", 5)
        self.assertTrue(r.allowed)  # A's backoff is A's
        self.assertEqual(r.rate_limit.requests_in_window, 1)
        bt = self.traversal(B, "https://shared.example/")
        self.assertEqual(self.add(B, bt.id, [("https://shared.example/x", 1)]).added, 1)
        self.assertEqual([n.url for n in self.claim(B, bt.id, 10)],
                         ["https://shared.example/", "https://shared.example/x"])
        self.assertAUnchanged()

    def test_no_tenant_is_refused_and_writes_nothing(self):
        before = total_rows()
        calls = [
            ("StoreContent", wn.StoreContentRequest(content=wn.WebContent(url="u", content="c"))),
            ("GetContentByUrl", wn.GetContentByUrlRequest(url="https://shared.example/page")),
            ("CacheContent", wn.CacheContentRequest(url="u", content_id=self.content.id)),
            ("CleanupExpiredContent", wn.CleanupExpiredContentRequest()),
            ("GetContentCacheStats", wn.GetContentCacheStatsRequest()),
            ("StoreExtractionMetrics", wn.StoreExtractionMetricsRequest(total_ms=1)),
            ("GetExtractionStats", wn.GetExtractionStatsRequest()),
            ("AcquireRateLimit", wn.AcquireRateLimitRequest(domain="x.org", max_requests=1)),
            ("GetRateLimit", wn.GetRateLimitRequest(domain="shared.example")),
            ("SetBackoff", wn.SetBackoffRequest(domain="shared.example", backoff_ms=1)),
            ("ResetRateLimit", wn.ResetRateLimitRequest(domain="shared.example")),
            ("CreateTraversal", wn.CreateTraversalRequest(start_url="https://x.org/")),
            ("AddNodes", wn.AddNodesRequest(traversal_id=self.trav.id)),
            ("ClaimNodes", wn.ClaimNodesRequest(traversal_id=self.trav.id, max=1)),
            ("UpdateNode", wn.UpdateNodeRequest(node_id=self.node.id,
                                                status=wn.NODE_STATUS_DONE)),
            ("UpdateTraversalStatus", wn.UpdateTraversalStatusRequest(
                id=self.trav.id, status=wn.TRAVERSAL_STATUS_FAILED)),
            ("GetTraversal", wn.GetTraversalRequest(id=self.trav.id)),
        ]
        self.assertEqual(len(calls), len(wn.DESCRIPTOR.services_by_name["WebNavigator"].methods))
        for method, req in calls:
            self.assertIn("x-tenant-id", self.assertCode(Code.INVALID_ARGUMENT, method, req, None))
        self.assertEqual(total_rows(), before)
        self.assertAUnchanged()


class SqlLevel(unittest.TestCase):
    """The app role itself, through psql, with and without a tenant setting."""

    @classmethod
    def setUpClass(cls):
        harness.skip_without_database()
        cls.app = harness.database_url()
        sql_value("INSERT INTO tenants (id, name) VALUES ('sql-w', 'w') ON CONFLICT DO NOTHING")
        sql_value("BEGIN; SELECT set_config('app.current_tenant', 'sql-w', true);"
                  " INSERT INTO web_traversals (start_url, max_depth, max_pages, strategy)"
                  " VALUES ('https://sql.example/', 1, 1, 'BREADTH_FIRST'); COMMIT;", cls.app)

    def test_no_setting_sees_nothing(self):
        for tbl in TABLES:
            self.assertEqual(sql_value("SELECT count(*) FROM %s" % tbl, self.app), "0", tbl)
        self.assertEqual(sql_value("BEGIN; SELECT set_config('app.current_tenant', 'sql-w', true);"
                                   " SELECT count(*) FROM web_traversals; COMMIT;",
                                   self.app).split()[-1], "1")

    def test_no_setting_cannot_insert(self):
        rc, _, err = psql("INSERT INTO web_rate_limits (tenant_id, domain, max_requests,"
                          " window_ms, window_started_at, last_attempt_at, last_allowed)"
                          " VALUES ('sql-w', 'x', 1, 1, now(), now(), true)", self.app,
                          check=False)
        self.assertNotEqual(rc, 0)
        self.assertIn("row-level security", err)

    def test_grants_are_minimal(self):
        """What nothing deletes cannot be deleted; metrics are append-only."""
        for tbl in ("web_rate_limits", "web_cache_counters", "web_extraction_metrics",
                    "web_traversals", "web_crawl_nodes"):
            rc, _, err = psql("DELETE FROM %s" % tbl, self.app, check=False)
            self.assertIn("permission denied", err, tbl)
        rc, _, err = psql("UPDATE web_extraction_metrics SET total_ms = 0", self.app, check=False)
        self.assertIn("permission denied", err)
        self.assertEqual(sql_value("SELECT rolsuper, rolbypassrls FROM pg_roles"
                                   " WHERE rolname = current_user", self.app), "f|f")


if __name__ == "__main__":
    unittest.main(verbosity=2)
