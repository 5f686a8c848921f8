# -*- coding: utf-8 -*-
# Copyright: scratchbird.cluster contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type


class ModuleDocFragment(object):
    # Options every inventory plugin of the collection shares (plugin_utils/inventory.py).
    DOCUMENTATION = r"""
options:
  plugin:
    description: The name of the plugin (its choice is the one accepted value).
    type: str
    required: true
  tier_key:
    description:
      - Tag or label whose value names a host's tier (the key is matched case-insensitively,
        so C(Tier) also finds GCP's lower-case C(tier) label).
      - Each host gets the variable C(scratchbird_tier) (its group, or null).
    type: str
    default: Tier
  tier_map:
    description:
      - Tier values and the collection group each one maps to, merged over the defaults
        C(clock) -> C(clock_masters), C(transaction) -> C(tx_engines), C(ingestion) -> C(ingestion_engines),
        C(olap) -> C(olap_shards), C(kafka) -> C(kafka_brokers). A value that is itself a group name also works.
    type: dict
    default: {}
  tier_name_patterns:
    description:
      - For hosts without a tier tag, shell patterns on the instance name per group.
      - Set to C({}) to rely on tags alone.
    type: dict
    default:
      clock_masters: ['clock-master-*', 'clock-*']
      tx_engines: ['tx-engine-*', 'tx-*']
      ingestion_engines: ['ingestion-*', 'ingest-*']
      olap_shards: ['olap-shard-*', 'olap-*']
      kafka_brokers: ['kafka-*']
  hostnames:
    description:
      - Preference list for the inventory hostname, the first non-empty wins. An entry is one of the
        plugin's host variables (listed in its description; a dotted path reaches inside one, for
        example C(placement.availability_zone)) or C(tag:KEY) / C(label:KEY) of the instance's tags,
        labels or meta.
      - See O(hostname_duplicates) for two instances with the same name.
    type: list
    elements: str
  ansible_host:
    description: Host variables to take C(ansible_host) from, the first non-empty wins.
    type: list
    elements: str
  hostvars:
    description:
      - Host variables (of those listed in the plugin's description) to set on each host besides
        C(ansible_host) and C(scratchbird_tier).
      - O(compose), O(groups), O(keyed_groups) and O(hostnames) see all of them either way; each
        variable set costs time on every later load of the inventory, so the default is short.
    type: list
    elements: str
  cluster_name:
    description:
      - Only instances of this cluster, read from the O(cluster_key) tag or label.
      - Applied by the API where it can filter (EC2 filters, Compute filter expressions).
    type: str
  cluster_key:
    description: Tag or label holding the cluster name.
    type: str
    default: Cluster
  hostname_duplicates:
    description:
      - What to do when two instances get the same hostname from O(hostnames).
      - C(fallback) names the later one by its next preference (finally its unique id) and
        warns; C(error) stops with both instances named. No instance is ever dropped.
    type: str
    choices: [fallback, error]
    default: fallback
  retries:
    description:
      - Retries of one API call on throttling (429, throttling error codes), 5xx and dropped
        connections, with full-jitter exponential backoff; a Retry-After header is honoured.
    type: int
    default: 6
  retry_base_delay:
    description: First backoff ceiling in seconds; it doubles each retry.
    type: float
    default: 0.5
  retry_max_delay:
    description: Longest single wait in seconds, also the cap on Retry-After.
    type: float
    default: 30
  max_workers:
    description: Sources (regions, projects, subscriptions, datacenters) fetched at the same time.
    type: int
    default: 8
"""
