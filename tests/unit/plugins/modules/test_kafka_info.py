# Copyright: scratchbird.cluster contributors
# Apache License 2.0 (see LICENSE)
"""plugins/modules/kafka_info.py against an in-memory admin client (kafka_fakes).

Each test runs with the stand-ins of kafka-python 3.0 and of 2.0.2 (Debian 12's python3-kafka).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import pytest

from ansible_collections.scratchbird.cluster.plugins.modules import kafka_info

from ansible_collections.scratchbird.cluster.tests.unit.plugins.modules.kafka_fakes import (
    CLIENTS,
    Cluster,
    KafkaTimeoutError,
    Topic,
    make_runner,
)


@pytest.fixture(params=CLIENTS)
def run(request, monkeypatch):
    return make_runner(monkeypatch, request.param)


def three_brokers():
    topics = {
        "events": Topic(6, 3, short_isr=(1, 4)),
        "audit": Topic(2, 2),
        "__consumer_offsets": Topic(50, 3, internal=True, short_isr=(7,)),
    }
    return Cluster(brokers=(3, 1, 2), topics=topics, cluster_id="4L6g3nShT-eMCtK--X86sw", controller_id=2)


def test_reads_brokers_controller_and_topics(run):
    cluster = three_brokers()
    result, failed, warnings = run(kafka_info.main, {}, cluster)
    assert not failed and not warnings
    assert result["changed"] is False
    assert result["cluster_id"] == "4L6g3nShT-eMCtK--X86sw" and result["controller_id"] == 2
    assert result["brokers"] == [dict(id=i, host="kafka-%d" % i, port=9092, rack=None) for i in (1, 2, 3)]
    assert result["topics"] == {
        "__consumer_offsets": dict(partitions=50, replication_factor=3, under_replicated_partitions=1, internal=True,
                                   min_isr=2, offline_partitions=0),
        "audit": dict(partitions=2, replication_factor=2, under_replicated_partitions=0, internal=False,
                      min_isr=2, offline_partitions=0),
        "events": dict(partitions=6, replication_factor=3, under_replicated_partitions=2, internal=False,
                       min_isr=2, offline_partitions=0),
    }
    assert result["under_replicated_partitions"] == 3
    assert result["missing_topics"] == []
    assert cluster.changes == [] and cluster.closed == 1


def test_topics_filter_and_missing_topics(run):
    cluster = three_brokers()
    result, failed, dummy = run(kafka_info.main, dict(topics=["events", "nope", "events"]), cluster)
    assert not failed
    assert list(result["topics"]) == ["events"]
    assert result["missing_topics"] == ["nope"]
    assert result["under_replicated_partitions"] == 2


def test_empty_topics_filter(run):
    result, failed, dummy = run(kafka_info.main, dict(topics=[]), three_brokers())
    assert not failed and result["topics"] == {} and result["under_replicated_partitions"] == 0
    assert len(result["brokers"]) == 3


def test_check_mode_reads_the_same(run):
    cluster = three_brokers()
    normal, dummy, dummy = run(kafka_info.main, {}, cluster)
    checked, failed, dummy = run(kafka_info.main, dict(_ansible_check_mode=True), cluster)
    assert not failed and checked == normal and checked["changed"] is False


def test_no_controller(run):
    cluster = Cluster(controller_id=-1)
    result, failed, dummy = run(kafka_info.main, {}, cluster)
    assert not failed and result["controller_id"] is None and result["topics"] == {}


def test_topic_error_fails_clearly(run):
    cluster = three_brokers()
    cluster.topic_errors = dict(secret=29)
    result, failed, dummy = run(kafka_info.main, dict(topics=["secret"]), cluster)
    assert failed and result["msg"] == "cannot describe topic secret: TOPIC_AUTHORIZATION_FAILED"


def test_request_error_fails_clearly(run):
    cluster = three_brokers()
    cluster.describe_cluster_error = KafkaTimeoutError("Timed out waiting for DescribeClusterResponse")
    result, failed, dummy = run(kafka_info.main, {}, cluster)
    assert failed
    assert result["msg"] == ("cannot describe the Kafka cluster: KafkaTimeoutError: "
                             "Timed out waiting for DescribeClusterResponse")


def test_unreachable(run):
    cluster = Cluster(connect_error=KafkaTimeoutError("Unable to bootstrap from ['127.0.0.1:9092']"),
                      connect_log="Bootstrap connection to bootstrap-0 failed: KafkaConnectionError: 111 ECONNREFUSED")
    result, failed, dummy = run(kafka_info.main, {}, cluster)
    assert failed and result["msg"] == "no Kafka broker reachable at 127.0.0.1:9092 (KafkaConnectionError: 111 ECONNREFUSED)"


def test_empty_topic_name(run):
    result, failed, dummy = run(kafka_info.main, dict(topics=["events", " "]), three_brokers())
    assert failed and result["msg"] == "topics has an empty name"
