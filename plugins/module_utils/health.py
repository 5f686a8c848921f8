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

# The tiers in the contract's order: inventory group -> label.
TIERS = (
    ("clock_masters", "Clock Masters"),
    ("tx_engines", "TX Engines"),
    ("ingestion_engines", "Ingestion Engines"),
    ("olap_shards", "OLAP Shards"),
    ("kafka_brokers", "Kafka Brokers"),
)
TIER_NAMES = tuple(name for name, label in TIERS)
TIER_LABELS = dict(TIERS)
ENGINE_TIERS = ("tx_engines", "ingestion_engines", "olap_shards")
KAFKA_TIER = "kafka_brokers"
KAFKA_MODES = ("self_hosted", "external")

DEFAULT_BOUND_NS = 50000000
LABEL_WIDTH = 19  # "Ingestion Engines: " - the contract pads every label to 19 columns
OK_MARK = u"\u2713"
BAD_MARK = u"\u2717"
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
    """Problems of one chrony_info result (None: the clock could not be read)."""
    if clock is None:
        return ["clock could not be read"]
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


def evaluate_host(item, bound_ns):
    """One host item -> its per-host result (name, healthy, readings, problems)."""
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
    error = item.get("error")

    if error:
        problems = [one_line(error)]
    else:
        problems = clock_problems(clock, bound_ns)
        if engine:
            problems += health_problems(health)

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
        "healthy": not problems,
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


def evaluate_kafka(kafka, kafka_host_count):
    """The Kafka cluster check -> the evaluated Kafka part (without the hosts' clocks)."""
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

    problems = []
    if not kafka and not kafka_host_count:
        problems.append("no Kafka hosts and no Kafka information")
    elif error:
        problems.append("kafka: %s" % error)
    elif brokers is None:
        problems.append("kafka: brokers could not be read")
    if brokers is not None and not error:
        if urp:
            problems.append("kafka: %s" % plural(urp, "under-replicated partition"))
        if missing:
            problems.append("kafka: missing topics %s" % ", ".join(missing))
        if mode == "self_hosted" and len(brokers) < kafka_host_count:
            problems.append("kafka: %d of %d brokers registered" % (len(brokers), kafka_host_count))
    return {
        "mode": mode,
        "bootstrap": bootstrap,
        "brokers": brokers,
        "broker_count": None if brokers is None or error else len(brokers),
        "under_replicated_partitions": urp,
        "missing_topics": missing,
        "error": error,
        "healthy": not problems,
        "problems": problems,
    }


def _tier(name, host_results):
    readings = [h["uncertainty_ns"] for h in host_results if h["uncertainty_ns"] is not None]
    problems = ["%s: %s" % (h["name"], p) for h in host_results for p in h["problems"]]
    if not host_results:
        problems.append("no hosts")
    healthy_hosts = sum(1 for h in host_results if h["healthy"])
    return {
        "label": TIER_LABELS[name],
        "healthy": not problems,
        "healthy_hosts": healthy_hosts,
        "total": len(host_results),
        "max_uncertainty_ns": max(readings) if readings else None,
        "problems": problems,
        "hosts": host_results,
    }


def evaluate(hosts, kafka=None, bound_ns=DEFAULT_BOUND_NS):
    """Judge every host and the Kafka cluster.

    Returns (tiers, kafka_result): tiers is a dict in the contract's tier order, keyed by
    inventory group.  Raises HealthInputError on malformed input.
    """
    bound_ns = _as_int(bound_ns, "max_uncertainty_ns")
    if bound_ns is None or bound_ns <= 0:
        raise HealthInputError("max_uncertainty_ns must be greater than 0, got %r" % (bound_ns,))
    by_tier = dict((name, []) for name in TIER_NAMES)
    for item in _as_list(hosts, "hosts") or []:
        if not isinstance(item, dict):
            raise HealthInputError("hosts items must be dicts, got %r" % (item,))
        result = evaluate_host(item, bound_ns)
        by_tier[item["tier"]].append(result)
    tiers = {}
    for name in TIER_NAMES:
        host_results = sorted(by_tier[name], key=lambda h: _natural_key(h["name"]))
        tiers[name] = _tier(name, host_results)

    kafka = _as_dict(kafka, "kafka") or {}
    tier = tiers[KAFKA_TIER]
    kafka_hosts = tier["hosts"]
    kafka_result = evaluate_kafka(kafka, len(kafka_hosts))
    problems = list(kafka_result["problems"])
    if kafka_result["mode"] == "external":
        # The brokers are not ours: count those the cluster reports, all healthy when it is.
        tier["total"] = kafka_result["broker_count"] or 0
        tier["healthy_hosts"] = tier["total"] if kafka_result["healthy"] else 0
    else:
        # A host counts when its own checks pass, at most as many as the brokers registered.
        if kafka and not kafka_hosts:
            problems.insert(0, "no hosts")
        clock_ok = sum(1 for h in kafka_hosts if h["healthy"])
        tier["healthy_hosts"] = min(clock_ok, kafka_result["broker_count"] or 0)
    tier["problems"] = problems + ["%s: %s" % (h["name"], p) for h in kafka_hosts for p in h["problems"]]
    tier["healthy"] = not tier["problems"]
    return tiers, kafka_result


