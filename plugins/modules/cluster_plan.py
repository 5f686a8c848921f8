#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: scratchbird.cluster contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: cluster_plan
short_description: Compute the whole cluster plan on the controller and check it before any host changes
version_added: 0.2.0
description:
  - An action plugin, run on the controller (C(localhost)), that reads the inventory (C(groups),
    C(hostvars)) and the part of the plan each role stated for its hosts (the host fact
    C(engine_plan_parts), C(clock_master_plan), C(kafka_plan), C(tx_engine_plan_server_id), set by the roles' C(tasks_from=plan) entry points without contacting
    the host) and returns the cluster plan - per host its tiers, its address, the ports it listens on
    (per protocol), its firewall rules and the endpoints it uses; per tier its size against the
    contract; the TX engines' server ids.
  - "It checks, each with a message naming the variable, its value and what to change: every host's
    address is an IP address (not a DNS name); every firewall rule's sources are CIDRs and admit the
    hosts that must reach the port (the clock masters' NTP and heartbeat admit every cluster host,
    the TX heartbeat admits the clock masters, the Kafka listeners admit the engines and the brokers);
    no two daemons on a host want the same port and protocol; every tier's size is within the
    contract (an error or a warning, O(tier_size_policy)); the TX engines' server ids are unique;
    the cluster-wide durations and ports (C(cluster_max_acceptable_uncertainty_ns) also with a unit,
    C(50ms)) are valid; every endpoint is host:port or an http(s)/ftp URL."
  - It contacts nothing; whether the endpoints answer is probed from the hosts that use them by
    the pre-flight (C(playbooks/preflight.yml)), with each endpoint's C(target) in RV(plan.hosts).
  - Hosts outside C(--limit) have no stated part; they are listed as not planned and only their
    address is checked.
author: scratchbird.cluster contributors (@scratchbird)
options:
  tier_size_policy:
    description:
      - What a tier size outside the contract is - C(fail), an error, or C(warn), a warning.
      - Default C(fail) when C(cluster_environment) is C(production) (its default), else C(warn).
    type: str
    choices: [fail, warn]
  json_path:
    description: Write the plan as JSON (mode 0600) to this path on the controller.
    type: path
  fail_on_error:
    description: Fail when the plan has a problem (after writing O(json_path)).
    type: bool
    default: true
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
    details: Runs the same in check mode; the JSON is the check's output and is written in check mode too.
  diff_mode:
    support: none
  platform:
    support: full
    platforms: posix
seealso:
  - module: scratchbird.cluster.cluster_health
"""

EXAMPLES = r"""
- name: Plan and check the cluster
  scratchbird.cluster.cluster_plan:
    json_path: /var/tmp/cluster-plan.json
  register: plan

- name: Show it
  ansible.builtin.debug:
    msg: "{{ plan.table.split('\n') }}"
"""

RETURN = r"""
plan:
  description: The cluster plan.
  returned: always
  type: dict
  contains:
    hosts:
      description: Per inventory host - address, groups, planned, listens, rules, endpoints (with target host:port), server_id.
      type: dict
    tiers:
      description: Per tier group - size, contract [min, max], status (ok, outside the contract, external).
      type: dict
    server_ids:
      description: The TX engines' server ids (unique ones) and their hosts.
      type: dict
    settings:
      description: The cluster-wide settings, defaults applied and durations in nanoseconds.
      type: dict
    errors:
      description: Every problem found.
      type: list
      elements: str
    warnings:
      description: Every warning.
      type: list
      elements: str
table:
  description: The plan as text, a table per host, for operators.
  returned: always
  type: str
json_path:
  description: The JSON file written, if any.
  returned: always
  type: str
"""

from ansible.module_utils.basic import AnsibleModule


def main():
    module = AnsibleModule(
        argument_spec=dict(tier_size_policy=dict(type="str", choices=["fail", "warn"]),
                           json_path=dict(type="path"), fail_on_error=dict(type="bool", default=True)),
        supports_check_mode=True)
    module.fail_json(msg="cluster_plan is an action plugin: it runs on the controller, not as a module on a host")


if __name__ == "__main__":
    main()
