# Copyright: scratchbird.cluster contributors
# Apache License 2.0 (see LICENSE)
"""plugins/module_utils/health.py: evaluation, the summary lines, the reports."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import ast
import datetime
import json
import os
import pathlib
import re

import pytest

from ansible_collections.scratchbird.cluster.plugins.module_utils import health

_PATH = pathlib.Path(health.__file__)
BOUND = 50000000


def clock(uncertainty_ns, synchronised=True, offset_ns=-1200, reference="10.213.10.11", stratum=3):
    # the keys of a chrony_info result that the module reads, plus some it must ignore
    return {
        "changed": False, "failed": False, "synchronised": synchronised, "uncertainty_ns": uncertainty_ns,
        "offset_ns": offset_ns, "reference_name": reference, "reference_id": "0AD50A0B", "stratum": stratum,
        "local_reference": False, "leap_status": "Normal" if synchronised else "Not synchronised",
        "sources": [{"name": reference, "state": "selected"}],
    }


def up(version="1.0.0", server_id=1):
    return {"status": 200, "json": {"status": "ok", "version": version, "server_id": server_id}, "msg": "OK (123 bytes)",
            "elapsed": 0, "changed": False}


def host(name, tier, uncertainty_ns=400000, **kwargs):
    item = {"name": name, "tier": tier, "clock": kwargs.pop("clock", clock(uncertainty_ns))}
    if tier in ("tx_engines", "ingestion_engines", "olap_shards"):
        item["health"] = kwargs.pop("health", up())
    item.update(kwargs)
    return item


def healthy_hosts():
    return [
        host("cm-1", "clock_masters", 412000),
        host("cm-2", "clock_masters", 25000),
        host("tx-2", "tx_engines", 1020000),
        host("tx-1", "tx_engines", 800000),
        host("tx-3", "tx_engines", 999999),
        host("ingest-1", "ingestion_engines", 900000),
        host("olap-1", "olap_shards", 950000),
        host("olap-2", "olap_shards", 10000),
        host("kafka-1", "kafka_brokers", 300000),
    ]


def kafka_ok(broker_count=1, **changes):
    info = {
        "mode": "self_hosted", "bootstrap": ["kafka-1:9092"],
        "brokers": [{"id": i, "host": "kafka-%d" % i, "port": 9092, "rack": None} for i in range(1, broker_count + 1)],
        "under_replicated_partitions": 0, "missing_topics": [],
    }
    info.update(changes)
    return info


def run(hosts, kafka=None, bound=BOUND):
    tiers, kafka_result = health.evaluate(hosts, kafka_ok() if kafka is None else kafka, bound)
    return tiers, kafka_result, health.summary_text(tiers, kafka_result, bound).split("\n")


# --- healthy ---------------------------------------------------------------------------------------

def test_healthy_cluster_summary_is_exact():
    tiers, kafka_result, lines = run(healthy_hosts())
    assert lines == [
        u"Clock Masters:     \u2713 2/2 healthy (max uncertainty: 0.412 ms)",
        u"TX Engines:        \u2713 3/3 healthy (max uncertainty: 1.020 ms)",
        u"Ingestion Engines: \u2713 1/1 healthy (max uncertainty: 0.900 ms)",
        u"OLAP Shards:       \u2713 2/2 healthy (max uncertainty: 0.950 ms)",
        u"Kafka Brokers:     \u2713 1/1 healthy (under-replicated partitions: 0)",
        u"Overall:           \u2713 HEALTHY (bound 50.0 ms)",
    ]
    assert all(t["healthy"] and t["problems"] == [] for t in tiers.values())
    assert health.is_healthy(tiers) and kafka_result["healthy"]


def test_tiers_and_hosts_shape():
    tiers, kafka_result, dummy = run(healthy_hosts())
    assert list(tiers) == ["clock_masters", "tx_engines", "ingestion_engines", "olap_shards", "kafka_brokers"]
    tx = tiers["tx_engines"]
    assert (tx["label"], tx["healthy_hosts"], tx["total"], tx["max_uncertainty_ns"]) == ("TX Engines", 3, 3, 1020000)
    assert [h["name"] for h in tx["hosts"]] == ["tx-1", "tx-2", "tx-3"]
    assert tx["hosts"][0] == {
        "name": "tx-1", "state": "healthy", "healthy": True, "reason": None, "synchronised": True, "uncertainty_ns": 800000, "offset_ns": -1200,
        "reference": "10.213.10.11", "stratum": 3, "health_status": 200, "version": "1.0.0", "problems": [],
    }
    # /health is ignored on clock masters and Kafka brokers
    assert tiers["clock_masters"]["hosts"][0]["version"] is None
    assert kafka_result["broker_count"] == 1 and kafka_result["bootstrap"] == ["kafka-1:9092"]


def test_hosts_sorted_naturally():
    hosts = [host("olap-10", "olap_shards"), host("olap-2", "olap_shards"), host("OLAP-1", "olap_shards")]
    tiers, dummy, dummy2 = run(healthy_hosts()[:6] + hosts + healthy_hosts()[8:])
    assert [h["name"] for h in tiers["olap_shards"]["hosts"]] == ["OLAP-1", "olap-2", "olap-10"]


def test_local_reference_and_numeric_strings():
    local = clock("412000", offset_ns="0", reference="", stratum="1")
    local["local_reference"] = True
    tiers, dummy, lines = run([host("cm-1", "clock_masters", clock=local)] + healthy_hosts()[2:])
    cm = tiers["clock_masters"]["hosts"][0]
    assert (cm["reference"], cm["uncertainty_ns"], cm["offset_ns"], cm["stratum"]) == ("local", 412000, 0, 1)
    assert lines[0] == u"Clock Masters:     \u2713 1/1 healthy (max uncertainty: 0.412 ms)"


# --- clocks ----------------------------------------------------------------------------------------

def test_host_over_the_bound():
    hosts = healthy_hosts()
    hosts[2] = host("tx-2", "tx_engines", 62100000)
    tiers, dummy, lines = run(hosts)
    assert lines[1] == (u"TX Engines:        \u2717 2/3 healthy (max uncertainty: 62.100 ms; "
                        u"tx-2: uncertainty 62.1 ms > bound 50.0 ms)")
    assert lines[-1] == u"Overall:           \u2717 UNHEALTHY (1 problem; bound 50.0 ms)"
    assert tiers["tx_engines"]["hosts"][1]["healthy"] is False
    assert tiers["tx_engines"]["problems"] == ["tx-2: uncertainty 62.1 ms > bound 50.0 ms"]


def test_exactly_at_the_bound_is_healthy_one_ns_above_is_not():
    hosts = healthy_hosts()
    hosts[0] = host("cm-1", "clock_masters", BOUND)
    assert run(hosts)[0]["clock_masters"]["healthy"] is True
    hosts[0] = host("cm-1", "clock_masters", BOUND + 1)
    tiers = run(hosts)[0]
    # enough decimals to tell the two apart
    assert tiers["clock_masters"]["problems"] == ["cm-1: uncertainty 50.000001 ms > bound 50.000000 ms"]


def test_other_bounds_are_printed_exactly():
    hosts = healthy_hosts()
    hosts[0] = host("cm-1", "clock_masters", 3000000)
    tiers, dummy, lines = run(hosts, bound=2500000)
    # one clock master of two: a loss within redundancy
    assert lines[-1] == u"Overall:           \u26a0 DEGRADED (1 problem, within redundancy; bound 2.5 ms)"
    assert tiers["clock_masters"]["problems"] == ["cm-1: uncertainty 3.0 ms > bound 2.5 ms"]
    assert run(healthy_hosts(), bound=1000000000)[2][-1] == u"Overall:           \u2713 HEALTHY (bound 1000.0 ms)"


def test_unsynchronised_clock():
    hosts = healthy_hosts()
    hosts[1] = host("cm-2", "clock_masters", clock=clock(1500000000, synchronised=False, reference="", stratum=0))
    tiers, dummy, lines = run(hosts)
    assert tiers["clock_masters"]["hosts"][1]["problems"] == [
        "clock not synchronised", "uncertainty 1500.0 ms > bound 50.0 ms"]
    assert tiers["clock_masters"]["hosts"][1]["synchronised"] is False
    assert lines[0] == (u"Clock Masters:     \u26a0 1/2 healthy (max uncertainty: 1500.000 ms; "
                        u"cm-2: clock not synchronised; cm-2: uncertainty 1500.0 ms > bound 50.0 ms)")
    assert lines[-1].endswith(u"\u26a0 DEGRADED (2 problems, within redundancy; bound 50.0 ms)")


def test_unsynchronised_within_the_bound_is_still_unhealthy():
    hosts = healthy_hosts()
    hosts[8] = host("kafka-1", "kafka_brokers", clock=clock(1000, synchronised=False))
    tiers, dummy, lines = run(hosts)
    assert tiers["kafka_brokers"]["problems"] == ["kafka-1: clock not synchronised"]
    assert lines[4] == (u"Kafka Brokers:     \u2717 0/1 healthy (under-replicated partitions: 0; "
                        u"kafka-1: clock not synchronised)")


def test_clock_not_read():
    hosts = healthy_hosts()
    hosts[5] = host("ingest-1", "ingestion_engines", clock=None)
    tiers, dummy, lines = run(hosts)
    assert lines[2] == (u"Ingestion Engines: \u2717 0/1 healthy (max uncertainty: n/a; "
                        u"ingest-1: clock could not be read)")
    ingest = tiers["ingestion_engines"]["hosts"][0]
    assert ingest["uncertainty_ns"] is None and ingest["reference"] is None and ingest["version"] == "1.0.0"
    del hosts[5]["clock"]  # missing is the same as null
    assert run(hosts)[0]["ingestion_engines"]["problems"] == ["ingest-1: clock could not be read"]


# --- engines' /health ------------------------------------------------------------------------------

def test_health_503():
    hosts = healthy_hosts()
    answer = {"status": 503, "json": {"status": "failing", "version": "1.2.0"}, "msg": "Status code was 503 and not [200]"}
    hosts[7] = host("olap-2", "olap_shards", health=answer)
    tiers, dummy, lines = run(hosts)
    assert lines[3] == u"OLAP Shards:       \u2717 1/2 healthy (max uncertainty: 0.950 ms; olap-2: /health 503 failing)"
    assert lines[-1] == u"Overall:           \u2717 UNHEALTHY (1 problem; bound 50.0 ms)"
    olap2 = tiers["olap_shards"]["hosts"][1]
    assert (olap2["health_status"], olap2["version"]) == (503, "1.2.0")


@pytest.mark.parametrize("answer, problem", [
    ({"status": 200, "json": {"status": "degraded"}}, "/health 200 degraded"),
    ({"status": 500, "msg": "Internal Server Error"}, "/health 500"),
    ({"status": -1, "msg": "Status code was -1 and not [200]: Request failed: <urlopen error [Errno 111]\nConnection refused>"},
     "/health unreachable: Status code was -1 and not [200]: Request failed: <urlopen error [Errno 111] Connection refused>"),
    ({"msg": "timed out"}, "/health unreachable: timed out"),
    ({"status": -1}, "/health unreachable"),
    (None, "/health not checked"),
])
def test_health_answers(answer, problem):
    hosts = healthy_hosts()
    hosts[2] = host("tx-2", "tx_engines", health=answer)
    tiers = run(hosts)[0]
    assert tiers["tx_engines"]["problems"] == ["tx-2: " + problem]


def test_health_200_without_a_status_in_the_body_is_healthy():
    hosts = healthy_hosts()
    hosts[2] = host("tx-2", "tx_engines", health={"status": 200, "content": "ok"})
    assert run(hosts)[0]["tx_engines"]["healthy"] is True


def test_unreachable_host():
    hosts = healthy_hosts()
    hosts[6] = host("olap-1", "olap_shards", clock=None, health=None, error="unreachable")
    tiers, dummy, lines = run(hosts)
    # the error is its only problem: nothing else could be checked
    assert tiers["olap_shards"]["hosts"][0]["problems"] == ["unreachable"]
    assert lines[3] == u"OLAP Shards:       \u2717 1/2 healthy (max uncertainty: 0.010 ms; olap-1: unreachable)"


def test_more_than_two_problems_get_an_ellipsis():
    hosts = healthy_hosts()
    hosts[2] = host("tx-2", "tx_engines", error="unreachable")
    hosts[3] = host("tx-1", "tx_engines", health={"status": 503, "json": {"status": "failing"}})
    hosts[4] = host("tx-3", "tx_engines", clock=None)
    tiers, dummy, lines = run(hosts)
    assert lines[1] == (u"TX Engines:        \u2717 0/3 healthy (max uncertainty: 0.400 ms; "
                        u"tx-1: /health 503 failing; tx-2: unreachable; \u2026)")
    assert lines[-1] == u"Overall:           \u2717 UNHEALTHY (3 problems; bound 50.0 ms)"


def test_tier_with_no_hosts():
    hosts = [h for h in healthy_hosts() if h["tier"] != "ingestion_engines"]
    tiers, dummy, lines = run(hosts)
    assert lines[2] == u"Ingestion Engines: \u2717 0/0 healthy (max uncertainty: n/a; no hosts)"
    assert tiers["ingestion_engines"]["problems"] == ["no hosts"] and tiers["ingestion_engines"]["healthy"] is False
    assert lines[-1] == u"Overall:           \u2717 UNHEALTHY (1 problem; bound 50.0 ms)"


def test_host_in_two_tiers_is_judged_in_each():
    hosts = healthy_hosts() + [host("tx-1", "kafka_brokers", 700000)]
    tiers, dummy, lines = run(hosts, kafka_ok(2))
    assert [h["name"] for h in tiers["kafka_brokers"]["hosts"]] == ["kafka-1", "tx-1"]
    assert lines[4] == u"Kafka Brokers:     \u2713 2/2 healthy (under-replicated partitions: 0)"


# --- Kafka -----------------------------------------------------------------------------------------

def test_kafka_under_replicated_partitions():
    tiers, kafka_result, lines = run(healthy_hosts(), kafka_ok(under_replicated_partitions=4))
    assert lines[4] == (u"Kafka Brokers:     \u2717 1/1 healthy (under-replicated partitions: 4; "
                        u"kafka: 4 under-replicated partitions)")
    assert kafka_result["healthy"] is False and kafka_result["problems"] == ["kafka: 4 under-replicated partitions"]
    assert lines[-1] == u"Overall:           \u2717 UNHEALTHY (1 problem; bound 50.0 ms)"


def test_kafka_missing_topics():
    tiers, kafka_result, lines = run(healthy_hosts(), kafka_ok(missing_topics=["ingest.events", "ingest.dead-letter"]))
    assert tiers["kafka_brokers"]["problems"] == ["kafka: missing topics ingest.events, ingest.dead-letter"]
    assert lines[4].startswith(u"Kafka Brokers:     \u2717 ")


def test_kafka_fewer_brokers_than_hosts_self_hosted():
    hosts = healthy_hosts() + [host("kafka-2", "kafka_brokers"), host("kafka-3", "kafka_brokers")]
    tiers, kafka_result, lines = run(hosts, kafka_ok(2))
    assert lines[4] == (u"Kafka Brokers:     \u26a0 2/3 healthy (under-replicated partitions: 0; "
                        u"kafka: 2 of 3 brokers registered)")
    assert run(hosts, kafka_ok(3))[2][4] == u"Kafka Brokers:     \u2713 3/3 healthy (under-replicated partitions: 0)"


def test_kafka_self_hosted_problems_come_before_the_hosts():
    hosts = healthy_hosts() + [host("kafka-2", "kafka_brokers", clock=None)]
    tiers = run(hosts, kafka_ok(2, under_replicated_partitions=1))[0]
    assert tiers["kafka_brokers"]["problems"] == ["kafka: 1 under-replicated partition", "kafka-2: clock could not be read"]
    assert tiers["kafka_brokers"]["healthy_hosts"] == 1


def test_kafka_external_counts_the_reported_brokers():
    hosts = [h for h in healthy_hosts() if h["tier"] != "kafka_brokers"]
    external = kafka_ok(3, mode="external", bootstrap=["b-1.msk:9094"])
    tiers, kafka_result, lines = run(hosts, external)
    assert lines[4] == u"Kafka Brokers:     \u2713 3/3 healthy (under-replicated partitions: 0)"
    assert lines[-1] == u"Overall:           \u2713 HEALTHY (bound 50.0 ms)"
    assert (tiers["kafka_brokers"]["total"], tiers["kafka_brokers"]["hosts"]) == (3, [])
    # external: the brokers are not counted against kafka_brokers hosts (their clocks still count)
    kafka_hosts = [host("kafka-%d" % i, "kafka_brokers") for i in range(1, 6)]
    tiers, kafka_result, lines = run(hosts + kafka_hosts, external)
    assert lines[4] == u"Kafka Brokers:     \u2713 3/3 healthy (under-replicated partitions: 0)"
    assert len(tiers["kafka_brokers"]["hosts"]) == 5 and kafka_result["problems"] == []
    kafka_hosts[4] = host("kafka-5", "kafka_brokers", clock=None)
    assert run(hosts + kafka_hosts, external)[2][4] == (
        u"Kafka Brokers:     \u26a0 3/3 healthy (under-replicated partitions: 0; kafka-5: clock could not be read)")
    external["under_replicated_partitions"] = 2
    assert run(hosts, external)[2][4] == (u"Kafka Brokers:     \u2717 0/3 healthy (under-replicated partitions: 2; "
                                          u"kafka: 2 under-replicated partitions)")


@pytest.mark.parametrize("kafka, problem", [
    (kafka_ok(brokers=None), "kafka: brokers could not be read"),
    (kafka_ok(error="NoBrokersAvailable\n(bootstrap kafka-1:9092)"), "kafka: NoBrokersAvailable (bootstrap kafka-1:9092)"),
    ({"mode": "self_hosted"}, "kafka: brokers could not be read"),
])
def test_kafka_could_not_be_read(kafka, problem):
    tiers, kafka_result, lines = run(healthy_hosts(), kafka)
    assert tiers["kafka_brokers"]["problems"] == [problem] and kafka_result["broker_count"] is None
    assert lines[4].startswith(u"Kafka Brokers:     \u2717 0/1 healthy (under-replicated partitions: ")


def test_kafka_external_not_read():
    hosts = [h for h in healthy_hosts() if h["tier"] != "kafka_brokers"]
    lines = run(hosts, {"mode": "external", "error": "timed out"})[2]
    assert lines[4] == u"Kafka Brokers:     \u2717 0/0 healthy (under-replicated partitions: unknown; kafka: timed out)"


def test_no_kafka_at_all():
    hosts = [h for h in healthy_hosts() if h["tier"] != "kafka_brokers"]
    tiers, kafka_result, lines = run(hosts, {})
    assert lines[4] == (u"Kafka Brokers:     \u2717 0/0 healthy (under-replicated partitions: unknown; "
                        u"no Kafka hosts and no Kafka information)")
    assert tiers["kafka_brokers"]["healthy"] is False


def test_self_hosted_kafka_info_without_hosts():
    hosts = [h for h in healthy_hosts() if h["tier"] != "kafka_brokers"]
    tiers = run(hosts, kafka_ok(3))[0]
    assert tiers["kafka_brokers"]["problems"] == ["no hosts"]


def test_bad_input():
    with pytest.raises(health.HealthInputError, match="kafka.mode"):
        health.evaluate(healthy_hosts(), kafka_ok(mode="managed"), BOUND)
    with pytest.raises(health.HealthInputError, match="max_uncertainty_ns"):
        health.evaluate(healthy_hosts(), kafka_ok(), 0)
    with pytest.raises(health.HealthInputError, match="tier must be one of"):
        health.evaluate([host("x", "web")], kafka_ok(), BOUND)
    with pytest.raises(health.HealthInputError, match="uncertainty_ns must be an integer"):
        health.evaluate([host("x", "clock_masters", clock=clock("lots"))], kafka_ok(), BOUND)


# --- report and HTML -------------------------------------------------------------------------------

FROZEN = datetime.datetime(2025, 1, 31, 12, 0, 0, tzinfo=datetime.timezone.utc)


@pytest.fixture
def frozen(monkeypatch):
    monkeypatch.setattr(health, "utc_now", lambda: FROZEN)


def test_report(frozen):
    report = health.build_report(healthy_hosts(), kafka_ok(), BOUND, "prod-eu")
    assert report["generated_at"] == "2025-01-31T12:00:00Z"
    assert (report["cluster_name"], report["max_uncertainty_ns"], report["healthy"]) == ("prod-eu", BOUND, True)
    assert report["summary"].rsplit("\n", maxsplit=1)[-1] == u"Overall:           \u2713 HEALTHY (bound 50.0 ms)"
    text = health.render_json(report)
    assert json.loads(text) == report and text.endswith("}\n")
    assert u"\u2713" in text  # not \\u escapes


def unhealthy_hosts():
    hosts = healthy_hosts()
    hosts[2] = host("tx-2", "tx_engines", 62100000)  # over the bound: red
    hosts[8] = host("<script>alert(1)</script>", "kafka_brokers", 300000)
    hosts.append(host("olap-3", "olap_shards", clock=None))  # no reading: no bar length
    return hosts


def test_html_tables_and_status(frozen):
    report = health.build_report(unhealthy_hosts(), kafka_ok(), BOUND, "prod & eu")
    page = health.render_html(report)
    assert page.startswith("<!DOCTYPE html>")
    assert page.count("<table") == 5 and page.count("</table>") == 5
    assert "<title>ScratchBird cluster health \u2014 prod &amp; eu \u2014 2025-01-31T12:00:00Z</title>" in page
    assert u'<p class="status bad">\u2717 UNHEALTHY (2 problems; bound 50.0 ms)</p>' in page
    for label in ("Clock Masters", "TX Engines", "Ingestion Engines", "OLAP Shards", "Kafka Brokers"):
        assert "%s \u2014 " % label in page
    # one row per host item
    assert len(re.findall(r'<tr class="(ok|bad)">', page)) == 10
    row = re.search(r'<tr class="bad"><td>tx-2</td>.*?</tr>', page).group(0)
    assert (u'<td class="mark">\u2717 unhealthy</td><td class="num">62.100</td><td class="num">-0.001</td>'
            u"<td>10.213.10.11 (stratum 3)</td><td>1.0.0</td>") in row
    assert "uncertainty 62.1 ms &gt; bound 50.0 ms" in row


def test_html_chart(frozen):
    report = health.build_report(unhealthy_hosts(), kafka_ok(), BOUND, "lab")
    page = health.render_html(report)
    assert page.count("<svg") == 1
    svg = page[page.index("<svg"):page.index("</svg>")]
    bars = re.findall(r'<rect class="bar" x="220" y="[\d.]+" width="([\d.]+)" height="16" fill="(#\w+)"><title>([^<]*)</title>', svg)
    assert len(bars) == svg.count("<rect") == 10
    # sorted by tier, then name
    assert [b[2].split(":")[0] for b in bars] == [
        "cm-1", "cm-2", "tx-1", "tx-2", "tx-3", "ingest-1", "olap-1", "olap-2", "olap-3",
        "&lt;script&gt;alert(1)&lt;/script&gt;"]
    # scale: 62.1 ms * 1.1 = 68.31 ms over 480 px
    assert bars[3] == ("436.36", "#c62828", "tx-2: 62.100 ms")
    assert bars[0] == ("2.9", "#2e7d32", "cm-1: 0.412 ms")
    assert bars[8] == ("0", "#9e9e9e", "olap-3: n/a")
    assert sum(1 for b in bars if b[1] == "#c62828") == 1
    # the bound line at 50 / 68.31 of the bar area
    bound = re.search(r'<line class="bound" x1="([\d.]+)" y1="\d+" x2="([\d.]+)" y2="\d+"', svg)
    assert bound.group(1) == bound.group(2) == "571.34"
    assert ">bound 50.0 ms</text>" in svg
    assert ">62.100 ms</text>" in svg and ">tx-2</text>" in svg


def test_html_chart_scale_is_the_bound_when_all_are_below(frozen):
    report = health.build_report(healthy_hosts(), kafka_ok(), BOUND, "lab")
    svg = health.render_html(report).split("<svg", 1)[1]
    bound = re.search(r'<line class="bound" x1="([\d.]+)"', svg)
    assert bound.group(1) == "656.36"  # 220 + 480 / 1.1
    assert "#c62828\"><title>" not in svg


def test_html_escapes_and_is_self_contained(frozen):
    hosts = unhealthy_hosts()
    hosts[0]["clock"]["reference_name"] = '"><img src=x onerror=alert(1)>'
    report = health.build_report(hosts, kafka_ok(error="<b>down</b>"), BOUND, "<i>lab</i>")
    page = health.render_html(report)
    assert "<script" not in page.lower() and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "<img" not in page and "&quot;&gt;&lt;img src=x onerror=alert(1)&gt;" in page
    assert "<b>down" not in page and "<i>lab" not in page
    assert "http://" not in page and "https://" not in page and "//" not in page.replace("</", "")
    assert " src=" not in page.replace("&lt;img src=", "") and "@import" not in page


def test_html_without_hosts(frozen):
    report = health.build_report([], {}, BOUND)
    page = health.render_html(report)
    assert page.count("<table") == 5 and page.count('<td colspan="7">no hosts</td>') == 5
    assert "<rect" not in page and "<title>ScratchBird cluster health \u2014 2025-01-31T12:00:00Z</title>" in page


# --- files -----------------------------------------------------------------------------------------

def test_write_if_changed(tmp_path):
    path = tmp_path / "reports" / "deep" / "health.json"
    assert health.write_if_changed(str(path), u"\u2713 one\n", check_mode=True) is True
    assert not (tmp_path / "reports").exists()
    assert health.write_if_changed(str(path), u"\u2713 one\n") is True
    assert path.read_bytes() == u"\u2713 one\n".encode("utf-8")
    assert oct(os.stat(str(path)).st_mode & 0o777) == oct(0o644)
    assert health.write_if_changed(str(path), u"\u2713 one\n") is False
    assert health.write_if_changed(str(path), u"\u2713 one\n", check_mode=True) is False
    assert health.write_if_changed(str(path), u"two\n", check_mode=True) is True
    assert path.read_text() == u"\u2713 one\n"
    assert health.write_if_changed(str(path), u"two\n") is True and path.read_text() == "two\n"
    assert sorted(p.name for p in path.parent.iterdir()) == ["health.json"]  # no temporary file left


def test_write_failure_leaves_no_temporary_file(tmp_path, monkeypatch):
    path = tmp_path / "health.json"

    def refuse(src, dst):
        raise OSError("read-only")

    monkeypatch.setattr(health.os, "replace", refuse)
    with pytest.raises(OSError, match="read-only"):
        health.write_if_changed(str(path), "x")
    assert list(tmp_path.iterdir()) == []


def test_module_is_stdlib_only_and_sanity_shaped():
    source = _PATH.read_text(encoding="utf-8")
    assert source.startswith("# Copyright: scratchbird.cluster contributors\n# Apache License 2.0 (see LICENSE)\n")
    assert "from __future__ import absolute_import, division, print_function" in source
    assert "__metaclass__ = type" in source
    assert "print(" not in source and "sys.exit" not in source
    tree = ast.parse(source, feature_version=(3, 7))
    functions = [n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.Lambda))]
    assert not any(getattr(f, "returns", None) for f in functions)  # no annotations at all
    assert not any(a.annotation for f in functions if isinstance(f, ast.FunctionDef) for a in f.args.args)
    imported = {a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    imported |= {n.module.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
    assert imported <= {"__future__", "ansible_collections", "datetime", "html", "json", "os", "re", "tempfile"}
    assert max(len(line) for line in source.splitlines()) <= 160


# --- states: not checked, unreachable, unreadable, unhealthy, DEGRADED ---------------------------------

def by_name(tiers, tier, name):
    return [h for h in tiers[tier]["hosts"] if h["name"] == name][0]


def replace(hosts, item):
    return [item if (h["name"], h["tier"]) == (item["name"], item["tier"]) else h for h in hosts]


def test_the_four_kinds_of_trouble_are_distinct():
    hosts = healthy_hosts()
    hosts = replace(hosts, host("tx-1", "tx_engines", not_checked="outside --limit"))
    hosts = replace(hosts, host("tx-2", "tx_engines", clock=None, health=None, error="Failed to connect to the host via ssh"))
    hosts = replace(hosts, host("tx-3", "tx_engines", clock=None, clock_error="506 Cannot talk to daemon"))
    hosts = replace(hosts, host("olap-1", "olap_shards", health={"status": -1, "msg": "Connection refused"}))
    tiers, dummy, lines = run(hosts)
    assert [by_name(tiers, "tx_engines", n)["state"] for n in ("tx-1", "tx-2", "tx-3")] == [
        "not_checked", "unreachable", "unreadable"]
    assert by_name(tiers, "olap_shards", "olap-1")["state"] == "unhealthy"
    assert by_name(tiers, "tx_engines", "tx-1")["reason"] == "outside --limit"
    assert by_name(tiers, "tx_engines", "tx-1")["problems"] == []
    assert by_name(tiers, "tx_engines", "tx-2")["problems"] == ["unreachable: Failed to connect to the host via ssh"]
    assert by_name(tiers, "tx_engines", "tx-3")["problems"] == ["clock could not be read: 506 Cannot talk to daemon"]
    # a host not checked is no problem and not counted
    assert tiers["tx_engines"]["total"] == 2 and tiers["tx_engines"]["left_out"] == ["tx-1"]
    assert lines[1] == (u"TX Engines:        \u2717 0/2 healthy (max uncertainty: n/a; "
                        u"tx-2: unreachable: Failed to connect to the host via ssh; "
                        u"tx-3: clock could not be read: 506 Cannot talk to daemon; 1 left out)")
    assert lines[-1] == u"Left out:          tx-1 (outside --limit)"


def test_limit_covers_the_limited_hosts_and_lists_the_others():
    hosts = [h if h["name"] in ("tx-1", "cm-1") else dict(h, not_checked="outside --limit") for h in healthy_hosts()]
    tiers, dummy, lines = run(hosts)
    assert health.cluster_state(tiers) == "healthy"
    assert lines[1] == u"TX Engines:        \u2713 1/1 healthy (max uncertainty: 0.800 ms; 2 left out)"
    assert lines[2] == u"Ingestion Engines: \u2013 0/0 healthy (max uncertainty: n/a; 1 left out)"
    assert lines[-2] == u"Overall:           \u2713 HEALTHY (bound 50.0 ms)"
    assert lines[-1] == u"Left out:          cm-2, ingest-1, kafka-1, olap-1, olap-2, tx-2, tx-3 (outside --limit)"
    assert tiers["ingestion_engines"]["state"] == "not_checked"


def test_left_out_reasons_are_grouped():
    hosts = healthy_hosts()
    hosts = replace(hosts, dict(host("olap-2", "olap_shards"), not_checked="the run stopped before it"))
    hosts = replace(hosts, dict(host("tx-3", "tx_engines"), not_checked="outside --limit"))
    lines = run(hosts)[2]
    assert lines[-1] == u"Left out:          olap-2 (the run stopped before it); tx-3 (outside --limit)"


def test_one_clock_master_of_two_down_is_degraded_not_unhealthy():
    hosts = replace(healthy_hosts(), host("cm-1", "clock_masters", clock=None, error="unreachable"))
    tiers, dummy, lines = run(hosts)
    assert tiers["clock_masters"]["state"] == "degraded"
    assert lines[0] == u"Clock Masters:     \u26a0 1/2 healthy (max uncertainty: 0.025 ms; cm-1: unreachable)"
    assert lines[-1] == u"Overall:           \u26a0 DEGRADED (1 problem, within redundancy; bound 50.0 ms)"
    both = replace(hosts, host("cm-2", "clock_masters", clock=None, error="unreachable"))
    assert run(both)[0]["clock_masters"]["state"] == "unhealthy"


def test_an_engine_tier_is_degraded_only_above_its_minimum():
    six = healthy_hosts() + [host("tx-%d" % n, "tx_engines") for n in (4, 5, 6)]
    stopped = replace(six, host("tx-5", "tx_engines", health={"status": -1, "msg": "Connection refused"}))
    # the contract's minimum is 4 TX engines: 5 of 6 healthy is within redundancy
    assert run(stopped)[0]["tx_engines"]["state"] == "degraded"
    two_down = replace(stopped, host("tx-6", "tx_engines", clock=None, error="unreachable"))
    assert run(two_down)[0]["tx_engines"]["state"] == "degraded"  # 4 of 6
    three_down = replace(two_down, host("tx-4", "tx_engines", clock=None, error="unreachable"))
    assert run(three_down)[0]["tx_engines"]["state"] == "unhealthy"  # 3 of 6 < 4
    # the lab's 3 TX engines are below the contract: any loss is unhealthy unless the minimum is lowered
    one_of_three = replace(healthy_hosts(), host("tx-2", "tx_engines", health={"status": 503, "json": {"status": "failing"}}))
    assert run(one_of_three)[0]["tx_engines"]["state"] == "unhealthy"
    tiers, dummy = health.evaluate(one_of_three, kafka_ok(), BOUND, {"tx_engines": 2})
    assert tiers["tx_engines"]["state"] == "degraded" and tiers["tx_engines"]["minimum"] == 2


def test_the_worst_tier_decides():
    hosts = replace(healthy_hosts(), host("cm-1", "clock_masters", clock=None, error="unreachable"))
    hosts = replace(hosts, host("olap-2", "olap_shards", health={"status": 503}))
    tiers, dummy, lines = run(hosts)
    assert health.cluster_state(tiers) == "unhealthy"
    assert lines[-1] == u"Overall:           \u2717 UNHEALTHY (2 problems; bound 50.0 ms)"


def topics(**per_topic):
    return dict((name.replace("_", "-"), dict({"partitions": 3, "under_replicated_partitions": 0, "min_isr": 3,
                                               "offline_partitions": 0}, **values))
                for name, values in per_topic.items())


def test_kafka_under_replication_within_min_insync_is_degraded():
    three = healthy_hosts() + [host("kafka-2", "kafka_brokers"), host("kafka-3", "kafka_brokers")]
    info = kafka_ok(3, under_replicated_partitions=3, min_insync_replicas=2,
                    topics=topics(db_changes_1={"under_replicated_partitions": 3, "min_isr": 2}, db_changes_2={}))
    tiers, kafka_result, lines = run(three, info)
    assert kafka_result["state"] == "degraded" and tiers["kafka_brokers"]["state"] == "degraded"
    assert lines[4] == (u"Kafka Brokers:     \u26a0 3/3 healthy (under-replicated partitions: 3; "
                        u"kafka: 3 under-replicated partitions)")


def test_kafka_below_min_insync_or_offline_is_unhealthy():
    three = healthy_hosts() + [host("kafka-2", "kafka_brokers"), host("kafka-3", "kafka_brokers")]
    below = kafka_ok(3, under_replicated_partitions=3, min_insync_replicas=2,
                     topics=topics(db_changes_1={"under_replicated_partitions": 3, "min_isr": 1}))
    tiers, kafka_result, dummy = run(three, below)
    assert kafka_result["state"] == "unhealthy"
    assert "kafka: topic db-changes-1 (in-sync replicas 1 < min.insync.replicas 2)" in kafka_result["problems"]
    offline = kafka_ok(3, min_insync_replicas=1, topics=topics(db_changes_1={"min_isr": 0, "offline_partitions": 1}))
    assert run(three, offline)[1]["problems"] == [
        "kafka: topic db-changes-1 (in-sync replicas 0 < min.insync.replicas 1, 1 partition offline)"]


def test_kafka_under_replication_without_isr_detail_is_unhealthy():
    # without the partitions' ISR no loss can be shown to be within redundancy
    assert run(healthy_hosts(), kafka_ok(under_replicated_partitions=2))[1]["state"] == "unhealthy"


def test_a_broker_host_down_with_kafka_in_sync_is_degraded():
    three = healthy_hosts() + [host("kafka-2", "kafka_brokers"), host("kafka-3", "kafka_brokers", clock=None, error="unreachable")]
    info = kafka_ok(2, under_replicated_partitions=1, min_insync_replicas=2,
                    topics=topics(db_changes_1={"under_replicated_partitions": 1, "min_isr": 2}))
    tiers, kafka_result, lines = run(three, info)
    assert tiers["kafka_brokers"]["state"] == "degraded"
    assert tiers["kafka_brokers"]["problems"] == [
        "kafka: 1 under-replicated partition", "kafka: 2 of 3 brokers registered", "kafka-3: unreachable"]


def test_report_state_left_out_and_html_colours(monkeypatch):
    monkeypatch.setattr(health, "utc_now", lambda: __import__("datetime").datetime(2026, 12, 3, tzinfo=__import__("datetime").timezone.utc))
    hosts = replace(healthy_hosts(), host("cm-1", "clock_masters", clock=None, error="unreachable"))
    hosts = replace(hosts, dict(host("tx-3", "tx_engines"), not_checked="outside --limit"))
    report = health.build_report(hosts, kafka_ok(), BOUND, "lab")
    assert report["state"] == "DEGRADED" and report["healthy"] is False
    assert report["left_out"] == [{"name": "tx-3", "reason": "outside --limit"}]
    json.loads(health.render_json(report))
    page = health.render_html(report)
    assert u'<p class="status warn">\u26a0 DEGRADED (1 problem, within redundancy; bound 50.0 ms)</p>' in page
    assert u'<h2 id="clock_masters" class="warn">' in page
    assert u'<tr class="skip"><td>tx-3</td><td class="mark">\u2013 not checked</td>' in page
    assert u"<li>not checked: outside --limit</li>" in page
    assert u'<tr class="bad"><td>cm-1</td><td class="mark">\u2717 unreachable</td>' in page
    assert u".status.warn" in page


@pytest.mark.parametrize("minimums", [{"tx_engines": "many"}])
def test_bad_minimum(minimums):
    with pytest.raises(health.HealthInputError, match="minimum of tx_engines"):
        health.evaluate(healthy_hosts(), kafka_ok(), BOUND, minimums)


def test_an_unsynchronised_clock_is_unhealthy_not_unreadable():
    hosts = replace(healthy_hosts(), host("olap-1", "olap_shards", clock=clock(1000, synchronised=False)))
    assert run(hosts)[0]["olap_shards"]["hosts"][0]["state"] == "unhealthy"


def test_kafka_min_insync_defaults_to_the_collections_broker_default():
    three = healthy_hosts() + [host("kafka-2", "kafka_brokers"), host("kafka-3", "kafka_brokers")]
    one_in_sync = topics(db_changes_1={"under_replicated_partitions": 2, "min_isr": 1})
    # 3 brokers: replication 3, min.insync.replicas 2 - one replica in sync is below it
    result = run(three, kafka_ok(3, under_replicated_partitions=2, topics=one_in_sync))[1]
    assert result["min_insync_replicas"] == 2 and result["state"] == "unhealthy"
    # 2 brokers: replication 2, min.insync.replicas 1 - within redundancy
    result = run(three[:-1], kafka_ok(2, under_replicated_partitions=2, topics=one_in_sync))[1]
    assert result["min_insync_replicas"] == 1 and result["state"] == "degraded"
