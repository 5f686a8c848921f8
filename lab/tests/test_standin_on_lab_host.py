"""The stand-in engine artifact on a real lab host: a Type=notify systemd unit with a
hardened sandbox, real chronyd (-x) feeding the clock metrics, clean stop."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from labtest import LABCTL, ROOT, on_host, one_host_lab

LAB = "it-eng"

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="the lab needs root")

CLUSTER_YAML = """\
cluster:
  name: lab
  environment: test
  region: lab
  clock: {mode: software, master_host: 127.0.0.1, heartbeat_port: 8888}
  replication: {broker: kafka, brokers: ["127.0.0.1:9092"], topic_prefix: db-changes-}
  security: {enable_tls: false}
  monitoring: {enable: true, log_level: info}
"""
TX_YAML = """\
tx_engine:
  server_id: 1
  listeners: [{protocol: postgresql, port: 5432, max_connections: 10}]
  storage: {data_dir: /var/lib/db/tx-engine}
"""
UNIT = """\
[Unit]
Description=ScratchBird TX engine (stand-in)
[Service]
Type=notify
User=dbengine
ExecStartPre=/opt/db/current/bin/tx-engine --check-config
ExecStart=/opt/db/current/bin/tx-engine
NoNewPrivileges=yes
ProtectSystem=strict
ReadWritePaths=/var/lib/db/tx-engine
PrivateTmp=yes
ProtectHome=yes
CapabilityBoundingSet=
TimeoutStartSec=30
"""


def sh(command, stdin=None, check=True):
    return on_host(LAB, "e1", command, stdin=stdin, check=check)


@pytest.fixture(scope="module")
def host(tmp_path_factory):
    out = tmp_path_factory.mktemp("engine")
    subprocess.run([sys.executable, str(ROOT / "lab" / "engine" / "build.py"), "--version", "1.0.0",
                    "--out", str(out)], check=True, capture_output=True)
    tarball = out / "scratchbird-engine-1.0.0.tar.gz"
    with one_host_lab(LAB, "e1"):
        sh("DEBIAN_FRONTEND=noninteractive apt-get install -y -q chrony >/dev/null"
           " && useradd --system --no-create-home --shell /usr/sbin/nologin dbengine"
           " && mkdir -p /opt/db /etc/db /var/lib/db/tx-engine && chown dbengine /var/lib/db/tx-engine")
        with open(tarball, "rb") as data:
            res = subprocess.run([LABCTL, "ssh", "--name", LAB, "e1",
                                  "tar -xzf - -C /opt/db && ln -sfn scratchbird-engine-1.0.0 /opt/db/current"],
                                 stdin=data, capture_output=True, timeout=60)
        assert res.returncode == 0, res.stderr
        sh("cat > /etc/db/cluster.yaml", stdin=CLUSTER_YAML)
        sh("cat > /etc/db/tx-engine.yaml", stdin=TX_YAML)
        sh("cat > /etc/systemd/system/tx-engine.service && systemctl daemon-reload", stdin=UNIT)
        yield


def http(path):
    code = ("import json,urllib.request,urllib.error\n"
            "try:\n r=urllib.request.urlopen('http://127.0.0.1:9090%s',timeout=5); print(r.status); print(r.read().decode())\n"
            "except urllib.error.HTTPError as e: print(e.code); print(e.read().decode())\n" % path)
    out = sh(f"python3 -c \"{code}\"").stdout
    status, _, body = out.partition("\n")
    return int(status), body


def test_notify_unit_starts_only_when_ready(host):
    # Type=notify: `systemctl start` returns once the engine sent READY=1.
    sh("systemctl start tx-engine")
    assert sh("systemctl is-active tx-engine").stdout.strip() == "active"
    status, body = http("/health")
    assert status == 200
    health = json.loads(body)
    assert health["status"] == "ok" and health["tier"] == "tx-engine" and health["version"] == "1.0.0"


def test_runs_as_dbengine_under_the_sandbox(host):
    pid = sh("systemctl show -p MainPID --value tx-engine").stdout.strip()
    assert sh(f"ps -o user= -p {pid}").stdout.strip() == "dbengine"
    assert sh("ls -A /var/lib/db/tx-engine").stdout.strip() == ".scratchbird-standin.json"


def test_clock_metrics_come_from_real_chronyd(host):
    tracking = sh("chronyc -n -c tracking").stdout.strip()
    assert tracking.count(",") == 13
    status, metrics = http("/metrics")
    assert status == 200
    assert "tx_engine_clock_tracking_available 1" in metrics
    assert "tx_engine_clock_uncertainty_nanoseconds " in metrics
    assert "tx_engine_clock_offset_nanoseconds " in metrics


def test_listener_answers_postgres_port(host):
    out = sh("python3 -c \"import socket;s=socket.create_connection(('127.0.0.1',5432),5);print(s.recv(100).decode())\"")
    assert "tx-engine 1.0.0" in out.stdout


def test_bad_config_is_refused_before_start(host):
    sh("cp /etc/db/tx-engine.yaml /tmp/good.yaml && sed -i 's/max_connections: 10/max_connections: many/' /etc/db/tx-engine.yaml")
    try:
        res = sh("/opt/db/current/bin/tx-engine --check-config", check=False)
        assert res.returncode == 2
        assert "tx_engine.listeners[0].max_connections" in res.stderr
        assert sh("systemctl restart tx-engine", check=False).returncode != 0
    finally:
        sh("cp /tmp/good.yaml /etc/db/tx-engine.yaml && systemctl restart tx-engine")


def test_clean_stop(host):
    sh("systemctl stop tx-engine")
    result = sh("systemctl show -p Result --value tx-engine").stdout.strip()
    assert result == "success"
    log = sh("journalctl -u tx-engine -o cat --no-pager").stdout
    assert "Stopped" in log or "stopping" in log.lower()
