# Copyright: scratchbird.cluster contributors
# Apache License 2.0 (see LICENSE)
"""plugins/modules/s3_upload.py against an in-memory S3 client (FakeS3: the calls the module
makes - list_objects_v2 through a paginator, head_object, upload_file - with botocore's errors)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import hashlib
import os

import pytest

from ansible.module_utils import basic

from ansible_collections.scratchbird.cluster.plugins.module_utils import aws as aws_utils
from ansible_collections.scratchbird.cluster.plugins.modules import s3_upload
from ansible_collections.scratchbird.cluster.tests.unit.plugins.modules.module_args import ExitJson, FailJson, patch_exits, patch_module_args

# botocore's errors, or module_utils/aws.py's stand-ins without boto3: the module's logic is tested either way.
S3UploadFailedError = aws_utils.S3UploadFailedError
needs_boto3 = pytest.mark.skipif(not aws_utils.HAS_BOTO3, reason="boto3 is not installed")


class ClientError(aws_utils.ClientError):
    """botocore's ClientError (or the stand-in) with its error response."""

    def __init__(self, response, operation):
        super(ClientError, self).__init__(response, operation)
        self.response = response


BUCKET = "sb-backups"


def client_error(code, message, operation, status=400):
    return ClientError({"Error": {"Code": code, "Message": message}, "ResponseMetadata": {"HTTPStatusCode": status}},
                       operation)


class FakeS3(object):
    """One bucket's objects {key: dict(body, metadata, extra)}; records the calls."""

    def __init__(self, buckets=(BUCKET,), page_size=2):
        self.buckets = dict((b, {}) for b in buckets)
        self.page_size = page_size
        self.calls = []
        self.fail_upload = []  # the exception to raise on upload, if any

    def put(self, key, body, sha256=None):
        self.buckets[BUCKET][key] = dict(body=body, metadata={} if sha256 is None else {"sha256": sha256}, extra={})

    def _bucket(self, name, operation):
        if name not in self.buckets:
            raise client_error("NoSuchBucket", "The specified bucket does not exist", operation, 404)
        return self.buckets[name]

    def get_paginator(self, name):
        assert name == "list_objects_v2"
        return self

    def paginate(self, Bucket, Prefix):
        self.calls.append(("list", Prefix))
        objects = self._bucket(Bucket, "ListObjectsV2")
        keys = sorted(k for k in objects if k.startswith(Prefix))
        for start in range(0, max(len(keys), 1), self.page_size):
            page = keys[start:start + self.page_size]
            yield dict(Contents=[dict(Key=k, Size=len(objects[k]["body"])) for k in page]) if page else {}

    def head_object(self, Bucket, Key):
        self.calls.append(("head", Key))
        objects = self._bucket(Bucket, "HeadObject")
        if Key not in objects:
            raise client_error("404", "Not Found", "HeadObject", 404)
        return dict(ContentLength=len(objects[Key]["body"]), Metadata=dict(objects[Key]["metadata"]))

    def upload_file(self, Filename, Bucket, Key, ExtraArgs=None):
        self.calls.append(("upload", Key))
        for error in self.fail_upload:
            raise error
        objects = self.buckets.get(Bucket)
        if objects is None:
            try:
                raise client_error("NoSuchBucket", "The specified bucket does not exist", "PutObject", 404)
            except ClientError as exc:  # as boto3's transfer manager wraps it
                raise S3UploadFailedError("Failed to upload %s to %s/%s: %s" % (Filename, Bucket, Key, exc))
        extra = dict(ExtraArgs or {})
        metadata = extra.pop("Metadata", {})
        with open(Filename, "rb") as handle:
            objects[Key] = dict(body=handle.read(), metadata=metadata, extra=extra)


@pytest.fixture
def s3(monkeypatch):
    fake = FakeS3()
    warnings = []
    patch_exits(monkeypatch)
    monkeypatch.setattr(basic.AnsibleModule, "warn", lambda self, warning, **kw: warnings.append(warning))
    monkeypatch.setattr(s3_upload, "client", lambda module, service: fake)

    def run(args, check_mode=False):
        del warnings[:]
        args = dict(args)
        args.setdefault("bucket", BUCKET)
        if check_mode:
            args["_ansible_check_mode"] = True
        with patch_module_args(args):
            try:
                s3_upload.main()
            except ExitJson as exc:
                return exc.args[0], False, list(warnings)
            except FailJson as exc:
                return exc.args[0], True, list(warnings)
        raise AssertionError("module returned without exit_json or fail_json")

    fake.run = run
    return fake


