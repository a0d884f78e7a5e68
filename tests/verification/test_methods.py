"""Verification end to end: every method's happy path and documented
errors, the forward-only status rule, the cache (keys, hits, misses,
expiry) and a few calls through the real arbiterctl."""
import os
import sys
import time
import unittest
import uuid

from google.protobuf import timestamp_pb2

import vcommon
from vcommon import (COMPLETED, FAILED, PENDING, PROCESSING, TIMED_OUT, TRUE, Code,
                     VerificationCase, cache_key, evidence, method_result, sha256_hex,
                     sql_value, start_server, stop_server, vf)

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "clients"))
from test_arbiterctl import Ctl, status_exit  # noqa: E402

NOT_FOUND = 5


def setUpModule():
    start_server()


def tearDownModule():
    stop_server()


class Requests(VerificationCase):
    def setUp(self):
        super().setUp()
        self.T = self.new_tenant()

    def test_save_request_defaults_and_key(self):
        r = self.save_request(self.T, "the sky is blue", source="wiki",
                              verification_types=["fact", "logic", "fact"])
        uuid.UUID(r.id)
        self.assertEqual((r.content, r.source), ("the sky is blue", "wiki"))
        self.assertEqual(list(r.verification_types), ["fact", "logic", "fact"])
        self.assertEqual((r.priority, r.timeout_ms, r.status), (5, 30000, PENDING))
        self.assertEqual(r.metadata_json, "{}")
        self.assertEqual(r.cache_key, cache_key("the sky is blue", "wiki", ["fact", "logic"]))
        self.assertTrue(r.HasField("created_at"))
        self.assertFalse(r.HasField("started_at") or r.HasField("completed_at"))
        self.assertEqual(self.call("GetRequest", vf.GetRequestRequest(id=r.id), self.T), r)

    def test_save_request_given_fields_insert_pending(self):
        rid = str(uuid.uuid4())
        r = self.save_request(self.T, "c", id=rid, priority=9, timeout_ms=500,
                              metadata_json='{"lang": "en", "n": [1, 2]}', status=COMPLETED)
        self.assertEqual((r.id, r.priority, r.timeout_ms), (rid, 9, 500))
        self.assertEqual(r.status, PENDING)  # status PENDING on insert, whatever was given
        self.assertEqual(r.metadata_json, '{"n": [1, 2], "lang": "en"}')  # jsonb's form

    def test_save_request_upsert_is_a_status_move(self):
        r = self.save_request(self.T, "original", source="s1", priority=3)
        again = self.save_request(self.T, "changed", id=r.id, source="s2", priority=8)
        self.assertEqual(again, r)  # no status given: nothing changes
        moved = self.save_request(self.T, "changed", id=r.id, status=PROCESSING)
        self.assertEqual(moved.status, PROCESSING)
        self.assertTrue(moved.HasField("started_at"))
        self.assertEqual((moved.content, moved.source, moved.priority, moved.cache_key),
                         (r.content, r.source, r.priority, r.cache_key))
        self.assertCode(Code.FAILED_PRECONDITION, "SaveRequest", vf.SaveRequestRequest(
            request=vf.VerificationRequest(id=r.id, content="x", status=PENDING)), self.T,
            "request.status: requests move forward only")
        self.assertEqual(self.call("GetRequest", vf.GetRequestRequest(id=r.id), self.T), moved)

    def test_save_request_invalid(self):
        def bad(field, **fields):
            fields.setdefault("content", "c")
            self.assertCode(Code.INVALID_ARGUMENT, "SaveRequest", vf.SaveRequestRequest(
                request=vf.VerificationRequest(**fields)), self.T, field)
        self.assertCode(Code.INVALID_ARGUMENT, "SaveRequest", vf.SaveRequestRequest(), self.T,
                        "request")
        bad("request.id", id="not-a-uuid")
        bad("request.content", content="")
        bad("request.priority", priority=11)
        bad("request.priority", priority=-1)
        bad("request.timeout_ms", timeout_ms=-5)
        bad("request.metadata_json", metadata_json="[1]")
        bad("request.metadata_json", metadata_json="{")
        bad("request.verification_types", verification_types=["ok", ""])
        bad("request.status", status=99)
        self.assertEqual(self.counts(self.T)["verification_requests"], 0)
        self.assertCode(Code.FAILED_PRECONDITION, "SaveRequest", vf.SaveRequestRequest(
            request=vf.VerificationRequest(content="c")), "no-such-tenant-" + uuid.uuid4().hex[:6],
            "does not exist")
        self.assertCode(Code.INVALID_ARGUMENT, "SaveRequest", vf.SaveRequestRequest(
            request=vf.VerificationRequest(content="c")), None, "x-tenant-id")

    def test_update_status_forward_only(self):
        r = self.save_request(self.T)

        def move(status, **fields):
            return self.call("UpdateRequestStatus", vf.UpdateRequestStatusRequest(
                id=r.id, status=status, **fields), self.T)

        p = move(PROCESSING)
        self.assertEqual(p.status, PROCESSING)
        self.assertTrue(p.HasField("started_at"))
        self.assertEqual(move(PROCESSING), p)  # staying is allowed and changes nothing
        self.assertCode(Code.FAILED_PRECONDITION, "UpdateRequestStatus",
                        vf.UpdateRequestStatusRequest(id=r.id, status=PENDING), self.T,
                        "status: requests move forward only")
        f = move(FAILED, processing_time_ms=1234, error_message="boom", error_code="E42")
        self.assertEqual((f.status, f.processing_time_ms, f.error_message, f.error_code),
                         (FAILED, 1234, "boom", "E42"))
        self.assertEqual(f.started_at, p.started_at)
        self.assertTrue(f.HasField("completed_at"))
        for back in (PENDING, PROCESSING, COMPLETED, TIMED_OUT):
            self.assertCode(Code.FAILED_PRECONDITION, "UpdateRequestStatus",
                            vf.UpdateRequestStatusRequest(id=r.id, status=back), self.T, "status")
        self.assertEqual(self.call("GetRequest", vf.GetRequestRequest(id=r.id), self.T), f)
        # PENDING may end directly; empty error fields keep what is stored
        r2 = self.save_request(self.T)
        t = self.call("UpdateRequestStatus", vf.UpdateRequestStatusRequest(
            id=r2.id, status=TIMED_OUT, error_code="T"), self.T)
        self.assertEqual((t.status, t.error_code, t.error_message), (TIMED_OUT, "T", ""))
        self.assertFalse(t.HasField("started_at"))

    def test_update_status_errors(self):
        r = self.save_request(self.T)
        self.assertCode(Code.NOT_FOUND, "UpdateRequestStatus", vf.UpdateRequestStatusRequest(
            id=str(uuid.uuid4()), status=PROCESSING), self.T, "request not found")
        self.assertCode(Code.INVALID_ARGUMENT, "UpdateRequestStatus",
                        vf.UpdateRequestStatusRequest(id="x", status=PROCESSING), self.T, "id")
        self.assertCode(Code.INVALID_ARGUMENT, "UpdateRequestStatus",
                        vf.UpdateRequestStatusRequest(id=r.id), self.T, "status")
        self.assertCode(Code.INVALID_ARGUMENT, "UpdateRequestStatus",
                        vf.UpdateRequestStatusRequest(id=r.id, status=PROCESSING,
                                                      processing_time_ms=-1), self.T,
                        "processing_time_ms")
        self.assertEqual(self.call("GetRequest", vf.GetRequestRequest(id=r.id), self.T), r)

    def test_get_request_errors(self):
        self.assertCode(Code.NOT_FOUND, "GetRequest", vf.GetRequestRequest(id=str(uuid.uuid4())),
                        self.T, "request not found")
        self.assertCode(Code.INVALID_ARGUMENT, "GetRequest", vf.GetRequestRequest(id="nope"),
                        self.T, "id")


