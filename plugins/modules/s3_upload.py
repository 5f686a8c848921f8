#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: scratchbird.cluster contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: s3_upload
short_description: Upload a directory tree to S3, skipping the files already there
version_added: 0.1.0
description:
  - Uploads every regular file under O(src) to the S3 bucket O(bucket), as the object
    C(<prefix>/<path relative to src>), for example a backup directory to
    C(s3://backups/prod/2024-06-01/).
  - Each object gets the user metadata C(sha256) (the hex SHA-256 of the file; C(x-amz-meta-sha256)).
    A file whose object exists with the same C(sha256) metadata is skipped; the others are
    uploaded (overwriting the object). Objects under the prefix without a local file are left alone.
  - Large files are uploaded in parts (boto3's managed transfer).
  - Reports a change when it uploads at least one file. In check mode it lists the files it
    would upload and uploads nothing.
author: scratchbird.cluster contributors (@scratchbird)
options:
  src:
    description:
      - Local directory to upload, on the host the module runs on.
      - Symbolic links, and anything else that is not a regular file, are not uploaded (the
        module warns about them); directories linked to are not followed.
    type: path
    required: true
  bucket:
    description: Name of the S3 bucket. It must exist.
    type: str
    required: true
  prefix:
    description:
      - Key prefix of the objects, without the bucket, for example C(prod/2024-06-01). Leading
        and trailing C(/) are ignored; with the default the objects are at the bucket's top.
    type: str
    default: ""
  sse:
    description:
      - Server-side encryption of the uploaded objects - V(AES256) (S3-managed keys), V(aws:kms)
        (KMS, the key O(kms_key_id) or the account's C(aws/s3) key), or V(none) to send no
        encryption header (the bucket's default encryption applies).
      - Objects that are skipped keep their encryption; changing O(sse) does not upload them again.
    type: str
    choices: [AES256, "aws:kms", none]
    default: AES256
  kms_key_id:
    description:
      - KMS key (ID, ARN or alias ARN) for O(sse=aws:kms); only with O(sse=aws:kms).
    type: str
extends_documentation_fragment:
  - scratchbird.cluster.aws
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
    details: Reads the objects under the prefix and lists what would be uploaded; uploads nothing.
  diff_mode:
    support: none
  platform:
    support: full
    platforms: posix
notes:
  - "Permissions needed: C(s3:ListBucket) on the bucket (the objects under the prefix are
    listed, and only existing objects are read), C(s3:GetObject) and C(s3:PutObject) on the
    objects, and with O(sse=aws:kms) C(kms:GenerateDataKey) and C(kms:Decrypt) on the key."
  - The files are read twice, once to hash them and once to upload them; they should not change
    while the module runs.
seealso:
  - module: scratchbird.cluster.elbv2_target
"""

EXAMPLES = r"""
- name: Ship last night's backup to S3
  scratchbird.cluster.s3_upload:
    region: eu-west-1
    src: /var/backups/scratchbird/2024-06-01
    bucket: scratchbird-backups
    prefix: "prod/{{ inventory_hostname }}/2024-06-01"
  delegate_to: localhost

- name: Encrypted with a customer-managed KMS key
  scratchbird.cluster.s3_upload:
    profile: backup
    src: /var/backups/scratchbird/latest
    bucket: scratchbird-backups
    prefix: prod/latest
    sse: aws:kms
    kms_key_id: arn:aws:kms:eu-west-1:123456789012:alias/backups
"""

RETURN = r"""
uploaded:
  description: Keys of the objects uploaded (in check mode, that would be uploaded), sorted.
  returned: success
  type: list
  elements: str
  sample: [prod/2024-06-01/base/000001.dat, prod/2024-06-01/manifest.json]
skipped:
  description: Keys of the objects already there with the same C(sha256) metadata, sorted.
  returned: success
  type: list
  elements: str
  sample: [prod/2024-06-01/wal/000000010000000000000001]
"""

import hashlib
import os
import stat

from ansible_collections.scratchbird.cluster.plugins.module_utils.aws import (
    AWS_ERRORS,
    AWSModuleError,
    aws_module,
    client,
    error_code,
    error_text,
)

CHUNK = 1024 * 1024
NO_SUCH_BUCKET = ("NoSuchBucket",)


def sha256_of(path):
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()


def local_files(src):
    """(files, others): the regular files under src as {relative path with '/': absolute path},
    and the relative paths of everything else that is no directory (links, sockets...)."""
    files, others = {}, []
    for top, dirs, names in os.walk(src, onerror=_raise):
        for name in sorted(dirs):
            if os.path.islink(os.path.join(top, name)):
                others.append(os.path.relpath(os.path.join(top, name), src).replace(os.sep, "/"))
        for name in names:
            path = os.path.join(top, name)
            relative = os.path.relpath(path, src).replace(os.sep, "/")
            if stat.S_ISREG(os.lstat(path).st_mode):
                files[relative] = path
            else:
                others.append(relative)
    return files, sorted(others)


def _raise(exc):
    raise exc


def object_key(prefix, relative):
    prefix = prefix.strip("/")
    return "%s/%s" % (prefix, relative) if prefix else relative


class Upload:
    def __init__(self, module, s3):
        self.module = module
        self.s3 = s3
        self.bucket = module.params["bucket"]
        self.prefix = module.params["prefix"].strip("/")
        self.uploaded = []
        self.skipped = []

    def fail(self, what, exc):
        code = error_code(exc)
        if code in NO_SUCH_BUCKET:
            raise AWSModuleError("bucket %s does not exist (%s)" % (self.bucket, error_text(exc)), aws_error_code=code)
        raise AWSModuleError("cannot %s: %s" % (what, error_text(exc)), aws_error_code=code)

    def existing(self):
        """{key: size} of the objects under the prefix."""
        list_prefix = self.prefix + "/" if self.prefix else ""
        sizes = {}
        try:
            for page in self.s3.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=list_prefix):
                for item in page.get("Contents") or []:
                    sizes[item["Key"]] = item.get("Size")
        except AWS_ERRORS as exc:  # pylint: disable=catching-non-exception
            self.fail("list the objects of bucket %s under %r" % (self.bucket, list_prefix), exc)
        return sizes

    def stored_sha256(self, key):
        try:
            head = self.s3.head_object(Bucket=self.bucket, Key=key)
        except AWS_ERRORS as exc:  # pylint: disable=catching-non-exception
            if error_code(exc) in ("404", "NoSuchKey", "NotFound"):  # deleted since the listing
                return None
            self.fail("read object s3://%s/%s" % (self.bucket, key), exc)
        return (head.get("Metadata") or {}).get("sha256")

    def extra_args(self, digest):
        extra = dict(Metadata=dict(sha256=digest))
        sse = self.module.params["sse"]
        if sse != "none":
            extra["ServerSideEncryption"] = sse
        if self.module.params["kms_key_id"]:
            extra["SSEKMSKeyId"] = self.module.params["kms_key_id"]
        return extra

    def put(self, path, key, digest):
        try:
            self.s3.upload_file(path, self.bucket, key, ExtraArgs=self.extra_args(digest))
        except AWS_ERRORS as exc:  # pylint: disable=catching-non-exception
            self.fail("upload %s to s3://%s/%s" % (path, self.bucket, key), exc)

    def run(self, src):
        files, others = local_files(src)
        if others:
            self.module.warn("not uploaded, not regular files: %s" % ", ".join(others))
        sizes = self.existing()
        for relative in sorted(files):
            path = files[relative]
            key = object_key(self.prefix, relative)
            digest = sha256_of(path)
            if key in sizes and sizes[key] == os.path.getsize(path) and self.stored_sha256(key) == digest:
                self.skipped.append(key)
                continue
            if not self.module.check_mode:
                self.put(path, key, digest)
            self.uploaded.append(key)

    def result(self):
        return dict(changed=bool(self.uploaded), uploaded=self.uploaded, skipped=self.skipped)


def main():
    module = aws_module(
        dict(
            src=dict(type="path", required=True),
            bucket=dict(type="str", required=True),
            prefix=dict(type="str", default=""),
            sse=dict(type="str", default="AES256", choices=["AES256", "aws:kms", "none"]),
            kms_key_id=dict(type="str", no_log=False),
        ),
        supports_check_mode=True,
    )
    src = module.params["src"]
    if not os.path.isdir(src):
        what = "does not exist" if not os.path.lexists(src) else "is not a directory"
        module.fail_json(msg="src %s %s: s3_upload uploads a directory tree" % (src, what))
    if module.params["kms_key_id"] and module.params["sse"] != "aws:kms":
        module.fail_json(msg="kms_key_id is only used with sse=aws:kms (sse is %s)" % module.params["sse"])
    if not module.params["bucket"].strip():
        module.fail_json(msg="bucket is empty")

    upload = Upload(module, client(module, "s3"))
    try:
        upload.run(src)
    except AWSModuleError as exc:
        details = upload.result()
        details.update(exc.details)
        module.fail_json(msg=str(exc), **details)
    except (IOError, OSError) as exc:
        details = upload.result()
        module.fail_json(msg="cannot read %s: %s" % (getattr(exc, "filename", None) or src, exc), **details)
    module.exit_json(**upload.result())


if __name__ == "__main__":
    main()
