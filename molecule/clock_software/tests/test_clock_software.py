"""Two clock masters without upstream (orphan pair) serving two clients, on real lab hosts."""
import os
import time

import pytest
import testinfra
import testinfra.utils.ansible_runner

INVENTORY = os.environ["MOLECULE_INVENTORY_FILE"]
RUNNER = testinfra.utils.ansible_runner.AnsibleRunner(INVENTORY)
MASTERS = RUNNER.get_hosts("clock_masters")
CLIENTS = RUNNER.get_hosts("tx_engines") + RUNNER.get_hosts("olap_shards")
ADDRESS = {h: RUNNER.get_variables(h)["ansible_host"] for h in MASTERS + CLIENTS}
FAILOVER_LIMIT_S = 60


def host(name):
    return testinfra.get_host(f"ansible://{name}?ansible_inventory={INVENTORY}")


def selected_source(client):
    for line in client.check_output("chronyc -n -c sources").splitlines():
        fields = line.split(",")
        if fields[1] == "*":
            return fields[2]
    return None


def wait_for(condition, timeout, what):
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        value = condition()
        if value:
            return value, time.monotonic() - start
        time.sleep(0.25)
    raise AssertionError(f"{what}: not within {timeout} s")


@pytest.mark.parametrize("name", MASTERS)
def test_master_serves_the_cluster_in_orphan_mode(name):
    conf = host(name).file("/etc/chrony/chrony.conf").content_string
    other = ADDRESS[next(m for m in MASTERS if m != name)]
    assert conf.startswith("# Managed by Ansible: scratchbird.cluster.gpsd_chrony (profile ntp_server)")
    assert "local stratum 8 orphan\n" in conf
    assert "allow 10.213.0.0/16\n" in conf
    assert f"peer {other} minpoll 0 maxpoll 1 maxsamples 8\n" in conf
    assert host(name).run("chronyd -p -f /etc/chrony/chrony.conf").rc == 0


@pytest.mark.parametrize("name", MASTERS)
def test_master_firewall_opens_ntp_and_heartbeat_to_the_cluster_only(name):
    ruleset = host(name).check_output("nft list table inet scratchbird_clock_master")
    assert "ip saddr 10.213.0.0/16 udp dport { 123, 8888 } accept" in ruleset
    assert "udp dport { 123, 8888 } drop" in ruleset
    assert host(name).service("scratchbird-nft@scratchbird_clock_master").is_enabled


@pytest.mark.parametrize("name", CLIENTS)
def test_client_selects_a_master(name):
    client = host(name)
    conf = client.file("/etc/chrony/chrony.conf").content_string
    assert conf.count("\nserver ") == 2 and " prefer\n" in conf
    source, _ = wait_for(lambda: selected_source(client), 30, f"{name} selecting a clock master")
    assert source in {ADDRESS[m] for m in MASTERS}
    tracking = client.check_output("chronyc -n -c tracking").split(",")
    assert tracking[13] == "Normal"


def test_clients_fail_over_when_the_serving_master_stops():
    client = host(CLIENTS[0])
    serving, _ = wait_for(lambda: selected_source(client), 30, "a selected master")
    serving_master = next(m for m in MASTERS if ADDRESS[m] == serving)
    backup = ADDRESS[next(m for m in MASTERS if m != serving_master)]
    host(serving_master).check_output("systemctl stop chrony")
    try:
        _, seconds = wait_for(lambda: selected_source(client) == backup, FAILOVER_LIMIT_S,
                              f"{CLIENTS[0]} failing over from {serving} to {backup}")
        print(f"fail-over from {serving} to {backup} in {seconds:.1f} s")
    finally:
        host(serving_master).check_output("systemctl start chrony")
    wait_for(lambda: selected_source(client), 30, "a selected master after the restart")
