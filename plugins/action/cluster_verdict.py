# Copyright: scratchbird.cluster contributors
# Apache License 2.0 (see LICENSE)
"""The cluster's verdict as the run's exit status (see the cluster_verdict module)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible.errors import AnsibleActionFail
from ansible.plugins.action import ActionBase

STATES = ("HEALTHY", "DEGRADED", "UNHEALTHY")


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _requires_connection = False
    _VALID_ARGS = frozenset(("state", "msg"))

    def run(self, tmp=None, task_vars=None):
        result = super(ActionModule, self).run(tmp, task_vars)
        args = self._task.args
        unknown = set(args) - self._VALID_ARGS
        if unknown:
            raise AnsibleActionFail("cluster_verdict: unsupported options %s" % ", ".join(sorted(unknown)))
        state = str(args.get("state", "")).upper()
        if state not in STATES:
            raise AnsibleActionFail("cluster_verdict: state must be one of %s, got %r" % (", ".join(STATES), args.get("state")))
        msg = str(args.get("msg") or "The cluster is %s." % state)
        result.update(changed=False, state=state, msg=msg)
        if state == "UNHEALTHY":
            result["failed"] = True
        elif state == "DEGRADED":
            result["unreachable"] = True  # ansible-playbook's exit status 4
        return result
