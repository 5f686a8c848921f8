# -*- coding: utf-8 -*-
# Copyright: scratchbird.cluster contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type


class ModuleDocFragment(object):
    # Connection options of the AWS modules (module_utils/aws.py).
    DOCUMENTATION = r"""
options:
  region:
    description:
      - AWS region, for example C(eu-west-1).
      - When omitted, boto3 takes it from E(AWS_REGION), E(AWS_DEFAULT_REGION) or the profile's config.
    type: str
  endpoint_url:
    description:
      - URL of the service's API instead of AWS's public endpoint, for a VPC endpoint, a private
        endpoint or an emulator.
    type: str
  profile:
    description:
      - Profile of the shared AWS config and credentials files to take the credentials (and the
        region, unless O(region) is set) from.
      - Mutually exclusive with O(access_key), O(secret_key) and O(session_token).
    type: str
  access_key:
    description:
      - AWS access key ID. Goes with O(secret_key).
      - When neither these nor O(profile) are set, boto3's chain finds the credentials
        (E(AWS_ACCESS_KEY_ID) and E(AWS_SECRET_ACCESS_KEY), the shared files, a container or instance role).
    type: str
  secret_key:
    description: AWS secret access key of O(access_key).
    type: str
  session_token:
    description: Session token of temporary credentials, with O(access_key) and O(secret_key).
    type: str
requirements:
  - boto3 where the module runs (boto3 1.44.5 tested).
notes:
  - The module runs on the task's host, so run it on the controller (C(delegate_to=localhost)
    in a play over the cluster's hosts) or on another host with boto3 and credentials.
  - The module fails with a clear message when boto3 finds no credentials or no region, or when
    the profile does not exist.
"""