def tree(root, files):
    for relative, content in files.items():
        path = os.path.join(str(root), *relative.split("/"))
        if not os.path.isdir(os.path.dirname(path)):
            os.makedirs(os.path.dirname(path))
        with open(path, "wb") as handle:
            handle.write(content)
    return str(root)


def sha(content):
    return hashlib.sha256(content).hexdigest()


FILES = {"a.txt": b"a\n", "d/b.txt": b"bb\n", "d/e/c.txt": b"ccc\n", "d/e/empty": b""}


def test_uploads_everything_with_the_sha256_and_aes256(s3, tmp_path):
    src = tree(tmp_path / "src", FILES)
    result, failed, warnings = s3.run(dict(src=src, prefix="/backups/day1/"))
    assert not failed and not warnings, result
    keys = ["backups/day1/a.txt", "backups/day1/d/b.txt", "backups/day1/d/e/c.txt", "backups/day1/d/e/empty"]
    assert result == dict(changed=True, uploaded=keys, skipped=[])
    for relative, content in FILES.items():
        stored = s3.buckets[BUCKET]["backups/day1/" + relative]
        assert stored == dict(body=content, metadata={"sha256": sha(content)}, extra={"ServerSideEncryption": "AES256"})
    assert s3.calls[0] == ("list", "backups/day1/")
    assert not [c for c in s3.calls if c[0] == "head"]  # nothing listed: nothing to read


def test_skips_same_sha256_and_reads_only_same_size_objects(s3, tmp_path):
    src = tree(tmp_path / "src", FILES)
    s3.put("a.txt", b"a\n", sha(b"a\n"))  # the same: skipped
    s3.put("d/b.txt", b"xx\n", sha(b"xx\n"))  # same size, other content: uploaded
    s3.put("d/e/c.txt", b"other size", sha(b"other size"))  # another size: uploaded without a HEAD
    s3.put("d/e/empty", b"", None)  # no sha256 metadata: uploaded
    s3.put("unrelated", b"stays", None)
    result, failed, dummy = s3.run(dict(src=src))
    assert not failed, result
    assert result == dict(changed=True, uploaded=["d/b.txt", "d/e/c.txt", "d/e/empty"], skipped=["a.txt"])
    assert sorted(c[1] for c in s3.calls if c[0] == "head") == ["a.txt", "d/b.txt", "d/e/empty"]
    assert s3.buckets[BUCKET]["d/b.txt"]["body"] == b"bb\n"
    assert s3.buckets[BUCKET]["unrelated"]["body"] == b"stays"
    again, failed, dummy = s3.run(dict(src=src))
    assert again == dict(changed=False, uploaded=[], skipped=sorted(FILES))


def test_an_object_deleted_after_the_listing_is_uploaded(s3, tmp_path, monkeypatch):
    src = tree(tmp_path / "src", {"a.txt": b"a\n"})
    s3.put("a.txt", b"a\n", sha(b"a\n"))
    original = s3.head_object

    def head_after_delete(Bucket, Key):
        s3.buckets[BUCKET].pop(Key, None)
        return original(Bucket=Bucket, Key=Key)

    monkeypatch.setattr(s3, "head_object", head_after_delete)
    result, failed, dummy = s3.run(dict(src=src))
    assert not failed and result["uploaded"] == ["a.txt"], result


def test_check_mode_uploads_nothing(s3, tmp_path):
    src = tree(tmp_path / "src", FILES)
    s3.put("p/a.txt", b"a\n", sha(b"a\n"))
    result, failed, dummy = s3.run(dict(src=src, prefix="p"), check_mode=True)
    assert not failed, result
    assert result == dict(changed=True, uploaded=["p/d/b.txt", "p/d/e/c.txt", "p/d/e/empty"], skipped=["p/a.txt"])
    assert not [c for c in s3.calls if c[0] == "upload"]
    assert sorted(s3.buckets[BUCKET]) == ["p/a.txt"]


def test_an_empty_tree_changes_nothing(s3, tmp_path):
    (tmp_path / "empty" / "sub").mkdir(parents=True)
    result, failed, dummy = s3.run(dict(src=str(tmp_path / "empty")))
    assert not failed and result == dict(changed=False, uploaded=[], skipped=[]), result


