"""The main job end to end: the cluster bootstrapped by converge (and unchanged by the
idempotence run), then health, schema init, rolling updates and a backup."""
import hashlib
import json
import os
import re
import signal
import subprocess
import sys
import tempfile

import yaml

from lab_testinfra import address, host, playbook, recap

PROJECT = os.environ["MOLECULE_PROJECT_DIRECTORY"]
SCENARIO = os.environ["MOLECULE_SCENARIO_NAME"]
LAB = "m-" + re.sub("[^a-z0-9]+", "-", SCENARIO.lower())[:10]
TX = ["tx-1", "tx-2", "tx-3"]
ALL = ["clock-1", "clock-2", "kafka-1", "ingest-1", "olap-1", "olap-2"] + TX
REPORTS = os.path.join(PROJECT, ".cache", "cluster-health", SCENARIO)
BACKUPS = os.path.join(PROJECT, ".cache", "backups", SCENARIO)


def health(name):
    return json.loads(host(name).check_output(
        "python3 -c 'import urllib.request; print(urllib.request.urlopen(\"http://127.0.0.1:9090/health\").read().decode())'"))


def release(name):
    return host(name).check_output("readlink /opt/db/tx-engine/current")


def test_health_playbook_prints_the_summary_and_writes_both_reports():
    result = playbook("cluster_health.yml")
    for label in ("Clock Masters:     ✓ 2/2", "TX Engines:        ✓ 3/3", "Ingestion Engines: ✓ 1/1",
                  "OLAP Shards:       ✓ 2/2", "Kafka Brokers:     ✓ 1/1", "Overall:           ✓ HEALTHY"):
        assert label in result.stdout, result.stdout[-3000:]
    with open(os.path.join(REPORTS, "cluster-health.json")) as handle:
        report = json.load(handle)
    assert report["healthy"] is True
    assert {t: v["total"] for t, v in report["tiers"].items()} == {
        "clock_masters": 2, "tx_engines": 3, "ingestion_engines": 1, "olap_shards": 2, "kafka_brokers": 1}
    with open(os.path.join(REPORTS, "cluster-health.html")) as handle:
        page = handle.read()
    assert page.count("<table") == 5 and "<svg" in page
    assert all(name in page for name in ALL)


def test_preflight_changes_nothing():
    result = playbook("preflight.yml")
    for name in ALL:
        assert "changed=0" in recap(result, name)


def test_bad_input_stops_the_bootstrap_in_preflight_before_any_host_changes():
    result = playbook("converge.yml", "-e", "tx_engine_artifact_sha256=" + "0" * 64, ok=False)
    out = result.stdout + result.stderr
    assert "tx_engine_artifact_sha256" in out, out[-3000:]
    assert "PLAY [Clock masters]" not in result.stdout  # stopped in pre-flight
    for name in ALL:
        assert "changed=0" in recap(result, name)


def test_the_schema_init_hook_ran_once():
    # converge and the idempotence run both ran the schema phase on the first TX engine
    assert len(host("tx-1").file("/var/log/scratchbird-lab-schema-init.log").content_string.splitlines()) == 1
    assert host("tx-1").file("/var/lib/scratchbird-cluster/schema-init.done").exists


def _rolling_update(version, pool, *args, ok=True):
    hooks = {
        "lb_deregister_command": [os.path.join(PROJECT, "lab", "lb_pool.py"), pool, "remove", "{{ inventory_hostname }}"],
        "lb_register_command": [os.path.join(PROJECT, "lab", "lb_pool.py"), pool, "add", "{{ inventory_hostname }}"],
        "standin_version": version,
    }
    return playbook("rolling_update.yml", "-e", json.dumps(hooks), *args, ok=ok)


