"""Knowledge: every method's happy path and each error it documents, the
dedupe counts of StoreResults, the database-computed response averages,
provider health (weighted averages, windows, availability), the cache
hit-rate arithmetic over a scripted sequence, and arbiterctl; through the
real arbiterd and PostgreSQL."""
import json
import os
import subprocess
import time
import unittest
import uuid

from kcommon import (Code, KnowledgeCase, kn, result, sha256_hex, sql_value, start_server,
                     stop_server)
from google.protobuf import timestamp_pb2


def setUpModule():
    start_server()


def tearDownModule():
    stop_server()


class Queries(KnowledgeCase):
    def test_store_with_defaults(self):
        t = self.new_tenant()
        before = time.time()
        q = self.store_query(t, "how do I shard?", kn.QUERY_TYPE_TECHNICAL)
        self.assertEqual(str(uuid.UUID(q.id)), q.id)
        self.assertEqual((q.query_text, q.query_type, q.requester_id),
                         ("how do I shard?", kn.QUERY_TYPE_TECHNICAL, ""))
        self.assertEqual((q.priority, q.max_results, q.relevance_threshold, q.timeout_ms),
                         (5, 10, 0.5, 30000))
        self.assertEqual(json.loads(q.context_json), {})
        self.assertEqual(list(q.tags), [])
        self.assertEqual(q.status, kn.QUERY_STATUS_PENDING)
        self.assertGreater(q.created_at.ToSeconds(), before - 60)
        self.assertFalse(q.HasField("processed_at"))
        self.assertEqual(self.call("GetQuery", kn.GetQueryRequest(id=q.id), t), q)

    def test_store_every_field(self):
        t = self.new_tenant()
        qid = str(uuid.uuid4())
        q = self.store_query(t, "compare a and b", kn.QUERY_TYPE_COMPARATIVE, id=qid,
                             requester_id="agent-7", priority=9, max_results=25,
                             relevance_threshold=0.75, timeout_ms=1500,
                             context_json='{"lang": "en", "n": [1, 2]}', tags=["db", "rls"],
                             status=kn.QUERY_STATUS_COMPLETED, error_message="ignored")
        self.assertEqual(q.id, qid)
        self.assertEqual((q.requester_id, q.priority, q.max_results, q.relevance_threshold,
                          q.timeout_ms), ("agent-7", 9, 25, 0.75, 1500))
        self.assertEqual(json.loads(q.context_json), {"lang": "en", "n": [1, 2]})
        self.assertEqual(list(q.tags), ["db", "rls"])
        self.assertEqual(q.status, kn.QUERY_STATUS_PENDING)  # always PENDING
        self.assertEqual(q.error_message, "")
        self.assertCode(Code.ALREADY_EXISTS, "StoreQuery", kn.StoreQueryRequest(
            query=kn.KnowledgeQuery(id=qid, query_text="x", query_type=kn.QUERY_TYPE_TREND)),
            t, "query.id")

    def test_store_validates_every_field(self):
        t = self.new_tenant()
        ok = dict(query_text="q", query_type=kn.QUERY_TYPE_FACTUAL)
        cases = [
            ({"id": "not-a-uuid"}, "query.id"),
            ({"query_text": ""}, "query.query_text"),
            ({"query_text": "x" * 10001}, "query.query_text"),
            ({"query_type": kn.QUERY_TYPE_UNSPECIFIED}, "query.query_type"),
            ({"query_type": 42}, "query.query_type"),
            ({"requester_id": "r" * 256}, "query.requester_id"),
            ({"priority": 11}, "query.priority"),
            ({"priority": -1}, "query.priority"),
            ({"max_results": 1001}, "query.max_results"),
            ({"relevance_threshold": 1.5}, "query.relevance_threshold"),
            ({"relevance_threshold": float("nan")}, "query.relevance_threshold"),
            ({"timeout_ms": -5}, "query.timeout_ms"),
            ({"timeout_ms": 3600001}, "query.timeout_ms"),
            ({"context_json": "[1, 2]"}, "query.context_json"),
            ({"context_json": "{not json"}, "query.context_json"),
            ({"tags": ["ok", ""]}, "query.tags[1]"),
            ({"tags": ["t%d" % i for i in range(65)]}, "query.tags"),
        ]
        for change, field in cases:
            fields = dict(ok, **change)
            self.assertCode(Code.INVALID_ARGUMENT, "StoreQuery",
                            kn.StoreQueryRequest(query=kn.KnowledgeQuery(**fields)), t, field)
        self.assertCode(Code.INVALID_ARGUMENT, "StoreQuery", kn.StoreQueryRequest(), t, "query")
        self.assertEqual(sql_value("SELECT count(*) FROM knowledge_queries WHERE tenant_id = '%s'"
                                   % t), "0")

    def test_schema_names_the_field(self):
        """The CHECK constraints back the table's rules for other writers."""
        t = self.new_tenant()
        from kcommon import psql
        rc, _, err = psql("BEGIN; SELECT set_config('app.current_tenant', '%s', true);"
                          " INSERT INTO knowledge_queries (query_text, query_type, priority)"
                          " VALUES ('q', 'FACTUAL', 11); COMMIT;" % t,
                          os.environ["ARBITER_TEST_DATABASE_URL"], check=False)
        self.assertNotEqual(rc, 0)
        self.assertIn('"query.priority"', err)

    def test_unknown_tenant(self):
        msg = self.assertCode(Code.FAILED_PRECONDITION, "StoreQuery", kn.StoreQueryRequest(
            query=kn.KnowledgeQuery(query_text="q", query_type=kn.QUERY_TYPE_FACTUAL)),
            "nobody-" + uuid.uuid4().hex[:8])
        self.assertIn("does not exist", msg)

    def test_get_errors(self):
        t = self.new_tenant()
        self.assertCode(Code.NOT_FOUND, "GetQuery", kn.GetQueryRequest(id=str(uuid.uuid4())), t)
        self.assertCode(Code.INVALID_ARGUMENT, "GetQuery", kn.GetQueryRequest(id="x"), t, "id")
        self.assertCode(Code.INVALID_ARGUMENT, "GetQuery", kn.GetQueryRequest(), t, "id")

    def test_list_newest_first_with_filters_and_pages(self):
        t = self.new_tenant()
        made = [self.store_query(t, "q%d" % i, tags=["even" if i % 2 == 0 else "odd", "all"])
                for i in range(7)]
        self.set_status(t, made[1].id, kn.QUERY_STATUS_PROCESSING)
        self.set_status(t, made[4].id, kn.QUERY_STATUS_PROCESSING)
        newest = [q.id for q in reversed(made)]

        def listing(**kw):
            ids, token = [], ""
            while True:
                page = self.call("ListQueries", kn.ListQueriesRequest(page_token=token, **kw), t)
                ids += [q.id for q in page.queries]
                token = page.next_page_token
                if not token:
                    return ids

        self.assertEqual(listing(), newest)
        self.assertEqual(listing(page_size=2), newest)
        self.assertEqual(listing(page_size=3, tag="even"), [made[i].id for i in (6, 4, 2, 0)])
        self.assertEqual(listing(status=kn.QUERY_STATUS_PROCESSING), [made[4].id, made[1].id])
        self.assertEqual(listing(page_size=1, status=kn.QUERY_STATUS_PROCESSING, tag="odd"),
                         [made[1].id])
        self.assertEqual(listing(tag="none"), [])
        first = self.call("ListQueries", kn.ListQueriesRequest(page_size=3), t)
        self.assertEqual(len(first.queries), 3)
        self.assertEqual(first.queries[0].query_text, "q6")
        self.assertCode(Code.INVALID_ARGUMENT, "ListQueries",
                        kn.ListQueriesRequest(page_token="garbage"), t, "page_token")
        self.assertCode(Code.INVALID_ARGUMENT, "ListQueries",
                        kn.ListQueriesRequest(page_size=-1), t, "page_size")
        self.assertCode(Code.INVALID_ARGUMENT, "ListQueries",
                        kn.ListQueriesRequest(status=99), t, "status")
        # a token of another listing is refused
        self.assertCode(Code.INVALID_ARGUMENT, "ListResults", kn.ListResultsRequest(
            query_id=made[0].id, page_token=first.next_page_token), t, "page_token")


