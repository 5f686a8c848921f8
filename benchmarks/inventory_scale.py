#!/usr/bin/env python3
"""Inventory plugins at scale: scratchbird.cluster.aws_ec2 against amazon.aws.aws_ec2 on one moto
server (2,500 instances in 1 region; 10,000 across 4 regions), and gcp_compute on the Compute API
emulator (2,500 in 1 project; 10,000 across 4 projects) against google.cloud.gcp_compute, which
reaches the emulator through a proxy because its API URL is fixed.

Times `ansible-inventory --list` for each plugin with equivalent configuration (tier keyed
groups, instance ids as hostnames, no state filter), checks that both list the same hosts with
the same tier membership, times the raw paginated API calls alone (no Ansible) as the floor, and
a cached re-run of ours. The anchors come from the `ansible` package on the controller's own
Python index (a benchmark-only download, cached in .cache/bench). Targets: ours <= 0.5x the
anchor at 2,500 / 1 region, <= 0.45x at 10,000 / 4 regions, overhead over the floor <= 15%,
cached re-run <= 1.5 s. Prints every figure; exits 1 when a target is missed.

Run: `.venv/bin/python benchmarks/inventory_scale.py [--runs N]`.
"""
import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests" / "integration"))
sys.path.insert(0, str(ROOT))
from inventory_run import BIN, TIERS, MotoServer, base_env, plain, seed_fleet, write_config  # noqa: E402
from tests.emulators.gcp_compute import GcpComputeEmulator  # noqa: E402

ANSIBLE_PACKAGE = "ansible==12.3.0"  # ships amazon.aws and google.cloud for ansible-core 2.19
ANCHORS = ROOT / ".cache" / "bench" / "anchors"
TARGETS = {"ratio_1_region": 0.5, "ratio_4_regions": 0.45, "overhead": 0.15, "cached_s": 1.5}
AWS_SCENARIOS = [("2,500 / 1 region", ["us-east-1"], 2500), ("10,000 / 4 regions", ["eu-west-1", "us-west-2", "ap-northeast-1", "eu-central-1"], 2500)]


def install_anchors():
    """amazon.aws and google.cloud from the ansible package, unpacked into .cache/bench/anchors."""
    marker = ANCHORS / ANSIBLE_PACKAGE
    if marker.exists():
        return ANCHORS
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run([str(BIN / "pip"), "download", "-q", "--no-deps", ANSIBLE_PACKAGE, "-d", tmp], check=True)
        wheel = next(Path(tmp).glob("ansible-*.whl"))
        with zipfile.ZipFile(wheel) as archive:
            members = [m for m in archive.namelist() if m.startswith(("ansible_collections/amazon/aws/", "ansible_collections/google/cloud/"))]
            archive.extractall(ANCHORS, members)
    marker.touch()
    return ANCHORS


def timed_inventory(path, env):
    started = time.monotonic()
    proc = subprocess.run([str(BIN / "ansible-inventory"), "-i", str(path), "--list"], capture_output=True, text=True, env=env, check=False)
    elapsed = time.monotonic() - started
    if proc.returncode:
        sys.exit(f"ansible-inventory {path} failed:\n{proc.stderr[-3000:]}")
    return elapsed, json.loads(proc.stdout)


def best_of(runs, path, env):
    times, data = [], None
    for _ in range(runs):
        elapsed, data = timed_inventory(path, env)
        times.append(elapsed)
    return min(times), statistics.median(times), data


def tier_membership(data, prefix="tier_"):
    """{tier: set(hosts)} from the keyed groups both plugins build."""
    return {g[len(prefix):]: set(v.get("hosts", [])) for g, v in data.items() if g.startswith(prefix)}


def ansible_alone(data, tmp, env):
    """ansible-inventory --list on the same hosts, groups and variables served by a script: what
    Ansible itself costs for this inventory, whatever the plugin."""
    static = tmp / "static.json"
    static.write_text(json.dumps(plain(data)))
    script = tmp / "static_inventory.sh"
    script.write_text(f"#!/bin/sh\ncat {static}\n")
    script.chmod(0o755)
    env = dict(env, ANSIBLE_INVENTORY_ENABLED="script")
    return min(timed_inventory(script, env)[0] for _ in range(3))


def aws_floor(server, regions):
    """The raw paginated DescribeInstances calls, region after region, boto3 only."""
    started = time.monotonic()
    count = 0
    for region in regions:
        for page in server.client("ec2", region).get_paginator("describe_instances").paginate():
            count += sum(len(r["Instances"]) for r in page["Reservations"])
    return time.monotonic() - started, count


