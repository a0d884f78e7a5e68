"""What a call answers when its commit fails or may have happened, and
pipelined segments (--pipeline-depth > 1):

- a COMMIT that fails (a DEFERRABLE INITIALLY DEFERRED constraint trigger)
  is an error, never OK, and nothing is stored (issue 14 §2; before, the
  call was answered OK and the write was lost);
- a connection lost after the commit was sent is UNKNOWN, not UNAVAILABLE,
  and so is a write still committing at the end of the shutdown grace
  (issue 14 §3): a retry policy must not repeat a write that may have
  happened;
- with several segments in flight on one connection, each call sees its
  own tenant, a deadline of a queued segment does not cancel the one
  running, a failing segment does not disturb its neighbours, and nothing
  queues behind a statement that has run for a while."""
import signal
import time
import unittest

import grpc

import dbtest
from dbtest import COUNT_MARKER, INSERT_THEN_FAIL, SERVING, SETTINGS, SLEEP, future_code
from harness import tenant_md

from arbiter.v1 import admin_pb2, admin_pb2_grpc  # noqa: E402
from arbiter.v1 import agent_registry_pb2 as ar, agent_registry_pb2_grpc  # noqa: E402

DOOMED = """
CREATE OR REPLACE FUNCTION refuse_doomed_at_commit() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.name = 'doomed' THEN
        RAISE EXCEPTION 'refused at commit' USING ERRCODE = '23514';
    END IF;
    RETURN NULL;
END $$;
DROP TRIGGER IF EXISTS refuse_doomed ON agents;
CREATE CONSTRAINT TRIGGER refuse_doomed AFTER INSERT ON agents
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION refuse_doomed_at_commit();
"""


def create_tenant(channel, tid):
    try:
        admin_pb2_grpc.AdminStub(channel).CreateTenant(
            admin_pb2.CreateTenantRequest(id=tid, name=tid), timeout=10)
    except grpc.RpcError as e:
        if e.code() != grpc.StatusCode.ALREADY_EXISTS:
            raise


class FailedCommit(unittest.TestCase):
    def test_deferred_constraint_failing_at_commit_is_not_ok(self):
        dbtest.psql(DOOMED, url=dbtest.harness.owner_url())
        with dbtest.ArbiterServer(["--pool-min", "1"]) as s:
            ch = s.channel()
            dbtest.Client(s).wait_health(SERVING)
            create_tenant(ch, "commit")
            reg = agent_registry_pb2_grpc.AgentRegistryStub(ch)
            md = tenant_md("commit")
            reg.RegisterAgent(ar.RegisterAgentRequest(agent=ar.Agent(name="fine")), metadata=md,
                              timeout=10)
            with self.assertRaises(grpc.RpcError) as cm:
                reg.RegisterAgent(ar.RegisterAgentRequest(agent=ar.Agent(name="doomed")),
                                  metadata=md, timeout=10)
            self.assertEqual(cm.exception.code(), grpc.StatusCode.INVALID_ARGUMENT,
                             cm.exception.details())
            self.assertIn("23514", cm.exception.details())
            stored = dbtest.psql("SELECT name FROM agents WHERE tenant_id = 'commit' ORDER BY name")
            self.assertEqual(stored, [["fine"]], "the refused write must leave nothing")
            # the connection is fine afterwards
            names = [a.name for a in reg.ListAgents(ar.ListAgentsRequest(), metadata=md,
                                                    timeout=10).agents]
            self.assertEqual(names, ["fine"])


