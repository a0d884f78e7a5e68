"""Start-up safety (issue 3 §3 and §7): connecting as the owner role or as a
superuser refuses to start (exit code 2) with a message that says why and how
to fix it; --allow-rls-bypass starts with a warning; an unreachable database
does not stop the server from starting: Health says NOT_SERVING until the
database is there."""
import os
import shutil
import subprocess
import tempfile
import time
import unittest

import grpc

import dbtest
from dbtest import NOT_SERVING, SERVING, SETTINGS


def run_refused(url, *extra):
    s = dbtest.ArbiterServer(list(extra), database=url)
    proc = subprocess.Popen(s.args, env=s.env, stderr=subprocess.PIPE, text=True)
    try:
        _, err = proc.communicate(timeout=15)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return proc.returncode, err


class StartupSafety(unittest.TestCase):
    def test_owner_role_refuses_to_start(self):
        code, err = run_refused(dbtest.harness.owner_url())
        self.assertEqual(code, 2, err)
        self.assertIn('"arbiter_owner"', err)
        self.assertIn("owns", err)
        self.assertIn("row level security", err)
        self.assertIn("arbiter_app", err)  # how to fix it

    def test_superuser_refuses_to_start(self):
        code, err = run_refused(dbtest.harness.superuser_url())
        self.assertEqual(code, 2, err)
        self.assertIn("superuser", err)
        self.assertIn("--allow-rls-bypass", err)

    def test_allow_rls_bypass_starts_with_a_warning(self):
        s = dbtest.ArbiterServer(["--allow-rls-bypass", "--pool-min", "1"],
                                 database=dbtest.harness.superuser_url())
        s.proc = subprocess.Popen(s.args, env=s.env, stderr=subprocess.PIPE, text=True)
        try:
            s.wait_ready()
            c = dbtest.Client(s)
            c.wait_health(SERVING)
            self.assertEqual(c.probe(SETTINGS, tenant="x").tenant, "x")
        finally:
            s.stop()
            err = s.proc.stderr.read()
            s.proc.stderr.close()
        self.assertEqual(s.proc.returncode, 0)
        self.assertIn("superuser", err)
        self.assertIn("allow-rls-bypass", err)
        self.assertIn("warn", err)

    def test_app_role_starts(self):
        with dbtest.ArbiterServer(["--pool-min", "1"]) as s:
            dbtest.Client(s).wait_health(SERVING)

    def test_unreachable_database_at_start_is_not_fatal(self):
        dbtest.pg_ctl("stop", "-m", "fast")
        try:
            with dbtest.ArbiterServer(["--pool-min", "1"]) as s:
                c = dbtest.Client(s)
                self.assertEqual(c.health_status(), NOT_SERVING)
                code, details, secs = c.probe_code(SETTINGS, timeout=10)
                self.assertEqual(code, grpc.StatusCode.UNAVAILABLE, details)
                time.sleep(0.5)
                self.assertIsNone(s.proc.poll())
                self.assertEqual(c.health_status(), NOT_SERVING)
                dbtest.pg_ctl("start", "-w")
                c.wait_health(SERVING, timeout=6.0)
                self.assertEqual(c.probe(SETTINGS, tenant="late").tenant, "late")
        finally:
            subprocess.run([dbtest.os.environ["ARBITER_TEST_PG_CTL"], "start", "-w"],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


class HostNames(unittest.TestCase):
    """A host name in the conninfo is resolved on the libuv thread pool (libpq
    would resolve it inside PQconnectStartParams, blocking the loop)."""

    def test_host_name_is_resolved_and_used(self):
        proxy = dbtest.TcpToUnixProxy()
        try:
            with dbtest.ArbiterServer(["--pool-min", "2"], database=proxy.url("localhost")) as s:
                c = dbtest.Client(s)
                c.wait_health(SERVING)
                self.assertEqual(c.probe(SETTINGS, tenant="by-name").tenant, "by-name")
                self.assertEqual(len(dbtest.arbiterd_backends()), 2)
        finally:
            proxy.close()

    def test_every_address_of_a_name_is_tried(self):
        """Issue 7: in a fresh Debian root "localhost" is ::1 first; the pool
        handed libpq only the first address and retried it forever. Here a
        name has two addresses (an /etc/hosts of its own, bind-mounted in a
        private mount namespace): the first refuses, the second is the
        proxy. The pool must get through."""
        if os.geteuid() != 0 or not shutil.which("unshare"):
            self.skipTest("needs root and unshare for a private /etc/hosts")
        with tempfile.NamedTemporaryFile("w", suffix=".hosts") as hosts:
            hosts.write("127.0.0.2 twoaddr.arbiter.test\n127.0.0.1 twoaddr.arbiter.test\n")
            hosts.flush()
            os.chmod(hosts.name, 0o644)
            wrapper = ["unshare", "--mount", "--propagation", "private", "sh", "-c",
                       'mount --bind "$0" /etc/hosts && exec "$@"', hosts.name]
            probe = subprocess.run(
                wrapper + ["/usr/bin/python3", "-c",
                           "import socket; print(' '.join(a[4][0] for a in socket.getaddrinfo("
                           "'twoaddr.arbiter.test', 1, type=socket.SOCK_STREAM)))"],
                capture_output=True, text=True)
            if probe.returncode != 0:
                # In a chroot "/" is no mount point, so a private mount
                # namespace cannot be made; there test_host_name_is_resolved_
                # and_used covers it ("localhost" is ::1, then 127.0.0.1).
                self.skipTest("no private mount namespace here: " + probe.stderr.strip())
            order = probe.stdout.split()
            self.assertEqual(sorted(order), ["127.0.0.1", "127.0.0.2"], order)
            proxy = dbtest.TcpToUnixProxy(bind=order[-1])  # the first address refuses
            try:
                with dbtest.ArbiterServer(["--pool-min", "2"], wrapper=wrapper,
                                          database=proxy.url("twoaddr.arbiter.test")) as s:
                    c = dbtest.Client(s)
                    c.wait_health(SERVING)
                    self.assertEqual(c.probe(SETTINGS, tenant="second").tenant, "second")
                    self.assertEqual(len(dbtest.arbiterd_backends()), 2)
            finally:
                proxy.close()

    def test_unresolvable_host_is_not_serving_and_responsive(self):
        url = "host=no-such-host.invalid port=5432 dbname=arbiter user=arbiter_app"
        with dbtest.ArbiterServer(["--pool-min", "1"], database=url) as s:
            c = dbtest.Client(s)
            for _ in range(20):
                t0 = time.monotonic()
                self.assertEqual(c.health_status(), NOT_SERVING)
                self.assertLess(time.monotonic() - t0, 0.5)
                time.sleep(0.02)
            code, details, secs = c.probe_code(SETTINGS, timeout=10)
            self.assertEqual(code, grpc.StatusCode.UNAVAILABLE, details)


if __name__ == "__main__":
    unittest.main(verbosity=2)
