"""GetMethodPerformance and GetEvidenceQualityStats against the same
numbers computed here from what the test stored: per method total,
succeeded, success_rate (a fraction), average confidence and processing
time and the continuous 95th percentile; evidence totals, averages,
supporting/contradicting and the 10 top sources (by count, then name);
and the `since` window."""
import random
import unittest

from google.protobuf import timestamp_pb2

from vcommon import (VerificationCase, evidence, method_result, percentile_cont,
                     sql_value, start_server, stop_server, vf)


def setUpModule():
    start_server()


def tearDownModule():
    stop_server()


def method_stats(items):
    """{method: (total, succeeded, rate, avg conf, avg ms, p95 ms)} of
    (method, confidence, ms, error) tuples."""
    out = {}
    for name in sorted({i[0] for i in items}):
        rows = [i for i in items if i[0] == name]
        ok = sum(1 for r in rows if not r[3])
        out[name] = (len(rows), ok, ok / len(rows), sum(r[1] for r in rows) / len(rows),
                     sum(r[2] for r in rows) / len(rows),
                     percentile_cont([r[2] for r in rows], 0.95))
    return out


def evidence_stats(items):
    """(total, avg credibility, avg relevance, supporting, contradicting,
    top sources) of Evidence messages."""
    n = len(items)
    counts = {}
    for e in items:
        counts[e.source] = counts.get(e.source, 0) + 1
    top = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0].encode()))[:10]
    return (n, sum(e.credibility for e in items) / n if n else 0,
            sum(e.relevance for e in items) / n if n else 0,
            sum(1 for e in items if e.supports), sum(1 for e in items if not e.supports), top)


class Statistics(VerificationCase):
    @classmethod
    def setUpClass(cls):
        cls.rng = random.Random(12)

    def setUp(self):
        super().setUp()
        self.T = self.new_tenant()
        self.methods, self.evidence, self.results = [], [], []

    def store(self, n_results, old=False):
        """Stores |n_results| results with random method results and
        evidence; with |old|, dates them two days back. Returns what was sent."""
        rng, methods, ev_all = self.rng, [], []
        for _ in range(n_results):
            mrs = [method_result(rng.choice(["fact", "logic", "source", "stats"]),
                                 confidence=round(rng.random(), 6),
                                 processing_time_ms=rng.randrange(1, 5000),
                                 error_message=rng.choice(["", "", "", "timeout"]))
                   for _ in range(rng.randrange(1, 6))]
            # 14 sources with skewed counts, so that ties and the cut at 10 both occur
            ev = [evidence(k, source="src-%02d" % min(rng.randrange(0, 20), 13),
                           credibility=round(rng.random(), 6), relevance=round(rng.random(), 6),
                           supports=rng.random() < 0.6)
                  for k in range(rng.randrange(0, 30))]
            req = self.save_request(self.T)
            res = self.save_result(self.T, req.id, evidence=ev, method_results=mrs)
            if old:
                sql_value("UPDATE verification_results SET created_at = now() - interval '2 days'"
                          " WHERE id = '%s'" % res.id)
            methods += [(m.method, m.confidence, m.processing_time_ms, m.error_message)
                        for m in mrs]
            ev_all += ev
        return methods, ev_all

    def assertMethods(self, want, since=None):
        got = self.call("GetMethodPerformance", vf.GetMethodPerformanceRequest(since=since),
                        self.T).methods
        self.assertEqual([m.method for m in got], sorted(want))
        for m in got:
            total, ok, rate, conf, ms, p95 = want[m.method]
            self.assertEqual((m.total, m.succeeded), (total, ok), m.method)
            self.assertAlmostEqual(m.success_rate, rate, places=12)
            self.assertLessEqual(m.success_rate, 1.0)  # a fraction, never percent
            self.assertAlmostEqual(m.average_confidence, conf, places=9)
            self.assertAlmostEqual(m.average_processing_ms, ms, places=6)
            self.assertAlmostEqual(m.p95_processing_ms, p95, places=6)

    def assertEvidence(self, want, since=None):
        got = self.call("GetEvidenceQualityStats", vf.GetEvidenceQualityStatsRequest(
            since=since), self.T)
        total, cred, rel, sup, con, top = want
        self.assertEqual((got.total, got.supporting, got.contradicting), (total, sup, con))
        self.assertAlmostEqual(got.average_credibility, cred, places=9)
        self.assertAlmostEqual(got.average_relevance, rel, places=9)
        self.assertEqual([(s.source, s.count) for s in got.top_sources], top)

    def test_statistics_match_the_stored_data(self):
        old_m, old_e = self.store(6, old=True)
        new_m, new_e = self.store(14)
        self.assertGreater(len({e.source for e in old_e + new_e}), 10)
        self.assertMethods(method_stats(old_m + new_m))
        self.assertEvidence(evidence_stats(old_e + new_e))
        yesterday = timestamp_pb2.Timestamp()
        yesterday.FromSeconds(int(float(sql_value(
            "SELECT extract(epoch FROM now() - interval '1 day')"))))
        self.assertMethods(method_stats(new_m), since=yesterday)
        self.assertEvidence(evidence_stats(new_e), since=yesterday)
        future = timestamp_pb2.Timestamp(seconds=yesterday.seconds + 3 * 86400)
        self.assertMethods({}, since=future)
        self.assertEvidence(evidence_stats([]), since=future)

    def test_empty_tenant(self):
        self.assertMethods({})
        self.assertEvidence(evidence_stats([]))

    def test_rates_are_fractions(self):
        req = self.save_request(self.T)
        self.save_result(self.T, req.id, method_results=[
            method_result("m", error_message=e) for e in ("", "x", "", "")],
            evidence=[evidence(0)])
        m = self.call("GetMethodPerformance", vf.GetMethodPerformanceRequest(), self.T).methods
        self.assertEqual([(x.method, x.total, x.succeeded, x.success_rate) for x in m],
                         [("m", 4, 3, 0.75)])


if __name__ == "__main__":
    unittest.main(verbosity=2)
