# Copyright: scratchbird.cluster contributors
# Apache License 2.0 (see LICENSE)
"""Stand-ins for kafka-python's KafkaAdminClient, for the Kafka module tests.

They keep a cluster in memory and answer the admin calls the modules make, in two flavours:
``FakeAdminClient`` with the signatures and shapes of kafka-python 3.0, ``LegacyFakeAdminClient``
with those of kafka-python 2.0.2 (Debian 12's python3-kafka: NewTopic objects, errors raised,
protocol response structs, no IncrementalAlterConfigs). kafka-python itself is not needed
(ansible-test units runs without it): ``make_runner`` puts the fakes into module_utils/kafka.py.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import logging

from ansible.module_utils import basic

from ansible_collections.scratchbird.cluster.plugins.module_utils import kafka as kafka_utils

from ansible_collections.scratchbird.cluster.tests.unit.plugins.modules.module_args import ExitJson, FailJson, patch_exits, patch_module_args


SERVERS = ["127.0.0.1:9092"]
ALL_APIS = ("Metadata", "DescribeCluster", "CreateTopics", "DeleteTopics", "CreatePartitions",
            "DescribeConfigs", "AlterConfigs", "IncrementalAlterConfigs", "ApiVersions")

# The client flavours the module tests run with (make_runner's ``client``).
CLIENT_3 = "kafka-python-3.0"
CLIENT_2 = "kafka-python-2.0.2"
CLIENTS = (CLIENT_3, CLIENT_2)

# KafkaAdminClient.DEFAULT_CONFIG keys (a part): kafka-python refuses any other.
_COMMON_CONFIG = ("bootstrap_servers", "client_id", "request_timeout_ms", "security_protocol", "ssl_cafile",
                  "ssl_certfile", "ssl_keyfile", "sasl_mechanism", "sasl_plain_username", "sasl_plain_password",
                  "api_version")
DEFAULT_CONFIGS = {
    CLIENT_3: dict.fromkeys(_COMMON_CONFIG + ("bootstrap_timeout_ms",)),
    CLIENT_2: dict.fromkeys(_COMMON_CONFIG + ("api_version_auto_timeout_ms",)),
}

# The Kafka names of the error codes the fakes use (kafka.errors.for_code(code).message).
ERROR_NAMES = {
    3: "UNKNOWN_TOPIC_OR_PARTITION",
    29: "TOPIC_AUTHORIZATION_FAILED",
    36: "TOPIC_ALREADY_EXISTS",
    37: "INVALID_PARTITIONS",
    38: "INVALID_REPLICATION_FACTOR",
    40: "INVALID_CONFIG",
}
# Their kafka.errors class names.
ERROR_CLASSES = {
    3: "UnknownTopicOrPartitionError",
    29: "TopicAuthorizationFailedError",
    36: "TopicAlreadyExistsError",
    37: "InvalidPartitionsError",
    38: "InvalidReplicationFactorError",
    40: "InvalidConfigurationError",
}

# Kafka API keys (kafka-python 2.x knows the broker's APIs by number).
API_KEYS = dict(Metadata=3, ApiVersions=18, CreateTopics=19, DeleteTopics=20, DescribeConfigs=32,
                AlterConfigs=33, CreatePartitions=37, IncrementalAlterConfigs=44, DescribeCluster=60)


# Exceptions named and numbered like kafka.errors' (module_utils classifies by name and errno).

class KafkaError(Exception):
    errno = None


class KafkaTimeoutError(KafkaError):
    pass


class KafkaConfigurationError(KafkaError):
    pass


class NoBrokersAvailable(KafkaError):
    pass


class IncompatibleBrokerVersion(KafkaError):
    errno = 35


# kafka-python 2.0.2's IncompatibleBrokerVersion: the same name, no errno.
LegacyIncompatibleBrokerVersion = type("IncompatibleBrokerVersion", (KafkaError,), {})


class SaslAuthenticationFailedError(KafkaError):
    errno = 58


class BrokerResponseError(KafkaError):
    def __str__(self):
        return "[Error %s] %s: %s" % (self.errno, type(self).__name__, KafkaError.__str__(self))


class FakeErrors:
    """kafka.errors.for_code."""

    @staticmethod
    def for_code(code):
        return type(ERROR_CLASSES.get(code, "Error%d" % code), (BrokerResponseError,),
                    dict(errno=code, message=ERROR_NAMES.get(code)))


def legacy_request_error(code, request, response):
    """The error kafka-python 2.0.2 raises for a failed topic of a controller request."""
    return FakeErrors.for_code(code)("Request '%s' failed with response '%s'." % (request, response))


class ConfigResourceType:
    TOPIC = 2


class ConfigResource:
    def __init__(self, resource_type, name, configs=None):
        self.resource_type = resource_type
        self.name = name
        self.configs = configs


class Topic:
    def __init__(self, partitions, replication_factor=1, config=None, internal=False, short_isr=(), sensitive=()):
        self.partitions = partitions
        self.replication_factor = replication_factor
        self.config = dict(config or {})
        self.internal = internal
        self.short_isr = set(short_isr)  # partitions whose ISR lacks a replica
        self.sensitive = set(sensitive)  # configs whose value DescribeConfigs does not tell


class Cluster:
    """The broker side. ``describe_configs``: ``full`` (defaults included, like Kafka),
    ``empty`` (answers with no config) or ``unsupported`` (UNSUPPORTED_VERSION)."""

    DEFAULTS = {"retention.ms": "604800000", "cleanup.policy": "delete", "compression.type": "producer",
                "min.insync.replicas": "1"}

    def __init__(self, brokers=(1,), topics=None, apis=ALL_APIS, describe_configs="full", connect_error=None,
                 connect_log=None, cluster_id="test-cluster", controller_id=None, create_error=None,
                 topic_errors=None, describe_cluster_error=None):
        self.brokers = list(brokers)
        self.topics = dict(topics or {})
        self.apis = set(apis)
        self.describe_configs = describe_configs
        self.connect_error = connect_error
        # (logger, level, message) kafka-python logs while connecting, or a message it warns
        self.connect_log = connect_log
        self.cluster_id = cluster_id
        self.controller_id = self.brokers[0] if controller_id is None and self.brokers else controller_id
        self.create_error = create_error  # (code, message) the broker answers CreateTopics with
        self.topic_errors = dict(topic_errors or {})  # {topic: error code} of its metadata
        self.describe_cluster_error = describe_cluster_error
        self.client = CLIENT_3  # the flavour of the admin clients (make_runner sets it)
        self.clients = []  # the configurations the clients were created with
        self.changes = []  # mutating calls: (call, args)
        self.closed = 0

    def admin_client(self, **config):
        self.clients.append(config)
        unknown = set(config) - set(DEFAULT_CONFIGS[self.client])
        if unknown:
            raise KafkaConfigurationError("Unrecognized configs: %s" % (unknown,))
        if self.connect_log:
            name, level, message = (self.connect_log if isinstance(self.connect_log, tuple)
                                    else ("kafka.net.manager", logging.WARNING, self.connect_log))
            logging.getLogger(name).log(level, message)
        if self.connect_error is not None:
            raise self.connect_error
        return LegacyFakeAdminClient(self) if self.client == CLIENT_2 else FakeAdminClient(self)


class FakeClientClass:
    """``KafkaAdminClient`` as module_utils/kafka.py sees it: callable, with a DEFAULT_CONFIG."""

    def __init__(self, cluster):
        self.cluster = cluster
        self.DEFAULT_CONFIG = DEFAULT_CONFIGS[cluster.client]  # pylint: disable=invalid-name

    def __call__(self, **config):
        return self.cluster.admin_client(**config)


class FakeAdminClient:
    def __init__(self, cluster):
        self.cluster = cluster

    def close(self):
        self.cluster.closed += 1

    def api_versions(self):
        return dict((name, (0, 1)) for name in self.cluster.apis)

    def describe_cluster(self):
        if self.cluster.describe_cluster_error is not None:
            raise self.cluster.describe_cluster_error
        return dict(
            cluster_id=self.cluster.cluster_id,
            controller_id=self.cluster.controller_id,
            brokers=[dict(broker_id=b, host="kafka-%d" % b, port=9092, rack=None) for b in self.cluster.brokers],
            authorized_operations=None,
        )

    def _metadata(self, name):
        topic = self.cluster.topics.get(name)
        if name in self.cluster.topic_errors:
            return dict(error_code=self.cluster.topic_errors[name], name=name, is_internal=False, partitions=[])
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
            if self.cluster.create_error:
                code, message = self.cluster.create_error
                results.append(dict(name=name, error_code=code, error_message=message))
                continue
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

    def _config_entries(self, name):
        """[(key, value, source name, sensitive)] DescribeConfigs reports for topic ``name``."""
        topic = self.cluster.topics.get(name)
        if topic is None or self.cluster.describe_configs != "full":
            return []
        values = dict(self.cluster.DEFAULTS)
        values.update(topic.config)
        entries = []
        for key, value in sorted(values.items()):
            sensitive = key in topic.sensitive
            entries.append((key, None if sensitive else value,
                            "DYNAMIC_TOPIC_CONFIG" if key in topic.config else "DEFAULT_CONFIG", sensitive))
        return entries

    def describe_configs(self, config_resources, include_synonyms=False, config_filter="modified"):
        assert config_filter == "all", "the modules read all configs (a 'modified' filter hides Tansu's)"
        if self.cluster.describe_configs == "unsupported":
            raise IncompatibleBrokerVersion("Kafka broker does not support the 'DescribeConfigsRequest' Kafka protocol.")
        out = {}
        for resource in config_resources:
            out[resource.name] = dict((key, dict(value=value, read_only=False, config_source=source, is_sensitive=sensitive))
                                      for key, value, source, sensitive in self._config_entries(resource.name))
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


class FakeStruct:
    """A kafka-python 2.x protocol response: ``to_object()``, a repr like the structs'."""

    def __init__(self, name, **fields):
        self.name = name
        self.fields = fields

    def to_object(self):
        return dict(self.fields)

    def __repr__(self):
        def show(value):
            if isinstance(value, dict):
                return "(%s)" % ", ".join("%s=%s" % (k, show(v)) for k, v in value.items())
            if isinstance(value, list):
                return "[%s]" % ", ".join(show(v) for v in value)
            return repr(value)
        return "%s(%s)" % (self.name, ", ".join("%s=%s" % (k, show(v)) for k, v in self.fields.items()))


