"""The daemon's life: configuration errors, the socket file (stale, live,
mode), and graceful shutdown on SIGTERM/SIGINT."""
import os
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
import grpc  # noqa: E402
from grpc_health.v1 import health_pb2, health_pb2_grpc  # noqa: E402
from arbiter.v1 import testing_pb2, testing_pb2_grpc  # noqa: E402

SERVING = health_pb2.HealthCheckResponse.SERVING


def run_arbiterd(args, env_extra=None, timeout=10):
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("ARBITER_") or k in ("ARBITERD", "ARBITER_PY_STUBS")}
    env.pop("DATABASE_URL", None)
    env.update(env_extra or {})
    return subprocess.run([harness.ARBITERD] + args, env=env, capture_output=True,
                          text=True, timeout=timeout)


def check(srv):
    stub = health_pb2_grpc.HealthStub(srv.channel())
    return stub.Check(health_pb2.HealthCheckRequest(), timeout=5).status


class Config(unittest.TestCase):
    BAD = [
        (["--pool-min", "5", "--pool-max", "2"], {}),
        (["--max-message-bytes", "abc"], {}),
        (["--max-message-bytes", "-5"], {}),
        (["--socket-mode", "888"], {}),
        (["--log-level", "loud"], {}),
        (["--no-such-flag"], {}),
        (["--socket"], {}),
        (["--shutdown-timeout-ms", "99999999999999999999"], {}),
        (["--metrics-listen", "0.0.0.0:9090"], {}),
        (["frobnicate"], {}),
        ([], {"ARBITER_POOL_QUEUE": "lots"}),
        ([], {"ARBITER_LOG_LEVEL": "chatty"}),
        (["migrate", "--bogus"], {}),
        (["--database-url", "not a conninfo"], {}),
    ]

    def test_bad_configuration_exits_2_with_one_line(self):
        for args, env in self.BAD:
            with self.subTest(args=args, env=env):
                p = run_arbiterd(["serve"] + args if args[:1] != ["migrate"] and
                                 args[:1] != ["frobnicate"] else args, env)
                self.assertEqual(p.returncode, 2, p.stderr)
                lines = p.stderr.splitlines()
                self.assertEqual(len(lines), 1, p.stderr)
                self.assertTrue(lines[0].startswith("arbiterd: "), lines[0])
                self.assertEqual(p.stdout, "")

    def test_help_lists_flags_env_and_defaults(self):
        p = run_arbiterd(["--help"])
        self.assertEqual(p.returncode, 0)
        for needle in ("--socket", "ARBITER_SOCKET", "./arbiterd.sock", "--socket-mode", "0660",
                       "--max-message-bytes", "4194304", "--max-concurrent-streams", "256",
                       "--shutdown-timeout-ms", "10000", "--log-level", "--database-url",
                       "DATABASE_URL", "--pool-min", "--pool-max", "--pool-queue", "1024",
                       "--acquire-timeout-ms", "--idle-timeout-ms", "--max-lifetime-ms",
                       "--statement-timeout-ms", "--metrics-listen", "migrate"):
            self.assertIn(needle, p.stdout)
        self.assertNotIn("test-service", p.stdout)

    def test_version(self):
        p = run_arbiterd(["--version"])
        self.assertEqual(p.returncode, 0)
        self.assertRegex(p.stdout, r"^arbiterd \d+\.\d+\.\d+\n$")


