# Copyright: scratchbird.cluster contributors
# Apache License 2.0 (see LICENSE)
"""A real Consul agent for the integration tests: the Debian package in ../shared/vendor
(sha256-checked, unpacked once into .cache/consul), run as ``consul agent -dev`` on free
loopback ports, optionally with ACLs (default deny, a master token)."""
from __future__ import annotations

import hashlib
import subprocess
import time
from pathlib import Path

import pytest

from inventory_run import ROOT, free_port, wait_port

DEB = "consul_1.8.7+dfsg1-2+b3_amd64.deb"
DEB_SHA256 = "e4e888bba104daba1d9161f49bfc52649a7e4efd45b1a7ead5bc54f2cb9c89d9"
MASTER_TOKEN = "3f1c0e52-6d1e-4a55-9d4e-5a0c3c1b2e77"


def consul_binary():
    """The consul binary unpacked from the vendored package (checked against its sha256)."""
    target = ROOT / ".cache" / "consul" / "usr" / "bin" / "consul"
    if target.exists():
        return target
    for vendor in (ROOT.parent / "shared" / "vendor", Path("/work/shared/vendor")):
        deb = vendor / DEB
        if deb.exists():
            break
    else:
        pytest.fail(f"{DEB} not found in ../shared/vendor: the Consul tests need the vendored agent")
    digest = hashlib.sha256(deb.read_bytes()).hexdigest()
    assert digest == DEB_SHA256, f"{deb}: sha256 {digest}, expected {DEB_SHA256}"
    subprocess.run(["dpkg-deb", "-x", str(deb), str(target.parents[2])], check=True)
    return target


class Agent:
    """consul agent -dev on free loopback ports; optionally with ACLs (default deny)."""

    def __init__(self, tmp, acl=False):
        self.ports = {name: free_port() for name in ("http", "dns", "serf_lan", "serf_wan", "server")}
        self.url = f"http://127.0.0.1:{self.ports['http']}"
        config = tmp / "agent.hcl"
        config.write_text(
            'ports { http = %(http)d, dns = %(dns)d, serf_lan = %(serf_lan)d, serf_wan = %(serf_wan)d, server = %(server)d, grpc = -1 }\n'
            % self.ports + ('acl { enabled = true, default_policy = "deny", tokens { master = "%s" } }\n' % MASTER_TOKEN if acl else ""))
        self.args = [str(consul_binary()), "agent", "-dev", "-client", "127.0.0.1", "-bind", "127.0.0.1",
                     "-datacenter", "dc-test", "-node", "agent-node", "-config-file", str(config), "-data-dir", str(tmp / "data")]
        self.log = tmp / "consul.log"
        self.proc = None

    def __enter__(self):
        self.proc = subprocess.Popen(self.args, stdout=self.log.open("w"), stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        wait_port(self.ports["http"], self.proc)
        return self

    def __exit__(self, *exc):
        self.proc.terminate()
        self.proc.wait(timeout=30)

    def client(self, token=None):
        import consul
        return consul.Consul(host="127.0.0.1", port=self.ports["http"], token=token)


def wait_leader(client, timeout=30):
    """Poll until the agent's cluster has a leader (the catalog accepts writes)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if client.status.leader():
                return
        except Exception:  # not ready yet
            pass
        time.sleep(0.1)
    raise AssertionError(f"consul elected no leader within {timeout}s")
