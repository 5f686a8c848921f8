# Copyright: scratchbird.cluster contributors
# Apache License 2.0 (see LICENSE)
"""The cluster contract in one place: the tiers (group, role, unit, files, ports, sizes),
the cluster-wide defaults, and the parsing of durations given with units."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import re

# Per inventory group, in the contract's bootstrap order. size: the contract's [min, max]
# number of hosts; unit: the systemd unit (and /opt/db/<unit>); config_file under /etc/db;
# data_dir under /var/lib/db; metrics_port: the default /health and /metrics port.
TIERS = {
    "clock_masters": {"role": "clock_master", "label": "Clock Masters", "unit": "clock-master",
                      "config_file": "", "data_dir": "clock-master", "metrics_port": 9093, "size": [2, 2]},
    "kafka_brokers": {"role": "kafka", "label": "Kafka Brokers", "unit": "kafka",
                      "config_file": "", "data_dir": "", "metrics_port": None, "size": [3, 5]},
    "ingestion_engines": {"role": "ingestion", "label": "Ingestion Engines", "unit": "ingestion-engine",
                          "config_file": "ingestion.yaml", "data_dir": "ingestion", "metrics_port": 9091,
                          "size": [2, 4]},
    "olap_shards": {"role": "olap_shard", "label": "OLAP Shards", "unit": "olap-shard",
                    "config_file": "olap.yaml", "data_dir": "olap", "metrics_port": 9092, "size": [4, 12]},
    "tx_engines": {"role": "tx_engine", "label": "TX Engines", "unit": "tx-engine",
                   "config_file": "tx-engine.yaml", "data_dir": "tx-engine", "metrics_port": 9090, "size": [4, 20]},
}
ENGINE_GROUPS = ("ingestion_engines", "olap_shards", "tx_engines")
GROUPS = tuple(TIERS)

# Cluster-wide variables and their defaults (docs/cluster-variables.md).
DEFAULTS = {
    "cluster_name": "scratchbird",
    "cluster_environment": "production",
    "cluster_max_acceptable_uncertainty_ns": 50000000,
    "cluster_heartbeat_port": 8888,
    "cluster_heartbeat_interval_ms": 100,
    "cluster_kafka_port": 9092,
    "cluster_topic_prefix": "db-changes-",
    "cluster_clock_sync_timeout": 120,
    "cluster_preflight_max_clock_skew": 60,
    "cluster_preflight_endpoint_timeout": 5,
}


def kafka_replication(brokers):
    """The collection's Kafka defaults for a cluster of this many brokers: (replication factor,
    min.insync.replicas), min(3, brokers) and one less, each at least 1."""
    replication = min(3, brokers) or 1
    return replication, max(1, replication - 1)


_UNITS_NS = {"ns": 1, "us": 1000, "µs": 1000, "ms": 1000000, "s": 1000000000, "m": 60000000000,
             "h": 3600000000000}
_DURATION = re.compile(r"^\s*([0-9]+(?:\.[0-9]+)?)\s*(ns|us|µs|ms|s|m|h)?\s*$")


def duration_ns(value, default_unit="ns"):
    """A duration as whole nanoseconds: a number (in default_unit) or a string with a unit
    (50ms, 1.5s, 500us). Raises ValueError for anything else, and for 0 or less."""
    if isinstance(value, bool):
        raise ValueError("not a duration")
    if isinstance(value, (int, float)):
        number, unit = float(value), default_unit
    else:
        match = _DURATION.match(str(value))
        if not match:
            raise ValueError("not a duration")
        number, unit = float(match.group(1)), match.group(2) or default_unit
    result = int(round(number * _UNITS_NS[unit]))
    if result <= 0:
        raise ValueError("not above zero")
    return result


def clock_bound_ns(value=None):
    """cluster_max_acceptable_uncertainty_ns as whole nanoseconds (the contract's 50 ms when
    unset); a ValueError names the variable, the value and what is allowed."""
    if value is None or value == "":
        return DEFAULTS["cluster_max_acceptable_uncertainty_ns"]
    try:
        return duration_ns(value)
    except ValueError:
        raise ValueError(
            "cluster_max_acceptable_uncertainty_ns must be a duration above zero: nanoseconds (50000000) "
            "or a number with a unit ns, us, ms, s (50ms), got %r" % (value,))


def whole_seconds(value):
    """A whole number of seconds > 0 (an int or digits), else ValueError."""
    if isinstance(value, bool) or not re.match(r"^\s*[0-9]+\s*$", str(value)) or int(str(value)) <= 0:
        raise ValueError("not a whole number of seconds")
    return int(str(value))