class Status(KnowledgeCase):
    def test_forward_moves(self):
        t = self.new_tenant()
        q = self.store_query(t)
        p = self.set_status(t, q.id, kn.QUERY_STATUS_PROCESSING)
        self.assertEqual(p.status, kn.QUERY_STATUS_PROCESSING)
        self.assertFalse(p.HasField("processed_at"))
        c = self.set_status(t, q.id, kn.QUERY_STATUS_COMPLETED)
        self.assertEqual(c.status, kn.QUERY_STATUS_COMPLETED)
        self.assertTrue(c.HasField("processed_at"))
        f = self.set_status(t, self.store_query(t).id, kn.QUERY_STATUS_FAILED, "provider down")
        self.assertEqual((f.status, f.error_message), (kn.QUERY_STATUS_FAILED, "provider down"))
        self.assertTrue(f.HasField("processed_at"))
        d = self.set_status(t, self.store_query(t).id, kn.QUERY_STATUS_COMPLETED)
        self.assertEqual(d.status, kn.QUERY_STATUS_COMPLETED)

    def test_anything_else_is_failed_precondition(self):
        t = self.new_tenant()
        S = kn
        for path, bad in [
            ([], S.QUERY_STATUS_PENDING),
            ([S.QUERY_STATUS_PROCESSING], S.QUERY_STATUS_PROCESSING),
            ([S.QUERY_STATUS_PROCESSING], S.QUERY_STATUS_PENDING),
            ([S.QUERY_STATUS_COMPLETED], S.QUERY_STATUS_FAILED),
            ([S.QUERY_STATUS_COMPLETED], S.QUERY_STATUS_PROCESSING),
            ([S.QUERY_STATUS_FAILED], S.QUERY_STATUS_COMPLETED),
            ([S.QUERY_STATUS_PROCESSING, S.QUERY_STATUS_FAILED], S.QUERY_STATUS_PENDING),
        ]:
            q = self.store_query(t)
            for s in path:
                q = self.set_status(t, q.id, s)
            self.assertCode(Code.FAILED_PRECONDITION, "UpdateQueryStatus",
                            kn.UpdateQueryStatusRequest(id=q.id, status=bad, error_message="x"),
                            t, "status")
            self.assertEqual(self.call("GetQuery", kn.GetQueryRequest(id=q.id), t), q)

    def test_errors(self):
        t = self.new_tenant()
        self.assertCode(Code.NOT_FOUND, "UpdateQueryStatus", kn.UpdateQueryStatusRequest(
            id=str(uuid.uuid4()), status=kn.QUERY_STATUS_PROCESSING), t)
        q = self.store_query(t)
        self.assertCode(Code.INVALID_ARGUMENT, "UpdateQueryStatus",
                        kn.UpdateQueryStatusRequest(id=q.id), t, "status")
        self.assertCode(Code.INVALID_ARGUMENT, "UpdateQueryStatus", kn.UpdateQueryStatusRequest(
            id=q.id, status=kn.QUERY_STATUS_FAILED, error_message="e" * 10001), t,
            "error_message")


