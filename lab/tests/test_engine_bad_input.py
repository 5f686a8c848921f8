"""Bad input to the engine tier roles fails with a clear message naming the variable, before
the host is changed (checked on a real lab host: no engine user, no /etc/db afterwards)."""
from __future__ import annotations

import os
import subprocess

import pytest
from labtest import ROOT, VENV, on_host, one_host_lab, playbook

LAB = "it-engbad"
PLAYBOOK = ROOT / "lab/tests/playbooks/engine_roles.yml"
ARTIFACT = ROOT / ".cache" / "engine" / "scratchbird-engine-1.0.0.tar.gz"
MODES = "eventual, bounded_staleness, monotonic_reads, strict_serializable"
PG = {"protocol": "postgresql", "port": 5432}
MY = {"protocol": "mysql", "port": 3306}

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="the lab needs root")

CASES = [
    ("missing sha256", "tx_engine", {"tx_engine_artifact_sha256": ""},
     ["tx_engine_artifact_sha256 is mandatory"]),
    ("sha256 mismatch", "tx_engine", {"tx_engine_artifact_sha256": "0" * 64},
     ["tx_engine_artifact_src", "but tx_engine_artifact_sha256 is " + "0" * 64]),
    ("url and src", "olap_shard", {"olap_shard_artifact_url": "http://127.0.0.1:9/e.tar.gz"},
     ["olap_shard_artifact_url and olap_shard_artifact_src are both set"]),
    ("unknown consistency mode", "tx_engine", {"tx_engine_config": {"consistency": {"default_mode": "fast"}}},
     ["tx_engine_config.consistency.default_mode", MODES]),
    ("unknown mode in a table override", "tx_engine",
     {"tx_engine_config": {"consistency": {"table_overrides": {"orders": "snapshot"}}}},
     ["tx_engine_config.consistency.table_overrides.orders", MODES]),
    ("listener port out of range", "tx_engine", {"tx_engine_config": {"listeners": [{**PG, "port": 70000}]}},
     ["tx_engine_config.listeners[0].port"]),
    ("metrics port out of range", "ingestion", {"ingestion_metrics_port": 0},
     ["ingestion_metrics_port must be a TCP port"]),
    ("two listeners on one port", "tx_engine", {"tx_engine_config": {"listeners": [PG, {**MY, "port": 5432}]}},
     ["tx_engine_config.listeners[1].port", "5432"]),
    ("listener on the metrics port", "tx_engine", {"tx_engine_config": {"listeners": [{**PG, "port": 9090}]}},
     ["tx_engine_config.listeners[0].port", "9090"]),
    ("max_connections 0", "tx_engine", {"tx_engine_config": {"listeners": [{**PG, "max_connections": 0}]}},
     ["tx_engine_config.listeners[0].max_connections"]),
    ("max_connections negative", "tx_engine", {"tx_engine_config": {"listeners": [{**PG, "max_connections": -5}]}},
     ["tx_engine_config.listeners[0].max_connections"]),
    ("non-CIDR application network", "tx_engine", {"tx_engine_application_cidrs": ["10.213.0.0/24", "office"]},
     ["tx_engine_application_cidrs must list networks as CIDRs", "not valid: office"]),
    ("non-CIDR monitoring network", "olap_shard", {"olap_shard_monitoring_cidrs": ["10.0.0.0/33"]},
     ["olap_shard_monitoring_cidrs must list networks as CIDRs", "not valid: 10.0.0.0/33"]),
    ("unknown key in the OLAP config", "olap_shard", {"olap_shard_config": {"storage": {"fromat": "parquet"}}},
     ["olap_shard_config.storage.fromat: unknown key"]),
    ("unknown key in the ingestion config", "ingestion", {"ingestion_config": {"procesing": {"batch_size": 5}}},
     ["ingestion_config.procesing: unknown key"]),
    ("ingestion without brokers", "ingestion", {"cluster_kafka_bootstrap": None},
     ["no broker is known", "kafka_brokers"]),
    ("bad cluster-wide value", "olap_shard", {"cluster_heartbeat_port": 0},
     ["cluster.clock.heartbeat_port"]),
    ("TLS without the files", "tx_engine", {"cluster_tls_enabled": True},
     ["cluster_tls_ca_src must name a readable file on the controller"]),
]


@pytest.fixture(scope="module")
def inventory():
    if not ARTIFACT.exists():
        subprocess.run([str(VENV / "python"), str(ROOT / "lab/engine/build.py"), "--version", "1.0.0",
                        "--out", str(ARTIFACT.parent)], check=True, capture_output=True)
    with one_host_lab(LAB, "e1") as path:
        yield path


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_bad_input_is_refused_before_any_change(inventory, case):
    _name, role, extra, messages = case
    res = playbook(inventory, PLAYBOOK, {"role_under_test": role, **extra})
    output = " ".join((res.stdout + res.stderr).split())
    assert res.returncode != 0, output
    for message in messages:
        assert message in output, output
    assert "changed=0" in output, output
    probe = on_host(LAB, "e1", "getent passwd dbengine; ls -d /etc/db /opt/db", check=False)
    assert probe.stdout.strip() == "", "the host was changed before the input was checked: " + probe.stdout


def test_the_same_settings_without_the_bad_value_converge(inventory):
    """The control case (runs last: it changes the host): the playbook itself is sound."""
    res = playbook(inventory, PLAYBOOK, {"role_under_test": "tx_engine"})
    assert res.returncode == 0, res.stdout[-3000:]
    assert on_host(LAB, "e1", "systemctl is-active tx-engine").stdout.strip() == "active"
