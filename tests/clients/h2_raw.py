#!/usr/bin/python3
"""A raw HTTP/2 client for the HTTP/2 tests (tests/SharpWsgi.Tests/Functional/Http2Tests.cs), on Python's h2
(Debian python3-h2). It speaks h2c with prior knowledge, or h2 over TLS (ALPN) with --ca. Each scenario prints one
JSON object on stdout; errors go to stderr with exit code 1.

  environ    GET /environ with a split cookie and a given :authority (and optionally a different host header)
  post       POST /echo: a body in DATA frames, with or without content-length, optionally with trailers
  rst        reads part of a streaming response, sends RST_STREAM(CANCEL), then asks /closes on the same connection
  streams    opens --streams streams at once (before the server's SETTINGS arrive), reports each one's fate, then
             makes one more request on the same connection; with --release, the --held admitted streams are let go
             (by that path, on another connection) only once every other stream has its fate
  slow       stream A never gets a WINDOW_UPDATE; side requests on the same and on a new connection must be answered;
             then A is read to the end (or reset, --live)
  paths      --paths one after another on one connection ("HEAD:/path" for another method)
  alpn       the protocol TLS ALPN selects when h2 and http/1.1 are offered
  badheader  a request with a connection-specific header (connection: keep-alive), then one on a new connection
  nonreader  asks --path with a 4 KiB receive buffer and reads nothing for --wait seconds; then reports whether the
             server closed the connection meanwhile (what was buffered is read, for at most 3 s)
"""
import argparse
import json
import socket
import ssl
import sys
import time

import h2.config
import h2.connection
import h2.errors
import h2.events
import h2.settings


class Client:
    """One HTTP/2 connection; events are gathered per stream."""

    def __init__(self, args, window=None, validate=True, receive_buffer=None):
        self.args = args
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.settimeout(args.timeout)
        if receive_buffer:  # before connecting: it sizes the window the client offers
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
        sock.connect(("127.0.0.1", args.port))
        if args.ca:
            ctx = ssl.create_default_context(cafile=args.ca)
            ctx.set_alpn_protocols(["h2"])
            sock = ctx.wrap_socket(sock, server_hostname="localhost")
            if sock.selected_alpn_protocol() != "h2":
                raise SystemExit("ALPN chose %r, not h2" % sock.selected_alpn_protocol())
        self.sock = sock
        config = h2.config.H2Configuration(client_side=True, header_encoding="latin-1",
                                           validate_outbound_headers=validate,
                                           normalize_outbound_headers=validate)
        self.conn = h2.connection.H2Connection(config=config)
        self.conn.initiate_connection()
        if window is not None:
            self.conn.update_settings({h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: window})
        self.streams = {}
        self.terminated = None

    def state(self, stream_id):
        return self.streams.setdefault(stream_id, {"status": None, "headers": {}, "body": bytearray(),
                                                   "ended": False, "reset": None})

    def request(self, method, path, headers=(), body=None, end=True, authority=None, flush=True):
        stream_id = self.conn.get_next_available_stream_id()
        scheme = "https" if self.args.ca else "http"
        head = [(":method", method), (":scheme", scheme), (":path", path),
                (":authority", authority or "127.0.0.1:%d" % self.args.port)]
        head.extend(headers)
        self.conn.send_headers(stream_id, head, end_stream=end and body is None)
        self.state(stream_id)
        if body is not None:
            self.conn.send_data(stream_id, body, end_stream=end)
        if flush:
            self.flush()
        return stream_id

    def flush(self):
        data = self.conn.data_to_send()
        if data:
            self.sock.sendall(data)

    def pump(self, until, ack=lambda stream_id: True):
        """Reads frames until until() is true; DATA is acknowledged (WINDOW_UPDATE) where ack(stream) says so."""
        deadline = time.monotonic() + self.args.timeout
        while not until():
            # h2 closes its state machine at GOAWAY (it cannot follow the streams that GOAWAY lets finish).
            if self.terminated is not None:
                raise SystemExit("connection terminated: %s" % self.terminated)
            if time.monotonic() > deadline:
                raise SystemExit("timed out; streams: %s" % self.summary())
            data = self.sock.recv(65536)
            if not data:
                raise SystemExit("connection closed by the server; streams: %s" % self.summary())
            for event in self.conn.receive_data(data):
                self.on_event(event, ack)
            self.flush()

    def on_event(self, event, ack):
        if isinstance(event, h2.events.ResponseReceived):
            s = self.state(event.stream_id)
            s["headers"] = {k: v for k, v in event.headers}
            s["status"] = int(s["headers"][":status"])
        elif isinstance(event, h2.events.DataReceived):
            self.state(event.stream_id)["body"] += event.data
            if ack(event.stream_id):
                self.conn.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
            else:  # the connection's window only: this stream's stays shut
                self.conn.increment_flow_control_window(event.flow_controlled_length)
        elif isinstance(event, h2.events.StreamEnded):
            self.state(event.stream_id)["ended"] = True
        elif isinstance(event, h2.events.StreamReset):
            self.state(event.stream_id)["reset"] = h2.errors.ErrorCodes(event.error_code).name
        elif isinstance(event, h2.events.ConnectionTerminated):
            self.terminated = h2.errors.ErrorCodes(event.error_code).name

    def done(self, stream_id):
        s = self.state(stream_id)
        return s["ended"] or s["reset"] is not None

    def fetch(self, method, path, **kwargs):
        stream_id = self.request(method, path, **kwargs)
        self.pump(lambda: self.done(stream_id))
        return self.result(stream_id)

    def result(self, stream_id):
        s = self.state(stream_id)
        out = {"stream": stream_id, "status": s["status"], "reset": s["reset"], "length": len(s["body"]),
               "headers": {k: v for k, v in s["headers"].items() if not k.startswith(":")}}
        if s["headers"].get("content-type", "").startswith("application/json") and s["ended"]:
            out["json"] = json.loads(bytes(s["body"]))
        return out

    def summary(self):
        return {i: {"status": s["status"], "len": len(s["body"]), "ended": s["ended"], "reset": s["reset"]}
                for i, s in self.streams.items()}

    def close(self):
        try:
            self.conn.close_connection()
            self.flush()
        except OSError:
            pass
        self.sock.close()


