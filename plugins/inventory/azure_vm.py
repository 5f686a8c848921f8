# -*- coding: utf-8 -*-
# Copyright: scratchbird.cluster contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
name: azure_vm
short_description: Azure virtual machines of the cluster, grouped by tier
version_added: 0.1.0
description:
  - Finds the cluster's virtual machines with one Azure Resource Graph query per subscription that
    returns the VMs, their network interfaces and public IP addresses together (no call per VM or
    per NIC), paged with C($skipToken); all subscriptions at the same time; each page retried on
    429 (honouring Retry-After) and 5xx.
  - Puts each VM in the collection's group for its tier (C(clock_masters), C(tx_engines),
    C(ingestion_engines), C(olap_shards), C(kafka_brokers)) from its C(Tier) tag or its name.
  - Authenticates with azure-identity (its default chain, environment, managed identity, the Azure
    CLI, or a service principal given here).
  - The inventory file name must end in C(azure_vm.yml) or C(azure_vm.yaml).
  - "Host variables: C(vm_name), C(id), C(subscription_id), C(resource_group), C(location), C(vm_size),
    C(computer_name), C(power_state), C(private_ip), C(private_ips), C(public_ip), C(public_ips), C(azure_tags)."
requirements:
  - azure-identity
  - azure-mgmt-resourcegraph
extends_documentation_fragment:
  - scratchbird.cluster.inventory
  - constructed
  - inventory_cache
options:
  plugin:
    choices: [scratchbird.cluster.azure_vm]
  subscriptions:
    description: Subscription ids to search, all at once.
    type: list
    elements: str
    required: true
  resource_groups:
    description: Only VMs in these resource groups (all when unset; compared case-insensitively).
    type: list
    elements: str
  states:
    description:
      - VM power states to include (C(running), C(stopped), C(deallocated), ...). An empty list includes all.
    type: list
    elements: str
    default: [running]
  hostnames:
    default: [vm_name]
  ansible_host:
    default: [private_ip, public_ip]
  hostvars:
    default: [resource_group, location, vm_size, private_ip, public_ip, azure_tags]
  auth_source:
    description:
      - C(auto) is azure-identity's DefaultAzureCredential (without interactive login);
        C(environment) the C(AZURE_*) variables; C(managed_identity) the host's managed identity
        (optionally O(client_id)); C(cli) the Azure CLI's login; C(credential) the service principal
        O(client_id), O(secret) and O(tenant).
    type: str
    choices: [auto, environment, managed_identity, cli, credential]
    default: auto
    env:
      - name: ANSIBLE_AZURE_AUTH_SOURCE
  client_id:
    description: Application (client) id of a service principal or user-assigned managed identity.
    type: str
    env:
      - name: AZURE_CLIENT_ID
  secret:
    description: Client secret of the service principal for O(auth_source=credential).
    type: str
    env:
      - name: AZURE_SECRET
  tenant:
    description: Tenant id of the service principal for O(auth_source=credential).
    type: str
    env:
      - name: AZURE_TENANT
  resource_manager_endpoint:
    description: Azure Resource Manager endpoint (another cloud, or a test server).
    type: str
    default: https://management.azure.com
  credential_scope:
    description: Scope of the access token.
    type: str
    default: https://management.azure.com/.default
"""

EXAMPLES = r"""
# inventories/prod.azure_vm.yml
plugin: scratchbird.cluster.azure_vm
subscriptions: [00000000-0000-0000-0000-000000000001, 00000000-0000-0000-0000-000000000002]
auth_source: auto
cluster_name: prod
keyed_groups:
  - key: location
    prefix: location
"""

import re

from ansible.errors import AnsibleError
from ansible.module_utils.common.text.converters import to_native
from ansible_collections.scratchbird.cluster.plugins.plugin_utils.inventory import (
    ClusterInventory, RetryableError, parse_retry_after, require)

PAGE_SIZE = 1000
SUBSCRIPTION_ID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
VM = "microsoft.compute/virtualmachines"
NIC = "microsoft.network/networkinterfaces"
PUBLIC_IP = "microsoft.network/publicipaddresses"
# One query: the VMs, their NICs and public IPs, joined here rather than in KQL.
QUERY = ("Resources | where type in~ ('%s', '%s', '%s') "
         "| project id, name, type, location, resourceGroup, subscriptionId, tags, properties "
         "| order by id asc" % (VM, NIC, PUBLIC_IP))


def vm_records(rows):
    """Host records from the query's rows: each VM with the addresses of its NICs."""
    by_type = {VM: [], NIC: {}, PUBLIC_IP: {}}
    for row in rows:
        kind = (row.get("type") or "").lower()
        if kind == VM:
            by_type[VM].append(row)
        elif kind in by_type:
            by_type[kind][row["id"].lower()] = row.get("properties") or {}
    records = []
    for vm in by_type[VM]:
        props = vm.get("properties") or {}
        private, public = [], []
        for ref in (props.get("networkProfile") or {}).get("networkInterfaces", []):
            nic = by_type[NIC].get((ref.get("id") or "").lower(), {})
            for config in nic.get("ipConfigurations", []):
                config = config.get("properties") or {}
                if config.get("privateIPAddress"):
                    private.append(config["privateIPAddress"])
                pip = by_type[PUBLIC_IP].get(((config.get("publicIPAddress") or {}).get("id") or "").lower(), {})
                if pip.get("ipAddress"):
                    public.append(pip["ipAddress"])
        power = ((props.get("extended") or {}).get("instanceView") or {}).get("powerState") or {}
        tags = vm.get("tags") or {}
        hostvars = {
            "vm_name": vm["name"],
            "id": vm["id"],
            "subscription_id": vm.get("subscriptionId"),
            "resource_group": vm.get("resourceGroup"),
            "location": vm.get("location"),
            "vm_size": (props.get("hardwareProfile") or {}).get("vmSize"),
            "computer_name": (props.get("osProfile") or {}).get("computerName"),
            "power_state": (power.get("code") or "").split("/")[-1] or None,
            "private_ip": private[0] if private else None,
            "private_ips": private,
            "public_ip": public[0] if public else None,
            "public_ips": public,
            "azure_tags": tags,
        }
        records.append({"id": vm["id"], "name": vm["name"], "labels": tags, "vars": hostvars})
    return records


