"""The bad-input matrix: each bad input runs through the real bootstrap-cluster.yml on a lab
of the demo's shape (9 hosts, the demo's group and host variables, Tansu as the external
Kafka) and must stop before any host changes: rc != 0, the message naming the variable, every
host changed=0 in the recap and every host's /etc unchanged (sha256 of its files before and
after). Good inputs that must be accepted run the same playbook's pre-flight (--tags
preflight) and must pass."""
from __future__ import annotations

import concurrent.futures
import json
import re
import subprocess
import tempfile
from pathlib import Path

import pytest
import yaml

from labtest import LABCTL, ROOT, on_host, playbook

LAB = "pbad"
HOSTS = {"clock-1": "clock_masters", "clock-2": "clock_masters", "kafka-1": "kafka_brokers,lab_tansu",
         "ingest-1": "ingestion_engines", "olap-1": "olap_shards", "olap-2": "olap_shards",
         "tx-1": "tx_engines", "tx-2": "tx_engines", "tx-3": "tx_engines"}
BOOTSTRAP = ROOT / "bootstrap-cluster.yml"
ETC_SUM = "find /etc -xdev -type f -print0 | sort -z | xargs -0 sha256sum | sha256sum"


@pytest.fixture(scope="module")
def lab():
    subprocess.run([LABCTL, "down", "--name", LAB], capture_output=True, timeout=300)
    args = [LABCTL, "up", "--name", LAB, "--subnet", "auto"]
    for name, groups in HOSTS.items():
        args += ["--host", f"{name}:{groups}"]
    try:
        up = subprocess.run(args, capture_output=True, text=True, timeout=1000)
        assert up.returncode == 0, up.stderr
        inventory = subprocess.run([LABCTL, "inventory-path", "--name", LAB], capture_output=True, text=True,
                                   check=True).stdout.strip()
        addresses = {h: v["ansible_host"] for h, v in yaml.safe_load(open(inventory))["all"]["hosts"].items()}
        inventories = [inventory, str(ROOT / "inventories" / "lab" / "cluster.yml")]
        prepared = playbook(inventories, ROOT / "lab" / "prepare.yml", timeout=900)
        assert prepared.returncode == 0, prepared.stdout[-3000:]
        with tempfile.TemporaryDirectory() as tmp:
            yield {"inventories": inventories, "addresses": addresses, "tmp": Path(tmp)}
    finally:
        subprocess.run([LABCTL, "down", "--name", LAB], capture_output=True, timeout=300)


def etc_sums():
    with concurrent.futures.ThreadPoolExecutor(len(HOSTS)) as pool:
        return dict(zip(HOSTS, pool.map(lambda h: on_host(LAB, h, ETC_SUM).stdout, HOSTS)))


def subnet(lab):
    return lab["addresses"]["tx-1"].rsplit(".", 1)[0]


def extra_inventory(lab, name, hosts):
    """An inventory file that adds host variables or group members for one case."""
    path = lab["tmp"] / f"{name}.yml"
    path.write_text(yaml.safe_dump({"all": {"children": hosts}}))
    return str(path)


