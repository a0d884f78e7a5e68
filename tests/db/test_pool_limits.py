"""Pool size, queue and timeouts (issue 3 §7): 200 concurrent calls through
--pool-max 4 never exceed 4 backends; a full queue answers RESOURCE_EXHAUSTED
within 10 ms; an acquire timeout answers UNAVAILABLE; a 100 ms deadline on
pg_sleep(5) answers DEADLINE_EXCEEDED within 300 ms and the connection is
healthy afterwards."""
import threading
import time
import unittest

import grpc

import dbtest
from dbtest import BACKEND_PID, SERVING, SETTINGS, SLEEP, future_code


class Concurrency(unittest.TestCase):
    def test_200_concurrent_calls_with_pool_max_4(self):
        with dbtest.ArbiterServer(["--pool-min", "1", "--pool-max", "4"]) as s:
            c = dbtest.Client(s)
            c.wait_health(SERVING)
            peak = [0]
            samples = [0]
            stop = threading.Event()

            def watch():
                while not stop.is_set():
                    n = int(dbtest.psql("SELECT count(*) FROM pg_stat_activity "
                                        "WHERE application_name = 'arbiterd'")[0][0])
                    peak[0] = max(peak[0], n)
                    samples[0] += 1

            w = threading.Thread(target=watch)
            w.start()
            try:
                futures = [c.probe_future(SLEEP, tenant="t%d" % (i % 7), sleep_ms=20,
                                          timeout=30) for i in range(200)]
                codes = [future_code(f) for f in futures]
            finally:
                stop.set()
                w.join()
            self.assertEqual(codes.count(grpc.StatusCode.OK), 200,
                             [str(x) for x in codes if x != grpc.StatusCode.OK][:5])
            self.assertGreater(samples[0], 3)
            self.assertGreaterEqual(peak[0], 2, "the pool never grew")
            self.assertLessEqual(peak[0], 4)

    def test_storm_of_deadlines_and_cancellations(self):
        """Calls dying at every stage (queued, in flight, finishing) leave no
        connection behind: afterwards the pool is whole and serves."""
        from arbiter.v1 import admin_pb2, admin_pb2_grpc
        import random
        rnd = random.Random(7)
        with dbtest.ArbiterServer(["--pool-min", "4", "--pool-max", "4"]) as s:
            c = dbtest.Client(s)
            c.wait_health(SERVING)
            fs = []
            for i in range(300):
                f = c.probe_future(SLEEP, sleep_ms=rnd.choice([0, 5, 20, 60]),
                                   timeout=rnd.choice([0.01, 0.03, 0.08, 5]))
                if i % 7 == 0:
                    f.cancel()
                fs.append(f)
            codes = {str(future_code(f)) if not f.cancelled() else "cancelled" for f in fs}
            # No UNAVAILABLE: grpcio's RST_STREAMs for never-opened streams no
            # longer cost the connection (src/h2/filter.h).
            self.assertLessEqual(codes, {"StatusCode.OK", "StatusCode.DEADLINE_EXCEEDED",
                                         "cancelled"}, codes)
            c = dbtest.Client(s)  # a fresh channel
            admin = admin_pb2_grpc.AdminStub(c.channel)
            t0 = time.monotonic()
            while True:
                st = admin.GetPoolStats(admin_pb2.GetPoolStatsRequest(), timeout=5)
                if (st.idle, st.busy, st.waiting) == (4, 0, 0) or time.monotonic() - t0 > 5:
                    break
                time.sleep(0.05)
            self.assertEqual((st.total, st.idle, st.busy, st.waiting), (4, 4, 0, 0))
            self.assertEqual(len(dbtest.arbiterd_backends()), 4)
            for i in range(20):
                self.assertEqual(c.probe(SETTINGS, tenant="s%d" % i).tenant, "s%d" % i)


