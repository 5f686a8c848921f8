# -*- coding: utf-8 -*-
# Copyright: scratchbird.cluster contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
name: aws_ec2
short_description: EC2 instances of the cluster, grouped by tier
version_added: 0.1.0
description:
  - Finds the cluster's EC2 instances with C(DescribeInstances) (server-side filters, paginated),
    all regions at the same time, each call retried on throttling and 5xx.
  - Puts each instance in the collection's group for its tier (C(clock_masters), C(tx_engines),
    C(ingestion_engines), C(olap_shards), C(kafka_brokers)) from its tier tag or its name.
  - Credentials come from boto3's chain (environment, shared files, instance role), a profile
    or keys in the file; O(assume_role_arn) switches to a role first.
  - The inventory file name must end in C(aws_ec2.yml) or C(aws_ec2.yaml).
  - "Host variables: C(instance_id), C(instance_type), C(image_id), C(state), C(private_ip_address),
    C(public_ip_address), C(private_dns_name), C(public_dns_name), C(ipv6_address), C(vpc_id),
    C(subnet_id), C(security_group_ids), C(placement) (C(region), C(availability_zone)),
    C(architecture), C(launch_time), C(aws_tags)."
requirements:
  - boto3
extends_documentation_fragment:
  - scratchbird.cluster.inventory
  - constructed
  - inventory_cache
options:
  plugin:
    choices: [scratchbird.cluster.aws_ec2]
  regions:
    description: Regions to search, all at once. Names are checked against botocore's list of EC2 regions.
    type: list
    elements: str
    required: true
  filters:
    description:
      - EC2 filters applied by the API, name to value or list of values
        (for example C(tag:Environment) or C(vpc-id)).
    type: dict
    default: {}
  states:
    description: Instance states to include (the C(instance-state-name) filter). An empty list includes all.
    type: list
    elements: str
    default: [running]
  hostnames:
    default: ['tag:Name', private_dns_name, instance_id]
  ansible_host:
    default: [private_ip_address, public_ip_address]
  hostvars:
    default: [instance_id, instance_type, private_ip_address, public_ip_address, placement, aws_tags]
  profile:
    description: Profile from the shared AWS configuration files.
    type: str
    env:
      - name: AWS_PROFILE
  aws_access_key_id:
    description: Access key; boto3's chain is used when unset.
    type: str
  aws_secret_access_key:
    description: Secret key that goes with O(aws_access_key_id).
    type: str
  session_token:
    description: Session token for temporary keys.
    type: str
  assume_role_arn:
    description: Role to assume (STS AssumeRole) before describing instances.
    type: str
  role_session_name:
    description: Session name when assuming O(assume_role_arn).
    type: str
    default: scratchbird-inventory
  endpoint_url:
    description: EC2 (and STS) endpoint instead of AWS's, for example a private endpoint or a test server.
    type: str
    env:
      - name: AWS_ENDPOINT_URL
"""

EXAMPLES = r"""
# inventories/prod.aws_ec2.yml
plugin: scratchbird.cluster.aws_ec2
regions: [eu-west-1, eu-central-1]
cluster_name: prod
keyed_groups:
  - key: placement.availability_zone
    prefix: az
compose:
  ansible_user: "'admin'"
