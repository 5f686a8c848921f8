"""The three engine tiers (stand-in engine) deployed by tx_engine, ingestion and olap_shard."""
import json
import re

import pytest
from lab_testinfra import RUNNER, address, exposure, host, playbook, recap

TX = RUNNER.get_hosts("tx_engines")
INGESTION = RUNNER.get_hosts("ingestion_engines")
OLAP = RUNNER.get_hosts("olap_shards")
ALL = TX + INGESTION + OLAP
# host -> (tier, tier file, data dir, metrics port)
TIER = {
    **{h: ("tx-engine", "tx-engine.yaml", "tx-engine", 9090) for h in TX},
    **{h: ("ingestion-engine", "ingestion.yaml", "ingestion", 9091) for h in INGESTION},
    **{h: ("olap-shard", "olap.yaml", "olap", 9092) for h in OLAP},
}
MAX_EXPOSURE = 4.0
GET = "import sys, urllib.request as u; print(u.urlopen(sys.argv[1], timeout=5).read().decode())"
CONNECT = "import socket, sys; socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=2); print(sys.argv[2])"


def health(name):
    port = TIER[name][3]
    return json.loads(host(name).check_output(f"python3 -c '{GET}' http://127.0.0.1:{port}/health"))


def invocation(name):
    return host(name).check_output(f"systemctl show -p InvocationID --value {TIER[name][0]}.service")


def tier_doc(name):
    return host(name).check_output(f"cat /etc/db/{TIER[name][1]}")


def can_connect(client, server, port):
    return host(client).run(f"python3 -c '{CONNECT}' {address(server)} {port}").stdout.strip() == str(port)


@pytest.mark.parametrize("name", ALL)
def test_unit_runs_as_dbengine_from_the_current_release(name):
    tier = TIER[name][0]
    h = host(name)
    service = h.service(tier)
    assert service.is_enabled and service.is_running
    pid = h.check_output(f"systemctl show -p MainPID --value {tier}.service")
    assert h.check_output(f"ps -o user= -p {pid}") == "dbengine"
    assert h.file(f"/opt/db/{tier}/current").linked_to == f"/opt/db/{tier}/1.0.0"
    binary = h.file(f"/opt/db/{tier}/1.0.0/bin/{tier}")
    assert binary.user == "root" and binary.mode & 0o022 == 0


@pytest.mark.parametrize("name", ALL)
def test_files_owners_and_modes(name):
    tier, tier_file, data_dir, _port = TIER[name]
    h = host(name)
    expected = {
        "/etc/db": (0o750, "root", "dbengine"),
        "/etc/db/security": (0o750, "root", "dbengine"),
        "/etc/db/cluster.yaml": (0o640, "root", "dbengine"),
        f"/etc/db/{tier_file}": (0o640, "root", "dbengine"),
        f"/var/lib/db/{data_dir}": (0o750, "dbengine", "dbengine"),
        "/var/log/db": (0o750, "dbengine", "dbengine"),
    }
    for path, (mode, user, group) in expected.items():
        f = h.file(path)
        assert (f.mode, f.user, f.group) == (mode, user, group), path
    # Both files are accepted by the release's own validation.
    assert h.run(f"/opt/db/{tier}/current/bin/{tier} --check-config").stdout.strip() == "config ok"


@pytest.mark.parametrize("name", ALL)
def test_health_is_ok(name):
    doc = health(name)
    assert (doc["status"], doc["tier"], doc["version"], doc["cluster"]) == ("ok", TIER[name][0], "1.0.0", "engines-lab")


@pytest.mark.parametrize("name", ALL)
def test_ports_listen(name):
    h = host(name)
    ports = [f"tcp://0.0.0.0:{TIER[name][3]}"]
    if name in TX:
        ports += ["tcp://0.0.0.0:5432", "tcp://0.0.0.0:3306", "udp://0.0.0.0:8888"]
    for port in ports:
        assert h.socket(port).is_listening, port


@pytest.mark.parametrize("name", ALL)
def test_unit_exposure_is_at_most_4(name):
    assert exposure(name, f"{TIER[name][0]}.service") <= MAX_EXPOSURE


