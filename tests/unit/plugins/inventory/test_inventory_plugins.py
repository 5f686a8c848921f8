# Copyright: scratchbird.cluster contributors
# Apache License 2.0 (see LICENSE)
"""The pure functions of the inventory plugins: API answers to host records (no cloud library needed)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
from datetime import datetime, timedelta, timezone

import pytest

from ansible_collections.scratchbird.cluster.plugins.inventory import aws_ec2, azure_vm, consul, gcp_compute
from ansible_collections.scratchbird.cluster.plugins.plugin_utils.inventory import DEFAULT_NAME_PATTERNS, DEFAULT_TIER_MAP, detect_tier


def tier_of(record, tier_key="Tier"):
    return detect_tier(record["name"], record["labels"], tier_key, dict(DEFAULT_TIER_MAP), DEFAULT_NAME_PATTERNS)


# --- aws_ec2 ---------------------------------------------------------------------------------

EC2_INSTANCE = {
    "InstanceId": "i-0a1b2c3d4e5f60718",
    "InstanceType": "m6i.large",
    "ImageId": "ami-0123456789abcdef0",
    "State": {"Code": 16, "Name": "running"},
    "PrivateIpAddress": "10.0.1.5",
    "PrivateDnsName": "ip-10-0-1-5.eu-west-1.compute.internal",
    "PublicDnsName": "",
    "VpcId": "vpc-0aa",
    "SubnetId": "subnet-0bb",
    "SecurityGroups": [{"GroupId": "sg-01", "GroupName": "cluster"}, {"GroupId": "sg-02", "GroupName": "ssh"}],
    "Placement": {"AvailabilityZone": "eu-west-1b", "GroupName": "", "Tenancy": "default"},
    "Architecture": "x86_64",
    "LaunchTime": datetime(2024, 5, 1, 12, 30, 5, tzinfo=timezone.utc),
    "Tags": [{"Key": "Name", "Value": "db-7"}, {"Key": "Tier", "Value": "transaction"}, {"Key": "Cluster", "Value": "prod"}],
    "NetworkInterfaces": [
        {"NetworkInterfaceId": "eni-01", "PrivateIpAddress": "10.0.1.5", "Ipv6Addresses": []},
        {"NetworkInterfaceId": "eni-02", "PrivateIpAddress": "10.0.2.5", "Ipv6Addresses": [{"Ipv6Address": "2a05:d018::5"}]},
    ],
}


def test_aws_instance_record():
    record = aws_ec2.instance_record(EC2_INSTANCE, "eu-west-1")
    tags = {"Name": "db-7", "Tier": "transaction", "Cluster": "prod"}
    assert record == {
        "id": "i-0a1b2c3d4e5f60718",
        "name": "db-7",
        "labels": tags,
        "vars": {
            "instance_id": "i-0a1b2c3d4e5f60718",
            "instance_type": "m6i.large",
            "image_id": "ami-0123456789abcdef0",
            "state": "running",
            "private_ip_address": "10.0.1.5",
            "public_ip_address": None,
            "private_dns_name": "ip-10-0-1-5.eu-west-1.compute.internal",
            "public_dns_name": None,
            "ipv6_address": "2a05:d018::5",
            "vpc_id": "vpc-0aa",
            "subnet_id": "subnet-0bb",
            "security_group_ids": ["sg-01", "sg-02"],
            "placement": {"region": "eu-west-1", "availability_zone": "eu-west-1b"},
            "architecture": "x86_64",
            "launch_time": "2024-05-01T12:30:05+00:00",
            "aws_tags": tags,
        },
    }
    assert json.loads(json.dumps(record)) == record  # fit for a JSON cache
    assert tier_of(record) == "tx_engines"


def test_aws_instance_record_minimal_item():
    record = aws_ec2.instance_record({"InstanceId": "i-1", "LaunchTime": datetime(2024, 1, 2, 3, 4, 5, tzinfo=timezone(timedelta(hours=2)))}, "us-east-2")
    assert record["id"] == "i-1" and record["name"] is None and record["labels"] == {}
    hostvars = record["vars"]
    assert hostvars["launch_time"] == "2024-01-02T03:04:05+02:00"
    assert hostvars["placement"] == {"region": "us-east-2", "availability_zone": None}
    assert hostvars["security_group_ids"] == [] and hostvars["aws_tags"] == {}
    assert [hostvars[k] for k in ("state", "private_ip_address", "public_ip_address", "private_dns_name", "ipv6_address")] == [None] * 5


def test_aws_instance_record_keeps_public_address_and_string_launch_time():
    item = dict(EC2_INSTANCE, PublicIpAddress="203.0.113.9", PublicDnsName="ec2-203-0-113-9.compute.amazonaws.com",
                LaunchTime="2024-05-01T12:30:05Z", NetworkInterfaces=[], Tags=[])
    hostvars = aws_ec2.instance_record(item, "eu-west-1")["vars"]
    assert hostvars["public_ip_address"] == "203.0.113.9"
    assert hostvars["public_dns_name"] == "ec2-203-0-113-9.compute.amazonaws.com"
    assert hostvars["launch_time"] == "2024-05-01T12:30:05Z"
    assert hostvars["ipv6_address"] is None


# --- gcp_compute -----------------------------------------------------------------------------

API = "https://www.googleapis.com/compute/v1/projects/sb-prod-eu"
GCE_INSTANCE = {
    "kind": "compute#instance",
    "id": "4567890123456789012",
    "creationTimestamp": "2024-05-01T05:30:00.000-07:00",
    "name": "olap-shard-1",
    "machineType": API + "/zones/europe-west1-b/machineTypes/n2-standard-8",
    "status": "RUNNING",
    "zone": API + "/zones/europe-west1-b",
    "networkInterfaces": [
        {"network": API + "/global/networks/default", "networkIP": "10.132.0.7", "name": "nic0",
         "accessConfigs": [{"type": "ONE_TO_ONE_NAT", "name": "External NAT"},
                           {"type": "ONE_TO_ONE_NAT", "name": "second", "natIP": "34.76.1.2"}]},
        {"networkIP": "10.10.0.7", "name": "nic1", "accessConfigs": [{"natIP": "34.76.9.9"}]},
    ],
    "labels": {"tier": "olap", "cluster": "prod"},
    "tags": {"items": ["ssh", "olap"], "fingerprint": "42WmSpB8rSM="},
    "selfLink": API + "/zones/europe-west1-b/instances/olap-shard-1",
}


def test_gcp_instance_record():
    record = gcp_compute.instance_record(GCE_INSTANCE, "sb-prod-eu")
    assert record == {
        "id": API + "/zones/europe-west1-b/instances/olap-shard-1",
        "name": "olap-shard-1",
        "labels": {"tier": "olap", "cluster": "prod"},
        "vars": {
            "instance_name": "olap-shard-1",
            "id": "4567890123456789012",
            "project": "sb-prod-eu",
            "zone": "europe-west1-b",
            "region": "europe-west1",
            "status": "RUNNING",
            "machine_type": "n2-standard-8",
            "network_ip": "10.132.0.7",
            "nat_ip": "34.76.1.2",  # the first access config with an address, of the first interface
            "labels": {"tier": "olap", "cluster": "prod"},
            "network_tags": ["ssh", "olap"],
            "self_link": API + "/zones/europe-west1-b/instances/olap-shard-1",
            "creation_timestamp": "2024-05-01T05:30:00.000-07:00",
        },
    }
    assert tier_of(record) == "olap_shards"  # the lower-case GCP label matches the Tier key


def test_gcp_instance_record_without_access_configs_labels_or_self_link():
    item = {"name": "tx-engine-2", "zone": API + "/zones/us-central1-a", "networkInterfaces": [{"networkIP": "10.128.0.2"}]}
    record = gcp_compute.instance_record(item, "sb-prod-us")
    assert record["id"] == "sb-prod-us/us-central1-a/tx-engine-2"
    assert record["labels"] == {}
    hostvars = record["vars"]
    assert hostvars["network_ip"] == "10.128.0.2" and hostvars["nat_ip"] is None
    assert hostvars["labels"] == {} and hostvars["network_tags"] == [] and hostvars["machine_type"] is None
    assert tier_of(record) == "tx_engines"


def test_gcp_instance_record_without_interfaces():
    hostvars = gcp_compute.instance_record({"name": "bare", "labels": None, "tags": {}}, "sb-prod-us")["vars"]
    assert hostvars["network_ip"] is None and hostvars["nat_ip"] is None
    assert hostvars["zone"] is None and hostvars["region"] is None and hostvars["labels"] == {}


@pytest.mark.parametrize("zone, region", [
    ("us-central1-a", "us-central1"),
    ("europe-west4-c", "europe-west4"),
    ("northamerica-northeast2-b", "northamerica-northeast2"),
])
def test_gcp_region_from_zone(zone, region):
    record = gcp_compute.instance_record({"name": "n", "zone": "projects/p/zones/" + zone}, "p")
    assert (record["vars"]["zone"], record["vars"]["region"]) == (zone, region)


# --- azure_vm --------------------------------------------------------------------------------

SUB = "/subscriptions/00000000-0000-0000-0000-000000000001/resourceGroups/%s/providers/"


def vm(name, nic_ids, group="sb-prod", power="PowerState/running", tags=None):
    return {"id": SUB % group + "Microsoft.Compute/virtualMachines/" + name, "name": name, "type": "Microsoft.Compute/virtualMachines",
            "location": "westeurope", "resourceGroup": group, "subscriptionId": "00000000-0000-0000-0000-000000000001",
            "tags": tags, "properties": {
                "hardwareProfile": {"vmSize": "Standard_D4s_v5"}, "osProfile": {"computerName": name + "-os"},
                "networkProfile": {"networkInterfaces": [{"id": i} for i in nic_ids]},
                "extended": {"instanceView": {"powerState": {"code": power}}} if power else {}}}


def nic(name, *configs):
    return {"id": SUB % "sb-prod" + "Microsoft.Network/networkInterfaces/" + name, "name": name,
            "type": "microsoft.network/networkinterfaces",
            "properties": {"ipConfigurations": [{"name": "ip%d" % n, "properties": dict(c)} for n, c in enumerate(configs)]}}


def pip(name, address):
    properties = {"ipAddress": address} if address else {"publicIPAllocationMethod": "Dynamic"}
    return {"id": SUB % "sb-prod" + "Microsoft.Network/publicIPAddresses/" + name, "name": name,
            "type": "Microsoft.Network/PublicIPAddresses", "properties": properties}


def ref(row):
    """The id as another resource refers to it: Azure's references do not keep the case."""
    return row["id"].replace("resourceGroups/sb-prod", "resourceGroups/SB-PROD").upper()


