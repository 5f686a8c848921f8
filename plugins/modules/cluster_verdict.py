#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: scratchbird.cluster contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: cluster_verdict
short_description: Turn the cluster's health state into the exit status of ansible-playbook
version_added: 0.2.0
description:
  - An action plugin, run on the controller, that ends a health check with one exit status per
    state - V(HEALTHY) returns normally (exit status 0), V(UNHEALTHY) fails the task (exit status 2)
    and V(DEGRADED), a loss within redundancy, reports the task unreachable so that
    C(ansible-playbook) exits with 4.
  - C(ansible-playbook) has no other status a task can choose. Exit status 4 also means a parse
    error or an unreachable host to Ansible; the playbooks of this collection probe the hosts with
    C(ignore_unreachable), so in a health check only this task gives it, and the JSON report's
    C(state) names the state either way.
  - The recap counts the verdict on the host that ran it (with C(run_once), the play's first host).
author: scratchbird.cluster contributors (@scratchbird)
options:
  state:
    description: The state, RV(scratchbird.cluster.cluster_health#module:state) of the health check.
    type: str
    required: true
    choices: [HEALTHY, DEGRADED, UNHEALTHY]
  msg:
    description: The message of the result.
    type: str
    default: The cluster is <state>.
attributes:
  check_mode:
    support: full
  diff_mode:
    support: none
  platform:
    support: full
    platforms: posix
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
seealso:
  - module: scratchbird.cluster.cluster_health
"""

EXAMPLES = r"""
- name: End the run with the cluster's state
  scratchbird.cluster.cluster_verdict:
    state: "{{ cluster_health.state }}"
    msg: "The cluster is {{ cluster_health.state }}; see {{ cluster_health.html_path }}."
  run_once: true
"""

RETURN = r"""
state:
  description: The state given.
  returned: always
  type: str
  sample: DEGRADED
msg:
  description: The message given.
  returned: always
  type: str
"""