@pytest.mark.parametrize("name", TX)
def test_tx_engine_yaml_merges_the_config_over_defaults_sized_from_the_host(name):
    h = host(name)
    text = tier_doc(name)
    vcpus = int(h.check_output("nproc"))
    assert f"worker_threads: {vcpus}\n" in text
    assert "default_mode: bounded_staleness" in text
    assert "financial_transactions: strict_serializable" in text and "sessions: eventual" in text
    assert "protocol: postgresql" in text and "port: 5432" in text and "max_connections: 1000" in text


def test_ingestion_and_olap_files():
    ingestion = tier_doc(INGESTION[0])
    assert "- kafka-1.lab.invalid:9092" in ingestion and "consumer_group: ingestion-group-1" in ingestion
    assert "topic_prefix: db-changes-" in ingestion
    olap = tier_doc(OLAP[0])
    assert "shard_id: 0" in olap and "num_shards: 12" in olap and "format: parquet" in olap


def test_sql_listeners_are_open_to_the_application_cidr_only():
    server, app = TX
    ruleset = host(server).check_output("nft list table inet scratchbird_tx_engine")
    assert f"ip saddr {address(app)} tcp dport {{ 3306, 5432 }} accept" in ruleset
    assert "ip saddr 10.213.0.0/16 udp dport 8888 accept" in ruleset
    assert "ip saddr 10.213.0.0/16 tcp dport 9090 accept" in ruleset
    assert can_connect(app, server, 5432)
    assert not can_connect(INGESTION[0], server, 5432), "the SQL port is open outside the application CIDR"
    assert can_connect(INGESTION[0], server, 9090), "the metrics port is closed to the cluster"


@pytest.mark.parametrize("name", INGESTION + OLAP)
def test_other_tiers_open_only_their_metrics_port(name):
    table = "scratchbird_" + TIER[name][0].replace("-", "_")
    ruleset = host(name).check_output(f"nft list table inet {table}")
    assert f"ip saddr 10.213.0.0/16 tcp dport {TIER[name][3]} accept" in ruleset
    assert len(re.findall(r"dport", ruleset)) == 2


def test_tls_material_is_installed_where_enabled():
    tls_host, plain = TX[1], TX[0]
    h = host(tls_host)
    key = h.file("/etc/db/security/server.key")
    assert (key.mode, key.user, key.group) == (0o600, "dbengine", "dbengine")
    for name in ("server.crt", "ca.crt"):
        f = h.file(f"/etc/db/security/{name}")
        assert (f.mode, f.user) == (0o644, "root")
    assert "enable_tls: true" in h.file("/etc/db/cluster.yaml").content_string
    assert "BEGIN CERTIFICATE" in h.file("/etc/db/security/server.crt").content_string
    assert not host(plain).file("/etc/db/security/server.key").exists
    assert "enable_tls: false" in host(plain).file("/etc/db/cluster.yaml").content_string


def _for_tx1(change):
    """tx_engine_config for -e: the scenario's value with `change` merged in on tx-1 only."""
    base = RUNNER.get_variables(TX[1])["tx_engine_config"]
    changed = json.loads(json.dumps(base))
    for key, value in change.items():
        changed.setdefault(key, {}).update(value)
    return {"tx_engine_config": f"{{{{ {changed!r} if inventory_hostname == '{TX[0]}' else {base!r} }}}}"}


def test_a_changed_value_restarts_only_that_host():
    before = {h: invocation(h) for h in ALL}
    try:
        result = playbook("converge.yml", "-e", json.dumps(_for_tx1({"cache": {"prepared_statement_cache_size": 20000}})))
        for name in ALL:
            print(recap(result, name))
        after = {h: invocation(h) for h in ALL}
        assert after[TX[0]] != before[TX[0]], "tx-engine.yaml changed but the engine was not restarted"
        assert {h: after[h] for h in ALL[1:]} == {h: before[h] for h in ALL[1:]}, "another host restarted"
        assert "prepared_statement_cache_size: 20000" in tier_doc(TX[0])
        assert health(TX[0])["status"] == "ok"
    finally:
        playbook("converge.yml", "--limit", TX[0])
    assert "prepared_statement_cache_size: 10000" in tier_doc(TX[0])


def test_check_mode_reports_an_upgrade_without_making_it():
    name = TX[0]
    before = (_links(name), invocation(name), tier_doc(name))
    result = playbook("converge.yml", "--limit", name, "--check", "--diff", "-e", "standin_version=1.1.0")
    assert "changed=0" not in recap(result, name)
    assert (_links(name), invocation(name), tier_doc(name)) == before
    assert "changed=0" in recap(playbook("converge.yml", "--limit", name, "--check"), name)


