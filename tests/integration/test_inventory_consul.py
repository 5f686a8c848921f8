# Copyright: scratchbird.cluster contributors
# Apache License 2.0 (see LICENSE)
"""scratchbird.cluster.consul through ansible-inventory against a real Consul agent (the Debian
package in ../shared/vendor, unpacked once into .cache/consul), in dev mode on loopback ports."""
from __future__ import annotations

import pytest

from consul_agent import MASTER_TOKEN, Agent, wait_leader
from inventory_run import base_env, hosts_of, inventory, plain, write_config


def register(agent, node, address, service, tags=(), meta=None, node_meta=None, status="passing", port=8080, token=None):
    """A node with one service instance and one health check of the given status (catalog API)."""
    import requests
    body = {"Node": node, "Address": address, "NodeMeta": node_meta or {},
            "Service": {"Service": service, "ID": f"{service}-{node}", "Tags": list(tags), "Port": port, "Meta": meta or {}},
            "Check": {"Node": node, "CheckID": f"{service}-{node}-health", "Name": "health", "Status": status, "ServiceID": f"{service}-{node}"}}
    reply = requests.put(f"{agent.url}/v1/catalog/register", json=body, headers={"X-Consul-Token": token} if token else {}, timeout=10)
    assert reply.status_code == 200, reply.text


@pytest.fixture(scope="module")
def agent(tmp_path_factory):
    with Agent(tmp_path_factory.mktemp("consul")) as running:
        client = running.client()
        wait_leader(client)
        client = running
        for i in range(3):
            register(client, f"tx-{i}", f"10.213.0.{20 + i}", "tx-engine", tags=["v1.1.0", "tier=transaction"], meta={"cluster": "prod"})
            register(client, f"tx-{i}", f"10.213.0.{20 + i}", "node-exporter", port=9100, meta={"cluster": "prod"})
        for i in range(2):
            register(client, f"olap-{i}", f"10.213.0.{30 + i}", "olap-shard", meta={"Tier": "olap", "cluster": "prod"})
        register(client, "ingest-0", "10.213.0.40", "ingestion", node_meta={"Tier": "ingestion", "cluster": "prod"})
        register(client, "clock-master-1", "10.213.0.10", "clock-master", meta={"cluster": "prod"})  # tier from its name
        register(client, "tx-9", "10.213.0.29", "tx-engine", tags=["tier=transaction"], meta={"cluster": "prod"}, status="critical")
        register(client, "other-0", "10.213.1.1", "tx-engine", tags=["tier=transaction"], meta={"cluster": "staging"})
        yield running


def config(agent, **options):
    base = {"plugin": "scratchbird.cluster.consul", "url": agent.url}
    base.update(options)
    return base


def test_nodes_grouped_by_service_tag_and_tier(agent, tmp_path):
    data, _proc = inventory(write_config(tmp_path, "c.consul.yml", config(agent, cluster_name="prod", cluster_key="cluster")))
    hosts = set(data["_meta"]["hostvars"])
    assert hosts == {"tx-0", "tx-1", "tx-2", "olap-0", "olap-1", "ingest-0", "clock-master-1"}  # tx-9 failing, other-0 staging
    assert hosts_of(data, "tx_engines") == {"tx-0", "tx-1", "tx-2"}
    assert hosts_of(data, "olap_shards") == {"olap-0", "olap-1"}
    assert hosts_of(data, "ingestion_engines") == {"ingest-0"}
    assert hosts_of(data, "clock_masters") == {"clock-master-1"}
    assert hosts_of(data, "tx_engine") == {"tx-0", "tx-1", "tx-2"}
    assert hosts_of(data, "tx_engine_v1_1_0") == {"tx-0", "tx-1", "tx-2"}
    assert hosts_of(data, "node_exporter") == {"tx-0", "tx-1", "tx-2"}
    tx0 = plain(data["_meta"]["hostvars"]["tx-0"])
    assert tx0["ansible_host"] == "10.213.0.20"
    assert tx0["consul_datacenter"] == "dc-test"
    assert set(tx0["consul_services"]) == {"tx-engine", "node-exporter"}
    assert tx0["consul_services"]["node-exporter"]["port"] == 9100


def test_failing_instances_only_when_asked(agent, tmp_path):
    data, _proc = inventory(write_config(tmp_path, "all.consul.yml", config(agent, passing_only=False, services=["tx-engine"], tag_groups=False)))
    assert set(data["_meta"]["hostvars"]) == {"tx-0", "tx-1", "tx-2", "tx-9", "other-0"}
    assert "tx_engine_v1_1_0" not in data


def test_datacenters(agent, tmp_path):
    data, _proc = inventory(write_config(tmp_path, "dc.consul.yml", config(agent, datacenters=["all"])))
    assert "tx-0" in data["_meta"]["hostvars"]
    _data, proc = inventory(write_config(tmp_path, "dc2.consul.yml", config(agent, datacenters=["dc-nowhere"])), check=False)
    assert proc.returncode != 0 and "datacenters: unknown dc-nowhere (the catalog knows dc-test)" in proc.stderr


def test_unreachable_agent(agent, tmp_path):
    cfg = {"plugin": "scratchbird.cluster.consul", "url": "http://127.0.0.1:9", "retries": 1, "retry_base_delay": 0.01}
    env = base_env(ANSIBLE_INVENTORY_ENABLED="scratchbird.cluster.consul")
    _data, proc = inventory(write_config(tmp_path, "u.consul.yml", cfg), env=env, check=False)
    assert proc.returncode != 0 and "http://127.0.0.1:9" in proc.stderr and "gave up after 1 retries" in proc.stderr


def test_acl_token(tmp_path):
    with Agent(tmp_path, acl=True) as secured:
        wait_leader(secured.client(MASTER_TOKEN))
        register(secured, "tx-0", "10.213.0.20", "tx-engine", tags=["tier=transaction"], token=MASTER_TOKEN)
        env = base_env(ANSIBLE_INVENTORY_ENABLED="scratchbird.cluster.consul")
        _data, proc = inventory(write_config(tmp_path, "n.consul.yml", config(secured, token="not-a-token")), env=env, check=False)
        assert proc.returncode != 0 and "Consul ACL denied" in proc.stderr, proc.stderr[-2000:]
        assert "not-a-token" not in proc.stderr
        data, _proc = inventory(write_config(tmp_path, "t.consul.yml", config(secured)), env=base_env(CONSUL_HTTP_TOKEN=MASTER_TOKEN))
        assert hosts_of(data, "tx_engines") == {"tx-0"}
