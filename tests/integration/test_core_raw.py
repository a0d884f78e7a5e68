"""Malformed and unusual input from raw HTTP/2 clients (python3-h2): what
real gRPC clients never send, and what the server must survive."""
import gzip
import os
import socket
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from h2raw import RawClient, grpc_frame, grpc_headers  # noqa: E402
from grpc_health.v1 import health_pb2  # noqa: E402
from arbiter.v1 import testing_pb2  # noqa: E402

CHECK = "/grpc.health.v1.Health/Check"
ECHO = "/arbiter.v1.Testing/Echo"
NEVER = "/arbiter.v1.Testing/NeverAnswer"

OK, INVALID_ARGUMENT, RESOURCE_EXHAUSTED, UNIMPLEMENTED, INTERNAL = 0, 3, 8, 12, 13


def check_body(service=""):
    return grpc_frame(health_pb2.HealthCheckRequest(service=service).SerializeToString())


class CoreRaw(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.srv = harness.ArbiterServer(database=False).start()

    @classmethod
    def tearDownClass(cls):
        code = cls.srv.stop()
        cls.srv.__exit__(None, None, None)
        assert code == 0, "arbiterd exited with %r" % code

    def setUp(self):
        self.c = RawClient(self.srv.socket)

    def tearDown(self):
        self.c.close()

    def assert_serving(self, client=None):
        r = (client or self.c).call(CHECK, check_body())
        self.assertEqual(r.headers[":status"], "200")
        self.assertEqual(r.status(), OK)
        resp = health_pb2.HealthCheckResponse.FromString(r.data[5:])
        self.assertEqual(resp.status, health_pb2.HealthCheckResponse.SERVING)

    def test_check_answer_shape(self):
        r = self.c.call(CHECK, check_body())
        self.assertEqual(r.headers[":status"], "200")
        self.assertEqual(r.headers["content-type"], "application/grpc")
        self.assertEqual(r.trailers["grpc-status"], "0")
        self.assertEqual(r.data[:5], b"\x00\x00\x00\x00\x02")

    def test_wrong_content_type_415(self):
        for ct in ("application/json", "application/grpc-web", "text/plain", None):
            r = self.c.call(CHECK, check_body(), content_type=ct)
            self.assertEqual(r.headers[":status"], "415", ct)
            self.assertTrue(r.ended)
            self.assertIsNone(r.status())

    def test_content_type_variants_accepted(self):
        for ct in ("application/grpc", "application/grpc+proto", "application/grpc; x=y"):
            r = self.c.call(CHECK, check_body(), content_type=ct)
            self.assertEqual(r.status(), OK, ct)

    def test_get_method_rejected(self):
        r = self.c.call(CHECK, b"", method="GET")
        self.assertEqual(r.headers[":status"], "405")

    def test_missing_te_internal(self):
        r = self.c.call(CHECK, check_body(), te=None)
        self.assertEqual(r.status(), INTERNAL)

    def test_unknown_path_unimplemented_trailers_only(self):
        for path in ("/no.Such/Method", "/grpc.health.v1.Health/check", "nopath", "/", "//",
                     CHECK + "\x00junk", CHECK + "/"):
            r = self.c.call(path, check_body())
            self.assertEqual(r.headers[":status"], "200", path)
            self.assertEqual(r.headers["grpc-status"], str(UNIMPLEMENTED), path)
            self.assertIsNone(r.trailers, "trailers-only: one HEADERS frame")
            self.assertEqual(r.data, b"")

    def test_odd_authorities_accepted(self):
        for auth in ("/tmp/some/path.sock", "", None, "%2Ftmp%2Fx.sock", "localhost"):
            r = self.c.call(CHECK, check_body(), authority=auth)
            self.assertEqual(r.status(), OK, repr(auth))

    def test_garbage_preface_closes_only_that_connection(self):
        other = RawClient(self.srv.socket)
        self.assert_serving(other)
        bad = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        bad.settimeout(3)
        bad.connect(self.srv.socket)
        bad.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n" + b"\x00" * 64)
        got = b""
        end = time.monotonic() + 3
        while time.monotonic() < end:
            chunk = bad.recv(4096)
            if not chunk:
                break
            got += chunk
        else:
            self.fail("server did not close the garbage connection")
        bad.close()
        self.assert_serving(other)
        self.assert_serving()
        other.close()

    def test_declared_length_over_limit(self):
        # Only the prefix: the server must answer before any payload arrives.
        sid = self.c.request(grpc_headers(ECHO), grpc_frame(length=4 * 1024 * 1024 + 1),
                             end_stream=False)
        r = self.c.wait(sid, reset_too=True)
        self.assertEqual(r.status(), RESOURCE_EXHAUSTED)
        self.assertIsNone(r.trailers)
        # Trailers before our END_STREAM are followed by RST_STREAM(NO_ERROR).
        self.assertEqual(r.reset, 0)

    def test_truncated_message_internal(self):
        r = self.c.call(ECHO, grpc_frame(b"abc", length=10))
        self.assertEqual(r.status(), INTERNAL)

    def test_truncated_prefix_internal(self):
        r = self.c.call(ECHO, b"\x00\x00\x00")
        self.assertEqual(r.status(), INTERNAL)

    def test_no_message_internal(self):
        r = self.c.call(ECHO, b"")
        self.assertEqual(r.status(), INTERNAL)

    def test_two_messages_on_unary_unimplemented(self):
        r = self.c.call(ECHO, grpc_frame() + grpc_frame())
        self.assertEqual(r.status(), UNIMPLEMENTED)

    def test_bad_protobuf_internal(self):
        r = self.c.call(ECHO, grpc_frame(b"\xff\xff\xff\xff"))
        self.assertEqual(r.status(), INTERNAL)

    def test_message_split_across_frames(self):
        msg = testing_pb2.EchoRequest(text="split", payload=b"p" * 1000).SerializeToString()
        body = grpc_frame(msg)
        sid = self.c.request(grpc_headers(ECHO), end_stream=False)
        for i in range(0, len(body), 7):
            self.c.send_data(sid, body[i:i + 7])
        self.c.send_data(sid, b"", end_stream=True)
        r = self.c.wait(sid)
        self.assertEqual(r.status(), OK)
        self.assertEqual(testing_pb2.EchoResponse.FromString(r.data[5:]).text, "split")

    def test_compressed_flag_without_encoding_internal(self):
        r = self.c.call(ECHO, grpc_frame(b"\x0a\x01x", compressed=True))
        self.assertEqual(r.status(), INTERNAL)

    def test_compressed_flag_with_identity_internal(self):
        r = self.c.call(ECHO, grpc_frame(b"\x0a\x01x", compressed=True),
                        extra=[("grpc-encoding", "identity")])
        self.assertEqual(r.status(), INTERNAL)

    def test_unsupported_encoding_unimplemented(self):
        r = self.c.call(ECHO, grpc_frame(b"", compressed=True),
                        extra=[("grpc-encoding", "br")])
        self.assertEqual(r.status(), UNIMPLEMENTED)
        accepted = r.field("grpc-accept-encoding")
        self.assertIsNotNone(accepted)
        self.assertIn("identity", accepted)

    def test_gzip_request_accepted(self):
        msg = testing_pb2.EchoRequest(text="zipped").SerializeToString()
        r = self.c.call(ECHO, grpc_frame(gzip.compress(msg), compressed=True),
                        extra=[("grpc-encoding", "gzip")])
        self.assertEqual(r.status(), OK)
        self.assertEqual(testing_pb2.EchoResponse.FromString(r.data[5:]).text, "zipped")

    def test_corrupt_gzip_internal(self):
        r = self.c.call(ECHO, grpc_frame(b"not gzip", compressed=True),
                        extra=[("grpc-encoding", "gzip")])
        self.assertEqual(r.status(), INTERNAL)

    def test_malformed_grpc_timeout_internal(self):
        for bad in ("1x", "123456789S", "S", "-1S", "1.5S", " 1S"):
            r = self.c.call(CHECK, check_body(), extra=[("grpc-timeout", bad)])
            self.assertEqual(r.status(), INTERNAL, bad)

    def test_grpc_timeout_every_unit(self):
        for good in ("1H", "1M", "10S", "100m", "100000u", "99999999n"):
            r = self.c.call(CHECK, check_body(), extra=[("grpc-timeout", good)])
            self.assertEqual(r.status(), OK, good)

    def test_server_deadline_timer(self):
        t0 = time.monotonic()
        r = self.c.call(NEVER, grpc_frame(), extra=[("grpc-timeout", "50m")])
        self.assertEqual(r.status(), 4)  # DEADLINE_EXCEEDED, from the server itself
        self.assertLess(time.monotonic() - t0, 0.5)

    def test_invalid_tenant_bytes(self):
        r = self.c.call(ECHO, grpc_frame(), extra=[("x-tenant-id", "t\u00e9nant")])
        self.assertEqual(r.status(), INVALID_ARGUMENT)

    def test_bin_metadata_padded_and_unpadded(self):
        for value in ("AAEC", "AAE", "AAE=", "AA,AQ"):
            r = self.c.call(ECHO, grpc_frame(), extra=[("x-test-bin", value)])
            self.assertEqual(r.status(), OK, value)
        r = self.c.call(ECHO, grpc_frame(), extra=[("x-test-bin", "AAE")])
        self.assertEqual(testing_pb2.EchoResponse.FromString(r.data[5:]).bin_value, b"\x00\x01")

    def test_bad_bin_metadata_internal(self):
        r = self.c.call(ECHO, grpc_frame(), extra=[("x-test-bin", "!!!")])
        self.assertEqual(r.status(), INTERNAL)

    def test_huge_headers_rejected(self):
        extra = [("x-big-%d" % i, "v" * 1000) for i in range(20)]
        r = self.c.call(ECHO, grpc_frame(), extra=extra)
        self.assertIn(r.status(), (RESOURCE_EXHAUSTED,))
        self.assert_serving()

    def test_reset_mid_call_then_serving(self):
        sid = self.c.request(grpc_headers(NEVER), grpc_frame())
        self.c.reset(sid)
        sid2 = self.c.request(grpc_headers(ECHO), grpc_frame(b"\x0a\x02ok"), end_stream=False)
        self.c.reset(sid2)
        self.assert_serving()

    def test_many_connections_many_streams(self):
        clients = [RawClient(self.srv.socket) for _ in range(20)]
        for cl in clients:
            cl.pump(0.5)  # the server's SETTINGS
        sent = []
        for n, cl in enumerate(clients):
            for i in range(100):
                text = "c%d-%d" % (n, i)
                body = grpc_frame(testing_pb2.EchoRequest(text=text).SerializeToString())
                sent.append((cl, cl.request(grpc_headers(ECHO), body), text))
        for cl, sid, text in sent:
            r = cl.wait(sid, timeout=10)
            self.assertEqual(r.status(), OK)
            self.assertEqual(testing_pb2.EchoResponse.FromString(r.data[5:]).text, text)
        for cl in clients:
            cl.close()

    def test_settings_advertise_limits(self):
        self.c.pump(0.5)
        remote = self.c.conn.remote_settings
        self.assertEqual(remote.max_concurrent_streams, 256)
        self.assertGreaterEqual(remote.initial_window_size, 4 * 1024 * 1024)
        self.assertEqual(remote.max_header_list_size, 16384)
        # The connection window too (WINDOW_UPDATE on stream 0 at start).
        self.assertGreaterEqual(self.c.conn.outbound_flow_control_window, 8 * 1024 * 1024)

    def test_grpc_message_percent_encoded(self):
        r = self.c.call("/no.Such/M%\u00e9 x", check_body())
        self.assertEqual(r.status(), UNIMPLEMENTED)
        # '%' and the UTF-8 bytes of é are encoded; space and letters are not.
        self.assertEqual(r.field("grpc-message"), "unknown method /no.Such/M%25%C3%A9 x")

if __name__ == "__main__":
    unittest.main(verbosity=2)
