"""Tenant isolation matrix for every Verification method: tenant B can
neither see (get, cache lookups, statistics) nor change (status moves,
results, cache entries, cleanup) tenant A's rows, and everything A sees is
the same afterwards; a call without a tenant is rejected and writes
nothing. At the SQL level, the app role without a tenant setting sees no
row of any verification table and cannot insert one."""
import unittest
import uuid

from vcommon import (PROCESSING, TABLES, TRUE, Code, VerificationCase, evidence, harness,
                     method_result, psql, sql_value, start_server, stop_server, vf)


def setUpModule():
    start_server()


def tearDownModule():
    stop_server()


class Isolation(VerificationCase):
    def setUp(self):
        super().setUp()
        self.A, self.B = self.new_tenant("a"), self.new_tenant("b")
        self.req = self.save_request(self.A, "shared claim", source="s", verification_types=["t"])
        self.call("UpdateRequestStatus", vf.UpdateRequestStatusRequest(
            id=self.req.id, status=PROCESSING), self.A)
        self.res = self.save_result(self.A, self.req.id, evidence=[evidence(0), evidence(1)],
                                    method_results=[method_result()])
        self.call("CacheResult", vf.CacheResultRequest(request_id=self.req.id, ttl_ms=600000),
                  self.A)
        self.snapshot = self.view_of_a()

    def view_of_a(self):
        """Everything of A, through the API and the tables (as superuser)."""
        A = self.A
        rows = sql_value("SELECT " + ", ".join(
            "(SELECT md5(string_agg(t::text, ',' ORDER BY t::text)) FROM %s t"
            " WHERE tenant_id = '%s')" % (tbl, A) for tbl in TABLES))
        api = (self.call("GetRequest", vf.GetRequestRequest(id=self.req.id), A),
               self.call("GetResult", vf.GetResultRequest(request_id=self.req.id), A),
               self.call("GetMethodPerformance", vf.GetMethodPerformanceRequest(), A),
               self.call("GetEvidenceQualityStats", vf.GetEvidenceQualityStatsRequest(), A))
        return rows, tuple(m.SerializeToString(deterministic=True) for m in api)

    def assertAUnchanged(self):
        self.assertEqual(self.view_of_a(), self.snapshot)

    def test_b_cannot_read(self):
        B, req = self.B, self.req
        self.assertCode(Code.NOT_FOUND, "GetRequest", vf.GetRequestRequest(id=req.id), B)
        self.assertCode(Code.NOT_FOUND, "GetResult", vf.GetResultRequest(request_id=req.id), B)
        for lookup in (vf.GetCachedResultRequest(cache_key=req.cache_key),
                       vf.GetCachedResultRequest(content="shared claim", source="s",
                                                 verification_types=["t"])):
            got = self.call("GetCachedResult", lookup, B)
            self.assertFalse(got.hit)
            self.assertFalse(got.HasField("result"))
        self.assertEqual(len(self.call("GetMethodPerformance", vf.GetMethodPerformanceRequest(),
                                       B).methods), 0)
        ev = self.call("GetEvidenceQualityStats", vf.GetEvidenceQualityStatsRequest(), B)
        self.assertEqual((ev.total, len(ev.top_sources)), (0, 0))
        cs = self.call("GetVerificationCacheStats", vf.GetVerificationCacheStatsRequest(), B)
        self.assertEqual((cs.entries, cs.hits, cs.misses), (0, 0, 2))  # B's own misses
        cs = self.call("GetVerificationCacheStats", vf.GetVerificationCacheStatsRequest(),
                       self.A)
        self.assertEqual((cs.entries, cs.hits, cs.misses), (1, 0, 0))
        self.assertAUnchanged()

    def test_b_cannot_write(self):
        B, req = self.B, self.req
        self.assertCode(Code.NOT_FOUND, "UpdateRequestStatus", vf.UpdateRequestStatusRequest(
            id=req.id, status=vf.REQUEST_STATUS_FAILED, error_message="b was here"), B)
        self.assertCode(Code.FAILED_PRECONDITION, "SaveResult", vf.SaveResultRequest(
            result=vf.VerificationResult(request_id=req.id, verdict=TRUE,
                                         evidence=[evidence(5)])), B, "no such request")
        self.assertCode(Code.NOT_FOUND, "CacheResult", vf.CacheResultRequest(
            request_id=req.id, ttl_ms=1), B)
        self.assertAUnchanged()
        # B's cleanup does not reach A's entry, expired or not
        sql_value("UPDATE verification_cache SET expires_at = now() - interval '1 second'"
                  " WHERE tenant_id = '%s'" % self.A)
        self.snapshot = self.view_of_a()
        self.assertEqual(self.call("CleanupExpiredResults", vf.CleanupExpiredResultsRequest(),
                                   B).removed, 0)
        self.assertAUnchanged()
        self.assertEqual(self.call("CleanupExpiredResults", vf.CleanupExpiredResultsRequest(),
                                   self.A).removed, 1)

    def test_same_ids_and_content_in_two_tenants_stay_apart(self):
        # B may use A's request id: ids are scoped to the tenant, two requests
        b = self.save_request(self.B, "shared claim", id=self.req.id, source="s",
                              verification_types=["t"])
        self.assertEqual((b.id, b.cache_key, b.status), (self.req.id, self.req.cache_key,
                                                          vf.REQUEST_STATUS_PENDING))
        self.call("UpdateRequestStatus", vf.UpdateRequestStatusRequest(
            id=b.id, status=vf.REQUEST_STATUS_TIMED_OUT), self.B)
        # A's result and evidence ids in B: no clash, two tenants' rows
        bres = self.save_request(self.B, "other")
        self.save_result(self.B, bres.id, id=self.res.id,
                         evidence=[evidence(0, id=self.res.evidence[0].id)])
        self.assertFalse(self.call("GetCachedResult", vf.GetCachedResultRequest(
            cache_key=self.req.cache_key), self.B).hit)
        self.assertAUnchanged()
        hit = self.call("GetCachedResult", vf.GetCachedResultRequest(
            cache_key=self.req.cache_key), self.A)
        self.assertEqual((hit.hit, hit.result), (True, self.res))

    def test_no_tenant_is_rejected_and_writes_nothing(self):
        before = {t: sql_value("SELECT count(*) FROM %s" % t) for t in TABLES}
        req, rid = self.req, self.req.id
        calls = [
            ("SaveRequest", vf.SaveRequestRequest(request=vf.VerificationRequest(content="x"))),
            ("UpdateRequestStatus", vf.UpdateRequestStatusRequest(id=rid, status=PROCESSING)),
            ("GetRequest", vf.GetRequestRequest(id=rid)),
            ("SaveResult", vf.SaveResultRequest(result=vf.VerificationResult(
                request_id=rid, verdict=TRUE))),
            ("GetResult", vf.GetResultRequest(request_id=rid)),
            ("GetCachedResult", vf.GetCachedResultRequest(cache_key=req.cache_key)),
            ("CacheResult", vf.CacheResultRequest(request_id=rid, ttl_ms=1)),
            ("CleanupExpiredResults", vf.CleanupExpiredResultsRequest()),
            ("GetMethodPerformance", vf.GetMethodPerformanceRequest()),
            ("GetEvidenceQualityStats", vf.GetEvidenceQualityStatsRequest()),
            ("GetVerificationCacheStats", vf.GetVerificationCacheStatsRequest()),
        ]
        self.assertEqual(len(calls), len(vf.DESCRIPTOR.services_by_name["Verification"].methods))
        for method, r in calls:
            self.assertCode(Code.INVALID_ARGUMENT, method, r, None, "x-tenant-id")
        self.assertEqual({t: sql_value("SELECT count(*) FROM %s" % t) for t in TABLES}, before)
        self.assertAUnchanged()