class Results(VerificationCase):
    def setUp(self):
        super().setUp()
        self.T = self.new_tenant()
        self.req = self.save_request(self.T, "water boils at 100 C", source="physics")

    def test_save_and_get_result(self):
        observed = timestamp_pb2.Timestamp(seconds=1700000000, nanos=123456000)
        ev = [evidence(0, observed_at=observed), evidence(1, content="zweite Quelle \u00fc"),
              evidence(2, id=str(uuid.uuid4()), supports=False, strength=0, credibility=1)]
        mr = [method_result("fact-check"),
              method_result("cross-ref", verdict=vf.VERDICT_UNSPECIFIED, confidence=0,
                            error_message="timeout", evidence_count=0)]
        res = self.save_result(self.T, self.req.id, confidence=0.875, reasoning=["a", "b"],
                               evidence=ev, method_results=mr, processing_time_ms=321)
        uuid.UUID(res.id)
        self.assertEqual((res.request_id, res.verdict, res.confidence), (self.req.id, TRUE, 0.875))
        self.assertEqual(list(res.reasoning), ["a", "b"])
        self.assertEqual(res.processing_time_ms, 321)
        self.assertTrue(res.HasField("created_at"))
        self.assertEqual(len(res.evidence), 3)
        for sent, got in zip(ev, res.evidence):
            self.assertEqual(got.content_hash, sha256_hex(sent.content))
            got_cmp = vf.Evidence()
            got_cmp.CopyFrom(got)
            got_cmp.ClearField("content_hash")
            if not sent.id:
                uuid.UUID(got_cmp.id)
                got_cmp.ClearField("id")
            self.assertEqual(got_cmp, sent)
        self.assertEqual(list(res.method_results), mr)
        self.assertEqual(self.call("GetResult", vf.GetResultRequest(request_id=self.req.id),
                                   self.T), res)
        done = self.call("GetRequest", vf.GetRequestRequest(id=self.req.id), self.T)
        self.assertEqual((done.status, done.processing_time_ms), (COMPLETED, 321))
        self.assertTrue(done.HasField("completed_at"))

    def test_latest_result_wins(self):
        first = self.save_result(self.T, self.req.id, confidence=0.1)
        second = self.save_result(self.T, self.req.id, verdict=vf.VERDICT_PARTIALLY_TRUE,
                                  confidence=0.2, evidence=[evidence(7)])
        self.assertNotEqual(first.id, second.id)
        got = self.call("GetResult", vf.GetResultRequest(request_id=self.req.id), self.T)
        self.assertEqual(got, second)
        self.assertEqual(sql_value("SELECT string_agg(seq::text, ',' ORDER BY seq)"
                                   " FROM verification_results WHERE request_id = '%s'"
                                   % self.req.id), "1,2")

    def test_save_result_invalid_leaves_nothing(self):
        before = self.counts(self.T)
        rid = self.req.id
        ok_ev = [evidence(i) for i in range(3)]

        def bad(code, field, **fields):
            fields.setdefault("request_id", rid)
            fields.setdefault("verdict", TRUE)
            self.assertCode(code, "SaveResult", vf.SaveResultRequest(
                result=vf.VerificationResult(**fields)), self.T, field)

        bad(Code.INVALID_ARGUMENT, "result", request_id=None, verdict=None)
        self.assertCode(Code.INVALID_ARGUMENT, "SaveResult", vf.SaveResultRequest(), self.T,
                        "result")
        bad(Code.INVALID_ARGUMENT, "result.request_id", request_id="x")
        bad(Code.INVALID_ARGUMENT, "result.verdict", verdict=vf.VERDICT_UNSPECIFIED)
        bad(Code.INVALID_ARGUMENT, "result.confidence", confidence=1.5)
        bad(Code.INVALID_ARGUMENT, "result.confidence", confidence=-0.1)
        bad(Code.INVALID_ARGUMENT, "result.confidence", confidence=float("nan"))
        for f in ("strength", "credibility", "relevance"):
            bad(Code.INVALID_ARGUMENT, "result.evidence." + f,
                evidence=ok_ev + [evidence(9, **{f: 1.01})])
        bad(Code.INVALID_ARGUMENT, "result.method_results.confidence",
            method_results=[method_result(confidence=2)])
        bad(Code.INVALID_ARGUMENT, "result.method_results[0].method",
            method_results=[method_result(method="")])
        bad(Code.INVALID_ARGUMENT, "result.evidence[1].id",
            evidence=[evidence(0), evidence(1, id="nope")])
        bad(Code.INVALID_ARGUMENT, "result.evidence",
            evidence=[evidence(i) for i in range(1001)])
        bad(Code.INVALID_ARGUMENT, "result.processing_time_ms", processing_time_ms=-1)
        bad(Code.FAILED_PRECONDITION, "result.request_id: no such request",
            request_id=str(uuid.uuid4()), evidence=ok_ev)
        self.assertEqual(self.counts(self.T), before)
        self.assertEqual(self.call("GetRequest", vf.GetRequestRequest(id=rid), self.T), self.req)

    def test_save_result_duplicates_and_ended_requests(self):
        res = self.save_result(self.T, self.req.id, evidence=[evidence(0)])
        before = self.counts(self.T)
        self.assertCode(Code.ALREADY_EXISTS, "SaveResult", vf.SaveResultRequest(
            result=vf.VerificationResult(id=res.id, request_id=self.req.id, verdict=TRUE)),
            self.T, "result.id")
        self.assertCode(Code.ALREADY_EXISTS, "SaveResult", vf.SaveResultRequest(
            result=vf.VerificationResult(request_id=self.req.id, verdict=TRUE,
                                         evidence=[evidence(1, id=res.evidence[0].id)])),
            self.T, "result.evidence.id")
        self.assertEqual(self.counts(self.T), before)
        ended = self.save_request(self.T)
        self.call("UpdateRequestStatus", vf.UpdateRequestStatusRequest(
            id=ended.id, status=FAILED), self.T)
        self.assertCode(Code.FAILED_PRECONDITION, "SaveResult", vf.SaveResultRequest(
            result=vf.VerificationResult(request_id=ended.id, verdict=TRUE)), self.T,
            "result.request_id: the request has already ended")
        self.assertEqual(self.counts(self.T)["verification_results"],
                         before["verification_results"])

    def test_get_result_errors(self):
        self.assertCode(Code.NOT_FOUND, "GetResult", vf.GetResultRequest(
            request_id=self.req.id), self.T, "no result")
        self.assertCode(Code.NOT_FOUND, "GetResult", vf.GetResultRequest(
            request_id=str(uuid.uuid4())), self.T)
        self.assertCode(Code.INVALID_ARGUMENT, "GetResult", vf.GetResultRequest(request_id="1"),
                        self.T, "request_id")