def scenario_environ(args):
    c = Client(args, validate=not args.host)  # h2 itself refuses a host that differs from :authority
    headers = [("cookie", "a=1"), ("cookie", "b=2"), ("x-probe", "yes")]
    if args.host:
        headers.append(("host", args.host))
    out = c.fetch("GET", "/environ", headers=headers, authority=args.authority)
    c.close()
    return out


def scenario_post(args):
    c = Client(args)
    body = bytes(i % 251 for i in range(args.size))
    headers = [("content-type", "application/octet-stream")]
    if args.content_length:
        headers.append(("content-length", str(len(body))))
    stream_id = c.request("POST", "/echo", headers=headers, end=False)
    for i in range(0, len(body), 1000):
        # Respect the server's windows: wait for WINDOW_UPDATEs when they are used up.
        piece = body[i:i + 1000]
        c.pump(lambda: c.conn.local_flow_control_window(stream_id) >= len(piece) or c.done(stream_id))
        if c.done(stream_id):
            break
        c.conn.send_data(stream_id, piece)
        c.flush()
    if args.trailers:
        c.conn.send_headers(stream_id, [("x-trailer", "ignored"), ("x-checksum", "abc")], end_stream=True)
    else:
        c.conn.end_stream(stream_id)
    c.flush()
    c.pump(lambda: c.done(stream_id))
    out = c.result(stream_id)
    c.close()
    return out


def scenario_rst(args):
    c = Client(args)
    path = "/stream?kb=0&live=%d" % (1 if args.live else 0)
    stream_id = c.request("GET", path)
    c.pump(lambda: len(c.state(stream_id)["body"]) >= args.read or c.done(stream_id))
    received = len(c.state(stream_id)["body"])
    c.conn.reset_stream(stream_id, h2.errors.ErrorCodes.CANCEL)
    c.flush()
    after = c.fetch("GET", "/closes")
    c.close()
    return {"received": received, "status": c.state(stream_id)["status"], "closes": after.get("json"),
            "after_status": after["status"]}


def scenario_streams(args):
    c = Client(args)
    ids = []
    # All HEADERS go out in one write before the server's SETTINGS are read, so the client library does not hold
    # them back.
    for _ in range(args.streams):
        ids.append(c.request("GET", args.path, flush=False))
    c.flush()
    if args.release:
        # The admitted streams are held until every other one has its fate; then another connection lets them go.
        c.pump(lambda: sum(1 for i in ids if c.done(i)) >= args.streams - args.held)
        other = Client(args)
        other.fetch("GET", args.release)
        other.close()
    c.pump(lambda: all(c.done(i) for i in ids))
    outcomes = [{"stream": i, "status": c.state(i)["status"], "reset": c.state(i)["reset"]} for i in ids]
    after = c.fetch("GET", "/environ")
    remote_max = c.conn.remote_settings.max_concurrent_streams
    c.close()
    return {"outcomes": outcomes, "after_status": after["status"], "max_concurrent_streams": remote_max}