class Results(KnowledgeCase):
    def test_dedupe_counts(self):
        t = self.new_tenant()
        q1, q2 = self.store_query(t), self.store_query(t)
        r = self.store_results(t, q1.id, [result("alpha"), result("beta"), result("alpha")])
        self.assertEqual((r.inserted, r.duplicates), (2, 1))
        a, b, a2 = r.result_ids
        self.assertEqual(a, a2)
        self.assertNotEqual(a, b)
        # already stored for the tenant, whatever the query: a duplicate, the stored id
        r = self.store_results(t, q2.id, [result("beta"), result("gamma"), result("beta")])
        self.assertEqual((r.inserted, r.duplicates), (1, 2))
        self.assertEqual((r.result_ids[0], r.result_ids[2]), (b, b))
        r = self.store_results(t, q2.id, [result("alpha")] * 3)
        self.assertEqual((r.inserted, r.duplicates, list(r.result_ids)), (0, 3, [a, a, a]))
        r = self.store_results(t, q2.id, [])
        self.assertEqual((r.inserted, r.duplicates, list(r.result_ids)), (0, 0, []))
        self.assertEqual(sql_value("SELECT count(*) FROM search_results WHERE tenant_id = '%s'"
                                   % t), "3")

    def test_stored_fields_and_hash(self):
        t = self.new_tenant()
        q = self.store_query(t)
        pub = timestamp_pb2.Timestamp(seconds=1700000000, nanos=123456000)
        content = "Zürich résumé – naïve café ☕"
        before = time.time()
        r = self.store_results(t, q.id, [
            result(content, title="Ünïcode", relevance=0.9, credibility=0.25,
                   source=kn.SOURCE_TYPE_ACADEMIC, quality=kn.QUALITY_HIGH,
                   url="https://example.org/a", provider="arxiv", published_at=pub,
                   content_hash="0" * 64, id=str(uuid.uuid4()), query_id=str(uuid.uuid4()))])
        got = self.call("ListResults", kn.ListResultsRequest(query_id=q.id), t).results
        self.assertEqual(len(got), 1)
        g = got[0]
        self.assertEqual((g.id, g.query_id), (r.result_ids[0], q.id))
        self.assertEqual((g.title, g.content, g.url, g.provider),
                         ("Ünïcode", content, "https://example.org/a", "arxiv"))
        self.assertEqual((g.source_type, g.quality), (kn.SOURCE_TYPE_ACADEMIC, kn.QUALITY_HIGH))
        self.assertEqual((g.relevance_score, g.credibility_score), (0.9, 0.25))
        self.assertEqual(g.content_hash, sha256_hex(content))  # the server's, not the caller's
        self.assertEqual(g.published_at, pub)
        self.assertGreater(g.retrieved_at.ToSeconds(), before - 60)

    def test_validation(self):
        t = self.new_tenant()
        q = self.store_query(t)
        cases = [
            ([result("a"), result("b", title="")], "results[1].title"),
            ([result("")], "results[0].content"),
            ([result("a", relevance=1.5)], "results[0].relevance_score"),
            ([result("a", credibility=-0.1)], "results[0].credibility_score"),
            ([result("a", source=kn.SOURCE_TYPE_UNSPECIFIED)], "results[0].source_type"),
            ([result("a", quality=kn.QUALITY_UNSPECIFIED)], "results[0].quality"),
            ([result("a", url="u" * 2049)], "results[0].url"),
            ([result("a", provider="p" * 256)], "results[0].provider"),
            ([result("r%d" % i) for i in range(1001)], "results"),
        ]
        for results, field in cases:
            self.assertCode(Code.INVALID_ARGUMENT, "StoreResults", kn.StoreResultsRequest(
                query_id=q.id, results=results), t, field)
        self.assertCode(Code.INVALID_ARGUMENT, "StoreResults", kn.StoreResultsRequest(
            query_id="nope", results=[result("a")]), t, "query_id")

    def test_unknown_query_stores_nothing(self):
        t = self.new_tenant()
        self.assertCode(Code.FAILED_PRECONDITION, "StoreResults", kn.StoreResultsRequest(
            query_id=str(uuid.uuid4()), results=[result("x"), result("y")]), t, "query_id")
        self.assertEqual(sql_value("SELECT count(*) FROM search_results WHERE tenant_id = '%s'"
                                   % t), "0")

    def test_list_by_relevance_with_pages(self):
        t = self.new_tenant()
        q, other = self.store_query(t), self.store_query(t)
        rels = [0.1, 0.9, 0.5, 0.5, 0.5, 0.7, 0.3, 0.5]
        ids = self.store_results(t, q.id, [result("c%d" % i, relevance=r)
                                           for i, r in enumerate(rels)]).result_ids
        self.store_results(t, other.id, [result("other", relevance=1.0)])
        want = [i for _, i in sorted(zip(rels, ids), key=lambda p: (p[0], p[1]), reverse=True)]

        def listing(**kw):
            out, token = [], ""
            while True:
                page = self.call("ListResults", kn.ListResultsRequest(
                    query_id=q.id, page_token=token, **kw), t)
                out += [r.id for r in page.results]
                token = page.next_page_token
                if not token:
                    return out

        self.assertEqual(listing(), want)
        self.assertEqual(listing(page_size=3), want)  # pages through the ties at 0.5
        self.assertEqual(listing(page_size=2, min_relevance=0.5), want[:6])
        self.assertEqual(len(self.call("ListResults", kn.ListResultsRequest(
            query_id=str(uuid.uuid4())), t).results), 0)
        self.assertCode(Code.INVALID_ARGUMENT, "ListResults",
                        kn.ListResultsRequest(query_id="x"), t, "query_id")
        self.assertCode(Code.INVALID_ARGUMENT, "ListResults",
                        kn.ListResultsRequest(query_id=q.id, min_relevance=2), t,
                        "min_relevance")

    def test_search_text(self):
        t = self.new_tenant()
        q = self.store_query(t)
        ids = self.store_results(t, q.id, [
            result("Tuning autovacuum on busy tables", title="Vacuum notes"),
            result("Row level security policies in PostgreSQL", title="PostgreSQL RLS"),
            result("Indexes make PostgreSQL queries fast", title="Index basics"),
            result("Cooking pasta for twelve people", title="Dinner"),
        ]).result_ids

        def search(text, limit=0):
            return [r.id for r in self.call("SearchResultsText", kn.SearchResultsTextRequest(
                text=text, limit=limit), t).results]

        got = search("postgresql")
        self.assertEqual(got, [ids[1], ids[2]])  # the title match ranks first
        self.assertEqual(search("postgresql", limit=1), [ids[1]])
        self.assertEqual(search("postgresql -security"), [ids[2]])
        self.assertEqual(search('"row level"'), [ids[1]])
        self.assertEqual(sorted(search("vacuumed OR pasta")), sorted([ids[0], ids[3]]))
        self.assertEqual(search("quantum"), [])
        r = self.call("SearchResultsText", kn.SearchResultsTextRequest(text="dinner"), t)
        self.assertEqual(r.results[0].content, "Cooking pasta for twelve people")
        self.assertCode(Code.INVALID_ARGUMENT, "SearchResultsText",
                        kn.SearchResultsTextRequest(text=""), t, "text")
        self.assertCode(Code.INVALID_ARGUMENT, "SearchResultsText",
                        kn.SearchResultsTextRequest(text="x", limit=101), t, "limit")


