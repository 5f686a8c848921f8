# -*- coding: utf-8 -*-
# Copyright: scratchbird.cluster contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
name: gcp_compute
short_description: Compute Engine instances of the cluster, grouped by tier
version_added: 0.1.0
description:
  - Finds the cluster's Compute Engine instances with one C(instances.aggregatedList) per project
    (all zones in one paginated call, filtered by the API), all projects at the same time, each
    page retried on 429 (honouring Retry-After) and 5xx.
  - Puts each instance in the collection's group for its tier (C(clock_masters), C(tx_engines),
    C(ingestion_engines), C(olap_shards), C(kafka_brokers)) from its C(tier) label or its name.
  - Authenticates with google-auth (a service account key file, application default credentials,
    or an access token).
  - The inventory file name must end in C(gcp_compute.yml) or C(gcp_compute.yaml).
  - "Host variables: C(instance_name), C(id), C(project), C(zone), C(region), C(status), C(machine_type),
    C(network_ip), C(nat_ip), C(labels), C(network_tags), C(self_link), C(creation_timestamp)."
requirements:
  - google-auth
  - requests
extends_documentation_fragment:
  - scratchbird.cluster.inventory
  - constructed
  - inventory_cache
options:
  plugin:
    choices: [scratchbird.cluster.gcp_compute]
  projects:
    description: Project ids to search, all at once.
    type: list
    elements: str
    required: true
  zones:
    description: Only instances in these zones (all zones when unset).
    type: list
    elements: str
  filters:
    description:
      - Compute API filter expressions (for example C(labels.env = "prod")), joined with AND
        and applied by the API.
    type: list
    elements: str
    default: []
  states:
    description: Instance statuses to include (for example C(RUNNING), C(TERMINATED)). An empty list includes all.
    type: list
    elements: str
    default: [RUNNING]
  hostnames:
    default: [instance_name]
  ansible_host:
    default: [network_ip, nat_ip]
  hostvars:
    default: [project, zone, machine_type, network_ip, nat_ip, labels]
  auth_kind:
    description:
      - C(serviceaccount) reads O(service_account_file) (or O(service_account_contents));
        C(application) uses application default credentials; C(accesstoken) uses O(access_token).
    type: str
    choices: [serviceaccount, application, accesstoken]
    default: serviceaccount
    env:
      - name: GCP_AUTH_KIND
  service_account_file:
    description: Service account JSON key file.
    type: path
    env:
      - name: GCP_SERVICE_ACCOUNT_FILE
  service_account_contents:
    description: Service account JSON key, as a string.
    type: str
  access_token:
    description: OAuth2 access token for O(auth_kind=accesstoken).
    type: str
    env:
      - name: GCP_ACCESS_TOKEN
  scopes:
    description: OAuth2 scopes to request.
    type: list
    elements: str
    default: ['https://www.googleapis.com/auth/compute.readonly']
  compute_endpoint:
    description: Base URL of the Compute Engine API v1 (a private endpoint or a test server).
    type: str
    default: https://compute.googleapis.com/compute/v1
  request_timeout:
    description: Seconds to wait for one API response.
    type: float
    default: 60
"""

EXAMPLES = r"""
# inventories/prod.gcp_compute.yml
plugin: scratchbird.cluster.gcp_compute
projects: [scratchbird-prod-eu, scratchbird-prod-us]
auth_kind: serviceaccount
service_account_file: ~/.config/gcloud/scratchbird-inventory.json
cluster_name: prod
keyed_groups:
  - key: zone
    prefix: zone
"""

import json
import re

from ansible.errors import AnsibleError
from ansible.module_utils.common.text.converters import to_native
from ansible_collections.scratchbird.cluster.plugins.plugin_utils.inventory import (
    ClusterInventory, RetryableError, parse_retry_after, require)

PAGE_SIZE = 500
PROJECT_ID = re.compile(r"^[a-z][a-z0-9-]{4,28}[a-z0-9]$|^[a-z0-9.-]+:[a-z][a-z0-9-]{4,28}[a-z0-9]$")


def _last(url):
    return url.rsplit("/", 1)[-1] if url else None


def instance_record(instance, project):
    """The host variables of one compute#instance."""
    nics = instance.get("networkInterfaces") or [{}]
    nat = [c.get("natIP") for c in nics[0].get("accessConfigs", []) if c.get("natIP")]
    zone = _last(instance.get("zone"))
    labels = instance.get("labels") or {}
    hostvars = {
        "instance_name": instance["name"],
        "id": instance.get("id"),
        "project": project,
        "zone": zone,
        "region": zone.rsplit("-", 1)[0] if zone else None,
        "status": instance.get("status"),
        "machine_type": _last(instance.get("machineType")),
        "network_ip": nics[0].get("networkIP"),
        "nat_ip": nat[0] if nat else None,
        "labels": labels,
        "network_tags": (instance.get("tags") or {}).get("items", []),
        "self_link": instance.get("selfLink"),
        "creation_timestamp": instance.get("creationTimestamp"),
    }
    return {"id": instance.get("selfLink") or "%s/%s/%s" % (project, zone, instance["name"]),
            "name": instance["name"], "labels": labels, "vars": hostvars}


