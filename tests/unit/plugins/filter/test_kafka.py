# Copyright: scratchbird.cluster contributors
# Apache License 2.0 (see LICENSE)
from __future__ import absolute_import, division, print_function

__metaclass__ = type

import base64
import uuid

import pytest

from ansible.errors import AnsibleFilterError
from ansible_collections.scratchbird.cluster.plugins.filter.kafka import (
    java_properties, kafka_cluster_id, kafka_layout, kafka_layout_errors, kafka_replication_factor,
    kafka_server_properties)

CLIENT = [{"name": "PLAINTEXT", "port": 9092, "protocol": "PLAINTEXT"}]
CONTROLLER = {"name": "CONTROLLER", "port": 9093, "protocol": "PLAINTEXT"}
LOGS = ["/var/lib/kafka/data"]
NODES = [{"host": "k1", "address": "10.0.0.1", "roles": ["broker", "controller"], "node_id": 1}]


def hosts(prefix, count):
    return ["%s%d" % (prefix, i) for i in range(1, count + 1)]


def hostvars_for(names, **extra):
    return {h: dict({"ansible_host": "10.0.0.%d" % (i + 1)}, **extra.get(h, {})) for i, h in enumerate(names)}


def props(nodes, host, listeners=None, overrides=None):
    return kafka_server_properties(nodes, host, listeners or CLIENT, CONTROLLER, LOGS, overrides)


@pytest.mark.parametrize("count,replication", [(1, 1), (3, 3), (5, 3)])
def test_combined_layouts(count, replication):
    brokers = hosts("k", count)
    nodes = kafka_layout(brokers, hostvars_for(brokers))
    assert [n["node_id"] for n in nodes] == list(range(1, count + 1))
    assert all(n["roles"] == ["broker", "controller"] for n in nodes)
    assert kafka_layout_errors(nodes) == [[], []]
    p = props(nodes, "k1")
    assert p["process.roles"] == "broker,controller"
    assert p["controller.quorum.voters"] == ",".join("%d@10.0.0.%d:9093" % (i, i) for i in range(1, count + 1))
    assert p["listeners"] == "PLAINTEXT://:9092,CONTROLLER://:9093"
    assert p["advertised.listeners"] == "PLAINTEXT://10.0.0.1:9092"
    assert p["listener.security.protocol.map"] == "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT"
    assert p["default.replication.factor"] == replication
    assert p["offsets.topic.replication.factor"] == replication
    assert p["min.insync.replicas"] == max(1, replication - 1)
    assert kafka_replication_factor(str(count)) == replication  # the topics' default is the brokers' default
    assert p["inter.broker.listener.name"] == "PLAINTEXT"


@pytest.mark.parametrize("controllers,brokers", [(3, 3), (3, 5), (5, 5)])
def test_dedicated_controllers(controllers, brokers):
    c, b = hosts("c", controllers), hosts("b", brokers)
    nodes = kafka_layout(b, hostvars_for(c + b), controllers=c)
    assert [n["host"] for n in nodes] == c + b
    assert [n["node_id"] for n in nodes] == list(range(1, controllers + brokers + 1))
    controller = props(nodes, "c1")
    assert controller["process.roles"] == "controller"
    assert controller["listeners"] == "CONTROLLER://:9093"
    assert "advertised.listeners" not in controller and "inter.broker.listener.name" not in controller
    broker = props(nodes, "b1")
    assert broker["process.roles"] == "broker"
    assert broker["listeners"] == "PLAINTEXT://:9092"
    assert broker["controller.quorum.voters"] == controller["controller.quorum.voters"]
    assert broker["controller.quorum.voters"].count("@") == controllers
    assert broker["default.replication.factor"] == 3


def test_a_host_in_both_groups_is_combined_and_ids_can_be_pinned():
    c, b = ["c1", "c2", "x"], ["x", "b1"]
    hv = hostvars_for(c + ["b1"], b1={"kafka_node_id": 1})
    nodes = {n["host"]: n for n in kafka_layout(b, hv, controllers=c)}
    assert nodes["x"]["roles"] == ["broker", "controller"]
    assert nodes["b1"]["node_id"] == 1
    assert sorted(n["node_id"] for n in nodes.values()) == [1, 2, 3, 4]


def test_explicit_roles_win_and_duplicate_ids_are_refused():
    b = hosts("k", 3)
    nodes = kafka_layout(b, hostvars_for(b, k3={"kafka_process_roles": "broker"}))
    assert nodes[2]["roles"] == ["broker"]
    with pytest.raises(AnsibleFilterError, match="kafka_node_id must be unique"):
        kafka_layout(b, hostvars_for(b, k1={"kafka_node_id": 2}, k2={"kafka_node_id": 2}))
    with pytest.raises(AnsibleFilterError, match="kafka_process_roles of k1 must be broker, controller or both"):
        kafka_layout(b, hostvars_for(b, k1={"kafka_process_roles": "leader"}))