PIP1 = pip("tx-1-pip", "20.1.2.3")
PIP_DYNAMIC = pip("olap-1-pip", None)
NIC1 = nic("tx-1-nic1", {"privateIPAddress": "10.1.0.4", "publicIPAddress": {"id": ref(PIP1)}})
NIC2 = nic("tx-1-nic2", {"privateIPAddress": "10.1.1.4"}, {"privateIPAddress": "10.1.1.5", "publicIPAddress": None})
NIC3 = nic("olap-1-nic", {"privateIPAddress": "10.1.0.9", "publicIPAddress": {"id": ref(PIP_DYNAMIC)}})
VM_TX = vm("tx-1", [ref(NIC1), NIC2["id"]], tags={"Tier": "transaction", "Cluster": "prod"})
VM_OLAP = vm("olap-1", [ref(NIC3)], power="PowerState/deallocated", tags=None)
VM_ORPHAN = vm("kafka-1", [SUB % "sb-prod" + "Microsoft.Network/networkInterfaces/gone"], group="SB-Other", power=None)
DISK = {"id": SUB % "sb-prod" + "Microsoft.Compute/disks/tx-1-os", "name": "tx-1-os", "type": "microsoft.compute/disks", "properties": {}}


def test_azure_vm_records_join_nics_and_public_ips_in_any_order():
    rows = [NIC2, VM_TX, PIP1, DISK, VM_OLAP, NIC1, PIP_DYNAMIC, VM_ORPHAN, NIC3]
    records = azure_vm.vm_records(rows)
    assert [r["name"] for r in records] == ["tx-1", "olap-1", "kafka-1"]
    tx, olap, orphan = records
    assert tx["id"] == VM_TX["id"] and tx["labels"] == {"Tier": "transaction", "Cluster": "prod"}
    assert tx["vars"] == {
        "vm_name": "tx-1",
        "id": VM_TX["id"],
        "subscription_id": "00000000-0000-0000-0000-000000000001",
        "resource_group": "sb-prod",
        "location": "westeurope",
        "vm_size": "Standard_D4s_v5",
        "computer_name": "tx-1-os",
        "power_state": "running",
        "private_ip": "10.1.0.4",
        "private_ips": ["10.1.0.4", "10.1.1.4", "10.1.1.5"],
        "public_ip": "20.1.2.3",
        "public_ips": ["20.1.2.3"],
        "azure_tags": {"Tier": "transaction", "Cluster": "prod"},
    }
    assert olap["labels"] == {} and olap["vars"]["power_state"] == "deallocated"
    assert (olap["vars"]["private_ips"], olap["vars"]["public_ip"], olap["vars"]["public_ips"]) == (["10.1.0.9"], None, [])
    assert orphan["vars"]["resource_group"] == "SB-Other" and orphan["vars"]["power_state"] is None
    assert (orphan["vars"]["private_ip"], orphan["vars"]["private_ips"], orphan["vars"]["public_ips"]) == (None, [], [])
    assert [tier_of(r) for r in records] == ["tx_engines", "olap_shards", "kafka_brokers"]