def report(rows):
    width = max(len(r[0]) for r in rows)
    for name, value in rows:
        print(f"  {name:<{width}}  {value}")


def check(results, value, target, fmt="{:.2f}"):
    ok = value <= target
    results.append(ok)
    return f"{fmt.format(value)} (target <= {fmt.format(target)}) {'PASS' if ok else 'MISS'}"


def bench_aws(runs, tmp, results):
    anchors = install_anchors()
    ours_env = base_env()
    anchor_env = base_env(collections=anchors, ANSIBLE_INVENTORY_ENABLED="amazon.aws.aws_ec2")
    with MotoServer() as server:
        for label, regions, per_region in AWS_SCENARIOS:
            started = time.monotonic()
            expected = {}
            for region in regions:
                expected.update(seed_fleet(server, region, per_region))
            seeded = time.monotonic() - started
            common = {"regions": regions, "endpoint_url": server.url, "aws_access_key_id": "testing", "aws_secret_access_key": "testing"}
            ours = write_config(tmp, "ours.aws_ec2.yml", dict(plugin="scratchbird.cluster.aws_ec2", states=[], hostnames=["instance_id"],
                                                              keyed_groups=[{"key": "aws_tags.Tier", "prefix": "tier"}], **common))
            anchor = write_config(tmp, "anchor.aws_ec2.yml", dict(plugin="amazon.aws.aws_ec2", hostnames=["instance-id"],
                                                                  keyed_groups=[{"key": "tags.Tier", "prefix": "tier"}], **common))
            floor, floor_count = aws_floor(server, regions)
            ours_best, ours_median, ours_data = best_of(runs, ours, ours_env)
            emulator.reset_log()
            anchor_best, anchor_median, anchor_data = best_of(runs, anchor, anchor_env)
            refused = len(emulator.egress)  # google-auth's access-boundary lookups, sent to Google's IAM host
            same_hosts = set(ours_data["_meta"]["hostvars"]) == set(anchor_data["_meta"]["hostvars"]) == set(expected)
            same_tiers = tier_membership(ours_data) == tier_membership(anchor_data)
            ours_groups = {t: {h for h, tier in expected.items() if tier == t} for t in TIERS}
            same_tiers = same_tiers and ours_groups == tier_membership(ours_data)
            results.append(same_hosts and same_tiers and floor_count == len(expected))
            cached = write_config(tmp, "cached.aws_ec2.yml", dict(
                plugin="scratchbird.cluster.aws_ec2", states=[], hostnames=["instance_id"], cache=True, cache_plugin="ansible.builtin.jsonfile",
                cache_connection=str(tmp / f"cache-{len(regions)}"), keyed_groups=[{"key": "aws_tags.Tier", "prefix": "tier"}], **common))
            timed_inventory(cached, ours_env)
            cached_best, _, cached_data = best_of(max(runs, 3), cached, ours_env)
            results.append(cached_data == ours_data)
            alone = ansible_alone(ours_data, tmp, ours_env)
            target = TARGETS["ratio_1_region"] if len(regions) == 1 else TARGETS["ratio_4_regions"]
            print(f"\nAWS EC2, {label}: {len(expected)} instances (seeded in {seeded:.1f} s), best of {runs} runs")
            report([
                ("floor: raw paginated DescribeInstances (boto3)", f"{floor:.2f} s"),
                ("scratchbird.cluster.aws_ec2", f"{ours_best:.2f} s (median {ours_median:.2f} s)"),
                ("amazon.aws.aws_ec2", f"{anchor_best:.2f} s (median {anchor_median:.2f} s)"),
                ("ratio ours / anchor", check(results, ours_best / anchor_best, target)),
                ("overhead ours over floor", check(results, ours_best / floor - 1, TARGETS["overhead"], "{:.0%}")),
                ("overhead anchor over floor", f"{anchor_best / floor - 1:.0%}"),
                ("cached re-run of ours", check(results, cached_best, TARGETS["cached_s"], "{:.2f} s")),
                ("ansible-inventory alone, same hosts and vars (script)", f"{alone:.2f} s"),
                ("same hosts, same tier membership", "yes" if same_hosts and same_tiers else "NO"),
            ])


def gcp_floor(emulator, projects, token):
    import requests
    started = time.monotonic()
    count = 0
    session = requests.Session()
    for project in projects:
        params = {"maxResults": 500}
        while True:
            page = session.get(f"{emulator.url}/compute/v1/projects/{project}/aggregated/instances", params=params,
                               headers={"Authorization": f"Bearer {token}"}, timeout=60).json()
            count += sum(len(v.get("instances", [])) for v in page.get("items", {}).values())
            if not page.get("nextPageToken"):
                break
            params["pageToken"] = page["nextPageToken"]
    return time.monotonic() - started, count


