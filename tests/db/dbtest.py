"""Helpers for the pool's integration tests (tests/db/): the real arbiterd
through tests/integration/harness.py, the real grpcio client, and psql as the
superuser for looking at the server side (pg_stat_activity, backend pids).

Run through tests/pg/with-postgres.sh, which provides the cluster and
ARBITER_TEST_* in the environment; without it every test skips (exit 77)."""
import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))

import grpc  # noqa: E402
import harness  # noqa: E402
from harness import ArbiterServer, tenant_md  # noqa: E402,F401

harness.skip_without_database()

from arbiter.v1 import testing_pb2, testing_pb2_grpc  # noqa: E402
from grpc_health.v1 import health_pb2, health_pb2_grpc  # noqa: E402

Probe = testing_pb2.DbProbeRequest
SETTINGS = Probe.CURRENT_SETTINGS
SLEEP = Probe.SLEEP
INSERT_THEN_FAIL = Probe.INSERT_THEN_FAIL
COUNT_MARKER = Probe.COUNT_MARKER
BACKEND_PID = Probe.BACKEND_PID

PG_BIN = os.environ.get("ARBITER_TEST_PG_BIN", "/usr/lib/postgresql/15/bin")
SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


def psql(sql, url=None):
    """Runs |sql| as the superuser (default) and returns the rows as lists."""
    out = subprocess.run(
        [os.path.join(PG_BIN, "psql"), "-X", "-A", "-t", "-q", "-v", "ON_ERROR_STOP=1",
         "-F", "\t", url or harness.superuser_url(), "-c", sql],
        check=True, capture_output=True, text=True).stdout
    return [line.split("\t") for line in out.splitlines() if line]


def arbiterd_backends():
    """Backend pids of the server's connections (application_name=arbiterd)."""
    return sorted(int(r[0]) for r in psql(
        "SELECT pid FROM pg_stat_activity WHERE application_name = 'arbiterd'"))


def pg_ctl(*args):
    """Stops/starts the test cluster through with-postgres.sh's helper."""
    subprocess.run([os.environ["ARBITER_TEST_PG_CTL"], *args], check=True,
                   stdout=subprocess.DEVNULL)


class Client:
    """Stubs on one channel of a running ArbiterServer."""

    def __init__(self, server):
        self.channel = server.channel()
        self.testing = testing_pb2_grpc.TestingStub(self.channel)
        self.health = health_pb2_grpc.HealthStub(self.channel)

    def probe(self, kind, tenant="t1", user=None, session=None, timeout=10, **fields):
        md = tenant_md(tenant, user, session) if tenant else None
        return self.testing.DbProbe(Probe(kind=kind, **fields), metadata=md, timeout=timeout)

    def probe_future(self, kind, tenant="t1", timeout=10, **fields):
        return self.testing.DbProbe.future(Probe(kind=kind, **fields),
                                           metadata=tenant_md(tenant), timeout=timeout)

    def probe_code(self, kind, **kw):
        """(status code, details, seconds) of one probe call."""
        t0 = time.monotonic()
        try:
            self.probe(kind, **kw)
            return grpc.StatusCode.OK, "", time.monotonic() - t0
        except grpc.RpcError as e:
            return e.code(), e.details(), time.monotonic() - t0

    def health_status(self):
        return self.health.Check(health_pb2.HealthCheckRequest(), timeout=5).status

    def wait_health(self, want, timeout=10.0):
        """Seconds until Health reports |want|; fails after |timeout|."""
        t0 = time.monotonic()
        while time.monotonic() - t0 < timeout:
            if self.health_status() == want:
                return time.monotonic() - t0
            time.sleep(0.02)
        raise AssertionError("Health did not become %s within %.1f s" % (want, timeout))


def future_code(f):
    try:
        f.result()
        return grpc.StatusCode.OK
    except grpc.RpcError as e:
        return e.code()


class TcpToUnixProxy:
    """Forwards <bind>:<port> to the cluster's Unix socket, so a test can
    use a host *name* (localhost) in --database-url although the cluster
    listens on a Unix socket only. PostgreSQL sees local connections."""

    def __init__(self, bind="127.0.0.1"):
        import socket
        import threading
        url = dict(kv.split("=", 1) for kv in harness.database_url().split())
        self.unix_path = os.path.join(url["host"], ".s.PGSQL.%s" % url.get("port", "5432"))
        self.listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.listener.bind((bind, 0))
        self.listener.listen(64)
        self.port = self.listener.getsockname()[1]
        self.closed = False
        self.socks = []
        self.hold_cancels = False  # swallow CancelRequests: accept, never answer
        self.held = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        import socket
        import threading
        while not self.closed:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            first = b""
            if self.hold_cancels:
                try:
                    client.settimeout(2)
                    while len(first) < 8:
                        chunk = client.recv(8 - len(first))
                        if not chunk:
                            break
                        first += chunk
                    client.settimeout(None)
                except OSError:
                    client.close()
                    continue
                # CancelRequest: length 16, code 80877102
                if first == b"\x00\x00\x00\x10\x04\xd2\x16\x2e":
                    self.held.append(client)
                    continue
            upstream = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                upstream.connect(self.unix_path)
                if first:
                    upstream.sendall(first)
            except OSError:
                client.close()
                continue
            self.socks += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    @staticmethod
    def _pump(src, dst):
        import socket
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                dst.sendall(data)
        except OSError:
            pass
        for s in (src, dst):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def url(self, host="localhost"):
        return "host=%s port=%d dbname=arbiter user=arbiter_app" % (host, self.port)

    def cut(self):
        """Drops every forwarded connection at once, like a network failure:
        neither side gets a goodbye from the other."""
        import socket
        for s in self.socks:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            s.close()
        self.socks = []

    def close(self):
        self.closed = True
        self.listener.close()
        for c in self.held:
            c.close()
