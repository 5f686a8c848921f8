# Copyright: scratchbird.cluster contributors
# Apache License 2.0 (see LICENSE)
"""plugins/module_utils/engine_schema.py: the contract of /etc/db/cluster.yaml and the tier files."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import ast
import copy
import pathlib

import pytest

from ansible_collections.scratchbird.cluster.plugins.module_utils import engine_schema
from ansible_collections.scratchbird.cluster.plugins.module_utils.engine_schema import errors

_PATH = pathlib.Path(engine_schema.__file__)

MODES = "(allowed: eventual, bounded_staleness, monotonic_reads, strict_serializable)"
PORT_TYPE = "expected a port number (integer 1..65535), got "

# The examples of the cluster contract (docs: cluster-contract.md), filled in where it names a key only.
CLUSTER = {
    "cluster": {
        "name": "prod-cluster",
        "environment": "production",
        "region": "us-east-1",
        "clock": {
            "mode": "software",
            "master_host": "clock-master-1.internal",
            "backup_host": "clock-master-2.internal",
            "heartbeat_port": 8888,
            "heartbeat_interval_ms": 100,
            "max_acceptable_uncertainty_ns": 50000000,
        },
        "replication": {
            "broker": "kafka",
            "brokers": ["kafka-1.internal:9092", "kafka-2.internal:9092", "[fd00::3]:9092"],
            "topic_prefix": "db-changes-",
            "compression": "zstd",
        },
        "security": {
            "enable_tls": True,
            "tls_cert_path": "/etc/db/security/server.crt",
            "tls_key_path": "/etc/db/security/server.key",
            "tls_ca_path": "/etc/db/security/ca.crt",
            "auth_method": "kerberos",
            "kerberos_realm": "EXAMPLE.COM",
            "kerberos_keytab": "/etc/db/security/db.keytab",
        },
        "monitoring": {
            "enable": True,
            "prometheus_port": 9090,
            "log_level": "info",
            "log_output": "/var/log/db/cluster.log",
        },
    }
}
TX = {
    "tx_engine": {
        "server_id": "auto",
        "listeners": [
            {"protocol": "postgresql", "port": 5432, "max_connections": 1000},
            {"protocol": "mysql", "port": 3306, "max_connections": 1000},
        ],
        "storage": {"data_dir": "/var/lib/db/tx-engine", "retention_hours": 24, "checkpoint_interval_seconds": 300},
        "cache": {"query_result_cache_mb": 4096, "hot_row_cache_mb": 8192, "prepared_statement_cache_size": 10000},
        "consistency": {
            "default_mode": "bounded_staleness",
            "table_overrides": {"financial_transactions": "strict_serializable", "sessions": "eventual"},
        },
        "replication": {"enable": True, "buffer_size_mb": 512, "flush_interval_ms": 100, "compression": "zstd"},
        "resources": {"worker_threads": 16, "io_threads": 4},
    }
}
INGESTION = {
    "ingestion": {
        "broker": {
            "type": "kafka",
            "brokers": ["kafka-1.internal:9092", "kafka-2.internal:9092"],
            "topic_prefix": "db-changes-",
            "consumer_group": "ingestion-group-1",
        },
        "processing": {"batch_size": 1000, "batch_timeout_ms": 100, "worker_threads": 16, "merge_queue_size": 100000},
        "conflicts": {"default_strategy": "last_write_wins", "table_strategies": {"inventory": "max_value"}},
        "storage": {"retention_days": 7, "gc_interval_seconds": 3600, "versions_per_gc_cycle": 10000},
        "olap_push": {
            "strategy": "batched",
            "targets": ["olap-1.internal:9440"],
            "max_batch_size": 100000,
            "max_batch_age_seconds": 300,
            "compression": "zstd",
            "parallelism": 4,
        },
    }
}
OLAP = {
    "olap": {
        "storage": {"format": "parquet", "compression": "zstd", "compression_level": 3, "block_size_mb": 128},
        "partitioning": {"strategy": "by_day", "retention_days": 365},
        "sharding": {"strategy": "by_time", "num_shards": 12, "shard_id": 0},
        "indexes": {"bloom_filters": ["user_id"], "zone_maps": True},
        "query": {"max_concurrent": 32},
        "compaction": {"interval_minutes": 60},
        "tiering": [{"tier": "hot", "days": 30}, {"tier": "warm", "days": 90}, {"tier": "cold", "days": 365}],
        "materialized_views": [{"name": "daily_revenue", "refresh": "hourly"}],
    }
}
EXAMPLES = {"cluster": CLUSTER, "tx-engine": TX, "ingestion-engine": INGESTION, "olap-shard": OLAP}


def edited(doc, dotted, value, delete=False):
    """Deep copy of doc with the dotted path ("a.b.0.c") set to value (or deleted)."""
    doc = copy.deepcopy(doc)
    parents, last = dotted.split(".")[:-1], dotted.split(".")[-1]
    node = doc
    for key in parents:
        node = node[int(key)] if isinstance(node, list) else node[key]
    key = int(last) if isinstance(node, list) else last
    if delete:
        del node[key]
    else:
        node[key] = value
    return doc


# --- valid documents ---


@pytest.mark.parametrize("kind", sorted(EXAMPLES))
def test_contract_examples_are_valid(kind):
    assert errors(EXAMPLES[kind], kind) == []
    assert errors(EXAMPLES[kind], kind, label="x", metrics_port=9090) == []


@pytest.mark.parametrize("kind, doc", [
    ("cluster", {"cluster": {"name": "c"}}),
    ("tx-engine", {"tx_engine": {"listeners": [{"protocol": "mysql", "port": 3306}]}}),
    ("tx-engine", {"tx_engine": {"server_id": 0, "listeners": [{"protocol": "postgresql", "port": 1}]}}),
    ("ingestion-engine", {"ingestion": {"broker": {"brokers": ["k:9092"]}}}),
    ("olap-shard", {"olap": {}}),
    ("olap-shard", {"olap": {"storage": {"compression_level": 0}, "sharding": {"shard_id": 0}}}),
    ("olap-shard", {"olap": {"storage": {"compression_level": 22}, "tiering": []}}),
])
def test_minimal_documents_are_valid(kind, doc):
    assert errors(doc, kind) == []


def test_null_optional_keys_count_as_absent():
    # what an empty template value (`backup_host:`) gives
    assert errors(edited(CLUSTER, "cluster.clock.backup_host", None), "cluster") == []
    assert errors(edited(TX, "tx_engine.cache", None), "tx-engine") == []
    assert errors(edited(TX, "tx_engine.listeners.0.max_connections", None), "tx-engine") == []


def test_schemas_are_keyed_by_tier_with_their_top_key():
    tops = {kind: engine_schema.SCHEMAS[kind].top_key for kind in engine_schema.KINDS}
    assert tops == {"cluster": "cluster", "tx-engine": "tx_engine", "ingestion-engine": "ingestion",
                    "olap-shard": "olap"}
    assert engine_schema.TIER_KINDS == ("tx-engine", "ingestion-engine", "olap-shard")


# --- one problem each, with its path ---

# (kind, dotted path to edit, value (None with delete: remove the key), expected messages)
BAD = [
    # consistency modes
    ("tx-engine", "tx_engine.consistency.default_mode", "fast",
     ["tx_engine.consistency.default_mode: invalid value 'fast' " + MODES]),
    ("tx-engine", "tx_engine.consistency.default_mode", "Strict_Serializable",
     ["tx_engine.consistency.default_mode: invalid value 'Strict_Serializable' " + MODES]),
    ("tx-engine", "tx_engine.consistency.default_mode", 3,
     ["tx_engine.consistency.default_mode: invalid value integer 3 " + MODES]),
    ("tx-engine", "tx_engine.consistency.table_overrides.sessions", "weak",
     ["tx_engine.consistency.table_overrides.sessions: invalid value 'weak' " + MODES]),
    ("tx-engine", "tx_engine.consistency.table_overrides", ["sessions"],
     ["tx_engine.consistency.table_overrides: expected a mapping, got list"]),
    # ports: range and type
    ("tx-engine", "tx_engine.listeners.0.port", 0, ["tx_engine.listeners[0].port: port 0 out of range 1..65535"]),
    ("tx-engine", "tx_engine.listeners.0.port", 70000,
     ["tx_engine.listeners[0].port: port 70000 out of range 1..65535"]),
    ("tx-engine", "tx_engine.listeners.1.port", -1, ["tx_engine.listeners[1].port: port -1 out of range 1..65535"]),
    ("tx-engine", "tx_engine.listeners.0.port", "5432", ["tx_engine.listeners[0].port: " + PORT_TYPE + "string '5432'"]),
    ("tx-engine", "tx_engine.listeners.0.port", True, ["tx_engine.listeners[0].port: " + PORT_TYPE + "boolean True"]),
    ("tx-engine", "tx_engine.listeners.0.port", 5432.0, ["tx_engine.listeners[0].port: " + PORT_TYPE + "number 5432.0"]),
    ("cluster", "cluster.clock.heartbeat_port", 0, ["cluster.clock.heartbeat_port: port 0 out of range 1..65535"]),
    ("cluster", "cluster.monitoring.prometheus_port", 65536,
     ["cluster.monitoring.prometheus_port: port 65536 out of range 1..65535"]),
    ("cluster", "cluster.clock.heartbeat_multicast_port", "5555",
     ["cluster.clock.heartbeat_multicast_port: " + PORT_TYPE + "string '5555'"]),
    # counts: integers >= 1, booleans and strings are not integers
    ("tx-engine", "tx_engine.listeners.0.max_connections", 0,
     ["tx_engine.listeners[0].max_connections: must be >= 1, got 0"]),
    ("tx-engine", "tx_engine.listeners.1.max_connections", -1,
     ["tx_engine.listeners[1].max_connections: must be >= 1, got -1"]),
    ("tx-engine", "tx_engine.listeners.0.max_connections", True,
     ["tx_engine.listeners[0].max_connections: expected an integer, got boolean True"]),
    ("tx-engine", "tx_engine.listeners.0.max_connections", "1000",
     ["tx_engine.listeners[0].max_connections: expected an integer, got string '1000'"]),
    ("tx-engine", "tx_engine.cache.hot_row_cache_mb", -1, ["tx_engine.cache.hot_row_cache_mb: must be >= 0, got -1"]),
    ("olap-shard", "olap.storage.compression_level", 23, ["olap.storage.compression_level: must be <= 22, got 23"]),
    # listeners
    ("tx-engine", "tx_engine.listeners.1.protocol", "oracle",
     ["tx_engine.listeners[1].protocol: invalid value 'oracle' (allowed: postgresql, mysql)"]),
    ("tx-engine", "tx_engine.listeners.1.protocol", None, ["tx_engine.listeners[1].protocol: required key missing"]),
    ("tx-engine", "tx_engine.listeners", None, ["tx_engine.listeners: required key missing"]),
    ("tx-engine", "tx_engine.listeners", [], ["tx_engine.listeners: needs at least 1 item(s)"]),
    ("tx-engine", "tx_engine.listeners", {"protocol": "mysql", "port": 3306},
     ["tx_engine.listeners: expected a list, got mapping"]),
    ("tx-engine", "tx_engine.listeners.0", "postgresql:5432",
     ["tx_engine.listeners[0]: expected a mapping, got string 'postgresql:5432'"]),
    # other types
    ("tx-engine", "tx_engine.server_id", "first",
     ["tx_engine.server_id: expected \"auto\" or a non-negative integer, got string 'first'"]),
    ("tx-engine", "tx_engine.server_id", -1,
     ["tx_engine.server_id: expected \"auto\" or a non-negative integer, got integer -1"]),
    ("tx-engine", "tx_engine.replication.enable", "yes",
     ["tx_engine.replication.enable: expected true or false, got string 'yes'"]),
    ("tx-engine", "tx_engine.storage.data_dir", "",
     ["tx_engine.storage.data_dir: expected a non-empty string, got string ''"]),
    ("tx-engine", "tx_engine.replication.compression", "brotli",
     ["tx_engine.replication.compression: invalid value 'brotli' (allowed: zstd, lz4, snappy, gzip, none)"]),
    ("ingestion-engine", "ingestion.broker.brokers", None, ["ingestion.broker.brokers: required key missing"]),
    ("ingestion-engine", "ingestion.broker.brokers", [], ["ingestion.broker.brokers: needs at least 1 item(s)"]),
    ("ingestion-engine", "ingestion.olap_push.targets.0", "olap-1:0",
     ["ingestion.olap_push.targets[0]: port '0' out of range 1..65535 in 'olap-1:0'"]),
    ("ingestion-engine", "ingestion.conflicts.table_strategies.inventory", 5,
     ["ingestion.conflicts.table_strategies.inventory: expected a non-empty string, got integer 5"]),
    ("olap-shard", "olap.storage.format", "csv", ["olap.storage.format: invalid value 'csv' (allowed: parquet)"]),
    ("olap-shard", "olap.tiering", 30, ["olap.tiering: expected a mapping or a list, got integer 30"]),
]


@pytest.mark.parametrize("kind, path, value, expected", BAD, ids=["%s=%r" % (c[1], c[2]) for c in BAD])
def test_bad_value_names_its_path(kind, path, value, expected):
    doc = edited(EXAMPLES[kind], path, value, delete=value is None)
    assert errors(doc, kind) == expected


# --- unknown keys, at every depth ---


@pytest.mark.parametrize("kind, path, expected", [
    ("tx-engine", "tx_engine.cache.hot_row_cache_mbb",
     "tx_engine.cache.hot_row_cache_mbb: unknown key "
     "(allowed: hot_row_cache_mb, prepared_statement_cache_size, query_result_cache_mb); "
     "did you mean 'hot_row_cache_mb'?"),
    ("tx-engine", "tx_engine.listener",
     "tx_engine.listener: unknown key (allowed: cache, consistency, listeners, replication, resources, server_id, "
     "storage); did you mean 'listeners'?"),
    ("tx-engine", "tx_engine.listeners.0.tls",
     "tx_engine.listeners[0].tls: unknown key (allowed: max_connections, port, protocol)"),
    ("cluster", "cluster.clock.heartbeat_intervall_ms",
     "cluster.clock.heartbeat_intervall_ms: unknown key (allowed: backup_host, heartbeat_interval_ms, "
     "heartbeat_multicast_group, heartbeat_multicast_port, heartbeat_port, master_host, "
     "max_acceptable_uncertainty_ns, mode); did you mean 'heartbeat_interval_ms'?"),
    ("cluster", "cluster.nodes", "cluster.nodes: unknown key (allowed: clock, environment, monitoring, name, region, "
     "replication, security)"),
    ("ingestion-engine", "ingestion.processing.batchsize",
     "ingestion.processing.batchsize: unknown key (allowed: batch_size, batch_timeout_ms, merge_queue_size, "
     "worker_threads); did you mean 'batch_size'?"),
    ("olap-shard", "olap.shards", "olap.shards: unknown key (allowed: compaction, indexes, materialized_views, "
     "partitioning, query, sharding, storage, tiering); did you mean 'sharding'?"),
])
def test_unknown_key(kind, path, expected):
    assert errors(edited(EXAMPLES[kind], path, 1), kind) == [expected]


def test_free_form_sections_take_any_keys():
    doc = edited(OLAP, "olap.query.anything_at_all", {"deeper": [1, 2]})
    assert errors(doc, "olap-shard") == []


def test_unknown_top_key_and_missing_section():
    doc = {"tx-engine": TX["tx_engine"]}
    assert errors(doc, "tx-engine") == [
        "tx-engine: unknown key (allowed: tx_engine); did you mean 'tx_engine'?",
        "tx_engine: required key missing",
    ]
    assert errors({"tx_engine": None}, "tx-engine") == ["tx_engine: required key has no value"]
    assert errors(dict(TX, olap={}), "tx-engine") == ["olap: unknown key (allowed: tx_engine)"]
    assert errors(TX, "olap-shard") == [
        "tx_engine: unknown key (allowed: olap)",
        "olap: required key missing",
    ]


def test_problems_with_the_document_itself_have_no_path():
    assert errors(["tx_engine"], "tx-engine") == ["expected a mapping, got list"]
    assert errors(None, "cluster") == ["expected a mapping, got null"]
    assert errors({"tx_engine": ["listeners"]}, "tx-engine") == ["tx_engine: expected a mapping, got list"]


def test_every_problem_is_reported_in_document_order():
    doc = edited(TX, "tx_engine.cache.hot_rows_mb", 1)
    doc = edited(doc, "tx_engine.listeners.0.port", "5432")
    doc = edited(doc, "tx_engine.resources.io_threads", 0)
    assert errors(doc, "tx-engine") == [
        "tx_engine.listeners[0].port: " + PORT_TYPE + "string '5432'",
        "tx_engine.cache.hot_rows_mb: unknown key (allowed: hot_row_cache_mb, prepared_statement_cache_size, "
        "query_result_cache_mb); did you mean 'hot_row_cache_mb'?",
        "tx_engine.resources.io_threads: must be >= 1, got 0",
    ]


# --- cross-field checks: listener ports ---


def test_two_listeners_on_one_port():
    doc = edited(TX, "tx_engine.listeners.1.port", 5432)
    assert errors(doc, "tx-engine") == [
        "tx_engine.listeners[1].port: duplicate listener port 5432 (also tx_engine.listeners[0].port)"
    ]
    doc["tx_engine"]["listeners"].append({"protocol": "mysql", "port": 5432})
    assert errors(doc, "tx-engine") == [
        "tx_engine.listeners[1].port: duplicate listener port 5432 (also tx_engine.listeners[0].port)",
        "tx_engine.listeners[2].port: duplicate listener port 5432 (also tx_engine.listeners[0].port)",
    ]


def test_invalid_ports_are_reported_once_and_not_compared():
    doc = edited(edited(TX, "tx_engine.listeners.0.port", "3306"), "tx_engine.listeners.1.port", "3306")
    assert errors(doc, "tx-engine", metrics_port=3306) == [
        "tx_engine.listeners[0].port: " + PORT_TYPE + "string '3306'",
        "tx_engine.listeners[1].port: " + PORT_TYPE + "string '3306'",
    ]
    doc = edited(TX, "tx_engine.listeners.1", "mysql")  # not a mapping: no crash
    assert errors(doc, "tx-engine", metrics_port=5432) == [
        "tx_engine.listeners[1]: expected a mapping, got string 'mysql'",
        "tx_engine.listeners[0].port: port 5432 collides with the metrics port",
    ]


def test_listener_on_the_metrics_port():
    doc = edited(TX, "tx_engine.listeners.0.port", 9090)
    assert errors(doc, "tx-engine") == []  # no metrics port given: not checked
    assert errors(doc, "tx-engine", metrics_port=9090) == [
        "tx_engine.listeners[0].port: port 9090 collides with the metrics port"
    ]
    assert errors(doc, "tx-engine", metrics_port="9090", metrics_port_from="engine_metrics_port") == [
        "tx_engine.listeners[0].port: port 9090 collides with the metrics port (engine_metrics_port)"
    ]
    assert errors(TX, "tx-engine", metrics_port=9091) == []


def test_duplicate_on_the_metrics_port_is_reported_once_each():
    doc = edited(TX, "tx_engine.listeners.1.port", 5432)
    assert errors(doc, "tx-engine", metrics_port=5432) == [
        "tx_engine.listeners[0].port: port 5432 collides with the metrics port",
        "tx_engine.listeners[1].port: duplicate listener port 5432 (also tx_engine.listeners[0].port)",
    ]


def test_metrics_port_means_nothing_to_other_files():
    assert errors(CLUSTER, "cluster", metrics_port=8888) == []
    assert errors(INGESTION, "ingestion-engine", metrics_port=9092) == []


# --- label ---


def test_label_replaces_the_top_key():
    doc = edited(TX, "tx_engine.consistency.default_mode", "fast")
    doc = edited(doc, "tx_engine.cache.hot_rows_mb", 1)
    doc = edited(doc, "tx_engine.listeners.1.port", 5432)
    assert errors(doc, "tx-engine", label="tx_engine_config") == [
        "tx_engine_config.cache.hot_rows_mb: unknown key (allowed: hot_row_cache_mb, prepared_statement_cache_size, "
        "query_result_cache_mb); did you mean 'hot_row_cache_mb'?",
        "tx_engine_config.consistency.default_mode: invalid value 'fast' " + MODES,
        "tx_engine_config.listeners[1].port: duplicate listener port 5432 (also tx_engine_config.listeners[0].port)",
    ]


def test_label_in_every_kind_of_path():
    assert errors({"cluster": {}}, "cluster", label="cluster_vars") == ["cluster_vars.name: required key missing"]
    assert errors({}, "olap-shard", label="olap_config") == ["olap_config: required key missing"]
    assert errors({"olap": 1}, "olap-shard", label="olap_config") == ["olap_config: expected a mapping, got integer 1"]
    # an unknown top key is not the labelled section: it keeps its own name
    assert errors(dict(OLAP, olapp={}), "olap-shard", label="olap_config") == [
        "olapp: unknown key (allowed: olap); did you mean 'olap'?"
    ]
    doc = edited(INGESTION, "ingestion.broker.brokers.0", "kafka-1")
    assert errors(doc, "ingestion-engine", label="engine_tier_config.ingestion") == [
        "engine_tier_config.ingestion.broker.brokers[0]: expected \"host:port\", got string 'kafka-1'"
    ]


# --- cluster.yaml ---


@pytest.mark.parametrize("path, value, expected", [
    ("cluster.name", None, "cluster.name: required key missing"),
    ("cluster.name", "", "cluster.name: expected a non-empty string, got string ''"),
    ("cluster.clock.mode", "atomic", "cluster.clock.mode: invalid value 'atomic' (allowed: software, hardware)"),
    ("cluster.clock.heartbeat_interval_ms", 0, "cluster.clock.heartbeat_interval_ms: must be >= 1, got 0"),
    ("cluster.clock.max_acceptable_uncertainty_ns", "50ms",
     "cluster.clock.max_acceptable_uncertainty_ns: expected an integer, got string '50ms'"),
    ("cluster.clock", "software", "cluster.clock: expected a mapping, got string 'software'"),
    ("cluster.replication.broker", "rabbitmq",
     "cluster.replication.broker: invalid value 'rabbitmq' (allowed: kafka, pubsub)"),
    ("cluster.replication.brokers", "kafka-1:9092",
     "cluster.replication.brokers: expected a list, got string 'kafka-1:9092'"),
    ("cluster.replication.brokers.1", "kafka-2", "cluster.replication.brokers[1]: expected \"host:port\", got string "
     "'kafka-2'"),
    ("cluster.replication.brokers.1", 9092, "cluster.replication.brokers[1]: expected \"host:port\", got integer 9092"),
    ("cluster.replication.brokers.1", ":9092", "cluster.replication.brokers[1]: missing host in ':9092'"),
    ("cluster.replication.brokers.1", "[]:9092", "cluster.replication.brokers[1]: missing host in '[]:9092'"),
    ("cluster.replication.brokers.1", "kafka-2:",
     "cluster.replication.brokers[1]: port '' out of range 1..65535 in 'kafka-2:'"),
    ("cluster.replication.brokers.1", "kafka-2:70000",
     "cluster.replication.brokers[1]: port '70000' out of range 1..65535 in 'kafka-2:70000'"),
    ("cluster.replication.brokers.1", "kafka-2:\u00b2",  # str.isdigit() says yes, int() says no
     "cluster.replication.brokers[1]: port '\u00b2' out of range 1..65535 in 'kafka-2:\u00b2'"),
    ("cluster.security.enable_tls", "true", "cluster.security.enable_tls: expected true or false, got string 'true'"),
    ("cluster.security.auth_method", "oauth",
     "cluster.security.auth_method: invalid value 'oauth' (allowed: kerberos, ldap, jwt)"),
    ("cluster.monitoring.log_level", "verbose",
     "cluster.monitoring.log_level: invalid value 'verbose' (allowed: debug, info, warning, error)"),
])
def test_cluster_problems(path, value, expected):
    assert errors(edited(CLUSTER, path, value, delete=value is None), "cluster") == [expected]


def test_cluster_name_present_but_empty():
    assert errors(edited(CLUSTER, "cluster.name", None), "cluster") == ["cluster.name: required key has no value"]


def test_ipv6_and_names_as_brokers():
    doc = edited(CLUSTER, "cluster.replication.brokers", ["[fd00::1]:9092", "10.0.0.1:9092", "k.example:1"])
    assert errors(doc, "cluster") == []


# --- values Ansible hands over (str and int subclasses) ---


class _Text(str):
    pass


class _Number(int):
    pass


def test_subclasses_of_str_and_int_are_their_base_types():
    doc = {"tx_engine": {"listeners": [{"protocol": _Text("mysql"), "port": _Number(3306)}],
                         "consistency": {"default_mode": _Text("fast")}}}
    assert errors(doc, _Text("tx-engine"), metrics_port=_Number(3306)) == [
        "tx_engine.consistency.default_mode: invalid value 'fast' " + MODES,
        "tx_engine.listeners[0].port: port 3306 collides with the metrics port",
    ]


# --- arguments ---


@pytest.mark.parametrize("kwargs, message", [
    ({"kind": "clock-master"}, "kind must be one of cluster, tx-engine, ingestion-engine, olap-shard, "
                               "got string 'clock-master'"),
    ({"kind": "tx_engine"}, "got string 'tx_engine'"),
    ({"kind": ["tx-engine"]}, "got list"),
    ({"kind": "tx-engine", "label": ""}, "label must be a non-empty string"),
    ({"kind": "tx-engine", "label": 5}, "label must be a non-empty string, got integer 5"),
    ({"kind": "tx-engine", "metrics_port": "http"}, "metrics_port must be a port number 1..65535, got string 'http'"),
    ({"kind": "tx-engine", "metrics_port": 0}, "metrics_port must be a port number"),
    ({"kind": "tx-engine", "metrics_port": True}, "metrics_port must be a port number"),
])
def test_bad_arguments_raise_value_error(kwargs, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace("[", r"\[")):
        errors(TX, **kwargs)


# --- the module itself ---


def test_module_is_stdlib_only_and_sanity_shaped():
    source = _PATH.read_text()
    assert "from __future__ import absolute_import, division, print_function" in source
    assert "__metaclass__ = type" in source
    assert source.startswith("# Copyright: scratchbird.cluster contributors\n# Apache License 2.0 (see LICENSE)\n")
    assert "print(" not in source and "sys.exit" not in source
    tree = ast.parse(source, feature_version=(3, 7))  # the stand-in runs on any python3 >= 3.8
    functions = [n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef)]
    assert functions and not [f.name for f in functions if f.returns or any(a.annotation for a in f.args.args)]
    imported = {a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    imported |= {n.module.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
    assert imported <= {"__future__", "difflib"}  # no yaml, no ansible: the stand-in bundles this file alone
