# Copyright: scratchbird.cluster contributors
# Apache License 2.0 (see LICENSE)
"""Filters for the kafka role: the KRaft layout of the inventory and server.properties."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import base64
import re
import uuid

from ansible.errors import AnsibleFilterError
from ansible.module_utils.six import string_types

from ansible_collections.scratchbird.cluster.plugins.module_utils.contract import kafka_replication

PROTOCOLS = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")
LISTENER_NAME = re.compile(r"^[A-Z][A-Z0-9_]*$")
ROLES = ("broker", "controller")


def kafka_cluster_id(value):
    """A UUID (string) in the form Kafka uses for cluster ids: 22 characters of base64url."""
    try:
        raw = uuid.UUID(str(value)).bytes
    except ValueError:
        raise AnsibleFilterError("kafka_cluster_id expects a UUID, got %r" % (value,))
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


def _roles(value, host):
    if isinstance(value, string_types):
        value = [part.strip() for part in value.split(",")]
    roles = [r for r in ROLES if r in (value or [])]
    unknown = [r for r in value or [] if r not in ROLES]
    if unknown or not roles:
        raise AnsibleFilterError(
            "kafka_process_roles of %s must be broker, controller or both, got %r" % (host, value))
    return roles


def kafka_layout(brokers, hostvars, controllers=None):
    """The KRaft nodes: [{host, address, node_id, roles}], in inventory order.

    Roles come from the host's kafka_process_roles when set; otherwise dedicated controllers
    are the hosts of `controllers` (a host in both lists is combined), and without any
    controller host every broker is combined (broker,controller). Node ids come from the
    host's kafka_node_id, otherwise 1.. in order (controllers first)."""
    controllers = list(controllers or [])
    hosts = controllers + [h for h in brokers or [] if h not in controllers]
    nodes, used = [], set()
    for host in hosts:
        hv = hostvars[host] if host in hostvars else {}
        if hv.get("kafka_process_roles"):
            roles = _roles(hv["kafka_process_roles"], host)
        elif controllers:
            roles = [r for r, member in (("broker", host in (brokers or [])), ("controller", host in controllers))
                     if member]
        else:
            roles = list(ROLES)
        node = {"host": host, "address": str(hv.get("ansible_host", host)), "roles": roles,
                "node_id": hv.get("kafka_node_id")}
        nodes.append(node)
        if node["node_id"] is not None:
            used.add(int(node["node_id"]))
    next_id = 1
    for node in nodes:
        if node["node_id"] is None:
            while next_id in used:
                next_id += 1
            node["node_id"] = next_id
            used.add(next_id)
        node["node_id"] = int(node["node_id"])
    ids = [n["node_id"] for n in nodes]
    if len(set(ids)) != len(ids):
        raise AnsibleFilterError("kafka_node_id must be unique, got %s" % ids)
    return nodes


def kafka_layout_errors(nodes, listeners=None, controller_listener=None):
    """[errors, warnings] of a layout and, when given, its listeners (the even-controller
    quorum is a warning)."""
    controllers = [n for n in nodes if "controller" in n["roles"]]
    brokers = [n for n in nodes if "broker" in n["roles"]]
    errors, warnings = [], []
    if not controllers:
        errors.append("the KRaft quorum has no controller: put hosts in kafka_controllers, or leave that group "
                      "empty for combined broker+controller nodes, or fix kafka_process_roles")
    if not brokers:
        errors.append("no host has the broker role (kafka_brokers, kafka_process_roles)")
    if controller_listener is not None:
        errors.extend(_listener_errors(listeners, controller_listener))
    if controllers and len(controllers) % 2 == 0:
        warnings.append("the KRaft quorum has %d controllers: an even number tolerates no more failures than %d; "
                        "use an odd number" % (len(controllers), len(controllers) - 1))
    return [errors, warnings]


def _listener_errors(listeners, controller_listener):
    errors = []
    names = []
    for index, listener in enumerate(list(listeners or []) + [controller_listener]):
        label = "kafka_controller_listener" if index == len(listeners or []) else "kafka_listeners[%d]" % index
        if not isinstance(listener, dict):
            errors.append("%s must be a dict {name, port, protocol}, got %r" % (label, listener))
            continue
        name, port, proto = listener.get("name"), listener.get("port"), listener.get("protocol", "PLAINTEXT")
        if not isinstance(name, string_types) or not LISTENER_NAME.match(name):
            errors.append("%s.name must be upper case letters, digits and _ (e.g. CLIENT, INTERNAL), got %r"
                          % (label, name))
        if proto not in PROTOCOLS:
            errors.append("%s.protocol must be one of %s, got %r" % (label, ", ".join(PROTOCOLS), proto))
        if isinstance(port, bool) or not isinstance(port, int) or not 0 < port < 65536:
            errors.append("%s.port must be a port (1-65535), got %r" % (label, port))
        names.append(name)
    if not listeners:
        errors.append("kafka_listeners must list at least one client listener")
    dupes = sorted(set(n for n in names if names.count(n) > 1 and n))
    if dupes:
        errors.append("listener names must be unique, %s appears more than once" % ", ".join(dupes))
    ports = [item.get("port") for item in list(listeners or []) + [controller_listener] if isinstance(item, dict)]
    if len(set(ports)) != len(ports):
        errors.append("two listeners on one port: %s" % ports)
    return errors


