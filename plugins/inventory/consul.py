# -*- coding: utf-8 -*-
# Copyright: scratchbird.cluster contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
name: consul
short_description: Nodes of the cluster from the Consul catalog, grouped by service and tier
version_added: 0.1.0
description:
  - Reads the Consul catalog with py-consul, every service of the chosen datacenters and the nodes
    that run it, by default only instances whose health checks pass. Datacenters and services
    are read at the same time; each call is retried on dropped connections and 5xx.
  - A node becomes one host (named by its node name), in a group per service (C(SERVICE)) and per
    service tag (C(SERVICE_TAG)), and in the collection's group for its tier (C(clock_masters),
    C(tx_engines), C(ingestion_engines), C(olap_shards), C(kafka_brokers)) from the O(tier_key)
    in its service or node meta, a C(KEY=VALUE) service tag, or its node name.
  - The inventory file name must end in C(consul.yml) or C(consul.yaml).
  - "Host variables: C(consul_node), C(consul_address), C(consul_datacenter), C(consul_node_meta),
    C(consul_services) (per service its C(id), C(address), C(port), C(tags), C(meta))."
requirements:
  - py-consul
extends_documentation_fragment:
  - scratchbird.cluster.inventory
  - constructed
  - inventory_cache
options:
  plugin:
    choices: [scratchbird.cluster.consul]
  url:
    description: Address of a Consul agent or server's HTTP API.
    type: str
    default: http://127.0.0.1:8500
    env:
      - name: CONSUL_HTTP_ADDR
  token:
    description: ACL token (needs C(service:read) and C(node:read)).
    type: str
    env:
      - name: CONSUL_HTTP_TOKEN
  validate_certs:
    description: Verify the agent's TLS certificate for an C(https) O(url).
    type: bool
    default: true
  ca_path:
    description: CA bundle to verify the agent's certificate with.
    type: path
  datacenters:
    description: Datacenters to read; C(all) reads every datacenter the catalog knows. Default is the agent's own.
    type: list
    elements: str
  services:
    description: Only these services (all services but C(consul) when unset).
    type: list
    elements: str
  passing_only:
    description: Only service instances whose health checks all pass.
    type: bool
    default: true
  tag_groups:
    description: Also group hosts by C(SERVICE_TAG) for every tag of a service.
    type: bool
    default: true
  hostnames:
    default: [consul_node]
  ansible_host:
    default: [consul_address]
  hostvars:
    default: [consul_node, consul_address, consul_datacenter, consul_node_meta, consul_services]
