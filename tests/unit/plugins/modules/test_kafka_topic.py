# Copyright: scratchbird.cluster contributors
# Apache License 2.0 (see LICENSE)
"""plugins/modules/kafka_topic.py against an in-memory admin client (kafka_fakes).

Each test runs with the stand-ins of kafka-python 3.0 and of 2.0.2 (Debian 12's python3-kafka).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import logging
import threading

import pytest

from ansible_collections.scratchbird.cluster.plugins.module_utils import kafka as kafka_utils
from ansible_collections.scratchbird.cluster.plugins.modules import kafka_topic

from ansible_collections.scratchbird.cluster.tests.unit.plugins.modules.kafka_fakes import (
    ALL_APIS,
    CLIENT_2,
    CLIENT_3,
    CLIENTS,
    Cluster,
    KafkaConfigurationError,
    KafkaTimeoutError,
    NoBrokersAvailable,
    SaslAuthenticationFailedError,
    Topic,
    make_runner,
)


@pytest.fixture(params=CLIENTS)
def run(request, monkeypatch):
    return make_runner(monkeypatch, request.param)


@pytest.fixture
def run2(monkeypatch):
    """The kafka-python 2.0.2 flavour only."""
    return make_runner(monkeypatch, CLIENT_2)


def events_cluster(**kwargs):
    """Three brokers and topic ``events``: 3 partitions, 3 replicas, retention.ms set."""
    topics = dict(events=Topic(3, 3, {"retention.ms": "86400000"}))
    return Cluster(brokers=(1, 2, 3), topics=topics, **kwargs)


# Creation


def test_creates_a_topic(run):
    cluster = Cluster(brokers=(1, 2, 3))
    args = dict(name="events", partitions=6, replication_factor=3,
                config={"retention.ms": 3600000, "cleanup.policy": ["compact", "delete"], "preallocate": True})
    result, failed, warnings = run(kafka_topic.main, args, cluster)
    assert not failed and not warnings
    assert result["changed"] is True
    config = {"retention.ms": "3600000", "cleanup.policy": "compact,delete", "preallocate": "true"}
    assert cluster.changes == [("create_topics", "events", dict(num_partitions=6, replication_factor=3, configs=config))]
    topic = result["topic"]
    assert (topic["name"], topic["exists"], topic["partitions"], topic["replication_factor"]) == ("events", True, 6, 3)
    assert topic["config_source"] == "broker" and topic["config"]["retention.ms"] == "3600000"
    assert result["actions"] == ["create topic events with 6 partitions, replication factor 3, config "
                                 "cleanup.policy=compact,delete, preallocate=true, retention.ms=3600000"]
    assert cluster.clients[0]["bootstrap_servers"] == ["127.0.0.1:9092"] and cluster.closed == 1


def test_creates_with_the_broker_default_replication_factor(run):
    cluster = Cluster()
    result, failed, dummy = run(kafka_topic.main, dict(name="events", partitions=1), cluster)
    assert not failed and result["changed"]
    assert cluster.changes[0][2]["replication_factor"] == -1
    assert result["topic"]["replication_factor"] == 1


def test_creating_needs_partitions(run):
    cluster = Cluster()
    result, failed, dummy = run(kafka_topic.main, dict(name="events"), cluster)
    assert failed and result["msg"] == "partitions is required to create topic events"
    assert cluster.changes == []


def test_replication_factor_above_the_brokers_fails_before_creating(run):
    cluster = Cluster(brokers=(1, 2))
    result, failed, dummy = run(kafka_topic.main, dict(name="events", partitions=3, replication_factor=3), cluster)
    assert failed
    assert result["msg"] == ("replication_factor 3 is larger than the number of brokers (2: 1, 2); "
                             "topic events not created")
    assert cluster.changes == [] and "events" not in cluster.topics


def test_create_error_of_the_broker_is_reported(run):
    # kafka-python 3.0 returns it; 2.0.2 raises it, the broker's message only in the exception's text.
    cluster = Cluster(create_error=(40, "Unknown topic config name: bogus"))
    result, failed, dummy = run(kafka_topic.main, dict(name="events", partitions=1, config={"bogus": 1}), cluster)
    assert failed and result["msg"] == "cannot create topic events: INVALID_CONFIG: Unknown topic config name: bogus"
    assert result["actions"] == []


# Idempotence, growth and the changes Kafka cannot make


def test_same_state_changes_nothing(run):
    cluster = events_cluster()
    args = dict(name="events", partitions=3, replication_factor=3, config={"retention.ms": 86400000})
    result, failed, warnings = run(kafka_topic.main, dict(args, _ansible_diff=True), cluster)
    assert not failed and not warnings
    assert result["changed"] is False and result["actions"] == []
    assert cluster.changes == []
    assert result["diff"]["before"] == result["diff"]["after"]
    assert result["topic"]["config"]["retention.ms"] == "86400000"
    assert result["topic"]["config"]["cleanup.policy"] == "delete"  # a default, as Kafka reports it


def test_partitions_only_compares_partitions(run):
    cluster = events_cluster()
    result, failed, dummy = run(kafka_topic.main, dict(name="events", partitions=3), cluster)
    assert not failed and result["changed"] is False and cluster.changes == []


def test_increases_partitions(run):
    cluster = events_cluster()
    result, failed, dummy = run(kafka_topic.main, dict(name="events", partitions=8, _ansible_diff=True), cluster)
    assert not failed and result["changed"] is True
    assert cluster.changes == [("create_partitions", "events", 8)]
    assert cluster.topics["events"].partitions == 8
    assert result["actions"] == ["partitions 3 -> 8"]
    assert result["diff"] == dict(before=dict(state="present", partitions=3, replication_factor=3),
                                  after=dict(state="present", partitions=8, replication_factor=3))
    assert result["topic"]["partitions"] == 8


def test_decrease_fails_naming_both_counts(run):
    cluster = events_cluster()
    result, failed, dummy = run(kafka_topic.main, dict(name="events", partitions=2, config={"retention.ms": 1}), cluster)
    assert failed
    assert result["msg"].startswith("cannot decrease the partitions of topic events from 3 to 2: "
                                    "Kafka cannot remove partitions")
    assert cluster.changes == [] and cluster.topics["events"].config["retention.ms"] == "86400000"


def test_other_replication_factor_fails(run):
    cluster = events_cluster()
    result, failed, dummy = run(kafka_topic.main, dict(name="events", partitions=4, replication_factor=2), cluster)
    assert failed
    assert result["msg"] == ("topic events has replication factor 3, requested 2: changing it needs a partition "
                             "reassignment (kafka-reassign-partitions), which this module does not do")
    assert cluster.changes == []


def test_broker_without_create_partitions_fails_before_changing(run):
    apis = [a for a in ALL_APIS if a != "CreatePartitions"]
    cluster = events_cluster(apis=apis)
    args = dict(name="events", partitions=5, config={"retention.ms": 1000})
    result, failed, dummy = run(kafka_topic.main, args, cluster)
    assert failed
    assert result["msg"] == ("the Kafka broker does not support CreatePartitions: cannot increase the partitions "
                             "of topic events from 3 to 5")
    assert cluster.changes == []


def test_create_partitions_refused_at_the_call(run):
    # A broker that does not list its APIs, then refuses the request.
    cluster = events_cluster(apis=())
    result, failed, dummy = run(kafka_topic.main, dict(name="events", partitions=5), cluster)
    assert failed
    assert result["msg"] == ("the Kafka broker does not support CreatePartitions: cannot increase the partitions "
                             "of topic events from 3 to 5")


# Configs


def test_changes_only_the_configs_that_differ(run):
    cluster = events_cluster()
    args = dict(name="events", config={"retention.ms": 3600000, "cleanup.policy": "delete", "min.insync.replicas": 2},
                _ansible_diff=True)
    result, failed, warnings = run(kafka_topic.main, args, cluster)
    assert not failed and not warnings and result["changed"] is True
    assert cluster.changes == [("alter_configs", "events", {"retention.ms": "3600000", "min.insync.replicas": "2"})]
    assert result["actions"] == ["config min.insync.replicas: 1 -> 2", "config retention.ms: 86400000 -> 3600000"]
    assert result["diff"]["before"]["config"] == {"retention.ms": "86400000", "cleanup.policy": "delete",
                                                  "min.insync.replicas": "1"}
    assert result["diff"]["after"]["config"] == {"retention.ms": "3600000", "cleanup.policy": "delete",
                                                 "min.insync.replicas": "2"}
    assert result["topic"]["config"]["retention.ms"] == "3600000"
    # again: nothing to do
    result, failed, dummy = run(kafka_topic.main, args, cluster)
    assert not failed and result["changed"] is False and len(cluster.changes) == 1


def test_config_set_on_a_broker_that_reports_only_explicit_configs(run):
    # Tansu reports the configs set on a topic, not the defaults: a key it does not list is unset.
    cluster = Cluster(topics=dict(events=Topic(1, 1, {"retention.ms": "1000"})))
    cluster.DEFAULTS = {}
    result, failed, dummy = run(kafka_topic.main, dict(name="events", config={"segment.ms": 60000}), cluster)
    assert not failed and result["changed"] is True
    assert result["actions"] == ["config segment.ms: unset -> 60000"]


def test_config_rejected_by_the_broker(run):
    cluster = events_cluster()
    result, failed, dummy = run(kafka_topic.main, dict(name="events", config={"bogus.key": 1}), cluster)
    assert failed
    assert result["msg"].startswith("cannot change bogus.key of topic events: [Error 40] InvalidConfigurationError")


@pytest.mark.parametrize("mode, reason", [
    ("unsupported", "the broker does not support DescribeConfigs (IncompatibleBrokerVersion: "),
    ("empty", "the broker returned no configuration for topic events (DescribeConfigs not implemented"),
])
def test_configs_that_cannot_be_read_are_not_compared(run, mode, reason):
    cluster = events_cluster(describe_configs=mode)
    args = dict(name="events", partitions=3, config={"retention.ms": 1000}, _ansible_diff=True)
    result, failed, warnings = run(kafka_topic.main, args, cluster)
    assert not failed
    assert result["changed"] is False and cluster.changes == [] and result["actions"] == []
    assert len(warnings) == 1
    assert warnings[0].startswith("the configs of existing topic events could not be read: " + reason)
    assert "config (retention.ms) was neither compared nor applied" in warnings[0]
    assert "config" not in result["diff"]["before"] and "config" not in result["diff"]["after"]
    assert result["topic"]["config"] is None and result["topic"]["config_source"] is None


def test_configs_unreadable_still_applied_at_creation(run):
    cluster = Cluster(describe_configs="empty")
    result, failed, warnings = run(kafka_topic.main, dict(name="events", partitions=1, config={"retention.ms": 5}), cluster)
    assert not failed and not warnings and result["changed"]
    assert cluster.topics["events"].config == {"retention.ms": "5"}
    assert result["topic"]["config"] == {"retention.ms": "5"} and result["topic"]["config_source"] == "requested"


# Check mode


def test_check_mode_create_changes_nothing(run):
    cluster = Cluster(brokers=(1, 2, 3))
    args = dict(name="events", partitions=6, replication_factor=3, config={"retention.ms": 1},
                _ansible_check_mode=True, _ansible_diff=True)
    result, failed, dummy = run(kafka_topic.main, args, cluster)
    assert not failed and result["changed"] is True
    assert cluster.changes == [] and cluster.topics == {}
    assert result["diff"] == dict(before=dict(state="absent"),
                                  after=dict(state="present", partitions=6, replication_factor=3,
                                             config={"retention.ms": "1"}))
    assert result["topic"]["partitions"] == 6


def test_check_mode_update_and_delete_change_nothing(run):
    cluster = events_cluster()
    args = dict(name="events", partitions=9, config={"retention.ms": 1}, _ansible_check_mode=True)
    result, failed, dummy = run(kafka_topic.main, args, cluster)
    assert not failed and result["changed"] is True
    assert result["actions"] == ["config retention.ms: 86400000 -> 1", "partitions 3 -> 9"]
    result, failed, dummy = run(kafka_topic.main, dict(name="events", state="absent", _ansible_check_mode=True), cluster)
    assert not failed and result["changed"] is True
    assert cluster.changes == [] and cluster.topics["events"].partitions == 3


def test_check_mode_still_fails_what_would_fail(run):
    cluster = events_cluster()
    result, failed, dummy = run(kafka_topic.main, dict(name="events", partitions=1, _ansible_check_mode=True), cluster)
    assert failed and "from 3 to 1" in result["msg"]


# state=absent


def test_deletes_a_topic(run):
    cluster = events_cluster()
    result, failed, dummy = run(kafka_topic.main, dict(name="events", state="absent", _ansible_diff=True), cluster)
    assert not failed and result["changed"] is True
    assert cluster.changes == [("delete_topics", "events")] and "events" not in cluster.topics
    assert result["diff"] == dict(before=dict(state="present", partitions=3, replication_factor=3),
                                  after=dict(state="absent"))
    assert result["topic"]["exists"] is False
    result, failed, dummy = run(kafka_topic.main, dict(name="events", state="absent"), cluster)
    assert not failed and result["changed"] is False and len(cluster.changes) == 1


# Parameters and connection


@pytest.mark.parametrize("args, msg", [
    (dict(name="bad name"), "name 'bad name' is not a legal Kafka topic name"),
    (dict(name=".."), "name '..' is not a legal Kafka topic name"),
    (dict(name="x" * 250), "is not a legal Kafka topic name"),
    (dict(name="t", partitions=0), "partitions must be at least 1, got 0"),
    (dict(name="t", replication_factor=0), "replication_factor must be at least 1, got 0"),
    (dict(name="t", config={"retention.ms": None}), "config retention.ms has no value"),
    (dict(name="t", bootstrap_servers=["kafka-1"]), "bootstrap_servers: 'kafka-1' is not host:port"),
    (dict(name="t", bootstrap_servers=[]), "bootstrap_servers must list at least one host:port"),
    (dict(name="t", request_timeout_ms=0), "request_timeout_ms must be greater than 0, got 0"),
    (dict(name="t", sasl_username="u"), "sasl_username need security_protocol SASL_PLAINTEXT or SASL_SSL"),
    (dict(name="t", ssl_cafile="/ca.pem", security_protocol="SASL_PLAINTEXT", sasl_mechanism="PLAIN",
          sasl_username="u", sasl_password="secret"), "ssl_cafile need security_protocol SSL or SASL_SSL"),
    (dict(name="t", security_protocol="SASL_SSL"), "security_protocol is SASL_SSL but all of the following are missing"),
])
def test_bad_parameters_fail_before_connecting(run, args, msg):
    cluster = Cluster()
    result, failed, dummy = run(kafka_topic.main, args, cluster)
    assert failed and msg in result["msg"], result["msg"]
    assert cluster.clients == []


def test_client_settings(run):
    cluster = Cluster()
    args = dict(name="t", bootstrap_servers=["k1:9093", "[::1]:9093"], security_protocol="SASL_SSL",
                ssl_cafile="/etc/ca.pem", sasl_mechanism="SCRAM-SHA-512", sasl_username="admin",
                sasl_password="secret", request_timeout_ms=5000, partitions=1)
    result, failed, dummy = run(kafka_topic.main, args, cluster)
    assert not failed
    # The bootstrap bound: kafka-python 2.x has no bootstrap_timeout_ms (it refuses unknown keys).
    bound = dict(bootstrap_timeout_ms=5000) if run.client == CLIENT_3 else dict(api_version_auto_timeout_ms=5000)
    assert cluster.clients == [dict(bootstrap_servers=["k1:9093", "[::1]:9093"], client_id="scratchbird.cluster",
                                    security_protocol="SASL_SSL", request_timeout_ms=5000,
                                    ssl_cafile="/etc/ca.pem", sasl_mechanism="SCRAM-SHA-512",
                                    sasl_plain_username="admin", sasl_plain_password="secret", **bound)]


def test_client_settings_without_a_known_config():
    # A client class without DEFAULT_CONFIG gets kafka-python 3.0's keys.
    config = kafka_utils.client_config(dict(bootstrap_servers=["k1:9092"], request_timeout_ms=100), client_class=object())
    assert config["bootstrap_timeout_ms"] == 100 and "api_version_auto_timeout_ms" not in config


def test_unreachable_broker_names_the_servers_and_the_reason(run):
    if run.client == CLIENT_3:
        cluster = Cluster(connect_error=KafkaTimeoutError("Unable to bootstrap from ['127.0.0.1:9092']"),
                          connect_log="Bootstrap connection to bootstrap-0 failed: KafkaConnectionError: 111 ECONNREFUSED "
                                      "(backoff 1.82 secs)")
    else:  # kafka-python 2.x says why only at INFO level, and gives up with NoBrokersAvailable
        log = ("<BrokerConnection node_id=bootstrap-0 host=127.0.0.1:9092 <connecting> [IPv4 ('127.0.0.1', 9092)]>: "
               "Closing connection. KafkaConnectionError: 111 ECONNREFUSED")
        cluster = Cluster(connect_error=NoBrokersAvailable(), connect_log=("kafka.conn", logging.INFO, log))
    result, failed, dummy = run(kafka_topic.main, dict(name="t", partitions=1), cluster)
    assert failed
    assert result["msg"] == "no Kafka broker reachable at 127.0.0.1:9092 (KafkaConnectionError: 111 ECONNREFUSED)"
    assert result["bootstrap_servers"] == ["127.0.0.1:9092"]


def test_unreachable_without_a_logged_reason(run):
    cluster = Cluster(connect_error=KafkaTimeoutError("Unable to bootstrap from ['127.0.0.1:9092']"))
    result, failed, dummy = run(kafka_topic.main, dict(name="t", partitions=1), cluster)
    assert failed
    assert result["msg"] == ("no Kafka broker reachable at 127.0.0.1:9092 "
                             "(KafkaTimeoutError: Unable to bootstrap from ['127.0.0.1:9092'])")


def test_authentication_failure_is_a_plain_message(run):
    cluster = Cluster(connect_error=SaslAuthenticationFailedError("Authentication failed during authentication due to "
                                                                  "invalid credentials with SASL mechanism SCRAM-SHA-512"))
    args = dict(name="t", security_protocol="SASL_PLAINTEXT", sasl_mechanism="SCRAM-SHA-512", sasl_username="u",
                sasl_password="wrong-password")
    result, failed, dummy = run(kafka_topic.main, args, cluster)
    assert failed
    assert result["msg"] == ("authentication with the Kafka brokers at 127.0.0.1:9092 failed: SaslAuthenticationFailedError: "
                             "Authentication failed during authentication due to invalid credentials with SASL "
                             "mechanism SCRAM-SHA-512")


def test_invalid_client_settings(run):
    cluster = Cluster(connect_error=KafkaConfigurationError("ssl_certfile not found"))
    result, failed, dummy = run(kafka_topic.main, dict(name="t", partitions=1), cluster)
    assert failed and result["msg"] == "invalid Kafka client settings: KafkaConfigurationError: ssl_certfile not found"


def test_kafka_python_missing(run, monkeypatch):
    monkeypatch.setattr(kafka_utils, "HAS_KAFKA", False)
    cluster = Cluster()
    result, failed, dummy = run(kafka_topic.main, dict(name="t", partitions=1), cluster)
    assert failed and "kafka-python" in result["msg"] and cluster.clients == []


@pytest.mark.skipif(not hasattr(kafka_utils.signal, "SIGALRM"), reason="needs SIGALRM")
def test_connection_setup_is_bounded(monkeypatch):
    # kafka-python can wait forever on a TLS handshake with a plaintext listener.
    monkeypatch.setattr(kafka_utils, "CONNECT_MARGIN_S", 0)

    def hang(**config):
        threading.Event().wait(30)

    params = dict(bootstrap_servers=["127.0.0.1:9092"], security_protocol="SSL", request_timeout_ms=100)
    with pytest.raises(kafka_utils.KafkaModuleError) as caught:
        kafka_utils.open_admin_client(params, client_class=hang)
    assert str(caught.value).startswith("no Kafka broker reachable at 127.0.0.1:9092 (no complete answer within 0.1 s")


def test_parse_server():
    assert kafka_utils.parse_server("kafka-1:9092") == ("kafka-1", 9092)
    assert kafka_utils.parse_server("[::1]:9093") == ("::1", 9093)
    for bad in ("kafka-1", ":9092", "kafka-1:0", "kafka-1:70000", "kafka-1:x"):
        with pytest.raises(ValueError):
            kafka_utils.parse_server(bad)


# kafka-python 2.x (Debian 12's python3-kafka): what only its flavour does


def test_legacy_config_change_through_alter_configs_keeps_the_topic_configs(run2):
    # A broker without IncrementalAlterConfigs (before Kafka 2.3): AlterConfigs replaces all of the
    # topic's configs, so the module sends the ones set on the topic (not the defaults) along.
    apis = [a for a in ALL_APIS if a != "IncrementalAlterConfigs"]
    cluster = Cluster(topics=dict(events=Topic(3, 1, {"retention.ms": "86400000", "segment.ms": "60000"})), apis=apis)
    args = dict(name="events", config={"min.insync.replicas": 2, "segment.ms": 120000})
    result, failed, warnings = run2(kafka_topic.main, args, cluster)
    assert not failed and not warnings and result["changed"] is True
    assert result["actions"] == ["config min.insync.replicas: 1 -> 2", "config segment.ms: 60000 -> 120000"]
    sent = {"retention.ms": "86400000", "segment.ms": "120000", "min.insync.replicas": "2"}
    assert cluster.changes == [("alter_configs_replace", "events", sent)]
    assert cluster.topics["events"].config == sent
    result, failed, dummy = run2(kafka_topic.main, args, cluster)
    assert not failed and result["changed"] is False and len(cluster.changes) == 1


def test_legacy_alter_configs_when_the_request_cannot_be_built(run2, monkeypatch):
    # Without kafka-python's protocol classes there is no IncrementalAlterConfigs to send.
    monkeypatch.setattr(kafka_utils, "_incremental_alter_request_class", lambda: None)
    cluster = events_cluster()
    result, failed, dummy = run2(kafka_topic.main, dict(name="events", config={"retention.ms": 1000}), cluster)
    assert not failed and result["changed"] is True
    assert cluster.changes == [("alter_configs_replace", "events", {"retention.ms": "1000"})]


def test_legacy_alter_configs_does_not_drop_a_sensitive_config(run2):
    apis = [a for a in ALL_APIS if a != "IncrementalAlterConfigs"]
    topic = Topic(1, 1, {"retention.ms": "1000", "secret.key": "x"}, sensitive=("secret.key",))
    cluster = Cluster(topics=dict(events=topic), apis=apis)
    result, failed, dummy = run2(kafka_topic.main, dict(name="events", config={"retention.ms": 2000}), cluster)
    assert failed and cluster.changes == []
    assert result["msg"] == ("cannot change retention.ms of topic events: the broker has only AlterConfigs, which "
                             "replaces all of the topic's configs, and it does not tell the value of secret.key "
                             "(sensitive) to keep it")


def test_legacy_config_change_on_a_broker_without_either_request(run2):
    apis = [a for a in ALL_APIS if a not in ("IncrementalAlterConfigs", "AlterConfigs")]
    cluster = events_cluster(apis=apis)
    result, failed, dummy = run2(kafka_topic.main, dict(name="events", config={"retention.ms": 2000}), cluster)
    assert failed and cluster.changes == []
    assert result["msg"] == ("cannot change the configuration of topic events: IncompatibleBrokerVersion: Kafka broker "
                             "does not support the 'AlterConfigsRequest_v0' Kafka protocol.")


def test_legacy_create_passes_the_broker_default_replication_factor(run2):
    # kafka-python 2.0.2's own NewTopic refuses replication factor -1.
    cluster = Cluster()
    result, failed, dummy = run2(kafka_topic.main, dict(name="events", partitions=2), cluster)
    assert not failed and cluster.changes == [("create_topics", "events", dict(num_partitions=2, replication_factor=-1,
                                                                               configs={}))]


def test_legacy_failed_partition_growth_names_the_kafka_error(run2, monkeypatch):
    # The metadata is behind: it shows 2 partitions where the broker has 3 (kafka-python 2.0.2 raises
    # the broker's INVALID_PARTITIONS).
    cluster = events_cluster()
    monkeypatch.setattr(kafka_topic, "describe_topic", lambda admin, name: dict(name=name, partitions=2,
                                                                                replication_factor=3))
    result, failed, dummy = run2(kafka_topic.main, dict(name="events", partitions=3), cluster)
    assert failed
    assert result["msg"] == ("cannot increase the partitions of topic events from 2 to 3: INVALID_PARTITIONS: "
                             "Topic already has 3 partitions.")


@pytest.mark.parametrize("text, message", [
    ("Request 'X' failed with response 'R(topic_errors=[(topic='t', error_code=36, error_message=\"Topic 't' exists.\")])'.",
     "Topic 't' exists."),
    ("Request 'X' failed with response 'R(topic_errors=[(topic='t', error_code=36, error_message=None)])'.", None),
    ("no response text", None),
])
def test_failure_of_a_legacy_error(text, message):
    error = type("TopicAlreadyExistsError", (Exception,), dict(errno=36))(text)
    assert kafka_utils._failure_of(error, "t") == ("t", 36, message)
    assert kafka_utils._failure_of(KafkaTimeoutError("timed out"), "t") is None


def test_config_sources_of_every_describe_configs_version():
    assert kafka_utils._config_source(dict(config_source="DYNAMIC_TOPIC_CONFIG")) == "DYNAMIC_TOPIC_CONFIG"  # 3.0
    assert kafka_utils._config_source(dict(config_source=1)) == "DYNAMIC_TOPIC_CONFIG"  # 2.x, v1+
    assert kafka_utils._config_source(dict(config_source=5)) == "DEFAULT_CONFIG"
    assert kafka_utils._config_source(dict(is_default=False, read_only=False)) == "DYNAMIC_TOPIC_CONFIG"  # v0
    assert kafka_utils._config_source(dict(is_default=True, read_only=False)) == "DEFAULT_CONFIG"


def test_supports_api_by_name_or_number():
    class Admin3:
        @staticmethod
        def api_versions():
            return {"CreatePartitions": (0, 3)}

    class Client2:
        @staticmethod
        def get_api_versions():
            return {37: (0, 1)}

    class Admin2:
        _client = Client2()

    assert kafka_utils.supports_api(Admin3(), "CreatePartitions") is True
    assert kafka_utils.supports_api(Admin2(), "CreatePartitions") is True
    assert kafka_utils.supports_api(Admin2(), "IncrementalAlterConfigs") is False
    assert kafka_utils.supports_api(object(), "CreatePartitions") is None


def test_connection_log_reasons():
    handler = kafka_utils._LastConnectionError()
    for message, reason in [
        ("Bootstrap connection to bootstrap-0 failed: KafkaConnectionError: 111 ECONNREFUSED (backoff 1.82 secs)",
         "KafkaConnectionError: 111 ECONNREFUSED"),  # kafka-python 3.0
        ("<BrokerConnection node_id=bootstrap-0 host=h:9092 <connecting>>: Closing connection. "
         "KafkaConnectionError: 111 ECONNREFUSED", "KafkaConnectionError: 111 ECONNREFUSED"),  # 2.x
    ]:
        handler.reason = None
        handler.emit(logging.LogRecord("kafka.conn", logging.INFO, __file__, 1, message, None, None))
        assert handler.reason == reason
    # A plain close says nothing.
    handler.emit(logging.LogRecord("kafka.conn", logging.INFO, __file__, 1, "<c>: Closing connection. ", None, None))
    assert handler.reason == "KafkaConnectionError: 111 ECONNREFUSED"


def test_legacy_alter_configs_needs_the_topic_configs(run2):
    # Sending only the changes would reset the configs the broker did not report.
    apis = [a for a in ALL_APIS if a != "IncrementalAlterConfigs"]
    cluster = events_cluster(apis=apis, describe_configs="empty")
    cluster.client = CLIENT_2
    admin = cluster.admin_client(bootstrap_servers=["127.0.0.1:9092"])
    with pytest.raises(kafka_utils.KafkaModuleError) as caught:
        kafka_utils.alter_topic_config(admin, "events", {"retention.ms": "1"})
    assert str(caught.value).startswith("cannot change retention.ms of topic events: the broker has only AlterConfigs, "
                                        "which replaces all of the topic's configs, and the broker returned no "
                                        "configuration for topic events")
    assert cluster.changes == []
