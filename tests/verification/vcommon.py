"""Shared fixtures for the Verification integration tests.

One arbiterd per test file (start_server() in setUpModule), a real
PostgreSQL from tests/pg/with-postgres.sh, the grpcio stubs generated at
build time. Every test creates its own tenants, so tests never see each
other's rows. Also the documented cache-key encoding and the statistics,
computed here independently of the server.
"""
import hashlib
import os
import sys
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))
sys.path.insert(0, os.path.join(HERE, "..", "registry"))
import harness  # noqa: E402,F401  (puts the stubs on sys.path; re-exported)
import regcommon  # noqa: E402
from regcommon import psql, sql_value, start_server, stop_server  # noqa: E402,F401  (re-exported)

import grpc  # noqa: E402
from arbiter.v1 import verification_pb2 as vf  # noqa: E402
from arbiter.v1 import verification_pb2_grpc as vf_grpc  # noqa: E402

Code = grpc.StatusCode

PENDING, PROCESSING, COMPLETED, FAILED, TIMED_OUT = (
    vf.REQUEST_STATUS_PENDING, vf.REQUEST_STATUS_PROCESSING, vf.REQUEST_STATUS_COMPLETED,
    vf.REQUEST_STATUS_FAILED, vf.REQUEST_STATUS_TIMED_OUT)
TRUE, FALSE = vf.VERDICT_VERIFIED_TRUE, vf.VERDICT_VERIFIED_FALSE

TABLES = ("verification_requests", "verification_results", "verification_evidence",
          "verification_method_results", "verification_cache", "verification_cache_counters")


def server():
    """The module's server (regcommon's start_server() starts it)."""
    return regcommon.SERVER


def cache_key(content, source="", types=()):
    """The documented encoding: hex SHA-256 of lp(content) lp(source) lp(t)...
    with lp(x) = b"<UTF-8 byte length>:" + x's bytes and the types
    deduplicated and sorted by their bytes."""
    def lp(s):
        b = s.encode("utf-8")
        return str(len(b)).encode() + b":" + b
    enc = lp(content) + lp(source) + b"".join(
        lp(t) for t in sorted(set(types), key=lambda t: t.encode("utf-8")))
    return hashlib.sha256(enc).hexdigest()


def sha256_hex(s):
    return hashlib.sha256(s.encode("utf-8")).hexdigest()


def percentile_cont(values, q):
    """PostgreSQL's percentile_cont: linear interpolation between the
    values around position q * (n - 1) of the sorted list."""
    v = sorted(values)
    pos = q * (len(v) - 1)
    lo = int(pos)
    hi = min(lo + 1, len(v) - 1)
    return v[lo] + (v[hi] - v[lo]) * (pos - lo)


def evidence(i=0, **fields):
    e = dict(source="source-%d" % (i % 3), content="evidence %d" % i, strength=0.5,
             credibility=0.75, relevance=0.25, supports=i % 2 == 0, method="fact-check")
    e.update(fields)
    return vf.Evidence(**e)


def method_result(method="fact-check", **fields):
    m = dict(method=method, verdict=TRUE, confidence=0.9, processing_time_ms=12,
             evidence_count=1)
    m.update(fields)
    return vf.MethodResult(**m)


class VerificationCase(regcommon.RegistryCase):
    """RegistryCase's tenant creation, calls (as a tenant, or None: none)
    and status assertions, on the Verification stub."""

    def setUp(self):
        super().setUp()
        self.reg = vf_grpc.VerificationStub(self.channel)  # what call() calls

    def save_request(self, tenant, content=None, **fields):
        req = vf.VerificationRequest(content=content or "claim " + uuid.uuid4().hex, **fields)
        return self.call("SaveRequest", vf.SaveRequestRequest(request=req), tenant)

    def save_result(self, tenant, request_id, verdict=TRUE, confidence=0.8, **fields):
        res = vf.VerificationResult(request_id=request_id, verdict=verdict,
                                    confidence=confidence, **fields)
        return self.call("SaveResult", vf.SaveResultRequest(result=res), tenant)

    def counts(self, tenant):
        """Rows of every table for |tenant|, read as superuser (bypasses RLS)."""
        counts = sql_value("SELECT " + ", ".join(
            "(SELECT count(*) FROM %s WHERE tenant_id = '%s')" % (t, tenant) for t in TABLES))
        return dict(zip(TABLES, map(int, counts.split("|"))))
