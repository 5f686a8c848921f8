# Copyright: scratchbird.cluster contributors
# Apache License 2.0 (see LICENSE)
"""scratchbird.cluster.azure_vm through ansible-inventory against the Azure Resource Graph
emulator (tests/emulators/azure_resource_graph.py) over TLS: azure-identity's managed-identity
flow, one query per subscription with $skipToken paging, 429/500 bursts, bad input. Requests
not for 127.0.0.1 would land in the emulator's egress trap; the tests assert there were none."""
from __future__ import annotations

import sys

import pytest

from inventory_run import GROUP_OF, ROOT, base_env, hosts_of, inventory, plain, write_config

sys.path.insert(0, str(ROOT))
from tests.emulators.azure_resource_graph import AzureResourceGraphEmulator  # noqa: E402  pylint: disable=wrong-import-position

TIERS = ("transaction", "ingestion", "olap", "clock", "kafka")
SUB_A = "11111111-1111-4111-8111-111111111111"
SUB_B = "22222222-2222-4222-8222-222222222222"


@pytest.fixture(scope="module")
def emu():
    with AzureResourceGraphEmulator(seed=2, tls=True) as emulator:
        fleet = {}
        names = emulator.add_vms(SUB_A, "rg-prod-eu", 1500, name_format="eu-{:05d}", public_ips=True,
                                 tags_fn=lambda i: {"Cluster": "prod", "Tier": TIERS[i % 5]})
        fleet.update((n, TIERS[i % 5]) for i, n in enumerate(names))
        names = emulator.add_vms(SUB_B, "rg-prod-us", 200, name_format="us-{:05d}", location="eastus", start=5000,
                                 tags_fn=lambda i: {"Cluster": "prod", "Tier": TIERS[i % 5]})
        fleet.update((n, TIERS[i % 5]) for i, n in zip(range(5000, 5200), names))
        emulator.add_vm(SUB_B, "rg-prod-us", "olap-shard-9", tags={"Cluster": "prod"}, private_ips=("10.9.0.9", "10.9.0.10"))
        emulator.add_vm(SUB_B, "rg-prod-us", "eu-00000", tags={"Cluster": "prod", "Tier": "kafka"})  # name taken in SUB_A
        emulator.add_vm(SUB_B, "rg-prod-us", "stopped-1", tags={"Cluster": "prod", "Tier": "olap"}, power_state="PowerState/deallocated")
        emulator.add_vms(SUB_B, "rg-staging", 30, name_format="stg-{:03d}", tags_fn=lambda i: {"Cluster": "staging"})
        yield emulator, fleet


def config(emulator, **options):
    base = {"plugin": "scratchbird.cluster.azure_vm", "subscriptions": [SUB_A, SUB_B], "auth_source": "managed_identity",
            "resource_manager_endpoint": emulator.url, "cluster_name": "prod"}
    base.update(options)
    return base


def run(emulator, path, check=True, env=None, **extra):
    env = emulator.client_env(base_env()) if env is None else env
    env.update(extra)
    return inventory(path, env=env, check=check)


def test_every_vm_in_its_tier_group(emu, tmp_path):
    emulator, fleet = emu
    emulator.reset_log()
    data, proc = run(emulator, write_config(tmp_path, "prod.azure_vm.yml", config(emulator)))
    hosts = set(data["_meta"]["hostvars"])
    assert len(hosts) == 1702  # 1,700 + olap-shard-9 + the second eu-00000; not stopped-1, not staging
    for tier, group in GROUP_OF.items():
        assert {n for n, t in fleet.items() if t == tier} <= hosts_of(data, group)
    assert "olap-shard-9" in hosts_of(data, "olap_shards")
    assert "is taken by another instance" in proc.stderr
    one = plain(data["_meta"]["hostvars"]["eu-00007"])
    assert one["ansible_host"] == one["private_ip"] and one["public_ip"]
    assert one["azure_tags"] == {"Cluster": "prod", "Tier": "olap"} and one["scratchbird_tier"] == "olap_shards"
    assert one["resource_group"] == "rg-prod-eu"
    nine = plain(data["_meta"]["hostvars"]["olap-shard-9"])
    assert nine["private_ip"] == "10.9.0.9" and nine["public_ip"] is None
    # One query per page of 1,000 rows: SUB_A has 4,500 rows (VM, NIC, public IP each), SUB_B 465.
    assert emulator.calls["resources"] == 5 + 1
    assert emulator.egress == []


def test_throttling_and_errors_are_retried_without_losing_hosts(emu, tmp_path):
    emulator, _proc = emu
    emulator.reset_log()
    emulator.inject(429, count=3, retry_after=1, route="resources")
    emulator.inject(500, count=1, route="resources")
    emulator.inject(503, count=1, route="resources")
    data, _proc = run(emulator, write_config(tmp_path, "t.azure_vm.yml", config(emulator, retry_base_delay=0.05)))
    assert len(data["_meta"]["hostvars"]) == 1702
    assert emulator.calls["resources"] == 6 + 5
    assert not emulator.pending_faults


def test_resource_groups_states_and_extra_vars(emu, tmp_path):
    emulator, _proc = emu
    data, _proc = run(emulator, write_config(tmp_path, "f.azure_vm.yml", config(
        emulator, subscriptions=[SUB_B], resource_groups=["RG-PROD-US"], states=[], hostvars=["power_state", "private_ips"],
        keyed_groups=[{"key": "power_state", "prefix": "power"}])))
    hosts = set(data["_meta"]["hostvars"])
    assert len(hosts) == 203 and hosts_of(data, "power_deallocated") == {"stopped-1"}
    assert plain(data["_meta"]["hostvars"]["olap-shard-9"])["private_ips"] == ["10.9.0.9", "10.9.0.10"]


@pytest.mark.parametrize("options, env_change, message", [
    ({"auth_source": "environment"}, {}, "cannot get an Azure access token with auth_source=environment"),
    ({}, {"IDENTITY_HEADER": "wrong"}, "cannot get an Azure access token with auth_source=managed_identity"),
    ({"auth_source": "credential"}, {}, "auth_source=credential needs client_id, secret, tenant"),
    ({"subscriptions": ["33333333-3333-4333-8333-333333333333"]}, {}, "HTTP 400"),
    ({"resource_manager_endpoint": "https://127.0.0.1:9", "retries": 1, "retry_base_delay": 0.01}, {}, "https://127.0.0.1:9"),
    ({"subscription": SUB_A}, {}, "unknown option 'subscription' (did you mean 'subscriptions'"),
    ({"subscriptions": ["prod-subscription"]}, {}, "subscriptions: prod-subscription is not a subscription id"),
], ids=["no-environment-credentials", "wrong-identity-header", "incomplete-principal", "unknown-subscription", "unreachable", "unknown-option",
        "not-a-subscription-id"])
def test_bad_input_fails_clearly(emu, tmp_path, options, env_change, message):
    emulator, _proc = emu
    emulator.reset_log()
    cfg = config(emulator)
    cfg.update(options)
    env = emulator.client_env(base_env(ANSIBLE_INVENTORY_ENABLED="scratchbird.cluster.azure_vm"))
    env.update(env_change)
    _data, proc = run(emulator, write_config(tmp_path, "bad.azure_vm.yml", cfg), check=False, env=env)
    assert proc.returncode != 0
    assert message in proc.stderr, proc.stderr[-3000:]
    assert emulator.egress == []
