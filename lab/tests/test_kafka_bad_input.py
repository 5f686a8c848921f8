"""Bad input to the kafka role fails with a clear message before the host is changed (a real
lab host: no Java, no kafka user, no /etc/kafka afterwards)."""
from __future__ import annotations

import os

import pytest
from labtest import ROOT, on_host, one_host_lab, playbook

LAB = "it-kafbad"
PLAYBOOK = ROOT / "lab/tests/playbooks/kafka_role.yml"
PG = {"name": "PLAINTEXT", "port": 9092, "protocol": "PLAINTEXT"}

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="the lab needs root")

# (name, extra vars, more inventory (YAML) or None, check mode, expected messages, must fail)
CASES = [
    ("topic replication factor above the brokers", {"kafka_topic_replication_factor": 3}, None, False,
     ["kafka_topic_replication_factor is 3 but the cluster has 1 broker(s)"], True),
    ("default replication factor above the brokers", {"kafka_server_properties": {"default.replication.factor": 2}},
     None, False, ["default.replication.factor is 2 but the cluster has 1 broker(s)"], True),
    ("zero controllers", {"kafka_process_roles": "broker"}, None, False, ["the KRaft quorum has no controller"], True),
    ("listener name", {"kafka_listeners": [{**PG, "name": "client"}]}, None, False,
     ["kafka_listeners[0].name must be upper case"], True),
    ("security protocol", {"kafka_listeners": [{**PG, "protocol": "TLS"}]}, None, False,
     ["kafka_listeners[0].protocol must be one of PLAINTEXT, SSL, SASL_PLAINTEXT, SASL_SSL"], True),
    ("controller on a client port", {"kafka_controller_listener": {"name": "CONTROLLER", "port": 9092}}, None, False,
     ["two listeners on one port"], True),
    ("archive without sha256", {"kafka_archive_src": str(ROOT / "README.md"), "kafka_version": "3.9.1"}, None, False,
     ["kafka_archive_sha256 is mandatory"], True),
    ("unknown mode", {"kafka_mode": "managed"}, None, False, ["kafka_mode must be one of: self_hosted, external, got: managed"], True),
    ("external without bootstrap servers", {"kafka_mode": "external"}, None, False,
     ["cluster_kafka_bootstrap must list the cluster's bootstrap servers"], True),
    ("bad client network", {"kafka_client_cidrs": ["10.0.0.0/8", "lan"]}, None, False,
     ["kafka_client_cidrs must list networks as CIDRs", "lan"], True),
    # An even quorum is allowed with a warning: checked in check mode (the host stays as it is).
    ("even number of controllers", {}, "kafka_controllers:\n  hosts:\n    k1:\n    kc2: {ansible_host: 10.213.254.2}\n",
     True, ["WARNING: the KRaft quorum has 2 controllers"], False),
]


@pytest.fixture(scope="module")
def inventory():
    with one_host_lab(LAB, "k1", groups="kafka_brokers") as path:
        yield path


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_bad_input_is_refused_before_any_change(inventory, case, tmp_path):
    _name, extra, more_inventory, check, messages, must_fail = case
    inventories = [inventory]
    if more_inventory:
        (tmp_path / "more.yml").write_text(more_inventory)
        inventories.append(tmp_path / "more.yml")
    res = playbook(inventories, PLAYBOOK, extra, "--limit", "k1", *(["--check"] if check else []))
    output = " ".join((res.stdout + res.stderr).split())
    assert (res.returncode != 0) == must_fail, output[-3000:]
    for message in messages:
        assert message in output, output[-3000:]
    probe = on_host(LAB, "k1", "getent passwd kafka; ls -d /etc/kafka; dpkg -l openjdk-17-jre-headless 2>/dev/null"
                               " | grep ^ii", check=False)
    assert probe.stdout.strip() == "", "the host was changed: " + probe.stdout
