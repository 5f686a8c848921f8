# Copyright: scratchbird.cluster contributors
# Apache License 2.0 (see LICENSE)
"""elbv2_target and s3_upload through ansible-playbook against moto in server mode (the ELBv2, EC2
and S3 APIs on a loopback port), the modules running under this venv's Python as they would for
users. Nothing leaves 127.0.0.1: credentials are dummies, the instance metadata service is off
and the shared AWS files point to nowhere.

What moto 5.2's ELBv2 does, and so what these tests can show:
- a registered running instance is reported ``healthy`` at once, with no load balancer and no
  health check ever run (AWS would say ``initial``, then ``unused``/``Target.NotInUse`` for a
  target group no load balancer uses): present with wait=true returns at the first poll;
- deregistration is immediate - ``unused``/``Target.NotRegistered`` at once, no ``draining``
  whatever the deregistration delay: absent with wait=true returns at the first poll;
- ``draining`` (``Target.DeregistrationInProgress``) appears only for a registered instance that
  is terminated, and stays for good - that is how the draining cases are tested;
- a registered stopped instance is ``unused``/``Target.InvalidState``, never healthy - that is
  how the wait timeout is tested;
- targets are keyed by instance ID alone (the port is not part of a target), so the same instance
  on two ports cannot be tested here (the unit tests cover the port matching).
"""
from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import time

import pytest
import yaml

from inventory_run import BIN, MotoServer, base_env

REGION = "eu-west-1"
ELB = "scratchbird.cluster.elbv2_target"
S3 = "scratchbird.cluster.s3_upload"


@pytest.fixture(scope="module")
def moto():
    with MotoServer() as server:
        yield server


