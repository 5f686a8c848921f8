# Copyright: scratchbird.cluster contributors
# Apache License 2.0 (see LICENSE)
"""plugins/modules/chrony_info.py on replayed chronyc output (module_utils/fixtures)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import pytest

from ansible_collections.scratchbird.cluster.plugins.module_utils import chrony
from ansible_collections.scratchbird.cluster.plugins.modules import chrony_info

from ansible_collections.scratchbird.cluster.tests.unit.plugins.modules.chrony_fakes import CHRONYC, fixture_text


def test_synced_client(run_module):
    result, failed, chronyc = run_module(chrony_info.main, {}, ["client-synced"])
    assert not failed
    assert result["changed"] is False
    assert chronyc.calls == [[CHRONYC, "-n", "-c", r] for r in ("tracking", "sources", "sourcestats")]
    assert result["synchronised"] is True
    assert result["selected_source"] == "10.213.10.11"
    assert result["stratum"] == 9 and result["leap_status"] == "Normal"
    # |6302| + 2760 + 18931 / 2 ns
    assert result["uncertainty_ns"] == 18528
    assert result["tracking"]["reference_id"] == "0AD50A0B"
    assert [s["state"] for s in result["sources"]] == ["selected", "unusable"]
    assert result["sources"][0]["stats"]["samples"] == 12
    expected = chrony.summary(*[fixture_text("client-synced", r) for r in chrony.REPORTS])
    assert dict((k, v) for k, v in result.items() if k != "changed") == expected


def test_unsynchronised_client_is_reported_not_failed(run_module):
    result, failed, dummy = run_module(chrony_info.main, {}, ["client-starting"])
    assert not failed
    assert result["synchronised"] is False and result["selected_source"] is None
    assert result["uncertainty_ns"] == 1500000000


def test_clock_master_on_its_local_clock(run_module):
    result, failed, dummy = run_module(chrony_info.main, {}, ["server-local-no-sources"])
    assert not failed
    assert result["local_reference"] is True and result["reference_id"] == "7F7F0101"
    assert result["sources"] == [] and result["uncertainty_ns"] == 0


def test_check_mode_reads_the_same(run_module):
    result, failed, chronyc = run_module(chrony_info.main, {"_ansible_check_mode": True}, ["client-multi"])
    assert not failed and result["changed"] is False
    assert result["selected_source"] == "10.213.10.13"
    assert len(chronyc.calls) == 3


def test_daemon_down_fails_clearly(run_module):
    result, failed, chronyc = run_module(chrony_info.main, {}, ["daemon-down"])
    assert failed
    assert result["msg"] == (
        "chronyd is not running or does not answer: `%s -n -c tracking` exited 1: 506 Cannot talk to daemon" % CHRONYC
    )
    assert result["rc"] == 1 and result["daemon_unreachable"] is True
    assert len(chronyc.calls) == 1


def test_unparsable_output_fails_clearly(run_module):
    result, failed, dummy = run_module(chrony_info.main, {}, [lambda report: (0, "Reference ID : 0AD50A0B\n", "")])
    assert failed
    assert result["msg"].startswith("cannot parse the output of %s -n -c: chronyc -c tracking output" % CHRONYC)


def test_chronyc_path(run_module, tmp_path):
    exe = tmp_path / "chronyc"
    exe.write_text("#!/bin/sh\nexit 0\n")
    exe.chmod(0o755)
    result, failed, chronyc = run_module(chrony_info.main, {"chronyc_path": str(exe)}, ["client-synced"])
    assert not failed
    assert chronyc.calls[0][0] == str(exe)


@pytest.mark.parametrize("make", ["missing", "not-executable", "directory"])
def test_bad_chronyc_path(run_module, tmp_path, make):
    path = tmp_path / "chronyc"
    if make == "not-executable":
        path.write_text("")
    elif make == "directory":
        path.mkdir()
    result, failed, chronyc = run_module(chrony_info.main, {"chronyc_path": str(path)})
    assert failed
    assert result["msg"] == "chronyc_path %s is not an executable file" % path
    assert chronyc.calls == []


def test_unknown_option(run_module):
    result, failed, dummy = run_module(chrony_info.main, {"max_uncertainty_ns": 1})
    assert failed and "max_uncertainty_ns" in result["msg"]
