# Copyright: scratchbird.cluster contributors
# Apache License 2.0 (see LICENSE)
"""The cluster plan: every host's tiers, address, listening ports, firewall rules and the
endpoints it uses, every tier's size against the contract, the TX server ids, and every
check that can fail later in a run, made once on the controller before any host changes.

Each role states its part of a host's plan (roles/<role>/tasks/plan.yml):
  {role, group, listens: [{proto, port, name, var}],
   rules: [{name, proto, ports, sources, var, admit: [group, ...]}],
   endpoints: [{name, var, url | address}], server_id, settings: [{var, value, kind}]}
`admit` names the inventory groups whose hosts must be inside the rule's sources."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import ipaddress
import re

from ansible_collections.scratchbird.cluster.plugins.module_utils.contract import (
    GROUPS, TIERS, clock_bound_ns, duration_ns, whole_seconds)

try:
    from urllib.parse import urlsplit
except ImportError:  # pragma: no cover - Python 2
    from urlparse import urlsplit

_DEFAULT_PORTS = {"http": 80, "https": 443, "ftp": 21}


def _network(value):
    try:
        return ipaddress.ip_network(u"%s" % value, strict=False)
    except ValueError:
        return None


def _ip(value):
    try:
        return ipaddress.ip_address(u"%s" % value)
    except ValueError:
        return None


def _is_port(value):
    value = str(value)
    return value.isdigit() and 0 < int(value) < 65536


def _join(items):
    items = [str(i) for i in items]
    return ", ".join(items) if items else "(none)"


def endpoint_target(endpoint):
    """(host, port) of an endpoint: {url} or {address: host:port}; None when not a network endpoint."""
    if endpoint.get("url"):
        parts = urlsplit(str(endpoint["url"]))
        if parts.scheme not in _DEFAULT_PORTS or not parts.hostname:
            return None
        return parts.hostname, parts.port or _DEFAULT_PORTS[parts.scheme]
    match = re.match(r"^\[?([^\]]+?)\]?:([0-9]+)$", str(endpoint.get("address", "")).strip())
    return (match.group(1), int(match.group(2))) if match else None


def _check_settings(settings, errors):
    """Cluster-wide durations and numbers: each named, with its value and what is allowed."""
    try:
        settings["cluster_max_acceptable_uncertainty_ns"] = clock_bound_ns(
            settings.get("cluster_max_acceptable_uncertainty_ns"))
    except ValueError as exc:
        errors.append(str(exc))
    for var in ("cluster_clock_sync_timeout", "cluster_preflight_max_clock_skew",
                "cluster_preflight_endpoint_timeout"):
        try:
            settings[var] = whole_seconds(settings[var])
        except ValueError:
            errors.append("%s must be a whole number of seconds above zero (e.g. 120), got %r" % (var, settings[var]))
    for var in ("cluster_heartbeat_port", "cluster_kafka_port"):
        if not _is_port(settings[var]):
            errors.append("%s must be a port number 1-65535, got %r" % (var, settings[var]))
    try:
        duration_ns(settings["cluster_heartbeat_interval_ms"], "ms")
    except ValueError:
        errors.append("cluster_heartbeat_interval_ms must be a number of milliseconds above zero (e.g. 100), got %r"
                      % (settings["cluster_heartbeat_interval_ms"],))
    if settings.get("kafka_mode") not in ("self_hosted", "external"):
        errors.append("kafka_mode must be self_hosted (Kafka on the kafka_brokers hosts) or external "
                      "(cluster_kafka_bootstrap), got %r" % (settings.get("kafka_mode"),))
    cidr = settings.get("cluster_cidr")
    if cidr is not None and (isinstance(cidr, (list, dict)) or _network(cidr) is None):
        errors.append("cluster_cidr must be one network in CIDR notation (10.0.0.0/16 or fd00::/64), got %r" % (cidr,))


def _check_part_settings(host, part, errors):
    for item in part.get("settings", []):
        var, value, kind = item["var"], item["value"], item["kind"]
        try:
            if kind == "seconds":
                whole_seconds(value)
            elif kind == "port" and not _is_port(value):
                raise ValueError(kind)
        except ValueError:
            allowed = "a whole number of seconds above zero (e.g. 60)" if kind == "seconds" else "a port number 1-65535"
            errors.append("%s: %s must be %s, got %r" % (host, var, allowed, value))


def build(hosts, settings, tier_size_policy="fail", limited=False):
    """The plan of `hosts` ({name: {address, address_var, groups, parts: [part, ...] | None}})
    with the cluster-wide `settings`; parts None = not planned (outside --limit)."""
    errors, warnings = [], []
    settings = dict(settings)
    _check_settings(settings, errors)

    members = dict((g, [h for h in hosts if g in hosts[h]["groups"]]) for g in GROUPS)
    plan_hosts = {}
    for name in sorted(hosts):
        info = hosts[name]
        address = str(info["address"])
        entry = {"address": address, "groups": [g for g in GROUPS if g in info["groups"]],
                 "planned": info["parts"] is not None, "listens": [], "rules": [], "endpoints": []}
        plan_hosts[name] = entry
        if _ip(address) is None:
            errors.append(
                "%s: its address %r (%s) is a DNS name, but the firewall rules and chrony's allow lists admit "
                "networks, so the plan cannot check that the cluster admits it: set ansible_host to %s's IP address"
                % (name, address, info.get("address_var", "ansible_host"), name))
        for part in info["parts"] or []:
            entry["listens"].extend(part.get("listens", []))
            entry["rules"].extend(part.get("rules", []))
            entry["endpoints"].extend(part.get("endpoints", []))
            if part.get("server_id") is not None:
                entry["server_id"] = part["server_id"]
            _check_part_settings(name, part, errors)

    for name, entry in sorted(plan_hosts.items()):
        _check_ports(name, entry, errors)
        _check_rules(name, entry, plan_hosts, members, errors, warnings)
        for endpoint in entry["endpoints"]:
            if endpoint.get("url"):
                endpoint["url"] = re.sub(r"^([a-z]+://)[^/@]*@", r"\1", str(endpoint["url"]))  # no credentials
            target = endpoint_target(endpoint)
            if target is None and not str(endpoint.get("url", "")).startswith("file://"):
                errors.append("%s: %s %r is not host:port or an http(s)/ftp URL" % (
                    name, endpoint["var"], endpoint.get("url") or endpoint.get("address")))
            if target is not None:
                endpoint.update(host=target[0], port=target[1], target="%s:%s" % target)

    tiers = _check_tiers(members, settings, tier_size_policy, errors, warnings)
    server_ids = _check_server_ids(plan_hosts, errors)
    return {"cluster": settings.get("cluster_name"), "environment": settings.get("cluster_environment"),
            "settings": settings, "limited": limited, "hosts": plan_hosts, "tiers": tiers,
            "server_ids": server_ids, "errors": errors, "warnings": warnings}


def _check_ports(name, entry, errors):
    owners = {}
    for listen in entry["listens"]:
        if not _is_port(listen["port"]):
            errors.append("%s: %s must be a port number 1-65535, got %r" % (name, listen["var"], listen["port"]))
            continue
        owners.setdefault((int(str(listen["port"])), listen["proto"]), []).append(listen)
    for (port, proto), listens in sorted(owners.items()):
        if len(listens) > 1:
            errors.append("%s: port %s/%s is wanted by %s; give all but one of them another port" % (
                name, port, proto, " and ".join(sorted("%s (%s)" % (l["var"], l["name"]) for l in listens))))


def _check_rules(name, entry, plan_hosts, members, errors, warnings):
    for rule in entry["rules"]:
        sources = rule.get("sources")
        if isinstance(sources, (str, bytes)) or not isinstance(sources, (list, tuple)):
            errors.append("%s: %s must be a list of CIDRs, got %r" % (name, rule["var"], sources))
            continue
        networks = [_network(s) for s in sources]
        bad = [s for s, n in zip(sources, networks) if n is None]
        if bad:
            errors.append("%s: %s must list networks in CIDR notation; not valid: %s" % (name, rule["var"], _join(bad)))
            continue
        admit = [h for g in rule.get("admit", []) for h in members.get(g, []) if h != name]
        missing = []
        for other in sorted(set(admit)):
            ip = _ip(plan_hosts[other]["address"])
            if ip is not None and not any(ip.version == n.version and ip in n for n in networks):
                missing.append("%s (%s)" % (other, ip))
        if missing:
            errors.append(
                "%s: %s is %s, which does not admit %s to %s (%s %s); every host of %s must be inside it: "
                "add their network to %s (or to cluster_cidr)" % (
                    name, rule["var"], _join(sources), _join(missing), rule["name"],
                    ",".join(str(p) for p in rule["ports"]), rule["proto"], _join(rule["admit"]), rule["var"]))
        if not sources:
            warnings.append("%s: %s is empty, so nothing may reach %s (%s %s)" % (
                name, rule["var"], rule["name"], ",".join(str(p) for p in rule["ports"]), rule["proto"]))


def _check_tiers(members, settings, policy, errors, warnings):
    tiers = {}
    external_kafka = settings.get("kafka_mode", "self_hosted") == "external"
    for group in GROUPS:
        low, high = TIERS[group]["size"]
        size = len(members[group])
        status = "ok" if low <= size <= high else "outside the contract"
        if group == "kafka_brokers" and external_kafka:
            status = "external"
        tiers[group] = {"size": size, "contract": [low, high], "status": status}
        if size == 0 and status != "external":
            errors.append("Inventory group '%s' is empty: the cluster needs hosts in each of clock_masters, tx_engines, "
                          "ingestion_engines and olap_shards, and Kafka: hosts in kafka_brokers, or kafka_mode "
                          "external with cluster_kafka_bootstrap" % group)
            continue
        if status != "outside the contract":
            continue
        message = "%s has %d host(s); the contract asks for %s (cluster_tier_size_policy: %s%s)" % (
            group, size, "%d" % low if low == high else "%d-%d" % (low, high), policy,
            "; set it to warn to run a smaller or larger cluster" if policy == "fail" else "")
        (errors if policy == "fail" else warnings).append(message)
    return tiers


def _check_server_ids(plan_hosts, errors):
    ids = {}
    for name, entry in sorted(plan_hosts.items()):
        if "server_id" not in entry:
            continue
        value = entry["server_id"]
        if not str(value).isdigit() or not 0 < int(str(value)) <= 999999:
            errors.append("%s: tx_engine_server_id must be a whole number 1-999999, got %r" % (name, value))
            continue
        ids.setdefault(int(str(value)), []).append(name)
    for value, names in sorted(ids.items()):
        if len(names) > 1:
            errors.append("TX engines %s share server_id %d (so one Kafka topic): give each its own "
                          "tx_engine_server_id" % (" and ".join(names), value))
    return dict((str(k), v[0]) for k, v in sorted(ids.items()) if len(v) == 1)


def table(plan):
    """The plan as text: a table per host, then the tiers and the problems."""
    lines = ["Cluster plan: %s (%s)%s" % (plan["cluster"], plan["environment"],
                                          ", limited with --limit" if plan["limited"] else "")]
    for name, entry in sorted(plan["hosts"].items()):
        lines.append("")
        lines.append("%s  %s  %s%s" % (name, entry["address"], ", ".join(entry["groups"]),
                                       "" if entry["planned"] else "  (not planned: outside --limit)"))
        for listen in sorted(entry["listens"], key=lambda l: (str(l["proto"]), str(l["port"]))):
            lines.append("  listens  %-10s %s (%s)" % ("%s/%s" % (listen["port"], listen["proto"]), listen["name"],
                                                       listen["var"]))
        for rule in entry["rules"]:
            lines.append("  admits   %-10s from %s: %s (%s)" % (
                "%s/%s" % (",".join(str(p) for p in rule["ports"]), rule["proto"]), _join(rule["sources"]),
                rule["name"], rule["var"]))
        for endpoint in entry["endpoints"]:
            lines.append("  uses     %s: %s (%s)" % (endpoint["name"], endpoint.get("target") or endpoint.get("url"),
                                                     endpoint["var"]))
        if "server_id" in entry:
            lines.append("  server_id %s" % entry["server_id"])
    lines.append("")
    for group, tier in plan["tiers"].items():
        low, high = tier["contract"]
        lines.append("%-18s %d host(s), contract %s: %s" % (
            group, tier["size"], low if low == high else "%d-%d" % (low, high), tier["status"]))
    for message in plan["warnings"]:
        lines.append("WARNING: " + message)
    for message in plan["errors"]:
        lines.append("ERROR: " + message)
    return "\n".join(lines)
