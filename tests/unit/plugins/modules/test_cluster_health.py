# Copyright: scratchbird.cluster contributors
# Apache License 2.0 (see LICENSE)
"""plugins/modules/cluster_health.py through AnsibleModule, reports in tmp_path, time frozen."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import datetime
import json
import os

import pytest

from ansible_collections.scratchbird.cluster.plugins.module_utils import health
from ansible_collections.scratchbird.cluster.plugins.modules import cluster_health

from ansible_collections.scratchbird.cluster.tests.unit.plugins.modules.module_args import ExitJson, FailJson, patch_exits, patch_module_args

NOON = datetime.datetime(2025, 1, 31, 12, 0, 0, tzinfo=datetime.timezone.utc)

HEALTHY_SUMMARY = u"\n".join([
    u"Clock Masters:     \u2713 1/1 healthy (max uncertainty: 0.412 ms)",
    u"TX Engines:        \u2713 1/1 healthy (max uncertainty: 1.020 ms)",
    u"Ingestion Engines: \u2713 1/1 healthy (max uncertainty: 0.900 ms)",
    u"OLAP Shards:       \u2713 1/1 healthy (max uncertainty: 0.950 ms)",
    u"Kafka Brokers:     \u2713 1/1 healthy (under-replicated partitions: 0)",
    u"Overall:           \u2713 HEALTHY (bound 50.0 ms)",
])


class Clock:
    def __init__(self):
        self.now = NOON

    def __call__(self):
        return self.now


@pytest.fixture
def clock(monkeypatch):
    fake = Clock()
    monkeypatch.setattr(health, "utc_now", fake)
    return fake


@pytest.fixture
def run(monkeypatch):
    """run(args) -> (result, failed)."""
    patch_exits(monkeypatch)

    def run_module(args):
        with patch_module_args(args):
            try:
                cluster_health.main()
            except ExitJson as exc:
                return exc.args[0], False
            except FailJson as exc:
                return exc.args[0], True
        raise AssertionError("module returned without exit_json or fail_json")

    return run_module


def chrony(uncertainty_ns):
    return {"changed": False, "synchronised": True, "uncertainty_ns": uncertainty_ns, "offset_ns": 2100,
            "reference_name": "10.213.10.11", "reference_id": "0AD50A0B", "stratum": 2, "local_reference": False,
            "tracking": {"leap_status": "Normal"}, "sources": []}


def engine(status=200, body_status="ok"):
    return {"status": status, "json": {"status": body_status, "version": "1.0.0", "server_id": 3}, "elapsed": 0}


def items(olap_health=None):
    return [
        {"name": "cm-1", "tier": "clock_masters", "clock": chrony(412000)},
        {"name": "tx-1", "tier": "tx_engines", "clock": chrony(1020000), "health": engine()},
        {"name": "ingest-1", "tier": "ingestion_engines", "clock": chrony(900000), "health": engine()},
        {"name": "olap-1", "tier": "olap_shards", "clock": chrony(950000), "health": olap_health or engine()},
        {"name": "kafka-1", "tier": "kafka_brokers", "clock": chrony(300000)},
    ]


KAFKA = {"mode": "self_hosted", "bootstrap": ["kafka-1:9092"], "brokers": [{"id": 1, "host": "kafka-1", "port": 9092}],
         "under_replicated_partitions": 0, "missing_topics": [], "cluster_id": "x", "topics": {}}


def args(tmp_path, **changes):
    result = {
        "hosts": items(), "kafka": KAFKA, "cluster_name": "lab",
        "json_path": str(tmp_path / "reports" / "health.json"),
        "html_path": str(tmp_path / "reports" / "health.html"),
    }
    result.update(changes)
    return result


def test_writes_both_reports(run, clock, tmp_path):
    result, failed = run(args(tmp_path))
    assert not failed
    assert result["changed"] is True and result["healthy"] is True
    assert result["summary"] == HEALTHY_SUMMARY
    assert result["json_path"] == str(tmp_path / "reports" / "health.json")
    assert result["html_path"] == str(tmp_path / "reports" / "health.html")
    report = json.loads((tmp_path / "reports" / "health.json").read_text(encoding="utf-8"))
    assert report["healthy"] is True and report["healthy"] == result["healthy"]
    assert report["generated_at"] == "2025-01-31T12:00:00Z" and report["cluster_name"] == "lab"
    assert report["max_uncertainty_ns"] == 50000000 and report["summary"] == HEALTHY_SUMMARY
    assert report == result["report"]
    assert report["tiers"] == result["tiers"] and report["kafka"] == result["kafka"]
    assert report["tiers"]["olap_shards"]["hosts"][0]["version"] == "1.0.0"
    page = (tmp_path / "reports" / "health.html").read_text(encoding="utf-8")
    assert page.startswith("<!DOCTYPE html>") and "<title>ScratchBird cluster health \u2014 lab \u2014 2025-01-31T12:00:00Z" in page
    assert page.count("<table") == 5 and page.count('<rect class="bar"') == 5
    for name in ("health.json", "health.html"):
        assert os.stat(str(tmp_path / "reports" / name)).st_mode & 0o777 == 0o644
    assert sorted(os.listdir(str(tmp_path / "reports"))) == ["health.html", "health.json"]


def test_same_content_twice_is_not_a_change(run, clock, tmp_path):
    first, failed = run(args(tmp_path))
    assert not failed and first["changed"] is True
    before = (tmp_path / "reports" / "health.json").read_bytes()
    second, failed = run(args(tmp_path))
    assert not failed and second["changed"] is False
    assert (tmp_path / "reports" / "health.json").read_bytes() == before
    # a later run writes a fresh report: a real change
    clock.now = NOON + datetime.timedelta(minutes=5)
    third, failed = run(args(tmp_path))
    assert not failed and third["changed"] is True
    assert json.loads((tmp_path / "reports" / "health.json").read_text())["generated_at"] == "2025-01-31T12:05:00Z"


def test_only_one_report(run, clock, tmp_path):
    result, failed = run(args(tmp_path, html_path=None))
    assert not failed and result["changed"] is True and "html_path" not in result
    assert os.listdir(str(tmp_path / "reports")) == ["health.json"]


def test_no_report_path_never_changes(run, clock, tmp_path):
    result, failed = run({"hosts": items(), "kafka": KAFKA})
    assert not failed and result["changed"] is False and result["healthy"] is True
    assert "json_path" not in result and "html_path" not in result
    assert result["report"]["cluster_name"] == ""


def test_check_mode_writes_nothing(run, clock, tmp_path):
    result, failed = run(args(tmp_path, _ansible_check_mode=True))
    assert not failed and result["changed"] is True and result["healthy"] is True
    assert result["summary"] == HEALTHY_SUMMARY
    assert not (tmp_path / "reports").exists()
    # with the same reports in place nothing would change
    run(args(tmp_path))
    result, failed = run(args(tmp_path, _ansible_check_mode=True))
    assert not failed and result["changed"] is False
    clock.now = NOON + datetime.timedelta(seconds=1)
    result, failed = run(args(tmp_path, _ansible_check_mode=True))
    assert not failed and result["changed"] is True
    assert json.loads((tmp_path / "reports" / "health.json").read_text())["generated_at"] == "2025-01-31T12:00:00Z"


def test_unhealthy_fails_after_writing_the_reports(run, clock, tmp_path):
    hosts = items(olap_health=engine(503, "failing"))
    result, failed = run(args(tmp_path, hosts=hosts))
    assert failed
    assert result["msg"] == result["summary"] == u"\n".join([
        u"Clock Masters:     \u2713 1/1 healthy (max uncertainty: 0.412 ms)",
        u"TX Engines:        \u2713 1/1 healthy (max uncertainty: 1.020 ms)",
        u"Ingestion Engines: \u2713 1/1 healthy (max uncertainty: 0.900 ms)",
        u"OLAP Shards:       \u2717 0/1 healthy (max uncertainty: 0.950 ms; olap-1: /health 503 failing)",
        u"Kafka Brokers:     \u2713 1/1 healthy (under-replicated partitions: 0)",
        u"Overall:           \u2717 UNHEALTHY (1 problem; bound 50.0 ms)",
    ])
    assert result["healthy"] is False and result["changed"] is True
    assert result["tiers"]["olap_shards"]["problems"] == ["olap-1: /health 503 failing"]
    assert result["report"]["healthy"] is False and "json_path" in result and "html_path" in result
    report = json.loads((tmp_path / "reports" / "health.json").read_text(encoding="utf-8"))
    assert report["healthy"] is False and report["summary"] == result["msg"]
    page = (tmp_path / "reports" / "health.html").read_text(encoding="utf-8")
    assert u"\u2717 UNHEALTHY (1 problem; bound 50.0 ms)" in page and "/health 503 failing" in page


def test_unhealthy_check_mode_still_fails_but_writes_nothing(run, clock, tmp_path):
    result, failed = run(args(tmp_path, hosts=items(olap_health=engine(503, "failing")), _ansible_check_mode=True))
    assert failed and result["healthy"] is False and result["changed"] is True
    assert not (tmp_path / "reports").exists()


def test_unhealthy_without_fail_unhealthy(run, clock, tmp_path):
    hosts = items()
    hosts[0]["clock"] = None
    result, failed = run(args(tmp_path, hosts=hosts, fail_unhealthy=False))
    assert not failed
    assert result["healthy"] is False and result["changed"] is True
    assert result["summary"].split("\n")[0] == (u"Clock Masters:     \u2717 0/1 healthy (max uncertainty: n/a; "
                                                u"cm-1: clock could not be read)")
    assert json.loads((tmp_path / "reports" / "health.json").read_text())["healthy"] is False


def test_bound_option(run, clock, tmp_path):
    result, failed = run(args(tmp_path, max_uncertainty_ns=1000000))
    assert failed and result["healthy"] is False
    assert result["tiers"]["tx_engines"]["problems"] == ["tx-1: uncertainty 1.02 ms > bound 1.00 ms"]
    assert result["msg"].endswith(u"Overall:           \u2717 UNHEALTHY (1 problem; bound 1.0 ms)")
    assert result["report"]["max_uncertainty_ns"] == 1000000


@pytest.mark.parametrize("changes, message", [
    ({"max_uncertainty_ns": 0}, "max_uncertainty_ns must be greater than 0, got 0"),
    ({"kafka": dict(KAFKA, mode="managed")}, "kafka.mode must be one of self_hosted, external, got 'managed'"),
    ({"hosts": [{"name": "web-1", "tier": "web"}]}, "value of tier must be one of"),
    ({"hosts": [{"tier": "tx_engines"}]}, "missing required arguments: name"),
    ({"hosts": [{"name": "cm-1", "tier": "clock_masters", "clock": chrony(None), "extra": 1}]}, "extra"),
])
def test_bad_options_fail_before_writing(run, clock, tmp_path, changes, message):
    result, failed = run(args(tmp_path, **changes))
    assert failed and message in result["msg"]
    assert not (tmp_path / "reports").exists()


def test_write_error_fails(run, clock, tmp_path):
    (tmp_path / "reports").write_text("a file, not a directory")
    result, failed = run(args(tmp_path))
    assert failed
    assert result["msg"].startswith("cannot write the JSON report %s: " % (tmp_path / "reports" / "health.json"))
    assert result["healthy"] is True and result["summary"] == HEALTHY_SUMMARY
