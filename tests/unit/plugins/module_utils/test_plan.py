# Copyright: scratchbird.cluster contributors
# Apache License 2.0 (see LICENSE)
from __future__ import absolute_import, division, print_function

__metaclass__ = type

import copy

import pytest

from ansible_collections.scratchbird.cluster.plugins.module_utils import plan
from ansible_collections.scratchbird.cluster.plugins.module_utils.contract import DEFAULTS, TIERS, duration_ns

ALL = list(TIERS)


def clock_part(cidrs):
    return {"listens": [{"proto": "udp", "port": 123, "name": "NTP (chrony)", "var": "chrony"}],
            "rules": [{"name": "NTP", "proto": "udp", "ports": [123, 8888], "sources": cidrs,
                       "var": "clock_master_cluster_cidrs", "admit": ALL}]}


def tx_part(cidrs, metrics=9090):
    return {"listens": [{"proto": "tcp", "port": metrics, "name": "tx-engine metrics", "var": "tx_engine_metrics_port"},
                        {"proto": "tcp", "port": 5432, "name": "SQL postgresql", "var": "tx_engine_config.listeners"},
                        {"proto": "udp", "port": 8888, "name": "clock heartbeat", "var": "cluster_heartbeat_port"}],
            "rules": [{"name": "clock heartbeat", "proto": "udp", "ports": [8888], "sources": cidrs,
                       "var": "tx_engine_cluster_cidrs", "admit": ["clock_masters"]}],
            "endpoints": [{"name": "Kafka bootstrap", "var": "cluster_kafka_bootstrap", "address": "10.0.0.9:9092"}]}


def cluster(cidrs=("10.0.0.0/24",)):
    cidrs = list(cidrs)
    hosts = {"clock-1": ("10.0.0.1", ["clock_masters"], [clock_part(cidrs)]),
             "clock-2": ("10.0.0.2", ["clock_masters"], [clock_part(cidrs)])}
    for i in range(4):
        hosts["tx-%d" % i] = ("10.0.0.%d" % (10 + i), ["tx_engines"], [tx_part(cidrs), {"server_id": 100 + i}])
    for i in range(2):
        hosts["ingest-%d" % i] = ("10.0.0.%d" % (20 + i), ["ingestion_engines"], [])
    for i in range(4):
        hosts["olap-%d" % i] = ("10.0.0.%d" % (30 + i), ["olap_shards"], [])
    return dict((name, {"address": a, "groups": g, "parts": p}) for name, (a, g, p) in hosts.items())


def build(hosts, policy="warn", **settings):
    return plan.build(hosts, dict(dict(DEFAULTS, kafka_mode="external"), **settings), policy)


def test_a_good_cluster_has_no_errors_and_lists_everything():
    result = build(cluster())
    assert result["errors"] == []
    assert result["server_ids"] == {"100": "tx-0", "101": "tx-1", "102": "tx-2", "103": "tx-3"}
    assert result["hosts"]["tx-0"]["endpoints"][0]["target"] == "10.0.0.9:9092"
    assert result["tiers"]["tx_engines"] == {"size": 4, "contract": [4, 20], "status": "ok"}
    assert result["tiers"]["kafka_brokers"]["status"] == "external"
    text = plan.table(result)
    assert "tx-0  10.0.0.10  tx_engines" in text
    assert "listens  5432/tcp   SQL postgresql (tx_engine_config.listeners)" in text


def test_a_network_that_holds_no_host_names_the_variable_and_the_hosts():
    result = build(cluster(["fd00::/8"]))
    assert any(e.startswith("clock-1: clock_master_cluster_cidrs is fd00::/8, which does not admit clock-2 (10.0.0.2)")
               for e in result["errors"])
    assert any(e.startswith("tx-0: tx_engine_cluster_cidrs is fd00::/8, which does not admit clock-1") for e in result["errors"])


def test_ipv6_beside_ipv4_is_accepted():
    assert build(cluster(["fd00::/64", "10.0.0.0/16"]))["errors"] == []


@pytest.mark.parametrize("sources,message", [
    ("10.0.0.0/8", "must be a list of CIDRs"), (["10.0.0.300/8"], "not valid: 10.0.0.300/8"),
    (["10.0.0.0/33"], "not valid: 10.0.0.0/33")])
def test_bad_sources(sources, message):
    hosts = cluster()
    hosts["tx-0"]["parts"][0]["rules"][0]["sources"] = sources
    assert any(e.startswith("tx-0: tx_engine_cluster_cidrs") and message in e for e in build(hosts)["errors"])


def test_an_empty_rule_warns():
    hosts = cluster()
    hosts["tx-0"]["parts"][0]["rules"][0].update(sources=[], admit=[])
    assert any("tx_engine_cluster_cidrs is empty" in w for w in build(hosts)["warnings"])