class FakeFuture:
    def __init__(self, value):
        self.value = value


class FakeIncrementalAlterConfigsRequest:
    """module_utils' IncrementalAlterConfigsRequest v0 class (built on kafka-python 2.x's protocol)."""

    API_KEY = 44

    def __init__(self, resources, validate_only):
        self.resources = resources
        self.validate_only = validate_only


# DescribeConfigs v1+ config sources by number.
SOURCE_NUMBERS = {"DYNAMIC_TOPIC_CONFIG": 1, "DEFAULT_CONFIG": 5}


class _LegacyNetworkClient:
    def __init__(self, cluster):
        self.cluster = cluster

    def get_api_versions(self):
        return dict((API_KEYS[name], (0, 1)) for name in self.cluster.apis if name in API_KEYS)

    def least_loaded_node(self):
        return self.cluster.brokers[0]


class LegacyFakeAdminClient:
    """kafka-python 2.0.2's KafkaAdminClient: the signatures, the raised errors and the shapes."""

    def __init__(self, cluster):
        self.cluster = cluster
        self._client = _LegacyNetworkClient(cluster)

    def close(self):
        self.cluster.closed += 1

    def describe_cluster(self):
        if self.cluster.describe_cluster_error is not None:
            raise self.cluster.describe_cluster_error
        brokers = [dict(node_id=b, host="kafka-%d" % b, port=9092, rack=None) for b in self.cluster.brokers]
        return dict(throttle_time_ms=0, brokers=brokers, cluster_id=self.cluster.cluster_id,
                    controller_id=self.cluster.controller_id)

    def describe_topics(self, topics=None):
        out = []
        for meta in FakeAdminClient(self.cluster).describe_topics(topics):
            partitions = [dict(error_code=p["error_code"], partition=p["partition_index"], leader=p["leader_id"],
                               replicas=p["replica_nodes"], isr=p["isr_nodes"], offline_replicas=[])
                          for p in meta["partitions"]]
            out.append(dict(error_code=meta["error_code"], topic=meta["name"], is_internal=meta["is_internal"],
                            partitions=partitions))
        return out

    def _controller_response(self, request, name, key, entries):
        response = FakeStruct(name, throttle_time_ms=0, **{key: entries})
        for entry in entries:
            if entry["error_code"]:
                raise legacy_request_error(entry["error_code"], request, response)
        return response

    def create_topics(self, new_topics, timeout_ms=None, validate_only=False):
        entries = []
        for new_topic in new_topics:
            name = new_topic.name
            spec = dict(num_partitions=new_topic.num_partitions, replication_factor=new_topic.replication_factor,
                        configs=dict(new_topic.topic_configs))
            self.cluster.changes.append(("create_topics", name, spec))
            if self.cluster.create_error:
                code, message = self.cluster.create_error
                entries.append(dict(topic=name, error_code=code, error_message=message))
            elif name in self.cluster.topics:
                entries.append(dict(topic=name, error_code=36, error_message="Topic with this name already exists."))
            else:
                rf = spec["replication_factor"]
                self.cluster.topics[name] = Topic(spec["num_partitions"], 1 if rf == -1 else rf, spec["configs"])
                entries.append(dict(topic=name, error_code=0, error_message=None))
        return self._controller_response("CreateTopicsRequest_v3(...)", "CreateTopicsResponse_v3", "topic_errors", entries)

    def delete_topics(self, topics, timeout_ms=None):
        entries = []
        for name in topics:
            self.cluster.changes.append(("delete_topics", name))
            entries.append(dict(topic=name, error_code=0 if self.cluster.topics.pop(name, None) else 3))
        return self._controller_response("DeleteTopicsRequest_v3(topics=%r)" % (topics,), "DeleteTopicsResponse_v3",
                                         "topic_error_codes", entries)

    def create_partitions(self, topic_partitions, timeout_ms=None, validate_only=False):
        if "CreatePartitions" not in self.cluster.apis:
            raise LegacyIncompatibleBrokerVersion(
                "Kafka broker does not support the 'CreatePartitionsRequest_v0' Kafka protocol.")
        entries = []
        for name, new_partitions in topic_partitions.items():
            count = new_partitions.total_count
            self.cluster.changes.append(("create_partitions", name, count))
            topic = self.cluster.topics[name]
            if count <= topic.partitions:
                entries.append(dict(topic=name, error_code=37, error_message="Topic already has %d partitions." % topic.partitions))
                continue
            topic.partitions = count
            entries.append(dict(topic=name, error_code=0, error_message=None))
        return self._controller_response("CreatePartitionsRequest_v1(...)", "CreatePartitionsResponse_v1",
                                         "topic_errors", entries)

    def describe_configs(self, config_resources, include_synonyms=False):
        if self.cluster.describe_configs == "unsupported" or "DescribeConfigs" not in self.cluster.apis:
            raise LegacyIncompatibleBrokerVersion(
                "Kafka broker does not support the 'DescribeConfigsRequest_v0' Kafka protocol.")
        resources = []
        for resource in config_resources:
            known = resource.name in self.cluster.topics
            entries = [dict(config_names=key, config_value=value, read_only=False, config_source=SOURCE_NUMBERS[source],
                            is_sensitive=sensitive, config_synonyms=[])
                       for key, value, source, sensitive in FakeAdminClient(self.cluster)._config_entries(resource.name)]
            resources.append(dict(error_code=0 if known else 3, error_message=None if known else "Unknown topic",
                                  resource_type=2, resource_name=resource.name, config_entries=entries))
        return [FakeStruct("DescribeConfigsResponse_v2", throttle_time_ms=0, resources=resources)]

    def _set_configs(self, name, configs, call):
        """Apply ``configs`` to topic ``name`` (``call`` records how); the error entry of the resource."""
        self.cluster.changes.append((call, name, dict(configs)))
        if any(k.startswith("bogus") for k in configs):
            return dict(error_code=40, error_message="Unknown topic config name: bogus", resource_type=2,
                        resource_name=name)
        topic = self.cluster.topics[name]
        if call == "alter_configs_replace":  # AlterConfigs: the configs given replace all of the topic's
            topic.config = dict(configs)
        else:
            topic.config.update(configs)
        return dict(error_code=0, error_message=None, resource_type=2, resource_name=name)

    def alter_configs(self, config_resources):
        """AlterConfigs (not incremental): replaces all of a resource's configs."""
        if "AlterConfigs" not in self.cluster.apis:
            raise LegacyIncompatibleBrokerVersion("Kafka broker does not support the 'AlterConfigsRequest_v0' Kafka protocol.")
        resources = [self._set_configs(r.name, r.configs, "alter_configs_replace") for r in config_resources]
        return FakeStruct("AlterConfigsResponse_v1", throttle_time_ms=0, resources=resources)

    def _send_request_to_node(self, node_id, request):
        assert isinstance(request, FakeIncrementalAlterConfigsRequest), request
        assert node_id in self.cluster.brokers and "IncrementalAlterConfigs" in self.cluster.apis
        responses = []
        for resource_type, name, configs in request.resources:
            assert resource_type == 2 and all(op == 0 for dummy, op, dummy in configs), configs  # SET
            responses.append(self._set_configs(name, dict((k, v) for k, dummy, v in configs), "alter_configs"))
        return FakeFuture(FakeStruct("IncrementalAlterConfigsResponse_v0", throttle_time_ms=0, responses=responses))

    def _wait_for_futures(self, futures):
        pass


def make_runner(monkeypatch, client=CLIENT_3):
    """run(main, args, cluster) -> (result, failed, warnings); the module talks to ``cluster``
    through a ``client`` (CLIENT_3 or CLIENT_2) admin client.

    The test modules wrap it in a fixture: ``run = make_runner(monkeypatch, client)``;
    ``run.client`` tells the flavour.
    """

    warnings = []
    patch_exits(monkeypatch)
    monkeypatch.setattr(basic.AnsibleModule, "warn", lambda self, warning, **kw: warnings.append(warning))
    monkeypatch.setattr(kafka_utils, "HAS_KAFKA", True)
    monkeypatch.setattr(kafka_utils, "ConfigResource", ConfigResource)
    monkeypatch.setattr(kafka_utils, "ConfigResourceType", ConfigResourceType)
    monkeypatch.setattr(kafka_utils, "kafka_errors", FakeErrors)
    monkeypatch.setattr(kafka_utils, "_incremental_alter_request_class", lambda: FakeIncrementalAlterConfigsRequest)

    def run(main, args, cluster):
        del warnings[:]
        cluster.client = client
        monkeypatch.setattr(kafka_utils, "KafkaAdminClient", FakeClientClass(cluster))
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

    run.client = client
    return run