class Cache(VerificationCase):
    def setUp(self):
        super().setUp()
        self.T = self.new_tenant()

    def stored(self, content, source="", types=(), **result):
        req = self.save_request(self.T, content, source=source, verification_types=list(types))
        return req, self.save_result(self.T, req.id, **result)

    def lookup(self, **fields):
        return self.call("GetCachedResult", vf.GetCachedResultRequest(**fields), self.T)

    def cache_stats(self):
        return self.call("GetVerificationCacheStats", vf.GetVerificationCacheStatsRequest(),
                         self.T)

    def test_cache_and_read_back(self):
        req, res = self.stored("cached claim", "src", ["b", "a"], evidence=[evidence(1)])
        before = time.time()
        c = self.call("CacheResult", vf.CacheResultRequest(request_id=req.id, ttl_ms=60000),
                      self.T)
        self.assertEqual(c.cache_key, req.cache_key)
        self.assertAlmostEqual(c.expires_at.ToMicroseconds() / 1e6, before + 60, delta=5)
        by_key = self.lookup(cache_key=req.cache_key)
        self.assertTrue(by_key.hit)
        self.assertEqual(by_key.result, res)
        self.assertEqual(by_key.expires_at, c.expires_at)
        by_content = self.lookup(content="cached claim", source="src",
                                 verification_types=["a", "b", "a"])
        self.assertEqual((by_content.hit, by_content.result), (True, res))
        miss = self.lookup(content="cached claim", source="other")
        self.assertFalse(miss.hit)
        self.assertFalse(miss.HasField("result") or miss.HasField("expires_at"))
        self.assertEqual(sql_value("SELECT access_count FROM verification_cache"
                                   " WHERE cache_key = '%s'" % req.cache_key), "2")
        s = self.cache_stats()
        self.assertEqual((s.entries, s.live_entries, s.hits, s.misses), (1, 1, 2, 1))
        self.assertAlmostEqual(s.hit_rate, 2 / 3)

    def test_recache_takes_the_latest_result(self):
        req, first = self.stored("again")
        self.call("CacheResult", vf.CacheResultRequest(request_id=req.id, ttl_ms=60000), self.T)
        self.lookup(cache_key=req.cache_key)
        second = self.save_result(self.T, req.id, confidence=0.3)
        self.assertEqual(self.lookup(cache_key=req.cache_key).result, first)
        self.call("CacheResult", vf.CacheResultRequest(request_id=req.id, ttl_ms=60000), self.T)
        self.assertEqual(self.lookup(cache_key=req.cache_key).result, second)
        self.assertEqual(sql_value("SELECT access_count FROM verification_cache"
                                   " WHERE cache_key = '%s'" % req.cache_key), "1")

    def test_key_ignores_type_order_and_duplicates(self):
        keys = {self.save_request(self.T, "same", source="s", verification_types=t).cache_key
                for t in (["x", "y"], ["y", "x"], ["y", "x", "y", "x"])}
        self.assertEqual(keys, {cache_key("same", "s", ["x", "y"])})
        others = [self.save_request(self.T, "same", source="s", verification_types=t).cache_key
                  for t in (["x"], ["x", "y", "z"], [])]
        others.append(self.save_request(self.T, "same", source="s2",
                                        verification_types=["x", "y"]).cache_key)
        # the length prefixes keep field boundaries: ("ab", "c") is not ("a", "bc")
        others += [self.save_request(self.T, "sameX", source="").cache_key,
                   self.save_request(self.T, "same", source="X").cache_key]
        self.assertEqual(len(set(others) | keys), 7)
        self.assertEqual(others[4:], [cache_key("sameX"), cache_key("same", "X")])

    def test_long_contents_sharing_a_megabyte_prefix_do_not_collide(self):
        prefix = "p" * (1 << 20)
        (ra, res_a), (rb, _) = self.stored(prefix + "A"), self.stored(prefix + "B")
        self.assertNotEqual(ra.cache_key, rb.cache_key)
        self.assertEqual((ra.cache_key, rb.cache_key),
                         (cache_key(prefix + "A"), cache_key(prefix + "B")))
        self.call("CacheResult", vf.CacheResultRequest(request_id=ra.id, ttl_ms=60000), self.T)
        self.assertFalse(self.lookup(content=prefix + "B").hit)
        hit = self.lookup(content=prefix + "A")
        self.assertEqual((hit.hit, hit.result.id), (True, res_a.id))

    def test_expiry_and_cleanup(self):
        req, _ = self.stored("short-lived")
        keep, _ = self.stored("long-lived")
        self.call("CacheResult", vf.CacheResultRequest(request_id=req.id, ttl_ms=1), self.T)
        self.call("CacheResult", vf.CacheResultRequest(request_id=keep.id, ttl_ms=600000),
                  self.T)
        time.sleep(0.01)
        self.assertFalse(self.lookup(cache_key=req.cache_key).hit)
        s = self.cache_stats()
        self.assertEqual((s.entries, s.live_entries, s.hits, s.misses), (2, 1, 0, 1))
        removed = self.call("CleanupExpiredResults", vf.CleanupExpiredResultsRequest(), self.T)
        self.assertEqual(removed.removed, 1)
        self.assertEqual(self.call("CleanupExpiredResults", vf.CleanupExpiredResultsRequest(),
                                   self.T).removed, 0)
        self.assertTrue(self.lookup(cache_key=keep.cache_key).hit)

    def test_cache_errors(self):
        req = self.save_request(self.T, "no result yet")
        self.assertCode(Code.FAILED_PRECONDITION, "CacheResult", vf.CacheResultRequest(
            request_id=req.id, ttl_ms=1000), self.T, "request_id: the request has no result")
        self.assertCode(Code.NOT_FOUND, "CacheResult", vf.CacheResultRequest(
            request_id=str(uuid.uuid4()), ttl_ms=1000), self.T, "request not found")
        for ttl in (0, -1):
            self.assertCode(Code.INVALID_ARGUMENT, "CacheResult", vf.CacheResultRequest(
                request_id=req.id, ttl_ms=ttl), self.T, "ttl_ms")
        self.assertCode(Code.INVALID_ARGUMENT, "GetCachedResult", vf.GetCachedResultRequest(),
                        self.T, "cache_key: give a cache_key, or the content")
        self.assertCode(Code.INVALID_ARGUMENT, "GetCachedResult", vf.GetCachedResultRequest(
            cache_key="k" * 65), self.T, "cache_key")
        self.assertEqual(self.counts(self.T)["verification_cache"], 0)
        s = self.cache_stats()
        self.assertEqual((s.entries, s.hits, s.misses, s.hit_rate), (0, 0, 0, 0))


