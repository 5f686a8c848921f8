# Copyright: scratchbird.cluster contributors
# Apache License 2.0 (see LICENSE)
"""scratchbird.cluster.gcp_compute through ansible-inventory against the Compute Engine API
emulator (tests/emulators/gcp_compute.py): google-auth's service-account flow, aggregatedList
paging over several projects, filters, 429/500 bursts, bad input. Every request that is not for
127.0.0.1 would land in the emulator's egress trap; the tests assert there were none."""
from __future__ import annotations

import sys

import pytest

from inventory_run import GROUP_OF, ROOT, base_env, hosts_of, inventory, plain, write_config

sys.path.insert(0, str(ROOT))
from tests.emulators.gcp_compute import GcpComputeEmulator  # noqa: E402  pylint: disable=wrong-import-position

TIERS = ("transaction", "ingestion", "olap", "clock", "kafka")


@pytest.fixture(scope="module")
def emu(tmp_path_factory):
    with GcpComputeEmulator(seed=1) as emulator:
        fleet = {}
        for project, count in (("sb-prod-eu", 1200), ("sb-prod-us", 300)):
            for z, zone in enumerate(("europe-west1-b", "europe-west1-c", "us-central1-a")):
                names = emulator.add_instances(project, zone, count // 3, name_format="%s-%s-{:05d}" % (project[-2:], zone[-1]),
                                               labels_fn=lambda i: {"cluster": "prod", "tier": TIERS[i % 5]}, nat_ips=True)
                fleet.update(("%s" % n, TIERS[i % 5]) for i, n in enumerate(names))
        emulator.add_instance("sb-prod-us", "us-central1-a", "tx-engine-7", labels={"cluster": "prod"})  # tier from the name
        emulator.add_instance("sb-prod-us", "us-central1-a", "eu-b-00000", labels={"cluster": "prod", "tier": "olap"})  # name taken in eu
        emulator.add_instance("sb-prod-us", "us-central1-a", "stopped-1", labels={"cluster": "prod", "tier": "olap"}, status="TERMINATED")
        emulator.add_instances("sb-staging", "europe-west1-b", 20, name_format="stg-{:03d}", labels_fn=lambda i: {"cluster": "staging"})
        key = emulator.service_account_file(str(tmp_path_factory.mktemp("gcp") / "key.json"), "sb-prod-eu")
        yield emulator, fleet, key


def config(emulator, key, **options):
    base = {"plugin": "scratchbird.cluster.gcp_compute", "projects": ["sb-prod-eu", "sb-prod-us", "sb-staging"],
            "auth_kind": "serviceaccount", "service_account_file": key, "compute_endpoint": emulator.url + "/compute/v1",
            "cluster_name": "prod", "cluster_key": "cluster"}
    base.update(options)
    return base


def run(emulator, path, check=True, **extra):
    env = emulator.client_env(base_env())
    env.update(extra)
    return inventory(path, env=env, check=check)


def test_every_instance_in_its_tier_group(emu, tmp_path):
    emulator, fleet, key = emu
    emulator.reset_log()
    data, proc = run(emulator, write_config(tmp_path, "prod.gcp_compute.yml", config(emulator, key)))
    hosts = set(data["_meta"]["hostvars"])
    assert len(hosts) == 1502  # 1,500 + tx-engine-7 + the second eu-b-00000; not stopped-1, not staging
    assert "stopped-1" not in hosts and not any(h.startswith("stg-") for h in hosts)
    for tier, group in GROUP_OF.items():
        members = hosts_of(data, group)
        assert {n for n, t in fleet.items() if t == tier} <= members
    assert "tx-engine-7" in hosts_of(data, "tx_engines")
    # eu-b-00000 exists in both projects: the second one is named by its next preference, its id.
    assert "eu-b-00000" in hosts and "is taken by another instance" in proc.stderr
    one = plain(data["_meta"]["hostvars"]["eu-a-00003"])
    assert one["project"] == "sb-prod-eu" and one["zone"] == "us-central1-a" and one["ansible_host"] == one["network_ip"]
    assert one["labels"] == {"cluster": "prod", "tier": "clock"} and one["scratchbird_tier"] == "clock_masters"
    # One aggregatedList per page of 500 (1,200 + 302 + 0 instances after the API filtered the rest).
    assert emulator.calls["aggregated_instances"] == 3 + 1 + 1
    assert emulator.egress == []


