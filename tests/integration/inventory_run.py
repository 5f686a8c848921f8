# Copyright: scratchbird.cluster contributors
# Apache License 2.0 (see LICENSE)
"""Helpers of the inventory plugin tests and benchmark: run ansible-inventory on a plugin
config, start servers on free loopback ports, seed moto with an EC2 fleet."""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
TIERS = ("transaction", "ingestion", "olap", "clock", "kafka")
GROUP_OF = {"transaction": "tx_engines", "ingestion": "ingestion_engines", "olap": "olap_shards",
            "clock": "clock_masters", "kafka": "kafka_brokers"}


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_port(port, proc, timeout=30):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode} before listening on {port}")
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listens on 127.0.0.1:{port} after {timeout}s")


def base_env(collections=None, **extra):
    """A clean environment: no cloud credentials from the caller, no instance metadata lookups."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "AZURE_", "GOOGLE_", "GCP_", "CONSUL_", "IDENTITY_"))}
    env.update(
        PATH=f"{BIN}:{env.get('PATH', '')}",
        ANSIBLE_COLLECTIONS_PATH=str(collections or ROOT / ".cache" / "collections"),
        ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"),
        ANSIBLE_INVENTORY_UNPARSED_FAILED="true",
        AWS_EC2_METADATA_DISABLED="true",  # botocore must never ask 169.254.169.254
        GCE_METADATA_HOST="127.0.0.1:9",  # nor google-auth
        GCE_METADATA_IP="127.0.0.1:9",
        NO_GCE_CHECK="True",
    )
    env.update(extra)
    return env


def ansible_env(**extra):
    """For ansible-playbook runs of the module tests: none of the caller's ANSIBLE_* settings or
    service credentials (VAULT_*, CONSUL_*), no colours."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ANSIBLE_", "VAULT_", "CONSUL_"))}
    env.update(
        PATH=f"{BIN}{os.pathsep}{env.get('PATH', '')}",
        ANSIBLE_COLLECTIONS_PATH=str(ROOT / ".cache" / "collections"),
        ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"),
        ANSIBLE_NOCOLOR="1",
        ANSIBLE_FORCE_COLOR="0",
    )
    env.update(extra)
    return env


def inventory(config_path, env=None, args=("--list",), check=True):
    """ansible-inventory on one config file: (parsed JSON or None, completed process)."""
    proc = subprocess.run([str(BIN / "ansible-inventory"), "-i", str(config_path), *args], capture_output=True, text=True,
                          env=env or base_env(), timeout=600, check=False, stdin=subprocess.DEVNULL)
    if check and proc.returncode != 0:
        raise AssertionError(f"ansible-inventory failed ({proc.returncode}):\n{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}")
    data = json.loads(proc.stdout) if proc.returncode == 0 and args[0] == "--list" else None
    return data, proc


def write_config(directory, name, config):
    path = Path(directory) / name
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def hosts_of(data, group):
    """Hosts of a group, through its children, as a set."""
    group_data = data.get(group, {})
    hosts = set(group_data.get("hosts", []))
    for child in group_data.get("children", []):
        hosts |= hosts_of(data, child)
    return hosts


def plain(value):
    """A value of ansible-inventory's JSON without its {'__ansible_unsafe': ...} wrappers."""
    if isinstance(value, dict):
        if set(value) == {"__ansible_unsafe"}:
            return value["__ansible_unsafe"]
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain(v) for v in value]
    return value


class MotoServer:
    """moto in server mode (the AWS API) on a free loopback port."""

    def __init__(self):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc = None

    def __enter__(self):
        self.proc = subprocess.Popen([str(BIN / "moto_server"), "-H", "127.0.0.1", "-p", str(self.port)],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
        wait_port(self.port, self.proc)
        return self

    def __exit__(self, *exc):
        self.proc.terminate()
        self.proc.wait(timeout=30)

    def client(self, service, region):
        import boto3
        return boto3.client(service, region_name=region, endpoint_url=self.url,
                            aws_access_key_id="testing", aws_secret_access_key="testing")


def seed_fleet(server, region, count, per_reservation=5, name_format=None, cluster="prod", tier_of=None, extra_tags=None):
    """Launch count instances in region, tagged Tier (round robin over TIERS unless tier_of(i) says)
    and Cluster; returns {instance_id: tier}. Several instances per reservation, as launches do."""
    ec2 = server.client("ec2", region)
    image = ec2.describe_images(Owners=["amazon"], MaxResults=5)["Images"][0]["ImageId"]
    launched = {}
    for start in range(0, count, per_reservation):
        size = min(per_reservation, count - start)
        tier = tier_of(start) if tier_of else TIERS[(start // per_reservation) % len(TIERS)]
        tags = [{"Key": "Cluster", "Value": cluster}]
        if tier:
            tags.append({"Key": "Tier", "Value": tier})
        if name_format:
            tags.append({"Key": "Name", "Value": name_format.format(i=start, tier=tier)})
        tags.extend(extra_tags or [])
        reply = ec2.run_instances(ImageId=image, MinCount=size, MaxCount=size, InstanceType="t3.small",
                                  TagSpecifications=[{"ResourceType": "instance", "Tags": tags}])
        launched.update((i["InstanceId"], tier) for i in reply["Instances"])
    return launched
