# Copyright: scratchbird.cluster contributors
# Apache License 2.0 (see LICENSE)
from __future__ import absolute_import, division, print_function

__metaclass__ = type

import pytest

from ansible.errors import AnsibleFilterError
from ansible_collections.scratchbird.cluster.plugins.filter.engine import FilterModule, engine_config_errors
from ansible_collections.scratchbird.cluster.plugins.module_utils import engine_schema

TX = {"tx_engine": {"server_id": "auto", "listeners": [{"protocol": "postgresql", "port": 5432, "max_connections": 1000},
                                                       {"protocol": "mysql", "port": 3306, "max_connections": 1000}],
                    "consistency": {"default_mode": "bounded_staleness"}}}
MODES = "(allowed: eventual, bounded_staleness, monotonic_reads, strict_serializable)"


def test_registered_under_its_name():
    assert FilterModule().filters() == {"engine_config_errors": engine_config_errors}


@pytest.mark.parametrize("doc, kind", [
    ({"cluster": {"name": "prod"}}, "cluster"),
    (TX, "tx-engine"),
    ({"ingestion": {"broker": {"brokers": ["kafka-1:9092"]}}}, "ingestion-engine"),
    ({"olap": {"storage": {"format": "parquet"}}}, "olap-shard"),
])
def test_valid_documents_give_no_messages(doc, kind):
    assert engine_config_errors(doc, kind) == []


def test_messages_with_label_and_metrics_port():
    doc = {"tx_engine": dict(TX["tx_engine"], consistency={"default_mode": "fast"}, cache={"hot_rows_mb": 1},
                             listeners=[{"protocol": "postgresql", "port": 9090},
                                        {"protocol": "mysql", "port": 9090}])}
    assert engine_config_errors(doc, "tx-engine", label="tx_engine_config", metrics_port=9090,
                                metrics_port_from="engine_metrics_port") == [
        "tx_engine_config.cache.hot_rows_mb: unknown key (allowed: hot_row_cache_mb, prepared_statement_cache_size, "
        "query_result_cache_mb); did you mean 'hot_row_cache_mb'?",
        "tx_engine_config.consistency.default_mode: invalid value 'fast' " + MODES,
        "tx_engine_config.listeners[0].port: port 9090 collides with the metrics port (engine_metrics_port)",
        "tx_engine_config.listeners[1].port: duplicate listener port 9090 (also tx_engine_config.listeners[0].port)",
    ]


def test_same_messages_as_the_module_utils():
    doc = {"cluster": {"name": "", "clock": {"heartbeat_port": "8888"}, "replication": {"brokers": ["kafka-1"]}}}
    found = engine_config_errors(doc, "cluster", label="cluster_config")
    assert found == engine_schema.errors(doc, "cluster", label="cluster_config")
    assert found == [
        "cluster_config.name: expected a non-empty string, got string ''",
        "cluster_config.clock.heartbeat_port: expected a port number (integer 1..65535), got string '8888'",
        "cluster_config.replication.brokers[0]: expected \"host:port\", got string 'kafka-1'",
    ]


def test_metrics_port_from_an_inventory_string():
    doc = {"tx_engine": dict(TX["tx_engine"], listeners=[{"protocol": "mysql", "port": 9090}])}
    assert engine_config_errors(doc, "tx-engine", metrics_port="9090") == [
        "tx_engine.listeners[0].port: port 9090 collides with the metrics port"
    ]


@pytest.mark.parametrize("kind", ["clock-master", "tx_engine", "", None, ["tx-engine"]])
def test_bad_kind(kind):
    with pytest.raises(AnsibleFilterError, match="engine_config_errors: kind must be one of cluster, tx-engine, "
                                                 "ingestion-engine, olap-shard"):
        engine_config_errors(TX, kind)


@pytest.mark.parametrize("kwargs, message", [
    ({"label": ""}, "label must be a non-empty string"),
    ({"metrics_port": "metrics"}, "metrics_port must be a port number"),
    ({"metrics_port": 65536}, "metrics_port must be a port number"),
])
def test_bad_arguments(kwargs, message):
    with pytest.raises(AnsibleFilterError, match="engine_config_errors: " + message):
        engine_config_errors(TX, "tx-engine", **kwargs)
