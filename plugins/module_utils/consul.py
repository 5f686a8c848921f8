# Copyright: scratchbird.cluster contributors
# Apache License 2.0 (see LICENSE)
"""The pure logic of the consul_service module: checking its options, the wanted service
definition, the definition the agent has, and what differs between them.

Consul 1.8 does not report a check's definition on any agent endpoint: ``/v1/agent/checks``
and ``/v1/health/checks/<service>`` return ``"Definition": {}`` for checks registered through
the agent, ``/v1/agent/health/service/id/<id>`` returns zeros (``"HTTP": ""``, ``"Interval":
"0s"``). Only ``CheckID``, ``Name``, ``Type``, ``Notes``, ``Status`` and ``Output`` come back.
So each check is registered with its definition written into its ``Notes`` (a fixed prefix
and canonical JSON), and compared through them; where an agent does report a ``Definition``
(with an ``HTTP`` or ``TCP`` target), that is compared instead, durations by their value.

Nothing here talks to Consul or imports py-consul; the unit tests call it directly.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import re

# The keys of one item of the checks option.
CHECK_KEYS = ("name", "http", "tcp", "interval", "timeout", "tls_skip_verify", "deregister_critical_service_after")
CHECK_DURATIONS = ("interval", "timeout", "deregister_critical_service_after")

# Written before the canonical JSON of a check's definition in the check's Notes.
NOTES_PREFIX = "scratchbird.cluster.consul_service definition: "

# The check Consul adds while a service is in maintenance mode (agent.service.maintenance).
MAINTENANCE_PREFIX = "_service_maintenance:"

_DURATION_UNITS = {"ns": 1e-9, "us": 1e-6, "\u00b5s": 1e-6, "\u03bcs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
_DURATION_RE = re.compile(r"^(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:ns|us|\u00b5s|\u03bcs|ms|s|m|h)$")
_DURATION_PART_RE = re.compile(r"([0-9]*\.?[0-9]*)(ns|us|\u00b5s|\u03bcs|ms|s|m|h)")


def parse_duration(value):
    """Seconds of a Go duration (``10s``, ``1m30s``, ``500ms``, ``0``), or None when it is not one."""
    if value is None:
        return None
    text = str(value).strip()
    if text in ("0", "+0", "-0"):
        return 0.0
    sign = -1.0 if text.startswith("-") else 1.0
    if text[:1] in ("+", "-"):
        text = text[1:]
    parts = _DURATION_PART_RE.findall(text)
    if not parts or "".join(n + u for n, u in parts) != text:
        return None
    total = 0.0
    for number, unit in parts:
        if not _DURATION_RE.match(number + unit):
            return None
        total += float(number) * _DURATION_UNITS[unit]
    return sign * total


def check_id(service_id, check_name):
    """The stable, explicit CheckID of a check of the service."""
    return "service:%s:%s" % (service_id, check_name)


def split_host_port(target):
    """(host, port) of ``host:port`` or ``[v6]:port``; None when it is not that."""
    match = re.match(r"^(\[[0-9A-Fa-f:.]+\]|[^:\[\]\s]+):([0-9]{1,5})$", target or "")
    if not match or not 0 < int(match.group(2)) < 65536:
        return None
    return match.group(1), int(match.group(2))


def check_params(params):
    """Errors in the module's options, found before any call to Consul (a list of messages)."""
    errors = []
    allowed = ", ".join(CHECK_KEYS)
    service_id = params.get("id") or params.get("name")
    if not params.get("name"):
        errors.append("name must not be empty")
    if service_id and "/" in service_id:
        errors.append("id %r must not contain '/' (it is part of the agent API's paths)" % service_id)
    port = params.get("port")
    if port is not None and not 0 <= port <= 65535:
        errors.append("port must be between 0 and 65535, got %d" % port)
    if params.get("wait_timeout") is not None and params["wait_timeout"] < 1:
        errors.append("wait_timeout must be at least 1 (seconds), got %d" % params["wait_timeout"])
    names = {}
    for index, check in enumerate(params.get("checks") or []):
        where = "checks[%d]" % index
        if not isinstance(check, dict):
            errors.append("%s is not a dict: a check's keys are %s" % (where, allowed))
            continue
        unknown = sorted(k for k in check if k not in CHECK_KEYS)
        if unknown:
            errors.append("%s has unknown key(s) %s: a check's keys are %s" % (where, ", ".join(unknown), allowed))
        http, tcp = check.get("http"), check.get("tcp")
        if http and tcp:
            errors.append("%s has both http and tcp: give exactly one of http (a URL) or tcp (host:port); "
                          "a check's keys are %s" % (where, allowed))
        elif not http and not tcp:
            errors.append("%s has neither http nor tcp: give exactly one of http (a URL) or tcp (host:port); "
                          "a check's keys are %s" % (where, allowed))
        elif http and not re.match(r"^https?://[^/\s]+", http):
            errors.append("%s.http %r is not an http:// or https:// URL" % (where, http))
        elif tcp and split_host_port(tcp) is None:
            errors.append("%s.tcp %r is not host:port (a port from 1 to 65535; [address]:port for IPv6)" % (where, tcp))
        name = check.get("name")
        if not name:
            errors.append("%s has no name: every check needs a name (its CheckID is service:<id>:<name>); "
                          "a check's keys are %s" % (where, allowed))
        elif "/" in name:
            errors.append("%s.name %r must not contain '/'" % (where, name))
        elif name in names:
            errors.append("%s.name %r is the name of checks[%d] too: check names must be unique" % (where, name, names[name]))
        else:
            names[name] = index
        for key in CHECK_DURATIONS:
            value = check.get(key)
            if value is not None and parse_duration(value) is None:
                errors.append("%s.%s %r is not a duration such as 10s, 1m30s or 500ms" % (where, key, value))
    return errors


