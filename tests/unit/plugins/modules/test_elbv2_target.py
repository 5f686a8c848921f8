# Copyright: scratchbird.cluster contributors
# Apache License 2.0 (see LICENSE)
"""plugins/modules/elbv2_target.py against a stubbed boto3 client (botocore's Stubber: every AWS
call must be one the test expects, with these parameters, in this order) and a fake clock.

The states and reasons are the ones AWS documents (initial/Elb.InitialHealthChecking,
draining/Target.DeregistrationInProgress...), which moto does not produce (see
tests/integration/test_aws_modules.py)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import pytest

boto3 = pytest.importorskip("boto3")
from botocore.stub import Stubber  # noqa: E402  pylint: disable=wrong-import-position

from ansible_collections.scratchbird.cluster.plugins.module_utils.aws import AWS_CONNECTION_SPEC  # noqa: E402  pylint: disable=wrong-import-position
from ansible_collections.scratchbird.cluster.plugins.modules import elbv2_target  # noqa: E402  pylint: disable=wrong-import-position
from ansible_collections.scratchbird.cluster.tests.unit.plugins.modules.module_args import (  # noqa: E402  pylint: disable=wrong-import-position
    ExitJson, FailJson, patch_exits, patch_module_args)

ARN = "arn:aws:elasticloadbalancing:eu-west-1:123456789012:targetgroup/tx/0123456789abcdef"
INSTANCE = "i-0123456789abcdef0"
TARGET = {"Id": INSTANCE, "Port": 5432}


class FakeTime(object):
    """monotonic() and sleep() of the module: sleeping advances the clock, nothing waits."""

    def __init__(self):
        self.now = 1000.0
        self.sleeps = []

    def monotonic(self):
        return self.now

    def sleep(self, seconds):
        self.sleeps.append(seconds)
        self.now += seconds


@pytest.fixture
def aws(monkeypatch):
    """{'elb': client, 'stub': Stubber, 'time': FakeTime, 'run': run(args, check_mode=False)}."""
    elb = boto3.client("elbv2", region_name="eu-west-1", aws_access_key_id="testing", aws_secret_access_key="testing",
                       endpoint_url="http://127.0.0.1:9")  # never contacted: the Stubber answers
    stub = Stubber(elb)
    clock = FakeTime()
    made = []
    patch_exits(monkeypatch)
    monkeypatch.setattr(elbv2_target, "time", clock)
    monkeypatch.setattr(elbv2_target, "client", lambda module, service: made.append(service) or elb)

    def run(args, check_mode=False):
        args = dict(args, target_group_arn=ARN, target_id=INSTANCE)
        if check_mode:
            args["_ansible_check_mode"] = True
        result, failed = None, None
        with stub, patch_module_args(args):
            try:
                elbv2_target.main()
            except ExitJson as exc:
                result, failed = exc.args[0], False
            except FailJson as exc:
                result, failed = exc.args[0], True
            else:
                raise AssertionError("module returned without exit_json or fail_json")
        stub.assert_no_pending_responses()
        assert made in ([], ["elbv2"])
        return result, failed

    return dict(elb=elb, stub=stub, time=clock, run=run)


def target_group(stub, port=5432):
    group = {"TargetGroupArn": ARN, "TargetGroupName": "tx", "Protocol": "TCP", "TargetType": "instance"}
    if port is not None:
        group["Port"] = port
    stub.add_response("describe_target_groups", {"TargetGroups": [group]}, {"TargetGroupArns": [ARN]})


def health(stub, state, reason=None, target=None, registered_port=None):
    """One DescribeTargetHealth answer for TARGET (the entry names registered_port when given)."""
    target = target or TARGET
    entry_target = dict(target)
    if registered_port is not None:
        entry_target["Port"] = registered_port
    entry = {"Target": entry_target, "HealthCheckPort": "traffic-port", "TargetHealth": {"State": state}}
    if reason:
        entry["TargetHealth"].update(Reason=reason, Description="the description of " + reason)
    stub.add_response("describe_target_health", {"TargetHealthDescriptions": [entry]},
                      {"TargetGroupArn": ARN, "Targets": [target]})


def registers(stub, target=None):
    stub.add_response("register_targets", {}, {"TargetGroupArn": ARN, "Targets": [target or TARGET]})


def deregisters(stub):
    stub.add_response("deregister_targets", {}, {"TargetGroupArn": ARN, "Targets": [TARGET]})


# state=present


def test_registers_on_the_group_port_and_waits_until_healthy(aws):
    stub = aws["stub"]
    target_group(stub)
    health(stub, "unused", "Target.NotRegistered")
    registers(stub)
    health(stub, "initial", "Elb.RegistrationInProgress")
    health(stub, "initial", "Elb.InitialHealthChecking")
    health(stub, "unhealthy", "Target.Timeout")
    health(stub, "healthy")
    result, failed = aws["run"]({})
    assert not failed, result
    assert result["changed"] is True and result["state"] == "healthy"
    assert result["target_health"]["Target"] == TARGET
    assert aws["time"].sleeps == [0.5, 1.0, 2.0]  # polling backs off to 2 s


def test_a_registered_target_is_no_change_but_is_waited_for(aws):
    stub = aws["stub"]
    target_group(stub)
    health(stub, "initial", "Elb.InitialHealthChecking")
    health(stub, "initial", "Elb.InitialHealthChecking")
    health(stub, "healthy")
    result, failed = aws["run"]({})
    assert not failed and result["changed"] is False and result["state"] == "healthy", result


@pytest.mark.parametrize("state", ["unused", "unavailable"])
def test_not_registered_whatever_the_state(aws, state):
    stub = aws["stub"]
    target_group(stub)
    health(stub, state, "Target.NotRegistered")
    registers(stub)
    health(stub, "initial", "Elb.RegistrationInProgress")
    result, failed = aws["run"](dict(wait=False))
    assert not failed and result["changed"] is True and result["state"] == "initial", result


def test_registered_but_unused_counts_as_registered(aws):
    stub = aws["stub"]
    target_group(stub)
    health(stub, "unused", "Target.NotInUse")  # no load balancer uses the group: registered, never healthy
    result, failed = aws["run"](dict(wait=False))
    assert not failed and result["changed"] is False and result["state"] == "unused", result


def test_a_draining_target_is_registered_again(aws):
    stub = aws["stub"]
    target_group(stub)
    health(stub, "draining", "Target.DeregistrationInProgress")
    registers(stub)
    health(stub, "healthy")
    result, failed = aws["run"]({})
    assert not failed and result["changed"] is True and result["state"] == "healthy", result


def test_the_entry_of_another_port_is_not_the_target(aws):
    # moto keys targets by ID and answers with the registered port: the module compares the port.
    stub = aws["stub"]
    target = {"Id": INSTANCE, "Port": 6000}
    target_group(stub)
    health(stub, "healthy", target=target, registered_port=5432)
    registers(stub, target)
    health(stub, "healthy", target=target)
    result, failed = aws["run"](dict(port=6000, wait=False))
    assert not failed and result["changed"] is True, result
    assert result["target_health"]["Target"] == target


def test_a_group_without_port_describes_the_id_alone(aws):
    stub = aws["stub"]
    target = {"Id": INSTANCE}
    target_group(stub, port=None)
    stub.add_response("describe_target_health", {"TargetHealthDescriptions": []}, {"TargetGroupArn": ARN, "Targets": [target]})
    registers(stub, target)
    health(stub, "healthy", target=target)
    result, failed = aws["run"]({})
    assert not failed and result["changed"] is True and result["state"] == "healthy", result


def test_check_mode_registers_nothing_and_does_not_wait(aws):
    stub = aws["stub"]
    target_group(stub)
    health(stub, "unused", "Target.NotRegistered")
    result, failed = aws["run"]({}, check_mode=True)
    assert not failed and result["changed"] is True and result["state"] == "unused", result
    assert aws["time"].sleeps == []


def test_the_wait_times_out_with_the_last_state(aws):
    stub = aws["stub"]
    target_group(stub)
    health(stub, "unused", "Target.NotRegistered")
    registers(stub)
    for dummy in range(4):  # t = 0, 0.5, 1.5, 3.5 (then the remaining 1.5 s), 5: the deadline
        health(stub, "initial", "Elb.InitialHealthChecking")
    health(stub, "unhealthy", "Target.FailedHealthChecks")
    result, failed = aws["run"](dict(wait_timeout=5))
    assert failed, result
    assert result["changed"] is True  # the registration is done
    assert result["state"] == "unhealthy"
    assert result["msg"] == ("target %s port 5432 in target group %s is not healthy after 5 s (wait_timeout): its state is "
                             "unhealthy (Target.FailedHealthChecks: the description of Target.FailedHealthChecks)" % (INSTANCE, ARN))
    assert aws["time"].sleeps == [0.5, 1.0, 2.0, 1.5]


def test_a_healthy_target_is_not_read_twice(aws):
    stub = aws["stub"]
    target_group(stub)
    health(stub, "healthy")
    result, failed = aws["run"]({})
    assert not failed and result["changed"] is False and result["state"] == "healthy", result


def test_a_zero_timeout_looks_once_after_registering(aws):
    stub = aws["stub"]
    target_group(stub)
    health(stub, "unused", "Target.NotRegistered")
    registers(stub)
    health(stub, "initial", "Elb.RegistrationInProgress")
    result, failed = aws["run"](dict(wait_timeout=0))
    assert failed and result["changed"] is True and "is not healthy after 0 s" in result["msg"], result
    assert aws["time"].sleeps == []


def test_a_refused_registration_fails_with_the_aws_error(aws):
    stub = aws["stub"]
    target_group(stub)
    stub.add_client_error("describe_target_health", "InvalidTarget", "The following targets are not valid: " + INSTANCE)
    stub.add_client_error("register_targets", "InvalidTarget", "The following targets are not in a running state: " + INSTANCE)
    result, failed = aws["run"]({})
    assert failed and result["changed"] is True, result
    assert result["msg"] == ("cannot register target %s port 5432 in target group %s: AWS error InvalidTarget: "
                             "The following targets are not in a running state: %s" % (INSTANCE, ARN, INSTANCE))
    assert result["aws_error_code"] == "InvalidTarget"


def test_a_missing_target_group(aws):
    aws["stub"].add_client_error("describe_target_groups", "TargetGroupNotFound", "One or more target groups not found")
    result, failed = aws["run"]({})
    assert failed and result["changed"] is False, result
    assert result["msg"] == ("target group %s not found in region eu-west-1 (AWS error TargetGroupNotFound: "
                             "One or more target groups not found)" % ARN)


def test_access_denied_names_the_operation(aws):
    aws["stub"].add_client_error("describe_target_groups", "AccessDenied", "User is not authorized", http_status_code=403)
    result, failed = aws["run"]({})
    assert failed and result["msg"] == "cannot read target group %s: AWS error AccessDenied: User is not authorized" % ARN


# state=absent


def test_deregisters_and_waits_until_gone(aws):
    stub = aws["stub"]
    target_group(stub)
    health(stub, "healthy")
    deregisters(stub)
    health(stub, "draining", "Target.DeregistrationInProgress")
    health(stub, "draining", "Target.DeregistrationInProgress")
    health(stub, "unused", "Target.NotRegistered")
    result, failed = aws["run"](dict(state="absent"))
    assert not failed and result["changed"] is True and result["state"] == "unused", result
    assert aws["time"].sleeps == [0.5, 1.0]


def test_a_draining_target_is_no_change_but_is_waited_for(aws):
    stub = aws["stub"]
    target_group(stub)
    health(stub, "draining", "Target.DeregistrationInProgress")
    health(stub, "draining", "Target.DeregistrationInProgress")
    stub.add_client_error("describe_target_health", "InvalidTarget", "The following targets are not valid")  # terminated
    result, failed = aws["run"](dict(state="absent"))
    assert not failed and result["changed"] is False, result
    assert result["state"] is None and result["target_health"] is None


def test_a_missing_target_is_no_change_and_no_wait(aws):
    stub = aws["stub"]
    target_group(stub)
    health(stub, "unused", "Target.NotRegistered")
    result, failed = aws["run"](dict(state="absent"))
    assert not failed and result["changed"] is False and result["state"] == "unused", result
    assert aws["time"].sleeps == []


def test_an_unhealthy_draining_target_is_registered(aws):
    stub = aws["stub"]
    target_group(stub)
    health(stub, "unhealthy.draining", "Target.FailedHealthChecks")
    deregisters(stub)
    health(stub, "unused", "Target.NotRegistered")
    result, failed = aws["run"](dict(state="absent", wait=False))
    assert not failed and result["changed"] is True, result


def test_check_mode_deregisters_nothing(aws):
    stub = aws["stub"]
    target_group(stub)
    health(stub, "healthy")
    result, failed = aws["run"](dict(state="absent"), check_mode=True)
    assert not failed and result["changed"] is True and result["state"] == "healthy", result


def test_the_drain_times_out_with_the_last_state(aws):
    stub = aws["stub"]
    target_group(stub)
    health(stub, "healthy")
    deregisters(stub)
    for dummy in range(3):  # t = 0, 0.5, 1: the deadline
        health(stub, "draining", "Target.DeregistrationInProgress")
    result, failed = aws["run"](dict(state="absent", wait_timeout=1))
    assert failed and result["changed"] is True and result["state"] == "draining", result
    assert "is not deregistered after 1 s" in result["msg"] and "draining (Target.DeregistrationInProgress" in result["msg"]


# Options


@pytest.mark.parametrize("args, message", [
    (dict(port=0), "port must be between 1 and 65535, got 0"),
    (dict(port=70000), "port must be between 1 and 65535, got 70000"),
    (dict(wait_timeout=-1), "wait_timeout must be at least 0, got -1"),
    (dict(profile="prod", access_key="AKIA", secret_key="s"), "parameters are mutually exclusive: profile|access_key"),
    (dict(access_key="AKIA"), "parameters are required together: access_key, secret_key"),
])
def test_bad_options_fail_before_any_call(aws, args, message):
    result, failed = aws["run"](args)
    assert failed and message in result["msg"], result


def test_the_secret_options_are_no_log():
    spec = AWS_CONNECTION_SPEC
    assert spec["secret_key"]["no_log"] is True and spec["session_token"]["no_log"] is True
    assert spec["access_key"]["no_log"] is False
