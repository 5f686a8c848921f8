# Copyright: scratchbird.cluster contributors
# Apache License 2.0 (see LICENSE)
"""plugins/modules/clock_sync_wait.py on replayed chronyc output, with a fake clock."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import pytest

from ansible_collections.scratchbird.cluster.plugins.modules import clock_sync_wait

from ansible_collections.scratchbird.cluster.tests.unit.plugins.modules.chrony_fakes import CHRONYC, DAEMON_DOWN, FakeClock


@pytest.fixture
def clock(monkeypatch):
    fake = FakeClock()
    monkeypatch.setattr(clock_sync_wait.time, "monotonic", fake.monotonic)
    monkeypatch.setattr(clock_sync_wait.time, "sleep", fake.sleep)
    return fake


def test_returns_once_synced(run_module, clock):
    situations = ["client-starting", "client-starting", "client-first-selection", "client-synced"]
    result, failed, chronyc = run_module(clock_sync_wait.main, {}, situations)
    assert not failed
    assert result["changed"] is False
    assert result["polls"] == 4 and chronyc.polls == 4
    assert result["elapsed"] == 3.0 and clock.sleeps == [1.0, 1.0, 1.0]
    assert result["max_uncertainty_ns"] == 50000000
    # the readings of the last poll, the same keys as chrony_info
    assert result["selected_source"] == "10.213.10.11" and result["synchronised"] is True
    assert result["uncertainty_ns"] == 18528
    assert result["tracking"]["reference_id"] == "0AD50A0B"
    assert [s["state"] for s in result["sources"]] == ["selected", "unusable"]


def test_already_synced_returns_at_the_first_poll(run_module, clock):
    result, failed, chronyc = run_module(clock_sync_wait.main, {}, ["client-multi"])
    assert not failed and result["polls"] == 1 and result["elapsed"] == 0.0 and clock.sleeps == []
    assert len(chronyc.calls) == 3


def test_selected_source_alone_is_not_enough(run_module, clock):
    # client-first-selection: a * source, but tracking not synchronised yet (uncertainty 1.5 s)
    result, failed, dummy = run_module(clock_sync_wait.main, {"timeout": 2}, ["client-first-selection"])
    assert failed
    assert "chronyd is not synchronised (reference 00000000, leap status Not synchronised)" in result["msg"]
    assert "uncertainty 1500000000 ns > bound 50000000 ns" in result["msg"]


def test_timeout_message_gives_the_last_readings(run_module, clock):
    result, failed, chronyc = run_module(
        clock_sync_wait.main, {"timeout": 10, "poll_interval": 3}, ["client-starting"]
    )
    assert failed
    assert result["msg"] == (
        "clock not synchronised within 50000000 ns after 10.0 s (5 polls): "
        "chronyd is not synchronised (reference 00000000, leap status Not synchronised); "
        "no source is selected; uncertainty 1500000000 ns > bound 50000000 ns. "
        "Last readings: selected source none; synchronised no; reference 00000000; stratum 0; "
        "uncertainty 1500000000 ns > bound 50000000 ns; sources: 10.213.10.11 unusable (reach 0), "
        "10.213.10.13 unusable (reach 0), 10.213.10.14 unusable (reach 0), 10.213.10.250 unusable (reach 0)"
    )
    # polls at 0, 3, 6, 9 and one last one at the deadline
    assert clock.sleeps == [3.0, 3.0, 3.0, 1.0]
    assert result["polls"] == 5 and chronyc.polls == 5 and result["elapsed"] == 10.0
    assert result["changed"] is False
    assert result["selected_source"] is None and result["uncertainty_ns"] == 1500000000
    assert len(result["sources"]) == 4


def test_timeout_lists_falsetickers_and_variable_sources(run_module, clock):
    result, failed, dummy = run_module(clock_sync_wait.main, {"timeout": 1}, ["client-too-variable"])
    assert failed
    assert ("sources: 10.213.10.11 too_variable (reach 377), 10.213.10.13 too_variable (reach 377), "
            "10.213.10.14 too_variable (reach 377), 10.213.10.250 unusable (reach 0)") in result["msg"]


def test_bound_too_tight_for_a_synced_clock(run_module, clock):
    result, failed, dummy = run_module(clock_sync_wait.main, {"max_uncertainty_ns": 1000, "timeout": 1}, ["client-multi"])
    assert failed
    assert "(2 polls): uncertainty 13454 ns > bound 1000 ns. " in result["msg"]
    assert "Last readings: selected source 10.213.10.13; synchronised yes; reference 10.213.10.13; stratum 9; " in result["msg"]
    assert ("sources: 10.213.10.11 combined (reach 377), 10.213.10.13 selected (reach 377), "
            "10.213.10.14 falseticker (reach 377), 10.213.10.250 unusable (reach 0)") in result["msg"]


def test_source_lost_keeps_waiting(run_module, clock):
    # tracking still says Normal after the only source went away: not ready
    result, failed, dummy = run_module(clock_sync_wait.main, {"timeout": 2}, ["client-source-lost"])
    assert failed and "): no source is selected. " in result["msg"]
    result, failed, dummy = run_module(clock_sync_wait.main, {}, ["client-source-lost", "client-synced"])
    assert not failed and result["polls"] == 2


def test_local_clock_master(run_module, clock):
    result, failed, dummy = run_module(clock_sync_wait.main, {"timeout": 1}, ["server-local-no-sources"])
    assert failed
    assert "chronyd serves its own clock (local reference 7F7F0101); set require_selected_source to false" in result["msg"]
    result, failed, dummy = run_module(clock_sync_wait.main, {"require_selected_source": False}, ["server-local"])
    assert not failed and result["local_reference"] is True and result["selected_source"] is None


def test_require_selected_source_false_still_needs_synchronised(run_module, clock):
    result, failed, dummy = run_module(
        clock_sync_wait.main, {"require_selected_source": False, "timeout": 1}, ["client-starting"]
    )
    assert failed and "no source is selected" not in result["msg"]
    assert "chronyd is not synchronised" in result["msg"]


def test_waits_while_chronyd_does_not_answer(run_module, clock):
    result, failed, chronyc = run_module(
        clock_sync_wait.main, {"poll_interval": 0.5}, [DAEMON_DOWN, DAEMON_DOWN, "client-starting", "client-synced"]
    )
    assert not failed
    assert result["polls"] == 4 and result["elapsed"] == 1.5
    assert chronyc.calls[0] == [CHRONYC, "-n", "-c", "tracking"]


def test_chronyd_never_answers(run_module, clock):
    result, failed, dummy = run_module(clock_sync_wait.main, {"timeout": 2}, [DAEMON_DOWN])
    assert failed
    assert result["msg"] == (
        "clock not synchronised within 50000000 ns after 2.0 s (3 polls): chronyd is not running or does not "
        "answer: `%s -n -c tracking` exited 1: 506 Cannot talk to daemon. Last readings: chronyd never answered"
        % CHRONYC
    )
    assert "uncertainty_ns" not in result and result["polls"] == 3


def test_other_chronyc_failure_fails_at_once(run_module, clock):
    result, failed, dummy = run_module(clock_sync_wait.main, {}, [lambda report: (1, "", "501 Not authorised\n")])
    assert failed and result["polls"] == 1 and clock.sleeps == []
    assert result["msg"] == "`%s -n -c tracking` failed with exit code 1: 501 Not authorised" % CHRONYC


def test_unparsable_output_fails_at_once(run_module, clock):
    result, failed, dummy = run_module(clock_sync_wait.main, {}, [lambda report: (0, "garbage", "")])
    assert failed and result["polls"] == 1
    assert result["msg"].startswith("cannot parse the output of %s -n -c: " % CHRONYC)


def test_check_mode_runs_the_same_wait(run_module, clock):
    result, failed, chronyc = run_module(
        clock_sync_wait.main, {"_ansible_check_mode": True}, ["client-starting", "client-synced"]
    )
    assert not failed and result["changed"] is False and result["polls"] == 2
    result, failed, dummy = run_module(
        clock_sync_wait.main, {"_ansible_check_mode": True, "timeout": 1}, ["client-starting"]
    )
    assert failed and result["msg"].startswith("clock not synchronised within 50000000 ns after 1.0 s")


@pytest.mark.parametrize(
    "args, message",
    [
        ({"max_uncertainty_ns": 0}, "max_uncertainty_ns must be greater than 0, got 0"),
        ({"max_uncertainty_ns": -5}, "max_uncertainty_ns must be greater than 0, got -5"),
        ({"timeout": 0}, "timeout must be greater than 0, got 0.0"),
        ({"timeout": -1}, "timeout must be greater than 0, got -1.0"),
        ({"poll_interval": 0}, "poll_interval must be greater than 0, got 0.0"),
    ],
)
def test_bad_options(run_module, clock, args, message):
    result, failed, chronyc = run_module(clock_sync_wait.main, args)
    assert failed and result["msg"] == message
    assert chronyc.calls == []


@pytest.mark.parametrize(
    "args, name",
    [
        ({"max_uncertainty_ns": "50ms"}, "max_uncertainty_ns"),
        ({"timeout": "soon"}, "timeout"),
        ({"require_selected_source": "perhaps"}, "require_selected_source"),
        ({"max_uncertainty": 5}, "max_uncertainty"),
    ],
)
def test_wrong_types_name_the_option(run_module, clock, args, name):
    result, failed, dummy = run_module(clock_sync_wait.main, args)
    assert failed and name in result["msg"]


def test_fractional_timeout_and_interval(run_module, clock):
    result, failed, dummy = run_module(
        clock_sync_wait.main, {"timeout": 0.25, "poll_interval": 0.1}, ["client-starting"]
    )
    assert failed and result["polls"] == 4
    assert clock.sleeps == pytest.approx([0.1, 0.1, 0.05])
