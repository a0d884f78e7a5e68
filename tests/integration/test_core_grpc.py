"""The real arbiterd against Debian's grpcio: Health, the Testing service,
deadlines, metadata (including -bin), large messages and streaming.
Runs without a database: health is SERVING then."""
import os
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
import grpc  # noqa: E402
from grpc_health.v1 import health_pb2, health_pb2_grpc  # noqa: E402
from arbiter.v1 import testing_pb2, testing_pb2_grpc  # noqa: E402
from arbiter.v1 import agent_registry_pb2, agent_registry_pb2_grpc  # noqa: E402,F401

SERVING = health_pb2.HealthCheckResponse.SERVING
SERVICE_UNKNOWN = health_pb2.HealthCheckResponse.SERVICE_UNKNOWN


class CoreGrpc(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.srv = harness.ArbiterServer(database=False).start()
        ch = cls.srv.channel(**{"grpc.max_receive_message_length": 16 << 20,
                                "grpc.max_send_message_length": 16 << 20})
        cls.health = health_pb2_grpc.HealthStub(ch)
        cls.testing = testing_pb2_grpc.TestingStub(ch)
        cls.channel = ch

    @classmethod
    def tearDownClass(cls):
        code = cls.srv.stop()
        cls.srv.__exit__(None, None, None)
        assert code == 0, "arbiterd exited with %r" % code

    def test_health_check_serving(self):
        r = self.health.Check(health_pb2.HealthCheckRequest(), timeout=5)
        self.assertEqual(r.status, SERVING)

    def test_health_check_registered_service(self):
        for name in ("grpc.health.v1.Health", "arbiter.v1.AgentRegistry", "arbiter.v1.Testing"):
            r = self.health.Check(health_pb2.HealthCheckRequest(service=name), timeout=5)
            self.assertEqual(r.status, SERVING, name)

    def test_health_check_unknown_service_not_found(self):
        with self.assertRaises(grpc.RpcError) as cm:
            self.health.Check(health_pb2.HealthCheckRequest(service="no.Such"), timeout=5)
        self.assertEqual(cm.exception.code(), grpc.StatusCode.NOT_FOUND)

    def test_health_watch_first_status(self):
        stream = self.health.Watch(health_pb2.HealthCheckRequest(), timeout=5)
        first = next(stream)
        self.assertEqual(first.status, SERVING)
        stream.cancel()

    def test_health_watch_unknown_service_stays_open(self):
        stream = self.health.Watch(health_pb2.HealthCheckRequest(service="no.Such"), timeout=0.5)
        self.assertEqual(next(stream).status, SERVICE_UNKNOWN)
        with self.assertRaises(grpc.RpcError) as cm:
            next(stream)  # nothing more until our deadline: the stream stayed open
        self.assertEqual(cm.exception.code(), grpc.StatusCode.DEADLINE_EXCEEDED)

    def test_unknown_method_unimplemented(self):
        call = self.channel.unary_unary("/arbiter.v1.Nope/Nothing")
        with self.assertRaises(grpc.RpcError) as cm:
            call(b"", timeout=5)
        self.assertEqual(cm.exception.code(), grpc.StatusCode.UNIMPLEMENTED)
        self.assertEqual(cm.exception.details(), "unknown method /arbiter.v1.Nope/Nothing")

    def test_grpc_message_round_trip(self):
        # grpcio percent-decodes what the server percent-encoded.
        call = self.channel.unary_unary("/arbiter.v1.Nope/100%_sure_\u00fc")
        with self.assertRaises(grpc.RpcError) as cm:
            call(b"", timeout=5)
        self.assertEqual(cm.exception.details(), "unknown method /arbiter.v1.Nope/100%_sure_\u00fc")

    def test_deadline_on_never_answer(self):
        t0 = time.monotonic()
        with self.assertRaises(grpc.RpcError) as cm:
            self.testing.NeverAnswer(testing_pb2.Empty(), timeout=0.05)
        elapsed = time.monotonic() - t0
        self.assertEqual(cm.exception.code(), grpc.StatusCode.DEADLINE_EXCEEDED)
        self.assertLess(elapsed, 0.2)
        # The server is still fine afterwards.
        self.assertEqual(self.health.Check(health_pb2.HealthCheckRequest(), timeout=5).status,
                         SERVING)

    def test_server_side_deadline_answer(self):
        # The client's own timer is generous; the server's timer (from
        # grpc-timeout) must answer DEADLINE_EXCEEDED itself. grpcio sends
        # the deadline as grpc-timeout, so both race; either way the status
        # is DEADLINE_EXCEEDED and it arrives close to the deadline.
        t0 = time.monotonic()
        with self.assertRaises(grpc.RpcError) as cm:
            self.testing.NeverAnswer(testing_pb2.Empty(), timeout=0.3)
        self.assertEqual(cm.exception.code(), grpc.StatusCode.DEADLINE_EXCEEDED)
        self.assertLess(time.monotonic() - t0, 1.0)

    def test_echo_with_metadata(self):
        md = harness.tenant_md("acme", user="u-1", session="s-9") + [
            ("x-test-bin", b"\x00\xff\x10binary")]
        r = self.testing.Echo(testing_pb2.EchoRequest(text="héllo", payload=b"\x00\x01"),
                              metadata=md, timeout=5)
        self.assertEqual(r.text, "héllo")
        self.assertEqual(r.payload, b"\x00\x01")
        self.assertEqual(r.tenant_id, "acme")
        self.assertEqual(r.user_id, "u-1")
        self.assertEqual(r.session_id, "s-9")
        self.assertEqual(r.bin_value, b"\x00\xff\x10binary")

    def test_echo_without_metadata(self):
        r = self.testing.Echo(testing_pb2.EchoRequest(text="x"), timeout=5)
        self.assertEqual((r.tenant_id, r.user_id, r.session_id, r.bin_value), ("", "", "", b""))

    def test_echo_gzip_compressed_request(self):
        payload = b"compress me " * 1000
        r = self.testing.Echo(testing_pb2.EchoRequest(payload=payload), timeout=5,
                              compression=grpc.Compression.Gzip)
        self.assertEqual(r.payload, payload)

    def test_echo_4mib_arrives_whole(self):
        """A message just under --max-message-bytes both ways. Its speed is
        measured by bench/, not here: the timeout only catches a stall (a
        window that never opens, output that stops at a high-water mark)."""
        payload = os.urandom(4 * 1024 * 1024 - 64)
        r = self.testing.Echo(testing_pb2.EchoRequest(payload=payload), timeout=20)
        self.assertEqual(r.payload, payload)

    def test_echo_over_limit_resource_exhausted(self):
        payload = b"x" * (4 * 1024 * 1024 + 1)
        with self.assertRaises(grpc.RpcError) as cm:
            self.testing.Echo(testing_pb2.EchoRequest(payload=payload), timeout=10)
        self.assertEqual(cm.exception.code(), grpc.StatusCode.RESOURCE_EXHAUSTED)

    def test_stream_n(self):
        t0 = time.monotonic()
        msgs = list(self.testing.StreamN(testing_pb2.StreamRequest(count=5, interval_ms=20),
                                         timeout=5))
        self.assertEqual([m.text for m in msgs], ["message %d" % i for i in range(5)])
        self.assertGreaterEqual(time.monotonic() - t0, 0.07)

    def test_stream_n_cancel(self):
        stream = self.testing.StreamN(testing_pb2.StreamRequest(count=1000, interval_ms=5),
                                      timeout=5)
        self.assertEqual(next(stream).text, "message 0")
        stream.cancel()
        self.assertEqual(self.health.Check(health_pb2.HealthCheckRequest(), timeout=5).status,
                         SERVING)

    def test_bad_tenant_invalid_argument(self):
        for bad in ("", "has space", "x" * 65, "semi;colon", "slash/no"):
            md = [("x-tenant-id", bad)]
            with self.assertRaises(grpc.RpcError) as cm:
                self.testing.Echo(testing_pb2.EchoRequest(), metadata=md, timeout=5)
            self.assertEqual(cm.exception.code(), grpc.StatusCode.INVALID_ARGUMENT, repr(bad))

    def test_good_tenant_edge_cases(self):
        for good in ("a", "x" * 64, "A-Z_a.z:0-9"):
            r = self.testing.Echo(testing_pb2.EchoRequest(), metadata=[("x-tenant-id", good)],
                                  timeout=5)
            self.assertEqual(r.tenant_id, good)

    def test_tenant_required_method_without_tenant(self):
        stub = agent_registry_pb2_grpc.AgentRegistryStub(self.channel)
        with self.assertRaises(grpc.RpcError) as cm:
            stub.GetAgent(agent_registry_pb2.GetAgentRequest(id="a"), timeout=5)
        self.assertEqual(cm.exception.code(), grpc.StatusCode.INVALID_ARGUMENT)
        self.assertIn("x-tenant-id", cm.exception.details())

    def test_many_concurrent_calls(self):
        futs = [self.testing.Echo.future(testing_pb2.EchoRequest(text=str(i)), timeout=10)
                for i in range(300)]
        self.assertEqual([f.result().text for f in futs], [str(i) for i in range(300)])


if __name__ == "__main__":
    unittest.main(verbosity=2)
