# Copyright: scratchbird.cluster contributors
# Apache License 2.0 (see LICENSE)
from __future__ import absolute_import, division, print_function

__metaclass__ = type

import pytest

from ansible.errors import AnsibleFilterError
from ansible_collections.scratchbird.cluster.plugins.filter.cluster import (
    clock_bound_ns, cluster_topics, host_addresses, kafka_bootstrap, server_id)

HOSTVARS = {"k1": {"ansible_host": "10.0.0.1"}, "k2": {}, "k3": {"ansible_host": "fd00::3"}}


def test_host_addresses_prefer_ansible_host_and_keep_order():
    assert host_addresses(["k2", "k1", "elsewhere"], HOSTVARS) == ["k2", "10.0.0.1", "elsewhere"]


def test_host_addresses_with_port_bracket_ipv6():
    assert host_addresses(["k1", "k3"], HOSTVARS, 9092) == ["10.0.0.1:9092", "[fd00::3]:9092"]


def test_kafka_bootstrap_from_the_broker_group():
    assert kafka_bootstrap(None, ["k1", "k2"], HOSTVARS, 9094) == ["10.0.0.1:9094", "k2:9094"]
    assert kafka_bootstrap(None, [], HOSTVARS) == []
    # No port: the contract's default client port.
    assert kafka_bootstrap(None, ["k2"], HOSTVARS) == kafka_bootstrap(None, ["k2"], HOSTVARS, None) == ["k2:9092"]


@pytest.mark.parametrize("bootstrap", ["b-1.msk:9094, b-2.msk:9094,", ["b-1.msk:9094", "b-2.msk:9094"]])
def test_kafka_bootstrap_external_wins(bootstrap):
    assert kafka_bootstrap(bootstrap, ["k1"], HOSTVARS) == ["b-1.msk:9094", "b-2.msk:9094"]


def test_kafka_bootstrap_rejects_other_types():
    with pytest.raises(AnsibleFilterError, match="cluster_kafka_bootstrap must be a list"):
        kafka_bootstrap({"b": 1}, [], HOSTVARS)


def test_server_id_is_stable_and_in_range():
    ids = [server_id("tx-%d" % i) for i in range(200)]
    assert ids == [server_id("tx-%d" % i) for i in range(200)]
    assert all(1 <= i <= 999999 for i in ids) and len(set(ids)) == 200
    assert server_id("tx-engine-1") == 1 + int(__import__("hashlib").sha256(b"tx-engine-1").hexdigest()[:12], 16) % 999999


def test_cluster_topics_use_the_server_id_variable_else_the_name():
    hostvars = {"tx-1": {"tx_engine_server_id": 42}, "tx-2": {}}
    assert cluster_topics(["tx-1", "tx-2"], hostvars) == ["db-changes-42", "db-changes-%d" % server_id("tx-2")]
    assert cluster_topics(["tx-3"], {}, prefix="cdc.") == ["cdc.%d" % server_id("tx-3")]
    assert cluster_topics([], hostvars) == []


def test_server_id_is_the_same_for_any_case_of_a_name():
    assert server_id("TX-1") == server_id("tx-1") == server_id("Tx-1")
    assert server_id("tx-1") != server_id("tx-2")


@pytest.mark.parametrize("value,expected", [
    (None, 50000000), ("", 50000000), (20000000, 20000000), ("20000000", 20000000), ("50ms", 50000000),
    ("1.5ms", 1500000), ("500us", 500000), ("2 s", 2000000000), ("100ns", 100)])
def test_clock_bound_ns_reads_numbers_and_units(value, expected):
    assert clock_bound_ns(value) == expected


@pytest.mark.parametrize("value", ["fast", 0, "0ms", "-5ms", "50 parsecs", True, [1]])
def test_clock_bound_ns_names_the_variable(value):
    with pytest.raises(AnsibleFilterError, match="cluster_max_acceptable_uncertainty_ns must be a duration above zero"):
        clock_bound_ns(value)