class Responses(KnowledgeCase):
    def setUp(self):
        super().setUp()
        self.t = self.new_tenant()
        self.q = self.store_query(self.t)
        self.ids = list(self.store_results(self.t, self.q.id, [
            result("one", relevance=0.2, credibility=0.9),
            result("two", relevance=0.8, credibility=0.5),
            result("three", relevance=0.5, credibility=0.1)]).result_ids)

    def respond(self, sources, **fields):
        fields.setdefault("summary", "the answer")
        fields.setdefault("confidence", 0.8)
        return self.call("StoreResponse", kn.StoreResponseRequest(response=kn.KnowledgeResponse(
            query_id=self.q.id, source_result_ids=sources, **fields)), self.t)

    def query_status(self):
        return self.call("GetQuery", kn.GetQueryRequest(id=self.q.id), self.t)

    def test_database_computes_totals_and_completes_the_query(self):
        r = self.respond([self.ids[0], self.ids[1], self.ids[0]], providers_queried=["a", "b"],
                         cache_used=True, processing_time_ms=1234,
                         total_results=99, average_relevance=0.99, average_credibility=0.01)
        self.assertEqual(str(uuid.UUID(r.id)), r.id)
        self.assertEqual(r.query_id, self.q.id)
        self.assertEqual(list(r.source_result_ids), self.ids[:2])  # order kept, once each
        self.assertEqual(r.total_results, 2)
        self.assertAlmostEqual(r.average_relevance, 0.5, delta=1e-12)
        self.assertAlmostEqual(r.average_credibility, 0.7, delta=1e-12)
        self.assertEqual((r.summary, r.confidence, list(r.providers_queried), r.cache_used,
                          r.processing_time_ms), ("the answer", 0.8, ["a", "b"], True, 1234))
        q = self.query_status()
        self.assertEqual(q.status, kn.QUERY_STATUS_COMPLETED)
        self.assertTrue(q.HasField("processed_at"))
        self.assertEqual(self.call("GetResponse", kn.GetResponseRequest(query_id=self.q.id),
                                   self.t), r)

    def test_latest_response_and_no_sources(self):
        self.set_status(self.t, self.q.id, kn.QUERY_STATUS_PROCESSING)
        first = self.respond(self.ids)
        self.assertEqual(first.total_results, 3)
        processed = self.query_status().processed_at
        second = self.respond([], summary="nothing found", id=str(uuid.uuid4()))
        self.assertEqual((second.total_results, second.average_relevance,
                          second.average_credibility, list(second.source_result_ids)),
                         (0, 0, 0, []))
        got = self.call("GetResponse", kn.GetResponseRequest(query_id=self.q.id), self.t)
        self.assertEqual(got.id, second.id)
        self.assertEqual(self.query_status().processed_at, processed)  # completed once
        self.assertCode(Code.ALREADY_EXISTS, "StoreResponse", kn.StoreResponseRequest(
            response=kn.KnowledgeResponse(id=second.id, query_id=self.q.id, summary="again")),
            self.t, "response.id")

    def test_unknown_or_failed_is_failed_precondition_and_writes_nothing(self):
        before = sql_value("SELECT count(*) FROM knowledge_responses")
        self.assertCode(Code.FAILED_PRECONDITION, "StoreResponse", kn.StoreResponseRequest(
            response=kn.KnowledgeResponse(query_id=self.q.id, summary="s",
                                          source_result_ids=[self.ids[0], str(uuid.uuid4())])),
            self.t, "response.")
        self.assertCode(Code.FAILED_PRECONDITION, "StoreResponse", kn.StoreResponseRequest(
            response=kn.KnowledgeResponse(query_id=str(uuid.uuid4()), summary="s")),
            self.t, "response.query_id")
        self.assertEqual(self.query_status().status, kn.QUERY_STATUS_PENDING)
        self.set_status(self.t, self.q.id, kn.QUERY_STATUS_FAILED, "gave up")
        self.assertCode(Code.FAILED_PRECONDITION, "StoreResponse", kn.StoreResponseRequest(
            response=kn.KnowledgeResponse(query_id=self.q.id, summary="s",
                                          source_result_ids=self.ids)), self.t)
        self.assertEqual(self.query_status().status, kn.QUERY_STATUS_FAILED)
        self.assertEqual(sql_value("SELECT count(*) FROM knowledge_responses"), before)
        self.assertEqual(sql_value("SELECT count(*) FROM knowledge_response_sources"
                                   " WHERE tenant_id = '%s'" % self.t), "0")

    def test_validation(self):
        cases = [
            (dict(summary=""), "response.summary"),
            (dict(confidence=1.1), "response.confidence"),
            (dict(source_result_ids=["short"]), "response.source_result_ids[0]"),
            (dict(providers_queried=[""]), "response.providers_queried[0]"),
            (dict(processing_time_ms=-1), "response.processing_time_ms"),
            (dict(id="x"), "response.id"),
            (dict(query_id=""), "response.query_id"),
        ]
        for change, field in cases:
            fields = dict(dict(query_id=self.q.id, summary="s"), **change)
            self.assertCode(Code.INVALID_ARGUMENT, "StoreResponse", kn.StoreResponseRequest(
                response=kn.KnowledgeResponse(**fields)), self.t, field)
        # 36 characters but not a UUID: the database's cast refuses it
        self.assertCode(Code.INVALID_ARGUMENT, "StoreResponse", kn.StoreResponseRequest(
            response=kn.KnowledgeResponse(query_id=self.q.id, summary="s",
                                          source_result_ids=["z" * 36])), self.t)
        self.assertCode(Code.INVALID_ARGUMENT, "StoreResponse", kn.StoreResponseRequest(),
                        self.t, "response")
        self.assertCode(Code.NOT_FOUND, "GetResponse",
                        kn.GetResponseRequest(query_id=self.q.id), self.t)
        self.assertCode(Code.INVALID_ARGUMENT, "GetResponse",
                        kn.GetResponseRequest(query_id="x"), self.t, "query_id")