def test_azure_vm_records_do_not_depend_on_row_order():
    rows = [NIC2, VM_TX, PIP1, DISK, VM_OLAP, NIC1, PIP_DYNAMIC, VM_ORPHAN, NIC3]
    by_id = {r["id"]: r for r in azure_vm.vm_records(rows)}
    assert {r["id"]: r for r in azure_vm.vm_records(list(reversed(rows)))} == by_id


def test_azure_vm_records_of_nothing():
    assert azure_vm.vm_records([]) == []
    assert azure_vm.vm_records([NIC1, PIP1]) == []


# --- consul ----------------------------------------------------------------------------------

def entry(node, service, tags=(), node_meta=None, service_meta=None, address="10.2.0.1", service_address="", dc="dc1", port=5433):
    return {
        "Node": {"ID": "uuid-" + node, "Node": node, "Address": address, "Datacenter": dc, "Meta": node_meta},
        "Service": {"ID": "%s-%s" % (service, node), "Service": service, "Tags": list(tags), "Address": service_address,
                    "Port": port, "Meta": service_meta},
        "Checks": [{"CheckID": "serfHealth", "Status": "passing"}],
    }


def test_consul_service_records():
    entries = [entry("olap-1", "olap", tags=["primary", "shard=1", "Tier=kafka"], port=5433,
                     node_meta={"Tier": "olap", "Cluster": "prod", "rack": "r1"}, service_meta={"Tier": "clock", "version": "1.2"})]
    assert consul.service_records(entries) == [{
        "id": "dc1/olap-1",
        "name": "olap-1",
        # node meta, then service meta, then key=value tags: the later wins
        "labels": {"Tier": "kafka", "Cluster": "prod", "rack": "r1", "version": "1.2", "shard": "1"},
        "groups": ["olap", "olap_primary", "olap_shard=1", "olap_Tier=kafka"],
        "vars": {
            "consul_node": "olap-1",
            "consul_address": "10.2.0.1",
            "consul_datacenter": "dc1",
            "consul_node_meta": {"Tier": "olap", "Cluster": "prod", "rack": "r1"},
            "consul_services": {"olap": {"id": "olap-olap-1", "address": "10.2.0.1", "port": 5433,
                                         "tags": ["primary", "shard=1", "Tier=kafka"], "meta": {"Tier": "clock", "version": "1.2"}}},
        },
    }]