# Each case: (id, extra vars, expected message (regex), extra inventory (group -> hosts -> vars) or None).
def cases(lab):
    net = subnet(lab)
    tx_sha = {"tx_engine_artifact_sha256": "0" * 64}
    return [
        # The cluster's networks must admit the hosts (time, heartbeat, SQL, metrics, Kafka).
        ("cidr-holds-no-host", {"cluster_cidr": "fd00::/8"},
         r"clock-1: clock_master_cluster_cidrs is fd00::/8, which does not admit .*tx-1"),
        ("cidr-bad-prefix", {"cluster_cidr": "10.213.0.0/33"}, r"cluster_cidr must be one network in CIDR notation"),
        ("cidr-not-a-network", {"cluster_cidr": "lab-net"}, r"cluster_cidr must be one network in CIDR notation"),
        ("cidr-half-the-hosts", {"cluster_cidr": f"{net}.0/28"},
         r"which does not admit .*tx-1 \(%s\.17\)" % re.escape(net)),
        ("heartbeat-cidr-without-clocks", {"tx_engine_cluster_cidrs": ["192.168.7.0/24"]},
         r"tx-1: tx_engine_cluster_cidrs is 192.168.7.0/24, which does not admit clock-1"),
        ("clock-cidrs-without-clients", {"clock_master_cluster_cidrs": [f"{net}.11/32", f"{net}.12/32"]},
         r"clock-1: clock_master_cluster_cidrs .* does not admit .*ingest-1"),
        ("cidrs-a-string", {"tx_engine_application_cidrs": "10.0.0.0/8"},
         r"tx_engine_application_cidrs must be a list of CIDRs"),
        ("cidr-bad-octet", {"tx_engine_monitoring_cidrs": ["10.0.0.300/8"]},
         r"tx_engine_monitoring_cidrs must list networks in CIDR notation; not valid: 10.0.0.300/8"),
        ("cidr-one-bad-of-two", {"olap_shard_monitoring_cidrs": ["fd00::/64", "bogus"]},
         r"olap_shard_monitoring_cidrs must list networks in CIDR notation; not valid: bogus"),
        ("kafka-clients-cidr", {"kafka_mode": "self_hosted", "kafka_client_cidrs": ["192.168.9.0/24"]},
         r"kafka-1: kafka_client_cidrs is 192.168.9.0/24, which does not admit .*tx-1"),
        # Two daemons, one port.
        ("olap-beside-kafka", {"kafka_mode": "self_hosted"},
         r"kafka-1: port 9092/tcp is wanted by kafka_listeners \(Kafka listener PLAINTEXT\) and "
         r"olap_shard_metrics_port", {"olap_shards": {"hosts": {"kafka-1": {}}}}),
        ("tx-metrics-on-sql", {"tx_engine_metrics_port": 5432},
         r"tx-1: port 5432/tcp is wanted by tx_engine_config.listeners \(SQL postgresql\) and tx_engine_metrics_port"),
        ("two-sql-listeners-one-port", {"tx_engine_config": {"listeners": [
            {"protocol": "postgresql", "port": 5432}, {"protocol": "mysql", "port": 5432}]}},
         r"port 5432/tcp is wanted by tx_engine_config.listeners \(SQL mysql\) and tx_engine_config.listeners \(SQL postgresql\)"),
        ("tx-beside-olap-same-port", {"olap_shard_metrics_port": 9090},
         r"tx-1: port 9090/tcp is wanted by", {"olap_shards": {"hosts": {"tx-1": {}}}}),
        # Tier sizes against the contract.
        ("tier-sizes-production", {"cluster_environment": "production"},
         r"tx_engines has 3 host\(s\); the contract asks for 4-20"),
        ("tier-sizes-policy-fail", {"cluster_tier_size_policy": "fail"},
         r"ingestion_engines has 1 host\(s\); the contract asks for 2-4"),
        ("tier-sizes-policy-bad", {"cluster_tier_size_policy": "sometimes"}, r"cluster_tier_size_policy must be"),
        ("three-clock-masters", {"cluster_environment": "production"},
         r"clock_masters has 3 host\(s\); the contract asks for 2\b",
         {"clock_masters": {"hosts": {"tx-3": {}}}}),
        # Server ids: unique and the same for any case of a name.
        ("server-ids-equal", {},
         r"TX engines tx-1 and tx-2 share server_id 7",
         {"tx_engines": {"hosts": {"tx-1": {"tx_engine_server_id": 7}, "tx-2": {"tx_engine_server_id": 7}}}}),
        ("server-id-upper-case-twin", {},
         r"TX engines TX-1 and tx-1 share server_id",
         {"tx_engines": {"hosts": {"TX-1": {"ansible_host": "%s.17" % net}}}}),
        ("server-id-zero", {"tx_engine_server_id": 0}, r"tx_engine_server_id must be a whole number 1-999999"),
        # DNS names where an address is needed.
        ("kafka-node-dns-name", {"kafka_mode": "self_hosted"},
         r"kafka-1: its address 'kafka-1.lab.invalid' \(ansible_host\) is a DNS name",
         {"kafka_brokers": {"hosts": {"kafka-1": {"ansible_host": "kafka-1.lab.invalid"}}}}),
        ("engine-dns-name", {},
         r"olap-2: its address 'olap-2.lab.invalid' \(ansible_host\) is a DNS name",
         {"olap_shards": {"hosts": {"olap-2": {"ansible_host": "olap-2.lab.invalid"}}}}),
        # Durations, sizes and numbers.
        ("bound-not-a-duration", {"cluster_max_acceptable_uncertainty_ns": "fast"},
         r"cluster_max_acceptable_uncertainty_ns must be a duration above zero.*got 'fast'"),
        ("bound-zero", {"cluster_max_acceptable_uncertainty_ns": 0},
         r"cluster_max_acceptable_uncertainty_ns must be a duration above zero"),
        ("bound-negative", {"cluster_max_acceptable_uncertainty_ns": "-5ms"},
         r"cluster_max_acceptable_uncertainty_ns must be a duration above zero.*got '-5ms'"),
        ("bound-unknown-unit", {"cluster_max_acceptable_uncertainty_ns": "50 parsecs"},
         r"cluster_max_acceptable_uncertainty_ns must be a duration above zero"),
        ("sync-timeout-with-unit", {"cluster_clock_sync_timeout": "2m"},
         r"cluster_clock_sync_timeout must be a whole number of seconds above zero \(e.g. 120\), got '2m'"),
        ("clock-skew-word", {"cluster_preflight_max_clock_skew": "lots"},
         r"cluster_preflight_max_clock_skew must be a whole number of seconds"),
        ("endpoint-timeout-zero", {"cluster_preflight_endpoint_timeout": 0},
         r"cluster_preflight_endpoint_timeout must be a whole number of seconds"),
        ("heartbeat-port-range", {"cluster_heartbeat_port": 70000}, r"cluster_heartbeat_port must be a port number"),
        ("kafka-port-word", {"cluster_kafka_port": "kafka"}, r"cluster_kafka_port must be a port number"),
        ("heartbeat-interval-word", {"cluster_heartbeat_interval_ms": "often"},
         r"cluster_heartbeat_interval_ms must be a number of milliseconds"),
        ("health-timeout-word", {"tx_engine_health_timeout": "soon"},
         r"argument 'tx_engine_health_timeout' is of type str and we were unable to convert to int"),
        ("clock-heartbeat-port-range", {"clock_master_heartbeat_port": 99999},
         r"clock-1: clock_master_heartbeat_port must be a port number 1-65535"),
        # External endpoints, probed from the hosts that use them.
        ("kafka-bootstrap-silent", {"cluster_kafka_bootstrap": [f"{net}.13:9999"]},
         r"tx-1 cannot reach Kafka bootstrap at %s\.13:9999 \(cluster_kafka_bootstrap\)" % re.escape(net)),
        ("kafka-bootstrap-no-port", {"cluster_kafka_bootstrap": ["kafka-1"]},
         r"cluster_kafka_bootstrap 'kafka-1' is not host:port"),
        ("artifact-url-silent", dict(tx_sha, tx_engine_artifact_src="",
                                     tx_engine_artifact_url=f"http://{net}.250:8080/tx-engine.tar.gz"),
         r"tx-1 cannot reach tx-engine artifact at %s\.250:8080 \(tx_engine_artifact_url\)" % re.escape(net)),
        ("vault-silent", {"tx_engine_tls_source": "vault", "cluster_vault_url": f"http://{net}.250:8200",
                          "cluster_vault_token": "planted-token"},
         r"tx-1 cannot reach Vault at %s\.250:8200 \(cluster_vault_url\)" % re.escape(net)),
        ("consul-agent-missing", {"olap_shard_consul_register": True},
         r"olap-1 cannot reach Consul agent at 127.0.0.1:8500 \(cluster_consul_url\)"),
        # Each role's own checks (its argument specs, then its validate entry point), in the same pre-flight.
        ("artifact-wrong-sha256", tx_sha, r"tx_engine_artifact_src .* has sha256 .*, but tx_engine_artifact_sha256 is 0{64}"),
        ("version-missing", {"olap_shard_version": ""}, r"olap_shard_version must be set to the artifact's version"),
        ("kafka-mode-unknown", {"kafka_mode": "managed"}, r"value of kafka_mode must be one of: self_hosted, external, got: managed"),
        ("minsources-zero", {"gpsd_chrony_minsources": 0}, r"gpsd_chrony_minsources must be 1 or more"),
        ("tls-without-files", {"cluster_tls_enabled": True},
         r"cluster_tls_enabled is true, so cluster_tls_ca_src must name a readable file"),
        ("topic-partitions-zero", {"kafka_topic_partitions": 0}, r"kafka_topic_partitions must be a whole number > 0"),
        ("tx-config-unknown-key", {"tx_engine_config": {"turbo": True}}, r"tx_engine_config.*turbo"),
        ("metrics-port-word", {"ingestion_metrics_port": "metrics"}, r"ingestion_metrics_port"),
    ]