def aws_env(tmp_path, credentials=True, region=True):
    """ansible's environment: AWS credentials and region from the environment or not at all."""
    extra = dict(ANSIBLE_NOCOLOR="1", ANSIBLE_FORCE_COLOR="0",
                 AWS_CONFIG_FILE=str(tmp_path / "no-aws-config"),
                 AWS_SHARED_CREDENTIALS_FILE=str(tmp_path / "no-aws-credentials"))
    if credentials:
        extra.update(AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing")
    if region:
        extra.update(AWS_DEFAULT_REGION=REGION)
    return base_env(**extra)


def play(tmp_path, tasks, *options, env=None):
    """Run tasks on localhost (connection local) -> (the registered result of each task, output).

    Each task may fail (ignore_errors); the results are written to a file by a last task.
    """
    out = tmp_path / f"results-{time.monotonic_ns()}.json"
    body = [dict(task, register=f"r{index}", ignore_errors=True) for index, task in enumerate(tasks)]
    names = ", ".join(f"r{index}" for index in range(len(tasks)))
    body.append({"name": "Save the results", "check_mode": False,
                 "ansible.builtin.copy": {"content": "{{ [%s] | to_json }}" % names, "dest": str(out), "mode": "0600"}})
    playbook = [{"name": "AWS modules", "hosts": "localhost", "gather_facts": False,
                 "vars": {"ansible_python_interpreter": sys.executable}, "tasks": body}]
    path = tmp_path / f"playbook-{time.monotonic_ns()}.yml"
    path.write_text(yaml.safe_dump(playbook, sort_keys=False))
    res = subprocess.run([str(BIN / "ansible-playbook"), "-i", "localhost,", "-c", "local", *options, str(path)],
                         capture_output=True, text=True, env=env or aws_env(tmp_path), cwd=tmp_path, timeout=300,
                         check=False, stdin=subprocess.DEVNULL)
    assert res.returncode == 0 and out.exists(), f"ansible-playbook failed:\n{res.stdout}\n{res.stderr}"
    return json.loads(out.read_text()), res.stdout


# ELBv2


@pytest.fixture(scope="module")
def fleet(moto):
    """A VPC with 4 running instances and a TCP target group on port 5432 (no load balancer)."""
    ec2 = moto.client("ec2", REGION)
    vpc = ec2.create_vpc(CidrBlock="10.20.0.0/16")["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.20.1.0/24", AvailabilityZone=REGION + "a")["Subnet"]["SubnetId"]
    image = ec2.describe_images(Owners=["amazon"], MaxResults=5)["Images"][0]["ImageId"]
    reply = ec2.run_instances(ImageId=image, MinCount=4, MaxCount=4, InstanceType="t3.small", SubnetId=subnet)
    instances = [i["InstanceId"] for i in reply["Instances"]]
    group = moto.client("elbv2", REGION).create_target_group(
        Name="tx-engines", Protocol="TCP", Port=5432, VpcId=vpc, TargetType="instance")["TargetGroups"][0]
    return dict(instances=instances, arn=group["TargetGroupArn"], ec2=ec2, elb=moto.client("elbv2", REGION))


def elb_task(moto, name, **args):
    return {"name": name, ELB: dict(dict(endpoint_url=moto.url), **args)}


def health_of(fleet, instance):
    """The target's (state, reason) as boto3 sees it, on the target group's port."""
    entry = fleet["elb"].describe_target_health(TargetGroupArn=fleet["arn"],
                                                Targets=[{"Id": instance, "Port": 5432}])["TargetHealthDescriptions"][0]
    return entry["TargetHealth"]["State"], entry["TargetHealth"].get("Reason")


def test_register_check_mode_deregister_cycle(moto, fleet, tmp_path):
    instance = fleet["instances"][0]
    target = dict(target_group_arn=fleet["arn"], target_id=instance)
    assert health_of(fleet, instance) == ("unused", "Target.NotRegistered")

    started = time.monotonic()
    (first, again), dummy = play(tmp_path, [elb_task(moto, "register", **target), elb_task(moto, "again", **target)])
    assert not first.get("failed"), first
    assert first["changed"] is True and first["state"] == "healthy", first
    assert first["target_health"]["Target"] == {"Id": instance, "Port": 5432}  # the target group's port
    assert not again.get("failed") and again["changed"] is False and again["state"] == "healthy", again
    assert health_of(fleet, instance) == ("healthy", None)
    assert time.monotonic() - started < 60  # moto is healthy at once: the wait does not run to its timeout

    (checked,), dummy = play(tmp_path, [dict(elb_task(moto, "deregister, check mode", state="absent", **target),
                                             check_mode=True)])
    assert not checked.get("failed"), checked
    assert checked["changed"] is True and checked["state"] == "healthy", checked  # as found
    assert health_of(fleet, instance) == ("healthy", None)  # still registered

    (gone, gone_again), dummy = play(tmp_path, [elb_task(moto, "deregister", state="absent", wait_timeout=60, **target),
                                                elb_task(moto, "deregister again", state="absent", **target)])
    assert not gone.get("failed"), gone
    assert gone["changed"] is True and gone["state"] == "unused", gone
    assert gone["target_health"]["TargetHealth"]["Reason"] == "Target.NotRegistered"
    assert not gone_again.get("failed") and gone_again["changed"] is False, gone_again
    assert health_of(fleet, instance) == ("unused", "Target.NotRegistered")


def test_check_mode_register_registers_nothing(moto, fleet, tmp_path):
    instance = fleet["instances"][1]
    (result,), dummy = play(tmp_path, [elb_task(moto, "register", target_group_arn=fleet["arn"], target_id=instance,
                                                port=5432)], "--check")
    assert not result.get("failed"), result
    assert result["changed"] is True and result["state"] == "unused", result
    assert health_of(fleet, instance) == ("unused", "Target.NotRegistered")


def test_a_missing_target_group_fails_clearly(moto, fleet, tmp_path):
    bad = fleet["arn"].rsplit("/", 2)[0] + "/no-such-group/0123456789abcdef"
    (present, absent), dummy = play(tmp_path, [
        elb_task(moto, "register", target_group_arn=bad, target_id=fleet["instances"][0]),
        elb_task(moto, "deregister", target_group_arn=bad, target_id=fleet["instances"][0], state="absent")])
    for result in (present, absent):
        assert result.get("failed") and result["changed"] is False, result
        assert bad in result["msg"] and "TargetGroupNotFound" in result["msg"] and REGION in result["msg"], result["msg"]


def test_the_wait_for_healthy_times_out_with_the_last_state(moto, fleet, tmp_path):
    instance = fleet["instances"][2]
    fleet["elb"].register_targets(TargetGroupArn=fleet["arn"], Targets=[{"Id": instance}])
    fleet["ec2"].stop_instances(InstanceIds=[instance])
    assert health_of(fleet, instance) == ("unused", "Target.InvalidState")  # registered, never healthy
    started = time.monotonic()
    (waited, nowait), dummy = play(tmp_path, [
        elb_task(moto, "wait", target_group_arn=fleet["arn"], target_id=instance, wait_timeout=2),
        elb_task(moto, "no wait", target_group_arn=fleet["arn"], target_id=instance, wait=False)])
    assert waited.get("failed") and waited["changed"] is False, waited
    assert "is not healthy after 2 s" in waited["msg"] and "unused (Target.InvalidState" in waited["msg"], waited["msg"]
    assert waited["state"] == "unused"
    assert not nowait.get("failed") and nowait["changed"] is False and nowait["state"] == "unused", nowait
    assert time.monotonic() - started < 60


def test_a_draining_target(moto, fleet, tmp_path):
    instance = fleet["instances"][3]
    fleet["elb"].register_targets(TargetGroupArn=fleet["arn"], Targets=[{"Id": instance, "Port": 5432}])
    fleet["ec2"].terminate_instances(InstanceIds=[instance])
    assert health_of(fleet, instance) == ("draining", "Target.DeregistrationInProgress")
    target = dict(target_group_arn=fleet["arn"], target_id=instance)
    (nowait, waited, register), dummy = play(tmp_path, [
        elb_task(moto, "absent, no wait", state="absent", wait=False, **target),
        elb_task(moto, "absent, wait", state="absent", wait_timeout=1, **target),
        elb_task(moto, "register a terminated instance", wait=False, **target)])
    # Draining is a deregistration in progress: no change, but the wait waits for its end.
    assert not nowait.get("failed") and nowait["changed"] is False and nowait["state"] == "draining", nowait
    assert waited.get("failed") and waited["changed"] is False, waited
    assert "is not deregistered after 1 s" in waited["msg"], waited["msg"]
    assert "draining (Target.DeregistrationInProgress" in waited["msg"], waited["msg"]
    # Registering it again is a change; AWS (and moto) refuse a terminated instance.
    assert register.get("failed") and "InvalidTarget" in register["msg"] and instance in register["msg"], register
    assert register["changed"] is True


def test_no_credentials_or_no_region_fail_clearly(moto, fleet, tmp_path):
    target = dict(target_group_arn=fleet["arn"], target_id=fleet["instances"][0])
    (nocreds,), dummy = play(tmp_path, [elb_task(moto, "no credentials", region=REGION, **target)],
                             env=aws_env(tmp_path, credentials=False))
    assert nocreds.get("failed") and nocreds["msg"].startswith("no AWS credentials found"), nocreds
    (noregion, keys), dummy = play(tmp_path, [
        elb_task(moto, "no region", access_key="testing", secret_key="testing", **target),
        elb_task(moto, "keys and region as options", region=REGION, access_key="testing", secret_key="testing",
                 state="absent", **target)], env=aws_env(tmp_path, credentials=False, region=False))
    assert noregion.get("failed") and noregion["msg"].startswith("no AWS region"), noregion
    assert not keys.get("failed") and keys["changed"] is False, keys


# S3


@pytest.fixture(scope="module")
def bucket(moto):
    s3 = moto.client("s3", REGION)
    s3.create_bucket(Bucket="sb-backups", CreateBucketConfiguration={"LocationConstraint": REGION})
    return dict(name="sb-backups", s3=s3)


def s3_task(moto, name, **args):
    base = dict(endpoint_url=moto.url, region=REGION, access_key="testing", secret_key="testing")
    return {"name": name, S3: dict(base, **args)}


def backup_tree(root):
    """A backup with nested directories, an empty file and one file of 9 MiB (a multipart upload)."""
    files = {
        "manifest.json": b'{"backup": 1}\n',
        "base/000001.dat": bytes(range(256)) * 64,
        "base/empty": b"",
        "wal/00/000000010000000000000001": b"wal one\n",
        "wal/00/deep/er/000000010000000000000002": b"wal two\n",
        "big.dat": hashlib.sha256(b"seed").digest() * (9 * 1024 * 1024 // 32),
    }
    for relative, content in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
    return files


def objects(bucket, prefix):
    """{key: (body, metadata, sse)} of the objects under prefix."""
    s3, found = bucket["s3"], {}
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket["name"], Prefix=prefix):
        for item in page.get("Contents", []):
            got = s3.get_object(Bucket=bucket["name"], Key=item["Key"])
            found[item["Key"]] = (got["Body"].read(), got["Metadata"], got.get("ServerSideEncryption"))
    return found


def test_upload_rerun_modify_and_check_mode(moto, bucket, tmp_path):
    src = tmp_path / "backup"
    files = backup_tree(src)
    (src / "link").symlink_to(src / "manifest.json")  # not a regular file: not uploaded
    prefix = "prod/2024-06-01"
    keys = sorted(f"{prefix}/{relative}" for relative in files)
    task = s3_task(moto, "upload", src=str(src), bucket=bucket["name"], prefix=prefix + "/")

    (first, second), dummy = play(tmp_path, [task, task])
    assert not first.get("failed"), first
    assert first["changed"] is True and first["uploaded"] == keys and first["skipped"] == [], first
    assert any("link" in w for w in first.get("warnings", [])), first
    assert not second.get("failed"), second
    assert second["changed"] is False and second["uploaded"] == [] and second["skipped"] == keys, second
    stored = objects(bucket, prefix + "/")
    assert sorted(stored) == keys
    for relative, content in files.items():
        body, metadata, sse = stored[f"{prefix}/{relative}"]
        assert body == content
        assert metadata == {"sha256": hashlib.sha256(content).hexdigest()}
        assert sse == "AES256"

    (src / "wal/00/000000010000000000000001").write_bytes(b"wal one, rewritten\n")
    (modified,), dummy = play(tmp_path, [task])
    assert not modified.get("failed"), modified
    assert modified["changed"] is True, modified
    assert modified["uploaded"] == [f"{prefix}/wal/00/000000010000000000000001"], modified
    assert len(modified["skipped"]) == len(keys) - 1
    body, metadata, dummy_sse = objects(bucket, prefix + "/wal/00/000000010000000000000001")[
        f"{prefix}/wal/00/000000010000000000000001"]
    assert body == b"wal one, rewritten\n" and metadata["sha256"] == hashlib.sha256(body).hexdigest()

    # Same size, other bytes: the sha256 tells them apart.
    (src / "manifest.json").write_bytes(b'{"backup": 2}\n')
    (src / "wal/01").mkdir()
    (src / "wal/01/new").write_bytes(b"new\n")
    before = objects(bucket, prefix + "/")
    (checked,), dummy = play(tmp_path, [task], "--check")
    assert not checked.get("failed"), checked
    assert checked["changed"] is True, checked
    assert checked["uploaded"] == [f"{prefix}/manifest.json", f"{prefix}/wal/01/new"], checked
    assert objects(bucket, prefix + "/") == before  # nothing uploaded


def test_no_prefix_and_kms(moto, bucket, tmp_path):
    src = tmp_path / "small"
    (src / "a" / "b").mkdir(parents=True)
    (src / "a" / "b" / "c.txt").write_bytes(b"c\n")
    (src / "top.txt").write_bytes(b"top\n")
    (plain, kms), dummy = play(tmp_path, [
        s3_task(moto, "no prefix", src=str(src), bucket=bucket["name"], sse="none"),
        s3_task(moto, "kms", src=str(src), bucket=bucket["name"], prefix="kms", sse="aws:kms",
                kms_key_id="alias/backups")])
    assert not plain.get("failed") and plain["uploaded"] == ["a/b/c.txt", "top.txt"], plain
    assert not kms.get("failed") and kms["uploaded"] == ["kms/a/b/c.txt", "kms/top.txt"], kms
    head = bucket["s3"].head_object(Bucket=bucket["name"], Key="kms/top.txt")
    assert head["ServerSideEncryption"] == "aws:kms" and head["SSEKMSKeyId"] == "alias/backups", head


def test_missing_bucket_and_bad_src_fail_clearly(moto, bucket, tmp_path):
    src = tmp_path / "tree"
    src.mkdir()
    (src / "f").write_bytes(b"f\n")
    (src / "file").write_bytes(b"not a directory\n")
    (nobucket, notdir, missing, kms_without_sse), dummy = play(tmp_path, [
        s3_task(moto, "missing bucket", src=str(src), bucket="sb-no-such-bucket"),
        s3_task(moto, "src is a file", src=str(src / "file"), bucket=bucket["name"]),
        s3_task(moto, "src does not exist", src=str(tmp_path / "nothing"), bucket=bucket["name"]),
        s3_task(moto, "kms key without kms", src=str(src), bucket=bucket["name"], kms_key_id="alias/backups")])
    assert nobucket.get("failed") and nobucket["changed"] is False, nobucket
    assert "sb-no-such-bucket" in nobucket["msg"] and "NoSuchBucket" in nobucket["msg"], nobucket["msg"]
    assert notdir.get("failed") and "is not a directory" in notdir["msg"] and str(src / "file") in notdir["msg"], notdir
    assert missing.get("failed") and "does not exist" in missing["msg"], missing
    assert kms_without_sse.get("failed") and "sse=aws:kms" in kms_without_sse["msg"], kms_without_sse
    assert objects(bucket, "f") == {}