class Providers(KnowledgeCase):
    def test_weighted_averages_and_availability(self):
        t = self.new_tenant()
        h = self.record(t, "google", True, 100)
        self.assertEqual((h.name, h.available, h.response_time_ms, h.error_rate),
                         ("google", True, 100, 0))
        self.assertEqual((h.requests_this_minute, h.requests_this_hour, h.total_requests,
                          h.total_failures, h.consecutive_failures), (1, 1, 1, 0, 0))
        rt, er = 100.0, 0.0
        steps = [(False, 200, "timeout", True), (False, 300, "503", True),
                 (False, 50, "reset", False), (False, 50, "again", False),
                 (True, 10, "", True), (False, 20, "once", True)]
        for n, (ok, lat, err, available) in enumerate(steps, start=2):
            h = self.record(t, "google", ok, lat, err)
            rt, er = 0.8 * rt + 0.2 * lat, 0.8 * er + 0.2 * (0 if ok else 1)
            self.assertAlmostEqual(h.response_time_ms, rt, delta=1e-9)
            self.assertAlmostEqual(h.error_rate, er, delta=1e-12)
            self.assertEqual(h.available, available, "after step %d" % n)
            self.assertEqual(h.total_requests, n)
        self.assertEqual((h.total_failures, h.consecutive_failures, h.last_error), (5, 1, "once"))
        h = self.record(t, "google", True, 10, "ignored on success")
        self.assertEqual((h.last_error, h.consecutive_failures), ("once", 0))
        self.assertEqual(self.call("GetProviderHealth", kn.GetProviderHealthRequest(
            name="google"), t), h)

    def test_windows_roll_over(self):
        t = self.new_tenant()
        clock = "SELECT date_trunc('minute', now()), date_trunc('hour', now())"
        before = sql_value(clock)
        for _ in range(3):
            h = self.record(t, "bing")
        if sql_value(clock) == before:  # (else a window turned during the calls)
            self.assertEqual((h.requests_this_minute, h.requests_this_hour), (3, 3))
        self.assertEqual(h.total_requests, 3)
        # two minutes pass (in the row): the minute count reads 0, then restarts
        sql_value("UPDATE search_provider_health SET minute_start = minute_start - interval"
                  " '2 minutes' WHERE tenant_id = '%s'" % t)
        h = self.call("GetProviderHealth", kn.GetProviderHealthRequest(name="bing"), t)
        self.assertEqual(h.requests_this_minute, 0)
        h = self.record(t, "bing")
        self.assertEqual((h.requests_this_minute, h.total_requests), (1, 4))
        self.assertIn(h.requests_this_hour, (4, 1))  # 1 only if the hour turned meanwhile
        sql_value("UPDATE search_provider_health SET hour_start = hour_start - interval"
                  " '2 hours', minute_start = minute_start - interval '2 hours'"
                  " WHERE tenant_id = '%s'" % t)
        h = self.call("GetProviderHealth", kn.GetProviderHealthRequest(name="bing"), t)
        self.assertEqual((h.requests_this_minute, h.requests_this_hour), (0, 0))
        h = self.record(t, "bing")
        self.assertEqual((h.requests_this_minute, h.requests_this_hour, h.total_requests),
                         (1, 1, 5))

    def test_update_get_list(self):
        t = self.new_tenant()
        checked = timestamp_pb2.Timestamp(seconds=1750000000)
        h = self.call("UpdateProviderHealth", kn.UpdateProviderHealthRequest(
            health=kn.ProviderHealth(name="pubmed", available=False, response_time_ms=250,
                                     error_rate=0.5, requests_this_minute=7,
                                     requests_this_hour=70, last_checked_at=checked,
                                     last_error="quota")), t)
        self.assertEqual((h.name, h.available, h.response_time_ms, h.error_rate,
                          h.requests_this_minute, h.requests_this_hour, h.last_error),
                         ("pubmed", False, 250, 0.5, 7, 70, "quota"))
        self.assertEqual(h.last_checked_at, checked)
        self.record(t, "arxiv")
        h2 = self.call("UpdateProviderHealth", kn.UpdateProviderHealthRequest(
            health=kn.ProviderHealth(name="pubmed", available=True, response_time_ms=90)), t)
        self.assertEqual((h2.available, h2.response_time_ms, h2.error_rate, h2.last_error),
                         (True, 90, 0, ""))
        self.assertGreater(h2.last_checked_at.ToSeconds(), checked.ToSeconds())
        names = [p.name for p in self.call("ListProviders", kn.ListProvidersRequest(),
                                           t).providers]
        self.assertEqual(names, ["arxiv", "pubmed"])
        self.assertEqual(self.call("GetProviderHealth", kn.GetProviderHealthRequest(
            name="pubmed"), t), h2)

    def test_errors(self):
        t = self.new_tenant()
        self.assertCode(Code.NOT_FOUND, "GetProviderHealth",
                        kn.GetProviderHealthRequest(name="nobody"), t)
        self.assertCode(Code.INVALID_ARGUMENT, "GetProviderHealth",
                        kn.GetProviderHealthRequest(), t, "name")
        self.assertCode(Code.INVALID_ARGUMENT, "RecordProviderRequest",
                        kn.RecordProviderRequestRequest(latency_ms=1), t, "name")
        self.assertCode(Code.INVALID_ARGUMENT, "RecordProviderRequest",
                        kn.RecordProviderRequestRequest(name="g", latency_ms=-1), t,
                        "latency_ms")
        self.assertCode(Code.INVALID_ARGUMENT, "UpdateProviderHealth",
                        kn.UpdateProviderHealthRequest(), t, "health")
        self.assertCode(Code.INVALID_ARGUMENT, "UpdateProviderHealth",
                        kn.UpdateProviderHealthRequest(health=kn.ProviderHealth(
                            name="g", error_rate=2)), t, "health.error_rate")
        self.assertEqual(len(self.call("ListProviders", kn.ListProvidersRequest(), t).providers),
                         0)