GOOD = [
    ("ipv6-beside-ipv4", {"tx_engine_cluster_cidrs": ["fd00::/64", "10.213.0.0/16"],
                          "tx_engine_monitoring_cidrs": ["10.213.0.0/16", "fd00:1::/48"]}),
    ("tx-listener-other-port", {"tx_engine_config": {"listeners": [{"protocol": "postgresql", "port": 6432,
                                                                    "max_connections": 100}]}}),
    ("bound-with-unit", {"cluster_max_acceptable_uncertainty_ns": "20ms"}),
    ("tier-sizes-warn-in-production", {"cluster_environment": "production", "cluster_tier_size_policy": "warn"}),
]


def run_case(lab, case):
    name, extra, expected = case[:3]
    inventories = list(lab["inventories"])
    if len(case) > 3:
        inventories.append(extra_inventory(lab, name, case[3]))
    return playbook(inventories, BOOTSTRAP, extra, timeout=600)


def test_bad_inputs_stop_before_any_host_changes(lab):
    matrix = cases(lab)
    assert len(matrix) >= 40
    before = etc_sums()
    with concurrent.futures.ThreadPoolExecutor(3) as pool:
        results = list(pool.map(lambda case: run_case(lab, case), matrix))
    after = etc_sums()
    problems = []
    for case, result in zip(matrix, results):
        name, expected = case[0], case[2]
        recaps = re.findall(r"^(\S+)\s+: ok=\d+\s+changed=(\d+)", result.stdout, re.M)
        if result.returncode == 0:
            problems.append(f"{name}: the bootstrap passed")
        elif not re.search(expected, result.stdout + result.stderr, re.S):
            problems.append(f"{name}: no message /{expected}/ in:\n{result.stdout[-2500:]}")
        if not recaps or any(int(changed) for _, changed in recaps):
            problems.append(f"{name}: changes in the recap {recaps}")
    assert not problems, "\n\n".join(problems)
    assert after == before, "a bad input changed /etc on " + ", ".join(h for h in HOSTS if after[h] != before[h])