class SocketFile(unittest.TestCase):
    def test_default_mode_0660(self):
        with harness.ArbiterServer(database=False) as srv:
            self.assertEqual(stat.S_IMODE(os.stat(srv.socket).st_mode), 0o660)

    def test_mode_flag(self):
        with harness.ArbiterServer(database=False, socket_mode="0600") as srv:
            self.assertEqual(stat.S_IMODE(os.stat(srv.socket).st_mode), 0o600)
            self.assertEqual(check(srv), SERVING)

    def test_stale_socket_replaced(self):
        srv = harness.ArbiterServer(database=False)
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.bind(srv.socket)  # a socket file nobody listens on
        s.close()
        self.assertTrue(stat.S_ISSOCK(os.stat(srv.socket).st_mode))
        with srv:
            self.assertEqual(check(srv), SERVING)

    def test_live_socket_is_an_error(self):
        with harness.ArbiterServer(database=False) as first:
            p = run_arbiterd(["serve", "--socket", first.socket])
            self.assertEqual(p.returncode, 1, p.stderr)
            self.assertIn("in use by a running server", p.stderr)
            self.assertEqual(len([ln for ln in p.stderr.splitlines()
                                  if ln.startswith("arbiterd: ")]), 1)
            self.assertEqual(check(first), SERVING)  # the first one is untouched

    def test_regular_file_is_not_replaced(self):
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "file")
            with open(path, "w") as f:
                f.write("keep me")
            p = run_arbiterd(["serve", "--socket", path])
            self.assertEqual(p.returncode, 1)
            self.assertIn("not a socket", p.stderr)
            with open(path) as f:
                self.assertEqual(f.read(), "keep me")


def free_port():
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class Metrics(unittest.TestCase):
    def scrape(self, port, path="/metrics"):
        s = socket.create_connection(("127.0.0.1", port), timeout=5)
        s.sendall(("GET %s HTTP/1.0\r\nHost: x\r\n\r\n" % path).encode())
        data = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
        s.close()
        head, _, body = data.decode().partition("\r\n\r\n")
        return head.split("\r\n")[0], body

    def test_prometheus_text(self):
        port = free_port()
        with harness.ArbiterServer(database=False,
                                   args=["--metrics-listen", "127.0.0.1:%d" % port]) as srv:
            for _ in range(3):
                self.assertEqual(check(srv), SERVING)
            stub = health_pb2_grpc.HealthStub(srv.channel())
            with self.assertRaises(grpc.RpcError):
                stub.Check(health_pb2.HealthCheckRequest(service="x"), timeout=5)
            status, body = self.scrape(port)
            self.assertEqual(status, "HTTP/1.0 200 OK")
            self.assertIn('arbiterd_calls_total{code="OK"} 3\n', body)
            self.assertIn('arbiterd_calls_total{code="NOT_FOUND"} 1\n', body)
            self.assertRegex(body, r"arbiterd_connections_open [1-9]")
            self.assertIn("arbiterd_calls_in_flight 0\n", body)
            status, _ = self.scrape(port, "/other")
            self.assertEqual(status, "HTTP/1.0 404 Not Found")

    def test_reset_cancels_and_frees_at_once(self):
        from h2raw import RawClient, grpc_frame, grpc_headers
        port = free_port()
        with harness.ArbiterServer(database=False,
                                   args=["--metrics-listen", "127.0.0.1:%d" % port]) as srv:
            c = RawClient(srv.socket)
            sids = [c.request(grpc_headers("/arbiter.v1.Testing/NeverAnswer"), grpc_frame())
                    for _ in range(10)]
            time.sleep(0.2)
            _, body = self.scrape(port)
            self.assertIn("arbiterd_calls_in_flight 10\n", body)
            for sid in sids:
                c.conn.reset_stream(sid, error_code=8)
            c.flush()
            time.sleep(0.2)
            _, body = self.scrape(port)
            self.assertIn("arbiterd_calls_in_flight 0\n", body)
            self.assertIn('arbiterd_calls_total{code="CANCELLED"} 10\n', body)
            c.close()

    def test_port_in_use_is_an_error(self):
        blocker = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        blocker.bind(("127.0.0.1", 0))
        blocker.listen()
        port = blocker.getsockname()[1]
        with tempfile.TemporaryDirectory() as d:
            p = run_arbiterd(["serve", "--socket", os.path.join(d, "s"),
                              "--metrics-listen", "127.0.0.1:%d" % port])
        blocker.close()
        self.assertEqual(p.returncode, 1)
        self.assertIn("metrics", p.stderr)