class UnknownOutcome(unittest.TestCase):
    def test_connection_lost_after_the_commit_was_sent_is_unknown(self):
        proxy = dbtest.TcpToUnixProxy()
        try:
            url = proxy.url("127.0.0.1")
            with dbtest.ArbiterServer(["--pool-min", "1", "--pool-max", "1"], database=url) as s:
                c = dbtest.Client(s)
                c.wait_health(SERVING)
                f = c.probe_future(SLEEP, sleep_ms=3000, timeout=20)
                time.sleep(0.5)
                proxy.cut()  # the network drops: no error from the server
                code = future_code(f)
                self.assertEqual(code, grpc.StatusCode.UNKNOWN)
                self.assertIn("outcome is unknown", f.exception().details())
        finally:
            proxy.close()

    def test_terminated_backend_is_unavailable_not_unknown(self):
        """A backend that says it is going away aborted the transaction:
        that outcome is known."""
        with dbtest.ArbiterServer(["--pool-min", "1", "--pool-max", "1"]) as s:
            c = dbtest.Client(s)
            c.wait_health(SERVING)
            f = c.probe_future(SLEEP, sleep_ms=3000, timeout=20)
            time.sleep(0.5)
            dbtest.psql("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                        "WHERE application_name = 'arbiterd'")
            self.assertEqual(future_code(f), grpc.StatusCode.UNAVAILABLE)

    def test_write_still_committing_at_the_end_of_the_grace_is_unknown(self):
        s = dbtest.ArbiterServer(["--pool-min", "1", "--shutdown-timeout-ms", "300"])
        s.start()
        try:
            c = dbtest.Client(s)
            c.wait_health(SERVING)
            f = c.probe_future(SLEEP, sleep_ms=5000, timeout=20)
            time.sleep(0.3)
            s.proc.send_signal(signal.SIGTERM)
            self.assertEqual(future_code(f), grpc.StatusCode.UNKNOWN)
            self.assertIn("outcome is unknown", f.exception().details())
        finally:
            s.stop()


class HugeDeadline(unittest.TestCase):
    def test_statement_timeout_is_clamped(self):
        """--statement-timeout-ms 0 and grpc-timeout 99999999H (issue 14
        §5): statement_timeout would be out of PostgreSQL's range, and every
        such call failed; it is clamped to the largest value it accepts."""
        import h2raw
        from arbiter.v1 import testing_pb2
        with dbtest.ArbiterServer(["--pool-min", "1", "--statement-timeout-ms", "0"]) as s:
            dbtest.Client(s).wait_health(SERVING)
            raw = h2raw.RawClient(s.socket)
            try:
                body = h2raw.grpc_frame(testing_pb2.DbProbeRequest(kind=SETTINGS).SerializeToString())
                r = raw.call("/arbiter.v1.Testing/DbProbe", body,
                             extra=[("grpc-timeout", "99999999H"), ("x-tenant-id", "huge")])
                self.assertEqual(r.status(), 0, r.field("grpc-message"))
                got = testing_pb2.DbProbeResponse.FromString(r.data[5:])
                self.assertEqual(got.tenant, "huge")
                self.assertEqual(got.statement_timeout, "2147483647ms")
            finally:
                raw.close()


class Pipelined(unittest.TestCase):
    ARGS = ["--pool-min", "1", "--pool-max", "1", "--pipeline-depth", "4"]

    def test_each_segment_sees_its_own_tenant(self):
        with dbtest.ArbiterServer(self.ARGS) as s:
            c = dbtest.Client(s)
            c.wait_health(SERVING)
            for _ in range(5):
                fs = [(i, c.probe_future(SETTINGS, tenant="p%d" % i)) for i in range(40)]
                for i, f in fs:
                    self.assertEqual(f.result().tenant, "p%d" % i)
            self.assertEqual(len(dbtest.arbiterd_backends()), 1)

    def test_segments_run_one_after_the_other_on_one_backend(self):
        with dbtest.ArbiterServer(self.ARGS) as s:
            c = dbtest.Client(s)
            c.wait_health(SERVING)
            t0 = time.monotonic()
            fs = [c.probe_future(SLEEP, sleep_ms=100, timeout=20) for _ in range(4)]
            self.assertEqual([future_code(f) for f in fs], [grpc.StatusCode.OK] * 4)
            self.assertGreaterEqual(time.monotonic() - t0, 0.39)

    def test_a_queued_deadline_does_not_cancel_the_running_segment(self):
        with dbtest.ArbiterServer(self.ARGS) as s:
            c = dbtest.Client(s)
            c.wait_health(SERVING)
            # sent together, so the second is queued on the connection behind
            # the first rather than waiting for a free one
            first = c.probe_future(SLEEP, sleep_ms=600, timeout=20)
            second = c.probe_future(SLEEP, sleep_ms=10, timeout=0.2)
            self.assertEqual(future_code(second), grpc.StatusCode.DEADLINE_EXCEEDED)
            self.assertEqual(future_code(first), grpc.StatusCode.OK)
            self.assertEqual(c.probe(SETTINGS, tenant="after").tenant, "after")

    def test_nothing_queues_behind_a_slow_statement(self):
        with dbtest.ArbiterServer(self.ARGS + ["--acquire-timeout-ms", "300"]) as s:
            c = dbtest.Client(s)
            c.wait_health(SERVING)
            slow = c.probe_future(SLEEP, sleep_ms=1500, timeout=20)
            time.sleep(0.2)
            code, details, secs = c.probe_code(SETTINGS, timeout=10)
            self.assertEqual(code, grpc.StatusCode.UNAVAILABLE, details)
            self.assertLess(secs, 1.0, "it waited for a free connection, not behind the sleeper")
            self.assertEqual(future_code(slow), grpc.StatusCode.OK)

    def test_a_failing_segment_leaves_its_neighbours_alone(self):
        with dbtest.ArbiterServer(self.ARGS) as s:
            c = dbtest.Client(s)
            c.wait_health(SERVING)
            ch = s.channel()
            create_tenant(ch, "pipe")
            fs = []
            for i in range(12):
                if i % 3 == 1:
                    fs.append(("fail", c.probe_future(INSERT_THEN_FAIL, marker="m%d" % i)))
                else:
                    fs.append(("ok", c.probe_future(SETTINGS, tenant="n%d" % i)))
            for kind, f in fs:
                want = grpc.StatusCode.OK if kind == "ok" else grpc.StatusCode.INVALID_ARGUMENT
                self.assertEqual(future_code(f), want, kind)
            for i in range(1, 12, 3):
                self.assertEqual(c.probe(COUNT_MARKER, marker="m%d" % i).count, 0,
                                 "a failed segment stored nothing")


if __name__ == "__main__":
    unittest.main(verbosity=2)


class HungCancel(unittest.TestCase):
    def test_hung_cancel_requests_neither_starve_lookups_nor_leak_a_connection(self):
        """PQcancel blocks a thread of libuv's pool (4 threads) for as long as
        the network lets it (issue 14 §7). A proxy swallows every
        CancelRequest: at most two cancels run at once, so the host name
        lookups of new connections still find a thread, and a connection
        whose cancel never came back is closed instead of reused."""
        proxy = dbtest.TcpToUnixProxy()
        try:
            with dbtest.ArbiterServer(["--pool-min", "4", "--pool-max", "8"],
                                      database=proxy.url("localhost")) as s:
                c = dbtest.Client(s)
                c.wait_health(SERVING)
                proxy.hold_cancels = True
                doomed = [c.probe_future(SLEEP, sleep_ms=3000, timeout=0.3) for _ in range(4)]
                for f in doomed:
                    self.assertEqual(future_code(f), grpc.StatusCode.DEADLINE_EXCEEDED)
                time.sleep(0.3)
                self.assertLessEqual(len(proxy.held), 2, "at most two cancels at once")
                self.assertGreaterEqual(len(proxy.held), 1)
                # four connections sleep: four more need lookups of "localhost"
                fs = [c.probe_future(SLEEP, sleep_ms=50, timeout=10) for _ in range(4)]
                self.assertEqual([future_code(f) for f in fs], [grpc.StatusCode.OK] * 4)
                time.sleep(4)  # the sleeps end; the hung cancels' connections close
                for _ in range(10):
                    self.assertEqual(c.probe(SETTINGS, tenant="later").tenant, "later")
        finally:
            proxy.close()
