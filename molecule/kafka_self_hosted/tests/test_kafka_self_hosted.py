"""The kafka role, self-hosted KRaft on three lab hosts. Without KAFKA_DIST (an Apache Kafka
archive) only what does not need it is checked; the rest is reported as skipped."""
import os
import re

import pytest
from lab_testinfra import RUNNER, address, assert_role_units_hardened, host, kafka_round_trip

NODES = RUNNER.get_hosts("kafka_brokers")
HAVE_DIST = bool(os.environ.get("KAFKA_DIST"))
needs_dist = pytest.mark.skipif(not HAVE_DIST, reason="KAFKA_DIST is not set: no Apache Kafka archive here")


def properties(name):
    text = host(name).file("/etc/kafka/server.properties").content_string
    return dict(line.split("=", 1) for line in text.splitlines() if line and not line.startswith("#"))


@pytest.mark.parametrize("name", NODES)
def test_java_user_and_directories(name):
    h = host(name)
    assert h.package("openjdk-17-jre-headless").is_installed
    assert h.user("kafka").shell == "/usr/sbin/nologin"
    for path, mode, user in [("/etc/kafka", 0o750, "root"), ("/var/lib/kafka/data", 0o750, "kafka"),
                             ("/var/log/kafka", 0o750, "kafka")]:
        f = h.file(path)
        assert (f.is_directory, f.mode, f.user, f.group) == (True, mode, user, "kafka"), path


def test_server_properties_form_one_kraft_quorum():
    props = {name: properties(name) for name in NODES}
    voters = ",".join(f"{i}@{address(n)}:9093" for i, n in enumerate(NODES, start=1))
    assert sorted(p["node.id"] for p in props.values()) == ["1", "2", "3"]
    for name, p in props.items():
        assert p["process.roles"] == "broker,controller"
        assert p["controller.quorum.voters"] == voters
        assert p["listeners"] == "PLAINTEXT://:9092,CONTROLLER://:9093"
        assert p["advertised.listeners"] == f"PLAINTEXT://{address(name)}:9092"
        assert p["default.replication.factor"] == "3" and p["min.insync.replicas"] == "2"
        assert p["log.dirs"] == "/var/lib/kafka/data"
        assert host(name).file("/etc/kafka/server.properties").mode == 0o640


def test_one_cluster_id_shared_by_all_nodes():
    ids = {host(name).file("/etc/kafka/cluster.id").content_string.strip() for name in NODES}
    assert len(ids) == 1 and re.fullmatch(r"[A-Za-z0-9_-]{22}", ids.pop())


@pytest.mark.parametrize("name", NODES)
def test_unit_is_installed_and_verified(name):
    h = host(name)
    unit = h.file("/etc/systemd/system/kafka.service").content_string
    assert "ExecStart=/opt/kafka/current/bin/kafka-server-start.sh /etc/kafka/server.properties" in unit
    assert "KAFKA_HEAP_OPTS=-Xms256m -Xmx256m" in unit and "NoNewPrivileges=yes" in unit
    out = h.run("systemd-analyze verify /etc/systemd/system/kafka.service")
    problems = [line for line in (out.stdout + out.stderr).splitlines() if "kafka" in line]
    if not HAVE_DIST:
        problems = [p for p in problems if "kafka-server-start.sh is not executable" not in p]
    assert problems == []


def test_every_unit_the_role_installs_scores_at_most_2_5():
    # kafka.service (the JVM's needs kept) and the firewall's loader, on systemd-analyze security
    units = assert_role_units_hardened(NODES, minimum=2)
    assert all((name, "kafka.service") in units for name in NODES), units


@pytest.mark.parametrize("name", NODES)
def test_firewall_opens_clients_and_controllers_only(name):
    ruleset = host(name).check_output("nft list table inet scratchbird_kafka")
    assert "ip saddr 10.213.0.0/16 tcp dport 9092 accept" in ruleset
    peers = ", ".join(sorted(address(n) for n in NODES))
    assert "tcp dport 9093 accept" in ruleset and all(address(n) in ruleset for n in NODES), peers


@pytest.mark.skipif(HAVE_DIST, reason="with KAFKA_DIST the brokers run")
@pytest.mark.parametrize("name", NODES)
def test_without_the_archive_nothing_pretends_to_run(name):
    h = host(name)
    assert not h.file("/opt/kafka/current").exists
    assert not h.service("kafka").is_running and not h.service("kafka").is_enabled


@needs_dist
@pytest.mark.parametrize("name", NODES)
def test_brokers_run_with_a_quorum(name):
    h = host(name)
    assert h.service("kafka").is_running
    out = h.check_output(f"/opt/kafka/current/bin/kafka-metadata-quorum.sh --bootstrap-server {address(name)}:9092"
                         " describe --status")
    assert re.search(r"LeaderId:\s*[1-3]", out)


@needs_dist
def test_a_topic_round_trip():
    name = NODES[0]
    servers = ",".join(f"{address(n)}:9092" for n in NODES)
    host(name).check_output(f"/opt/kafka/current/bin/kafka-topics.sh --bootstrap-server {servers} --create "
                            "--if-not-exists --topic scenario-round-trip --partitions 3 --replication-factor 3")
    assert kafka_round_trip(name, servers, "scenario-round-trip")
