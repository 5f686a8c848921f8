# Copyright: scratchbird.cluster contributors
# Apache License 2.0 (see LICENSE)
"""Cluster health: evaluate per-host readings, summarise them, render the reports.

Used by ``plugins/modules/cluster_health.py``; nothing here probes a host.  The
playbook gathers the readings (``chrony_info``, the engines' ``/health`` through
``ansible.builtin.uri``, ``kafka_info``) and this module judges them:

- ``evaluate(hosts, kafka, bound_ns)`` -> ``(tiers, kafka_result)``
- ``summary_text(tiers, kafka_result, bound_ns)`` -> the contract's summary lines
- ``build_report(...)`` -> the JSON report (``generated_at`` from ``utc_now()``)
- ``render_json(report)`` / ``render_html(report)`` -> file contents
- ``write_if_changed(path, text, check_mode)`` -> atomic write, True when the content changed

Standard library only, Python 3.7 grammar.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import datetime
import html
import json
import os
import re
import tempfile

from ansible_collections.scratchbird.cluster.plugins.module_utils.contract import DEFAULTS, ENGINE_GROUPS, TIERS, kafka_replication

# The tiers in the summary's order (the contract's format): inventory group -> label.
TIER_NAMES = ("clock_masters", "tx_engines", "ingestion_engines", "olap_shards", "kafka_brokers")
TIER_LABELS = dict((name, TIERS[name]["label"]) for name in TIER_NAMES)
ENGINE_TIERS = ENGINE_GROUPS
KAFKA_TIER = "kafka_brokers"
KAFKA_MODES = ("self_hosted", "external")

# States, from best to worst; a tier or the cluster takes the worst of its parts.
HEALTHY, DEGRADED, UNHEALTHY = "healthy", "degraded", "unhealthy"
NOT_CHECKED, UNREACHABLE, UNREADABLE = "not_checked", "unreachable", "unreadable"
_RANK = {HEALTHY: 0, DEGRADED: 1, UNHEALTHY: 2}


def default_minimum(tier):
    """Healthy hosts a tier needs to be DEGRADED rather than UNHEALTHY after a loss: one clock
    master (the clients fail over to the other) and one broker (Kafka's ISR decides), the
    contract's minimum size on the engine tiers."""
    return 1 if tier in ("clock_masters", KAFKA_TIER) else TIERS[tier]["size"][0]


DEFAULT_BOUND_NS = DEFAULTS["cluster_max_acceptable_uncertainty_ns"]
LABEL_WIDTH = 19  # "Ingestion Engines: " - the contract pads every label to 19 columns
OK_MARK = u"\u2713"
BAD_MARK = u"\u2717"
DEGRADED_MARK = u"\u26a0"
NOT_CHECKED_MARK = u"\u2013"
MARKS = {HEALTHY: OK_MARK, DEGRADED: DEGRADED_MARK, UNHEALTHY: BAD_MARK, NOT_CHECKED: NOT_CHECKED_MARK}
ELLIPSIS = u"\u2026"
SUMMARY_PROBLEMS = 2  # host problems quoted on a summary line before the ellipsis
_MAX_TEXT = 200  # longest error text kept in a problem

_NS_PER_MS = 1000000


class HealthInputError(ValueError):
    """The readings handed in are not what the module expects."""


def utc_now():
    """The current time, UTC (a function so that tests can freeze it)."""
    return datetime.datetime.now(datetime.timezone.utc)


def iso_utc(moment):
    return moment.astimezone(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


# --- formatting -------------------------------------------------------------------------------

def ms(value_ns, decimals=3):
    """Nanoseconds as milliseconds with a fixed number of decimals ("0.412")."""
    return "%.*f" % (decimals, value_ns / _NS_PER_MS)


def _exact_decimals(value_ns, minimum=1):
    """Fewest decimals (at least minimum, at most 6) that show value_ns in ms exactly."""
    for decimals in range(minimum, 6):
        if int(round(float(ms(value_ns, decimals)) * _NS_PER_MS)) == value_ns:
            return decimals
    return 6


def bound_ms(bound_ns):
    """The bound in ms as the summary prints it: "50.0", "2.5", "0.001"."""
    return ms(bound_ns, _exact_decimals(bound_ns))


def over_bound_text(value_ns, bound_ns):
    """ "uncertainty 62.1 ms > bound 50.0 ms", with enough decimals to tell the two apart."""
    decimals = _exact_decimals(bound_ns)
    while decimals < 6 and ms(value_ns, decimals) == ms(bound_ns, decimals):
        decimals += 1
    return "uncertainty %s ms > bound %s ms" % (ms(value_ns, decimals), ms(bound_ns, decimals))


def one_line(text, limit=_MAX_TEXT):
    """Text on one line (whitespace collapsed), at most limit characters."""
    text = re.sub(r"\s+", " ", u"%s" % (text,)).strip()
    if len(text) > limit:
        text = text[:limit - 1].rstrip() + ELLIPSIS
    return text


def plural(count, word):
    return "%d %s%s" % (count, word, "" if count == 1 else "s")


def _natural_key(name):
    """Sort "olap-2" before "olap-10"."""
    return [(0, int(part), "") if part.isdigit() else (1, 0, part.lower()) for part in re.split(r"(\d+)", name) if part]


# --- reading the inputs -------------------------------------------------------------------------

def _as_int(value, what):
    """An int from an int, a whole float or a numeric string; None stays None."""
    if value is None:
        return None
    if isinstance(value, bool):
        raise HealthInputError("%s must be a number, got %r" % (what, value))
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    try:
        return int(value.strip()) if isinstance(value, str) else int(value)
    except (TypeError, ValueError):
        raise HealthInputError("%s must be an integer, got %r" % (what, value))


def _as_dict(value, what):
    if value is None:
        return None
    if not isinstance(value, dict):
        raise HealthInputError("%s must be a dict or null, got %s" % (what, type(value).__name__))
    return value


def _as_list(value, what):
    if value is None:
        return None
    if isinstance(value, (list, tuple)):
        return list(value)
    raise HealthInputError("%s must be a list or null, got %s" % (what, type(value).__name__))


def _truthy(value):
    if isinstance(value, str):
        return value.strip().lower() in ("true", "yes", "on", "1")
    return value is True or value == 1


# --- evaluation ---------------------------------------------------------------------------------

def clock_problems(clock, bound_ns):
    """Problems of one chrony_info result that was read."""
    problems = []
    if not _truthy(clock.get("synchronised")):
        problems.append("clock not synchronised")
    uncertainty = clock.get("uncertainty_ns")
    if uncertainty is None:
        problems.append("clock uncertainty unknown")
    elif uncertainty > bound_ns:
        problems.append(over_bound_text(uncertainty, bound_ns))
    return problems


def health_problems(health):
    """Problems of one engine /health answer (an ansible.builtin.uri result)."""
    if health is None:
        return ["/health not checked"]
    status = health.get("status")
    try:
        status = _as_int(status, "health.status")
    except HealthInputError:
        status = None
    body = health.get("json")
    body_status = body.get("status") if isinstance(body, dict) else None
    if status is None or status < 0:
        msg = one_line(health.get("msg") or "")
        return ["/health unreachable: %s" % msg if msg else "/health unreachable"]
    if status != 200:
        return [one_line("/health %d %s" % (status, body_status) if body_status is not None else "/health %d" % status)]
    if body_status is not None and body_status != "ok":
        return [one_line("/health 200 %s" % (body_status,))]
    return []


def _reference(clock):
    if clock is None:
        return None
    name = clock.get("reference_name")
    if name:
        return u"%s" % (name,)
    if _truthy(clock.get("local_reference")):
        return "local"
    ref_id = clock.get("reference_id")
    return u"%s" % (ref_id,) if ref_id else None


def _host_state(item, clock, health, engine, bound_ns):
    """(state, problems, reason) of one host item."""
    if item.get("not_checked"):
        return NOT_CHECKED, [], one_line(item["not_checked"])
    if item.get("error"):
        error = one_line(item["error"])
        return UNREACHABLE, [error if error.lower().startswith("unreachable") else "unreachable: " + error], None
    if clock is None:
        why = one_line(item.get("clock_error") or "")
        problems = ["clock could not be read" + (": " + why if why else "")]
        return UNREADABLE, problems + (health_problems(health) if engine else []), None
    problems = clock_problems(clock, bound_ns) + (health_problems(health) if engine else [])
    return (UNHEALTHY if problems else HEALTHY), problems, None


def evaluate_host(item, bound_ns):
    """One host item -> its per-host result (name, state, readings, problems)."""
    name = u"%s" % (item.get("name") or "",)
    tier = item.get("tier")
    where = "host %s (%s)" % (name or "?", tier)
    if not name:
        raise HealthInputError("a host has no name (tier %s)" % (tier,))
    if tier not in TIER_LABELS:
        raise HealthInputError("%s: tier must be one of %s" % (where, ", ".join(TIER_NAMES)))
    clock = _as_dict(item.get("clock"), where + " clock")
    if clock is not None:
        clock = dict(clock)
        for key in ("uncertainty_ns", "offset_ns", "stratum"):
            clock[key] = _as_int(clock.get(key), "%s clock %s" % (where, key))
    engine = tier in ENGINE_TIERS
    health = _as_dict(item.get("health"), where + " health") if engine else None
    state, problems, reason = _host_state(item, clock, health, engine, bound_ns)

    version = None
    health_status = None
    if health is not None:
        body = health.get("json")
        if isinstance(body, dict) and body.get("version") is not None:
            version = u"%s" % (body["version"],)
        try:
            health_status = _as_int(health.get("status"), "health.status")
        except HealthInputError:
            health_status = None
    return {
        "name": name,
        "state": state,
        "healthy": state == HEALTHY,
        "reason": reason,
        "synchronised": None if clock is None else _truthy(clock.get("synchronised")),
        "uncertainty_ns": None if clock is None else clock.get("uncertainty_ns"),
        "offset_ns": None if clock is None else clock.get("offset_ns"),
        "reference": _reference(clock),
        "stratum": None if clock is None else clock.get("stratum"),
        "health_status": health_status,
        "version": version,
        "problems": problems,
    }


def _brokers(value):
    brokers = []
    for broker in _as_list(value, "kafka.brokers") or []:
        if not isinstance(broker, dict):
            raise HealthInputError("kafka.brokers items must be dicts, got %r" % (broker,))
        brokers.append({
            "id": _as_int(broker.get("id"), "kafka broker id"),
            "host": None if broker.get("host") is None else u"%s" % (broker["host"],),
            "port": _as_int(broker.get("port"), "kafka broker port"),
        })
    return brokers


def _below_min_isr(topics, min_insync):
    """Topics with a partition offline or with fewer in-sync replicas than min_insync, and
    whether every topic told its smallest ISR (without it no loss can be called redundant)."""
    below, known = [], bool(topics)
    for name in sorted(topics):
        topic = _as_dict(topics[name], "kafka.topics.%s" % name) or {}
        offline = _as_int(topic.get("offline_partitions"), "kafka.topics.%s.offline_partitions" % name) or 0
        min_isr = _as_int(topic.get("min_isr"), "kafka.topics.%s.min_isr" % name)
        if min_isr is None:
            known = known and not _as_int(topic.get("under_replicated_partitions"), "kafka.topics.%s.under_replicated_partitions" % name)
        elif offline or min_isr < min_insync:
            below.append("%s (in-sync replicas %d < min.insync.replicas %d%s)" % (
                name, min_isr, min_insync, ", %s offline" % plural(offline, "partition") if offline else ""))
    return below, known


def evaluate_kafka(kafka, kafka_host_count):
    """The Kafka cluster check -> the evaluated Kafka part (without the hosts' clocks).

    Under-replicated partitions are a loss within redundancy (DEGRADED) while every partition
    keeps at least min_insync_replicas in sync; below that, or offline, Kafka is UNHEALTHY."""
    kafka = _as_dict(kafka, "kafka") or {}
    mode = kafka.get("mode") or "self_hosted"
    if mode not in KAFKA_MODES:
        raise HealthInputError("kafka.mode must be one of %s, got %r" % (", ".join(KAFKA_MODES), mode))
    raw_brokers = kafka.get("brokers")
    brokers = None if raw_brokers is None else _brokers(raw_brokers)
    urp = _as_int(kafka.get("under_replicated_partitions"), "kafka.under_replicated_partitions")
    missing = [u"%s" % (t,) for t in (_as_list(kafka.get("missing_topics"), "kafka.missing_topics") or [])]
    error = one_line(kafka["error"]) if kafka.get("error") else None
    bootstrap = [u"%s" % (b,) for b in (_as_list(kafka.get("bootstrap"), "kafka.bootstrap") or [])]
    min_insync = _as_int(kafka.get("min_insync_replicas"), "kafka.min_insync_replicas")
    if min_insync is None:  # the collection's broker default for this many brokers
        min_insync = kafka_replication(len(brokers or []))[1]
    below, isr_known = _below_min_isr(_as_dict(kafka.get("topics"), "kafka.topics") or {}, min_insync)

    problems, degraded = [], []
    if not kafka and not kafka_host_count:
        problems.append("no Kafka hosts and no Kafka information")
    elif error:
        problems.append("kafka: %s" % error)
    elif brokers is None:
        problems.append("kafka: brokers could not be read")
    if brokers is not None and not error:
        if missing:
            problems.append("kafka: missing topics %s" % ", ".join(missing))
        problems.extend("kafka: topic %s" % text for text in below)
        if urp:
            (degraded if isr_known and not below else problems).append(
                "kafka: %s" % plural(urp, "under-replicated partition"))
        if mode == "self_hosted" and len(brokers) < kafka_host_count:
            (degraded if brokers else problems).append("kafka: %d of %d brokers registered" % (len(brokers), kafka_host_count))
    state = UNHEALTHY if problems else DEGRADED if degraded else HEALTHY
    return {
        "mode": mode,
        "state": state,
        "bootstrap": bootstrap,
        "brokers": brokers,
        "broker_count": None if brokers is None or error else len(brokers),
        "under_replicated_partitions": urp,
        "min_insync_replicas": min_insync,
        "missing_topics": missing,
        "error": error,
        "healthy": state == HEALTHY,
        "problems": problems + degraded,
    }


def _tier_state(hosts, minimum):
    """A tier's state from its checked hosts: HEALTHY when all are, DEGRADED while at least
    minimum (and one) are healthy, else UNHEALTHY; NOT_CHECKED when none was checked."""
    checked = [h for h in hosts if h["state"] != NOT_CHECKED]
    if not checked:
        return NOT_CHECKED if hosts else UNHEALTHY
    healthy = sum(1 for h in checked if h["state"] == HEALTHY)
    if healthy == len(checked):
        return HEALTHY
    return DEGRADED if healthy >= max(minimum, 1) else UNHEALTHY


def _tier(name, host_results, minimum):
    checked = [h for h in host_results if h["state"] != NOT_CHECKED]
    readings = [h["uncertainty_ns"] for h in checked if h["uncertainty_ns"] is not None]
    problems = ["%s: %s" % (h["name"], p) for h in checked for p in h["problems"]]
    if not host_results:
        problems.append("no hosts")
    state = _tier_state(host_results, minimum)
    return {
        "label": TIER_LABELS[name],
        "state": state,
        "healthy": state in (HEALTHY, NOT_CHECKED),
        "healthy_hosts": sum(1 for h in checked if h["state"] == HEALTHY),
        "total": len(checked),
        "minimum": minimum,
        "left_out": [h["name"] for h in host_results if h["state"] == NOT_CHECKED],
        "max_uncertainty_ns": max(readings) if readings else None,
        "problems": problems,
        "hosts": host_results,
    }


def _worst(*states):
    ranked = [s for s in states if s in _RANK]
    return max(ranked, key=_RANK.get) if ranked else NOT_CHECKED


def evaluate(hosts, kafka=None, bound_ns=DEFAULT_BOUND_NS, minimums=None):
    """Judge every host and the Kafka cluster.

    Returns (tiers, kafka_result): tiers is a dict in the summary's tier order, keyed by
    inventory group.  minimums: healthy hosts per tier for DEGRADED rather than UNHEALTHY
    (default_minimum() for a tier left out).  Raises HealthInputError on malformed input.
    """
    bound_ns = _as_int(bound_ns, "max_uncertainty_ns")
    if bound_ns is None or bound_ns <= 0:
        raise HealthInputError("max_uncertainty_ns must be greater than 0, got %r" % (bound_ns,))
    minimums = dict(minimums or {})
    by_tier = dict((name, []) for name in TIER_NAMES)
    for item in _as_list(hosts, "hosts") or []:
        if not isinstance(item, dict):
            raise HealthInputError("hosts items must be dicts, got %r" % (item,))
        result = evaluate_host(item, bound_ns)
        by_tier[item["tier"]].append(result)
    tiers = {}
    for name in TIER_NAMES:
        minimum = _as_int(minimums.get(name), "minimum of %s" % name)
        host_results = sorted(by_tier[name], key=lambda h: _natural_key(h["name"]))
        tiers[name] = _tier(name, host_results, default_minimum(name) if minimum is None else minimum)

    kafka = _as_dict(kafka, "kafka") or {}
    tier = tiers[KAFKA_TIER]
    kafka_hosts = [h for h in tier["hosts"] if h["state"] != NOT_CHECKED]
    kafka_result = evaluate_kafka(kafka, len(kafka_hosts) + len(tier["left_out"]))
    problems = list(kafka_result["problems"])
    if kafka_result["mode"] == "external":
        # The brokers are not ours: count those the cluster reports, all healthy unless it is unhealthy.
        tier["total"] = kafka_result["broker_count"] or 0
        tier["healthy_hosts"] = 0 if kafka_result["state"] == UNHEALTHY else tier["total"]
        tier["state"] = _worst(kafka_result["state"], tier["state"] if kafka_hosts else HEALTHY)
    else:
        # A host counts when its own checks pass, at most as many as the brokers registered.
        if kafka and not tier["hosts"]:
            problems.insert(0, "no hosts")
        tier["healthy_hosts"] = min(tier["healthy_hosts"], kafka_result["broker_count"] or 0)
        tier["state"] = UNHEALTHY if kafka and not tier["hosts"] else _worst(kafka_result["state"], tier["state"])
    tier["problems"] = problems + ["%s: %s" % (h["name"], p) for h in kafka_hosts for p in h["problems"]]
    tier["healthy"] = tier["state"] in (HEALTHY, NOT_CHECKED)
    return tiers, kafka_result


# --- summary ------------------------------------------------------------------------------------

def problem_count(tiers):
    return sum(len(t["problems"]) for t in tiers.values())


def cluster_state(tiers):
    """HEALTHY, DEGRADED or UNHEALTHY: the worst of the checked tiers."""
    state = _worst(*[t["state"] for t in tiers.values()])
    return HEALTHY if state == NOT_CHECKED else state


def is_healthy(tiers):
    return cluster_state(tiers) == HEALTHY


def left_out(tiers):
    """[(host, reason)] of every host not checked, once each, by name."""
    reasons = {}
    for tier in tiers.values():
        for host in tier["hosts"]:
            if host["state"] == NOT_CHECKED:
                reasons.setdefault(host["name"], host["reason"])
    return sorted(reasons.items(), key=lambda item: _natural_key(item[0]))


def tier_line(name, tier, kafka_result=None):
    if name == KAFKA_TIER and kafka_result is not None and tier["state"] != NOT_CHECKED:
        urp = kafka_result["under_replicated_partitions"]
        head = "under-replicated partitions: %s" % ("unknown" if urp is None else urp)
    elif tier["max_uncertainty_ns"] is None:
        head = "max uncertainty: n/a"
    else:
        head = "max uncertainty: %s ms" % ms(tier["max_uncertainty_ns"])
    details = [head] + tier["problems"][:SUMMARY_PROBLEMS]
    if len(tier["problems"]) > SUMMARY_PROBLEMS:
        details.append(ELLIPSIS)
    if tier["left_out"]:
        details.append("%d left out" % len(tier["left_out"]))
    return u"%-*s%s %s/%s healthy (%s)" % (
        LABEL_WIDTH, tier["label"] + ":", MARKS[tier["state"]],
        tier["healthy_hosts"], tier["total"], "; ".join(details),
    )


def summary_lines(tiers, kafka_result, bound_ns):
    lines = [tier_line(name, tiers[name], kafka_result) for name in TIER_NAMES]
    state = cluster_state(tiers)
    if state == HEALTHY:
        overall = u"%s HEALTHY (bound %s ms)" % (OK_MARK, bound_ms(bound_ns))
    elif state == DEGRADED:
        overall = u"%s DEGRADED (%s, within redundancy; bound %s ms)" % (
            DEGRADED_MARK, plural(problem_count(tiers), "problem"), bound_ms(bound_ns))
    else:
        overall = u"%s UNHEALTHY (%s; bound %s ms)" % (BAD_MARK, plural(problem_count(tiers), "problem"), bound_ms(bound_ns))
    lines.append(u"%-*s%s" % (LABEL_WIDTH, "Overall:", overall))
    skipped = left_out(tiers)
    if skipped:
        by_reason = {}
        for host, reason in skipped:
            by_reason.setdefault(reason or "not checked", []).append(host)
        lines.append(u"%-*s%s" % (LABEL_WIDTH, "Left out:", "; ".join(
            "%s (%s)" % (", ".join(names), reason) for reason, names in by_reason.items())))
    return lines


def summary_text(tiers, kafka_result, bound_ns):
    return "\n".join(summary_lines(tiers, kafka_result, bound_ns))


# --- report -------------------------------------------------------------------------------------

def build_report(hosts, kafka=None, bound_ns=DEFAULT_BOUND_NS, cluster_name="", minimums=None):
    """Evaluate and assemble the JSON report."""
    tiers, kafka_result = evaluate(hosts, kafka, bound_ns, minimums)
    return {
        "generated_at": iso_utc(utc_now()),
        "cluster_name": cluster_name or "",
        "max_uncertainty_ns": int(bound_ns),
        "state": cluster_state(tiers).upper(),
        "healthy": is_healthy(tiers),
        "left_out": [{"name": name, "reason": reason} for name, reason in left_out(tiers)],
        "tiers": tiers,
        "kafka": kafka_result,
        "summary": summary_text(tiers, kafka_result, bound_ns),
    }


def render_json(report):
    return json.dumps(report, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


# --- HTML ---------------------------------------------------------------------------------------

_CSS = """
body { font-family: -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; margin: 2em; color: #222; }
h1 { font-size: 1.5em; margin-bottom: 0.2em; }
h2 { font-size: 1.15em; margin-top: 1.6em; }
.generated { color: #666; margin-top: 0; }
.status { font-size: 1.3em; font-weight: bold; padding: 0.4em 0.8em; display: inline-block; border-radius: 4px; }
.status.ok, tr.ok td.mark { color: #1b5e20; }
.status.bad, tr.bad td.mark { color: #b71c1c; }
.status.warn, tr.warn td.mark { color: #8a5a00; }
.status.skip, tr.skip td.mark { color: #616161; }
.status.ok { background: #e8f5e9; }
.status.warn { background: #fff3e0; }
.status.bad { background: #ffebee; }
.status.skip { background: #eeeeee; }
pre.summary { background: #f5f5f5; padding: 0.8em; border-radius: 4px; }
table { border-collapse: collapse; margin: 0.5em 0 1em 0; }
th, td { border: 1px solid #ccc; padding: 0.3em 0.6em; text-align: left; vertical-align: top; }
th { background: #f0f0f0; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
tr.bad { background: #fff5f5; }
tr.warn { background: #fffaf0; }
tr.skip { color: #757575; }
ul.problems { margin: 0; padding-left: 1.2em; }
svg text { font-size: 12px; fill: #222; }
"""

_CHART_LABEL_W = 220
_CHART_LABEL_CHARS = 30  # longer host names are cut (the bar's tooltip has the whole name)
_CHART_BAR_W = 480
_CHART_VALUE_W = 110
_CHART_ROW_H = 22
_CHART_TOP = 24
_CHART_AXIS_H = 30
_GREEN = "#2e7d32"
_RED = "#c62828"
_GREY = "#9e9e9e"


def _e(value):
    return html.escape(u"%s" % ("" if value is None else value,), quote=True)


def _ms_cell(value_ns):
    return "" if value_ns is None else ms(value_ns)


def _num(value):
    """SVG coordinate: at most 2 decimals, no trailing zeros."""
    text = "%.2f" % value
    return text.rstrip("0").rstrip(".") if "." in text else text


def chart_hosts(report):
    """(tier, host) for the chart: every host once, by tier then name."""
    seen = {}
    order = []
    for name in TIER_NAMES:
        for host in report["tiers"][name]["hosts"]:
            if host["name"] not in seen:
                seen[host["name"]] = host
                order.append(host["name"])
            elif seen[host["name"]]["uncertainty_ns"] is None and host["uncertainty_ns"] is not None:
                seen[host["name"]] = host
    return [seen[n] for n in order]


def render_chart(report):
    """Inline SVG: clock uncertainty per host, a vertical line at the bound."""
    bound = report["max_uncertainty_ns"]
    hosts = chart_hosts(report)
    largest = max([h["uncertainty_ns"] for h in hosts if h["uncertainty_ns"] is not None] or [0])
    scale = max(bound, largest) * 1.1
    rows = max(len(hosts), 1)
    width = _CHART_LABEL_W + _CHART_BAR_W + _CHART_VALUE_W
    bottom = _CHART_TOP + rows * _CHART_ROW_H
    height = bottom + _CHART_AXIS_H

    def x_of(value_ns):
        return _CHART_LABEL_W + _CHART_BAR_W * value_ns / scale

    out = [
        u'<svg class="chart" role="img" width="%d" height="%d" viewBox="0 0 %d %d">' % (width, height, width, height),
        u"<title>Clock uncertainty per host (bound %s ms)</title>" % _e(bound_ms(bound)),
    ]
    if not hosts:
        out.append(u'<text x="%d" y="%d">no hosts</text>' % (_CHART_LABEL_W, _CHART_TOP + 15))
    for index, host in enumerate(hosts):
        y = _CHART_TOP + index * _CHART_ROW_H
        value = host["uncertainty_ns"]
        if value is None:
            colour, bar_w, text = _GREY, 0, "n/a"
        else:
            colour = _RED if value > bound else _GREEN
            bar_w = x_of(value) - _CHART_LABEL_W
            text = "%s ms" % ms(value)
        label = host["name"] if len(host["name"]) <= _CHART_LABEL_CHARS else host["name"][:_CHART_LABEL_CHARS - 1] + ELLIPSIS
        out.append(u'<text x="%d" y="%s" text-anchor="end">%s</text>' % (_CHART_LABEL_W - 8, _num(y + 15), _e(label)))
        out.append(u'<rect class="bar" x="%d" y="%s" width="%s" height="%d" fill="%s"><title>%s: %s</title></rect>' % (
            _CHART_LABEL_W, _num(y + 3), _num(bar_w), _CHART_ROW_H - 6, colour, _e(host["name"]), _e(text)))
        out.append(u'<text x="%s" y="%s">%s</text>' % (_num(_CHART_LABEL_W + bar_w + 6), _num(y + 15), _e(text)))
    # axis with ticks at 0, 25, 50, 75 and 100 % of the scale
    out.append(u'<line class="axis" x1="%d" y1="%d" x2="%d" y2="%d" stroke="#666" stroke-width="1"/>' % (
        _CHART_LABEL_W, bottom, _CHART_LABEL_W + _CHART_BAR_W, bottom))
    for quarter in range(5):
        tick_x = _CHART_LABEL_W + _CHART_BAR_W * quarter / 4
        out.append(u'<line x1="%s" y1="%d" x2="%s" y2="%d" stroke="#666" stroke-width="1"/>' % (
            _num(tick_x), bottom, _num(tick_x), bottom + 4))
        out.append(u'<text x="%s" y="%d" text-anchor="middle">%s</text>' % (
            _num(tick_x), bottom + 17, _e(ms(scale * quarter / 4, 1 if scale >= 10 * _NS_PER_MS else 3))))
    bound_x = x_of(bound)
    out.append(u'<line class="bound" x1="%s" y1="%d" x2="%s" y2="%d" stroke="%s" stroke-width="2" stroke-dasharray="6,3"/>' % (
        _num(bound_x), _CHART_TOP - 6, _num(bound_x), bottom, _RED))
    out.append(u'<text x="%s" y="%d" text-anchor="middle">bound %s ms</text>' % (_num(bound_x), _CHART_TOP - 10, _e(bound_ms(bound))))
    out.append(u'<text x="%d" y="%d" text-anchor="end">ms</text>' % (width - 4, bottom + 17))
    out.append(u"</svg>")
    return "\n".join(out)


_CSS_CLASS = {HEALTHY: "ok", DEGRADED: "warn", NOT_CHECKED: "skip"}  # every other state: "bad"


def _css(state):
    return _CSS_CLASS.get(state, "bad")


def _host_row(host):
    reference = host["reference"]
    if reference is not None and host.get("stratum") is not None:
        reference = "%s (stratum %s)" % (reference, host["stratum"])
    problems = ""
    notes = host["problems"] or ([u"not checked: %s" % host["reason"]] if host["state"] == NOT_CHECKED else [])
    if notes:
        problems = u'<ul class="problems">%s</ul>' % "".join(u"<li>%s</li>" % _e(p) for p in notes)
    mark = MARKS.get(host["state"], BAD_MARK)
    return (
        u'<tr class="%s"><td>%s</td><td class="mark">%s %s</td><td class="num">%s</td><td class="num">%s</td>'
        u"<td>%s</td><td>%s</td><td>%s</td></tr>" % (
            _css(host["state"]), _e(host["name"]), mark, _e(host["state"].replace("_", " ")),
            _e(_ms_cell(host["uncertainty_ns"])), _e(_ms_cell(host["offset_ns"])), _e(reference),
            _e(host["version"]), problems,
        )
    )


def _kafka_section(kafka):
    items = [u"<li>mode: %s</li>" % _e(kafka["mode"])]
    if kafka["bootstrap"]:
        items.append(u"<li>bootstrap: %s</li>" % _e(", ".join(kafka["bootstrap"])))
    if kafka["brokers"] is None:
        items.append(u"<li>brokers: could not be read</li>")
    else:
        brokers = ", ".join("%s (%s:%s)" % (b["id"], b["host"], b["port"]) for b in kafka["brokers"]) or "none"
        items.append(u"<li>brokers: %s</li>" % _e(brokers))
    urp = kafka["under_replicated_partitions"]
    items.append(u"<li>under-replicated partitions: %s</li>" % _e("unknown" if urp is None else urp))
    if kafka["missing_topics"]:
        items.append(u"<li>missing topics: %s</li>" % _e(", ".join(kafka["missing_topics"])))
    if kafka["error"]:
        items.append(u"<li>error: %s</li>" % _e(kafka["error"]))
    return u'<ul class="kafka">%s</ul>' % "".join(items)


def render_html(report):
    """A self-contained HTML page (inline CSS and SVG, no script, no external reference)."""
    name = report.get("cluster_name") or ""
    title = u"ScratchBird cluster health%s \u2014 %s" % (u" \u2014 " + name if name else "", report["generated_at"])
    lines = report["summary"].split("\n")
    overall = [line for line in lines if line.startswith("Overall:")]
    out = [
        u"<!DOCTYPE html>",
        u'<html lang="en">',
        u"<head>",
        u'<meta charset="utf-8">',
        u'<meta name="viewport" content="width=device-width, initial-scale=1">',
        u"<title>%s</title>" % _e(title),
        u"<style>%s</style>" % _CSS,
        u"</head>",
        u"<body>",
        u"<h1>%s</h1>" % _e(u"ScratchBird cluster health" + (u" \u2014 " + name if name else "")),
        u'<p class="generated">Generated %s (UTC); clock uncertainty bound %s ms</p>' % (
            _e(report["generated_at"]), _e(bound_ms(report["max_uncertainty_ns"]))),
        u'<p class="status %s">%s</p>' % (_css(report["state"].lower()), _e(overall[0][LABEL_WIDTH:] if overall else "")),
        u'<pre class="summary">%s</pre>' % _e(report["summary"]),
        u"<h2>Clock uncertainty</h2>",
        render_chart(report),
    ]
    for tier_name in TIER_NAMES:
        tier = report["tiers"][tier_name]
        out.append(u'<h2 id="%s" class="%s">%s %s \u2014 %d/%d healthy%s</h2>' % (
            _e(tier_name), _css(tier["state"]), MARKS[tier["state"]], _e(tier["label"]), tier["healthy_hosts"], tier["total"],
            _e(u", %d left out" % len(tier["left_out"])) if tier["left_out"] else ""))
        if tier_name == KAFKA_TIER:
            out.append(_kafka_section(report["kafka"]))
        if tier["problems"]:
            out.append(u'<ul class="problems">%s</ul>' % "".join(u"<li>%s</li>" % _e(p) for p in tier["problems"]))
        out.append(u'<table class="tier">')
        out.append(u"<thead><tr><th>Host</th><th>Status</th><th>Clock uncertainty (ms)</th><th>Offset (ms)</th>"
                   u"<th>Reference</th><th>Engine version</th><th>Problems</th></tr></thead>")
        out.append(u"<tbody>")
        if tier["hosts"]:
            out.extend(_host_row(h) for h in tier["hosts"])
        else:
            out.append(u'<tr><td colspan="7">no hosts</td></tr>')
        out.append(u"</tbody>")
        out.append(u"</table>")
    out.append(u"</body>")
    out.append(u"</html>")
    return "\n".join(out) + "\n"


# --- files --------------------------------------------------------------------------------------

def write_if_changed(path, text, check_mode=False, mode=0o644):
    """Write text (UTF-8) to path atomically unless it already holds it.

    Returns True when the content differs (in check mode: would be written).  Creates the
    parent directory.  Raises OSError when the file cannot be written.
    """
    data = text.encode("utf-8")
    try:
        with open(path, "rb") as current:
            if current.read() == data:
                return False
    except (IOError, OSError):
        pass
    if check_mode:
        return True
    parent = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(parent):
        os.makedirs(parent, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=parent, prefix="." + os.path.basename(path) + ".", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    return True