def bench_gcp(runs, tmp, results):
    anchors = install_anchors()
    with GcpComputeEmulator(seed=3) as emulator:
        emulator.latency = 0.05  # a little network per call, as a real API has
        # google.cloud.gcp_compute has its API URL fixed: it reaches the emulator through the
        # proxy of client_env(), which answers HTTPS for that host with a certificate it trusts.
        emulator.intercept("www.googleapis.com")
        key = emulator.service_account_file(str(tmp / "key.json"), "sb-bench-0")
        token = emulator.issue_token("inventory@sb-bench-0.iam.gserviceaccount.com", ["https://www.googleapis.com/auth/compute.readonly"])
        for label, projects in (("2,500 / 1 project", ["sb-bench-0"]), ("10,000 / 4 projects", ["sb-bench-1", "sb-bench-2", "sb-bench-3", "sb-bench-4"])):
            for project in projects:
                for zone in ("europe-west1-b", "europe-west1-c", "us-central1-a", "us-central1-b", "asia-east1-a"):
                    emulator.add_instances(project, zone, 500, name_format=project + "-" + zone + "-{:04d}",
                                           labels_fn=lambda i: {"cluster": "prod", "tier": TIERS[i % 5]})
            expected = 2500 * len(projects)
            ours = write_config(tmp, "ours.gcp_compute.yml", {
                "plugin": "scratchbird.cluster.gcp_compute", "projects": projects, "auth_kind": "serviceaccount", "service_account_file": key,
                "compute_endpoint": emulator.url + "/compute/v1", "states": [], "keyed_groups": [{"key": "labels.tier", "prefix": "tier"}]})
            anchor = write_config(tmp, "anchor.gcp_compute.yml", {
                "plugin": "google.cloud.gcp_compute", "projects": projects, "auth_kind": "serviceaccount", "service_account_file": key,
                "hostnames": ["name"], "keyed_groups": [{"key": "labels.tier", "prefix": "tier"}]})
            floor, floor_count = gcp_floor(emulator, projects, token)
            env = emulator.client_env(base_env())
            emulator.reset_log()
            ours_best, ours_median, data = best_of(runs, ours, env)
            results.append(len(data["_meta"]["hostvars"]) == floor_count == expected and not emulator.egress)
            alone = ansible_alone(data, tmp, env)
            anchor_env = emulator.client_env(base_env(collections=anchors, ANSIBLE_INVENTORY_ENABLED="google.cloud.gcp_compute"))
            emulator.reset_log()
            anchor_best, anchor_median, anchor_data = best_of(runs, anchor, anchor_env)
            refused = len(emulator.egress)  # google-auth's access-boundary lookups, sent to Google's IAM host
            same = set(data["_meta"]["hostvars"]) == set(anchor_data["_meta"]["hostvars"]) and tier_membership(data) == tier_membership(anchor_data)
            results.append(same)
            print(f"\nGCP Compute, {label}: {expected} instances, 50 ms per call, best of {runs} runs")
            report([
                ("floor: raw paginated aggregatedList (requests)", f"{floor:.2f} s"),
                ("scratchbird.cluster.gcp_compute", f"{ours_best:.2f} s (median {ours_median:.2f} s)"),
                ("overhead ours over floor", f"{ours_best / floor - 1:.0%}"),
                ("ansible-inventory alone, same hosts and vars (script)", f"{alone:.2f} s"),
                ("google.cloud.gcp_compute (through the proxy)", f"{anchor_best:.2f} s (median {anchor_median:.2f} s)"),
                ("ratio ours / anchor", f"{ours_best / anchor_best:.2f}"),
                ("anchor's requests to other Google hosts (refused by the trap)", str(refused)),
                ("overhead anchor over floor", f"{anchor_best / floor - 1:.0%}"),
                ("all instances listed, same hosts and tiers as the anchor", "yes" if same and len(data["_meta"]["hostvars"]) == expected else "NO"),
            ])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=2, help="timed runs per plugin and scenario (best is compared)")
    parser.add_argument("--only", choices=["aws", "gcp"], help="one cloud only")
    args = parser.parse_args()
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        if args.only in (None, "aws"):
            bench_aws(args.runs, Path(tmp), results)
        if args.only in (None, "gcp"):
            bench_gcp(args.runs, Path(tmp), results)
    print("\ninventory_scale: all targets met" if all(results) else "\ninventory_scale: a target was missed (see MISS above)")
    return 0 if all(results) else 1


if __name__ == "__main__":
    sys.exit(main())
