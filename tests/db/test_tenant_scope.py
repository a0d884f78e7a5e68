"""The tenant settings are visible to the call's statements and gone after its
Sync; a failing statement rolls back the whole segment and the connection
serves the next call (issue 3 §7, first two bullets)."""
import re
import unittest

import grpc

import dbtest
from dbtest import BACKEND_PID, COUNT_MARKER, INSERT_THEN_FAIL, SETTINGS, SERVING


def timeout_ms(text):
    m = re.fullmatch(r"(\d+)(ms|s|min)?", text)
    n = int(m.group(1))
    return n * {"ms": 1, "s": 1000, "min": 60000, None: 1}[m.group(2)]


class TenantScope(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        # One connection, so consecutive calls share a backend session.
        cls.server = dbtest.ArbiterServer(
            ["--pool-min", "1", "--pool-max", "1", "--statement-timeout-ms", "4321"]).start()
        cls.c = dbtest.Client(cls.server)
        cls.c.wait_health(SERVING)

    @classmethod
    def tearDownClass(cls):
        cls.server.stop()

    def test_each_call_sees_only_its_own_settings(self):
        pid = self.c.probe(BACKEND_PID).backend_pid
        a = self.c.probe(SETTINGS, tenant="acme", user="alice", session="s-1")
        self.assertEqual((a.tenant, a.user, a.session), ("acme", "alice", "s-1"))
        b = self.c.probe(SETTINGS, tenant="globex")
        self.assertEqual((b.tenant, b.user, b.session), ("globex", "", ""))
        none = self.c.probe(SETTINGS, tenant=None)
        self.assertEqual((none.tenant, none.user, none.session), ("", "", ""))
        again = self.c.probe(SETTINGS, tenant="acme")
        self.assertEqual((again.tenant, again.user), ("acme", ""))
        # All of it happened on the one backend session.
        self.assertEqual(self.c.probe(BACKEND_PID).backend_pid, pid)
        self.assertEqual(dbtest.arbiterd_backends(), [pid])

    def test_statement_timeout_is_min_of_deadline_and_flag(self):
        no_deadline = self.c.probe(SETTINGS, timeout=None)
        self.assertEqual(timeout_ms(no_deadline.statement_timeout), 4321)
        short = self.c.probe(SETTINGS, timeout=2)
        # (grpc-core rounds the 2 s deadline it sends up by a few ms)
        self.assertLessEqual(timeout_ms(short.statement_timeout), 2100)
        self.assertGreater(timeout_ms(short.statement_timeout), 1000)
        # transaction-local too: the next call without a deadline is back to the flag
        self.assertEqual(timeout_ms(self.c.probe(SETTINGS, timeout=None).statement_timeout),
                         4321)

    def test_failing_statement_rolls_back_the_segment(self):
        pid = self.c.probe(BACKEND_PID).backend_pid
        # twice: the second run uses the statements prepared by the first,
        # whose transaction was rolled back
        for _ in range(2):
            with self.assertRaises(grpc.RpcError) as cm:
                self.c.probe(INSERT_THEN_FAIL, marker="rollback-1")
            self.assertEqual(cm.exception.code(), grpc.StatusCode.INVALID_ARGUMENT)
        details = cm.exception.details()
        self.assertIn("22012", details)
        # no SQL text, no server message, no row data
        for leak in ("INSERT", "division", "tenants", "rollback-1", "SELECT"):
            self.assertNotIn(leak, details)
        # the earlier insert of the same call is not visible
        self.assertEqual(self.c.probe(COUNT_MARKER, marker="rollback-1").count, 0)
        self.assertEqual(dbtest.psql("SELECT count(*) FROM tenants WHERE id = 'rollback-1'"),
                         [["0"]])
        # and the same connection serves the next call
        self.assertEqual(self.c.probe(BACKEND_PID).backend_pid, pid)
        self.assertEqual(self.c.probe(SETTINGS, tenant="after").tenant, "after")

    def test_count_sees_committed_rows(self):
        dbtest.psql("INSERT INTO tenants (id, name) VALUES ('visible-1', 'x')")
        self.assertEqual(self.c.probe(COUNT_MARKER, marker="visible-1").count, 1)


class NoPreparedStatements(unittest.TestCase):
    """--no-prepared-statements (PgBouncer transaction mode): unnamed
    statements, same one-round-trip segment and the same guarantees."""

    def test_same_behaviour_without_prepared_statements(self):
        with dbtest.ArbiterServer(["--pool-min", "1", "--pool-max", "1",
                                   "--no-prepared-statements"]) as s:
            c = dbtest.Client(s)
            c.wait_health(SERVING)
            self.assertEqual(c.probe(SETTINGS, tenant="np-a").tenant, "np-a")
            self.assertEqual(c.probe(SETTINGS, tenant=None).tenant, "")
            for _ in range(2):
                with self.assertRaises(grpc.RpcError) as cm:
                    c.probe(INSERT_THEN_FAIL, marker="np-rollback")
                self.assertEqual(cm.exception.code(), grpc.StatusCode.INVALID_ARGUMENT)
            self.assertEqual(c.probe(COUNT_MARKER, marker="np-rollback").count, 0)
            # the failures did not cost the connection
            pid = c.probe(BACKEND_PID).backend_pid
            self.assertEqual(c.probe(BACKEND_PID).backend_pid, pid)
            self.assertEqual(dbtest.arbiterd_backends(), [pid])


if __name__ == "__main__":
    unittest.main(verbosity=2)