class QueueAndTimeouts(unittest.TestCase):
    def test_full_queue_answers_resource_exhausted_at_once(self):
        with dbtest.ArbiterServer(["--pool-min", "1", "--pool-max", "1",
                                   "--pool-queue", "1"]) as s:
            c = dbtest.Client(s)
            c.wait_health(SERVING)
            busy = c.probe_future(SLEEP, sleep_ms=1500)    # holds the connection
            time.sleep(0.2)
            queued = c.probe_future(SLEEP, sleep_ms=1)     # fills the queue
            time.sleep(0.2)
            times = []
            for _ in range(5):
                code, details, secs = c.probe_code(SETTINGS)
                self.assertEqual(code, grpc.StatusCode.RESOURCE_EXHAUSTED, details)
                times.append(secs)
            self.assertLess(min(times), 0.010, times)
            self.assertLess(sorted(times)[2], 0.050, times)
            self.assertEqual(future_code(busy), grpc.StatusCode.OK)
            self.assertEqual(future_code(queued), grpc.StatusCode.OK)
            self.assertEqual(c.probe_code(SETTINGS)[0], grpc.StatusCode.OK)

    def test_acquire_timeout_answers_unavailable(self):
        with dbtest.ArbiterServer(["--pool-min", "1", "--pool-max", "1",
                                   "--acquire-timeout-ms", "200"]) as s:
            c = dbtest.Client(s)
            c.wait_health(SERVING)
            busy = c.probe_future(SLEEP, sleep_ms=1500)
            time.sleep(0.2)
            code, details, secs = c.probe_code(SETTINGS, timeout=10)
            self.assertEqual(code, grpc.StatusCode.UNAVAILABLE, details)
            self.assertGreaterEqual(secs, 0.18)
            self.assertLess(secs, 1.0)
            # the call's own, shorter deadline bounds the wait instead
            code, details, secs = c.probe_code(SETTINGS, timeout=0.1)
            self.assertEqual(code, grpc.StatusCode.DEADLINE_EXCEEDED, details)
            self.assertEqual(future_code(busy), grpc.StatusCode.OK)

    def test_deadline_on_pg_sleep(self):
        with dbtest.ArbiterServer(["--pool-min", "1", "--pool-max", "1"]) as s:
            c = dbtest.Client(s)
            c.wait_health(SERVING)
            pid = c.probe(BACKEND_PID).backend_pid
            code, details, secs = c.probe_code(SLEEP, sleep_ms=5000, timeout=0.1)
            self.assertEqual(code, grpc.StatusCode.DEADLINE_EXCEEDED, details)
            self.assertLess(secs, 0.300)
            # the one connection is healthy and free again at once
            t0 = time.monotonic()
            self.assertEqual(c.probe(BACKEND_PID, timeout=2).backend_pid, pid)
            self.assertLess(time.monotonic() - t0, 1.0)
            active = dbtest.psql("SELECT count(*) FROM pg_stat_activity WHERE pid = %d "
                                 "AND state = 'active' AND query LIKE '%%pg_sleep%%'" % pid)
            self.assertEqual(active, [["0"]])

    def test_cancelled_calls_leave_queue_and_connection(self):
        with dbtest.ArbiterServer(["--pool-min", "1", "--pool-max", "1",
                                   "--pool-queue", "1"]) as s:
            c = dbtest.Client(s)
            c.wait_health(SERVING)
            pid = c.probe(BACKEND_PID).backend_pid
            busy = c.probe_future(SLEEP, sleep_ms=3000, timeout=30)
            time.sleep(0.2)
            queued = c.probe_future(SLEEP, sleep_ms=1, timeout=30)
            time.sleep(0.2)
            # the queue (1) is full ...
            self.assertEqual(c.probe_code(SETTINGS)[0], grpc.StatusCode.RESOURCE_EXHAUSTED)
            # ... until the queued call is cancelled by its client
            queued.cancel()
            time.sleep(0.1)
            refill = c.probe_future(SETTINGS, tenant="refill", timeout=30)
            time.sleep(0.1)
            # cancelling the running call frees the connection at once (its
            # backend query is cancelled too), and the waiter gets it
            t0 = time.monotonic()
            busy.cancel()
            self.assertEqual(refill.result().tenant, "refill")
            self.assertLess(time.monotonic() - t0, 1.0)
            self.assertEqual(c.probe(BACKEND_PID).backend_pid, pid)
            self.assertEqual(dbtest.psql(
                "SELECT count(*) FROM pg_stat_activity WHERE pid = %d AND state = 'active' "
                "AND query LIKE '%%pg_sleep%%'" % pid), [["0"]])

    def test_statement_timeout_flag_answers_deadline_exceeded(self):
        with dbtest.ArbiterServer(["--pool-min", "1", "--pool-max", "1",
                                   "--statement-timeout-ms", "150"]) as s:
            c = dbtest.Client(s)
            c.wait_health(SERVING)
            code, details, secs = c.probe_code(SLEEP, sleep_ms=5000, timeout=None)
            self.assertEqual(code, grpc.StatusCode.DEADLINE_EXCEEDED, details)
            self.assertIn("57014", details)
            self.assertLess(secs, 1.0)
            self.assertEqual(c.probe_code(SETTINGS)[0], grpc.StatusCode.OK)


if __name__ == "__main__":
    unittest.main(verbosity=2)
