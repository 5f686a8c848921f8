# Copyright: scratchbird.cluster contributors
# Apache License 2.0 (see LICENSE)
"""scratchbird.cluster.aws_ec2 through ansible-inventory against moto in server mode (the EC2 and
STS APIs on loopback): several regions, every tier, thousands of instances, duplicates, cache,
assume-role and bad input."""
from __future__ import annotations

import time

import pytest

from inventory_run import (GROUP_OF, MotoServer, base_env, hosts_of, inventory, plain, seed_fleet, write_config)

REGIONS = ("eu-west-1", "us-east-1", "ap-southeast-2")


@pytest.fixture(scope="module")
def moto():
    with MotoServer() as server:
        fleet = {}
        fleet.update(seed_fleet(server, "eu-west-1", 1500))
        fleet.update(seed_fleet(server, "us-east-1", 500))
        # Named like the guide's hosts and untagged: the tier comes from the Name pattern.
        fleet.update(seed_fleet(server, "ap-southeast-2", 10, per_reservation=1, name_format="tx-engine-{i}", tier_of=lambda i: None))
        # Another cluster in the same account: filtered out by cluster_name.
        seed_fleet(server, "us-east-1", 20, cluster="staging")
        yield server, fleet


def config(server, **options):
    base = {"plugin": "scratchbird.cluster.aws_ec2", "regions": list(REGIONS), "endpoint_url": server.url,
            "aws_access_key_id": "testing", "aws_secret_access_key": "testing", "cluster_name": "prod",
            "hostnames": ["instance_id"]}
    base.update(options)
    return base


def test_every_instance_of_the_cluster_in_its_tier_group(moto, tmp_path):
    server, fleet = moto
    data, _proc = inventory(write_config(tmp_path, "prod.aws_ec2.yml", config(server)))
    assert set(data["_meta"]["hostvars"]) == set(fleet)  # staging's 20 are not there
    assert len(fleet) == 2010
    for tier, group in GROUP_OF.items():
        expected = {i for i, t in fleet.items() if t == tier}
        if tier == "transaction":
            expected |= {i for i, t in fleet.items() if t is None}  # tx-engine-* names
        assert hosts_of(data, group) == expected, group
    some = next(i for i, t in fleet.items() if t == "olap")
    hostvars = plain(data["_meta"]["hostvars"][some])
    assert hostvars["scratchbird_tier"] == "olap_shards"
    assert hostvars["ansible_host"] == hostvars["private_ip_address"]
    assert hostvars["placement"]["region"] in REGIONS
    assert hostvars["aws_tags"] == {"Cluster": "prod", "Tier": "olap"}
    assert "image_id" not in hostvars  # not in the default hostvars


def test_constructed_options_and_hostvars(moto, tmp_path):
    server, fleet = moto
    data, _proc = inventory(write_config(tmp_path, "c.aws_ec2.yml", config(
        server, regions=["us-east-1"], hostvars=["instance_id", "image_id"],
        keyed_groups=[{"key": "aws_tags.Tier", "prefix": "tier"}, {"key": "placement.region", "prefix": "region"}],
        groups={"big": "instance_type == 't3.small'"},
        compose={"zone": "placement.availability_zone", "label": "'node-' + instance_id"})))
    east = set(data["_meta"]["hostvars"])
    assert len(east) == 500
    assert hosts_of(data, "region_us_east_1") == east == hosts_of(data, "big")
    assert sum(len(hosts_of(data, "tier_" + t)) for t in ("transaction", "ingestion", "olap", "clock", "kafka")) == 500
    one = plain(data["_meta"]["hostvars"][sorted(east)[0]])
    assert one["image_id"].startswith("ami-") and one["zone"].startswith("us-east-1")
    assert one["label"] == "node-" + one["instance_id"]
    assert "aws_tags" not in one  # not asked for, yet the keyed group could use it


def test_duplicate_names_never_collapse_hosts(moto, tmp_path):
    server, fleet = moto
    # Every instance of a reservation shares its Name tag: 5 instances, one name.
    data, proc = inventory(write_config(tmp_path, "dup.aws_ec2.yml", config(server, regions=["ap-southeast-2"], hostnames=["tag:Name", "instance_id"])))
    names = set(data["_meta"]["hostvars"])
    assert len(names) == 10
    dup_server = MotoServer()
    with dup_server:
        seed_fleet(dup_server, "eu-west-1", 6, per_reservation=3, name_format="olap-{i}")
        path = write_config(tmp_path, "dup2.aws_ec2.yml", config(dup_server, regions=["eu-west-1"], hostnames=["tag:Name", "private_dns_name"]))
        data, proc = inventory(path)
        assert len(data["_meta"]["hostvars"]) == 6
        assert {"olap-0", "olap-3"} <= set(data["_meta"]["hostvars"])
        assert "is taken by another instance" in proc.stderr
        path = write_config(tmp_path, "dup3.aws_ec2.yml", config(dup_server, regions=["eu-west-1"], hostnames=["tag:Name"], hostname_duplicates="error"))
        _data, proc = inventory(path, check=False)
        assert proc.returncode != 0 and "hostname 'olap-0' is shared by i-" in proc.stderr