def meta_value(value):
    """A meta value as Consul stores it (a string); booleans as true/false."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return "%s" % (value,)


def wanted_check(service_id, check):
    """The canonical definition of one item of the checks option (defaults applied)."""
    result = {"id": check_id(service_id, check["name"]), "name": check["name"]}
    if check.get("http"):
        result["http"] = check["http"]
    else:
        result["tcp"] = check["tcp"]
    result["interval"] = check.get("interval") or "10s"
    result["timeout"] = check.get("timeout") or "5s"
    result["tls_skip_verify"] = bool(check.get("tls_skip_verify"))
    result["deregister_critical_service_after"] = check.get("deregister_critical_service_after") or None
    return result


def wanted_service(params):
    """The service definition the module's options ask for."""
    service_id = params.get("id") or params["name"]
    return {
        "id": service_id,
        "name": params["name"],
        "address": params.get("address") or None,
        "port": params.get("port") or None,
        "tags": [str(t) for t in params.get("tags") or []],
        "meta": dict((str(k), meta_value(v)) for k, v in (params.get("meta") or {}).items()),
        "checks": [wanted_check(service_id, c) for c in params.get("checks") or []],
    }


def check_notes(check):
    """The Notes a check is registered with: its definition, to compare it on the next run."""
    definition = dict((k, v) for k, v in check.items() if k not in ("id", "name"))
    return NOTES_PREFIX + json.dumps(definition, sort_keys=True, separators=(",", ":"))


def _from_notes(notes):
    if not notes or not notes.startswith(NOTES_PREFIX):
        return None
    try:
        definition = json.loads(notes[len(NOTES_PREFIX):])
    except ValueError:
        return None
    if not isinstance(definition, dict) or not (definition.get("http") or definition.get("tcp")):
        return None
    return definition


def _from_agent_definition(definition):
    """The check definition an agent reports (Consul versions that fill Definition in), or None."""
    if not isinstance(definition, dict) or not (definition.get("HTTP") or definition.get("TCP")):
        return None
    result = {"http": definition["HTTP"]} if definition.get("HTTP") else {"tcp": definition["TCP"]}
    deregister = definition.get("DeregisterCriticalServiceAfter")
    result.update(interval=definition.get("Interval"), timeout=definition.get("Timeout"),
                  tls_skip_verify=bool(definition.get("TLSSkipVerify")),
                  deregister_critical_service_after=deregister if parse_duration(deregister) else None)
    return result


def agent_check(entry):
    """The canonical definition of a check as the agent reports it (one value of /v1/agent/checks).

    ``definition`` says where it came from: ``agent`` (the agent reported it), ``notes`` (what
    this module wrote into the check's Notes), or ``unknown`` (neither: only id, name and type).
    """
    result = {"id": entry.get("CheckID"), "name": entry.get("Name")}
    definition = _from_agent_definition(entry.get("Definition"))
    source = "agent"
    if definition is None:
        definition, source = _from_notes(entry.get("Notes")), "notes"
    kind = (entry.get("Type") or "").lower()
    if definition is not None and kind and kind != ("http" if definition.get("http") else "tcp"):
        definition = None  # the Notes say one kind of check, the agent another
    if definition is None:
        result.update(type=kind or None, definition="unknown")
    else:
        result.update(definition)
        result["definition"] = source
    return result