"""

EXAMPLES = r"""
# inventories/prod.consul.yml
plugin: scratchbird.cluster.consul
url: https://consul.service.internal:8501
datacenters: [eu-west, us-east]
cluster_name: prod
passing_only: true
"""

from concurrent.futures import ThreadPoolExecutor

from ansible.errors import AnsibleError
from ansible.module_utils.common.text.converters import to_native
from ansible.module_utils.six.moves.urllib.parse import urlparse
from ansible_collections.scratchbird.cluster.plugins.plugin_utils.inventory import ClusterInventory, RetryableError, require


def service_records(entries):
    """One record per (node, service instance) of a health.service answer."""
    records = []
    for entry in entries:
        node, service = entry["Node"], entry["Service"]
        datacenter = node.get("Datacenter")
        labels = dict(node.get("Meta") or {})
        labels.update(service.get("Meta") or {})
        labels.update(t.split("=", 1) for t in service.get("Tags") or [] if "=" in t)
        name = service["Service"]
        groups = [name] + ["%s_%s" % (name, t) for t in service.get("Tags") or []]
        records.append({
            "id": "%s/%s" % (datacenter, node["Node"]), "name": node["Node"], "labels": labels, "groups": groups,
            "vars": {
                "consul_node": node["Node"],
                "consul_address": node.get("Address"),
                "consul_datacenter": datacenter,
                "consul_node_meta": node.get("Meta") or {},
                "consul_services": {name: {"id": service.get("ID"), "address": service.get("Address") or node.get("Address"),
                                           "port": service.get("Port"), "tags": service.get("Tags") or [],
                                           "meta": service.get("Meta") or {}}},
            }})
    return records


def merge_nodes(records):
    """A node running several services is one host with all of them."""
    nodes = {}
    for record in records:
        known = nodes.get(record["id"])
        if known is None:
            nodes[record["id"]] = record
            continue
        known["labels"].update(record["labels"])
        known["groups"] = known["groups"] + [g for g in record["groups"] if g not in known["groups"]]
        known["vars"]["consul_services"].update(record["vars"]["consul_services"])
    return sorted(nodes.values(), key=lambda r: r["id"])


class InventoryModule(ClusterInventory):

    NAME = "scratchbird.cluster.consul"
    VARIABLES = ("consul_node", "consul_address", "consul_datacenter", "consul_node_meta", "consul_services")
    SOURCE = "datacenter"
    MERGES = True

    def _setup(self):
        consul = require(self.NAME, "consul", "py-consul")
        self._errors = require(self.NAME, "consul.exceptions", "py-consul")
        self._requests = require(self.NAME, "requests", "requests")
        url = urlparse(self.get_option("url"))
        if url.scheme not in ("http", "https") or not url.hostname:
            raise AnsibleError("url: %r is not an http(s)://host:port address" % self.get_option("url"))
        verify = self.get_option("ca_path") or self.get_option("validate_certs")
        self._url = self.get_option("url")
        self._client = consul.Consul(host=url.hostname, port=url.port or (443 if url.scheme == "https" else 8500),
                                     scheme=url.scheme, token=self.get_option("token"), verify=verify)
        self._datacenters = self._call(self._choose_datacenters)

    def _choose_datacenters(self):
        wanted = [str(d) for d in self.get_option("datacenters") or []]
        if not wanted:
            return [None]  # the agent's own
        known = self._client.catalog.datacenters()
        if wanted == ["all"]:
            return known
        unknown = [d for d in wanted if d not in known]
        if unknown:
            raise AnsibleError("datacenters: unknown %s (the catalog knows %s)" % (", ".join(unknown), ", ".join(known)))
        return wanted

    def _classify(self, exc):
        if isinstance(exc, (self._requests.exceptions.ConnectionError, self._requests.exceptions.Timeout, self._errors.Timeout)):
            return RetryableError("%s: %s" % (self._url, to_native(exc)))
        if isinstance(exc, self._errors.ConsulException) and to_native(exc).startswith("5"):
            return RetryableError(to_native(exc))
        return None

    def _call(self, call):
        try:
            return self.retry(call, self._classify)
        except self._errors.ACLPermissionDenied as exc:
            raise AnsibleError("Consul ACL denied at %s: the token lacks service:read/node:read (%s)" % (self._url, to_native(exc)))
        except self._errors.ConsulException as exc:
            raise AnsibleError("Consul at %s: %s" % (self._url, to_native(exc)))

    def _sources(self):
        return self._datacenters

    def _fetch(self, source):
        names = self._call(lambda: self._client.catalog.services(dc=source)[1])
        wanted = self.get_option("services")
        names = sorted(n for n in names if (n in wanted if wanted else n != "consul"))
        passing = self.get_option("passing_only")

        def instances(name):
            return service_records(self._call(lambda: self._client.health.service(name, passing=passing, dc=source)[1]))

        # The services of a datacenter are read at the same time too; the order stays the catalog's.
        with ThreadPoolExecutor(max_workers=max(1, self.get_option("max_workers"))) as pool:
            records = [r for found in pool.map(instances, names) for r in found]
        if not self.get_option("tag_groups"):
            for record in records:
                record["groups"] = record["groups"][:1]
        yield records

    def _merge(self, records):
        return merge_nodes(records)
