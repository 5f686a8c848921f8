# Copyright: scratchbird.cluster contributors
# Apache License 2.0 (see LICENSE)
"""Shared machinery of the local cloud API emulators.

An ``Emulator`` serves HTTP (or HTTPS with a throw-away certificate) on a free port of
127.0.0.1 from a daemon thread. Subclasses register routes (method + path regex) and
answer with ``Response`` objects. Every request is logged; faults can be injected.

Egress trap: a client that is given ``emu.proxy_env()`` sends anything that is not for
the emulator (a real cloud endpoint, 169.254.169.254) through the emulator as its proxy;
the emulator refuses it with 403 and records the target in ``emu.egress``.
"""

import collections
import contextlib
import datetime
import gc
import ipaddress
import json
import os
import random
import re
import shutil
import ssl
import tempfile
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

JSON_TYPE = "application/json; charset=UTF-8"

Route = collections.namedtuple("Route", "method regex name handler api")
Fault = collections.namedtuple("Fault", "status retry_after route")
LoggedRequest = collections.namedtuple("LoggedRequest", "method path route status")


@contextlib.contextmanager
def bulk():
    """Pause the cyclic garbage collector while creating many objects (twice as fast)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


class Response:
    """What a route handler answers: a status, a JSON-able payload (or bytes) and headers."""

    def __init__(self, status, payload=None, headers=None, content_type=JSON_TYPE):
        self.status = status
        self.payload = payload
        self.headers = dict(headers or {})
        self.content_type = content_type

    def body(self):
        if self.payload is None:
            return b""
        if isinstance(self.payload, bytes):
            return self.payload
        return json.dumps(self.payload, separators=(",", ":")).encode("utf-8")


class Request:
    """One request as a route handler sees it."""

    def __init__(self, method, target, headers, body, match):
        split = urllib.parse.urlsplit(target)
        self.method = method
        self.path = split.path
        # Repeated query parameters: the last one wins (enough for these APIs).
        self.query = dict(urllib.parse.parse_qsl(split.query, keep_blank_values=True))
        self.headers = headers
        self.body = body
        self.params = match.groupdict() if match else {}

    def json(self):
        """The body as JSON; ValueError when it is not."""
        return json.loads(self.body.decode("utf-8"))

    def form(self):
        """The body as an application/x-www-form-urlencoded form."""
        return dict(urllib.parse.parse_qsl(self.body.decode("utf-8"), keep_blank_values=True))

    def bearer(self):
        """The token of an ``Authorization: Bearer <token>`` header, else None."""
        scheme, _sep, token = (self.headers.get("Authorization") or "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return None
        return token.strip()


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as the real endpoints
    server_version = "cloud-emulator"
    timeout = 60  # idle keep-alive connections end after a minute
    disable_nagle_algorithm = True  # headers and body go out in two writes

    def setup(self):
        if isinstance(self.request, ssl.SSLSocket):
            self.request.settimeout(self.timeout)
            self.request.do_handshake()  # here, not in the accept loop
        super().setup()

    def _dispatch(self):
        self.server.emulator.dispatch(self)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = _dispatch

    def do_CONNECT(self):
        self.server.emulator.connect(self)

    def log_message(self, format, *args):  # pylint: disable=redefined-builtin
        pass  # the emulator keeps its own log


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    emulator = None

    def handle_error(self, request, client_address):
        pass  # clients hanging up mid-answer are no news


class Emulator:
    """Base of the emulators: server lifecycle, routing, request log, faults, latency."""

    # Environment variables that would send a client elsewhere; client_env() leaves them out.
    CONFLICTING_ENV = ()

    def __init__(self, seed=0, tls=False):
        self.rng = random.Random(seed)  # ids and addresses are reproducible per seed
        self.tls = tls
        self.ca_file = None  # with tls: the PEM certificate to trust (REQUESTS_CA_BUNDLE)
        self.latency = 0.0  # seconds added to every request
        self.log = []  # LoggedRequest per request, in arrival order
        self.calls = collections.Counter()  # route name -> requests (faulted ones included)
        self.egress = []  # targets of refused proxy requests (CONNECT host:port or absolute URL)
        self.intercepted = set()  # host names whose HTTPS (via CONNECT) this emulator answers itself
        self._intercept_context = None
        self.port = None
        self._routes = []
        self._faults = []
        self._lock = threading.RLock()
        self._server = None
        self._thread = None
        self._tmpdir = None

    # -- lifecycle ---------------------------------------------------------

    @property
    def url(self):
        if self.port is None:
            raise RuntimeError("the emulator is not started")
        return "%s://127.0.0.1:%d" % ("https" if self.tls else "http", self.port)

    def start(self):
        if self._server is not None:
            return self
        server = _Server(("127.0.0.1", 0), _Handler)
        server.emulator = self
        if self.tls:
            server.socket = self._tls_context().wrap_socket(server.socket, server_side=True, do_handshake_on_connect=False)
        self._server = server
        self.port = server.server_address[1]
        self._thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="%s:%d" % (type(self).__name__, self.port), daemon=True)
        self._thread.start()
        return self

    def stop(self):
        if self._server is None:
            return
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()
        self._server = self._thread = None
        if self._tmpdir:
            shutil.rmtree(self._tmpdir, ignore_errors=True)
            self._tmpdir = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    def proxy_env(self):
        """Environment making HTTP clients send every non-loopback request to the egress trap."""
        env = {"HTTP_PROXY": self.url, "HTTPS_PROXY": self.url, "NO_PROXY": "127.0.0.1,localhost"}
        env.update({k.lower(): v for k, v in env.items()})
        return env

    def client_env(self, base=None):
        """A client process's environment: ``base`` (default os.environ) without CONFLICTING_ENV,
        plus proxy_env() and, with tls, REQUESTS_CA_BUNDLE. ``client_env({})`` gives the additions only.
        """
        env = {k: v for k, v in (os.environ if base is None else base).items() if k not in self.CONFLICTING_ENV}
        env.update(self.proxy_env())
        if self.ca_file:
            env["REQUESTS_CA_BUNDLE"] = self.ca_file
        return env

    def intercept(self, *hosts):
        """Answer HTTPS for these host names (reached through the proxy of client_env()) as if
        they were this emulator, with a certificate in ca_file: for clients whose API URL is fixed,
        such as a benchmark's reference plugin. Call before client_env(); not with tls=True."""
        if self.tls:
            raise RuntimeError("intercept() is for an emulator serving plain http")
        self.intercepted.update(hosts)
        self._intercept_context = self._tls_context(sorted(self.intercepted))

    def connect(self, handler):
        """A CONNECT request: tunnel into this emulator for an intercepted host, else refuse."""
        host = handler.path.rsplit(":", 1)[0]
        if host not in self.intercepted:
            self.refuse_egress(handler, handler.path)
            return
        handler.send_response(200, "Connection established")
        handler.end_headers()
        handler.wfile.flush()
        tunnel = self._intercept_context.wrap_socket(handler.connection, server_side=True, do_handshake_on_connect=False)
        handler.close_connection = True
        _Handler(tunnel, handler.client_address, handler.server)  # serves the tunnel's requests until it closes

    def workdir(self):
        """A private temporary directory, removed by stop()."""
        if self._tmpdir is None:
            self._tmpdir = tempfile.mkdtemp(prefix="cloud-emulator-")
        return self._tmpdir

    def _tls_context(self, hosts=()):
        # A self-signed CA certificate for 127.0.0.1, localhost and hosts, written to ca_file.
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import rsa
        from cryptography.x509.oid import NameOID

        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "cloud-emulator")])
        now = datetime.datetime.now(datetime.timezone.utc)
        ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
        cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
                .serial_number(x509.random_serial_number())
                .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=2))
                .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                                                            x509.DNSName("localhost")] + [x509.DNSName(h) for h in hosts]),
                               critical=False)
                .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
                .add_extension(x509.KeyUsage(digital_signature=True, key_encipherment=True, key_cert_sign=True, crl_sign=True,
                                             content_commitment=False, data_encipherment=False, key_agreement=False,
                                             encipher_only=False, decipher_only=False), critical=True)
                .add_extension(ski, critical=False)
                .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski), critical=False)
                .sign(key, hashes.SHA256()))
        self.ca_file = os.path.join(self.workdir(), "ca.pem")
        key_file = os.path.join(self.workdir(), "key.pem")
        with open(self.ca_file, "wb") as out:
            out.write(cert.public_bytes(serialization.Encoding.PEM))
        with open(os.open(key_file, os.O_WRONLY | os.O_CREAT, 0o600), "wb") as out:
            out.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                        serialization.NoEncryption()))
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(self.ca_file, key_file)
        return context

    # -- routing -----------------------------------------------------------

    def route(self, method, pattern, name, handler, api=True, flags=0):
        """Answer ``method`` on paths fully matching ``pattern`` with ``handler(request)``.

        ``api=False`` marks token endpoints: faults injected without a route skip them.
        """
        self._routes.append(Route(method, re.compile(pattern, flags), name, handler, api))

    def _match(self, method, path):
        path_known = False
        for route in self._routes:
            match = route.regex.fullmatch(path)
            if match:
                if route.method == method:
                    return route, match, True
                path_known = True
        return None, None, path_known

    def dispatch(self, handler):
        """Read one request from ``handler`` (a BaseHTTPRequestHandler), answer it, log it."""
        body = self._read_body(handler)
        target = handler.path
        if not target.startswith("/"):  # an absolute URL: we are being used as a proxy
            self.refuse_egress(handler, target)
            return
        path = urllib.parse.urlsplit(target).path
        route, match, path_known = self._match(handler.command, path)
        if self.latency:
            time.sleep(self.latency)
        fault = self._take_fault(route) if route else None
        try:
            if route is None:
                response = self.error_response("", 405 if path_known else 404,
                                               "Method not allowed" if path_known else "Not found: %s" % path)
            elif fault:
                response = self.error_response(route.name, fault.status, "Injected fault")
                if fault.retry_after is not None:
                    response.headers["Retry-After"] = str(fault.retry_after)
            else:
                response = route.handler(Request(handler.command, target, handler.headers, body, match))
        except Exception as exc:  # pylint: disable=broad-exception-caught
            # An emulator bug: say so in the answer rather than hang the client.
            response = Response(500, {"error": {"code": 500, "message": "emulator error: %r" % (exc,)}})
        with self._lock:
            self.log.append(LoggedRequest(handler.command, path, route.name if route else None, response.status))
            self.calls[route.name if route else None] += 1
        self._send(handler, response)

    @staticmethod
    def _read_body(handler):
        if "chunked" in (handler.headers.get("Transfer-Encoding") or "").lower():
            chunks = []
            while True:
                size = int(handler.rfile.readline().split(b";")[0], 16)
                if not size:
                    break
                chunks.append(handler.rfile.read(size))
                handler.rfile.readline()  # the chunk's CRLF
            while handler.rfile.readline() not in (b"\r\n", b"\n", b""):
                pass  # trailers
            return b"".join(chunks)
        length = int(handler.headers.get("Content-Length") or 0)
        return handler.rfile.read(length) if length else b""

    def refuse_egress(self, handler, target):
        with self._lock:
            self.egress.append(target)
        handler.close_connection = True
        self._send(handler, Response(403, b"egress to %s refused by the cloud emulator\n" % target.encode("utf-8", "replace"),
                                     {"Connection": "close"}, content_type="text/plain"))

    @staticmethod
    def _send(handler, response):
        data = response.body()
        handler.send_response(response.status)
        for key, value in response.headers.items():
            handler.send_header(key, value)
        if data:
            handler.send_header("Content-Type", response.content_type)
        handler.send_header("Content-Length", str(len(data)))
        handler.end_headers()
        if handler.command != "HEAD":
            handler.wfile.write(data)

    def error_response(self, route, status, message):  # pylint: disable=unused-argument
        """The API's own error answer for ``status`` on ``route`` (a route name); override."""
        return Response(status, {"error": {"code": status, "message": message}})

    # -- request log -------------------------------------------------------

    @property
    def requests(self):
        """(method, path) of every request so far."""
        with self._lock:
            return [(entry.method, entry.path) for entry in self.log]

    def reset_log(self):
        with self._lock:
            self.log.clear()
            self.calls.clear()
            self.egress.clear()

    # -- faults ------------------------------------------------------------

    def inject(self, status, count=1, retry_after=None, route=None):
        """Answer the next ``count`` matching requests with ``status`` and the API's error body.

        ``route`` is a route name; None matches every API route but not the token endpoints
        (name those explicitly). ``retry_after`` (seconds) adds a Retry-After header.
        Faults are consumed in the order they were injected.
        """
        if route is not None and route not in {r.name for r in self._routes}:
            raise ValueError("unknown route %r" % (route,))
        with self._lock:
            self._faults.extend([Fault(status, retry_after, route)] * count)

    @property
    def pending_faults(self):
        with self._lock:
            return list(self._faults)

    def clear_faults(self):
        with self._lock:
            self._faults.clear()

    def _take_fault(self, route):
        with self._lock:
            for index, fault in enumerate(self._faults):
                if fault.route == route.name or (fault.route is None and route.api):
                    return self._faults.pop(index)
        return None
