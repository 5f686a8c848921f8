# Copyright: scratchbird.cluster contributors
# Apache License 2.0 (see LICENSE)
"""A stand-in for kafka-python's KafkaAdminClient, for the Kafka module tests.

It keeps a cluster in memory and answers the admin calls the modules make with the shapes
kafka-python 3.0 returns. kafka-python itself is not needed (ansible-test units runs without
it): ``make_runner`` puts the fakes into module_utils/kafka.py.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import logging

from ansible.module_utils import basic

from ansible_collections.scratchbird.cluster.plugins.module_utils import kafka as kafka_utils

from ansible_collections.scratchbird.cluster.tests.unit.plugins.modules.module_args import patch_module_args


SERVERS = ["127.0.0.1:9092"]
ALL_APIS = ("Metadata", "DescribeCluster", "CreateTopics", "DeleteTopics", "CreatePartitions",
            "DescribeConfigs", "IncrementalAlterConfigs", "ApiVersions")

# The Kafka names of the error codes the fakes use (kafka.errors.for_code(code).message).
ERROR_NAMES = {
    3: "UNKNOWN_TOPIC_OR_PARTITION",
    29: "TOPIC_AUTHORIZATION_FAILED",
    36: "TOPIC_ALREADY_EXISTS",
    37: "INVALID_PARTITIONS",
    40: "INVALID_CONFIG",
}


class ExitJson(Exception):
    pass


class FailJson(Exception):
    pass


# Exceptions named and numbered like kafka.errors' (module_utils classifies by name and errno).

class KafkaError(Exception):
    errno = None


class KafkaTimeoutError(KafkaError):
    pass


class KafkaConfigurationError(KafkaError):
    pass


class IncompatibleBrokerVersion(KafkaError):
    errno = 35


class SaslAuthenticationFailedError(KafkaError):
    errno = 58


class FakeErrors:
    """kafka.errors.for_code."""

    @staticmethod
    def for_code(code):
        return type("Error%d" % code, (KafkaError,), dict(errno=code, message=ERROR_NAMES.get(code)))


class ConfigResourceType:
    TOPIC = 2


class ConfigResource:
    def __init__(self, resource_type, name, configs=None):
        self.resource_type = resource_type
        self.name = name
        self.configs = configs


class Topic:
    def __init__(self, partitions, replication_factor=1, config=None, internal=False, short_isr=()):
        self.partitions = partitions
        self.replication_factor = replication_factor
        self.config = dict(config or {})
        self.internal = internal
        self.short_isr = set(short_isr)  # partitions whose ISR lacks a replica


class Cluster:
    """The broker side. ``describe_configs``: ``full`` (defaults included, like Kafka),
    ``empty`` (answers with no config) or ``unsupported`` (UNSUPPORTED_VERSION)."""

    DEFAULTS = {"retention.ms": "604800000", "cleanup.policy": "delete", "compression.type": "producer",
                "min.insync.replicas": "1"}

    def __init__(self, brokers=(1,), topics=None, apis=ALL_APIS, describe_configs="full", connect_error=None,
                 connect_log=None, cluster_id="test-cluster", controller_id=None):
        self.brokers = list(brokers)
        self.topics = dict(topics or {})
        self.apis = set(apis)
        self.describe_configs = describe_configs
        self.connect_error = connect_error
        self.connect_log = connect_log
        self.cluster_id = cluster_id
        self.controller_id = self.brokers[0] if controller_id is None and self.brokers else controller_id
        self.clients = []  # the configurations the clients were created with
        self.changes = []  # mutating calls: (call, args)
        self.closed = 0

    def admin_client(self, **config):
        self.clients.append(config)
        if self.connect_log:
            logging.getLogger("kafka.net.manager").warning(self.connect_log)
        if self.connect_error is not None:
            raise self.connect_error
        return FakeAdminClient(self)


class FakeAdminClient:
    def __init__(self, cluster):
        self.cluster = cluster

    def close(self):
        self.cluster.closed += 1

    def api_versions(self):
        return dict((name, (0, 1)) for name in self.cluster.apis)

    def describe_cluster(self):
        return dict(
            cluster_id=self.cluster.cluster_id,
            controller_id=self.cluster.controller_id,
            brokers=[dict(broker_id=b, host="kafka-%d" % b, port=9092, rack=None) for b in self.cluster.brokers],
            authorized_operations=None,
        )

    def _metadata(self, name):
        topic = self.cluster.topics.get(name)
        if topic is None:
            return dict(error_code=3, name=name, is_internal=False, partitions=[])
        replicas = [self.cluster.brokers[i % len(self.cluster.brokers)] for i in range(topic.replication_factor)]
        partitions = []
        for index in range(topic.partitions):
            isr = replicas[:-1] if index in topic.short_isr else list(replicas)
            partitions.append(dict(error_code=0, partition_index=index, leader_id=replicas[0], replica_nodes=list(replicas),
                                   isr_nodes=isr, offline_replicas=[]))
        return dict(error_code=0, name=name, is_internal=topic.internal, partitions=partitions)

    def describe_topics(self, topics=None):
        names = sorted(self.cluster.topics) if topics is None else topics
        return [self._metadata(name) for name in names]

    def create_topics(self, new_topics, timeout_ms=None, validate_only=False, raise_errors=True):
        results = []
        for name, spec in new_topics.items():
            self.cluster.changes.append(("create_topics", name, dict(spec)))
            if name in self.cluster.topics:
                results.append(dict(name=name, error_code=36, error_message="Topic with this name already exists."))
                continue
            rf = spec["replication_factor"]
            self.cluster.topics[name] = Topic(spec["num_partitions"], 1 if rf == -1 else rf, spec.get("configs"))
            results.append(dict(name=name, error_code=0, error_message=None))
        return dict(topics=results)

    def delete_topics(self, topics, timeout_ms=None, raise_errors=True):
        results = []
        for name in topics:
            self.cluster.changes.append(("delete_topics", name))
            code = 0 if self.cluster.topics.pop(name, None) else 3
            results.append(dict(name=name, error_code=code, error_message=None))
        return dict(topics=results)

    def create_partitions(self, topic_partitions, timeout_ms=None, validate_only=False, raise_errors=True):
        if "CreatePartitions" not in self.cluster.apis:
            raise IncompatibleBrokerVersion("Kafka broker does not support the 'CreatePartitionsRequest' Kafka protocol.")
        results = []
        for name, count in topic_partitions.items():
            self.cluster.changes.append(("create_partitions", name, count))
            topic = self.cluster.topics[name]
            if count <= topic.partitions:
                results.append(dict(name=name, error_code=37, error_message="Topic already has %d partitions." % topic.partitions))
                continue
            topic.partitions = count
            results.append(dict(name=name, error_code=0, error_message=None))
        return FakeResponse(results=results)

    def describe_configs(self, config_resources, include_synonyms=False, config_filter="modified"):
        assert config_filter == "all", "the modules read all configs (a 'modified' filter hides Tansu's)"
        mode = self.cluster.describe_configs
        if mode == "unsupported":
            raise IncompatibleBrokerVersion("Kafka broker does not support the 'DescribeConfigsRequest' Kafka protocol.")
        out = {}
        for resource in config_resources:
            topic = self.cluster.topics.get(resource.name)
            entries = {}
            if topic is not None and mode == "full":
                values = dict(Cluster.DEFAULTS)
                values.update(topic.config)
                entries = dict((k, dict(value=v, read_only=False, config_source="DEFAULT_CONFIG" if k not in topic.config
                                        else "DYNAMIC_TOPIC_CONFIG", is_sensitive=False)) for k, v in values.items())
            out[resource.name] = entries
        return {"topic": out}

    def alter_configs(self, config_resources, validate_only=False, raise_on_unknown=True, incremental=None):
        assert raise_on_unknown is False
        out = {}
        for resource in config_resources:
            self.cluster.changes.append(("alter_configs", resource.name, dict(resource.configs)))
            if any(k.startswith("bogus") for k in resource.configs):
                out[resource.name] = "[Error 40] InvalidConfigurationError: Unknown topic config name: bogus"
                continue
            self.cluster.topics[resource.name].config.update(resource.configs)
            out[resource.name] = "OK"
        return {"topic": out}


class FakeResponse:
    def __init__(self, **fields):
        self.fields = fields

    def to_dict(self):
        return dict(self.fields)


def make_runner(monkeypatch):
    """run(main, args, cluster) -> (result, failed, warnings); the module talks to ``cluster``.

    The test modules wrap it in a fixture: ``run = make_runner(monkeypatch)``.
    """

    def exit_json(self, **kwargs):
        kwargs.setdefault("changed", False)
        raise ExitJson(kwargs)

    def fail_json(self, msg, **kwargs):
        kwargs["msg"] = msg
        kwargs["failed"] = True
        raise FailJson(kwargs)

    warnings = []
    monkeypatch.setattr(basic.AnsibleModule, "exit_json", exit_json)
    monkeypatch.setattr(basic.AnsibleModule, "fail_json", fail_json)
    monkeypatch.setattr(basic.AnsibleModule, "warn", lambda self, warning, **kw: warnings.append(warning))
    monkeypatch.setattr(kafka_utils, "HAS_KAFKA", True)
    monkeypatch.setattr(kafka_utils, "ConfigResource", ConfigResource)
    monkeypatch.setattr(kafka_utils, "ConfigResourceType", ConfigResourceType)
    monkeypatch.setattr(kafka_utils, "kafka_errors", FakeErrors)

    def run(main, args, cluster):
        del warnings[:]
        monkeypatch.setattr(kafka_utils, "KafkaAdminClient", cluster.admin_client)
        args = dict(args)
        args.setdefault("bootstrap_servers", SERVERS)
        with patch_module_args(args):
            try:
                main()
            except ExitJson as exc:
                return exc.args[0], False, list(warnings)
            except FailJson as exc:
                return exc.args[0], True, list(warnings)
        raise AssertionError("module returned without exit_json or fail_json")

    return run
