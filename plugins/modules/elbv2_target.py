#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: scratchbird.cluster contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: elbv2_target
short_description: Register or deregister one target of an ELBv2 target group
version_added: 0.1.0
description:
  - Registers one target (an instance ID or an IP address, on a port) in an Application, Network
    or Gateway Load Balancer target group, or deregisters it - for example to drain a
    transaction engine out of its load balancer before upgrading it, and to put it back afterwards.
  - The target's registration is read with DescribeTargetHealth. A target counts as registered
    in every state except C(draining) and the entries whose reason is C(Target.NotRegistered)
    (state C(unused) or C(unavailable)); an instance AWS does not know (error C(InvalidTarget))
    is not registered either.
  - O(state=present) registers the target unless it is registered. A C(draining) target is
    registered again (that is a change). With O(wait) the module then waits until the target's
    state is C(healthy) - also when it was registered already.
  - O(state=absent) deregisters the target if it is registered. A C(draining) target is being
    deregistered already, which is no change. With O(wait) the module then waits until the
    target is gone (connection draining, the target group's deregistration delay).
  - Reports a change only when it registers or deregisters. In check mode it reads the target's
    state, reports what it would do and changes nothing (and does not wait).
author: scratchbird.cluster contributors (@scratchbird)
options:
  target_group_arn:
    description: ARN of the target group.
    type: str
    required: true
  target_id:
    description:
      - The target - an instance ID for a target group of target type C(instance), an IP address
        for one of type C(ip).
    type: str
    required: true
  port:
    description:
      - Port the target receives traffic on, 1 to 65535.
      - When omitted, the target group's port (the port AWS registers a target on when none is given).
      - The same instance on two ports is two targets.
    type: int
  state:
    description: Whether the target should be registered (V(present)) or not (V(absent)).
    type: str
    choices: [present, absent]
    default: present
  wait:
    description:
      - With O(state=present), wait until the target's state is C(healthy); with O(state=absent),
        wait until the target is no longer registered (its connections drained).
      - The module fails when the wait times out, reporting the target's last state and reason;
        what it did before (registration, deregistration) stays done and is reported as a change.
      - A target can only become C(healthy) when the target group's health checks can pass - the
        target group is used by a load balancer (else the state stays C(unused), reason
        C(Target.NotInUse)), its health checks are enabled (else C(unavailable),
        C(Target.HealthCheckDisabled)) and the target answers them. Otherwise use V(false).
    type: bool
    default: true
  wait_timeout:
    description:
      - Seconds to wait at most with O(wait), at least 0. The state is polled every 0.5 to 2 seconds.
      - For O(state=absent), make it longer than the target group's deregistration delay
        (C(deregistration_delay.timeout_seconds), 300 unless set).
    type: int
    default: 300
extends_documentation_fragment:
  - scratchbird.cluster.aws
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
    details: Reads the target's state and reports whether it would register or deregister it.
  diff_mode:
    support: none
  platform:
    support: full
    platforms: posix
notes:
  - "Permissions needed: C(elasticloadbalancing:DescribeTargetGroups),
    C(elasticloadbalancing:DescribeTargetHealth), C(elasticloadbalancing:RegisterTargets) and
    C(elasticloadbalancing:DeregisterTargets)."
  - Targets in another VPC than the target group's or outside its CIDR (C(AvailabilityZone=all))
    are not supported.
seealso:
  - module: scratchbird.cluster.s3_upload
"""

EXAMPLES = r"""
- name: Drain the engine out of the load balancer before its upgrade
  scratchbird.cluster.elbv2_target:
    region: eu-west-1
    target_group_arn: "{{ tx_target_group_arn }}"
    target_id: "{{ instance_id }}"
    port: 5432
    state: absent
    wait_timeout: 600  # longer than the deregistration delay
  delegate_to: localhost

- name: Put it back and wait until its health checks pass
  scratchbird.cluster.elbv2_target:
    region: eu-west-1
    target_group_arn: "{{ tx_target_group_arn }}"
    target_id: "{{ instance_id }}"
    port: 5432
  delegate_to: localhost

- name: Register an IP target in a target group no load balancer uses yet (it cannot become healthy)
  scratchbird.cluster.elbv2_target:
    profile: prod
    target_group_arn: arn:aws:elasticloadbalancing:eu-west-1:123456789012:targetgroup/tx/0123456789abcdef
    target_id: 10.0.1.15
    wait: false
  delegate_to: localhost
"""

RETURN = r"""
state:
  description:
    - The target's health state after the run (in check mode, as found) - C(initial), C(healthy),
      C(unhealthy), C(unhealthy.draining), C(unused), C(draining) or C(unavailable).
    - Null when AWS does not describe the target (error C(InvalidTarget), an unknown instance).
  returned: success
  type: str
  sample: healthy
target_health:
  description: The target's DescribeTargetHealth entry after the run (in check mode, as found); null with RV(state).
  returned: success
  type: dict
  sample:
    Target:
      Id: i-0123456789abcdef0
      Port: 5432
    HealthCheckPort: traffic-port
    TargetHealth:
      State: unused
      Reason: Target.NotRegistered
      Description: Target is not registered to the target group
"""

import time

from ansible_collections.scratchbird.cluster.plugins.module_utils.aws import (
    AWS_ERRORS,
    AWSModuleError,
    aws_module,
    client,
    error_code,
    error_text,
)

HEALTHY = "healthy"
DRAINING = "draining"
NOT_REGISTERED = "Target.NotRegistered"
# Polling interval: from POLL_FIRST, doubling up to POLL_MAX seconds.
POLL_FIRST = 0.5
POLL_MAX = 2.0


def health(entry):
    return (entry or {}).get("TargetHealth") or {}


def registration(entry):
    """'registered', 'draining' (deregistration in progress) or 'missing'."""
    if entry is None or health(entry).get("Reason") == NOT_REGISTERED:
        return "missing"
    if health(entry).get("State") == DRAINING:
        return "draining"
    return "registered"


def show_state(entry):
    """The state of an entry, with its reason and description, for a message."""
    if entry is None:
        return "not described by AWS (InvalidTarget)"
    target_health = health(entry)
    text = str(target_health.get("State"))
    details = ": ".join(str(target_health[k]) for k in ("Reason", "Description") if target_health.get(k))
    return "%s (%s)" % (text, details) if details else text


class TargetRun:
    def __init__(self, module, elb):
        self.module = module
        self.elb = elb
        self.arn = module.params["target_group_arn"]
        self.target_id = module.params["target_id"]
        self.port = module.params["port"]
        self.wait = module.params["wait"] and not module.check_mode
        self.timeout = module.params["wait_timeout"]
        self.changed = False
        self.entry = None

    @property
    def target(self):
        target = dict(Id=self.target_id)
        if self.port is not None:
            target["Port"] = self.port
        return target

    @property
    def name(self):
        return self.target_id if self.port is None else "%s port %d" % (self.target_id, self.port)

    def call(self, what, method, **kwargs):
        try:
            return method(**kwargs)
        except AWS_ERRORS as exc:  # pylint: disable=catching-non-exception
            raise AWSModuleError("cannot %s: %s" % (what, error_text(exc)), aws_error_code=error_code(exc))

    def read_target_group(self):
        """The target group's description; its port is the target's when O(port) is omitted."""
        try:
            reply = self.elb.describe_target_groups(TargetGroupArns=[self.arn])
        except AWS_ERRORS as exc:  # pylint: disable=catching-non-exception
            code = error_code(exc)
            if code == "TargetGroupNotFound":
                raise AWSModuleError("target group %s not found in region %s (%s)"
                                     % (self.arn, self.elb.meta.region_name, error_text(exc)), aws_error_code=code)
            raise AWSModuleError("cannot read target group %s: %s" % (self.arn, error_text(exc)), aws_error_code=code)
        groups = reply.get("TargetGroups") or []
        if not groups:
            raise AWSModuleError("target group %s not found in region %s" % (self.arn, self.elb.meta.region_name))
        if self.port is None:
            self.port = groups[0].get("Port")
        return groups[0]

    def describe(self):
        """The target's DescribeTargetHealth entry, None when AWS does not know the target."""
        try:
            reply = self.elb.describe_target_health(TargetGroupArn=self.arn, Targets=[self.target])
        except AWS_ERRORS as exc:  # pylint: disable=catching-non-exception
            if error_code(exc) == "InvalidTarget":
                return None
            raise AWSModuleError("cannot describe target %s in target group %s: %s" % (self.name, self.arn, error_text(exc)),
                                 aws_error_code=error_code(exc))
        for entry in reply.get("TargetHealthDescriptions") or []:
            target = entry.get("Target") or {}
            if target.get("Id") == self.target_id and (self.port is None or target.get("Port") == self.port):
                return entry
        return None

    def wait_for(self, done, goal, fresh=None):
        """Poll the target until done(entry) (no poll when the fresh entry is done already);
        AWSModuleError with the last state on timeout."""
        if fresh is not None and done(fresh):
            return
        started = time.monotonic()
        deadline = started + self.timeout
        interval = POLL_FIRST
        while True:
            self.entry = self.describe()
            if done(self.entry):
                return
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AWSModuleError(
                    "target %s in target group %s is not %s after %d s (wait_timeout): its state is %s"
                    % (self.name, self.arn, goal, round(time.monotonic() - started), show_state(self.entry)))
            time.sleep(min(interval, remaining))
            interval = min(interval * 2, POLL_MAX)

    def present(self):
        self.read_target_group()
        self.entry = self.describe()
        if registration(self.entry) != "registered":
            self.changed = True
            if not self.module.check_mode:
                self.call("register target %s in target group %s" % (self.name, self.arn),
                          self.elb.register_targets, TargetGroupArn=self.arn, Targets=[self.target])
                if not self.wait:
                    self.entry = self.describe()
        if self.wait:
            # Unless the target was just registered, the entry read above is the current state.
            self.wait_for(lambda entry: health(entry).get("State") == HEALTHY, HEALTHY,
                          fresh=None if self.changed else self.entry)

    def absent(self):
        self.read_target_group()
        self.entry = self.describe()
        status = registration(self.entry)
        if status == "registered":
            self.changed = True
            if not self.module.check_mode:
                self.call("deregister target %s from target group %s" % (self.name, self.arn),
                          self.elb.deregister_targets, TargetGroupArn=self.arn, Targets=[self.target])
                if not self.wait:
                    self.entry = self.describe()
        if self.wait and status != "missing":
            self.wait_for(lambda entry: registration(entry) == "missing", "deregistered")

    def result(self):
        return dict(changed=self.changed, state=health(self.entry).get("State") if self.entry else None,
                    target_health=self.entry)


def main():
    module = aws_module(
        dict(
            target_group_arn=dict(type="str", required=True),
            target_id=dict(type="str", required=True),
            port=dict(type="int"),
            state=dict(type="str", default="present", choices=["present", "absent"]),
            wait=dict(type="bool", default=True),
            wait_timeout=dict(type="int", default=300),
        ),
        supports_check_mode=True,
    )
    errors = []
    port = module.params["port"]
    if port is not None and not 1 <= port <= 65535:
        errors.append("port must be between 1 and 65535, got %d" % port)
    if module.params["wait_timeout"] < 0:
        errors.append("wait_timeout must be at least 0, got %d" % module.params["wait_timeout"])
    if not module.params["target_id"].strip():
        errors.append("target_id is empty")
    if errors:
        module.fail_json(msg="; ".join(errors))

    run = TargetRun(module, client(module, "elbv2"))
    try:
        if module.params["state"] == "present":
            run.present()
        else:
            run.absent()
    except AWSModuleError as exc:
        details = run.result()
        details.update(exc.details)
        module.fail_json(msg=str(exc), **details)
    module.exit_json(**run.result())


if __name__ == "__main__":
    main()