class Cache(KnowledgeCase):
    def test_hit_rate_over_a_scripted_sequence(self):
        t = self.new_tenant()
        s = self.stats(t)
        self.assertEqual((s.total_entries, s.total_size_bytes, s.hits, s.misses, s.hit_rate,
                          s.expired_entries), (0, 0, 0, 0, 0.0, 0))
        long = self.put(t, "long", '{"a": [1, 2, 3]}', ttl_ms=600000)
        short = self.put(t, "short", '{"b": "ü"}', ttl_ms=3000,
                         cache_type=kn.CACHE_TYPE_RESPONSE)
        self.assertTrue(self.get(t, "short").hit)
        self.assertEqual(long.cache_type, kn.CACHE_TYPE_QUERY_RESULT)  # the default
        self.assertEqual(short.cache_type, kn.CACHE_TYPE_RESPONSE)
        for e in (long, short):
            self.assertEqual(e.size_bytes, len(e.content_json.encode("utf-8")))
            self.assertEqual(e.access_count, 0)
        self.assertEqual(json.loads(short.content_json), {"b": "ü"})
        script = [("long", True), ("long", True), ("absent", False), ("long", True)]
        hits, misses = 1, 0
        for key, want in script:
            g = self.get(t, key)
            self.assertEqual(g.hit, want, key)
            self.assertEqual(g.HasField("entry"), want)
            hits, misses = hits + want, misses + (not want)
        self.assertEqual((g.entry.key, g.entry.access_count), ("long", 3))
        self.assertEqual(json.loads(g.entry.content_json), {"a": [1, 2, 3]})
        s = self.stats(t)
        self.assertEqual((s.hits, s.misses), (hits, misses))
        self.assertEqual((hits, misses), (4, 1))
        self.assertAlmostEqual(s.hit_rate, 0.8, delta=1e-12)
        self.assertEqual((s.total_entries, s.expired_entries), (2, 0))
        self.assertEqual(s.total_size_bytes, long.size_bytes + short.size_bytes)
        # "short" expires: a lookup of an expired entry is a miss
        time.sleep(max(0.0, short.expires_at.ToMilliseconds() / 1000.0 - time.time()) + 0.3)
        for _ in range(2):
            self.assertFalse(self.get(t, "short").hit)
        s = self.stats(t)
        self.assertEqual((s.hits, s.misses, s.total_entries, s.expired_entries), (4, 3, 2, 1))
        self.assertAlmostEqual(s.hit_rate, 4 / 7, delta=1e-12)
        removed = self.call("CleanExpiredCache", kn.CleanExpiredCacheRequest(), t).removed
        self.assertEqual(removed, 1)
        self.assertEqual(self.call("CleanExpiredCache", kn.CleanExpiredCacheRequest(),
                                   t).removed, 0)
        s = self.stats(t)
        self.assertEqual((s.hits, s.misses, s.total_entries, s.expired_entries,
                          s.total_size_bytes), (4, 3, 1, 0, long.size_bytes))
        # a put replaces the entry and restarts its access count
        again = self.put(t, "long", '{"a": "new"}')
        self.assertEqual((again.access_count, json.loads(again.content_json)), (0, {"a": "new"}))
        self.assertEqual(self.get(t, "long").entry.access_count, 1)
        self.assertAlmostEqual(self.stats(t).hit_rate, 5 / 8, delta=1e-12)

    def test_errors(self):
        t = self.new_tenant()
        for req, field in [
            (kn.PutCachedRequest(ttl_ms=1000), "entry"),
            (kn.PutCachedRequest(entry=kn.CacheEntry(content_json="{}"), ttl_ms=1000),
             "entry.key"),
            (kn.PutCachedRequest(entry=kn.CacheEntry(key="k"), ttl_ms=1000),
             "entry.content_json"),
            (kn.PutCachedRequest(entry=kn.CacheEntry(key="k", content_json="[1]"), ttl_ms=1000),
             "entry.content_json"),
            (kn.PutCachedRequest(entry=kn.CacheEntry(key="k", content_json="{}")), "ttl_ms"),
            (kn.PutCachedRequest(entry=kn.CacheEntry(key="k", content_json="{}"), ttl_ms=-5),
             "ttl_ms"),
            (kn.PutCachedRequest(entry=kn.CacheEntry(key="k", content_json="{}", cache_type=9),
                                 ttl_ms=5), "entry.cache_type"),
        ]:
            self.assertCode(Code.INVALID_ARGUMENT, "PutCached", req, t, field)
        self.assertCode(Code.INVALID_ARGUMENT, "GetCached", kn.GetCachedRequest(), t, "key")
        self.assertCode(Code.INVALID_ARGUMENT, "GetCached", kn.GetCachedRequest(key="k" * 256),
                        t, "key")
        s = self.stats(t)
        self.assertEqual((s.total_entries, s.hits, s.misses), (0, 0, 0))


