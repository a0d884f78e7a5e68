"""The metrics endpoint (issue 14 §4): it had no connection cap and no read
timeout (1,000 idle loopback connections used up descriptors), and showed
pool and call statistics to any local user. Now at most 32 scrapes are
open at once, a request must be complete within 5 s, and --metrics-socket
serves it on a Unix socket whose mode decides who reads it."""
import os
import shutil
import socket
import stat
import subprocess
import time
import unittest

import harness


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def open_fds(pid):
    return len(os.listdir("/proc/%d/fd" % pid))


def scrape(connect):
    s = connect()
    s.settimeout(5)
    s.sendall(b"GET /metrics HTTP/1.0\r\n\r\n")
    data = b""
    while True:
        chunk = s.recv(65536)
        if not chunk:
            break
        data += chunk
    s.close()
    return data.decode()


class Endpoint(unittest.TestCase):
    def test_idle_connections_are_capped_and_timed_out(self):
        port = free_port()
        with harness.ArbiterServer(["--metrics-listen", "127.0.0.1:%d" % port],
                                   database=False) as s:
            base = open_fds(s.proc.pid)
            idle = []
            for _ in range(300):
                c = socket.socket()
                c.connect(("127.0.0.1", port))
                idle.append(c)
            time.sleep(0.5)
            self.assertLess(open_fds(s.proc.pid) - base, 40, "at most 32 scrapes are kept")
            time.sleep(5.2)
            self.assertLess(open_fds(s.proc.pid) - base, 3, "idle ones closed after 5 s")
            text = scrape(lambda: socket.create_connection(("127.0.0.1", port)))
            self.assertIn("200 OK", text)
            self.assertIn("arbiterd_calls_total", text)
            for c in idle:
                c.close()

    def test_unix_socket_whose_mode_decides_who_reads(self):
        import tempfile
        tmp = tempfile.mkdtemp(prefix="arbiterd-metrics-")
        os.chmod(tmp, 0o755)
        path = os.path.join(tmp, "metrics.sock")
        try:
            with harness.ArbiterServer(["--metrics-socket", path, "--metrics-socket-mode",
                                        "0600"], database=False) as s:
                self.assertEqual(stat.S_IMODE(os.stat(path).st_mode), 0o600)

                def connect():
                    c = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                    c.connect(path)
                    return c
                text = scrape(connect)
                self.assertIn("arbiterd_calls_in_flight", text)
                if os.geteuid() == 0 and shutil.which("runuser"):
                    r = subprocess.run(
                        ["runuser", "-u", "nobody", "--", "/usr/bin/python3", "-c",
                         "import socket; s = socket.socket(socket.AF_UNIX); s.connect(%r)" % path],
                        capture_output=True, text=True, timeout=30)
                    self.assertNotEqual(r.returncode, 0)
                    self.assertIn("PermissionError", r.stderr)
            self.assertFalse(os.path.exists(path), "removed at shutdown")
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

    def test_unusable_metrics_socket_fails_start_up_cleanly(self):
        s = harness.ArbiterServer(["--metrics-socket", "/nonexistent/dir/metrics.sock"],
                                  database=False)
        r = subprocess.run(s.args, env=s.env, capture_output=True, text=True, timeout=30)
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertIn("/nonexistent/dir/metrics.sock", r.stderr)

    def test_both_addresses_is_a_configuration_error(self):
        r = subprocess.run([harness.ARBITERD, "--metrics-listen", "127.0.0.1:1",
                            "--metrics-socket", "/tmp/x.sock"], capture_output=True, text=True)
        self.assertEqual(r.returncode, 2)
        self.assertIn("choose one", r.stderr)


if __name__ == "__main__":
    unittest.main(verbosity=2)