def test_consul_service_records_without_meta_or_tags():
    (record,) = consul.service_records([entry("web-1", "web", service_address="10.9.9.9")])
    assert record["labels"] == {} and record["groups"] == ["web"]
    assert record["vars"]["consul_node_meta"] == {}
    assert record["vars"]["consul_services"]["web"] == {"id": "web-web-1", "address": "10.9.9.9", "port": 5433, "tags": [], "meta": {}}
    assert tier_of(record) is None


def test_consul_merge_nodes_one_host_per_node_with_all_services():
    entries = [
        entry("kafka-1", "kafka", tags=["broker"], node_meta={"Tier": "kafka"}, port=9092),
        entry("kafka-0", "kafka", tags=["broker"], node_meta={"Tier": "kafka"}, address="10.2.0.0", port=9092),
        entry("kafka-1", "node-exporter", tags=["metrics", "broker"], service_meta={"scrape": "true"}, port=9100),
        entry("kafka-1", "kafka", dc="dc2", address="10.3.0.1", port=9092),
    ]
    records = consul.merge_nodes(consul.service_records(entries))
    assert [r["id"] for r in records] == ["dc1/kafka-0", "dc1/kafka-1", "dc2/kafka-1"]
    merged = records[1]
    assert merged["groups"] == ["kafka", "kafka_broker", "node-exporter", "node-exporter_metrics", "node-exporter_broker"]
    assert merged["labels"] == {"Tier": "kafka", "scrape": "true"}
    assert sorted(merged["vars"]["consul_services"]) == ["kafka", "node-exporter"]
    assert merged["vars"]["consul_services"]["node-exporter"]["port"] == 9100
    assert merged["vars"]["consul_services"]["kafka"]["port"] == 9092
    assert records[2]["vars"]["consul_services"].keys() == {"kafka"} and records[2]["vars"]["consul_address"] == "10.3.0.1"
    assert [tier_of(r) for r in records] == ["kafka_brokers", "kafka_brokers", "kafka_brokers"]


def test_consul_merge_nodes_keeps_groups_unique():
    entries = [entry("n1", "a", tags=["x"]), entry("n1", "a", tags=["x"]), entry("n1", "b")]
    (record,) = consul.merge_nodes(consul.service_records(entries))
    assert record["groups"] == ["a", "a_x", "b"]


@pytest.mark.parametrize("plugin, record", [
    (aws_ec2, lambda: aws_ec2.instance_record({"InstanceId": "i-1"}, "eu-west-1")),
    (gcp_compute, lambda: gcp_compute.instance_record({"name": "n", "zone": API + "/zones/europe-west1-b"}, "sb-prod-eu")),
    (azure_vm, lambda: azure_vm.vm_records([{"id": "/x/vm", "name": "vm", "type": "Microsoft.Compute/virtualMachines"}])[0]),
    (consul, lambda: consul.service_records([{"Node": {"Node": "n"}, "Service": {"Service": "s"}}])[0]),
], ids=["aws_ec2", "gcp_compute", "azure_vm", "consul"])
def test_declared_variables_are_the_records_variables(plugin, record):
    assert plugin.InventoryModule.VARIABLES == tuple(record()["vars"])
