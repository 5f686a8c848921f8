"""Health tells the truth, and --limit is a first-class mode: the day-2 playbooks under
--limit cover the limited hosts and list the others as left out; a host cut off the network,
a clock that cannot be read, a stopped engine and the loss of one clock master of two are
each reported as what they are (unreachable, unreadable, UNHEALTHY, DEGRADED)."""
import json
import os
import re
import subprocess

from lab_testinfra import address, host, playbook, recap, selected_source, wait_for

PROJECT = os.environ["MOLECULE_PROJECT_DIRECTORY"]
SCENARIO = os.environ["MOLECULE_SCENARIO_NAME"]
LAB = "m-" + re.sub("[^a-z0-9]+", "-", SCENARIO.lower())[:10]
REPORT = os.path.join(PROJECT, ".cache", "cluster-health", SCENARIO, "cluster-health.json")
CLIENTS = ["kafka-1", "ingest-1", "olap-1", "olap-2", "tx-1", "tx-2", "tx-3"]
HEALTHY, UNHEALTHY, DEGRADED = 0, 2, 4  # cluster_health.yml's exit status per state


def report():
    with open(REPORT) as handle:
        return json.load(handle)


def flat(result):
    """The run's output with whitespace collapsed (the summary's long lines wrap)."""
    return re.sub(r"\s+", " ", result.stdout)


def health_check(*args):
    result = playbook("cluster_health.yml", *args, ok=None)
    result.stdout = flat(result)
    return result, result.returncode


def answers(name):
    try:
        return host(name).run("true").rc == 0
    except Exception:  # testinfra raises when Ansible cannot reach the host
        return False


def link(name, state):
    subprocess.run([os.path.join(PROJECT, "lab", "labctl"), "link", "--name", LAB, name, state], check=True)


def test_health_under_limit_covers_the_limited_hosts_and_lists_the_others():
    result, rc = health_check("--limit", "tx-1")
    assert rc == HEALTHY, result.stdout[-3000:]
    assert re.search(r"TX Engines: ✓ 1/1 healthy \([^)]*; 2 left out\)", result.stdout), result.stdout[-3000:]
    assert "Overall: ✓ HEALTHY" in result.stdout
    assert "Left out: clock-1, clock-2, ingest-1, kafka-1, olap-1, olap-2, tx-2, tx-3 (outside --limit)" in result.stdout
    assert "not reachable" not in result.stdout
    data = report()
    assert data["state"] == "HEALTHY" and len(data["left_out"]) == 8
    assert [h["state"] for h in data["tiers"]["tx_engines"]["hosts"]] == ["healthy", "not_checked", "not_checked"]


def test_bootstrap_under_limit_changes_nothing_and_ends_healthy():
    # the release tx-2 runs now (test_cluster.py rolled the TX engines forward), so nothing is due
    release = host("tx-2").check_output("readlink /opt/db/tx-engine/current").rsplit("/", 1)[-1]
    result = playbook("converge.yml", "--limit", "tx-2", "-e", "standin_version=" + release)
    assert re.search(r"^tx-2\s+:.*changed=0.*failed=0", result.stdout, re.M), result.stdout[-3000:]
    assert not re.search(r"^tx-1\s+:", result.stdout, re.M)
    assert "(outside --limit)" in flat(result) and "Overall: ✓ HEALTHY" in flat(result)


def test_rolling_update_under_limit_touches_only_the_limited_host():
    release = host("tx-3").check_output("readlink /opt/db/tx-engine/current")
    result = playbook("rolling_update.yml", "--limit", "tx-3", "-e", "standin_version=" + release.rsplit("/", 1)[-1])
    assert "failed=0" in recap(result, "tx-3")
    assert not re.search(r"^tx-[12]\s+:", result.stdout, re.M)


def test_add_tx_engine_under_limit_takes_the_limited_hosts(tmp_path):
    # --limit alone selects tx-4 (joined by test_cluster.py, or joining now) and the run covers it
    joined = tmp_path / "tx-4.yml"
    joined.write_text("all:\n  children:\n    tx_engines:\n      hosts:\n        tx-4:\n")
    result = playbook("add_tx_engine.yml", "-i", str(joined), "--limit", "tx-4")
    assert re.search(r"TX Engines: ✓ 1/1 healthy \([^)]*; 3 left out\)", flat(result)), result.stdout[-3000:]
    assert "failed=0" in recap(result, "tx-4") and "Deploy the tx-engine" in result.stdout
    assert not re.search(r"^tx-[123]\s+:", result.stdout, re.M)
    outside = playbook("add_tx_engine.yml", "-i", str(joined), "--limit", "tx-1", "-e", "add_tx_engine_hosts=tx-4", ok=False)
    assert "outside --limit: tx-4" in re.sub(r"\s+", " ", outside.stdout + outside.stderr)


def test_a_stopped_engine_is_unhealthy_and_degraded_above_the_tier_minimum():
    host("olap-2").check_output("systemctl stop olap-shard")
    try:
        result, rc = health_check()
        assert rc == UNHEALTHY, result.stdout[-3000:]
        assert re.search(r"OLAP Shards: ✗ 1/2 healthy \([^;]*; olap-2: /health unreachable", result.stdout)
        assert report()["tiers"]["olap_shards"]["hosts"][1]["state"] == "unhealthy"
        # with a tier minimum of 1, losing one shard of two is within redundancy
        result, rc = health_check("-e", "cluster_health_min_olap_shards=1")
        assert rc == DEGRADED, result.stdout[-3000:]
        assert re.search(r"OLAP Shards: ⚠ 1/2 healthy", result.stdout)
        assert "Overall: ⚠ DEGRADED (1 problem, within redundancy" in result.stdout
    finally:
        host("olap-2").check_output("systemctl start olap-shard")


def test_a_clock_that_cannot_be_read_is_unreadable():
    host("ingest-1").check_output("systemctl stop chrony")
    try:
        result, rc = health_check()
        assert rc == UNHEALTHY, result.stdout[-3000:]
        assert re.search(r"Ingestion Engines: ✗ 0/1 healthy \([^;]*; ingest-1: clock could not be read", result.stdout)
        assert report()["tiers"]["ingestion_engines"]["hosts"][0]["state"] == "unreadable"
    finally:
        host("ingest-1").check_output("systemctl start chrony")


def test_one_clock_master_cut_off_is_unreachable_and_the_cluster_degraded():
    lost = address("clock-1")
    link("clock-1", "down")
    try:
        # every client fails over to clock-2 (chrony's own timing; wait on it, no fixed sleep)
        for name in CLIENTS:
            wait_for(lambda: (selected_source(name) or ("", lost))[1] != lost, 180, name + " selects clock-2")
        result, rc = health_check()
        assert rc == DEGRADED, result.stdout[-3000:]
        assert re.search(r"Clock Masters: ⚠ 1/2 healthy \([^;]*; clock-1: unreachable", result.stdout), result.stdout[-3000:]
        assert "Overall: ⚠ DEGRADED" in result.stdout
        data = report()
        assert data["state"] == "DEGRADED"
        assert [h["state"] for h in data["tiers"]["clock_masters"]["hosts"]] == ["unreachable", "healthy"]
        assert all(t["state"] == "healthy" for n, t in data["tiers"].items() if n != "clock_masters"), data["summary"]
    finally:
        link("clock-1", "up")
    wait_for(lambda: answers("clock-1"), 120, "clock-1 answers again")
    wait_for(lambda: health_check()[1] == HEALTHY, 300, "the cluster is healthy again")