def test_zero_controllers_is_an_error_and_an_even_number_a_warning():
    b = hosts("k", 2)
    nodes = kafka_layout(b, hostvars_for(b, k1={"kafka_process_roles": ["broker"]}, k2={"kafka_process_roles": "broker"}))
    errors, _warnings = kafka_layout_errors(nodes)
    assert "no controller" in errors[0]
    errors, warnings = kafka_layout_errors(kafka_layout(hosts("k", 4), hostvars_for(hosts("k", 4))))
    assert errors == [] and "4 controllers" in warnings[0]


@pytest.mark.parametrize("listeners,controller,message", [
    ([{"name": "client", "port": 9092}], CONTROLLER, "kafka_listeners[0].name must be upper case"),
    ([{"name": "CLIENT", "port": 9092, "protocol": "TLS"}], CONTROLLER, "kafka_listeners[0].protocol must be one of"),
    ([{"name": "CLIENT", "port": 70000}], CONTROLLER, "kafka_listeners[0].port must be a port"),
    ([{"name": "CLIENT", "port": 9093}], CONTROLLER, "two listeners on one port"),
    ([{"name": "CONTROLLER", "port": 9092}], CONTROLLER, "CONTROLLER appears more than once"),
    ([], CONTROLLER, "at least one client listener"),
    (CLIENT, {"name": "CONTROLLER", "port": 9093, "protocol": "SASL"}, "kafka_controller_listener.protocol"),
])
def test_listener_errors(listeners, controller, message):
    errors, _warnings = kafka_layout_errors(NODES, listeners, controller)
    assert any(message in e for e in errors), errors


def test_valid_listeners_and_tls_protocol_map():
    listeners = [{"name": "CLIENT", "port": 9094, "protocol": "SASL_SSL"}, {"name": "INTERNAL", "port": 9092}]
    assert kafka_layout_errors(NODES, listeners, CONTROLLER) == [[], []]
    nodes = kafka_layout(["k1"], hostvars_for(["k1"]))
    p = props(nodes, "k1", listeners)
    assert p["listener.security.protocol.map"] == "CLIENT:SASL_SSL,INTERNAL:PLAINTEXT,CONTROLLER:PLAINTEXT"
    assert p["inter.broker.listener.name"] == "CLIENT"
    assert p["advertised.listeners"] == "CLIENT://10.0.0.1:9094,INTERNAL://10.0.0.1:9092"


def test_overrides_win_and_none_removes():
    nodes = kafka_layout(["k1"], hostvars_for(["k1"]))
    p = props(nodes, "k1", overrides={"num.partitions": 32, "auto.create.topics.enable": None, "log.retention.hours": 72})
    assert p["num.partitions"] == 32 and p["log.retention.hours"] == 72 and "auto.create.topics.enable" not in p


def test_properties_of_an_unknown_host_or_bad_listeners_raise():
    nodes = kafka_layout(["k1"], hostvars_for(["k1"]))
    with pytest.raises(AnsibleFilterError, match="not a Kafka node"):
        props(nodes, "elsewhere")
    with pytest.raises(AnsibleFilterError, match="protocol must be one of"):
        props(nodes, "k1", [{"name": "CLIENT", "port": 9092, "protocol": "tls"}])


def test_ipv6_addresses_are_bracketed():
    nodes = kafka_layout(["k1"], {"k1": {"ansible_host": "fd00::1"}})
    p = props(nodes, "k1")
    assert p["controller.quorum.voters"] == "1@[fd00::1]:9093"
    assert p["advertised.listeners"] == "PLAINTEXT://[fd00::1]:9092"


def test_java_properties_sorted_and_escaped():
    text = java_properties({"b": True, "a.key": "x:y=z", "c": " lead", "d": "caf\u00e9\\n", "e key": 1})
    assert text.splitlines() == ["a.key=x:y=z", "b=true", "c=\\ lead", "d=caf\\u00e9\\\\n", "e\\ key=1"]


def test_cluster_id_is_22_chars_of_base64url_of_the_uuid():
    value = uuid.uuid4()
    cid = kafka_cluster_id(str(value))
    assert len(cid) == 22 and "=" not in cid
    assert base64.urlsafe_b64decode(cid + "==") == value.bytes
    with pytest.raises(AnsibleFilterError):
        kafka_cluster_id("not-a-uuid")