def _refused_for_tx1(change, *messages, **extra):
    """A bad value for tx-1 fails the run; the live file and the running daemon stay as they were."""
    name = TX[0]
    before = (tier_doc(name), invocation(name))
    extra_vars = {**_for_tx1(change), **extra}
    result = playbook("converge.yml", "--limit", name, "-e", json.dumps(extra_vars), ok=False)
    output = " ".join((result.stdout + result.stderr).split())
    for message in messages:
        assert message in output, output[-4000:]
    assert (tier_doc(name), invocation(name)) == before
    assert health(name)["status"] == "ok"
    return output


def test_an_invalid_value_is_refused_before_anything_changes():
    output = _refused_for_tx1(
        {"consistency": {"default_mode": "fast"}},
        "tx_engine_config.consistency.default_mode", "eventual, bounded_staleness, monotonic_reads, strict_serializable")
    assert "changed=0" in output


def test_the_artifact_check_guards_the_live_file_when_the_schema_check_is_off():
    # Without the role's schema check, the release's own --check-config refuses the file.
    _refused_for_tx1({"cache": {"hot_rows_mb": 1}}, "failed to validate", "hot_rows_mb: unknown key",
                     tx_engine_config_schema_check=False)


def _links(name):
    h = host(name)
    return tuple(h.file(f"/opt/db/tx-engine/{link}").linked_to.rsplit("/", 1)[-1] for link in ("current", "previous"))


def test_each_tier_role_states_where_its_tier_lives(tmp_path):
    # tasks_from: paths (what rolling_update and backup_cluster read) against the hosts themselves.
    playbook("paths.yml", "-e", f"paths_out={tmp_path}")
    for name in ALL:
        tier, tier_file, data_dir, port = TIER[name]
        paths = json.loads((tmp_path / f"{name}.json").read_text())
        h = host(name)
        assert paths["current"] == f"/opt/db/{tier}/current" and h.file(paths["current"]).is_symlink, paths
        assert paths["previous"] == f"/opt/db/{tier}/previous" and paths["home"] == f"/opt/db/{tier}", paths
        assert paths["config_dir"] == "/etc/db" and h.file(paths["cluster_file"]).is_file, paths
        assert paths["tier_file"] == f"/etc/db/{tier_file}" and h.file(paths["tier_file"]).is_file, paths
        assert paths["data_dir"] == f"/var/lib/db/{data_dir}" and h.file(paths["data_dir"]).is_directory, paths
        assert paths["unit"] == f"{tier}.service" and h.service(tier).is_running, paths
        assert paths["health_url"] == f"http://127.0.0.1:{port}/health", paths


def test_upgrade_then_roll_back_through_the_links():
    name = TX[0]
    playbook("converge.yml", "--limit", name, "-e", "standin_version=1.1.0")
    assert _links(name) == ("1.1.0", "1.0.0")
    assert health(name)["version"] == "1.1.0"
    playbook("rollback.yml", "--limit", name)
    assert _links(name) == ("1.0.0", "1.1.0")
    assert health(name)["version"] == "1.0.0"
    # The configured version is the current one again: nothing to do.
    assert "changed=0" in recap(playbook("converge.yml", "--limit", name), name)


def test_an_unhealthy_release_fails_its_host_with_the_journal_then_rolls_back():
    name = TX[0]
    result = playbook("converge.yml", "--limit", name, "-e", "standin_version=1.2.0",
                      "-e", "tx_engine_health_timeout=10", ok=False)
    output = " ".join((result.stdout + result.stderr).split())
    assert "tx-engine is not healthy" in output and "journalctl -u tx-engine.service -n 30" in output, output[-4000:]
    assert _links(name) == ("1.2.0", "1.0.0")
    playbook("rollback.yml", "--limit", name)
    assert _links(name) == ("1.0.0", "1.2.0")
    assert health(name)["version"] == "1.0.0"
    # Three releases kept (tx_engine_keep_versions).
    assert sorted(host(name).check_output("ls /opt/db/tx-engine").split()) == [
        "1.0.0", "1.1.0", "1.2.0", "current", "previous"]