@pytest.mark.parametrize("sse, kms, extra", [
    ("none", None, {}),
    ("aws:kms", None, {"ServerSideEncryption": "aws:kms"}),
    ("aws:kms", "alias/backups", {"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": "alias/backups"}),
])
def test_encryption_arguments(s3, tmp_path, sse, kms, extra):
    src = tree(tmp_path / "src", {"a": b"a"})
    result, failed, dummy = s3.run(dict(src=src, sse=sse, kms_key_id=kms))
    assert not failed, result
    assert s3.buckets[BUCKET]["a"]["extra"] == extra


def test_links_and_special_files_are_not_uploaded(s3, tmp_path):
    src = tree(tmp_path / "src", {"real/f": b"f", "outside/g": b"g"})
    os.symlink(os.path.join(src, "real", "f"), os.path.join(src, "real", "link-to-f"))
    os.symlink(os.path.join(src, "outside"), os.path.join(src, "real", "linked-dir"))
    os.mkfifo(os.path.join(src, "real", "fifo"))
    result, failed, warnings = s3.run(dict(src=os.path.join(src, "real")))
    assert not failed and result["uploaded"] == ["f"], result
    assert warnings == ["not uploaded, not regular files: fifo, link-to-f, linked-dir"]


def test_a_missing_bucket(s3, tmp_path):
    src = tree(tmp_path / "src", {"a": b"a"})
    result, failed, dummy = s3.run(dict(src=src, bucket="sb-nope"))
    assert failed and result["changed"] is False, result
    assert result["msg"] == "bucket sb-nope does not exist (AWS error NoSuchBucket: The specified bucket does not exist)"
    assert result["aws_error_code"] == "NoSuchBucket"


def test_the_aws_error_inside_a_failed_transfer(s3, tmp_path):
    src = tree(tmp_path / "src", {"a": b"a", "b": b"b"})
    try:
        raise client_error("AccessDenied", "Access Denied", "PutObject", 403)
    except ClientError as exc:
        try:
            raise S3UploadFailedError("Failed to upload: %s" % exc)
        except S3UploadFailedError as wrapped:
            s3.fail_upload = [wrapped]
    result, failed, dummy = s3.run(dict(src=src))
    assert failed and result["aws_error_code"] == "AccessDenied", result
    assert result["msg"] == "cannot upload %s to s3://%s/a: AWS error AccessDenied: Access Denied" % (os.path.join(src, "a"), BUCKET)
    assert result["uploaded"] == [] and result["changed"] is False


@needs_boto3
def test_a_connection_error(s3, tmp_path):
    from botocore.exceptions import EndpointConnectionError

    src = tree(tmp_path / "src", {"a": b"a"})
    s3.fail_upload = [EndpointConnectionError(endpoint_url="http://127.0.0.1:9/sb-backups/a")]
    result, failed, dummy = s3.run(dict(src=src))
    assert failed and "Could not connect to the endpoint URL" in result["msg"], result


@pytest.mark.parametrize("make, message", [
    (lambda p: str(p / "nothing"), "does not exist: s3_upload uploads a directory tree"),
    (lambda p: tree(p, {"file": b"x"}) + "/file", "is not a directory: s3_upload uploads a directory tree"),
])
def test_src_must_be_a_directory(s3, tmp_path, make, message):
    result, failed, dummy = s3.run(dict(src=make(tmp_path)))
    assert failed and message in result["msg"], result
    assert s3.calls == []


def test_kms_key_needs_kms(s3, tmp_path):
    result, failed, dummy = s3.run(dict(src=str(tmp_path), kms_key_id="alias/k"))
    assert failed and result["msg"] == "kms_key_id is only used with sse=aws:kms (sse is AES256)"


# Client creation (module_utils/aws.py), through the module


@pytest.fixture
def real_client(monkeypatch, tmp_path):
    """s3_upload with its real client(); no AWS environment, no shared files, no metadata service."""
    for name in list(os.environ):
        if name.startswith("AWS_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    patch_exits(monkeypatch)

    def run(args):
        with patch_module_args(dict(args, src=str(tmp_path), bucket=BUCKET)):
            try:
                s3_upload.main()
            except FailJson as exc:
                return exc.args[0]
        raise AssertionError("the module did not fail")

    return run


def test_boto3_missing(real_client, monkeypatch):
    monkeypatch.setattr(aws_utils, "HAS_BOTO3", False)
    result = real_client({})
    assert "Failed to import the required Python library (boto3)" in result["msg"], result


@needs_boto3
def test_no_credentials(real_client):
    result = real_client({})
    assert result["msg"].startswith("no AWS credentials found"), result


@needs_boto3
def test_unknown_profile(real_client):
    result = real_client(dict(profile="nope"))
    assert result["msg"].startswith("AWS profile 'nope' not found"), result