def test_a_rolling_update_keeps_every_pooled_engine_answering():
    pool = tempfile.mktemp(prefix="lb-pool-")
    subprocess.run([sys.executable, os.path.join(PROJECT, "lab", "lb_pool.py"), pool, "set", *TX], check=True)
    targets = [arg for name in TX for arg in ("--target", "%s=%s:9090" % (name, address(name)))]
    prober = subprocess.Popen(["ip", "netns", "exec", LAB, sys.executable, os.path.join(PROJECT, "lab", "prober.py"),
                               "--pool", pool, *targets], stdout=subprocess.PIPE, text=True)
    try:
        assert prober.stdout.readline().strip() == "probing"
        result = _rolling_update("1.1.0", pool)
    finally:
        prober.send_signal(signal.SIGTERM)
        summary = json.loads(prober.communicate(timeout=30)[0])
    print("prober:", json.dumps(summary["hosts"]))
    assert all(stats["probes"] > 20 for stats in summary["hosts"].values()), summary
    assert sum(stats["failures"] for stats in summary["hosts"].values()) == 0, summary["failures"]
    for name in TX:
        assert "failed=0" in recap(result, name)
        assert health(name)["version"] == "1.1.0"
    with open(pool) as handle:
        assert sorted(handle.read().split()) == TX  # every engine is back in the pool


def test_a_broken_release_stops_at_its_first_host_which_runs_its_previous_release_again():
    pool = tempfile.mktemp(prefix="lb-pool-")
    subprocess.run([sys.executable, os.path.join(PROJECT, "lab", "lb_pool.py"), pool, "set", *TX], check=True)
    result = _rolling_update("1.2.0", pool, "-e", "tx_engine_health_timeout=8", ok=False)
    assert "The rolling update stops here" in result.stdout + result.stderr
    assert "failed=1" in recap(result, "tx-1")
    assert not re.search(r"^tx-[23]\s+:", result.stdout, re.M)  # never reached
    assert release("tx-1").endswith("1.1.0") and health("tx-1")["version"] == "1.1.0"
    for name in TX[1:]:
        assert release(name).endswith("1.1.0") and not host(name).file("/opt/db/tx-engine/1.2.0").exists
    with open(pool) as handle:
        assert sorted(handle.read().split()) == TX


def test_the_backup_manifest_matches_its_files():
    before = set(os.listdir(BACKUPS)) if os.path.isdir(BACKUPS) else set()
    playbook("backup_cluster.yml")
    (name,) = set(os.listdir(BACKUPS)) - before
    with open(os.path.join(BACKUPS, name, "manifest.yaml")) as handle:
        manifest = yaml.safe_load(handle)
    assert manifest["cluster"] == "sblab" and manifest["components"] == ["config", "ingestion", "olap"]
    paths = sorted(entry["path"] for entry in manifest["files"])
    expected = sorted(["%s/config.tar.gz" % n for n in ["ingest-1", "olap-1", "olap-2"] + TX]
                      + ["ingest-1/ingestion.tar.gz", "olap-1/olap.tar.gz", "olap-2/olap.tar.gz"])
    assert paths == expected
    for entry in manifest["files"]:
        with open(os.path.join(BACKUPS, name, entry["path"]), "rb") as handle:
            data = handle.read()
        assert hashlib.sha256(data).hexdigest() == entry["sha256"] and len(data) == entry["size"]
    listing = subprocess.run(["tar", "-tzf", os.path.join(BACKUPS, name, "tx-1", "config.tar.gz")],
                             capture_output=True, text=True, check=True).stdout.split()
    assert "db/cluster.yaml" in listing and "db/tx-engine.yaml" in listing


def test_a_new_tx_engine_joins_with_add_tx_engine(tmp_path):
    pool = tempfile.mktemp(prefix="lb-pool-")
    joined = tmp_path / "tx-4.yml"
    joined.write_text("all:\n  children:\n    tx_engines:\n      hosts:\n        tx-4:\n")
    hooks = {"lb_register_command": [os.path.join(PROJECT, "lab", "lb_pool.py"), pool, "add", "{{ inventory_hostname }}"]}
    result = playbook("add_tx_engine.yml", "-i", str(joined), "-e", "add_tx_engine_hosts=tx-4", "-e", json.dumps(hooks))
    assert "TX Engines:        ✓ 4/4 healthy" in result.stdout, result.stdout[-3000:]
    assert health("tx-4")["status"] == "ok"
    for name in ("tx-1", "olap-1", "clock-1"):
        assert "changed=0" in recap(result, name)  # the cluster around it is left alone
    with open(pool) as handle:
        assert handle.read().split() == ["tx-4"]
