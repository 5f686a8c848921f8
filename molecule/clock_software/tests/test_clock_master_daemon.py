"""The clock-master daemon (stand-in engine 1.0.0) deployed by the internal engine role."""
import json
import os
import re

import pytest
from lab_testinfra import RUNNER, address, exposure, host, playbook, recap

MASTERS = RUNNER.get_hosts("clock_masters")
CLIENTS = RUNNER.get_hosts("tx_engines") + RUNNER.get_hosts("olap_shards")
ADDRESS = {h: address(h) for h in MASTERS + CLIENTS}
PORT = 9093
MAX_EXPOSURE = 4.0
ARTIFACT = os.path.join(os.environ["MOLECULE_PROJECT_DIRECTORY"], ".cache/engine/scratchbird-engine-1.0.0.tar.gz")
with open(ARTIFACT + ".sha256", encoding="ascii") as handle:
    ARTIFACT_SHA256 = handle.read().split()[0]
GET = "import sys, urllib.request as u; print(u.urlopen(sys.argv[1], timeout=5).read().decode())"


def http_get(on, url):
    return host(on).check_output(f"python3 -c '{GET}' {url}")


def health(name):
    return json.loads(http_get(name, f"http://127.0.0.1:{PORT}/health"))


def invocation(name):
    return host(name).check_output("systemctl show -p InvocationID --value clock-master.service")


@pytest.mark.parametrize("name", MASTERS)
def test_daemon_runs_as_dbengine_from_the_current_release(name):
    h = host(name)
    service = h.service("clock-master")
    assert service.is_enabled and service.is_running
    pid = h.check_output("systemctl show -p MainPID --value clock-master.service")
    assert h.check_output(f"ps -o user= -p {pid}") == "dbengine"
    assert h.file("/opt/db/clock-master/current").linked_to == "/opt/db/clock-master/1.0.0"
    assert h.file("/opt/db/clock-master/1.0.0/.artifact-sha256").content_string.split() == [ARTIFACT_SHA256]
    unit = h.file("/etc/systemd/system/clock-master.service").content_string
    assert f"--metrics-port {PORT}" in unit and "Type=notify" in unit


@pytest.mark.parametrize("name", MASTERS)
def test_health_answers_ok_with_the_deployed_version(name):
    doc = health(name)
    assert doc["status"] == "ok"
    assert doc["version"] == "1.0.0"
    assert doc["tier"] == "clock-master"
    assert doc["cluster"] == "scratchbird"


@pytest.mark.parametrize("name", MASTERS)
def test_metrics_carry_the_clock_figures_read_from_chronyc(name):
    metrics = http_get(name, f"http://127.0.0.1:{PORT}/metrics")
    assert "clock_master_clock_tracking_available 1" in metrics
    assert re.search(r"^clock_master_clock_uncertainty_nanoseconds \d+", metrics, re.M)


@pytest.mark.parametrize("name", MASTERS)
def test_unit_exposure_is_at_most_4(name):
    assert exposure(name, "clock-master.service") <= MAX_EXPOSURE


@pytest.mark.parametrize("name", MASTERS)
def test_cluster_yaml_is_private_to_the_engine_group(name):
    h = host(name)
    conf = h.file("/etc/db/cluster.yaml")
    assert (conf.mode, conf.user, conf.group) == (0o640, "root", "dbengine")
    text = conf.content_string
    assert "mode: software" in text
    assert f"master_host: {ADDRESS[MASTERS[0]]}" in text and f"backup_host: {ADDRESS[MASTERS[1]]}" in text
    assert h.run("/opt/db/clock-master/current/bin/clock-master --check-config").stdout.strip() == "config ok"


@pytest.mark.parametrize("name", MASTERS)
def test_metrics_port_is_open_to_the_cluster_only(name):
    h = host(name)
    ruleset = h.check_output("nft list table inet scratchbird_clock_master_daemon")
    assert f"ip saddr 10.213.0.0/16 tcp dport {PORT} accept" in ruleset
    assert f"tcp dport {PORT} drop" in ruleset
    assert h.service("scratchbird-nft@scratchbird_clock_master_daemon").is_enabled
    # A client inside the cluster CIDR scrapes it.
    assert "clock_master_up 1" in http_get(CLIENTS[0], f"http://{ADDRESS[name]}:{PORT}/metrics")


def converge(*extra):
    """Run the scenario's converge on the first master only; returns the play recap line."""
    return recap(playbook("converge.yml", "--limit", MASTERS[0], *extra), MASTERS[0])


def test_changed_config_restarts_the_daemon_and_the_restore_does_too():
    name = MASTERS[0]
    before = invocation(name)
    try:
        recap = converge("-e", "cluster_name=renamed")
        print(recap)
        assert invocation(name) != before, "cluster.yaml changed but clock-master was not restarted"
        assert health(name)["cluster"] == "renamed"
        assert "name: renamed" in host(name).file("/etc/db/cluster.yaml").content_string
    finally:
        changed = invocation(name)
        recap = converge()
        print(recap)
    assert invocation(name) != changed
    assert health(name)["cluster"] == "scratchbird"
