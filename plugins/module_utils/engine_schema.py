# Copyright: scratchbird.cluster contributors
# Apache License 2.0 (see LICENSE)
"""The engine configuration contract: /etc/db/cluster.yaml and the tier files.

This is the single schema of the collection: the filter
``scratchbird.cluster.engine_config_errors`` imports it as
``ansible_collections.scratchbird.cluster.plugins.module_utils.engine_schema``
and the stand-in engine (lab/engine) bundles this very file.  Standard library
only, Python 3.8+; it parses nothing, it checks documents already loaded
(dicts, lists, strings, integers, booleans, None).

    errors(doc, kind, label=None, metrics_port=None, metrics_port_from=None)

returns one ``"<path>: <problem>"`` string per problem, for example
``tx_engine.listeners[1].port: port 70000 out of range 1..65535``.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import difflib


def _plain(value):
    """Scalars as their plain built-in type (Ansible hands over str/int subclasses)."""
    if isinstance(value, bool):
        return bool(value)
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value)
    if isinstance(value, str):
        return str(value)
    return value


def _describe(value):
    """'string 'x'', 'integer 5', 'boolean True', 'null', 'list', 'mapping'."""
    if value is None:
        return "null"
    if isinstance(value, dict):
        return "mapping"
    if isinstance(value, list):
        return "list"
    for kind, name in ((bool, "boolean"), (int, "integer"), (float, "number"), (str, "string")):
        if isinstance(value, kind):
            return "%s %r" % (name, _plain(value))
    return type(value).__name__


def _is_int(value):
    return isinstance(value, int) and not isinstance(value, bool)


def _key_path(path, key):
    return "%s.%s" % (path, key) if path else str(key)


def _unknown_key(key, allowed):
    message = "unknown key (allowed: %s)" % ", ".join(sorted(allowed))
    close = difflib.get_close_matches(str(key), list(allowed), n=1)
    if close:
        message += "; did you mean %r?" % close[0]
    return message


class Spec:
    """A schema node.  check() appends (path, problem) pairs to errs."""

    def check(self, value, path, errs):
        raise NotImplementedError


class Str(Spec):
    def check(self, value, path, errs):
        if not isinstance(value, str) or not value:
            errs.append((path, "expected a non-empty string, got %s" % _describe(value)))


class Int(Spec):
    def __init__(self, minimum=None, maximum=None):
        self.minimum, self.maximum = minimum, maximum

    def check(self, value, path, errs):
        if not _is_int(value):
            errs.append((path, "expected an integer, got %s" % _describe(value)))
        elif self.minimum is not None and value < self.minimum:
            errs.append((path, "must be >= %d, got %d" % (self.minimum, value)))
        elif self.maximum is not None and value > self.maximum:
            errs.append((path, "must be <= %d, got %d" % (self.maximum, value)))


def _valid_port(value):
    return _is_int(value) and 1 <= value <= 65535


class Port(Spec):
    def check(self, value, path, errs):
        if not _is_int(value):
            errs.append((path, "expected a port number (integer 1..65535), got %s" % _describe(value)))
        elif not _valid_port(value):
            errs.append((path, "port %d out of range 1..65535" % value))


class Bool(Spec):
    def check(self, value, path, errs):
        if not isinstance(value, bool):
            errs.append((path, "expected true or false, got %s" % _describe(value)))


class Enum(Spec):
    def __init__(self, *values):
        self.values = values

    def check(self, value, path, errs):
        if not isinstance(value, str) or value not in self.values:
            shown = repr(_plain(value)) if isinstance(value, str) else _describe(value)
            errs.append((path, "invalid value %s (allowed: %s)" % (shown, ", ".join(self.values))))


class HostPort(Spec):
    """A "host:port" string ("[v6]:port" allowed)."""

    def check(self, value, path, errs):
        if not isinstance(value, str) or ":" not in value:
            errs.append((path, 'expected "host:port", got %s' % _describe(value)))
            return
        value = _plain(value)
        host, port = value.rsplit(":", 1)
        if not host or host == "[]":
            errs.append((path, "missing host in %r" % value))
        if not port or any(c not in "0123456789" for c in port) or not 1 <= int(port) <= 65535:
            errs.append((path, "port %r out of range 1..65535 in %r" % (port, value)))


class ServerId(Spec):
    def check(self, value, path, errs):
        if value == "auto":
            return
        if not _is_int(value) or value < 0:
            errs.append((path, 'expected "auto" or a non-negative integer, got %s' % _describe(value)))


class Free(Spec):
    """Free-form section: any mapping or list."""

    def check(self, value, path, errs):
        if not isinstance(value, (dict, list)):
            errs.append((path, "expected a mapping or a list, got %s" % _describe(value)))


class ListOf(Spec):
    def __init__(self, item, min_items=0):
        self.item, self.min_items = item, min_items

    def check(self, value, path, errs):
        if not isinstance(value, list):
            errs.append((path, "expected a list, got %s" % _describe(value)))
            return
        if len(value) < self.min_items:
            errs.append((path, "needs at least %d item(s)" % self.min_items))
        for index, item in enumerate(value):
            self.item.check(item, "%s[%d]" % (path, index), errs)


class DictOf(Spec):
    """Free keys (strings), every value checked against one spec."""

    def __init__(self, value):
        self.value = value

    def check(self, value, path, errs):
        if not isinstance(value, dict):
            errs.append((path, "expected a mapping, got %s" % _describe(value)))
            return
        for key, item in value.items():
            if not isinstance(key, str):
                errs.append((path, "key %r must be a string" % (_plain(key),)))
                continue
            self.value.check(item, _key_path(path, key), errs)


def _check_fields(value, path, fields, required, errs):
    """Unknown keys first, then every known key in schema order; a null value counts as absent."""
    for key in value:
        if key not in fields:
            errs.append((_key_path(path, key), _unknown_key(key, fields)))
    for key, spec in fields.items():
        sub = _key_path(path, key)
        if value.get(key) is None:
            if key in required:
                errs.append((sub, "required key missing" if key not in value else "required key has no value"))
            continue
        spec.check(value[key], sub, errs)


class Map(Spec):
    """Known keys only; ``required`` names the keys that must be present (and not null)."""

    def __init__(self, fields, required=()):
        self.fields = fields
        self.required = frozenset(required)

    def check(self, value, path, errs):
        if not isinstance(value, dict):
            errs.append((path, "expected a mapping, got %s" % _describe(value)))
            return
        _check_fields(value, path, self.fields, self.required, errs)


CONSISTENCY_MODES = Enum("eventual", "bounded_staleness", "monotonic_reads", "strict_serializable")
COMPRESSION = Enum("zstd", "lz4", "snappy", "gzip", "none")
BROKER_TYPE = Enum("kafka", "pubsub")
FREE = Free()

# What goes under the top key of each file.
# fmt: off
CLUSTER_SCHEMA = Map({
    "name": Str(),
    "environment": Str(),
    "region": Str(),
    "clock": Map({
        "mode": Enum("software", "hardware"),
        "master_host": Str(),
        "backup_host": Str(),
        "heartbeat_port": Port(),
        "heartbeat_interval_ms": Int(1),
        "max_acceptable_uncertainty_ns": Int(1),
        "heartbeat_multicast_group": Str(),  # spec 02 alternative to unicast heartbeats
        "heartbeat_multicast_port": Port(),
    }),
    "replication": Map({
        "broker": BROKER_TYPE,
        "brokers": ListOf(HostPort()),
        "topic_prefix": Str(),
        "compression": COMPRESSION,
    }),
    "security": Map({
        "enable_tls": Bool(),
        "tls_cert_path": Str(),
        "tls_key_path": Str(),
        "tls_ca_path": Str(),
        "auth_method": Enum("kerberos", "ldap", "jwt"),
        "kerberos_realm": Str(),
        "kerberos_keytab": Str(),
    }),
    "monitoring": Map({
        "enable": Bool(),
        "prometheus_port": Port(),
        "log_level": Enum("debug", "info", "warning", "error"),
        "log_output": Str(),
    }),
}, required=["name"])

TX_ENGINE_SCHEMA = Map({
    "server_id": ServerId(),
    "listeners": ListOf(Map({
        "protocol": Enum("postgresql", "mysql"),
        "port": Port(),
        "max_connections": Int(1),
    }, required=["protocol", "port"]), min_items=1),
    "storage": Map({
        "data_dir": Str(),
        "retention_hours": Int(1),
        "wal_dir": Str(),
        "checkpoint_interval_seconds": Int(1),
    }),
    "cache": Map({
        "query_result_cache_mb": Int(0),
        "hot_row_cache_mb": Int(0),
        "prepared_statement_cache_size": Int(0),
    }),
    "consistency": Map({
        "default_mode": CONSISTENCY_MODES,
        "table_overrides": DictOf(CONSISTENCY_MODES),
    }),
    "replication": Map({
        "enable": Bool(),
        "buffer_size_mb": Int(1),
        "flush_interval_ms": Int(1),
        "compression": COMPRESSION,
    }),
    "resources": Map({"worker_threads": Int(1), "io_threads": Int(1)}),
}, required=["listeners"])

INGESTION_SCHEMA = Map({
    "broker": Map({
        "type": BROKER_TYPE,
        "brokers": ListOf(HostPort(), min_items=1),
        "topic_prefix": Str(),
        "consumer_group": Str(),
    }, required=["brokers"]),
    "processing": Map({
        "batch_size": Int(1),
        "batch_timeout_ms": Int(1),
        "worker_threads": Int(1),
        "merge_queue_size": Int(1),
    }),
    "conflicts": Map({"default_strategy": Str(), "table_strategies": DictOf(Str())}),
    "storage": Map({
        "data_dir": Str(),
        "retention_days": Int(1),
        "gc_interval_seconds": Int(1),
        "versions_per_gc_cycle": Int(1),
    }),
    "olap_push": Map({
        "strategy": Str(),
        "targets": ListOf(HostPort()),
        "max_batch_size": Int(1),
        "max_batch_age_seconds": Int(1),
        "compression": COMPRESSION,
        "parallelism": Int(1),
    }),
}, required=["broker"])

OLAP_SCHEMA = Map({
    "storage": Map({
        "data_dir": Str(),
        "format": Enum("parquet"),
        "compression": COMPRESSION,
        "compression_level": Int(0, 22),
        "block_size_mb": Int(1),
    }),
    "partitioning": Map({"strategy": Str(), "retention_days": Int(1)}),
    "sharding": Map({"strategy": Str(), "num_shards": Int(1), "shard_id": Int(0)}),
    "indexes": FREE,
    "query": FREE,
    "compaction": FREE,
    "tiering": FREE,
    "materialized_views": FREE,
})
# fmt: on


def _listener_ports(section, name, errs, metrics_port, metrics_port_from):
    """tx_engine: no two listeners on one port, none on the metrics port."""
    listeners = section.get("listeners")
    if not isinstance(listeners, list):
        return
    seen = {}
    for index, listener in enumerate(listeners):
        port = listener.get("port") if isinstance(listener, dict) else None
        if not _valid_port(port):
            continue  # the schema reports it
        port = int(port)
        path = "%s.listeners[%d].port" % (name, index)
        if port in seen:
            errs.append((path, "duplicate listener port %d (also %s)" % (port, seen[port])))
        elif port == metrics_port:
            where = " (%s)" % metrics_port_from if metrics_port_from else ""
            errs.append((path, "port %d collides with the metrics port%s" % (port, where)))
        seen.setdefault(port, path)


class Document:
    """One file: a mapping with exactly one top key, whose value follows ``spec``."""

    def __init__(self, kind, top_key, spec, cross_checks=()):
        self.kind = kind
        self.top_key = top_key
        self.spec = spec
        self.cross_checks = cross_checks

    def check(self, doc, name, errs, metrics_port=None, metrics_port_from=None):
        if not isinstance(doc, dict):
            errs.append(("", "expected a mapping, got %s" % _describe(doc)))
            return
        for key in doc:
            if key != self.top_key:
                errs.append((str(key), _unknown_key(key, [self.top_key])))
        section = doc.get(self.top_key)
        if section is None:
            errs.append((name, "required key missing" if self.top_key not in doc else "required key has no value"))
            return
        self.spec.check(section, name, errs)
        if isinstance(section, dict):
            for check in self.cross_checks:
                check(section, name, errs, metrics_port, metrics_port_from)


# kind -> Document.  The tiers are named like their units and programs.
SCHEMAS = {
    d.kind: d
    for d in (
        Document("cluster", "cluster", CLUSTER_SCHEMA),
        Document("tx-engine", "tx_engine", TX_ENGINE_SCHEMA, cross_checks=(_listener_ports,)),
        Document("ingestion-engine", "ingestion", INGESTION_SCHEMA),
        Document("olap-shard", "olap", OLAP_SCHEMA),
    )
}
KINDS = tuple(SCHEMAS)
TIER_KINDS = tuple(k for k in KINDS if k != "cluster")


def _problems(doc, kind, label=None, metrics_port=None, metrics_port_from=None):
    """errors() as (path, problem) pairs; the path is "" for the document itself."""
    if not isinstance(kind, str) or kind not in SCHEMAS:
        raise ValueError("kind must be one of %s, got %s" % (", ".join(KINDS), _describe(kind)))
    if label is not None and (not isinstance(label, str) or not label):
        raise ValueError("label must be a non-empty string, got %s" % _describe(label))
    if metrics_port is not None:
        if isinstance(metrics_port, str) and metrics_port and all(c in "0123456789" for c in metrics_port):
            metrics_port = int(metrics_port)  # an inventory variable given as text
        if not _valid_port(metrics_port):
            raise ValueError("metrics_port must be a port number 1..65535, got %s" % _describe(metrics_port))
    document = SCHEMAS[kind]
    errs = []
    document.check(doc, str(label or document.top_key), errs, metrics_port, metrics_port_from)
    return errs


def errors(doc, kind, label=None, metrics_port=None, metrics_port_from=None):
    """Every problem of a loaded config document, as "<path>: <problem>" strings.

    ``kind``: "cluster" (``doc`` is the whole ``{cluster: {...}}`` document) or a
    tier, "tx-engine", "ingestion-engine" or "olap-shard" (``doc`` is the whole
    ``{tx_engine: ...}``, ``{ingestion: ...}`` or ``{olap: ...}`` document).
    Paths are dotted, with list indices: ``tx_engine.listeners[1].port``.
    ``label`` replaces the top key in the paths (a variable's name, say).
    ``metrics_port``: a tx-engine listener on this port is a problem too;
    ``metrics_port_from`` says where that port comes from, for the message.
    A problem with the document itself (not a mapping) is reported without a path.
    Raises ValueError for an unknown kind or a bad label or metrics_port.
    """
    found = _problems(doc, kind, label, metrics_port, metrics_port_from)
    return ["%s: %s" % (path, problem) if path else problem for path, problem in found]
