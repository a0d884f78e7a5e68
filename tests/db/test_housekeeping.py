"""Housekeeping (issue 3 §7): idle connections above --pool-min are closed
after --idle-timeout-ms; a connection past --max-lifetime-ms is replaced
(its backend pid changes)."""
import time
import unittest

import dbtest
from dbtest import BACKEND_PID, SERVING, SLEEP, future_code


def wait_backends(pred, timeout):
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        pids = dbtest.arbiterd_backends()
        if pred(pids):
            return pids
        time.sleep(0.05)
    return dbtest.arbiterd_backends()


class Housekeeping(unittest.TestCase):
    def test_idle_connections_above_min_are_closed(self):
        with dbtest.ArbiterServer(["--pool-min", "1", "--pool-max", "4",
                                   "--idle-timeout-ms", "400"]) as s:
            c = dbtest.Client(s)
            c.wait_health(SERVING)
            fs = [c.probe_future(SLEEP, sleep_ms=300) for _ in range(4)]
            self.assertTrue(all(future_code(f).name == "OK" for f in fs))
            grown = dbtest.arbiterd_backends()
            self.assertEqual(len(grown), 4, grown)
            t0 = time.monotonic()
            shrunk = wait_backends(lambda p: len(p) == 1, 3.0)
            self.assertEqual(len(shrunk), 1, shrunk)
            self.assertGreaterEqual(time.monotonic() - t0, 0.2)
            # the minimum stays warm
            time.sleep(0.6)
            self.assertEqual(len(dbtest.arbiterd_backends()), 1)

    def test_connection_past_lifetime_is_replaced(self):
        with dbtest.ArbiterServer(["--pool-min", "1", "--pool-max", "1",
                                   "--max-lifetime-ms", "500"]) as s:
            c = dbtest.Client(s)
            c.wait_health(SERVING)
            first = c.probe(BACKEND_PID).backend_pid
            time.sleep(1.0)
            second = c.probe(BACKEND_PID).backend_pid
            self.assertNotEqual(first, second)
            # and the old backend is gone, not leaked
            self.assertNotIn(first, wait_backends(lambda p: first not in p, 2.0))
            self.assertLessEqual(len(dbtest.arbiterd_backends()), 1)


if __name__ == "__main__":
    unittest.main(verbosity=2)