class SqlLevel(unittest.TestCase):
    """The app role itself, with no tenant setting, through psql."""

    @classmethod
    def setUpClass(cls):
        harness.skip_without_database()
        cls.app = harness.database_url()
        tid = "sql-" + uuid.uuid4().hex[:8]
        sql_value("INSERT INTO tenants (id, name) VALUES ('%s', 'sql')" % tid)
        sql_value("BEGIN; SELECT set_config('app.current_tenant', '%s', true);"
                  " INSERT INTO verification_requests (content, cache_key)"
                  " VALUES ('c', verification_cache_key('c', '', '{}')); COMMIT;" % tid, cls.app)
        cls.tenant = tid

    def test_no_setting_sees_nothing(self):
        for tbl in TABLES:
            self.assertEqual(sql_value("SELECT count(*) FROM %s" % tbl, self.app), "0", tbl)
        self.assertEqual(sql_value("BEGIN; SELECT set_config('app.current_tenant', '%s', true);"
                                   " SELECT count(*) FROM verification_requests; COMMIT;"
                                   % self.tenant, self.app).split()[-1], "1")

    def test_no_setting_cannot_insert(self):
        rc, _, err = psql("INSERT INTO verification_requests (tenant_id, content, cache_key)"
                          " VALUES ('%s', 'c', 'k')" % self.tenant, self.app, check=False)
        self.assertNotEqual(rc, 0)
        self.assertIn("row-level security", err)

    def test_app_role_cannot_delete_what_nothing_deletes(self):
        for tbl in ("verification_requests", "verification_results", "verification_evidence",
                    "verification_method_results"):
            rc, _, err = psql("DELETE FROM %s" % tbl, self.app, check=False)
            self.assertNotEqual(rc, 0, tbl)
            self.assertIn("permission denied", err)


if __name__ == "__main__":
    unittest.main(verbosity=2)
