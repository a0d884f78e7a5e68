"""Recovery (issue 3 §7): PostgreSQL stopped (fast shutdown) while calls run:
those calls answer UNAVAILABLE, none hangs, Health turns NOT_SERVING within
2 s and new calls fail fast; PostgreSQL started again: SERVING within 5 s and
calls succeed, in the same arbiterd process. pg_terminate_backend on one busy
connection fails only that call."""
import queue
import threading
import time
import unittest

import grpc

import dbtest
from dbtest import BACKEND_PID, NOT_SERVING, SERVING, SETTINGS, SLEEP, future_code


class Restart(unittest.TestCase):
    def test_postgres_stopped_and_started_under_load(self):
        with dbtest.ArbiterServer(["--pool-min", "2", "--pool-max", "4"]) as s:
            c = dbtest.Client(s)
            c.wait_health(SERVING)
            pid = s.proc.pid
            running = [c.probe_future(SLEEP, sleep_ms=4000, timeout=20) for _ in range(6)]
            time.sleep(0.3)
            t_stop = time.monotonic()
            dbtest.pg_ctl("stop", "-m", "fast")
            try:
                codes = [future_code(f) for f in running]
                answered = time.monotonic() - t_stop
                self.assertEqual(codes, [grpc.StatusCode.UNAVAILABLE] * 6)
                self.assertLess(answered, 2.0, "calls hung after the database went away")
                took = c.wait_health(NOT_SERVING, timeout=2.0)
                self.assertLess(time.monotonic() - t_stop, 2.5, took)
                # while down, calls fail fast
                code, details, secs = c.probe_code(SETTINGS, timeout=10)
                self.assertEqual(code, grpc.StatusCode.UNAVAILABLE, details)
                self.assertLess(secs, 0.5)
                time.sleep(1.0)  # let the backoff grow a little
            finally:
                dbtest.pg_ctl("start", "-w")
            t_start = time.monotonic()
            c.wait_health(SERVING, timeout=5.0)
            self.assertLess(time.monotonic() - t_start, 5.0)
            for i in range(10):
                self.assertEqual(c.probe(SETTINGS, tenant="back%d" % i).tenant, "back%d" % i)
            self.assertIsNone(s.proc.poll())
            self.assertEqual(s.proc.pid, pid)

    def test_postgres_stopped_while_idle(self):
        with dbtest.ArbiterServer(["--pool-min", "2", "--pool-max", "4"]) as s:
            c = dbtest.Client(s)
            c.wait_health(SERVING)
            self.assertEqual(c.probe(SETTINGS, tenant="before").tenant, "before")
            dbtest.pg_ctl("stop", "-m", "fast")
            try:
                self.assertLess(c.wait_health(NOT_SERVING, timeout=2.0), 2.0)
                self.assertEqual(c.probe_code(SETTINGS)[0], grpc.StatusCode.UNAVAILABLE)
            finally:
                dbtest.pg_ctl("start", "-w")
            self.assertLess(c.wait_health(SERVING, timeout=5.0), 5.0)
            self.assertEqual(c.probe(SETTINGS, tenant="after").tenant, "after")


class Watch(unittest.TestCase):
    def test_watch_streams_every_change_of_the_pool(self):
        """Health.Watch: the current status first, then NOT_SERVING when the
        database goes away and SERVING when it is back, on one stream."""
        from grpc_health.v1 import health_pb2
        with dbtest.ArbiterServer(["--pool-min", "2", "--pool-max", "2"]) as s:
            c = dbtest.Client(s)
            c.wait_health(SERVING)
            stream = c.health.Watch(health_pb2.HealthCheckRequest(), timeout=30)
            seen = queue.Queue()

            def reader():
                try:
                    for msg in stream:
                        seen.put(msg.status)
                except grpc.RpcError as e:
                    seen.put(e.code())

            threading.Thread(target=reader, daemon=True).start()
            self.assertEqual(seen.get(timeout=5), SERVING)
            dbtest.pg_ctl("stop", "-m", "fast")
            try:
                self.assertEqual(seen.get(timeout=3), NOT_SERVING)
            finally:
                dbtest.pg_ctl("start", "-w")
            self.assertEqual(seen.get(timeout=6), SERVING)
            self.assertTrue(seen.empty(), "no repeated or spurious statuses")
            stream.cancel()


class Terminate(unittest.TestCase):
    def test_terminating_one_busy_backend_fails_only_its_call(self):
        with dbtest.ArbiterServer(["--pool-min", "2", "--pool-max", "2"]) as s:
            c = dbtest.Client(s)
            c.wait_health(SERVING)
            a = c.probe_future(SLEEP, tenant="victim", sleep_ms=1500)
            b = c.probe_future(SLEEP, tenant="survivor", sleep_ms=1500)
            time.sleep(0.3)
            busy = dbtest.psql("SELECT pid FROM pg_stat_activity WHERE application_name = "
                               "'arbiterd' AND state = 'active' AND query LIKE '%pg_sleep%' "
                               "ORDER BY pid")
            self.assertEqual(len(busy), 2, busy)
            dbtest.psql("SELECT pg_terminate_backend(%s)" % busy[0][0])
            codes = sorted([future_code(a), future_code(b)], key=str)
            self.assertEqual(codes, sorted([grpc.StatusCode.OK, grpc.StatusCode.UNAVAILABLE],
                                           key=str))
            # the pool replaced the connection and serves on
            pids = {c.probe(BACKEND_PID).backend_pid for _ in range(6)}
            self.assertNotIn(int(busy[0][0]), pids)
            self.assertEqual(c.health_status(), SERVING)

    def test_terminating_idle_backends_is_invisible_to_callers(self):
        with dbtest.ArbiterServer(["--pool-min", "2", "--pool-max", "2"]) as s:
            c = dbtest.Client(s)
            c.wait_health(SERVING)
            old = dbtest.arbiterd_backends()
            self.assertEqual(len(old), 2)
            dbtest.psql("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                        "WHERE application_name = 'arbiterd'")
            time.sleep(0.3)
            for i in range(5):
                self.assertEqual(c.probe(SETTINGS, tenant="k%d" % i).tenant, "k%d" % i)
            self.assertFalse(set(old) & set(dbtest.arbiterd_backends()))


if __name__ == "__main__":
    unittest.main(verbosity=2)
