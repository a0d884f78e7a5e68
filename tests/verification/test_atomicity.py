"""SaveResult is one transaction: a bad evidence item at position 500 of
1,000 (refused by the database's CHECK, inside the statement that writes
the items) leaves no result, no evidence, no method result, and the request
as it was; and concurrent saves are all stored, for different requests and
for one request (where GetResult then answers the last one stored)."""
import threading
import unittest

import vcommon
from vcommon import (COMPLETED, PROCESSING, TRUE, Code, VerificationCase, evidence, harness,
                     method_result, sha256_hex, sql_value, start_server, stop_server, vf,
                     vf_grpc)


def setUpModule():
    start_server()


def tearDownModule():
    stop_server()


def run_concurrently(n, fn):
    """Runs fn(i) for i in range(n) in n threads released together; returns
    the results in order (an exception is re-raised)."""
    barrier = threading.Barrier(n)
    out = [None] * n

    def work(i):
        barrier.wait()
        try:
            out[i] = fn(i)
        except Exception as e:  # noqa: BLE001 (re-raised below)
            out[i] = e

    threads = [threading.Thread(target=work, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    for r in out:
        if isinstance(r, Exception):
            raise r
    return out


class Atomicity(VerificationCase):
    def setUp(self):
        super().setUp()
        self.T = self.new_tenant()
        req = self.save_request(self.T, "a claim with a thousand pieces of evidence")
        self.req = self.call("UpdateRequestStatus", vf.UpdateRequestStatusRequest(
            id=req.id, status=PROCESSING, processing_time_ms=7), self.T)

    def items(self, bad_at=None, **bad):
        ev = [evidence(i, content="evidence %d " % i + "x" * 200) for i in range(1000)]
        if bad_at is not None:
            ev[bad_at] = evidence(bad_at, **bad)
        return ev

    def request_row(self):
        return sql_value("SELECT row(status, started_at, completed_at, processing_time_ms,"
                         " result_count) FROM verification_requests WHERE id = '%s'" % self.req.id)

    def test_bad_item_at_position_500_leaves_nothing(self):
        before, row = self.counts(self.T), self.request_row()
        for field, value in (("strength", 1.5), ("credibility", -0.01),
                             ("relevance", float("nan"))):
            with self.subTest(field=field):
                msg = self.assertCode(
                    Code.INVALID_ARGUMENT, "SaveResult", vf.SaveResultRequest(
                        result=vf.VerificationResult(
                            request_id=self.req.id, verdict=TRUE, confidence=0.9,
                            processing_time_ms=99, reasoning=["r"],
                            evidence=self.items(499, **{field: value}),
                            method_results=[method_result()])),
                    self.T, "result.evidence." + field)
                # the database refused it (a CHECK named after the field),
                # not a check in C before any database work
                self.assertIn("SQLSTATE 23514", msg)
                self.assertEqual(self.counts(self.T), before)
                self.assertEqual(self.request_row(), row)
        self.assertEqual(self.call("GetRequest", vf.GetRequestRequest(id=self.req.id), self.T),
                         self.req)
        self.assertCode(Code.NOT_FOUND, "GetResult", vf.GetResultRequest(
            request_id=self.req.id), self.T)

    def test_bad_method_result_after_the_evidence_leaves_nothing(self):
        before, row = self.counts(self.T), self.request_row()
        self.assertCode(Code.INVALID_ARGUMENT, "SaveResult", vf.SaveResultRequest(
            result=vf.VerificationResult(
                request_id=self.req.id, verdict=TRUE, confidence=0.9, evidence=self.items(),
                method_results=[method_result("a"), method_result("b", confidence=2)])),
            self.T, "result.method_results.confidence")
        self.assertEqual(self.counts(self.T), before)
        self.assertEqual(self.request_row(), row)

    def test_too_many_items_leave_nothing(self):
        before = self.counts(self.T)
        self.assertCode(Code.INVALID_ARGUMENT, "SaveResult", vf.SaveResultRequest(
            result=vf.VerificationResult(request_id=self.req.id, verdict=TRUE,
                                         evidence=self.items() + [evidence(1000)])),
            self.T, "result.evidence: ")
        self.assertEqual(self.counts(self.T), before)

    def test_the_same_thousand_items_fixed_are_stored(self):
        ev = self.items()
        res = self.call("SaveResult", vf.SaveResultRequest(result=vf.VerificationResult(
            request_id=self.req.id, verdict=TRUE, confidence=0.9, processing_time_ms=99,
            evidence=ev, method_results=[method_result()])), self.T)
        self.assertEqual(len(res.evidence), 1000)
        self.assertEqual([e.content for e in res.evidence], [e.content for e in ev])
        self.assertEqual(res.evidence[999].content_hash, sha256_hex(ev[999].content))
        self.assertEqual(self.counts(self.T)["verification_evidence"], 1000)
        done = self.call("GetRequest", vf.GetRequestRequest(id=self.req.id), self.T)
        self.assertEqual((done.status, done.processing_time_ms), (COMPLETED, 99))
        self.assertEqual(done.started_at, self.req.started_at)


class Concurrency(VerificationCase):
    def setUp(self):
        super().setUp()
        self.T = self.new_tenant()

    def save(self, request_id, i):
        """SaveResult on a channel of its own, so that the calls overlap on
        separate connections (and so on separate pool connections)."""
        ch = vcommon.server().channel()
        try:
            return vf_grpc.VerificationStub(ch).SaveResult(vf.SaveResultRequest(
                result=vf.VerificationResult(
                    request_id=request_id, verdict=TRUE, confidence=i / 10,
                    reasoning=["call %d" % i], evidence=[evidence(k) for k in range(20)],
                    method_results=[method_result()])),
                metadata=harness.tenant_md(self.T), timeout=60)
        finally:
            ch.close()

    def test_ten_requests_at_once_are_all_stored(self):
        reqs = [self.save_request(self.T, "concurrent %d" % i) for i in range(10)]
        out = run_concurrently(10, lambda i: self.save(reqs[i].id, i))
        for i, (req, res) in enumerate(zip(reqs, out)):
            self.assertEqual((res.request_id, list(res.reasoning)), (req.id, ["call %d" % i]))
            got = self.call("GetResult", vf.GetResultRequest(request_id=req.id), self.T)
            self.assertEqual(got, res)
            self.assertEqual(self.call("GetRequest", vf.GetRequestRequest(id=req.id),
                                       self.T).status, COMPLETED)
        c = self.counts(self.T)
        self.assertEqual((c["verification_results"], c["verification_evidence"],
                          c["verification_method_results"]), (10, 200, 10))

    def test_ten_saves_for_one_request_all_succeed_and_the_last_wins(self):
        req = self.save_request(self.T, "one request, ten results")
        out = run_concurrently(10, lambda i: self.save(req.id, i))
        self.assertEqual(len({r.id for r in out}), 10)
        # each answer is the call's own result: the latest one while its
        # save still held the request row
        self.assertEqual([list(r.reasoning) for r in out], [["call %d" % i] for i in range(10)])
        seqs = sql_value("SELECT string_agg(id || ':' || seq, ',' ORDER BY seq)"
                         " FROM verification_results WHERE request_id = '%s'" % req.id)
        ordered = [p.split(":") for p in seqs.split(",")]
        self.assertEqual([int(s) for _, s in ordered], list(range(1, 11)))
        last_stored = ordered[-1][0]
        got = self.call("GetResult", vf.GetResultRequest(request_id=req.id), self.T)
        self.assertEqual(got.id, last_stored)
        self.assertEqual(got, next(r for r in out if r.id == last_stored))
        self.assertEqual(sql_value("SELECT result_count FROM verification_requests"
                                   " WHERE id = '%s'" % req.id), "10")
        self.assertEqual(self.counts(self.T)["verification_evidence"], 200)


if __name__ == "__main__":
    unittest.main(verbosity=2)