def scenario_slow(args):
    c = Client(args)
    c.conn.increment_flow_control_window(1 << 30)  # the connection's window is wide open; only A's stays shut
    c.flush()
    path = "/stream?kb=%d&live=%d" % (args.kb, 1 if args.live else 0)
    a = c.request("GET", path)
    stalled = lambda i: i != a
    # A's first window (65535 bytes) arrives; then Kestrel must stop sending on A.
    c.pump(lambda: len(c.state(a)["body"]) >= 65535 or c.done(a), ack=stalled)
    stalled_at = len(c.state(a)["body"])
    same = c.request("GET", args.side)
    c.pump(lambda: c.done(same), ack=stalled)
    other = Client(args)
    other_result = other.fetch("GET", args.side)
    other.close()
    out = {"stalled_at": stalled_at, "same_connection": c.result(same), "other_connection": other_result,
           "a_status": c.state(a)["status"]}
    if args.live:
        c.conn.reset_stream(a, h2.errors.ErrorCodes.CANCEL)
        c.flush()
        out["after_reset"] = c.fetch("GET", "/closes?settled=1")
    else:
        # Now read A to the end at full speed: what was spooled arrives.
        c.conn.acknowledge_received_data(len(c.state(a)["body"]), a)
        c.flush()
        c.pump(lambda: c.done(a))
        out["a_length"] = len(c.state(a)["body"])
        out["a_reset"] = c.state(a)["reset"]
        out["after"] = c.fetch("GET", "/closes")
    c.close()
    return out


def scenario_nonreader(args):
    c = Client(args, receive_buffer=4096)
    port = c.sock.getsockname()[1]
    c.request("GET", args.path)
    time.sleep(args.wait)  # the client under test: it reads nothing for this long (not a synchronisation)
    c.sock.settimeout(0.5)
    received, closed, deadline = 0, False, time.monotonic() + 3
    while time.monotonic() < deadline:
        try:
            data = c.sock.recv(65536)
        except socket.timeout:
            continue
        except OSError:  # reset (or a TLS error after it)
            closed = True
            break
        if not data:
            closed = True
            break
        received += len(data)
    return {"port": port, "closed": closed, "received": received}


def scenario_paths(args):
    """Each of --paths in turn on one connection ("HEAD:/x" for another method)."""
    c = Client(args)
    results = []
    for item in args.paths:
        method, _, path = item.partition(":") if not item.startswith("/") else ("GET", "", item)
        results.append(c.fetch(method, path))
    c.close()
    return {"results": results}


def scenario_alpn(args):
    """Which protocol TLS ALPN picks when the client offers h2 and http/1.1."""
    ctx = ssl.create_default_context(cafile=args.ca)
    ctx.set_alpn_protocols(["h2", "http/1.1"])
    with socket.create_connection(("127.0.0.1", args.port), timeout=args.timeout) as raw:
        with ctx.wrap_socket(raw, server_hostname="localhost") as tls:
            return {"alpn": tls.selected_alpn_protocol()}


def scenario_badheader(args):
    c = Client(args, validate=False)
    stream_id = c.request("GET", "/environ", headers=[("connection", "keep-alive")])
    try:
        c.pump(lambda: c.done(stream_id) or c.terminated is not None)
    except SystemExit:
        pass  # the server closed the connection
    bad = {"stream": c.result(stream_id), "connection_error": c.terminated}
    c.sock.close()
    fresh = Client(args)
    good = fresh.fetch("GET", "/environ")
    fresh.close()
    return {"bad": bad, "good_status": good["status"]}


def main():
    p = argparse.ArgumentParser()
    p.add_argument("scenario")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--ca", help="TLS with ALPN h2, trusting this CA (else h2c with prior knowledge)")
    p.add_argument("--timeout", type=float, default=20)
    p.add_argument("--authority")
    p.add_argument("--host")
    p.add_argument("--size", type=int, default=100000)
    p.add_argument("--content-length", action="store_true")
    p.add_argument("--trailers", action="store_true")
    p.add_argument("--live", action="store_true")
    p.add_argument("--read", type=int, default=65536)
    p.add_argument("--streams", type=int, default=8)
    p.add_argument("--held", type=int, default=0, help="streams: how many the server admits and holds")
    p.add_argument("--release", help="streams: asked on another connection once only the held streams are open")
    p.add_argument("--path", default="/environ")
    p.add_argument("--kb", type=int, default=8192)
    p.add_argument("--side", default="/environ")
    p.add_argument("--paths", nargs="*", default=[])
    p.add_argument("--wait", type=float, default=5)
    args = p.parse_args()
    result = globals()["scenario_" + args.scenario](args)
    print(json.dumps(result, sort_keys=True, default=str))


if __name__ == "__main__":
    main()
