"""SIGHUP (issue 14 §11): it used to kill the daemon without draining. Now
it reads --config again, applies what a running server can change (pool
sizes, timeouts, limits, the log level), logs each change, warns about
settings that need a restart, keeps serving, and a bad file changes
nothing."""
import os
import signal
import tempfile
import time
import unittest

import dbtest
from dbtest import SERVING, SETTINGS
from arbiter.v1 import admin_pb2, admin_pb2_grpc


def pool_stats(server):
    return admin_pb2_grpc.AdminStub(server.channel()).GetPoolStats(
        admin_pb2.GetPoolStatsRequest(), timeout=5)


class Reload(unittest.TestCase):
    def test_sighup_reloads_and_keeps_serving(self):
        fd, path = tempfile.mkstemp(suffix=".conf")
        os.write(fd, b"pool-min = 1\npool-max = 2\nsocket-mode = 0660\n")
        os.close(fd)
        log = tempfile.TemporaryFile(mode="w+")
        try:
            with dbtest.ArbiterServer(["--config", path, "--log-level", "info"],
                                      stderr=log) as s:
                c = dbtest.Client(s)
                c.wait_health(SERVING)
                st = pool_stats(s)
                self.assertEqual((st.min, st.max), (1, 2))
                with open(path, "w") as f:
                    f.write("pool-min = 3\npool-max = 4\nsocket-mode = 0600\n"
                            "acquire-timeout-ms = 1234\n")
                s.proc.send_signal(signal.SIGHUP)
                deadline = time.monotonic() + 5
                while time.monotonic() < deadline and pool_stats(s).total < 3:
                    time.sleep(0.05)
                st = pool_stats(s)
                self.assertEqual((st.min, st.max), (3, 4))
                self.assertGreaterEqual(st.total, 3, "the pool grew to the new minimum")
                self.assertEqual(c.probe(SETTINGS, tenant="after-hup").tenant, "after-hup")
                # a file that does not parse changes nothing
                with open(path, "w") as f:
                    f.write("pool-max = many\n")
                s.proc.send_signal(signal.SIGHUP)
                time.sleep(0.3)
                self.assertEqual(pool_stats(s).max, 4)
                self.assertIsNone(s.proc.poll(), "still running")
            self.assertEqual(s.proc.returncode, 0)
            log.seek(0)
            text = log.read()
            self.assertIn("config: --pool-max 2 -> 4", text)
            self.assertIn("config: --acquire-timeout-ms 5000 -> 1234", text)
            self.assertIn("--socket-mode changed; it takes effect after a restart", text)
            self.assertIn("configuration not reloaded", text)
            self.assertIn("'many' is not a number", text)
        finally:
            os.unlink(path)
            log.close()


if __name__ == "__main__":
    unittest.main(verbosity=2)
