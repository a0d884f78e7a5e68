"""A raw HTTP/2 client (python3-h2) for sending what real gRPC clients never
send: wrong headers, odd authorities, broken framing, resets in bulk.
"""
import socket
import struct
import time

import h2.config
import h2.connection
import h2.events
import h2.exceptions


def grpc_frame(payload=b"", compressed=False, length=None):
    """A Length-Prefixed-Message; |length| overrides the declared length."""
    n = len(payload) if length is None else length
    return struct.pack(">BI", 1 if compressed else 0, n) + payload


def grpc_headers(path, authority="localhost", content_type="application/grpc",
                 te="trailers", method="POST", extra=()):
    """Request headers; pass None to leave a field out."""
    hs = [(":method", method), (":scheme", "http"), (":path", path)]
    if authority is not None:
        hs.append((":authority", authority))
    if content_type is not None:
        hs.append(("content-type", content_type))
    if te is not None:
        hs.append(("te", te))
    hs.extend(extra)
    return hs


class Response:
    def __init__(self):
        self.headers = None   # dict of the first HEADERS
        self.trailers = None  # dict of the trailing HEADERS
        self.data = b""
        self.ended = False
        self.reset = None     # RST_STREAM error code

    def status(self):
        """grpc-status from the trailers or a trailers-only answer."""
        for hs in (self.trailers, self.headers):
            if hs and "grpc-status" in hs:
                return int(hs["grpc-status"])
        return None

    def field(self, name):
        for hs in (self.trailers, self.headers):
            if hs and name in hs:
                return hs[name]
        return None


class RawClient:
    def __init__(self, path, timeout=5.0, settings=None):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        self.sock.connect(path)
        cfg = h2.config.H2Configuration(
            client_side=True, header_encoding="utf-8",
            validate_outbound_headers=False, normalize_outbound_headers=False,
            validate_inbound_headers=False)
        self.conn = h2.connection.H2Connection(config=cfg)
        self.conn.initiate_connection()
        if settings:  # e.g. {h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: 0}
            self.conn.update_settings(settings)
        # A big connection window so large answers are not throttled.
        self.conn.increment_flow_control_window(64 << 20)
        self.responses = {}
        self.closed = False
        self.goaway = None
        self.flush()
        if settings:
            self.wait_settings()

    def wait_settings(self, timeout=5.0):
        """Reads until the server's SETTINGS arrived (its window sizes)."""
        end = time.monotonic() + timeout
        while not self.closed and time.monotonic() < end:
            if self.conn.remote_settings.initial_window_size != 65535:
                return
            self.pump(0.05)

    def flush(self):
        data = self.conn.data_to_send()
        if data:
            self.sock.sendall(data)

    def request(self, headers, body=b"", end_stream=True):
        sid = self.conn.get_next_available_stream_id()
        self.conn.send_headers(sid, headers, end_stream=end_stream and not body)
        self.responses[sid] = Response()
        self.flush()
        if body:
            self.send_body(sid, body, end_stream)
        return sid

    def send_body(self, sid, body, end_stream=True):
        """Sends |body| in frames within the peer's windows, reading its
        WINDOW_UPDATEs while they are used up."""
        off = 0
        while off < len(body) and not self.closed:
            room = min(self.conn.local_flow_control_window(sid), self.conn.max_outbound_frame_size,
                       len(body) - off)
            if room <= 0:
                self.pump(0.05)
                continue
            last = off + room == len(body)
            self.conn.send_data(sid, body[off:off + room], end_stream=end_stream and last)
            off += room
            self.flush()

    def send_data(self, sid, data, end_stream=False):
        self.conn.send_data(sid, data, end_stream=end_stream)
        self.flush()

    def reset(self, sid, code=8):
        self.conn.reset_stream(sid, error_code=code)
        self.flush()

    def _on_event(self, ev):
        r = self.responses.get(getattr(ev, "stream_id", None))
        if isinstance(ev, h2.events.ResponseReceived) and r:
            r.headers = dict(ev.headers)
        elif isinstance(ev, h2.events.TrailersReceived) and r:
            r.trailers = dict(ev.headers)
        elif isinstance(ev, h2.events.DataReceived):
            if r:
                r.data += ev.data
            self.conn.acknowledge_received_data(ev.flow_controlled_length, ev.stream_id)
        elif isinstance(ev, h2.events.StreamEnded) and r:
            r.ended = True
        elif isinstance(ev, h2.events.StreamReset) and r:
            r.reset = ev.error_code
            r.ended = True
        elif isinstance(ev, h2.events.ConnectionTerminated):
            self.goaway = ev

    def pump(self, timeout=5.0):
        """Reads once (up to |timeout|); returns False on EOF."""
        self.sock.settimeout(timeout)
        try:
            data = self.sock.recv(65536)
        except socket.timeout:
            return True
        if not data:
            self.closed = True
            return False
        try:
            events = self.conn.receive_data(data)
        except h2.exceptions.ProtocolError:
            self.closed = True
            return False
        for ev in events:
            self._on_event(ev)
        self.flush()
        return True

    def wait(self, sid, timeout=5.0, reset_too=False):
        """Waits until stream |sid| ended (and, with reset_too, until a
        following RST_STREAM arrived or a short grace passed)."""
        end = time.monotonic() + timeout
        r = self.responses[sid]
        while not r.ended and time.monotonic() < end and not self.closed:
            self.pump(max(0.01, end - time.monotonic()))
        if reset_too and r.ended and r.reset is None:
            grace = time.monotonic() + 1.0
            while r.reset is None and time.monotonic() < grace and not self.closed:
                self.pump(0.05)
        return r

    def call(self, path, body=grpc_frame(), timeout=5.0, **hkw):
        sid = self.request(grpc_headers(path, **hkw), body)
        return self.wait(sid, timeout)

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass
