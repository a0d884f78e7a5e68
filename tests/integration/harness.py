"""Shared helpers for the integration tests: start the real arbiterd on a
temporary Unix socket and talk to it with the real grpcio client.

Environment (set by meson and tests/pg/with-postgres.sh):
  ARBITERD                    path to the built arbiterd binary
  ARBITER_PY_STUBS            directory of the generated Python stubs
  ARBITER_TEST_DATABASE_URL   conninfo of the app role (absent: no database)
  ARBITER_TEST_OWNER_URL      conninfo of the owner role (migrations)
  ARBITER_TEST_SUPERUSER_URL  conninfo of a superuser (test setup only)
  ARBITER_TEST_WRAPPER        optional command prefix for arbiterd, split like
                              a shell would (e.g. "valgrind -q"); a test may
                              also pass wrapper=[...] to ArbiterServer
"""
import os
import shlex
import signal
import socket
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.environ.get("ARBITER_PY_STUBS", ""))

import grpc  # noqa: E402

ARBITERD = os.environ.get("ARBITERD", "arbiterd")


def database_url():
    return os.environ.get("ARBITER_TEST_DATABASE_URL")


def owner_url():
    return os.environ.get("ARBITER_TEST_OWNER_URL")


def superuser_url():
    return os.environ.get("ARBITER_TEST_SUPERUSER_URL")


def skip_without_database():
    """Exit 77 (meson SKIP) when no test database is configured."""
    if not database_url():
        print("SKIP: no ARBITER_TEST_DATABASE_URL")
        sys.exit(77)


class ArbiterServer:
    """Runs arbiterd for the duration of a `with` block.

    args: extra command-line flags. database: True to pass the test
    database URL (when set), False for none, or a conninfo string.
    """

    def __init__(self, args=(), database=True, test_service=True, env=None,
                 socket_mode=None, wrapper=None, stderr=None):
        self.tmpdir = tempfile.mkdtemp(prefix="arbiterd-test-")
        os.chmod(self.tmpdir, 0o755)
        self.socket = os.path.join(self.tmpdir, "arbiterd.sock")
        if wrapper is None:
            wrapper = shlex.split(os.environ.get("ARBITER_TEST_WRAPPER", ""))
        self.stderr = stderr
        self.args = list(wrapper) + [ARBITERD, "serve", "--socket", self.socket,
                     "--log-level", os.environ.get("ARBITER_TEST_LOG_LEVEL", "warn")]
        if test_service:
            self.args.append("--enable-test-service")
        if socket_mode is not None:
            self.args += ["--socket-mode", socket_mode]
        if database is True and database_url():
            self.args += ["--database-url", database_url()]
        elif isinstance(database, str):
            self.args += ["--database-url", database]
        self.args += list(args)
        self.env = dict(os.environ)
        for k in ("ARBITER_DATABASE_URL", "DATABASE_URL"):
            self.env.pop(k, None)
        if env:
            self.env.update(env)
        self.proc = None
        self._channels = []

    def start(self, wait=True, timeout=10.0):
        self.proc = subprocess.Popen(self.args, env=self.env, stderr=self.stderr)
        if wait:
            self.wait_ready(timeout)
        return self

    def wait_ready(self, timeout=10.0):
        """Waits until the socket accepts connections."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if self.proc.poll() is not None:
                raise RuntimeError("arbiterd exited with %d" % self.proc.returncode)
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                s.connect(self.socket)
                return
            except OSError:
                time.sleep(0.02)
            finally:
                s.close()
        raise RuntimeError("arbiterd did not listen on %s" % self.socket)

    def target(self):
        return "unix://" + self.socket

    def channel(self, **options):
        ch = grpc.insecure_channel(self.target(), options=list(options.items()))
        self._channels.append(ch)
        return ch

    def stop(self, sig=signal.SIGTERM, timeout=15.0):
        """Stops the server; returns its exit code."""
        for ch in self._channels:
            ch.close()
        self._channels = []
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                raise
        return self.proc.returncode

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
        try:
            os.rmdir(self.tmpdir)
        except OSError:
            pass
        return False


def tenant_md(tenant, user=None, session=None):
    md = [("x-tenant-id", tenant)]
    if user:
        md.append(("x-user-id", user))
    if session:
        md.append(("x-session-id", session))
    return md