def test_good_inputs_pass_the_preflight(lab):
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        results = list(pool.map(lambda case: playbook(lab["inventories"], BOOTSTRAP, case[1], "--tags", "preflight"),
                                GOOD))
    for (name, _), result in zip(GOOD, results):
        assert result.returncode == 0, f"{name}:\n{result.stdout[-3000:]}"


def test_check_mode_prints_the_plan_and_writes_it_as_json(lab):
    plan_file = lab["tmp"] / "plan.json"
    result = playbook(lab["inventories"], BOOTSTRAP, {"cluster_plan_file": str(plan_file)}, "--check",
                      "--tags", "preflight")
    assert result.returncode == 0, result.stdout[-3000:]
    assert "Cluster plan: sblab (lab)" in result.stdout
    assert re.search(r"tx-1  [0-9.]+  tx_engines", result.stdout)
    assert "listens  5432/tcp   SQL postgresql (tx_engine_config.listeners)" in result.stdout
    plan = json.loads(plan_file.read_text())
    assert oct(plan_file.stat().st_mode & 0o777) == "0o600"
    assert plan["errors"] == []
    assert plan["tiers"]["tx_engines"] == {"size": 3, "contract": [4, 20], "status": "outside the contract"}
    assert plan["tiers"]["kafka_brokers"]["status"] == "external"
    assert len(plan["server_ids"]) == 3
    assert [e["target"] for e in plan["hosts"]["tx-1"]["endpoints"]] == [lab["addresses"]["kafka-1"] + ":9092"]
    assert plan["settings"]["cluster_max_acceptable_uncertainty_ns"] == 50000000


def test_limit_plans_the_limited_hosts_and_lists_the_others(lab):
    plan_file = lab["tmp"] / "limited.json"
    result = playbook(lab["inventories"], BOOTSTRAP, {"cluster_plan_file": str(plan_file), "cluster_plan_show": True},
                      "--limit", "tx-1", "--tags", "preflight")
    assert result.returncode == 0, result.stdout[-3000:]
    assert "Cluster plan: sblab (lab), limited with --limit" in result.stdout
    assert "tx-2  %s  tx_engines  (not planned: outside --limit)" % lab["addresses"]["tx-2"] in result.stdout
    plan = json.loads(plan_file.read_text())
    assert [h for h, e in plan["hosts"].items() if e["planned"]] == ["tx-1"]
    assert re.search(r"^tx-1\s+: ok=\d+\s+changed=0\s+unreachable=0\s+failed=0", result.stdout, re.M)
