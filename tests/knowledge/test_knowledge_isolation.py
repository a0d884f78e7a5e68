"""Tenant isolation matrix over every Knowledge method: tenant B can
neither see, list, search, update nor reference tenant A's queries,
results, responses, providers and cache entries, nor learn A's cache hits;
a write aimed at A's rows changes nothing (checked by reading everything
A can see before and after). A call without a tenant is rejected and
writes nothing. At the SQL level the app role without a tenant setting
sees no row of any Knowledge table and cannot write one for a tenant."""
import os
import unittest
import uuid

from kcommon import (Code, KnowledgeCase, harness, kn, psql, result, sql_value, start_server,
                     stop_server)

TABLES = ("knowledge_queries", "search_results", "knowledge_responses",
          "knowledge_response_sources", "search_provider_health", "knowledge_cache",
          "knowledge_cache_counters")


def setUpModule():
    start_server()


def tearDownModule():
    stop_server()


class Isolation(KnowledgeCase):
    def setUp(self):
        super().setUp()
        self.A, self.B = self.new_tenant("a"), self.new_tenant("b")
        A = self.A
        self.q = self.store_query(A, "secret question", tags=["secret"])
        self.done = self.store_query(A, "answered question")
        self.rids = list(self.store_results(A, self.q.id, [
            result("classified zebra content", relevance=0.9),
            result("other secret text", relevance=0.4)]).result_ids)
        self.call("StoreResponse", kn.StoreResponseRequest(response=kn.KnowledgeResponse(
            query_id=self.done.id, summary="secret answer", source_result_ids=self.rids)), A)
        self.record(A, "google", True, 100)
        self.put(A, "key-a", '{"secret": 1}', ttl_ms=86400000)
        self.put(A, "expired-a", '{"old": 1}', ttl_ms=1)
        self.get(A, "key-a")
        self.get(A, "missing")
        self.snapshot = self.view_of_a()

    def view_of_a(self):
        """Everything A can see (and the rows only the superuser sees)."""
        A = self.A

        def ser(m):
            return m.SerializeToString(deterministic=True)

        queries = self.call("ListQueries", kn.ListQueriesRequest(), A).queries
        results = self.call("ListResults", kn.ListResultsRequest(query_id=self.q.id), A).results
        response = self.call("GetResponse", kn.GetResponseRequest(query_id=self.done.id), A)
        providers = self.call("ListProviders", kn.ListProvidersRequest(), A).providers
        for p in providers:  # these read 0 once their clock window passed: compare the rows
            p.ClearField("requests_this_minute")
            p.ClearField("requests_this_hour")
        rows = sql_value("SELECT string_agg(concat_ws(':', name, requests_this_minute,"
                         " minute_start, requests_this_hour, hour_start), ',' ORDER BY name)"
                         " FROM search_provider_health WHERE tenant_id = '%s'" % A)
        stats = self.stats(A)
        entries = sql_value("SELECT string_agg(key || ':' || access_count || ':' || expires_at,"
                            " ',' ORDER BY key) FROM knowledge_cache WHERE tenant_id = '%s'" % A)
        return ([ser(q) for q in queries], [ser(r) for r in results], ser(response),
                [ser(p) for p in providers], rows, ser(stats), entries)

    def assertAUnchanged(self):
        self.assertEqual(self.view_of_a(), self.snapshot)

    def test_b_cannot_read(self):
        B, q = self.B, self.q
        self.assertCode(Code.NOT_FOUND, "GetQuery", kn.GetQueryRequest(id=q.id), B)
        self.assertEqual(len(self.call("ListQueries", kn.ListQueriesRequest(), B).queries), 0)
        self.assertEqual(len(self.call("ListQueries", kn.ListQueriesRequest(tag="secret"),
                                       B).queries), 0)
        self.assertEqual(len(self.call("ListResults", kn.ListResultsRequest(query_id=q.id),
                                       B).results), 0)
        for text in ("zebra", "secret", "classified OR other"):
            self.assertEqual(len(self.call("SearchResultsText", kn.SearchResultsTextRequest(
                text=text), B).results), 0, text)
        self.assertCode(Code.NOT_FOUND, "GetResponse",
                        kn.GetResponseRequest(query_id=self.done.id), B)
        self.assertCode(Code.NOT_FOUND, "GetProviderHealth",
                        kn.GetProviderHealthRequest(name="google"), B)
        self.assertEqual(len(self.call("ListProviders", kn.ListProvidersRequest(),
                                       B).providers), 0)
        # B's lookup of A's key is B's miss; A's entry and counters do not move
        g = self.get(B, "key-a")
        self.assertFalse(g.hit)
        self.assertFalse(g.HasField("entry"))
        s = self.stats(B)
        self.assertEqual((s.total_entries, s.total_size_bytes, s.hits, s.misses,
                          s.expired_entries), (0, 0, 0, 1, 0))
        self.assertAUnchanged()

    def test_b_cannot_write_or_reference(self):
        B, q = self.B, self.q
        self.assertCode(Code.NOT_FOUND, "UpdateQueryStatus", kn.UpdateQueryStatusRequest(
            id=q.id, status=kn.QUERY_STATUS_FAILED, error_message="sabotage"), B)
        self.assertCode(Code.FAILED_PRECONDITION, "StoreResults", kn.StoreResultsRequest(
            query_id=q.id, results=[result("planted")]), B, "query_id")
        self.assertCode(Code.FAILED_PRECONDITION, "StoreResponse", kn.StoreResponseRequest(
            response=kn.KnowledgeResponse(query_id=q.id, summary="planted")), B)
        # B's own query cannot cite A's results (and so cannot learn their scores)
        bq = self.store_query(B, "b's question")
        self.assertCode(Code.FAILED_PRECONDITION, "StoreResponse", kn.StoreResponseRequest(
            response=kn.KnowledgeResponse(query_id=bq.id, summary="s",
                                          source_result_ids=self.rids[:1])), B)
        self.assertEqual(self.call("GetQuery", kn.GetQueryRequest(id=bq.id), B).status,
                         kn.QUERY_STATUS_PENDING)
        # the same provider name and cache key are B's own rows
        h = self.record(B, "google", False, 999, "b's error")
        self.assertEqual(h.total_requests, 1)
        h = self.call("UpdateProviderHealth", kn.UpdateProviderHealthRequest(
            health=kn.ProviderHealth(name="google", available=False, error_rate=1)), B)
        self.assertEqual((h.available, h.total_requests), (False, 1))
        e = self.put(B, "key-a", '{"b": 2}')
        self.assertEqual(e.access_count, 0)
        self.assertTrue(self.get(B, "key-a").hit)
        self.put(B, "expired-b", "{}", ttl_ms=1)
        # B's clean-up removes B's expired entry only (A's expired one stays)
        self.assertEqual(sql_value("SELECT count(*) FROM knowledge_cache WHERE tenant_id = '%s'"
                                   " AND expires_at <= now()" % self.A), "1")
        removed = self.call("CleanExpiredCache", kn.CleanExpiredCacheRequest(), B).removed
        self.assertEqual(removed, 1)
        self.assertAUnchanged()

    def test_same_content_is_new_for_another_tenant(self):
        bq = self.store_query(self.B, "b")
        r = self.store_results(self.B, bq.id, [result("classified zebra content")])
        self.assertEqual((r.inserted, r.duplicates), (1, 0))
        self.assertNotIn(r.result_ids[0], self.rids)
        self.assertEqual([x.id for x in self.call("SearchResultsText", kn.SearchResultsTextRequest(
            text="zebra"), self.B).results], list(r.result_ids))
        self.assertAUnchanged()

    def test_no_tenant_is_rejected_and_writes_nothing(self):
        count = "SELECT (SELECT count(*) FROM knowledge_queries) + (SELECT count(*) FROM" \
                " search_results) + (SELECT sum(hits + misses) FROM knowledge_cache_counters)"
        before = sql_value(count)
        q = self.q
        calls = [
            ("StoreQuery", kn.StoreQueryRequest(query=kn.KnowledgeQuery(
                query_text="x", query_type=kn.QUERY_TYPE_FACTUAL))),
            ("GetQuery", kn.GetQueryRequest(id=q.id)),
            ("ListQueries", kn.ListQueriesRequest()),
            ("UpdateQueryStatus", kn.UpdateQueryStatusRequest(
                id=q.id, status=kn.QUERY_STATUS_PROCESSING)),
            ("StoreResults", kn.StoreResultsRequest(query_id=q.id, results=[result("n")])),
            ("ListResults", kn.ListResultsRequest(query_id=q.id)),
            ("SearchResultsText", kn.SearchResultsTextRequest(text="zebra")),
            ("StoreResponse", kn.StoreResponseRequest(response=kn.KnowledgeResponse(
                query_id=q.id, summary="s"))),
            ("GetResponse", kn.GetResponseRequest(query_id=self.done.id)),
            ("RecordProviderRequest", kn.RecordProviderRequestRequest(name="google")),
            ("UpdateProviderHealth", kn.UpdateProviderHealthRequest(
                health=kn.ProviderHealth(name="google"))),
            ("GetProviderHealth", kn.GetProviderHealthRequest(name="google")),
            ("ListProviders", kn.ListProvidersRequest()),
            ("GetCached", kn.GetCachedRequest(key="key-a")),
            ("PutCached", kn.PutCachedRequest(entry=kn.CacheEntry(key="k", content_json="{}"),
                                              ttl_ms=1000)),
            ("CleanExpiredCache", kn.CleanExpiredCacheRequest()),
            ("GetCacheStats", kn.GetCacheStatsRequest()),
        ]
        methods = {m.name for m in kn.DESCRIPTOR.services_by_name["Knowledge"].methods}
        self.assertEqual({m for m, _ in calls}, methods)  # the matrix covers every method
        for method, req in calls:
            self.assertCode(Code.INVALID_ARGUMENT, method, req, None, "missing x-tenant-id")
        self.assertEqual(sql_value(count), before)
        self.assertAUnchanged()