class InventoryModule(ClusterInventory):

    NAME = "scratchbird.cluster.gcp_compute"
    VARIABLES = ("instance_name", "id", "project", "zone", "region", "status", "machine_type", "network_ip", "nat_ip", "labels",
                 "network_tags", "self_link", "creation_timestamp")
    SOURCE = "project"

    def _setup(self):
        self._requests = require(self.NAME, "requests", "requests")
        transport = require(self.NAME, "google.auth.transport.requests", "google-auth")
        projects = self.get_option("projects")
        if not projects:
            raise AnsibleError("projects: name at least one project id")
        wrong = [p for p in projects if not PROJECT_ID.match(p)]
        if wrong:
            raise AnsibleError("projects: %s is not a project id (6-30 lower-case letters, digits and hyphens)" % ", ".join(wrong))
        self._token = self._access_token(transport)
        self._endpoint = self.get_option("compute_endpoint").rstrip("/")
        self._filter = " ".join("(%s)" % f for f in self._filters())

    def _access_token(self, transport):
        """One token for the whole run, taken before any instance call (bad credentials fail here)."""
        if self.get_option("auth_kind") == "accesstoken":
            if not self.get_option("access_token"):
                raise AnsibleError("auth_kind=accesstoken needs access_token (or GCP_ACCESS_TOKEN)")
            return self.get_option("access_token")
        credentials = self._credentials()
        try:
            credentials.refresh(transport.Request())
        except Exception as exc:  # google.auth.exceptions.* and transport errors
            raise AnsibleError("cannot get an access token with auth_kind=%s: %s" % (self.get_option("auth_kind"), to_native(exc)))
        return credentials.token

    def _credentials(self):
        kind = self.get_option("auth_kind")
        scopes = self.get_option("scopes")
        if kind == "application":
            google_auth = require(self.NAME, "google.auth", "google-auth")
            try:
                return google_auth.default(scopes=scopes)[0]
            except Exception as exc:  # DefaultCredentialsError
                raise AnsibleError("auth_kind=application: %s" % to_native(exc))
        service_account = require(self.NAME, "google.oauth2.service_account", "google-auth")
        path, contents = self.get_option("service_account_file"), self.get_option("service_account_contents")
        try:
            if contents:
                return service_account.Credentials.from_service_account_info(json.loads(contents), scopes=scopes)
            if path:
                return service_account.Credentials.from_service_account_file(path, scopes=scopes)
        except (IOError, OSError, ValueError) as exc:
            raise AnsibleError("service account key %s: %s" % (path or "service_account_contents", to_native(exc)))
        raise AnsibleError("auth_kind=serviceaccount needs service_account_file (or GCP_SERVICE_ACCOUNT_FILE) or service_account_contents")

    def _filters(self):
        filters = list(self.get_option("filters"))
        if self.get_option("states"):
            filters.append(" OR ".join("status = %s" % s for s in self.get_option("states")))
        if self.get_option("cluster_name"):
            filters.append('labels.%s = "%s"' % (self.get_option("cluster_key").lower(), self.get_option("cluster_name")))
        return filters

    def _sources(self):
        return [str(p) for p in self.get_option("projects")]

    def _get(self, session, url, params):
        try:
            response = session.get(url, params=params, timeout=self.get_option("request_timeout"),
                                   headers={"Authorization": "Bearer %s" % self._token})
        except self._requests.exceptions.RequestException as exc:
            raise RetryableError("%s: %s" % (self._endpoint, to_native(exc)))
        if response.status_code == 429 or response.status_code >= 500:
            raise RetryableError("HTTP %d from %s: %s" % (response.status_code, url, _message(response)),
                                 parse_retry_after(response.headers.get("Retry-After")))
        if response.status_code != 200:
            raise AnsibleError("HTTP %d from %s: %s" % (response.status_code, url, _message(response)))
        return response.json()

    def _fetch(self, source):
        session = self._requests.Session()
        url = "%s/projects/%s/aggregated/instances" % (self._endpoint, source)
        params = {"maxResults": PAGE_SIZE, "returnPartialSuccess": "true"}
        if self._filter:
            params["filter"] = self._filter
        zones = set(self.get_option("zones") or [])
        while True:
            page = self.retry(lambda: self._get(session, url, params), lambda exc: None)
            records = []
            for scope, listing in sorted(page.get("items", {}).items()):
                if zones and scope.split("/")[-1] not in zones:
                    continue
                records.extend(instance_record(i, source) for i in listing.get("instances", []))
            for unreachable in page.get("unreachables", []):
                self.display.warning("%s: project %s: %s was unreachable; its instances are missing" % (self.NAME, source, unreachable))
            yield records
            if not page.get("nextPageToken"):
                return
            params["pageToken"] = page["nextPageToken"]


def _message(response):
    try:
        return response.json()["error"]["message"]
    except (ValueError, KeyError, TypeError):
        return response.text[:300]