def service_checks(service_id, agent_checks):
    """The checks of a service among the agent's checks ({CheckID: check}), maintenance aside.

    Returns (checks sorted by id, the maintenance check or None).
    """
    checks, maintenance = [], None
    for entry in (agent_checks or {}).values():
        if entry.get("ServiceID") != service_id:
            continue
        if (entry.get("CheckID") or "").startswith(MAINTENANCE_PREFIX) or entry.get("Type") == "maintenance":
            maintenance = entry
            continue
        checks.append(entry)
    return sorted(checks, key=lambda c: c.get("CheckID") or ""), maintenance


def current_service(service, checks):
    """The canonical definition of a service the agent has (GET /v1/agent/service/<id>), None when absent."""
    if not service:
        return None
    return {
        "id": service.get("ID"),
        "name": service.get("Service"),
        "address": service.get("Address") or None,
        "port": service.get("Port") or None,
        "tags": list(service.get("Tags") or []),
        "meta": dict(service.get("Meta") or {}),
        "checks": [agent_check(c) for c in checks],
    }


def _check_key(check):
    """What is compared of a check: its name and definition, durations by value."""
    if check.get("definition") == "unknown":
        return ("unknown", check.get("name"), check.get("type"))
    target = ("http", check.get("http")) if check.get("http") else ("tcp", check.get("tcp"))
    return (check.get("name"),) + target + (
        parse_duration(check.get("interval")), parse_duration(check.get("timeout")),
        bool(check.get("tls_skip_verify")) if target[0] == "http" else None,
        parse_duration(check.get("deregister_critical_service_after")) or None)


def differences(current, wanted):
    """The fields of the service definition that differ (name, address, port, tags, meta, checks)."""
    if current is None:
        return ["service"]
    changed = []
    for field in ("name", "address", "port"):
        if current.get(field) != wanted.get(field):
            changed.append(field)
    if sorted(current.get("tags") or []) != sorted(wanted.get("tags") or []):
        changed.append("tags")
    if (current.get("meta") or {}) != (wanted.get("meta") or {}):
        changed.append("meta")
    have = dict((c["id"], _check_key(c)) for c in current.get("checks") or [])
    want = dict((c["id"], _check_key(c)) for c in wanted.get("checks") or [])
    if have != want:
        changed.append("checks")
    return changed


def diff_view(definition):
    """The definition as shown in a diff: tags sorted (their order is not compared), without
    the internal ``definition`` source of the agent's checks; {'state': 'absent'} for None."""
    if definition is None:
        return {"state": "absent"}
    view = dict(definition, state="present", tags=sorted(definition.get("tags") or []))
    view["checks"] = [dict((k, v) for k, v in c.items() if k != "definition") for c in definition.get("checks") or []]
    return view


def not_passing(service_id, agent_checks):
    """The checks of the service that do not pass: [(CheckID, Name, Status, Output)], maintenance included."""
    checks, maintenance = service_checks(service_id, agent_checks)
    if maintenance is not None:
        checks = checks + [maintenance]
    return [(c.get("CheckID"), c.get("Name"), c.get("Status"), (c.get("Output") or c.get("Notes") or "").strip())
            for c in checks if c.get("Status") != "passing"]


def check_statuses(service_id, agent_checks):
    """{CheckID: status} of the service's checks (maintenance included)."""
    checks, maintenance = service_checks(service_id, agent_checks)
    if maintenance is not None:
        checks = checks + [maintenance]
    return dict((c.get("CheckID"), c.get("Status")) for c in checks)


def describe_not_passing(failing):
    """One line per check that does not pass: ``id (name) status: output``."""
    return "; ".join("%s (%s) %s: %s" % (cid, name, status, output or "no output yet") for cid, name, status, output in failing)


def connection_reason(exc):
    """The innermost OS-level reason of a connection error (``[Errno 111] Connection refused``)
    rather than the whole chain requests and urllib3 wrap it in."""
    seen = set()
    stack = [exc]
    best = None
    while stack:
        current = stack.pop()
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, OSError) and getattr(current, "strerror", None):
            best = current
        stack.extend([getattr(current, "reason", None), current.__cause__, current.__context__])
        stack.extend(a for a in getattr(current, "args", ()) if isinstance(a, BaseException))
    if best is not None:
        if best.errno is not None:
            return "[Errno %s] %s" % (best.errno, best.strerror)
        return "%s" % best.strerror
    text = "%s" % (exc,)
    text = re.sub(r"<[^<>]+ object at 0x[0-9a-f]+>: ", "", text)
    return text or type(exc).__name__