# --- summary ------------------------------------------------------------------------------------

def problem_count(tiers):
    return sum(len(t["problems"]) for t in tiers.values())


def is_healthy(tiers):
    return all(t["healthy"] for t in tiers.values())


def tier_line(name, tier, kafka_result=None):
    if name == KAFKA_TIER and kafka_result is not None:
        urp = kafka_result["under_replicated_partitions"]
        head = "under-replicated partitions: %s" % ("unknown" if urp is None else urp)
    elif tier["max_uncertainty_ns"] is None:
        head = "max uncertainty: n/a"
    else:
        head = "max uncertainty: %s ms" % ms(tier["max_uncertainty_ns"])
    details = [head] + tier["problems"][:SUMMARY_PROBLEMS]
    if len(tier["problems"]) > SUMMARY_PROBLEMS:
        details.append(ELLIPSIS)
    return u"%-*s%s %s/%s healthy (%s)" % (
        LABEL_WIDTH, tier["label"] + ":", OK_MARK if tier["healthy"] else BAD_MARK,
        tier["healthy_hosts"], tier["total"], "; ".join(details),
    )


def summary_lines(tiers, kafka_result, bound_ns):
    lines = [tier_line(name, tiers[name], kafka_result) for name in TIER_NAMES]
    if is_healthy(tiers):
        overall = u"%s HEALTHY (bound %s ms)" % (OK_MARK, bound_ms(bound_ns))
    else:
        overall = u"%s UNHEALTHY (%s; bound %s ms)" % (BAD_MARK, plural(problem_count(tiers), "problem"), bound_ms(bound_ns))
    lines.append(u"%-*s%s" % (LABEL_WIDTH, "Overall:", overall))
    return lines


def summary_text(tiers, kafka_result, bound_ns):
    return "\n".join(summary_lines(tiers, kafka_result, bound_ns))


# --- report -------------------------------------------------------------------------------------

def build_report(hosts, kafka=None, bound_ns=DEFAULT_BOUND_NS, cluster_name=""):
    """Evaluate and assemble the JSON report."""
    tiers, kafka_result = evaluate(hosts, kafka, bound_ns)
    return {
        "generated_at": iso_utc(utc_now()),
        "cluster_name": cluster_name or "",
        "max_uncertainty_ns": int(bound_ns),
        "healthy": is_healthy(tiers),
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
.status.ok { background: #e8f5e9; }
.status.bad { background: #ffebee; }
pre.summary { background: #f5f5f5; padding: 0.8em; border-radius: 4px; }
table { border-collapse: collapse; margin: 0.5em 0 1em 0; }
th, td { border: 1px solid #ccc; padding: 0.3em 0.6em; text-align: left; vertical-align: top; }
th { background: #f0f0f0; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
tr.bad { background: #fff5f5; }
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


def _host_row(host):
    reference = host["reference"]
    if reference is not None and host.get("stratum") is not None:
        reference = "%s (stratum %s)" % (reference, host["stratum"])
    problems = ""
    if host["problems"]:
        problems = u'<ul class="problems">%s</ul>' % "".join(u"<li>%s</li>" % _e(p) for p in host["problems"])
    return (
        u'<tr class="%s"><td>%s</td><td class="mark">%s</td><td class="num">%s</td><td class="num">%s</td>'
        u"<td>%s</td><td>%s</td><td>%s</td></tr>" % (
            "ok" if host["healthy"] else "bad", _e(host["name"]), OK_MARK if host["healthy"] else BAD_MARK,
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
    healthy = report["healthy"]
    lines = report["summary"].split("\n")
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
        u'<p class="status %s">%s</p>' % ("ok" if healthy else "bad", _e(lines[-1][LABEL_WIDTH:] if lines else "")),
        u'<pre class="summary">%s</pre>' % _e(report["summary"]),
        u"<h2>Clock uncertainty</h2>",
        render_chart(report),
    ]
    for tier_name in TIER_NAMES:
        tier = report["tiers"][tier_name]
        out.append(u'<h2 id="%s">%s %s \u2014 %d/%d healthy</h2>' % (
            _e(tier_name), OK_MARK if tier["healthy"] else BAD_MARK, _e(tier["label"]), tier["healthy_hosts"], tier["total"]))
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