class SqlLevel(unittest.TestCase):
    """The app role itself, with no tenant setting, through psql."""

    @classmethod
    def setUpClass(cls):
        harness.skip_without_database()
        cls.app = harness.database_url()
        sql_value("INSERT INTO tenants (id, name) VALUES ('ksql-a', 'a'), ('ksql-b', 'b')"
                  " ON CONFLICT DO NOTHING")
        sql_value("BEGIN; SELECT set_config('app.current_tenant', 'ksql-a', true);"
                  " INSERT INTO knowledge_queries (query_text, query_type) VALUES ('q', 'TREND');"
                  " INSERT INTO knowledge_cache (key, content, expires_at)"
                  "  VALUES ('k', '{}', now() + interval '1 hour') ON CONFLICT DO NOTHING;"
                  " INSERT INTO search_provider_health (name) VALUES ('p') ON CONFLICT DO NOTHING;"
                  " COMMIT;", cls.app)

    def test_no_setting_sees_nothing(self):
        for tbl in TABLES:
            self.assertEqual(sql_value("SELECT count(*) FROM %s" % tbl, self.app), "0", tbl)
        self.assertEqual(sql_value("BEGIN; SELECT set_config('app.current_tenant', 'ksql-a',"
                                   " true) IS NULL; SELECT count(*) FROM knowledge_cache; COMMIT;",
                                   self.app).split()[-1], "1")

    def test_no_setting_cannot_write(self):
        for sql in ("INSERT INTO knowledge_cache (tenant_id, key, content, expires_at)"
                    " VALUES ('ksql-a', 'x', '{}', now())",
                    "INSERT INTO search_provider_health (tenant_id, name) VALUES ('ksql-a', 'x')",
                    "INSERT INTO knowledge_cache_counters (tenant_id, shard, hits)"
                    " VALUES ('ksql-a', 0, 1000)"):
            rc, _, err = psql(sql, self.app, check=False)
            self.assertNotEqual(rc, 0, sql)
            self.assertIn("row-level security", err)
        rc, _, _ = psql("SELECT * FROM knowledge_store_results(gen_random_uuid(), '{t}', '{c}',"
                        " '{u}', '{WEB}', '{0.5}', '{0.5}', '{HIGH}', '{p}', '{NULL}', '{NULL}')",
                        self.app, check=False)
        self.assertNotEqual(rc, 0)

    def test_other_tenant_cannot_write_or_move_rows(self):
        rc, _, err = psql("BEGIN; SELECT set_config('app.current_tenant', 'ksql-b', true);"
                          " INSERT INTO knowledge_cache_counters (tenant_id, shard, hits)"
                          " VALUES ('ksql-a', 1, 1000); COMMIT;", self.app, check=False)
        self.assertIn("row-level security", err)
        rc, _, err = psql("BEGIN; SELECT set_config('app.current_tenant', 'ksql-a', true);"
                          " UPDATE knowledge_queries SET tenant_id = 'ksql-b'; COMMIT;",
                          self.app, check=False)
        self.assertIn("row-level security", err)

    def test_grants_are_minimal(self):
        """Append-only tables: no UPDATE or DELETE for the app role."""
        for tbl, priv in (("search_results", "UPDATE"), ("search_results", "DELETE"),
                          ("knowledge_responses", "UPDATE"), ("knowledge_queries", "DELETE"),
                          ("knowledge_response_sources", "DELETE"),
                          ("knowledge_cache_counters", "DELETE"),
                          ("knowledge_query_transitions", "SELECT")):
            self.assertEqual(sql_value("SELECT has_table_privilege(current_user, '%s', '%s')"
                                       % (tbl, priv), self.app), "f", (tbl, priv))
        for tbl in TABLES:
            self.assertEqual(sql_value("SELECT relrowsecurity AND relforcerowsecurity FROM"
                                       " pg_class WHERE relname = '%s'" % tbl), "t", tbl)


if __name__ == "__main__":
    if not os.environ.get("ARBITERD"):
        raise SystemExit(77)
    unittest.main(verbosity=2)