ARBITERCTL = os.environ.get("ARBITERCTL")


class Arbiterctl(KnowledgeCase):
    """The real arbiterctl calls Knowledge methods and prints their JSON."""

    def ctl(self, *args):
        import regcommon
        p = subprocess.run([ARBITERCTL, "--socket", regcommon.SERVER.socket, "--compact"]
                           + list(args), capture_output=True, text=True, timeout=30)
        return p.returncode, p.stdout, p.stderr

    def ok(self, *args):
        rc, out, err = self.ctl(*args)
        self.assertEqual(rc, 0, err)
        return json.loads(out)

    def test_calls(self):
        if not ARBITERCTL:
            self.skipTest("ARBITERCTL is not set")
        t = self.new_tenant()
        q = self.ok("--tenant", t, "call", "Knowledge.StoreQuery", "query.query_text=why?",
                    "query.query_type=QUERY_TYPE_EXPLANATORY", "query.tags=a", "query.tags=b",
                    'query.context_json={"k": 1}')
        self.assertEqual((q["status"], q["query_type"], q["tags"], q["priority"]),
                         ("QUERY_STATUS_PENDING", "QUERY_TYPE_EXPLANATORY", ["a", "b"], 5))
        got = self.ok("--tenant", t, "call", "Knowledge.GetQuery", "id=" + q["id"])
        self.assertEqual(got["id"], q["id"])
        r = self.ok("--tenant", t, "call", "Knowledge.StoreResults", "query_id=" + q["id"],
                    "results[0].title=t", "results[0].content=hello world",
                    "results[0].source_type=SOURCE_TYPE_NEWS", "results[0].quality=QUALITY_LOW",
                    "results[0].relevance_score=0.4")
        self.assertEqual((r["inserted"], r["duplicates"], len(r["result_ids"])), (1, 0, 1))
        e = self.ok("--tenant", t, "call", "Knowledge.PutCached", "entry.key=k1",
                    'entry.content_json={"x": true}', "ttl_ms=60000")
        self.assertEqual(e["size_bytes"], str(len('{"x": true}')))  # int64 as a string
        self.assertTrue(self.ok("--tenant", t, "call", "Knowledge.GetCached", "key=k1")["hit"])
        self.assertFalse(self.ok("--tenant", t, "call", "Knowledge.GetCached", "key=k2")["hit"])
        s = self.ok("--tenant", t, "call", "Knowledge.GetCacheStats")
        self.assertEqual((s["hits"], s["misses"], s["hit_rate"]), ("1", "1", 0.5))
        rc, _, err = self.ctl("--tenant", t, "call", "Knowledge.UpdateQueryStatus",
                              "id=" + q["id"], "status=QUERY_STATUS_PENDING")
        self.assertEqual(rc, 10 + 9, err)  # FAILED_PRECONDITION
        rc, out, _ = self.ctl("list", "Knowledge")
        self.assertEqual(rc, 0)
        self.assertIn("GetCacheStats", out)


if __name__ == "__main__":
    unittest.main(verbosity=2)