def test_cache_serves_a_rerun_without_the_api(moto, tmp_path):
    server, fleet = moto
    cache = tmp_path / "cache"
    cfg = config(server, regions=["us-east-1"], cache=True, cache_plugin="ansible.builtin.jsonfile", cache_connection=str(cache), cache_timeout=600)
    path = write_config(tmp_path, "cached.aws_ec2.yml", cfg)
    first, _proc = inventory(path)
    assert list(cache.iterdir())
    # The endpoint now points nowhere: only the cache can answer.
    cfg["endpoint_url"] = "http://127.0.0.1:9"
    path.write_text(path.read_text().replace(server.url, "http://127.0.0.1:9"))
    started = time.monotonic()
    second, _proc = inventory(path)
    assert second == first
    assert time.monotonic() - started < 30


def test_assume_role(moto, tmp_path):
    server, fleet = moto
    data, _proc = inventory(write_config(tmp_path, "role.aws_ec2.yml", config(
        server, regions=["us-east-1"], assume_role_arn="arn:aws:iam::123456789012:role/inventory")))
    assert len(data["_meta"]["hostvars"]) == 500


def test_profile_from_the_shared_credentials_file(moto, tmp_path):
    server, fleet = moto
    (tmp_path / "credentials").write_text("[inventory]\naws_access_key_id = testing\naws_secret_access_key = testing\n")
    cfg = config(server, regions=["us-east-1"], profile="inventory")
    del cfg["aws_access_key_id"], cfg["aws_secret_access_key"]
    env = base_env(AWS_SHARED_CREDENTIALS_FILE=str(tmp_path / "credentials"), AWS_CONFIG_FILE=str(tmp_path / "config"))
    data, _proc = inventory(write_config(tmp_path, "p.aws_ec2.yml", cfg), env=env)
    assert len(data["_meta"]["hostvars"]) == 500
    cfg["profile"] = "nobody"
    _data, proc = inventory(write_config(tmp_path, "p2.aws_ec2.yml", cfg), env=env, check=False)
    assert proc.returncode != 0 and "profile: The config profile (nobody) could not be found" in proc.stderr


def test_states_filter(moto, tmp_path):
    server, fleet = moto
    stop_server = MotoServer()
    with stop_server:
        ids = list(seed_fleet(stop_server, "eu-west-1", 4, per_reservation=4))
        stop_server.client("ec2", "eu-west-1").stop_instances(InstanceIds=ids[:1])
        data, _proc = inventory(write_config(tmp_path, "s.aws_ec2.yml", config(stop_server, regions=["eu-west-1"])))
        assert set(data["_meta"]["hostvars"]) == set(ids[1:])
        data, _proc = inventory(write_config(tmp_path, "s2.aws_ec2.yml", config(stop_server, regions=["eu-west-1"], states=[])))
        assert set(data["_meta"]["hostvars"]) == set(ids)


@pytest.mark.parametrize("options, env, message", [
    ({"regions": ["us-est-1"]}, {}, "unknown region 'us-est-1' (did you mean"),
    ({"cluster_nmae": "prod"}, {}, "unknown option 'cluster_nmae' (did you mean 'cluster_name'"),
    ({"aws_access_key_id": None, "aws_secret_access_key": None}, {}, "no AWS credentials"),
    ({"endpoint_url": "http://127.0.0.1:9", "retries": 1, "retry_base_delay": 0.01}, {}, "http://127.0.0.1:9"),
    ({"tier_map": {"transaction": "tx_engine"}}, {}, "tier_map maps to unknown groups (transaction: tx_engine)"),
    ({"hostname_duplicates": "ignore"}, {}, "hostname_duplicates"),
    ({"hostvars": ["instance_typ"]}, {}, "hostvars: 'instance_typ' is not a host variable of scratchbird.cluster.aws_ec2 (did you mean 'instance_type'"),
], ids=["misspelt-region", "unknown-option", "no-credentials", "unreachable-endpoint", "bad-tier-map", "bad-choice", "unknown-hostvar"])
def test_bad_input_fails_clearly(moto, tmp_path, options, env, message):
    server, _proc = moto
    cfg = config(server)
    cfg.update(options)
    cfg = {k: v for k, v in cfg.items() if v is not None}
    env = base_env(ANSIBLE_INVENTORY_ENABLED="scratchbird.cluster.aws_ec2", **env)
    _data, proc = inventory(write_config(tmp_path, "bad.aws_ec2.yml", cfg), env=env, check=False)
    assert proc.returncode != 0
    assert message in proc.stderr, proc.stderr[-3000:]