def test_port_clashes_per_protocol():
    hosts = cluster()
    hosts["tx-0"]["parts"][0] = tx_part(["10.0.0.0/24"], metrics=5432)
    hosts["tx-1"]["parts"][0] = tx_part(["10.0.0.0/24"], metrics=8888)  # 8888/tcp beside 8888/udp is fine
    errors = build(hosts)["errors"]
    assert errors == ["tx-0: port 5432/tcp is wanted by tx_engine_config.listeners (SQL postgresql) and "
                      "tx_engine_metrics_port (tx-engine metrics); give all but one of them another port"]


def test_a_dns_name_is_refused():
    hosts = cluster()
    hosts["tx-2"]["address"] = "tx-2.example.org"
    assert any(e.startswith("tx-2: its address 'tx-2.example.org' (ansible_host) is a DNS name") for e in build(hosts)["errors"])


@pytest.mark.parametrize("policy,where", [("fail", "errors"), ("warn", "warnings")])
def test_tier_sizes_against_the_contract(policy, where):
    hosts = cluster()
    del hosts["tx-3"]
    result = build(hosts, policy)
    assert "tx_engines has 3 host(s); the contract asks for 4-20 (cluster_tier_size_policy: %s" % policy in " ".join(result[where])
    assert result["tiers"]["tx_engines"]["status"] == "outside the contract"


def test_self_hosted_kafka_counts_brokers():
    result = plan.build(cluster(), dict(DEFAULTS, kafka_mode="self_hosted"), "fail")
    assert "Inventory group 'kafka_brokers' is empty" in " ".join(result["errors"])
    result = plan.build({}, dict(DEFAULTS, kafka_mode="external"), "warn")
    assert len([e for e in result["errors"] if "is empty" in e]) == 4


def test_server_ids_must_be_unique_and_in_range():
    hosts = cluster()
    hosts["tx-1"]["parts"][1]["server_id"] = 100
    hosts["tx-2"]["parts"][1]["server_id"] = 0
    errors = build(hosts)["errors"]
    assert "TX engines tx-0 and tx-1 share server_id 100 (so one Kafka topic): give each its own tx_engine_server_id" in errors
    assert "tx-2: tx_engine_server_id must be a whole number 1-999999, got 0" in errors


@pytest.mark.parametrize("var,value,message", [
    ("cluster_max_acceptable_uncertainty_ns", "fast", "cluster_max_acceptable_uncertainty_ns must be a duration above zero"),
    ("cluster_clock_sync_timeout", "2m", "cluster_clock_sync_timeout must be a whole number of seconds above zero"),
    ("cluster_preflight_endpoint_timeout", 0, "cluster_preflight_endpoint_timeout must be a whole number of seconds"),
    ("cluster_heartbeat_port", 70000, "cluster_heartbeat_port must be a port number 1-65535"),
    ("cluster_heartbeat_interval_ms", "often", "cluster_heartbeat_interval_ms must be a number of milliseconds"),
    ("cluster_cidr", "lab-net", "cluster_cidr must be one network in CIDR notation"),
    ("kafka_mode", "managed", "kafka_mode must be self_hosted"),
])
def test_bad_settings(var, value, message):
    assert any(message in e for e in build(cluster(), **{var: value})["errors"])


def test_the_bound_with_a_unit_is_normalised():
    assert build(cluster(), cluster_max_acceptable_uncertainty_ns="20ms")["settings"]["cluster_max_acceptable_uncertainty_ns"] == 20000000


@pytest.mark.parametrize("endpoint,target", [
    ({"url": "https://user:secret@artifacts.example:8443/tx.tar.gz"}, ("artifacts.example", 8443)),
    ({"url": "http://10.0.0.5/tx.tar.gz"}, ("10.0.0.5", 80)),
    ({"address": "[fd00::9]:9092"}, ("fd00::9", 9092)),
    ({"address": "kafka-1"}, None),
    ({"url": "file:///srv/tx.tar.gz"}, None)])
def test_endpoint_targets(endpoint, target):
    assert plan.endpoint_target(endpoint) == target


def test_endpoints_lose_their_credentials_and_bad_ones_are_named():
    hosts = cluster()
    hosts["tx-0"]["parts"][0]["endpoints"] = [
        {"name": "tx-engine artifact", "var": "tx_engine_artifact_url", "url": "https://u:p@a.example/x"},
        {"name": "Kafka bootstrap", "var": "cluster_kafka_bootstrap", "address": "kafka-1"}]
    result = build(hosts)
    assert result["hosts"]["tx-0"]["endpoints"][0]["url"] == "https://a.example/x"
    assert result["errors"] == ["tx-0: cluster_kafka_bootstrap 'kafka-1' is not host:port or an http(s)/ftp URL"]


def test_hosts_outside_the_limit_are_not_planned():
    hosts = cluster()
    hosts["tx-3"]["parts"] = None
    result = plan.build(copy.deepcopy(hosts), dict(DEFAULTS, kafka_mode="external"), "warn", limited=True)
    assert result["hosts"]["tx-3"]["planned"] is False
    assert "(not planned: outside --limit)" in plan.table(result)


def test_duration_units():
    assert duration_ns("1.5s") == 1500000000
    assert duration_ns(100, "ms") == 100000000
    with pytest.raises(ValueError):
        duration_ns("1d")
