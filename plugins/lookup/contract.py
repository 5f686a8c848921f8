# -*- coding: utf-8 -*-
# Copyright: scratchbird.cluster contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
name: contract
author: scratchbird.cluster contributors (@scratchbird)
version_added: 0.2.0
short_description: The cluster contract - the tier table and the cluster-wide defaults
description:
  - Returns a part of the cluster contract, the one home of the tier table and the cluster-wide
    defaults that the roles, the playbooks, the filters, the modules and the cluster plan read.
  - V(tiers) - per inventory group (C(clock_masters), C(kafka_brokers), C(ingestion_engines),
    C(olap_shards), C(tx_engines), in bootstrap order) its C(role), C(label), C(unit),
    C(config_file), C(data_dir), C(metrics_port) and C(size) (the contract's [min, max]).
  - V(defaults) - the cluster-wide variables and their defaults (C(cluster_name),
    C(cluster_max_acceptable_uncertainty_ns), C(cluster_heartbeat_port), C(cluster_kafka_port), ...).
  - V(groups) - the tier groups in bootstrap order; V(engine_groups) - the engine tiers' groups.
options:
  _terms:
    description: The parts to return, V(tiers), V(defaults), V(groups) or V(engine_groups).
    required: true
    type: list
    elements: str
"""

EXAMPLES = r"""
- name: Each tier's role
  ansible.builtin.debug:
    msg: "{{ lookup('scratchbird.cluster.contract', 'tiers') | dict2items | map(attribute='value.role') }}"
"""

RETURN = r"""
_raw:
  description: The requested parts, one per term.
  type: list
  elements: raw
"""

import copy

from ansible.errors import AnsibleLookupError
from ansible.plugins.lookup import LookupBase

from ansible_collections.scratchbird.cluster.plugins.module_utils import contract

PARTS = {"tiers": contract.TIERS, "defaults": contract.DEFAULTS, "groups": list(contract.GROUPS),
         "engine_groups": list(contract.ENGINE_GROUPS)}


class LookupModule(LookupBase):
    def run(self, terms, variables=None, **kwargs):
        unknown = [t for t in terms if t not in PARTS]
        if unknown:
            raise AnsibleLookupError("contract: unknown part(s) %s; known: %s" % (", ".join(unknown), ", ".join(PARTS)))
        return [copy.deepcopy(PARTS[t]) for t in terms]