def test_throttling_and_errors_are_retried_without_losing_hosts(emu, tmp_path):
    emulator, fleet, key = emu
    emulator.reset_log()
    emulator.inject(429, count=3, retry_after=1, route="aggregated_instances")
    emulator.inject(500, count=2, route="aggregated_instances")
    emulator.inject(503, count=1, route="aggregated_instances")
    data, _proc = run(emulator, write_config(tmp_path, "t.gcp_compute.yml", config(emulator, key, retry_base_delay=0.05)))
    assert len(data["_meta"]["hostvars"]) == 1502
    assert emulator.calls["aggregated_instances"] == 5 + 6
    assert not emulator.pending_faults


def test_gives_up_after_retries_with_the_cause(emu, tmp_path):
    emulator, _fleet, key = emu
    emulator.inject(429, count=10, retry_after=0, route="aggregated_instances")
    cfg = config(emulator, key, projects=["sb-prod-us"], retries=2, retry_base_delay=0.01)
    _data, proc = run(emulator, write_config(tmp_path, "g.gcp_compute.yml", cfg), check=False)
    emulator.clear_faults()
    assert proc.returncode != 0
    assert "project sb-prod-us: HTTP 429" in proc.stderr and "gave up after 2 retries" in proc.stderr


def test_application_default_credentials_and_access_token(emu, tmp_path):
    emulator, _fleet, key = emu
    cfg = config(emulator, key, auth_kind="application", projects=["sb-prod-us"])
    del cfg["service_account_file"]
    data, _proc = run(emulator, write_config(tmp_path, "adc.gcp_compute.yml", cfg), GOOGLE_APPLICATION_CREDENTIALS=key)
    assert len(data["_meta"]["hostvars"]) == 302
    cfg = config(emulator, key, auth_kind="accesstoken", projects=["sb-prod-us"],
                 access_token=emulator.issue_token("inventory@sb-prod-eu.iam.gserviceaccount.com", ["https://www.googleapis.com/auth/compute.readonly"]))
    del cfg["service_account_file"]
    data, _proc = run(emulator, write_config(tmp_path, "tok.gcp_compute.yml", cfg))
    assert len(data["_meta"]["hostvars"]) == 302
    assert emulator.egress == []


def test_filters_zones_and_states(emu, tmp_path):
    emulator, _fleet, key = emu
    data, _proc = run(emulator, write_config(tmp_path, "f.gcp_compute.yml", config(
        emulator, key, projects=["sb-prod-us"], zones=["us-central1-a"], states=["RUNNING", "TERMINATED"], filters=['labels.tier = "olap"'],
        hostvars=["zone", "status"], keyed_groups=[{"key": "status", "prefix": "status"}])))
    hosts = set(data["_meta"]["hostvars"])
    assert "stopped-1" in hosts and hosts_of(data, "status_TERMINATED") == {"stopped-1"}
    assert len(hosts) == 100 // 5 + 2 and hosts == hosts_of(data, "olap_shards")
    assert set(plain(data["_meta"]["hostvars"]["stopped-1"])) == {"ansible_host", "scratchbird_tier", "zone", "status"}


@pytest.mark.parametrize("options, message", [
    ({"service_account_file": None}, "auth_kind=serviceaccount needs service_account_file"),
    ({"service_account_file": "/nonexistent/key.json"}, "service account key /nonexistent/key.json"),
    ({"projects": ["sb-nowhere"]}, "project sb-nowhere: HTTP 404"),
    ({"projects": ["Not_A_Project"]}, "projects: Not_A_Project is not a project id"),
    ({"compute_endpoint": "http://127.0.0.1:9/compute/v1", "retries": 1, "retry_base_delay": 0.01}, "http://127.0.0.1:9"),
    ({"zone": "us-central1-a"}, "unknown option 'zone' (did you mean 'zones'"),
    ({"auth_kind": "oauth"}, "auth_kind"),
], ids=["no-credentials", "missing-key-file", "unknown-project", "bad-project-id", "unreachable", "unknown-option", "bad-auth-kind"])
def test_bad_input_fails_clearly(emu, tmp_path, options, message):
    emulator, _fleet, key = emu
    emulator.reset_log()
    cfg = config(emulator, key)
    cfg.update(options)
    cfg = {k: v for k, v in cfg.items() if v is not None}
    path = write_config(tmp_path, "bad.gcp_compute.yml", cfg)
    _data, proc = run(emulator, path, check=False, ANSIBLE_INVENTORY_ENABLED="scratchbird.cluster.gcp_compute")
    assert proc.returncode != 0
    assert message in proc.stderr, proc.stderr[-3000:]
    assert emulator.egress == []
