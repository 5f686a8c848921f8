# Copyright: scratchbird.cluster contributors
# Apache License 2.0 (see LICENSE)
"""The cluster plan, computed and checked on the controller (see the cluster_plan module)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import os
import tempfile

from ansible.errors import AnsibleActionFail
from ansible.module_utils.common.text.converters import to_native
from ansible.module_utils.parsing.convert_bool import boolean
from ansible.plugins.action import ActionBase

from ansible_collections.scratchbird.cluster.plugins.module_utils.contract import DEFAULTS, GROUPS
from ansible_collections.scratchbird.cluster.plugins.module_utils import plan as cluster_plan


def _plain(value):
    """Templated inventory data as plain JSON types."""
    return json.loads(json.dumps(value, default=to_native))


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _requires_connection = False
    _VALID_ARGS = frozenset(("tier_size_policy", "json_path", "fail_on_error"))

    def run(self, tmp=None, task_vars=None):
        result = super(ActionModule, self).run(tmp, task_vars)
        args = self._task.args
        unknown = set(args) - self._VALID_ARGS
        if unknown:
            raise AnsibleActionFail("cluster_plan: unsupported options %s" % ", ".join(sorted(unknown)))
        hostvars, groups = task_vars["hostvars"], task_vars["groups"]

        settings = dict(DEFAULTS)
        for var in list(DEFAULTS) + ["cluster_cidr", "kafka_mode"]:
            if var in task_vars:
                settings[var] = _plain(self._templar.template(task_vars[var]))
        settings.setdefault("kafka_mode", "self_hosted")
        policy = args.get("tier_size_policy") or (
            "fail" if settings["cluster_environment"] == "production" else "warn")
        if policy not in ("fail", "warn"):
            raise AnsibleActionFail("cluster_tier_size_policy must be fail or warn, got %r" % (policy,))

        hosts = {}
        for group in GROUPS:
            for name in groups.get(group, []):
                if name in hosts:
                    continue
                hv = hostvars[name]
                parts = None
                if "engine_plan_parts" in hv:  # set (maybe empty) on every host the plan play ran on
                    parts = list((hv.get("engine_plan_parts") or {}).values())
                    parts += [p for p in (hv.get("clock_master_plan"), hv.get("kafka_plan")) if p]
                    if hv.get("tx_engine_plan_server_id") is not None:
                        parts.append({"server_id": hv.get("tx_engine_plan_server_id")})
                hosts[name] = {
                    "address": _plain(hv.get("ansible_host", name)),
                    "address_var": "ansible_host" if "ansible_host" in hv else "the inventory name",
                    "groups": [g for g in GROUPS if name in groups.get(g, [])],
                    "parts": None if parts is None else _plain(parts),
                }
        plan = cluster_plan.build(hosts, settings, policy, limited=bool(task_vars.get("ansible_limit")))

        json_path = args.get("json_path")
        if json_path:
            self._write(os.path.expanduser(str(json_path)), plan)
        result.update(changed=False, plan=plan, table=cluster_plan.table(plan), json_path=json_path,
                      warnings=plan["warnings"])
        if plan["errors"] and boolean(args.get("fail_on_error", True), strict=True):
            result.update(failed=True, msg="The cluster plan has %d problem(s); nothing was changed:\n- %s" % (
                len(plan["errors"]), "\n- ".join(plan["errors"])))
        return result

    @staticmethod
    def _write(path, plan):
        directory = os.path.dirname(path) or "."
        if not os.path.isdir(directory):
            os.makedirs(directory, 0o700)
        fd, tmp = tempfile.mkstemp(dir=directory, prefix=".cluster-plan.")
        with os.fdopen(fd, "w") as handle:
            json.dump(plan, handle, indent=2, sort_keys=True)
            handle.write("\n")
        os.chmod(tmp, 0o600)
        os.rename(tmp, path)