cache: true
cache_plugin: ansible.builtin.jsonfile
cache_connection: ~/.cache/scratchbird-inventory
cache_timeout: 300
"""

from datetime import datetime

from ansible.errors import AnsibleError
from ansible.module_utils.common.text.converters import to_native
from ansible_collections.scratchbird.cluster.plugins.plugin_utils.inventory import (
    ClusterInventory, RetryableError, parse_retry_after, require, suggest)

THROTTLING = frozenset(["Throttling", "ThrottlingException", "RequestLimitExceeded", "RequestThrottled",
                        "TooManyRequestsException", "ServiceUnavailable", "InternalError", "Unavailable"])
PAGE_SIZE = 1000


def _time(value):
    return value.isoformat() if isinstance(value, datetime) else value


def instance_record(instance, region):
    """The host variables of one DescribeInstances item."""
    tags = dict((t["Key"], t["Value"]) for t in instance.get("Tags", []))
    placement = instance.get("Placement", {})
    hostvars = {
        "instance_id": instance["InstanceId"],
        "instance_type": instance.get("InstanceType"),
        "image_id": instance.get("ImageId"),
        "state": instance.get("State", {}).get("Name"),
        "private_ip_address": instance.get("PrivateIpAddress"),
        "public_ip_address": instance.get("PublicIpAddress"),
        "private_dns_name": instance.get("PrivateDnsName") or None,
        "public_dns_name": instance.get("PublicDnsName") or None,
        "ipv6_address": next((a["Ipv6Address"] for ni in instance.get("NetworkInterfaces", [])
                              for a in ni.get("Ipv6Addresses", [])), None),
        "vpc_id": instance.get("VpcId"),
        "subnet_id": instance.get("SubnetId"),
        "security_group_ids": [g["GroupId"] for g in instance.get("SecurityGroups", [])],
        "placement": {"region": region, "availability_zone": placement.get("AvailabilityZone")},
        "architecture": instance.get("Architecture"),
        "launch_time": _time(instance.get("LaunchTime")),
        "aws_tags": tags,
    }
    return {"id": instance["InstanceId"], "name": tags.get("Name"), "labels": tags, "vars": hostvars}


class InventoryModule(ClusterInventory):

    NAME = "scratchbird.cluster.aws_ec2"
    VARIABLES = ("instance_id", "instance_type", "image_id", "state", "private_ip_address", "public_ip_address", "private_dns_name",
                 "public_dns_name", "ipv6_address", "vpc_id", "subnet_id", "security_group_ids", "placement", "architecture",
                 "launch_time", "aws_tags")
    SOURCE = "region"

    def _setup(self):
        # boto3 is imported only now: a cached inventory does not pay for it.
        boto3 = require(self.NAME, "boto3", "boto3")
        self._errors = require(self.NAME, "botocore.exceptions", "boto3")
        config = require(self.NAME, "botocore.config", "boto3")
        regions = [str(r) for r in self.get_option("regions")]  # plain names, not the config's tagged strings
        if not regions:
            raise AnsibleError("regions: name at least one region")
        known = set()
        for partition in ("aws", "aws-us-gov", "aws-cn"):
            known.update(boto3.session.Session().get_available_regions("ec2", partition_name=partition))
        for region in regions:
            if region not in known:
                raise AnsibleError("regions: unknown region %r%s" % (region, suggest(region, known)))
        try:
            session = boto3.session.Session(
                profile_name=self.get_option("profile"),
                aws_access_key_id=self.get_option("aws_access_key_id"),
                aws_secret_access_key=self.get_option("aws_secret_access_key"),
                aws_session_token=self.get_option("session_token"))
        except self._errors.ProfileNotFound as exc:
            raise AnsibleError("profile: %s" % to_native(exc))
        if session.get_credentials() is None:
            raise AnsibleError("no AWS credentials: set aws_access_key_id and aws_secret_access_key, a profile, "
                               "or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY (boto3's chain found none)")
        # Retries are ours (jittered, Retry-After, the same for every plugin), not botocore's.
        client_config = config.Config(retries={"total_max_attempts": 1})
        endpoint = self.get_option("endpoint_url")
        credentials = {}
        if self.get_option("assume_role_arn"):
            sts = session.client("sts", region_name=regions[0], endpoint_url=endpoint, config=client_config)
            credentials = self._assume_role(sts)
        # Clients are made here, in one thread: a boto3 session is not safe to share while making them.
        self._clients = dict((r, session.client("ec2", region_name=r, endpoint_url=endpoint, config=client_config, **credentials))
                             for r in regions)
        self._filters = [{"Name": name, "Values": value if isinstance(value, list) else [value]}
                         for name, value in sorted(self.get_option("filters").items())]
        if self.get_option("states"):
            self._filters.append({"Name": "instance-state-name", "Values": self.get_option("states")})
        if self.get_option("cluster_name"):
            self._filters.append({"Name": "tag:%s" % self.get_option("cluster_key"), "Values": [self.get_option("cluster_name")]})

    def _classify(self, exc):
        """Throttling, 5xx and dropped connections are worth another try."""
        if isinstance(exc, self._errors.ClientError):
            meta = exc.response.get("ResponseMetadata", {})
            code = exc.response.get("Error", {}).get("Code", "")
            if code in THROTTLING or meta.get("HTTPStatusCode", 0) >= 500:
                return RetryableError("%s: %s" % (code, exc), parse_retry_after(meta.get("HTTPHeaders", {}).get("retry-after")))
        if isinstance(exc, (self._errors.ConnectionError, self._errors.HTTPClientError)):
            return RetryableError(to_native(exc))
        return None

    def _assume_role(self, sts):
        arn = self.get_option("assume_role_arn")
        try:
            role = self.retry(lambda: sts.assume_role(RoleArn=arn, RoleSessionName=self.get_option("role_session_name")), self._classify)
        except (self._errors.BotoCoreError, self._errors.ClientError) as exc:
            raise AnsibleError("assume_role_arn %s: %s" % (arn, to_native(exc)))
        creds = role["Credentials"]
        return {"aws_access_key_id": creds["AccessKeyId"], "aws_secret_access_key": creds["SecretAccessKey"],
                "aws_session_token": creds["SessionToken"]}

    def _sources(self):
        return list(self._clients)

    def _fetch(self, source):
        ec2 = self._clients[source]
        args = {"Filters": self._filters, "MaxResults": PAGE_SIZE}
        while True:
            try:
                page = self.retry(lambda: ec2.describe_instances(**args), self._classify)
            except self._errors.ClientError as exc:
                raise AnsibleError("DescribeInstances: %s" % to_native(exc))
            except self._errors.BotoCoreError as exc:  # NoCredentialsError, EndpointConnectionError, ...
                raise AnsibleError("%s (endpoint %s)" % (to_native(exc), ec2.meta.endpoint_url))
            yield [instance_record(i, source) for r in page.get("Reservations", []) for i in r.get("Instances", [])]
            if not page.get("NextToken"):
                return
            args["NextToken"] = page["NextToken"]