class InventoryModule(ClusterInventory):

    NAME = "scratchbird.cluster.azure_vm"
    VARIABLES = ("vm_name", "id", "subscription_id", "resource_group", "location", "vm_size", "computer_name", "power_state", "private_ip",
                 "private_ips", "public_ip", "public_ips", "azure_tags")
    SOURCE = "subscription"

    def _setup(self):
        self._core_exceptions = require(self.NAME, "azure.core.exceptions", "azure-core")
        identity = require(self.NAME, "azure.identity", "azure-identity")
        self._graph = require(self.NAME, "azure.mgmt.resourcegraph", "azure-mgmt-resourcegraph")
        self._models = require(self.NAME, "azure.mgmt.resourcegraph.models", "azure-mgmt-resourcegraph")
        if not self.get_option("subscriptions"):
            raise AnsibleError("subscriptions: name at least one subscription id")
        wrong = [s for s in self.get_option("subscriptions") if not SUBSCRIPTION_ID.match(s)]
        if wrong:
            raise AnsibleError("subscriptions: %s is not a subscription id (a GUID)" % ", ".join(wrong))
        self._credential = self._make_credential(identity)
        try:  # one token now: bad credentials fail here, before any query
            self._credential.get_token(self.get_option("credential_scope"))
        except Exception as exc:  # CredentialUnavailableError, ClientAuthenticationError
            raise AnsibleError("cannot get an Azure access token with auth_source=%s: %s"
                               % (self.get_option("auth_source"), to_native(exc).splitlines()[0]))

    def _make_credential(self, identity):
        source = self.get_option("auth_source")
        if source == "credential":
            missing = [o for o in ("client_id", "secret", "tenant") if not self.get_option(o)]
            if missing:
                raise AnsibleError("auth_source=credential needs %s" % ", ".join(missing))
            return identity.ClientSecretCredential(self.get_option("tenant"), self.get_option("client_id"), self.get_option("secret"))
        if source == "environment":
            return identity.EnvironmentCredential()
        if source == "managed_identity":
            return identity.ManagedIdentityCredential(client_id=self.get_option("client_id"))
        if source == "cli":
            return identity.AzureCliCredential()
        return identity.DefaultAzureCredential(exclude_interactive_browser_credential=True)

    def _sources(self):
        return [str(s) for s in self.get_option("subscriptions")]

    def _classify(self, exc):
        errors = self._core_exceptions
        if isinstance(exc, errors.ServiceRequestError):
            return RetryableError("%s: %s" % (self.get_option("resource_manager_endpoint"), to_native(exc)))
        if isinstance(exc, errors.HttpResponseError) and exc.status_code is not None and (exc.status_code == 429 or exc.status_code >= 500):
            headers = exc.response.headers if exc.response is not None else {}
            return RetryableError("HTTP %s: %s" % (exc.status_code, exc.message), parse_retry_after(headers.get("Retry-After")))
        return None

    def _fetch(self, source):
        # The client's own retries are off: ours are jittered, honour Retry-After and are the same in every plugin.
        client = self._graph.ResourceGraphClient(self._credential, base_url=self.get_option("resource_manager_endpoint"),
                                                 credential_scopes=[self.get_option("credential_scope")], retry_total=0)
        rows, skip_token = [], None
        while True:
            request = self._models.QueryRequest(
                subscriptions=[source], query=QUERY,
                options=self._models.QueryRequestOptions(top=PAGE_SIZE, skip_token=skip_token, result_format="objectArray"))
            try:
                page = self.retry(lambda: client.resources(request), self._classify)
            except self._core_exceptions.HttpResponseError as exc:
                raise AnsibleError("Resource Graph: HTTP %s: %s" % (exc.status_code, exc.message))
            rows.extend(page.data or [])
            skip_token = page.skip_token
            if not skip_token:
                break
        groups = set(g.lower() for g in self.get_option("resource_groups") or [])
        states = set(self.get_option("states") or [])
        yield [r for r in vm_records(rows)
               if (not groups or (r["vars"]["resource_group"] or "").lower() in groups)
               and (not states or r["vars"]["power_state"] in states)]