class Shutdown(unittest.TestCase):
    def test_sigterm_ends_watch_exit_0_socket_gone(self):
        srv = harness.ArbiterServer(database=False, args=["--shutdown-timeout-ms", "3000"])
        with srv:
            stub = health_pb2_grpc.HealthStub(srv.channel())
            stream = stub.Watch(health_pb2.HealthCheckRequest(), timeout=20)
            self.assertEqual(next(stream).status, SERVING)
            t0 = time.monotonic()
            srv.proc.send_signal(signal.SIGTERM)
            ended = threading.Event()
            seen = []

            def drain():
                try:
                    for msg in stream:
                        seen.append(msg.status)
                except grpc.RpcError as e:
                    seen.append(e.code())
                ended.set()
            threading.Thread(target=drain, daemon=True).start()
            self.assertTrue(ended.wait(2.0), "the Watch stream did not end")
            # The change to NOT_SERVING is streamed, then the stream ends.
            self.assertEqual(seen, [health_pb2.HealthCheckResponse.NOT_SERVING,
                                    grpc.StatusCode.UNAVAILABLE])
            code = srv.proc.wait(5)
            elapsed = time.monotonic() - t0
            self.assertEqual(code, 0)
            self.assertLess(elapsed, 3.0, "exit took longer than the shutdown timeout")
            self.assertFalse(os.path.exists(srv.socket))

    def test_sigint_is_graceful_too(self):
        with harness.ArbiterServer(database=False) as srv:
            self.assertEqual(check(srv), SERVING)
            self.assertEqual(srv.stop(sig=signal.SIGINT), 0)
            self.assertFalse(os.path.exists(srv.socket))

    def test_in_flight_call_gets_unavailable_after_timeout(self):
        srv = harness.ArbiterServer(database=False, args=["--shutdown-timeout-ms", "400"])
        with srv:
            stub = testing_pb2_grpc.TestingStub(srv.channel())
            fut = stub.NeverAnswer.future(testing_pb2.Empty(), timeout=20)
            time.sleep(0.2)  # the call is running
            t0 = time.monotonic()
            srv.proc.send_signal(signal.SIGTERM)
            with self.assertRaises(grpc.RpcError) as cm:
                fut.result(timeout=5)
            waited = time.monotonic() - t0
            self.assertEqual(cm.exception.code(), grpc.StatusCode.UNAVAILABLE)
            self.assertGreater(waited, 0.3)
            self.assertLess(waited, 2.0)
            self.assertEqual(srv.proc.wait(5), 0)
            self.assertFalse(os.path.exists(srv.socket))

    def test_in_flight_call_may_finish_during_grace(self):
        srv = harness.ArbiterServer(database=False, args=["--shutdown-timeout-ms", "3000"])
        with srv:
            stub = testing_pb2_grpc.TestingStub(srv.channel())
            stream = stub.StreamN(testing_pb2.StreamRequest(count=5, interval_ms=100), timeout=10)
            self.assertEqual(next(stream).text, "message 0")
            srv.proc.send_signal(signal.SIGTERM)
            rest = [m.text for m in stream]  # finishes normally within the grace
            self.assertEqual(rest, ["message %d" % i for i in range(1, 5)])
            self.assertEqual(srv.proc.wait(5), 0)

    def test_second_signal_is_immediate(self):
        srv = harness.ArbiterServer(database=False, args=["--shutdown-timeout-ms", "60000"])
        with srv:
            stub = testing_pb2_grpc.TestingStub(srv.channel())
            fut = stub.NeverAnswer.future(testing_pb2.Empty(), timeout=20)
            time.sleep(0.2)
            srv.proc.send_signal(signal.SIGTERM)
            time.sleep(0.2)
            t0 = time.monotonic()
            srv.proc.send_signal(signal.SIGTERM)
            self.assertEqual(srv.proc.wait(5), 0)
            self.assertLess(time.monotonic() - t0, 2.0)
            with self.assertRaises(grpc.RpcError):
                fut.result(timeout=5)


if __name__ == "__main__":
    unittest.main(verbosity=2)
