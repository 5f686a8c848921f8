"""Two clock masters without upstream (orphan pair) serving two clients, on real lab hosts."""
import pytest
from lab_testinfra import RUNNER, address, host, selected_source, wait_for

MASTERS = RUNNER.get_hosts("clock_masters")
CLIENTS = RUNNER.get_hosts("tx_engines") + RUNNER.get_hosts("olap_shards")
ADDRESS = {h: address(h) for h in MASTERS + CLIENTS}
FAILOVER_LIMIT_S = 60


def serving(name):
    """The address of the source the host has selected, or None."""
    source = selected_source(name)
    return source and source[1]


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
    conf = host(name).file("/etc/chrony/chrony.conf").content_string
    assert conf.count("\nserver ") == 2 and " prefer\n" in conf
    source, _ = wait_for(lambda: serving(name), 30, f"{name} selecting a clock master")
    assert source in {ADDRESS[m] for m in MASTERS}
    tracking = host(name).check_output("chronyc -n -c tracking").split(",")
    assert tracking[13] == "Normal"


def test_clients_fail_over_when_the_serving_master_stops():
    client = CLIENTS[0]
    current, _ = wait_for(lambda: serving(client), 30, "a selected master")
    serving_master = next(m for m in MASTERS if ADDRESS[m] == current)
    backup = ADDRESS[next(m for m in MASTERS if m != serving_master)]
    host(serving_master).check_output("systemctl stop chrony")
    try:
        _, seconds = wait_for(lambda: serving(client) == backup, FAILOVER_LIMIT_S,
                              f"{client} failing over from {current} to {backup}")
        print(f"fail-over from {current} to {backup} in {seconds:.1f} s")
    finally:
        host(serving_master).check_output("systemctl start chrony")
    wait_for(lambda: serving(client), 30, "a selected master after the restart")