def kafka_server_properties(nodes, host, listeners, controller_listener, log_dirs, overrides=None):
    """server.properties of one host (a dict) for a KRaft layout; overrides win (None removes a key)."""
    me = next((n for n in nodes if n["host"] == host), None)
    if me is None:
        raise AnsibleFilterError("%s is not a Kafka node of this layout" % host)
    errors = _listener_errors(listeners, controller_listener)
    if errors:
        raise AnsibleFilterError("; ".join(errors))
    controllers = [n for n in nodes if "controller" in n["roles"]]
    brokers = [n for n in nodes if "broker" in n["roles"]]
    cname, cport = controller_listener["name"], controller_listener["port"]
    replication, min_insync = kafka_replication(len(brokers))
    bound, advertised = [], []
    if "broker" in me["roles"]:
        for listener in listeners:
            bound.append("%s://:%d" % (listener["name"], listener["port"]))
            address = "[%s]" % me["address"] if ":" in me["address"] else me["address"]
            advertised.append("%s://%s:%d" % (listener["name"], address, listener["port"]))
    if "controller" in me["roles"]:
        bound.append("%s://:%d" % (cname, cport))
    protocol_map = ["%s:%s" % (item["name"], item.get("protocol", "PLAINTEXT")) for item in listeners]
    protocol_map.append("%s:%s" % (cname, controller_listener.get("protocol", "PLAINTEXT")))
    props = {
        "process.roles": ",".join(me["roles"]),
        "node.id": me["node_id"],
        "controller.quorum.voters": ",".join(
            "%d@%s:%d" % (n["node_id"], "[%s]" % n["address"] if ":" in n["address"] else n["address"], cport)
            for n in controllers),
        "controller.listener.names": cname,
        "listeners": ",".join(bound),
        "listener.security.protocol.map": ",".join(protocol_map),
        "log.dirs": ",".join(log_dirs),
        "num.partitions": 1,
        "default.replication.factor": replication,
        "min.insync.replicas": min_insync,
        "offsets.topic.replication.factor": replication,
        "transaction.state.log.replication.factor": replication,
        "transaction.state.log.min.isr": min_insync,
        "auto.create.topics.enable": False,
        "group.initial.rebalance.delay.ms": 3000,
    }
    if "broker" in me["roles"]:
        props["advertised.listeners"] = ",".join(advertised)
        props["inter.broker.listener.name"] = listeners[0]["name"]
    for key, value in (overrides or {}).items():
        if value is None:
            props.pop(key, None)
        else:
            props[key] = value
    return props


def _escape(text, key=False):
    """Properties.load() reads ISO-8859-1: escape the backslash, line breaks and non-ASCII;
    in keys also the separators and comment marks, in values a leading space."""
    out = []
    for index, char in enumerate(text):
        if char == "\\" or (key and char in "#!=: ") or (not key and index == 0 and char == " "):
            out.append("\\" + char)
        elif char == "\n":
            out.append("\\n")
        elif ord(char) > 126 or ord(char) < 32:
            out.append("\\u%04x" % ord(char))
        else:
            out.append(char)
    return "".join(out)


def java_properties(props):
    """A dict as the lines of a Java .properties file, sorted by key (booleans as true/false)."""
    lines = []
    for key in sorted(props):
        value = props[key]
        if isinstance(value, bool):
            value = "true" if value else "false"
        lines.append("%s=%s" % (_escape(str(key), key=True), _escape(str(value))))
    return "\n".join(lines) + "\n"


def kafka_replication_factor(brokers):
    return kafka_replication(int(brokers))[0]


class FilterModule(object):
    def filters(self):
        return {
            "kafka_cluster_id": kafka_cluster_id,
            "kafka_layout": kafka_layout,
            "kafka_layout_errors": kafka_layout_errors,
            "kafka_replication_factor": kafka_replication_factor,
            "kafka_server_properties": kafka_server_properties,
            "java_properties": java_properties,
        }