class Arbiterctl(VerificationCase):
    """A few methods through the real build/clients/c/arbiterctl."""

    def setUp(self):
        super().setUp()
        if not os.environ.get("ARBITERCTL"):
            self.skipTest("no ARBITERCTL")
        self.ctl = Ctl(vcommon.server().socket)
        self.T = self.new_tenant()

    def test_calls(self):
        t = ["--tenant", self.T]
        r = self.ctl.ok("call", "Verification.SaveRequest", "request.content=ctl claim",
                        "request.verification_types=b", "request.verification_types=a", *t)
        self.assertEqual((r["status"], r["cache_key"]),
                         ("REQUEST_STATUS_PENDING", cache_key("ctl claim", "", ["a", "b"])))
        p = self.ctl.ok("call", "Verification.UpdateRequestStatus", "id=" + r["id"],
                        "status=REQUEST_STATUS_PROCESSING", *t)
        self.assertEqual(p["status"], "REQUEST_STATUS_PROCESSING")
        rc, out, err = self.ctl.run("call", "arbiter.v1.Verification.GetResult",
                                    "request_id=" + r["id"], *t)
        self.assertEqual(rc, status_exit(NOT_FOUND), err)
        res = self.ctl.ok("call", "Verification.SaveResult", "result.request_id=" + r["id"],
                          "result.verdict=VERDICT_VERIFIED_FALSE", "result.confidence=0.25", *t)
        self.assertEqual((res["verdict"], res["confidence"]), ("VERDICT_VERIFIED_FALSE", 0.25))
        got = self.ctl.ok("call", "Verification.GetResult", "request_id=" + r["id"], *t)
        self.assertEqual(got["id"], res["id"])
        perf = self.ctl.ok("call", "Verification.GetMethodPerformance", *t)
        self.assertEqual(perf.get("methods", []), [])
        rc, out, err = self.ctl.run("list")
        self.assertEqual(rc, 0, err)
        self.assertIn("arbiter.v1.Verification\n  SaveRequest(", out)


if __name__ == "__main__":
    unittest.main(verbosity=2)
